//! `orgaccess diff` as a report: what a pull request does to access.
//!
//! | item | rule id | level | fails the run with `--fail-on` |
//! |---|---|---|---|
//! | someone becomes an administrator (or equivalent) | `new-administrator`, `new-administrator-equivalent` | error | `new-administrator` |
//! | admission would refuse a change for its author (`--as`) | the rule (`NoEscalation`, ...) | error | `escalation` |
//! | a key becomes live, can be public, expires later, leaves its search hub | `key-becomes-live`, `key-can-be-public`, `key-expires-later`, `key-leaves-search-hub` | warning | `key-exposure` |
//! | a principal gains privileges | `privilege-gained` | warning | `gain` |
//! | an advisor finding appears | its id | its severity | `critical`, `warning` |
//! | a principal loses privileges, an administrator leaves, a finding goes away | `privilege-lost`, `no-longer-administrator`, `finding-resolved` | note | never |
//!
//! Each concern `--fail-on` names that the change does not raise is an
//! object that passed (JUnit's passing test cases).

use std::collections::BTreeSet;

use clap::ValueEnum;

use super::super::diff::{DiffReport, FailOn, NamespaceDiff, change_text};
use super::{DOCS, Item, Level, Passed, Report, Rule, advise, check, relative};
use crate::core::advice::{Finding, Severity};
use crate::core::builtin::BuiltinGroup;
use crate::core::diff::{Notice, Principal, PrincipalKind};

/// A principal's changes listed in its result at most (`-o json` has them all).
const MAX_CHANGES: usize = 12;

/// What each of diff's own ids means.
pub fn rule(id: &str) -> Rule {
    let (description, level) = match id {
        "new-administrator" => ("Someone becomes a member of Administrators", Level::Error),
        "new-administrator-equivalent" => (
            "Someone holds everything Administrators holds, through other groups",
            Level::Error,
        ),
        "no-longer-administrator" => (
            "An administrator (or equivalent) is one no more",
            Level::Note,
        ),
        "key-becomes-live" => (
            "An API key becomes usable (enabled, not expired)",
            Level::Warning,
        ),
        "key-can-be-public" => (
            "An API key comes from a template whose keys may be exposed publicly",
            Level::Warning,
        ),
        "key-expires-later" => ("An API key lives longer", Level::Warning),
        "key-leaves-search-hub" => (
            "An API key is no longer bound to its search hub, or moves to another",
            Level::Warning,
        ),
        "privilege-gained" => (
            "A member, API key or identity gains privileges",
            Level::Warning,
        ),
        "privilege-lost" => (
            "A member, API key or identity loses privileges",
            Level::Note,
        ),
        "finding-resolved" => ("A least-privilege finding goes away", Level::Note),
        other => return check::rule(other),
    };
    Rule {
        id: id.to_string(),
        description: description.to_string(),
        help_uri: format!("{DOCS}diff.md"),
        level,
    }
}

fn name(f: FailOn) -> String {
    f.to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// The `Kind/name` of a principal's object; none for an identity.
fn object(p: &Principal) -> Option<String> {
    (p.kind != PrincipalKind::Identity).then(|| p.to_string())
}

struct Ns<'a> {
    n: &'a NamespaceDiff,
    fail_on: &'a [FailOn],
}

