//! `orgaccess advise` as a report: each finding is an item at its
//! severity (critical an error, warning a warning, info a note) that fails
//! the run at `--fail-on` and above, placed at the manifest of the first of
//! its objects that has one; each finding id that found nothing passed.

use std::collections::{BTreeMap, BTreeSet};

use super::super::manifest::Location;
use super::super::source::Org;
use super::{DOCS, Item, Level, Passed, Report, Rule, relative};
use crate::core::advice::{Finding, Severity};

pub fn level(s: Severity) -> Level {
    match s {
        Severity::Critical => Level::Error,
        Severity::Warning => Level::Warning,
        Severity::Info => Level::Note,
    }
}

/// What a finding id means: the practice it checks.
pub fn rule(f: &Finding) -> Rule {
    Rule {
        id: f.id.to_string(),
        description: format!("{} ({})", f.practice, f.source),
        help_uri: format!("{DOCS}cli.md#orgaccess-advise"),
        level: level(f.severity),
    }
}

/// One finding in `org` as an item; `fail_on` is the run's threshold.
pub fn item(org: &Org, f: &Finding, fail_on: Severity) -> Item {
    item_at(&org.namespace, &org.locations, f, fail_on)
}

/// One finding in `namespace`, whose manifests are at `locations` (by `Kind/name`).
pub fn item_at(
    namespace: &str,
    locations: &BTreeMap<String, Location>,
    f: &Finding,
    fail_on: Severity,
) -> Item {
    let at = f.objects.iter().find_map(|o| locations.get(o));
    let subject = match f.objects.as_slice() {
        [] => format!("namespace {namespace}"),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} and {} more", rest.len()),
    };
    Item {
        rule: f.id.to_string(),
        level: level(f.severity),
        fails: f.severity >= fail_on,
        subject,
        message: f.message.clone(),
        objects: f.objects.clone(),
        namespace: Some(namespace.to_string()),
        file: at.map(|l| relative(&l.file)),
        line: at.map_or(0, |l| l.line),
        help: Some(f.fix.clone()),
        key: format!("{}|{namespace}|{}", f.id, f.objects.join(",")),
    }
}

/// The report of one run of `advise`; `checked` are the finding ids that ran.
pub fn report(
    org: &Org,
    findings: &[Finding],
    fail_on: Severity,
    checked: &[&str],
    full_command: String,
) -> Report {
    let items: Vec<Item> = findings.iter().map(|f| item(org, f, fail_on)).collect();
    let failing = items.iter().filter(|i| i.fails).count();
    let ns = &org.namespace;
    let headline = match (findings.len(), failing) {
        (0, _) => format!("no findings in namespace {ns}"),
        (n, 0) => format!(
            "{n} finding{} in namespace {ns}, none at {} or above",
            if n == 1 { "" } else { "s" },
            format!("{fail_on:?}").to_lowercase()
        ),
        (n, k) => format!(
            "{n} finding{} in namespace {ns}, {k} at {} or above",
            if n == 1 { "" } else { "s" },
            format!("{fail_on:?}").to_lowercase()
        ),
    };
    let found: BTreeSet<&str> = findings.iter().map(|f| f.id).collect();
    let org_file = org
        .locations
        .iter()
        .find(|(k, _)| k.starts_with("Organization/"))
        .map(|(_, l)| l);
    let mut r = Report {
        command: "advise",
        headline,
        failed: failing > 0,
        items,
        passed: checked
            .iter()
            .filter(|id| !found.contains(*id))
            .map(|id| Passed {
                subject: format!("advice {id}"),
                file: org_file.map(|l| relative(&l.file)),
                line: org_file.map_or(0, |l| l.line),
            })
            .collect(),
        rules: findings.iter().map(rule).collect(),
        default_file: org_file.map(|l| relative(&l.file)),
        full_command,
        passed_noun: ("finding id found nothing", "finding ids found nothing"),
    };
    r.sort();
    r
}
