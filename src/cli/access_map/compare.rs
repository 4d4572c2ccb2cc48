//! `orgaccess diff --html`: the head's access map with the core diff's
//! changes marked on its cells (core `diff::diff`, the function `orgaccess
//! diff` prints). Nothing is recomputed: a cell's level and grants are the
//! head's (`AccessMap::build`), its mark is the diff's `PrivilegeChange`.
//! Members and keys the head no longer holds get a row of their losses;
//! identities, notices and findings go to the page's summary of the change.

use super::{AccessMap, Cell, Change, Kind, Mark, Principal};
use crate::core::advice::Finding;
use crate::core::catalog;
use crate::core::diff::{AccessDiff, Direction, PrincipalKind, PrivilegeChange};
use crate::core::privilege::PrivilegeSpec;

/// What the page says of the change besides the cells.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    pub base: String,
    pub head: String,
    /// New administrators, keys becoming live or public... (`Notice::message`).
    pub notices: Vec<String>,
    /// One line per Kubernetes identity whose privileges move.
    pub identities: Vec<String>,
    /// Principals that gained / lost anything.
    pub gaining: usize,
    pub losing: usize,
    pub appeared: Vec<Finding>,
    pub resolved: Vec<Finding>,
    /// With `--as`: the changes admission would refuse, one line each.
    pub refused: Option<Vec<String>>,
}

/// A grant in words, without its `Service/Domain: ` (`None` when absent).
pub fn level_words(spec: Option<&PrivilegeSpec>) -> String {
    spec.map_or("None".to_string(), |s| {
        let text = s.to_string();
        text.split_once(": ")
            .map_or(text.clone(), |(_, l)| l.to_string())
    })
}

fn mark(c: &PrivilegeChange) -> Mark {
    let (change, causes) = match c.direction {
        Direction::Gained => (Change::Gained, c.granted_by.clone()),
        Direction::Lost => (Change::Lost, c.was_granted_by.clone()),
        Direction::Changed => {
            let mut causes: Vec<String> =
                c.granted_by.iter().map(|g| format!("now: {g}")).collect();
            causes.extend(c.was_granted_by.iter().map(|g| format!("before: {g}")));
            (Change::Changed, causes)
        }
    };
    Mark {
        change,
        before: level_words(c.before.as_ref()),
        causes,
    }
}

fn kind(k: PrincipalKind) -> Option<Kind> {
    match k {
        PrincipalKind::Member => Some(Kind::Member),
        PrincipalKind::ApiKey => Some(Kind::ApiKey),
        PrincipalKind::Identity => None,
    }
}

/// Marks `map` (the head's) with `diff` (base → head).
pub fn mark_changes(map: &mut AccessMap, diff: &AccessDiff, mut changes: Changes) {
    for pd in &diff.principals {
        if pd.changes.iter().any(|c| c.gained.is_some()) {
            changes.gaining += 1;
        }
        if pd.changes.iter().any(|c| c.lost.is_some()) {
            changes.losing += 1;
        }
        let Some(k) = kind(pd.principal.kind) else {
            for c in &pd.changes {
                changes.identities.push(format!(
                    "{}: {}/{}: {} \u{2192} {}",
                    pd.principal,
                    c.service,
                    c.domain,
                    level_words(c.before.as_ref()),
                    level_words(c.after.as_ref())
                ));
            }
            continue;
        };
        let rows = match k {
            Kind::Member => &mut map.members,
            Kind::ApiKey => &mut map.keys,
        };
        let at = match rows.iter().position(|p| p.name == pd.principal.name) {
            Some(i) => i,
            None => {
                // Gone at the head: a row of what it held.
                rows.push(Principal {
                    kind: k,
                    name: pd.principal.name.clone(),
                    identity: String::new(),
                    phase: "Removed".to_string(),
                    groups: Vec::new(),
                    cells: Default::default(),
                });
                rows.len() - 1
            }
        };
        let row = &mut rows[at];
        for c in &pd.changes {
            let Some(d) = catalog::lookup(c.service, &c.domain) else {
                continue;
            };
            row.cells.entry(d).or_insert_with(Cell::none).mark = Some(mark(c));
        }
    }
    map.members.sort_by(|a, b| a.name.cmp(&b.name));
    map.keys.sort_by(|a, b| a.name.cmp(&b.name));
    changes.notices = diff.notices.iter().map(|n| n.message()).collect();
    changes.appeared = diff.findings.appeared.clone();
    changes.resolved = diff.findings.resolved.clone();
    map.changes = Some(changes);
}
