//! `orgaccess export`: an organization (from manifests or the cluster) in the
//! platform's JSON, the document `orgaccess import` reads
//! (`docs/import-export.md`).
//!
//! Nothing invented is written (docs/import-export.md, "Nothing invented"): a
//! privilege whose `owner/targetDomain` is our inference stops the export
//! unless `--allow-inferred` (then `x-orgaccess-inferred` lists the names;
//! Administrators' are left out with a note), a member with provider
//! AnyListed (no platform value) stops it unless `--allow-incomplete` (then
//! it is left out), and identity sets go under the marked extension
//! `x-orgaccess-identitySets`.
//!
//! Each group's and API key's privileges are written as the platform holds
//! them: the template applied, and the grants other objects' access lists give
//! it included (the platform stores an Access-tab grant as a privilege of the
//! grantee with the object's ID as `targetId`). Accepted members are a group's
//! `members`, pending ones its `invites`. API key values are never written:
//! not the Secret, not its prefix or hash.

use std::collections::BTreeSet;

use clap::Args;
use jiff::Timestamp;
use kube::Api;
use kube::api::ListParams;

use super::output::{OutputFormat, Styles};
use super::source::{self, Org, SourceArgs};
use super::{ClusterArgs, EXIT_FINDINGS, EXIT_OK, emit, emit_err, fail};
use crate::api::ApiKey;
use crate::core::builtin::{ApiKeyTemplate, BuiltinGroup};
use crate::core::effective::{MemberPhase, member_phase, resolve_grantees};
use crate::core::platform::{
    PlatformApiKey, PlatformGroup, PlatformMember, PlatformOrganization, PlatformPrivilege,
    provider_to_platform, to_platform, wire_name_inferred,
};

#[derive(Args, Clone, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The platform's document as JSON (default) or YAML.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Write privileges whose platform name (`owner/targetDomain`) is our
    /// inference, listing those names in the document's
    /// `x-orgaccess-inferred`; without it such privileges stop the export.
    #[arg(long)]
    pub allow_inferred: bool,
    /// Write the document without what the platform cannot hold (members
    /// whose provider is AnyListed); without it they stop the export.
    #[arg(long)]
    pub allow_incomplete: bool,
}

/// What the export may write beyond the platform's documented facts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allow {
    /// Privileges whose `owner/targetDomain` is inferred (then listed in
    /// `x-orgaccess-inferred`).
    pub inferred: bool,
    /// A document without the members the platform cannot hold.
    pub incomplete: bool,
}

/// An export: the document, notes on what the platform cannot hold, and
/// the problems that stop it (nothing is written while there are any).
#[derive(Debug, Default)]
pub struct Exported {
    pub doc: PlatformOrganization,
    pub notes: Vec<String>,
    pub problems: Vec<String>,
}

/// Facts the core views leave out: API key descriptions and expiry dates.
#[derive(Default)]
pub struct KeyExtras {
    pub description: Option<String>,
    pub expiration_date: Option<String>,
}

