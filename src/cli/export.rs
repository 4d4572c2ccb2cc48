//! `orgaccess export`: an organization (from manifests or the cluster) in the
//! platform's JSON, the document `orgaccess import` reads
//! (`docs/import-export.md`).
//!
//! Each group's and API key's privileges are written as the platform holds
//! them: the template applied, and the grants other objects' access lists give
//! it included (the platform stores an Access-tab grant as a privilege of the
//! grantee with the object's ID as `targetId`). Accepted members are a group's
//! `members`, pending ones its `invites`. API key values are never written:
//! not the Secret, not its prefix or hash.

use clap::Args;
use jiff::Timestamp;
use kube::Api;
use kube::api::ListParams;

use super::output::{OutputFormat, Styles};
use super::source::{self, Org, SourceArgs};
use super::{ClusterArgs, EXIT_OK, emit, emit_err, fail};
use crate::api::ApiKey;
use crate::core::builtin::{ApiKeyTemplate, BuiltinGroup};
use crate::core::effective::{MemberPhase, member_phase, resolve_grantees};
use crate::core::platform::{
    PlatformApiKey, PlatformGroup, PlatformMember, PlatformOrganization, provider_to_platform,
    to_platform,
};

#[derive(Args, Clone, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The platform's document as JSON (default) or YAML.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// Facts the core views leave out: API key descriptions and expiry dates.
#[derive(Default)]
pub struct KeyExtras {
    pub description: Option<String>,
    pub expiration_date: Option<String>,
}

/// The organization in the platform's format, and notes on what the platform
/// cannot hold (members in no group, identity-set memberships, ...).
pub fn export(
    org: &Org,
    extras: impl Fn(&str) -> KeyExtras,
    now: Timestamp,
) -> (PlatformOrganization, Vec<String>) {
    let state = &org.state;
    let grantees = resolve_grantees(state);
    let mut notes = Vec::new();
    let lifetime = state.invitation_lifetime_days();
    let mut groups: Vec<PlatformGroup> = state
        .groups
        .values()
        .map(|g| PlatformGroup {
            id: g.name.clone(),
            display_name: g
                .display_name
                .clone()
                .or_else(|| g.builtin.map(|b| b.display_name().to_string())),
            group_type: (g.builtin == Some(BuiltinGroup::Administrators))
                .then(|| "ADMINISTRATOR".to_string()),
            privileges: to_platform(&grantees.groups[&g.name]),
            members: Vec::new(),
            invites: Vec::new(),
        })
        .collect();
    for m in state.members.values() {
        let who = PlatformMember {
            username: m.identity.username.clone(),
            provider: provider_to_platform(m.identity.provider).to_string(),
        };
        let (phase, _) = member_phase(m, lifetime, now);
        if phase == MemberPhase::Expired {
            notes.push(format!(
                "member '{}': the invitation expired, so it is in no group on the platform; left out",
                m.name
            ));
            continue;
        }
        if m.groups.is_empty() {
            notes.push(format!(
                "member '{}' is invited to no group; the platform has no such member; left out",
                m.name
            ));
        }
        for name in &m.groups {
            let Some(g) = groups.iter_mut().find(|g| &g.id == name) else {
                notes.push(format!(
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
            notes.push(format!(
                "member '{}': its Kubernetes subjects are orgaccess's own and are not exported",
                m.name
            ));
        }
    }
    for g in state
        .groups
        .values()
        .filter(|g| !g.identity_sets.is_empty())
    {
        notes.push(format!(
            "group '{}': identity sets (the platform's realms) are not exported",
            g.name
        ));
    }
    for g in &mut groups {
        g.members.sort();
        g.invites.sort();
    }
    let api_keys = state
        .api_keys
        .values()
        .map(|k| {
            let extra = extras(&k.name);
            PlatformApiKey {
                id: k.name.clone(),
                display_name: k.display_name.clone(),
                description: extra.description,
                enabled: k.enabled,
                privileges: to_platform(&grantees.api_keys[&k.name]),
                allowed_ips: k.allowed_ips.clone(),
                denied_ips: k.denied_ips.clone(),
                lifetime_duration: k.lifetime.clone(),
                expiration_date: extra.expiration_date,
                api_key_template_id: k
                    .template
                    .filter(|t| *t != ApiKeyTemplate::Custom)
                    .map(|t| format!("{t:?}")),
            }
        })
        .collect();
    let doc = PlatformOrganization {
        organization_id: state.org.as_ref().map(|o| o.name.clone()),
        display_name: state.org.as_ref().map(|o| o.display_name.clone()),
        groups,
        api_keys,
    };
    (doc, notes)
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
    let (doc, notes) = export(&org, extras, Timestamp::now());
    let s = Styles::stderr();
    for n in &notes {
        emit_err(&format!("{}: {n}\n", s.warn("note")));
    }
    emit(&args.output.document(&doc, OutputFormat::Json));
    EXIT_OK
}
