//! `orgaccess check` as a report: each violation of a denied object, each
//! problem of an invalid document and each unreadable path is an error that
//! fails the run; each warning on an allowed object is a warning that does
//! not (its rule is the advisor's finding id when it is one); allowed
//! objects are the objects that passed.

use std::collections::BTreeSet;

use super::super::check::{Inputs, Verdict, summary};
use super::super::manifest::Problem;
use super::super::output::Styles;
use crate::core::model::Kind;

use super::{DOCS, Item, Level, Passed, Report, Rule, relative};

/// What each rule id of `check` means, and where it is documented.
pub fn rule(id: &str) -> Rule {
    let (description, page) = match id {
        "CatalogValidity" => (
            "Privileges name services, domains, levels and resources the catalog offers",
            "rules.md#the-catalogue",
        ),
        "AdministratorsProtected" => (
            "The Administrators group is neither deleted nor edited; only the operator sets spec.builtIn",
            "rules.md#the-catalogue",
        ),
        "UnknownRequester" => (
            "A change comes from an identity some Member maps",
            "rules.md#the-catalogue",
        ),
        "IdentityClaims" => (
            "Only trusted principals write identity-provider claims (ssoGroups, salesforceProfile)",
            "rules.md#the-catalogue",
        ),
        "RequiredPrivileges" => (
            "A change needs the privilege to make it (Can Create, Edit, Groups Edit)",
            "rules.md#the-catalogue",
        ),
        "Duplicate" => (
            "A group is duplicated only by a requester who strictly out-ranks it",
            "rules.md#the-catalogue",
        ),
        "NoEscalation" => (
            "Nobody grants what they do not hold, by any path",
            "rules.md#the-catalogue",
        ),
        "KeyLifecycle" => (
            "A disabled API key is enabled again only once its disabling was carried out",
            "rules.md#the-catalogue",
        ),
        "BindingsRecorded" => (
            "The record of who set an object's bindings is the one admission computes",
            "rules.md#the-catalogue",
        ),
        "ForeignBindings" => (
            "A trusted change grants nothing through a binding a tenant set",
            "rules.md#the-catalogue",
        ),
        "ReviewedByOwner" => (
            "Only an owner of a group records or deletes its access reviews",
            "rules.md#the-catalogue",
        ),
        "InvalidManifest" => (
            "A document is readable YAML or JSON of a known orgaccess.dev kind",
            "cli.md#orgaccess-check",
        ),
        "Schema" => (
            "A document satisfies its CRD's schema and CEL rules",
            "cli.md#orgaccess-check",
        ),
        "AdmissionWarning" => (
            "What the webhook would warn about on an allowed change",
            "rules.md#warnings",
        ),
        _ => (
            "A least-privilege finding the change creates (orgaccess advise)",
            "cli.md#orgaccess-advise",
        ),
    };
    let level = match id {
        "AdmissionWarning" => Level::Warning,
        _ if id.contains('-') => Level::Warning,
        _ => Level::Error,
    };
    Rule {
        id: id.to_string(),
        description: description.to_string(),
        help_uri: format!("{DOCS}{page}"),
        level,
    }
}

/// The advisor's finding id a warning is about (`advice <id> (<severity>): ...`).
fn warning_rule(w: &str) -> &str {
    w.strip_prefix("advice ")
        .and_then(|rest| rest.split_once(' '))
        .map(|(id, _)| id)
        .filter(|id| crate::core::advice::IDS.contains(id))
        .unwrap_or("AdmissionWarning")
}

fn problem_item(p: &Problem) -> Item {
    let subject = match (&p.kind, &p.namespace, &p.name) {
        (Some(k), Some(ns), Some(n)) => format!("{k} {ns}/{n}"),
        (Some(k), None, Some(n)) => format!("{k} {n}"),
        _ if p.loc.document > 0 => {
            format!("{} (document {})", relative(&p.loc.file), p.loc.document)
        }
        _ => relative(&p.loc.file),
    };
    let message = match &p.field {
        Some(f) if !p.message.contains(f.as_str()) => format!("{f}: {}", p.message),
        _ => p.message.clone(),
    };
    let object = match (&p.kind, &p.name) {
        (Some(k), Some(n)) => vec![format!("{k}/{n}")],
        _ => Vec::new(),
    };
    Item {
        rule: p.rule.to_string(),
        level: Level::Error,
        fails: true,
        // The file too: an object defined twice is two problems.
        key: format!(
            "{}|{}|{}|{}|{}|{}",
            p.rule,
            relative(&p.loc.file),
            p.namespace.as_deref().unwrap_or_default(),
            object
                .first()
                .cloned()
                .unwrap_or_else(|| format!("#{}", p.loc.document)),
            p.field.as_deref().unwrap_or_default(),
            if object.is_empty() {
                p.message.as_str()
            } else {
                ""
            },
        ),
        subject,
        message,
        objects: object,
        namespace: p.namespace.clone(),
        file: Some(relative(&p.loc.file)),
        line: p.loc.line,
        help: None,
    }
}

