//! `orgaccess advise`: the least-privilege advisor (core `advice::review`)
//! over manifests or the cluster, as a table or JSON/YAML, with an exit code
//! by severity for CI.

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;

use super::output::{OutputFormat, Style, Styles, Table, cell, styled};
use super::source::{self, SourceArgs, Subject};
use super::{ClusterArgs, EXIT_FINDINGS, EXIT_OK, emit, fail};
use crate::core::advice::{Finding, Settings, Severity, review};
use crate::core::effective::resolve_grantees;

#[derive(Args, Clone, Debug)]
pub struct AdviseArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Exit 1 when a finding is at least this severe: info, warning or critical.
    #[arg(long, value_name = "SEVERITY", default_value = "critical", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Members holding Groups Edit before it is a finding.
    #[arg(long, default_value_t = Settings::default().groups_edit_max)]
    pub groups_edit_max: usize,
    /// Active members of Administrators before it is a finding.
    #[arg(long, default_value_t = Settings::default().administrators_max)]
    pub administrators_max: usize,
    /// Switch a finding off by id (repeat for several).
    #[arg(long = "disable", value_name = "ID")]
    pub disabled: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
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
    let settings = Settings {
        groups_edit_max: args.groups_edit_max,
        administrators_max: args.administrators_max,
        disabled: args.disabled.iter().cloned().collect(),
        ..Settings::default()
    };
    let findings = review(
        &org.state,
        &resolve_grantees(&org.state),
        &settings,
        Timestamp::now(),
    );
    let report = Report {
        namespace: &org.namespace,
        findings: &findings,
    };
    emit(
        &args
            .output
            .render(&report, || human(&org.namespace, &findings)),
    );
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
