//! `orgaccess advise`: the least-privilege advisor (core `advice::review`)
//! over manifests or the cluster, as a table or JSON/YAML, with an exit code
//! by severity for CI.

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;

use super::output::{Style, Styles, Table, cell, styled};
use super::report::{self, ReportFormat};
use super::source::{self, SourceArgs, Subject};
use super::{ClusterArgs, EXIT_FINDINGS, EXIT_OK, emit, fail};
use crate::core::advice::{Finding, Severity, review, unused_keys};
use crate::core::effective::resolve_grantees;

#[derive(Args, Clone, Debug)]
pub struct AdviseArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Exit 1 when a finding is at least this severe: info, warning or critical.
    #[arg(long, value_name = "SEVERITY", default_value = "critical", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Members holding Groups Edit before it is a finding (default: the
    /// Organization's spec.advice.groupsEditMaxHolders, else 1).
    #[arg(long)]
    pub groups_edit_max: Option<usize>,
    /// Active members of Administrators before it is a finding (default: the
    /// Organization's spec.advice.administratorsMaxMembers, else 3).
    #[arg(long)]
    pub administrators_max: Option<usize>,
    /// Days within which a membership of an elevated group (Administrators'
    /// privileges, Groups Edit, API keys Edit) should end before it is the
    /// finding `long-lived-elevated-membership` (default: the Organization's
    /// spec.advice.elevatedMembershipMaxDays, else 90).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub elevated_membership_max_days: Option<i64>,
    /// Switch a finding off by id (repeat for several), besides those the
    /// Organization's spec.advice.disabled switches off.
    #[arg(long = "disable", value_name = "ID", value_parser = parse_id)]
    pub disabled: Vec<String>,
    /// Also find live API keys not used for this many days (finding
    /// `key-unused`): their `status.lastUsedAt`, or their creation when
    /// never used, is older. Use records are written by the decision
    /// service, so ask this only where it verifies the keys.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub unused_key_days: Option<i64>,
    /// Output format: for people, scripts, or CI (docs/ci-recipes.md).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: ReportFormat,
}

fn parse_id(s: &str) -> Result<String, String> {
    if crate::core::advice::IDS.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unknown finding '{s}'; one of {}",
            crate::core::advice::IDS.join(", ")
        ))
    }
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

#[derive(Serialize)]
struct Report<'a> {
    namespace: &'a str,
    findings: &'a [Finding],
}

pub async fn run(args: AdviseArgs, cluster: &ClusterArgs) -> i32 {
    let org = match source::organization(&args.source, cluster, Subject::Any).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    // The Organization's settings (the ones the operator uses), then the flags.
    let mut settings = org.state.advice_settings();
    if let Some(n) = args.groups_edit_max {
        settings.groups_edit_max = n;
    }
    if let Some(n) = args.administrators_max {
        settings.administrators_max = n;
    }
    if let Some(n) = args.elevated_membership_max_days {
        settings.elevated_membership_max_days = n;
    }
    settings.disabled.extend(args.disabled.iter().cloned());
    let now = Timestamp::now();
    let mut findings = review(&org.state, &resolve_grantees(&org.state), &settings, now);
    if let Some(days) = args.unused_key_days {
        findings.extend(unused_keys(&org.state, &org.key_last_used, days, now));
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.id.cmp(b.id))
                .then(a.objects.cmp(&b.objects))
        });
    }
    let report = Report {
        namespace: &org.namespace,
        findings: &findings,
    };
    match args.output.plain() {
        Some(format) => emit(&format.render(&report, || human(&org.namespace, &findings))),
        None => {
            let mut checked: Vec<&str> = crate::core::advice::IDS
                .iter()
                .copied()
                .filter(|id| !settings.disabled.iter().any(|d| d == id))
                .collect();
            if args.unused_key_days.is_some() {
                checked.push(crate::core::advice::KEY_UNUSED);
            }
            let full = format!("orgaccess advise -n {} -o json", org.namespace);
            let r = report::advise::report(&org, &findings, args.fail_on, &checked, full);
            emit(&args.output.render(&r).unwrap_or_default());
        }
    }
    if findings.iter().any(|f| f.severity >= args.fail_on) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

fn human(namespace: &str, findings: &[Finding]) -> String {
    let s = Styles::stdout();
    if findings.is_empty() {
        return format!("no findings in namespace {namespace}\n");
    }
    let mut t = Table::new(&["SEVERITY", "ID", "OBJECTS", "FINDING", "FIX"]);
    for f in findings {
        let severity = format!("{:?}", f.severity).to_lowercase();
        t.row(vec![
            match f.severity {
                Severity::Critical => styled(severity, Style::Error),
                _ => cell(severity),
            },
            styled(f.id.to_string(), Style::Bold),
            cell(f.objects.join(", ")),
            cell(f.message.clone()),
            cell(f.fix.clone()),
        ]);
    }
    format!(
        "{} findings in namespace {namespace}:\n{}",
        findings.len(),
        t.render(s)
    )
}