impl Ns<'_> {
    fn item(
        &self,
        rule: &str,
        level: Level,
        fails: Option<FailOn>,
        subject: String,
        message: String,
        objects: Vec<String>,
    ) -> Item {
        let at = objects.iter().find_map(|o| self.n.locations.get(o));
        Item {
            key: format!("{rule}|{}|{subject}", self.n.namespace),
            rule: rule.to_string(),
            level,
            fails: fails.is_some_and(|f| self.fail_on.contains(&f)),
            subject,
            message,
            objects,
            namespace: Some(self.n.namespace.clone()),
            file: at.map(|l| relative(&l.file)),
            line: at.map_or(0, |l| l.line),
            help: None,
        }
    }

    fn notice(&self, notice: &Notice) -> Item {
        let (rule, level, fails, subject, objects) = match notice {
            Notice::NewAdministrator { principal } => (
                "new-administrator",
                Level::Error,
                Some(FailOn::NewAdministrator),
                principal.to_string(),
                object(principal)
                    .into_iter()
                    .chain([format!(
                        "Group/{}",
                        BuiltinGroup::Administrators.object_name()
                    )])
                    .collect(),
            ),
            Notice::NewAdministratorEquivalent { principal } => (
                "new-administrator-equivalent",
                Level::Error,
                Some(FailOn::NewAdministrator),
                principal.to_string(),
                object(principal).into_iter().collect(),
            ),
            Notice::NoLongerAdministrator { principal } => (
                "no-longer-administrator",
                Level::Note,
                None,
                principal.to_string(),
                object(principal).into_iter().collect(),
            ),
            Notice::KeyBecomesLive { key } => (
                "key-becomes-live",
                Level::Warning,
                Some(FailOn::KeyExposure),
                format!("ApiKey/{key}"),
                vec![format!("ApiKey/{key}")],
            ),
            Notice::KeyCanBePublic { key, .. } => (
                "key-can-be-public",
                Level::Warning,
                Some(FailOn::KeyExposure),
                format!("ApiKey/{key}"),
                vec![format!("ApiKey/{key}")],
            ),
            Notice::KeyExpiresLater { key, .. } => (
                "key-expires-later",
                Level::Warning,
                Some(FailOn::KeyExposure),
                format!("ApiKey/{key}"),
                vec![format!("ApiKey/{key}")],
            ),
            Notice::KeyLeavesSearchHub { key, .. } => (
                "key-leaves-search-hub",
                Level::Warning,
                Some(FailOn::KeyExposure),
                format!("ApiKey/{key}"),
                vec![format!("ApiKey/{key}")],
            ),
        };
        self.item(rule, level, fails, subject, notice.message(), objects)
    }

    fn finding(&self, f: &Finding, appeared: bool) -> Item {
        let mut item = advise::item_at(&self.n.namespace, &self.n.locations, f, Severity::Critical);
        if appeared {
            let fails = (f.severity >= Severity::Warning
                && self.fail_on.contains(&FailOn::Warning))
                || (f.severity >= Severity::Critical && self.fail_on.contains(&FailOn::Critical));
            item.fails = fails;
            item.message = format!("appears: {}", f.message);
        } else {
            item.key = format!("finding-resolved|{}", item.key);
            item.rule = "finding-resolved".into();
            item.level = Level::Note;
            item.fails = false;
            item.message = format!("goes away: [{}] {}", f.id, f.message);
            item.help = None;
        }
        item
    }
}

