//! `orgaccess who-can VERB SERVICE/DOMAIN[/RESOURCE]`: the active members and
//! live API keys (enabled, not expired: core `apikey::Standing`, as the
//! key's status says) whose effective privileges cover the action, and
//! through which groups (or which of the key's own grants).

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;

use super::output::OutputFormat;
use super::output::{Style, Styles, Table, cell, styled};
use super::source::{self, SourceArgs, Subject};
use super::{ClusterArgs, EXIT_OK, emit, fail};
pub use crate::core::decision::{Need, Verb};
use crate::core::decision::{Principal, check};
use crate::core::effective::resolve_grantees;

/// Parses a verb for clap (core's [`Verb`], any case).
pub fn parse_verb(s: &str) -> Result<Verb, String> {
    s.parse()
}

#[derive(Args, Clone, Debug)]
pub struct WhoCanArgs {
    /// What to do: view, edit, create, allowed or push.
    #[arg(value_parser = parse_verb)]
    pub verb: Verb,
    /// SERVICE/DOMAIN or SERVICE/DOMAIN/RESOURCE, e.g. Content/Sources/jira
    /// (`orgaccess catalog` lists the domains).
    pub target: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format: a table (human) or JSON.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// The privileges `verb` needs on `target` (core [`Need::parse`]).
pub fn need(verb: Verb, target: &str) -> anyhow::Result<Need> {
    Need::parse(verb, target).map_err(anyhow::Error::msg)
}

/// One member or API key that can.
#[derive(Clone, Debug, Serialize)]
pub struct Holder {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The member's username, or the key's display name.
    pub identity: String,
    /// The groups (for a member) or the key's grants (own privileges, access
    /// lists) that give it.
    pub through: Vec<String>,
}

/// Everyone [`check`] allows: who-can is a listing of can-i answers, so
/// the two can never disagree.
pub fn holders(org: &source::Org, need: &Need, now: Timestamp) -> Vec<Holder> {
    let state = &org.state;
    let grantees = resolve_grantees(state);
    let members = state.members.values().map(|m| {
        let answer = check(state, &grantees, Principal::Member(&m.name), need, now);
        ("Member", &m.name, m.identity.username.clone(), answer)
    });
    let keys = state.api_keys.values().map(|k| {
        let answer = check(state, &grantees, Principal::ApiKey(&k.name), need, now);
        (
            "ApiKey",
            &k.name,
            k.display_name.clone().unwrap_or_default(),
            answer,
        )
    });
    let mut out: Vec<Holder> = members
        .chain(keys)
        .filter(|(.., answer)| answer.allowed)
        .map(|(kind, name, identity, answer)| Holder {
            kind,
            namespace: org.namespace.clone(),
            name: name.clone(),
            identity,
            through: answer.granted_by,
        })
        .collect();
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    out
}

pub async fn run(args: WhoCanArgs, cluster: &ClusterArgs) -> i32 {
    let need = match need(args.verb, &args.target) {
        Ok(n) => n,
        Err(e) => return fail(&e),
    };
    let org = match source::organization(&args.source, cluster, Subject::Any).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let list = holders(&org, &need, Timestamp::now());
    let text = args.output.render(&list, || {
        let s = Styles::stdout();
        let d = crate::core::catalog::domain(need.domain);
        let target = match &need.resource {
            Some(r) => format!("{}/{}/{r}", d.service, d.name),
            None => format!("{}/{}", d.service, d.name),
        };
        let verb = args.verb.as_str();
        let mut out = format!(
            "{} {verb} {target} in namespace {}:\n",
            s.bold("Who can"),
            org.namespace
        );
        if list.is_empty() {
            out.push_str("nobody (no active member or live API key)\n");
        } else {
            let mut t = Table::new(&["KIND", "NAME", "IDENTITY", "THROUGH"]);
            for h in &list {
                t.row(vec![
                    cell(h.kind),
                    styled(h.name.clone(), Style::Bold),
                    cell(if h.identity.is_empty() {
                        "-".into()
                    } else {
                        h.identity.clone()
                    }),
                    cell(h.through.join(", ")),
                ]);
            }
            out.push_str(&t.render(s));
        }
        out
    });
    emit(&text);
    EXIT_OK
}