/// The organization in the platform's format, with notes on what the
/// platform cannot hold and the problems that stop the export (`allow`).
pub fn export(
    org: &Org,
    extras: impl Fn(&str) -> KeyExtras,
    now: Timestamp,
    allow: Allow,
) -> Exported {
    let state = &org.state;
    let grantees = resolve_grantees(state);
    let mut out = Exported::default();
    let mut inferred = BTreeSet::new();
    let lifetime = state.invitation_lifetime_days();
    let mut groups: Vec<PlatformGroup> = Vec::new();
    for g in state.groups.values() {
        let admin = g.builtin == Some(BuiltinGroup::Administrators);
        let privileges = facts_only(
            &format!("group '{}'", g.name),
            to_platform(&grantees.groups[&g.name]),
            allow.inferred,
            admin,
            &mut inferred,
            &mut out,
        );
        groups.push(PlatformGroup {
            id: g.name.clone(),
            display_name: g
                .display_name
                .clone()
                .or_else(|| g.builtin.map(|b| b.display_name().to_string())),
            group_type: admin.then(|| "ADMINISTRATOR".to_string()),
            privileges,
            members: Vec::new(),
            invites: Vec::new(),
            identity_sets: g.identity_sets.clone(),
        });
        if !g.identity_sets.is_empty() {
            out.notes.push(format!(
                "group '{}': its identity sets are written in orgaccess's own shape under x-orgaccess-identitySets (the platform's realms have no documented JSON shape)",
                g.name
            ));
        }
    }
    for m in state.members.values() {
        let Some(provider) = provider_to_platform(m.identity.provider) else {
            let line = format!(
                "member '{}' has provider AnyListed, which the platform's provider enum does not have (EMAIL, GOOGLE, OFFICE365, SALESFORCE, SALESFORCE_SANDBOX, SAML); left out",
                m.name
            );
            if allow.incomplete {
                out.notes.push(line);
            } else {
                out.problems.push(line);
            }
            continue;
        };
        let who = PlatformMember {
            username: m.identity.username.clone(),
            provider: provider.to_string(),
        };
        let (phase, _) = member_phase(m, lifetime, now);
        if phase == MemberPhase::Expired {
            out.notes.push(format!(
                "member '{}': the invitation expired, so it is in no group on the platform; left out",
                m.name
            ));
            continue;
        }
        if m.groups.is_empty() {
            out.notes.push(format!(
                "member '{}' is invited to no group; the platform has no such member; left out",
                m.name
            ));
        }
        for name in &m.groups {
            let Some(g) = groups.iter_mut().find(|g| &g.id == name) else {
                out.notes.push(format!(
                    "member '{}' is invited to group '{name}', which does not exist; left out of it",
                    m.name
                ));
                continue;
            };
            if m.accepted {
                g.members.push(who.clone());
            } else {
                g.invites.push(who.clone());
            }
        }
        if !m.subjects.is_empty() {
            out.notes.push(format!(
                "member '{}': its Kubernetes subjects are orgaccess's own and are not exported",
                m.name
            ));
        }
        if !m.sso_groups.is_empty() || m.salesforce_profile.is_some() {
            out.notes.push(format!(
                "member '{}': its SSO groups and Salesforce profile are not exported (the platform reads them at sign-in)",
                m.name
            ));
        }
    }
    for g in &mut groups {
        g.members.sort();
        g.invites.sort();
    }
    let mut api_keys = Vec::new();
    for k in state.api_keys.values() {
        let extra = extras(&k.name);
        let privileges = facts_only(
            &format!("API key '{}'", k.name),
            to_platform(&grantees.api_keys[&k.name]),
            allow.inferred,
            false,
            &mut inferred,
            &mut out,
        );
        api_keys.push(PlatformApiKey {
            id: k.name.clone(),
            display_name: k.display_name.clone(),
            description: extra.description,
            enabled: k.enabled,
            privileges,
            allowed_ips: k.allowed_ips.clone(),
            denied_ips: k.denied_ips.clone(),
            lifetime_duration: k.lifetime.clone(),
            expiration_date: extra.expiration_date,
            api_key_template_id: k
                .template
                .filter(|t| *t != ApiKeyTemplate::Custom)
                .map(|t| format!("{t:?}")),
        });
    }
    out.doc = PlatformOrganization {
        organization_id: state.org.as_ref().map(|o| o.name.clone()),
        display_name: state.org.as_ref().map(|o| o.display_name.clone()),
        groups,
        api_keys,
        inferred: inferred.into_iter().collect(),
    };
    out
}

