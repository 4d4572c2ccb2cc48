//! `orgaccess import FILE`: an organization in the platform's JSON (groups
//! with their `{owner, targetDomain, type, targetId}` privileges, members and
//! invitations, API keys) written as orgaccess manifests (YAML, one document
//! per object). The privilege mapping is [`crate::core::platform`]; the
//! document and the choices are in `docs/import-export.md`.
//!
//! Nothing is dropped silently: a privilege naming an unknown domain (or a
//! type its domain does not offer) is reported on standard error, and the
//! command prints no manifests and exits 1 unless `--allow-unknown` is given
//! (then the manifests leave those privileges out, and the report stays).
//! API key values are never read: the operator generates new ones.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use jiff::Timestamp;

use super::output::{OutputFormat, Styles};
use super::{ClusterArgs, EXIT_FINDINGS, EXIT_OK, emit, emit_err, fail};
use crate::api::{
    ApiKey, ApiKeySpec, Group, GroupSpec, Member, MemberSpec, Organization, OrganizationSpec,
};
use crate::core::apikey::MAX_NAME_LEN;
use crate::core::builtin::{ApiKeyTemplate, BuiltinGroup, full_access};
use crate::core::catalog::ResourceKind;
use crate::core::model::{DEFAULT_INVITATION_DAYS, MemberIdentity, OrgResources};
use crate::core::platform::{
    PlatformOrganization, Unmapped, explicit_over, from_platform, plain_username,
    provider_from_platform,
};
use crate::core::privilege::{PrivilegeSet, named_resources};

