//! `orgaccess explain member|apikey|group NAME`: effective privileges and where
//! each comes from, computed by the same code as the controller's status.

use clap::{Args, Subcommand};
use jiff::Timestamp;
use serde::Serialize;
use std::sync::Arc;

use super::output::OutputFormat;
use super::output::{Styles, Table, cell, styled};
use super::source::{self, Org, SourceArgs, Subject};
use super::{ClusterArgs, EXIT_OK, emit, fail};
use crate::core::catalog::{self, Create, Service};
use crate::core::effective::{
    ConsoleAccess, Grantee, Grantees, MemberPhase, Via, console_access, grantee_provenance,
    group_members, member_effective, resolve_grantees,
};
use crate::core::model::{AccessEntry, MemberIdentity, OrgState};
use crate::core::privilege::{Abilities, AccessLevel, PrivilegeSet, PrivilegeSpec, ResourceAccess};

#[derive(Subcommand, Clone, Debug)]
pub enum ExplainCommand {
    /// A member's effective privileges: the merge of their active groups'.
    Member(ExplainArgs),
    /// An API key's privileges: its template, its own privileges and what
    /// other objects' access lists give it.
    #[command(name = "apikey", alias = "api-key")]
    ApiKey(ExplainArgs),
    /// A group's privileges (what each of its members gets from it).
    Group(ExplainArgs),
}

#[derive(Args, Clone, Debug)]
pub struct ExplainArgs {
    /// Object name (metadata.name).
    pub name: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format: a table (human) or JSON.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// One effective privilege and its provenance.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub service: Service,
    pub domain: String,
    pub level: AccessLevel,
    /// Holds Can Create; null where the domain has nothing to create.
    pub can_create: Option<bool>,
    /// Per-resource levels of a Custom privilege (`*` is every resource).
    pub resources: Vec<ResourceAccess>,
    pub granted_by: Vec<String>,
}

fn row(set: &PrivilegeSet, spec: PrivilegeSpec, granted_by: Vec<String>) -> Row {
    let can_create = catalog::lookup(spec.service, &spec.domain).and_then(|d| {
        (catalog::domain(d).offers.create != Create::No).then(|| {
            set.get(d)
                .is_some_and(|g| g.abilities.contains(Abilities::CREATE))
        })
    });
    Row {
        service: spec.service,
        domain: spec.domain,
        level: spec.level,
        can_create,
        resources: spec.resources,
        granted_by,
    }
}

fn level_text(l: AccessLevel) -> String {
    format!("{l:?}")
}