/// The report of one run of `diff`; `fail_on` is its `--fail-on`.
pub fn report(d: &DiffReport, fail_on: &[FailOn], full_command: String) -> Report {
    let mut items = Vec::new();
    let mut findings_seen = Vec::new();
    let mut refused = 0;
    for n in &d.namespaces {
        let ns = Ns { n, fail_on };
        items.extend(n.diff.notices.iter().map(|x| ns.notice(x)));
        for p in &n.diff.principals {
            let gains = p.gains();
            let mut changes: Vec<String> = p
                .changes
                .iter()
                .take(MAX_CHANGES)
                .map(change_text)
                .collect();
            if p.changes.len() > MAX_CHANGES {
                changes.push(format!(
                    "and {} more domains",
                    p.changes.len() - MAX_CHANGES
                ));
            }
            let state = match (p.in_base, p.in_head) {
                (false, true) => " (new)",
                (true, false) => " (removed)",
                _ => "",
            };
            items.push(ns.item(
                if gains {
                    "privilege-gained"
                } else {
                    "privilege-lost"
                },
                if gains { Level::Warning } else { Level::Note },
                gains.then_some(FailOn::Gain),
                p.principal.to_string(),
                format!("{}{state}: {}", p.principal, changes.join("; ")),
                object(&p.principal).into_iter().collect(),
            ));
        }
        for f in &n.diff.findings.appeared {
            items.push(ns.finding(f, true));
            findings_seen.push(f.clone());
        }
        items.extend(
            n.diff
                .findings
                .resolved
                .iter()
                .map(|f| ns.finding(f, false)),
        );
        for x in n.refused.iter().flatten() {
            refused += 1;
            let subject = format!("{} {} {}/{}", x.operation, x.kind, n.namespace, x.name);
            for r in &x.rules {
                let mut item = ns.item(
                    r,
                    Level::Error,
                    Some(FailOn::Escalation),
                    subject.clone(),
                    x.message.clone(),
                    vec![format!("{}/{}", x.kind, x.name)],
                );
                item.file = Some(relative(&x.file));
                item.line = x.line;
                item.key = format!("{r}|{}|{}/{}|{}", n.namespace, x.kind, x.name, x.operation);
                items.push(item);
            }
        }
    }
    let count = |rule: &str| items.iter().filter(|i| i.rule == rule).count();
    let mut parts = Vec::new();
    for (n, one, many) in [
        (
            count("new-administrator") + count("new-administrator-equivalent"),
            "new administrator",
            "new administrators",
        ),
        (
            count("privilege-gained"),
            "principal gains privileges",
            "principals gain privileges",
        ),
        (
            count("privilege-lost"),
            "principal loses privileges",
            "principals lose privileges",
        ),
        (
            count("key-becomes-live")
                + count("key-can-be-public")
                + count("key-expires-later")
                + count("key-leaves-search-hub"),
            "key exposure",
            "key exposures",
        ),
        (findings_seen.len(), "finding appears", "findings appear"),
        (
            refused,
            "change admission would refuse",
            "changes admission would refuse",
        ),
    ] {
        if n > 0 {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    }
    let mut headline = format!(
        "{} → {}: {}",
        d.base,
        d.head,
        if parts.is_empty() {
            "no change to access".to_string()
        } else {
            parts.join(", ")
        }
    );
    if !d.failed.is_empty() {
        let failed: Vec<String> = d.failed.iter().map(|f| name(*f)).collect();
        headline.push_str(&format!("; fails on {}", failed.join(", ")));
    }
    let ids: BTreeSet<&str> = items.iter().map(|i| i.rule.as_str()).collect();
    let mut rules: Vec<Rule> = ids
        .into_iter()
        .map(|id| match findings_seen.iter().find(|f| f.id == id) {
            Some(f) => advise::rule(f),
            None => rule(id),
        })
        .collect();
    rules.dedup_by(|a, b| a.id == b.id);
    let raised: BTreeSet<FailOn> = d.concerns.iter().copied().collect();
    let default_file = d.namespaces.iter().find_map(|n| {
        n.locations
            .iter()
            .find(|(k, _)| k.starts_with("Organization/"))
            .map(|(_, l)| relative(&l.file))
    });
    let mut r = Report {
        command: "diff",
        headline,
        failed: !d.failed.is_empty(),
        items,
        passed: fail_on
            .iter()
            .filter(|f| !raised.contains(f))
            .map(|f| Passed {
                subject: format!("no {}", name(*f)),
                file: None,
                line: 0,
            })
            .collect(),
        rules,
        default_file,
        full_command,
        passed_noun: (
            "`--fail-on` concern not raised",
            "`--fail-on` concerns not raised",
        ),
    };
    r.sort();
    r
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cli::manifest::Location;
    use crate::core::diff::{AccessDiff, FindingsDiff, PrincipalDiff};

    fn principal(kind: PrincipalKind, name: &str) -> Principal {
        Principal {
            kind,
            name: name.into(),
        }
    }

    fn finding(id: &'static str, severity: Severity) -> Finding {
        Finding {
            id,
            severity,
            objects: vec!["Member/ada".into()],
            message: format!("{id} message"),
            practice: "a practice",
            source: "a source",
            fix: "a fix".into(),
        }
    }

    fn sample(failed: Vec<FailOn>) -> DiffReport {
        let diff = AccessDiff {
            principals: vec![PrincipalDiff {
                principal: principal(PrincipalKind::Member, "bob"),
                in_base: true,
                in_head: true,
                changes: Vec::new(),
            }],
            notices: vec![
                Notice::NewAdministrator {
                    principal: principal(PrincipalKind::Member, "ada"),
                },
                Notice::NewAdministratorEquivalent {
                    principal: principal(PrincipalKind::Identity, "User eve"),
                },
                Notice::KeyBecomesLive { key: "k".into() },
            ],
            findings: FindingsDiff {
                appeared: vec![finding("administrators-size", Severity::Warning)],
                resolved: vec![finding("group-without-members", Severity::Info)],
            },
        };
        let at = |line| Location {
            file: "org/members.yaml".into(),
            document: 1,
            line,
        };
        DiffReport {
            base: "main".into(),
            head: "HEAD".into(),
            author: None,
            namespaces: vec![NamespaceDiff {
                namespace: "acme".into(),
                diff,
                refused: None,
                locations: BTreeMap::from([
                    ("Member/ada".to_string(), at(7)),
                    (
                        "Organization/acme".to_string(),
                        Location {
                            file: "org/org.yaml".into(),
                            document: 1,
                            line: 1,
                        },
                    ),
                ]),
            }],
            concerns: vec![
                FailOn::NewAdministrator,
                FailOn::KeyExposure,
                FailOn::Warning,
            ],
            failed,
        }
    }

    #[test]
    fn a_new_administrator_is_an_error_at_her_manifest_failing_only_when_asked() {
        let d = sample(vec![FailOn::NewAdministrator]);
        let r = report(
            &d,
            &[FailOn::NewAdministrator, FailOn::Critical],
            "orgaccess diff".into(),
        );
        assert!(r.failed);
        assert!(
            r.headline.ends_with("; fails on new-administrator"),
            "{}",
            r.headline
        );
        let first = &r.items[0];
        assert_eq!(
            (first.rule.as_str(), first.level, first.fails),
            ("new-administrator", Level::Error, true)
        );
        assert_eq!(
            (first.file.as_deref(), first.line),
            (Some("org/members.yaml"), 7)
        );
        assert!(
            first
                .message
                .contains("Member/ada becomes an administrator")
        );
        // An identity has no manifest: shown at the Organization's.
        let eve = r
            .items
            .iter()
            .find(|i| i.rule == "new-administrator-equivalent")
            .unwrap();
        assert_eq!(
            (eve.file.as_deref(), eve.level, eve.fails),
            (None, Level::Error, true)
        );
        assert_eq!(r.file_of(eve), Some("org/org.yaml"));
        // Key exposure and the warning finding do not fail without being named.
        for id in ["key-becomes-live", "administrators-size"] {
            let i = r.items.iter().find(|i| i.rule == id).unwrap();
            assert_eq!((i.level, i.fails), (Level::Warning, false), "{id}");
        }
        let resolved = r
            .items
            .iter()
            .find(|i| i.rule == "finding-resolved")
            .unwrap();
        assert_eq!(resolved.level, Level::Note);
        let lost = r.items.iter().find(|i| i.rule == "privilege-lost").unwrap();
        assert_eq!((lost.level, lost.fails), (Level::Note, false));
        // `critical` was asked for and not raised: it passed.
        assert_eq!(r.passed.len(), 1);
        assert_eq!(r.passed[0].subject, "no critical");
        // Every id the items name has its rule.
        for i in &r.items {
            assert!(r.rules.iter().any(|x| x.id == i.rule), "{}", i.rule);
        }
    }

    #[test]
    fn asking_for_warnings_fails_on_the_new_warning_finding() {
        let r = report(
            &sample(vec![FailOn::Warning]),
            &[FailOn::Warning],
            String::new(),
        );
        let f = r
            .items
            .iter()
            .find(|i| i.rule == "administrators-size")
            .unwrap();
        assert!(f.fails);
        assert!(
            !r.items
                .iter()
                .find(|i| i.rule == "new-administrator")
                .unwrap()
                .fails
        );
    }
}
