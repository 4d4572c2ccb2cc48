//! `orgaccess can-i VERB SERVICE/DOMAIN[/RESOURCE] --member NAME | --api-key
//! NAME | --as USER`: one decision (core `decision::check`), shaped like
//! `kubectl auth can-i`: `yes` or `no` and exit 0 or 1, with what grants it,
//! what is missing and why. From manifests (`-f`) or the cluster, like
//! `who-can`, which lists everyone this answers yes for.

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;

use super::output::OutputFormat;
use super::source::{self, SourceArgs, Subject};
use super::who_can::{Verb, need, parse_verb};
use super::{ClusterArgs, EXIT_FINDINGS, EXIT_OK, emit, fail};
use crate::core::decision::{Answer, Principal, check};
use crate::core::effective::resolve_grantees;

#[derive(Args, Clone, Debug)]
#[command(group(clap::ArgGroup::new("principal").required(true).args(["member", "api_key", "as_user"])))]
pub struct CanIArgs {
    /// What to do: view, edit, create, allowed or push.
    #[arg(value_parser = parse_verb)]
    pub verb: Verb,
    /// SERVICE/DOMAIN or SERVICE/DOMAIN/RESOURCE, e.g. Content/Sources/jira.
    pub target: String,
    /// Ask for this Member (object name).
    #[arg(long)]
    pub member: Option<String>,
    /// Ask for this ApiKey (object name).
    #[arg(long = "api-key")]
    pub api_key: Option<String>,
    /// Ask for this Kubernetes user, mapped to Members as admission maps it.
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
    /// A group of the Kubernetes user (repeat for several).
    #[arg(long = "as-group", value_name = "GROUP", requires = "as_user")]
    pub as_groups: Vec<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// The answer as `-o json|yaml` prints it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    namespace: &'a str,
    verb: &'static str,
    target: &'a str,
    #[serde(flatten)]
    answer: &'a Answer,
}

pub async fn run(args: CanIArgs, cluster: &ClusterArgs) -> i32 {
    let need = match need(args.verb, &args.target) {
        Ok(n) => n,
        Err(e) => return fail(&e),
    };
    let org = match source::organization(&args.source, cluster, Subject::Any).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let principal = match (&args.member, &args.api_key, &args.as_user) {
        (Some(m), _, _) => Principal::Member(m),
        (_, Some(k), _) => Principal::ApiKey(k),
        (_, _, Some(user)) => Principal::Identity {
            user,
            groups: &args.as_groups,
        },
        _ => unreachable!("clap requires one principal"),
    };
    let grantees = resolve_grantees(&org.state);
    let answer = check(&org.state, &grantees, principal, &need, Timestamp::now());
    let report = Report {
        namespace: &org.namespace,
        verb: args.verb.as_str(),
        target: &args.target,
        answer: &answer,
    };
    emit(&args.output.render(&report, || human(&answer)));
    if answer.allowed {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }
}

fn human(a: &Answer) -> String {
    if a.allowed {
        return format!("yes (through {})\n", a.granted_by.join(", "));
    }
    let mut out = String::from("no");
    if let Some(why) = &a.reason {
        out.push_str(&format!(": {why}"));
    } else if !a.missing.is_empty() {
        let missing: Vec<String> = a.missing.iter().map(|p| p.to_string()).collect();
        out.push_str(&format!(": missing {}", missing.join(", ")));
    }
    out.push('\n');
    out
}
