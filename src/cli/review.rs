//! `orgaccess review`: the access reviews of an organization (core
//! `review::review_state`, the one computation the Group's status and the
//! operator's metrics make too) over manifests or the cluster, and the
//! AccessReview object an owner records for a group
//! (docs/access-reviews.md).
//!
//! - `orgaccess review`: the groups whose review is due or overdue (`--all`:
//!   every group with a cadence), with their owners, last review, due date,
//!   and the members the last review did not confirm (and, when the
//!   Organization suspends, whose membership is suspended now). Exit 1 when
//!   one is at least as late as `--fail-on`.
//! - `orgaccess review GROUP --confirm NAME… | --confirm-all | --drop NAME… | --confirm-none`:
//!   prints the AccessReview to apply (`kubectl create -f -`). Admission
//!   judges it like any change: the requester must own the group and hold
//!   Edit on it.

use std::collections::BTreeSet;

use clap::{Args, ValueEnum};
use jiff::Timestamp;
use kube::api::ObjectMeta;
use serde::Serialize;

use super::output::{OutputFormat, Style, Styles, Table, cell, styled};
use super::source::{self, SourceArgs, Subject};
use super::{ClusterArgs, EXIT_FINDINGS, EXIT_OK, emit, fail};
use crate::api::{AccessReview, AccessReviewSpec};
use crate::core::effective::membership_in;
use crate::core::model::{GroupDef, OrgState};
use crate::core::review::{Standing, confirms, membership_suspended, review_state};

#[derive(Args, Clone, Debug)]
pub struct ReviewArgs {
    /// Write the AccessReview for this group instead of listing reviews.
    pub group: Option<String>,
    /// With GROUP: a member whose membership the review confirms
    /// (repeatable, or comma-separated).
    #[arg(long, value_name = "MEMBER", value_delimiter = ',', requires = "group")]
    pub confirm: Vec<String>,
    /// With GROUP: confirm every current member of the group.
    #[arg(long, requires = "group", conflicts_with_all = ["confirm", "drop"])]
    pub confirm_all: bool,
    /// With GROUP: confirm every current member but these (repeatable, or
    /// comma-separated).
    #[arg(
        long,
        value_name = "MEMBER",
        value_delimiter = ',',
        requires = "group",
        conflicts_with = "confirm"
    )]
    pub drop: Vec<String>,
    /// With GROUP: confirm nobody (every membership lapses when the next
    /// review is overdue and the Organization suspends).
    #[arg(long, requires = "group", conflicts_with_all = ["confirm", "drop", "confirm_all"])]
    pub confirm_none: bool,
    /// With GROUP: why, for the audit trail (`spec.note`).
    #[arg(long, requires = "group")]
    pub note: Option<String>,
    /// List every group with a review cadence, not only those due or overdue.
    #[arg(long, conflicts_with = "group")]
    pub all: bool,
    /// Exit 1 when a review is at least this late: due or overdue.
    #[arg(long, value_enum, conflicts_with = "group")]
    pub fail_on: Option<Lateness>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format: a table (human), JSON or YAML; with GROUP, the
    /// manifest as YAML (human, yaml) or JSON.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// How late a review is, for `--fail-on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lateness {
    Due,
    Overdue,
}

/// One group's reviews, as listed.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupReview {
    pub group: String,
    pub owners: Vec<String>,
    pub review_every: String,
    /// `Current`, `Due` or `Overdue`.
    pub standing: &'static str,
    /// The AccessReview that counts as the last, and when it was recorded.
    pub last_review: Option<String>,
    pub last_reviewed_at: Option<Timestamp>,
    pub next_due: Option<Timestamp>,
    pub overdue_at: Option<Timestamp>,
    /// The group's members (by either route).
    pub members: Vec<String>,
    /// Members the last review did not confirm.
    pub unconfirmed: Vec<String>,
    /// Members whose membership is suspended now (the Organization says
    /// Suspend and the review is overdue).
    pub suspended: Vec<String>,
}

#[derive(Serialize)]
struct Listing<'a> {
    namespace: &'a str,
    at: Timestamp,
    reviews: &'a [GroupReview],
}

fn standing(s: Standing) -> &'static str {
    match s {
        Standing::Current => "Current",
        Standing::Due => "Due",
        Standing::Overdue => "Overdue",
    }
}

/// The members of `g` by either route, sorted.
fn members_of(state: &OrgState, g: &GroupDef) -> Vec<String> {
    state
        .members
        .values()
        .filter(|m| membership_in(state, m, &g.name).is_some())
        .map(|m| m.name.clone())
        .collect()
}

/// Every group with a cadence, with its review state at `now`.
pub fn reviews(state: &OrgState, now: Timestamp) -> Vec<GroupReview> {
    state
        .groups
        .values()
        .filter_map(|g| {
            let rs = review_state(state, g, now)?;
            let members = members_of(state, g);
            let is = |name: &str, f: &dyn Fn(&crate::core::model::MemberDef) -> bool| {
                state.members.get(name).is_some_and(|m| f(m))
            };
            let unconfirmed = members
                .iter()
                .filter(|n| !is(n, &|m| rs.last.is_some_and(|r| confirms(r, m, now))))
                .cloned()
                .collect();
            let suspended = members
                .iter()
                .filter(|n| is(n, &|m| membership_suspended(state, m, &g.name, now)))
                .cloned()
                .collect();
            Some(GroupReview {
                group: g.name.clone(),
                owners: g.owners.clone(),
                review_every: g.review_every.clone().unwrap_or_default(),
                standing: standing(rs.standing),
                last_review: rs.last.map(|r| r.name.clone()),
                last_reviewed_at: rs.last_at,
                next_due: rs.next_due,
                overdue_at: rs.overdue_at,
                members,
                unconfirmed,
                suspended,
            })
        })
        .collect()
}