fn resources_text(r: &[ResourceAccess]) -> String {
    if r.is_empty() {
        return "-".into();
    }
    r.iter()
        .map(|r| {
            let name = if r.name == "*" {
                "all"
            } else {
                r.name.as_str()
            };
            format!("{name} {:?}", r.level)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The privileges table shared by every explain.
pub fn privileges_table(rows: &[Row], styles: Styles) -> String {
    let mut t = Table::new(&[
        "SERVICE/DOMAIN",
        "LEVEL",
        "CAN CREATE",
        "RESOURCES",
        "GRANTED BY",
    ]);
    for r in rows {
        t.row(vec![
            cell(format!("{}/{}", r.service, r.domain)),
            cell(level_text(r.level)),
            cell(match r.can_create {
                None => "-",
                Some(true) => "yes",
                Some(false) => "no",
            }),
            cell(resources_text(&r.resources)),
            styled(
                if r.granted_by.is_empty() {
                    "-".to_string()
                } else {
                    r.granted_by.join(", ")
                },
                super::output::Style::Dim,
            ),
        ]);
    }
    t.render(styles)
}

fn header(lines: &[(&str, String)], styles: Styles) -> String {
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    lines
        .iter()
        .map(|(k, v)| {
            let key = format!("{k}:");
            format!(
                "{}{} {v}\n",
                styles.bold(&key),
                " ".repeat(width - key.len())
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Member
// ---------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipJson {
    pub group: String,
    pub via: Via,
    pub active: bool,
    /// The group exists in the organization.
    pub exists: bool,
    /// When the membership ends (`spec.until`, `spec.groupUntil`), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// The membership has ended: it grants nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ended: bool,
    /// The group's access review is overdue, the Organization suspends, and
    /// the last review did not confirm this member: it grants nothing
    /// (docs/access-reviews.md).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suspended: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberJson {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub identity: MemberIdentity,
    pub phase: MemberPhase,
    pub invitation_expires_at: Option<String>,
    pub groups: Vec<MembershipJson>,
    /// Can open the administration console (holds Organization/Organization: View).
    pub console_access: ConsoleAccessJson,
    pub privileges: Vec<Row>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleAccessJson {
    pub allowed: bool,
    pub reason: &'static str,
    pub message: &'static str,
}

/// What `orgaccess explain member NAME` reports (its JSON form).
pub fn explain_member(org: &Org, name: &str, grantees: &Grantees, now: Timestamp) -> MemberJson {
    let state = &org.state;
    let m = &state.members[name];
    let eff = member_effective(state, grantees, m, now);
    let console = console_access(&eff);
    let privileges = eff
        .provenance(grantees)
        .into_iter()
        .map(|(spec, from)| row(&eff.privileges, spec, from))
        .collect();
    MemberJson {
        kind: "Member",
        namespace: org.namespace.clone(),
        name: name.to_string(),
        identity: m.identity.clone(),
        phase: eff.phase,
        invitation_expires_at: eff.invitation_expires_at.map(|t| t.to_string()),
        groups: eff
            .memberships
            .iter()
            .map(|ms| MembershipJson {
                group: ms.group.clone(),
                via: ms.via,
                active: ms.active,
                exists: state.groups.contains_key(&ms.group),
                ends_at: ms.ends_at.map(|t| t.to_string()),
                ended: ms.ended,
                suspended: ms.suspended,
            })
            .collect(),
        console_access: ConsoleAccessJson {
            allowed: console == ConsoleAccess::Granted,
            reason: console.reason(),
            message: console.message(),
        },
        privileges,
    }
}

fn member_human(j: &MemberJson, s: Styles) -> String {
    let groups: Vec<String> = j
        .groups
        .iter()
        .map(|g| {
            let via = match g.via {
                Via::Invitation => "invitation",
                Via::IdentitySet => "identity set",
            };
            let state = if !g.exists {
                ", no such group"
            } else if g.ended {
                ", ended"
            } else if g.suspended {
                ", suspended: its access review is overdue and did not confirm this member"
            } else if !g.active {
                ", inactive"
            } else {
                ""
            };
            let end = match (&g.ends_at, g.ended) {
                (Some(at), true) => format!(" at {at}"),
                (Some(at), false) => format!(", ends {at}"),
                (None, _) => String::new(),
            };
            format!("{} ({via}{state}{end})", g.group)
        })
        .collect();
    let phase = match (j.phase, &j.invitation_expires_at) {
        (MemberPhase::Active, _) => s.ok("Active"),
        (MemberPhase::Pending, Some(at)) => {
            format!(
                "{} (invitation not accepted; expires {at})",
                s.warn("Pending")
            )
        }
        (MemberPhase::Pending, None) => {
            format!("{} (invitation not accepted)", s.warn("Pending"))
        }
        (MemberPhase::Expired, at) => format!(
            "{} (invitation expired{})",
            s.error("Expired"),
            at.as_ref().map(|a| format!(" {a}")).unwrap_or_default()
        ),
    };
    let mut out = header(
        &[
            ("Member", format!("{}/{}", j.namespace, j.name)),
            (
                "Identity",
                format!("{} ({:?})", j.identity.username, j.identity.provider),
            ),
            ("Phase", phase),
            (
                "Console",
                if j.console_access.allowed {
                    s.ok("yes")
                } else if j.phase == MemberPhase::Active {
                    format!(
                        "{} (no group grants Organization/Organization: View, the minimum privilege to open the administration console; the privileges below still apply)",
                        s.warn("no")
                    )
                } else {
                    format!("{} (not an active member)", s.warn("no"))
                },
            ),
            (
                "Groups",
                if groups.is_empty() {
                    "-".into()
                } else {
                    groups.join(", ")
                },
            ),
        ],
        s,
    );
    out.push('\n');
    if j.privileges.is_empty() {
        out.push_str("No effective privileges");
        out.push_str(match j.phase {
            MemberPhase::Active => ": no active group grants any.\n",
            _ => ": only an accepted invitation (or an identity set) gives privileges.\n",
        });
    } else {
        out.push_str(&privileges_table(&j.privileges, s));
    }
    out
}

// ---------------------------------------------------------------------------
// API keys and groups: template, own privileges, access lists
// ---------------------------------------------------------------------------

/// Where each domain of a grantee's privileges comes from (core
/// [`grantee_provenance`], the same causes `orgaccess diff` names).
fn grantee_rows(
    state: &OrgState,
    grantee: Grantee,
    template: Option<(String, PrivilegeSet)>,
    explicit: &[PrivilegeSpec],
    effective: &PrivilegeSet,
) -> Vec<Row> {
    grantee_provenance(state, &grantee, template.as_ref(), explicit, effective)
        .into_iter()
        .map(|(spec, from)| row(effective, spec, from))
        .collect()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyJson {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub display_name: Option<String>,
    pub template: Option<String>,
    pub enabled: bool,
    /// Active, Disabled or Expired: the key's standing now (core
    /// `apikey::Standing`, the same as its status before the Secret is read).
    pub phase: String,
    /// When the key expires (from its creation; absent for a manifest not applied yet).
    pub expires_at: Option<String>,
    pub lifetime: Option<String>,
    /// The lifetime that applies: `lifetime` capped by the template, the cap when absent.
    pub lifetime_days: i64,
    pub allowed_ips: Vec<String>,
    pub denied_ips: Vec<String>,
    /// The search hub the key's queries are bound to (`spec.searchHub`);
    /// absent: any hub.
    pub search_hub: Option<String>,
    /// When the decision service last verified the key (`status.lastUsedAt`,
    /// coarse); absent when no use was recorded.
    pub last_used_at: Option<String>,
    pub privileges: Vec<Row>,
}

/// What `orgaccess explain apikey NAME` reports (its JSON form).
pub fn explain_api_key(org: &Org, name: &str, grantees: &Grantees, now: Timestamp) -> ApiKeyJson {
    let k = &org.state.api_keys[name];
    let standing = crate::core::apikey::Standing::of(k, now);
    let effective = grantees.api_keys.get(name).cloned().unwrap_or_default();
    let template = k.template.map(|t| (format!("{t:?}"), t.privileges()));
    ApiKeyJson {
        kind: "ApiKey",
        namespace: org.namespace.clone(),
        name: name.to_string(),
        display_name: k.display_name.clone(),
        template: k.template.map(|t| format!("{t:?}")),
        enabled: k.enabled,
        phase: format!("{:?}", standing.phase()),
        expires_at: k.created.map(|_| standing.expires.to_string()),
        lifetime: k.lifetime.clone(),
        lifetime_days: standing.lifetime_days,
        allowed_ips: k.allowed_ips.clone(),
        denied_ips: k.denied_ips.clone(),
        search_hub: k.search_hub.clone(),
        last_used_at: org.key_last_used.get(name).map(|t| t.to_string()),
        privileges: grantee_rows(
            &org.state,
            Grantee::ApiKey(name.to_string()),
            template,
            &k.privileges,
            &effective,
        ),
    }
}

fn list_or_dash(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn api_key_human(j: &ApiKeyJson, s: Styles) -> String {
    let mut out = header(
        &[
            ("ApiKey", format!("{}/{}", j.namespace, j.name)),
            (
                "Display name",
                j.display_name.clone().unwrap_or_else(|| "-".into()),
            ),
            ("Template", j.template.clone().unwrap_or_else(|| "-".into())),
            (
                "Enabled",
                if j.enabled {
                    s.ok("yes")
                } else {
                    s.error("no (the key is refused)")
                },
            ),
            (
                "Phase",
                // The expiry instant is in the JSON (`expiresAt`); the table
                // reads the same from manifests and from the cluster.
                match j.phase.as_str() {
                    "Active" => s.ok("Active"),
                    "Expired" => s.error("Expired (the key is refused; create a new key)"),
                    other => s.error(&format!("{other} (the key is refused)")),
                },
            ),
            (
                "Lifetime",
                match &j.lifetime {
                    Some(l) => format!("{l} ({} days from creation)", j.lifetime_days),
                    None => format!(
                        "none set: the template's cap, {} days from creation",
                        j.lifetime_days
                    ),
                },
            ),
            ("Allowed IPs", list_or_dash(&j.allowed_ips)),
            ("Denied IPs", list_or_dash(&j.denied_ips)),
            (
                "Search hub",
                // Enforced by the gateway, from the decision service's answer.
                j.search_hub
                    .clone()
                    .unwrap_or_else(|| "- (any search hub)".into()),
            ),
            (
                "Last used",
                // Recorded by the decision service when it verifies the key.
                j.last_used_at
                    .clone()
                    .unwrap_or_else(|| "not recorded".into()),
            ),
        ],
        s,
    );
    out.push('\n');
    if j.privileges.is_empty() {
        out.push_str("No privileges.\n");
    } else {
        out.push_str(&privileges_table(&j.privileges, s));
    }
    out
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupJson {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub display_name: String,
    pub built_in: Option<String>,
    pub template: Option<String>,
    pub duplicate_of: Option<String>,
    /// Active members (by invitation or identity set).
    pub members: Vec<String>,
    pub access: Vec<AccessEntry>,
    pub privileges: Vec<Row>,
}

/// What `orgaccess explain group NAME` reports (its JSON form).
pub fn explain_group(org: &Org, name: &str, grantees: &Grantees, now: Timestamp) -> GroupJson {
    let state = &org.state;
    let g = &state.groups[name];
    let effective = grantees.groups.get(name).cloned().unwrap_or_default();
    let template = g.template.map(|t| (format!("{t:?}"), t.privileges()));
    // The Group status's own definition of its members (core).
    let (members, _) = group_members(
        state,
        grantees,
        state.members.values().map(Arc::as_ref),
        name,
        now,
    );
    GroupJson {
        kind: "Group",
        namespace: org.namespace.clone(),
        name: name.to_string(),
        display_name: state.group_display_name(g),
        built_in: g.builtin.map(|b| format!("{b:?}")),
        template: g.template.map(|t| format!("{t:?}")),
        duplicate_of: g.duplicate_of.clone(),
        members,
        access: g.access.clone(),
        privileges: grantee_rows(
            state,
            Grantee::Group(name.to_string()),
            template,
            &g.privileges,
            &effective,
        ),
    }
}

fn group_human(j: &GroupJson, s: Styles) -> String {
    let access: Vec<String> = j
        .access
        .iter()
        .map(|e| match (&e.group, &e.api_key) {
            (Some(g), _) => format!("Group {g} {:?}", e.level),
            (None, Some(k)) => format!("ApiKey {k} {:?}", e.level),
            (None, None) => "(invalid entry)".into(),
        })
        .collect();
    let mut out = header(
        &[
            ("Group", format!("{}/{}", j.namespace, j.name)),
            ("Display name", j.display_name.clone()),
            ("Built-in", j.built_in.clone().unwrap_or_else(|| "-".into())),
            ("Template", j.template.clone().unwrap_or_else(|| "-".into())),
            (
                "Duplicate of",
                j.duplicate_of.clone().unwrap_or_else(|| "-".into()),
            ),
            ("Members", list_or_dash(&j.members)),
            ("Access", list_or_dash(&access)),
        ],
        s,
    );
    out.push('\n');
    if j.privileges.is_empty() {
        out.push_str("No privileges.\n");
    } else {
        out.push_str(&privileges_table(&j.privileges, s));
    }
    out
}

pub async fn run(cmd: ExplainCommand, cluster: &ClusterArgs) -> i32 {
    let (args, subject) = match &cmd {
        ExplainCommand::Member(a) => (a, Subject::Member(&a.name)),
        ExplainCommand::ApiKey(a) => (a, Subject::ApiKey(&a.name)),
        ExplainCommand::Group(a) => (a, Subject::Group(&a.name)),
    };
    let org = match source::organization(&args.source, cluster, subject).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let now = Timestamp::now();
    let styles = Styles::stdout();
    let grantees = resolve_grantees(&org.state);
    let out = args.output;
    let text = match &cmd {
        ExplainCommand::Member(_) => {
            let j = explain_member(&org, &args.name, &grantees, now);
            out.render(&j, || member_human(&j, styles))
        }
        ExplainCommand::ApiKey(_) => {
            let j = explain_api_key(&org, &args.name, &grantees, now);
            out.render(&j, || api_key_human(&j, styles))
        }
        ExplainCommand::Group(_) => {
            let j = explain_group(&org, &args.name, &grantees, now);
            out.render(&j, || group_human(&j, styles))
        }
    };
    emit(&text);
    EXIT_OK
}