/// A holder's items without those whose `owner/targetDomain` is our
/// inference, unless `write_inferred` (then their names go to `inferred`).
/// Administrators' are left out with a note: the platform's Administrators
/// group holds every privilege whatever its list says (seed 001), and import
/// ignores that list. Anyone else's stop the export.
fn facts_only(
    holder: &str,
    items: Vec<PlatformPrivilege>,
    write_inferred: bool,
    administrators: bool,
    inferred: &mut BTreeSet<String>,
    out: &mut Exported,
) -> Vec<PlatformPrivilege> {
    let (guessed, facts): (Vec<_>, Vec<_>) = items.into_iter().partition(wire_name_inferred);
    let names: BTreeSet<String> = guessed
        .iter()
        .map(|p| format!("{}/{}", p.owner, p.target_domain))
        .collect();
    if names.is_empty() {
        return facts;
    }
    let list = names.iter().cloned().collect::<Vec<_>>().join(", ");
    if write_inferred {
        inferred.extend(names);
        let mut all = facts;
        all.extend(guessed);
        all.sort();
        return all;
    }
    if administrators {
        out.notes.push(format!(
            "{holder}: left out {list}: these platform names are our inference (`orgaccess catalog`), and the platform's Administrators hold every privilege anyway"
        ));
    } else {
        out.problems.push(format!(
            "{holder} holds {list}, whose platform names are our inference, not documented (`orgaccess catalog` shows the evidence); --allow-inferred writes them and lists them in x-orgaccess-inferred"
        ));
    }
    facts
}

/// The organization and its ApiKey objects (for their descriptions and expiry
/// dates), from manifests read once (standard input included) or the cluster.
async fn organization(
    src: &SourceArgs,
    cluster: &ClusterArgs,
) -> anyhow::Result<(Org, Vec<ApiKey>)> {
    if src.files.is_empty() {
        let (org, client) = source::from_cluster(cluster).await?;
        let keys = Api::<ApiKey>::namespaced(client, &org.namespace)
            .list(&ListParams::default())
            .await?
            .items;
        return Ok((org, keys));
    }
    let loaded = source::load_for_question(src, cluster)?;
    let mut orgs = source::states(&loaded.manifests, !src.no_builtin_groups);
    let ns = match (&cluster.namespace, orgs.len()) {
        (Some(ns), _) => ns.clone(),
        (None, 1) => orgs.keys().next().cloned().unwrap_or_default(),
        (None, 0) => anyhow::bail!("the manifests hold no orgaccess.dev objects"),
        (None, _) => anyhow::bail!(
            "the manifests hold several namespaces ({}); choose one with --namespace",
            orgs.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    };
    let org = orgs
        .remove(&ns)
        .ok_or_else(|| anyhow::anyhow!("the manifests have no objects in namespace {ns}"))?;
    let keys = super::manifest::api_keys(&loaded.manifests)
        .filter(|k| super::manifest::namespace_of(*k) == ns)
        .cloned()
        .collect();
    Ok((org, keys))
}

pub async fn run(args: ExportArgs, cluster: &ClusterArgs) -> i32 {
    let (org, keys) = match organization(&args.source, cluster).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let extras = |name: &str| {
        let k = keys
            .iter()
            .find(|k| k.metadata.name.as_deref() == Some(name));
        KeyExtras {
            description: k.and_then(|k| k.spec.description.clone()),
            expiration_date: k
                .and_then(|k| k.status.as_ref())
                .and_then(|s| s.expires_at.clone()),
        }
    };
    let allow = Allow {
        inferred: args.allow_inferred,
        incomplete: args.allow_incomplete,
    };
    let exported = export(&org, extras, Timestamp::now(), allow);
    let s = Styles::stderr();
    for n in &exported.notes {
        emit_err(&format!("{}: {n}\n", s.warn("note")));
    }
    for p in &exported.problems {
        emit_err(&format!("{}: {p}\n", s.error("refused")));
    }
    if !exported.problems.is_empty() {
        emit_err(&format!(
            "{}: the document would hold {} fact(s) the platform does not have or we inferred; nothing written\n",
            s.error("error"),
            exported.problems.len()
        ));
        return EXIT_FINDINGS;
    }
    emit(&args.output.document(&exported.doc, OutputFormat::Json));
    EXIT_OK
}
