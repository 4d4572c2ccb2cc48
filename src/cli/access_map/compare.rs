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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::manifest::{Loaded, parse_text};
    use crate::cli::source::{self, Org};
    use crate::core::catalog::DomainId;
    use crate::core::diff::diff;
    use crate::core::privilege::AccessLevel;

    const BASE: &str = r#"
apiVersion: orgaccess.dev/v1alpha1
kind: Organization
metadata: {name: acme, namespace: t}
spec:
  displayName: ACME
  resources: {sources: [jira, web]}
---
apiVersion: orgaccess.dev/v1alpha1
kind: Group
metadata: {name: editors, namespace: t}
spec:
  displayName: Editors
  privileges:
    - {service: Content, domain: Fields, level: Edit}
    - service: Content
      domain: Sources
      level: Custom
      resources: [{name: jira, level: Edit}]
---
apiVersion: orgaccess.dev/v1alpha1
kind: Member
metadata: {name: mallory, namespace: t}
spec:
  identity: {provider: Email, username: mallory@acme.example}
  groups: [editors]
  accepted: true
"#;

    fn org(yaml: &str) -> Org {
        let mut loaded = Loaded::default();
        parse_text("t.yaml", yaml, "default", &mut loaded);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        source::states(&loaded.manifests, true)
            .remove("t")
            .expect("namespace t")
    }

    #[test]
    fn every_change_of_the_diff_marks_one_cell_and_no_other() {
        // The head: editors trade jira for web and lose Fields' Edit for
        // View; mallory leaves; trent joins.
        let head_yaml = BASE
            .replace("level: Edit}\n    - service", "level: View}\n    - service")
            .replace("{name: jira, level: Edit}", "{name: web, level: Edit}")
            .replace("name: mallory", "name: trent")
            .replace("mallory@", "trent@");
        let (base, head) = (org(BASE), org(&head_yaml));
        let now = jiff::Timestamp::UNIX_EPOCH;
        let d = diff(&base.state, &head.state, now);
        let mut map = AccessMap::build(&head, "test", now);
        mark_changes(&mut map, &d, Changes::default());

        let marked: Vec<(&str, DomainId, Change)> = map
            .members
            .iter()
            .flat_map(|p| {
                p.cells.iter().filter_map(move |(d, c)| {
                    c.mark.as_ref().map(|m| (p.name.as_str(), *d, m.change))
                })
            })
            .collect();
        let fields = catalog::lookup(catalog::Service::Content, "Fields").unwrap();
        let sources = catalog::lookup(catalog::Service::Content, "Sources").unwrap();
        // mallory, gone, loses both; trent, new, gains both.
        assert!(marked.contains(&("mallory", fields, Change::Lost)));
        assert!(marked.contains(&("mallory", sources, Change::Lost)));
        assert!(marked.contains(&("trent", fields, Change::Gained)));
        assert!(marked.contains(&("trent", sources, Change::Gained)));
        let member_changes: usize = d
            .principals
            .iter()
            .filter(|p| p.principal.kind == PrincipalKind::Member)
            .map(|p| p.changes.len())
            .sum();
        assert_eq!(marked.len(), member_changes, "{marked:?}");
        let mallory = map.members.iter().find(|p| p.name == "mallory").unwrap();
        assert_eq!(mallory.phase, "Removed");
        let lost = mallory.cell(fields).unwrap();
        assert_eq!(lost.level, AccessLevel::None, "the head holds nothing");
        let mark = lost.mark.as_ref().unwrap();
        assert_eq!(mark.before, "Edit");
        assert_eq!(mark.causes, ["Group editors"]);
        // trent's Fields is View now, from editors; no cell of trent's is unmarked.
        let trent = map.members.iter().find(|p| p.name == "trent").unwrap();
        assert_eq!(trent.cell(fields).unwrap().level, AccessLevel::View);
        assert!(trent.cells.values().all(|c| c.mark.is_some()));
        let changes = map.changes.as_ref().unwrap();
        assert_eq!((changes.gaining, changes.losing), (1, 1));
    }

    #[test]
    fn a_trade_is_marked_changed_with_both_sides_causes() {
        let head_yaml = BASE.replace("{name: jira, level: Edit}", "{name: web, level: Edit}");
        let (base, head) = (org(BASE), org(&head_yaml));
        let now = jiff::Timestamp::UNIX_EPOCH;
        let d = diff(&base.state, &head.state, now);
        let mut map = AccessMap::build(&head, "test", now);
        mark_changes(&mut map, &d, Changes::default());
        let sources = catalog::lookup(catalog::Service::Content, "Sources").unwrap();
        let cell = map.members[0].cell(sources).unwrap();
        let mark = cell.mark.as_ref().unwrap();
        assert_eq!(mark.change, Change::Changed);
        assert_eq!(mark.before, "Custom (jira Edit)");
        assert_eq!(mark.causes, ["now: Group editors", "before: Group editors"]);
        assert_eq!(cell.level, AccessLevel::Custom);
    }
}