/// The report of one run of `check`; `failed` is its exit code's verdict.
pub fn report(inputs: &Inputs, verdicts: &[Verdict], failed: bool, full_command: String) -> Report {
    let mut r = Report {
        command: "check",
        headline: summary(verdicts, inputs.loaded.unreadable.len(), Styles::plain())
            .trim_end()
            .to_string(),
        failed,
        full_command,
        passed_noun: ("object allowed", "objects allowed"),
        ..Report::default()
    };
    for (path, why) in &inputs.loaded.unreadable {
        r.items.push(Item {
            rule: super::super::manifest::INVALID_MANIFEST.to_string(),
            level: Level::Error,
            fails: true,
            subject: relative(path),
            message: format!("cannot read: {why}"),
            objects: Vec::new(),
            namespace: None,
            file: Some(relative(path)),
            line: 0,
            help: None,
            key: format!("unreadable|{}", relative(path)),
        });
    }
    for v in verdicts {
        match v {
            Verdict::Judged(m, _, j) => {
                let subject = format!("{} {}", m.kind(), m.qualified());
                let object = format!("{}/{}", m.kind(), m.name);
                let file = Some(relative(&m.loc.file));
                if m.kind() == Kind::Organization && r.default_file.is_none() {
                    r.default_file = file.clone();
                }
                let item = |rule: &str, level, fails, message: String, field: &str| Item {
                    rule: rule.to_string(),
                    level,
                    fails,
                    subject: subject.clone(),
                    message,
                    objects: vec![object.clone()],
                    namespace: Some(m.namespace.clone()),
                    file: file.clone(),
                    line: m.loc.line,
                    help: None,
                    key: format!("{rule}|{}|{object}|{field}", m.namespace),
                };
                if j.allowed() {
                    r.passed.push(Passed {
                        subject: subject.clone(),
                        file: file.clone(),
                        line: m.loc.line,
                    });
                    for w in &j.warnings {
                        // Keyed by its text: one object gets several
                        // warnings of one rule (a finding per member).
                        r.items
                            .push(item(warning_rule(w), Level::Warning, false, w.clone(), w));
                    }
                } else {
                    for x in &j.violations {
                        let message = if x.field.is_empty() {
                            x.message.clone()
                        } else {
                            format!("{}: {}", x.field, x.message)
                        };
                        r.items.push(item(
                            &x.rule.to_string(),
                            Level::Error,
                            true,
                            message,
                            &x.field,
                        ));
                    }
                }
            }
            Verdict::Invalid(p) => r.items.push(problem_item(p)),
        }
    }
    if r.default_file.is_none() {
        r.default_file = r.items.iter().find_map(|i| i.file.clone());
    }
    let ids: BTreeSet<&str> = r.items.iter().map(|i| i.rule.as_str()).collect();
    r.rules = ids.into_iter().map(rule).collect();
    r.sort();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_name_the_advisor_s_finding_when_they_are_one() {
        assert_eq!(
            warning_rule("advice administrators-size (warning): 4 members; fix: x"),
            "administrators-size"
        );
        assert_eq!(
            warning_rule("advice nonsense (warning): x"),
            "AdmissionWarning"
        );
        assert_eq!(warning_rule("spec.lifetime: not set"), "AdmissionWarning");
    }

    #[test]
    fn every_rule_of_the_core_is_described() {
        for id in [
            "CatalogValidity",
            "AdministratorsProtected",
            "Duplicate",
            "RequiredPrivileges",
            "NoEscalation",
            "UnknownRequester",
            "KeyLifecycle",
            "IdentityClaims",
            "BindingsRecorded",
            "ForeignBindings",
            "ReviewedByOwner",
        ] {
            let r = rule(id);
            assert!(r.help_uri.ends_with("rules.md#the-catalogue"), "{id}");
            assert_eq!(r.level, Level::Error);
        }
        assert_eq!(rule("administrators-size").level, Level::Warning);
    }
}