#[derive(Args, Clone, Debug)]
pub struct ImportArgs {
    /// The platform's JSON document, or `-` for standard input.
    pub file: PathBuf,
    /// metadata.name of the Organization (default: from organizationId).
    #[arg(long)]
    pub organization: Option<String>,
    /// Print the manifests even when privileges could not be mapped (they
    /// are left out, and still reported on standard error).
    #[arg(long)]
    pub allow_unknown: bool,
    /// The manifests as YAML documents (default) or one JSON `v1 List`.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// What an import produced: the objects and what could not be carried over.
#[derive(Debug, Default)]
pub struct Imported {
    pub organization: Option<Organization>,
    pub groups: Vec<Group>,
    pub members: Vec<Member>,
    pub api_keys: Vec<ApiKey>,
    /// Privileges left out, by the group or key that held them.
    pub unmapped: Vec<(String, Unmapped)>,
    /// Everything else worth knowing (lossy choices), one line each.
    pub notes: Vec<String>,
}

/// A Kubernetes object name (DNS subdomain) from a platform ID or username.
pub fn object_name(id: &str, max: usize) -> String {
    let mut s: String = id
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(max);
    let s = s.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if s.is_empty() {
        "imported".to_string()
    } else {
        s.to_string()
    }
}

/// Unique names for IDs: the same ID always gets the same name.
#[derive(Default)]
struct Names {
    by_id: BTreeMap<String, String>,
    taken: BTreeSet<String>,
}

impl Names {
    fn name(&mut self, id: &str, wanted: String, max: usize) -> String {
        if let Some(n) = self.by_id.get(id) {
            return n.clone();
        }
        let mut name = wanted.clone();
        let mut i = 2;
        while self.taken.contains(&name) {
            let suffix = format!("-{i}");
            let mut base = wanted.clone();
            base.truncate(max - suffix.len());
            name = format!("{}{suffix}", base.trim_end_matches('-'));
            i += 1;
        }
        self.taken.insert(name.clone());
        self.by_id.insert(id.to_string(), name.clone());
        name
    }
}

fn builtin_of(display: Option<&str>, group_type: Option<&str>) -> Option<BuiltinGroup> {
    if group_type.is_some_and(|t| t.eq_ignore_ascii_case("ADMINISTRATOR")) {
        return Some(BuiltinGroup::Administrators);
    }
    let display = display?;
    BuiltinGroup::ALL
        .into_iter()
        .find(|b| b.display_name().eq_ignore_ascii_case(display))
}

fn template_named(id: &str) -> Option<ApiKeyTemplate> {
    serde_json::from_value(serde_json::Value::String(id.to_string())).ok()
}

/// The days from `now` to an RFC 3339 `expirationDate`, as an ISO-8601 lifetime.
fn lifetime_until(expiration: &str, now: Timestamp) -> Result<Option<String>, String> {
    let at: Timestamp = expiration
        .parse()
        .map_err(|e| format!("expirationDate '{expiration}' is not an RFC 3339 time ({e})"))?;
    let secs = at.duration_since(now).as_secs();
    if secs <= 0 {
        return Ok(None);
    }
    Ok(Some(format!("P{}D", (secs + 86_399) / 86_400)))
}

/// The platform's organization as orgaccess objects.
pub fn import(
    doc: &PlatformOrganization,
    organization: Option<&str>,
    namespace: Option<&str>,
    now: Timestamp,
) -> Imported {
    let mut out = Imported::default();
    // Names first: Custom grants on Groups and API keys name them.
    let mut group_names = Names::default();
    let mut builtins = BTreeMap::new();
    for b in BuiltinGroup::ALL {
        group_names.taken.insert(b.object_name().to_string());
    }
    for g in &doc.groups {
        match builtin_of(g.display_name.as_deref(), g.group_type.as_deref()) {
            Some(b) if !builtins.values().any(|x| *x == b) => {
                group_names
                    .by_id
                    .insert(g.id.clone(), b.object_name().to_string());
                builtins.insert(g.id.clone(), b);
            }
            _ => {
                group_names.name(&g.id, object_name(&g.id, 253), 253);
            }
        }
    }
    let mut key_names = Names::default();
    for k in &doc.api_keys {
        key_names.name(&k.id, object_name(&k.id, MAX_NAME_LEN), MAX_NAME_LEN);
    }
    let rename = |kind: ResourceKind, id: &str| match kind {
        ResourceKind::Groups => group_names
            .by_id
            .get(id)
            .cloned()
            .unwrap_or_else(|| object_name(id, 253)),
        ResourceKind::ApiKeys => key_names
            .by_id
            .get(id)
            .cloned()
            .unwrap_or_else(|| object_name(id, MAX_NAME_LEN)),
        _ => id.to_string(),
    };
    let mut resources: BTreeMap<ResourceKind, BTreeSet<String>> = BTreeMap::new();
    let mut declare = |set: &PrivilegeSet| {
        for (kind, _, name) in named_resources(set) {
            resources.entry(kind).or_default().insert(name.to_string());
        }
    };
    let with_ns = |mut meta: kube::api::ObjectMeta| {
        meta.namespace = namespace.map(str::to_string);
        meta
    };

    // Groups, and who is in them.
    let mut people: BTreeMap<(String, String), (MemberIdentity, BTreeSet<String>, bool)> =
        BTreeMap::new();
    for g in &doc.groups {
        let name = group_names.by_id[&g.id].clone();
        let (full, unmapped) = from_platform(&g.privileges, rename);
        out.unmapped.extend(
            unmapped
                .into_iter()
                .map(|u| (format!("group '{}'", g.id), u)),
        );
        declare(&full);
        let builtin = builtins.get(&g.id).copied();
        let (template, privileges) = match builtin {
            Some(BuiltinGroup::Administrators) => {
                if full != full_access() {
                    out.notes.push(format!(
                        "group '{}' is the Administrators group: it holds every privilege here (its privileges cannot be edited), whatever the document lists",
                        g.id
                    ));
                }
                (Some(BuiltinGroup::Administrators.template()), Vec::new())
            }
            Some(b) => (
                Some(b.template()),
                explicit_over(&b.template().privileges(), &full),
            ),
            None => (None, full.to_specs()),
        };
        let mut group = Group::new(
            &name,
            GroupSpec {
                display_name: g.display_name.clone(),
                built_in: builtin,
                template,
                privileges,
                identity_sets: Vec::new(),
                access: Vec::new(),
                duplicate_of: None,
            },
        );
        group.metadata = with_ns(group.metadata);
        out.groups.push(group);
        for (list, accepted) in [(&g.members, true), (&g.invites, false)] {
            for m in list {
                let Some(provider) = provider_from_platform(&m.provider) else {
                    out.notes.push(format!(
                        "member '{}' of group '{}' has provider '{}', which orgaccess does not know; left out",
                        m.username, g.id, m.provider
                    ));
                    continue;
                };
                let username = plain_username(&m.username, &m.provider);
                let entry = people
                    .entry((format!("{provider:?}"), username.clone()))
                    .or_insert_with(|| {
                        (
                            MemberIdentity { provider, username },
                            BTreeSet::new(),
                            false,
                        )
                    });
                entry.1.insert(name.clone());
                entry.2 |= accepted;
            }
        }
    }
    let mut member_names = Names::default();
    for ((_, username), (identity, groups, accepted)) in people {
        let all_groups: Vec<&String> = groups.iter().collect();
        if accepted
            && doc.groups.iter().any(|g| {
                g.invites
                    .iter()
                    .any(|i| plain_username(&i.username, &i.provider) == username)
            })
        {
            out.notes.push(format!(
                "member '{username}' accepted an invitation and has others pending; orgaccess keeps one acceptance per member, so all of its groups ({}) count as accepted",
                all_groups
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let name = member_names.name(&username, object_name(&username, 253), 253);
        let mut member = Member::new(
            &name,
            MemberSpec {
                identity,
                groups: groups.into_iter().collect(),
                subjects: Vec::new(),
                accepted,
                sso_groups: Vec::new(),
                salesforce_profile: None,
            },
        );
        member.metadata = with_ns(member.metadata);
        out.members.push(member);
    }

    // API keys.
    for k in &doc.api_keys {
        let name = key_names.by_id[&k.id].clone();
        let (full, unmapped) = from_platform(&k.privileges, rename);
        out.unmapped.extend(
            unmapped
                .into_iter()
                .map(|u| (format!("API key '{}'", k.id), u)),
        );
        declare(&full);
        let template = match k.api_key_template_id.as_deref() {
            None => None,
            Some(id) => match template_named(id) {
                Some(t) => Some(t),
                None => {
                    out.notes.push(format!(
                        "API key '{}' was made from template '{id}', which orgaccess does not know; imported as a Custom key with its privileges",
                        k.id
                    ));
                    None
                }
            },
        };
        let privileges = match template {
            Some(t) => explicit_over(&t.privileges(), &full),
            None => full.to_specs(),
        };
        let mut enabled = k.enabled;
        let lifetime = match (&k.lifetime_duration, &k.expiration_date) {
            (Some(l), _) => Some(l.clone()),
            (None, Some(at)) => match lifetime_until(at, now) {
                Ok(Some(l)) => Some(l),
                Ok(None) => {
                    out.notes.push(format!(
                        "API key '{}' expired at {at}; imported disabled",
                        k.id
                    ));
                    enabled = false;
                    None
                }
                Err(e) => {
                    out.notes
                        .push(format!("API key '{}': {e}; no lifetime set", k.id));
                    None
                }
            },
            (None, None) => None,
        };
        let mut key = ApiKey::new(
            &name,
            ApiKeySpec {
                display_name: k.display_name.clone().unwrap_or_else(|| k.id.clone()),
                description: k.description.clone(),
                template,
                privileges,
                access: Vec::new(),
                enabled,
                lifetime,
                allowed_ips: k.allowed_ips.clone(),
                denied_ips: k.denied_ips.clone(),
                rotation: None,
            },
        );
        key.metadata = with_ns(key.metadata);
        out.api_keys.push(key);
    }

    // The Organization, declaring the resources Custom grants name.
    let take = |resources: &mut BTreeMap<ResourceKind, BTreeSet<String>>, kind| {
        resources
            .remove(&kind)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default()
    };
    let org_name = organization
        .map(str::to_string)
        .or_else(|| {
            doc.organization_id
                .as_deref()
                .map(|id| object_name(id, 253))
        })
        .unwrap_or_else(|| "organization".to_string());
    let mut org = Organization::new(
        &org_name,
        OrganizationSpec {
            display_name: doc
                .display_name
                .clone()
                .or_else(|| doc.organization_id.clone())
                .unwrap_or_else(|| org_name.clone()),
            resources: OrgResources {
                sources: take(&mut resources, ResourceKind::Sources),
                extensions: take(&mut resources, ResourceKind::Extensions),
                query_pipelines: take(&mut resources, ResourceKind::QueryPipelines),
                tracking_ids: take(&mut resources, ResourceKind::TrackingIds),
            },
            invitation_lifetime_days: DEFAULT_INVITATION_DAYS,
            advice: Default::default(),
        },
    );
    org.metadata = with_ns(org.metadata);
    out.organization = Some(org);
    out
}

/// The manifests as one YAML stream.
pub fn to_yaml(imported: &Imported) -> anyhow::Result<String> {
    let mut docs = Vec::new();
    if let Some(o) = &imported.organization {
        docs.push(serde_saphyr::to_string(o)?);
    }
    for g in &imported.groups {
        docs.push(serde_saphyr::to_string(g)?);
    }
    for m in &imported.members {
        docs.push(serde_saphyr::to_string(m)?);
    }
    for k in &imported.api_keys {
        docs.push(serde_saphyr::to_string(k)?);
    }
    Ok(docs.join("---\n"))
}

/// The manifests as one `v1 List` (what `kubectl apply -f` reads as JSON).
pub fn to_list(imported: &Imported) -> serde_json::Value {
    let mut items = Vec::new();
    let mut push = |v: serde_json::Result<serde_json::Value>| items.extend(v.ok());
    if let Some(o) = &imported.organization {
        push(serde_json::to_value(o));
    }
    imported
        .groups
        .iter()
        .for_each(|g| push(serde_json::to_value(g)));
    imported
        .members
        .iter()
        .for_each(|m| push(serde_json::to_value(m)));
    imported
        .api_keys
        .iter()
        .for_each(|k| push(serde_json::to_value(k)));
    serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items })
}

fn read(file: &PathBuf) -> anyhow::Result<PlatformOrganization> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not the platform's organization document (docs/import-export.md)",
            file.display()
        )
    })
}