pub async fn run(args: ReviewArgs, cluster: &ClusterArgs) -> i32 {
    let subject = match &args.group {
        Some(g) => Subject::Group(g),
        None => Subject::Any,
    };
    let org = match source::organization(&args.source, cluster, subject).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let now = Timestamp::now();
    match &args.group {
        Some(group) => match record(&org, group, &args, now) {
            Ok(r) => {
                emit(&args.output.document(&r, OutputFormat::Yaml));
                EXIT_OK
            }
            Err(e) => fail(&e),
        },
        None => list(&org, &args, now),
    }
}

fn list(org: &source::Org, args: &ReviewArgs, now: Timestamp) -> i32 {
    let all = reviews(&org.state, now);
    let shown: Vec<GroupReview> = all
        .into_iter()
        .filter(|r| args.all || r.standing != "Current")
        .collect();
    let listing = Listing {
        namespace: &org.namespace,
        at: now,
        reviews: &shown,
    };
    emit(
        &args
            .output
            .render(&listing, || human(org, &shown, args.all)),
    );
    let late = |r: &GroupReview| match args.fail_on {
        Some(Lateness::Due) => r.standing != "Current",
        Some(Lateness::Overdue) => r.standing == "Overdue",
        None => false,
    };
    if shown.iter().any(late) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

fn human(org: &source::Org, shown: &[GroupReview], all: bool) -> String {
    let s = Styles::stdout();
    if shown.is_empty() {
        let what = if all {
            "no group declares a review cadence"
        } else {
            "no review is due or overdue"
        };
        return format!("{what} in namespace {}\n", org.namespace);
    }
    let mut t = Table::new(&[
        "GROUP",
        "STANDING",
        "NEXT DUE",
        "LAST REVIEW",
        "OWNERS",
        "UNCONFIRMED",
        "SUSPENDED",
    ]);
    let or_dash = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    for r in shown {
        t.row(vec![
            styled(r.group.clone(), Style::Bold),
            match r.standing {
                "Overdue" => styled(r.standing.to_string(), Style::Error),
                other => cell(other),
            },
            cell(r.next_due.map_or("-".into(), |t| t.to_string())),
            cell(match (&r.last_review, r.last_reviewed_at) {
                (Some(n), Some(at)) => format!("{n} ({at})"),
                _ => "never".into(),
            }),
            cell(or_dash(&r.owners)),
            cell(or_dash(&r.unconfirmed)),
            cell(or_dash(&r.suspended)),
        ]);
    }
    format!(
        "Access reviews in namespace {} ({}):\n{}",
        org.namespace,
        if all {
            "every group with a cadence"
        } else {
            "due or overdue"
        },
        t.render(s)
    )
}

/// The AccessReview of `group` that `args` asks for: confirmed names are
/// the group's members (a name that is not one is an error, as admission
/// would refuse it).
pub fn record(
    org: &source::Org,
    group: &str,
    args: &ReviewArgs,
    now: Timestamp,
) -> anyhow::Result<AccessReview> {
    let g = org
        .state
        .groups
        .get(group)
        .ok_or_else(|| anyhow::anyhow!("no Group '{group}' in namespace {}", org.namespace))?;
    let members: BTreeSet<String> = members_of(&org.state, g).into_iter().collect();
    let named: BTreeSet<&String> = args.confirm.iter().chain(&args.drop).collect();
    let strangers: Vec<&str> = named
        .iter()
        .filter(|n| !members.contains(n.as_str()))
        .map(|n| n.as_str())
        .collect();
    if !strangers.is_empty() {
        anyhow::bail!(
            "not members of group {group}: {} (its members: {})",
            strangers.join(", "),
            members.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let confirmed: Vec<String> = if args.confirm_all {
        members.into_iter().collect()
    } else if !args.drop.is_empty() {
        members
            .into_iter()
            .filter(|m| !args.drop.contains(m))
            .collect()
    } else if !args.confirm.is_empty() {
        let set: BTreeSet<String> = args.confirm.iter().cloned().collect();
        set.into_iter().collect()
    } else if args.confirm_none {
        Vec::new()
    } else {
        anyhow::bail!(
            "say whom the review confirms: --confirm MEMBER…, --confirm-all, --drop MEMBER… or --confirm-none"
        );
    };
    let stamp = now.strftime("%Y%m%d-%H%M%S").to_string();
    let mut name = format!("{group}-review-{stamp}");
    if name.len() > 253 {
        name = format!("{}-review-{stamp}", &group[..253 - 8 - stamp.len()]);
    }
    Ok(AccessReview {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(org.namespace.clone()),
            ..ObjectMeta::default()
        },
        spec: AccessReviewSpec {
            group: group.to_string(),
            confirmed,
            note: args.note.clone(),
        },
        status: None,
    })
}