/// Imports `args.file`; `-n` is the namespace written in the manifests
/// (default: none, so kubectl's).
pub fn run(args: ImportArgs, cluster: &ClusterArgs) -> i32 {
    let doc = match read(&args.file) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let imported = import(
        &doc,
        args.organization.as_deref(),
        cluster.namespace.as_deref(),
        Timestamp::now(),
    );
    let s = Styles::stderr();
    for (owner, u) in &imported.unmapped {
        let p = &u.privilege;
        emit_err(&format!(
            "{}: {owner}: {}/{} type {} targetId {}: {}\n",
            s.error("unmapped"),
            p.owner,
            p.target_domain,
            p.type_.as_deref().unwrap_or("(none)"),
            p.target_id.as_deref().unwrap_or("(none)"),
            u.reason
        ));
    }
    for n in &imported.notes {
        emit_err(&format!("{}: {n}\n", s.warn("note")));
    }
    if !imported.unmapped.is_empty() && !args.allow_unknown {
        emit_err(&format!(
            "{}: {} privileges could not be mapped; no manifests written (--allow-unknown writes them without these)\n",
            s.error("error"),
            imported.unmapped.len()
        ));
        return EXIT_FINDINGS;
    }
    if args.output == OutputFormat::Json {
        emit(&super::output::to_json(&to_list(&imported)));
        return EXIT_OK;
    }
    match to_yaml(&imported) {
        Ok(yaml) => {
            emit(&yaml);
            EXIT_OK
        }
        Err(e) => fail(&anyhow::anyhow!("cannot write the manifests: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_dns_subdomains_and_unique() {
        assert_eq!(
            object_name("John.Smith@acme.example", 253),
            "john.smith-acme.example"
        );
        assert_eq!(object_name("__", 253), "imported");
        let mut n = Names::default();
        assert_eq!(n.name("A", "a".into(), 253), "a");
        assert_eq!(n.name("a", "a".into(), 253), "a-2");
        assert_eq!(n.name("A", "a".into(), 253), "a");
    }

    #[test]
    fn an_expiration_date_becomes_the_days_left() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            lifetime_until("2026-01-31T00:00:00Z", now),
            Ok(Some("P30D".into()))
        );
        assert_eq!(
            lifetime_until("2026-01-30T01:00:00Z", now),
            Ok(Some("P30D".into()))
        );
        assert_eq!(lifetime_until("2025-12-31T00:00:00Z", now), Ok(None));
        assert!(lifetime_until("soon", now).is_err());
    }
}
