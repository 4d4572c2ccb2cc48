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
//!
//! Nothing is invented either (docs/import-export.md, "Nothing invented"): a
//! provider outside the platform's enum (`ANY` included) is reported like an
//! unknown domain, a key with no expiry gets no `spec.lifetime` (a note says
//! its template's cap applies), and the manifests are judged by the pipeline
//! `orgaccess check` runs before they are printed: what admission would
//! refuse is reported, and nothing printed unless `--allow-refused`.

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
    PlatformApiKey, PlatformGroup, PlatformOrganization, PlatformPrivilege, Unmapped,
    explicit_over, from_platform, plain_username, provider_from_platform,
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
    /// Print the manifests even when orgaccess's admission rules (those
    /// `orgaccess check` runs, as a trusted principal) would refuse some of
    /// them; the refusals are still reported on standard error.
    #[arg(long)]
    pub allow_refused: bool,
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
    /// Members left out because their provider is not one the platform has.
    pub unknown_providers: Vec<String>,
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

/// The whole days from `now` to an RFC 3339 `expirationDate`, as an ISO-8601
/// lifetime: rounded down, so that the key never outlives the platform's
/// date (lifetimes count whole days); `None` when less than a day is left.
fn lifetime_until(expiration: &str, now: Timestamp) -> Result<Option<String>, String> {
    let at: Timestamp = expiration
        .parse()
        .map_err(|e| format!("expirationDate '{expiration}' is not an RFC 3339 time ({e})"))?;
    let days = at.duration_since(now).as_secs() / 86_400;
    Ok((days > 0).then(|| format!("P{days}D")))
}

/// What a key without `spec.lifetime` gets: every orgaccess key expires, at
/// its template's cap (docs/api-keys.md, "Expiry").
fn cap_applies(template: Option<ApiKeyTemplate>) -> String {
    let t = template.unwrap_or(ApiKeyTemplate::Custom);
    format!(
        "orgaccess will expire it at its template's cap ({t:?}: {} days from its creation; docs/api-keys.md)",
        t.max_lifetime_days()
    )
}

/// The platform's organization as orgaccess objects.
pub fn import(
    doc: &PlatformOrganization,
    organization: Option<&str>,
    namespace: Option<&str>,
    now: Timestamp,
) -> Imported {
    let mut i = Importer::new(doc, namespace, now);
    let mut people = People::new();
    for g in &doc.groups {
        i.group(g, &mut people);
    }
    i.members(people);
    for k in &doc.api_keys {
        i.api_key(k);
    }
    i.organization(organization);
    i.out
}

/// The people of the groups, by provider and username: who they are, their
/// groups, and whether they accepted an invitation.
type People = BTreeMap<(String, String), (MemberIdentity, BTreeSet<String>, bool)>;

/// One import under way: the names given so far, the resources Custom grants
/// name, and what was produced.
struct Importer<'a> {
    doc: &'a PlatformOrganization,
    namespace: Option<&'a str>,
    now: Timestamp,
    group_names: Names,
    builtins: BTreeMap<String, BuiltinGroup>,
    key_names: Names,
    resources: BTreeMap<ResourceKind, BTreeSet<String>>,
    out: Imported,
}

impl<'a> Importer<'a> {
    /// Names first: Custom grants on Groups and API keys name them.
    fn new(doc: &'a PlatformOrganization, namespace: Option<&'a str>, now: Timestamp) -> Self {
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
        Importer {
            doc,
            namespace,
            now,
            group_names,
            builtins,
            key_names,
            resources: BTreeMap::new(),
            out: Imported::default(),
        }
    }

    /// The object name a Custom grant's resource gets (groups and keys are renamed).
    fn rename(&self, kind: ResourceKind, id: &str) -> String {
        match kind {
            ResourceKind::Groups => self
                .group_names
                .by_id
                .get(id)
                .cloned()
                .unwrap_or_else(|| object_name(id, 253)),
            ResourceKind::ApiKeys => self
                .key_names
                .by_id
                .get(id)
                .cloned()
                .unwrap_or_else(|| object_name(id, MAX_NAME_LEN)),
            _ => id.to_string(),
        }
    }

    /// The privileges of a group or key (`holder`), the unmapped ones
    /// reported and the resources they name declared.
    fn privileges(&mut self, holder: String, list: &[PlatformPrivilege]) -> PrivilegeSet {
        let (full, unmapped) = from_platform(list, |k, id| self.rename(k, id));
        self.out
            .unmapped
            .extend(unmapped.into_iter().map(|u| (holder.clone(), u)));
        for (kind, _, name) in named_resources(&full) {
            self.resources
                .entry(kind)
                .or_default()
                .insert(name.to_string());
        }
        full
    }

    fn meta(&self, mut meta: kube::api::ObjectMeta) -> kube::api::ObjectMeta {
        meta.namespace = self.namespace.map(str::to_string);
        meta
    }

    /// A group, and its members and invitations into `people`.
    fn group(&mut self, g: &PlatformGroup, people: &mut People) {
        let name = self.group_names.by_id[&g.id].clone();
        let full = self.privileges(format!("group '{}'", g.id), &g.privileges);
        let builtin = self.builtins.get(&g.id).copied();
        let (template, privileges) = match builtin {
            Some(BuiltinGroup::Administrators) => {
                if full != full_access() {
                    self.out.notes.push(format!(
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
                identity_sets: g.identity_sets.clone(),
                access: Vec::new(),
                duplicate_of: None,
                owners: Vec::new(),
                review_every: None,
            },
        );
        group.metadata = self.meta(group.metadata);
        self.out.groups.push(group);
        for (list, accepted) in [(&g.members, true), (&g.invites, false)] {
            for m in list {
                let Some(provider) = provider_from_platform(&m.provider) else {
                    self.out.unknown_providers.push(format!(
                        "member '{}' of group '{}' has provider '{}', which is not in the platform's provider enum (EMAIL, GOOGLE, OFFICE365, SALESFORCE, SALESFORCE_SANDBOX, SAML)",
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

    /// One Member per person of the groups.
    fn members(&mut self, people: People) {
        let mut member_names = Names::default();
        for ((_, username), (identity, groups, accepted)) in people {
            if accepted && self.invited(&username) {
                let all: Vec<&str> = groups.iter().map(String::as_str).collect();
                self.out.notes.push(format!(
                    "member '{username}' accepted an invitation and has others pending; orgaccess keeps one acceptance per member, so all of its groups ({}) count as accepted",
                    all.join(", ")
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
                    until: None,
                    group_until: Default::default(),
                },
            );
            member.metadata = self.meta(member.metadata);
            self.out.members.push(member);
        }
    }

    /// Has some group an invitation pending for `username`?
    fn invited(&self, username: &str) -> bool {
        self.doc.groups.iter().any(|g| {
            g.invites
                .iter()
                .any(|i| plain_username(&i.username, &i.provider) == username)
        })
    }

    fn api_key(&mut self, k: &PlatformApiKey) {
        let name = self.key_names.by_id[&k.id].clone();
        let full = self.privileges(format!("API key '{}'", k.id), &k.privileges);
        let template = match k.api_key_template_id.as_deref() {
            None => None,
            Some(id) => match template_named(id) {
                Some(t) => Some(t),
                None => {
                    self.out.notes.push(format!(
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
        let (lifetime, enabled) = self.lifetime(k, template);
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
                search_hub: None,
            },
        );
        key.metadata = self.meta(key.metadata);
        self.out.api_keys.push(key);
    }

    /// A key's lifetime (its own, or until its expiration date) and whether
    /// it stays enabled (an expired key is imported disabled). A key the
    /// platform gives no expiry gets none here either: no `spec.lifetime`,
    /// and a note that the template's cap applies (docs/api-keys.md).
    fn lifetime(
        &mut self,
        k: &PlatformApiKey,
        template: Option<ApiKeyTemplate>,
    ) -> (Option<String>, bool) {
        match (&k.lifetime_duration, &k.expiration_date) {
            (Some(l), _) => (Some(l.clone()), k.enabled),
            (None, Some(at)) => match lifetime_until(at, self.now) {
                Ok(Some(l)) => {
                    self.out.notes.push(format!(
                        "API key '{}' has no lifetimeDuration; its expirationDate {at} becomes spec.lifetime {l}, counted from now (exported back as lifetimeDuration)",
                        k.id
                    ));
                    (Some(l), k.enabled)
                }
                Ok(None) => {
                    self.out.notes.push(format!(
                        "API key '{}' expires at {at}, less than a day from now (or already); imported disabled",
                        k.id
                    ));
                    (None, false)
                }
                Err(e) => {
                    self.out.notes.push(format!(
                        "API key '{}': {e}; no lifetime set, so {}",
                        k.id,
                        cap_applies(template)
                    ));
                    (None, k.enabled)
                }
            },
            (None, None) => {
                self.out.notes.push(format!(
                    "API key '{}' has no expiry on the platform (no lifetimeDuration, no expirationDate); imported without spec.lifetime, so {}",
                    k.id,
                    cap_applies(template)
                ));
                (None, k.enabled)
            }
        }
    }

    /// The Organization, declaring the resources Custom grants name.
    fn organization(&mut self, organization: Option<&str>) {
        let doc = self.doc;
        let name = organization
            .map(str::to_string)
            .or_else(|| {
                doc.organization_id
                    .as_deref()
                    .map(|id| object_name(id, 253))
            })
            .unwrap_or_else(|| "organization".to_string());
        let mut take = |kind| -> Vec<String> {
            self.resources
                .remove(&kind)
                .map(|s| s.into_iter().collect())
                .unwrap_or_default()
        };
        let resources = OrgResources {
            sources: take(ResourceKind::Sources),
            extensions: take(ResourceKind::Extensions),
            query_pipelines: take(ResourceKind::QueryPipelines),
            tracking_ids: take(ResourceKind::TrackingIds),
        };
        let mut org = Organization::new(
            &name,
            OrganizationSpec {
                display_name: doc
                    .display_name
                    .clone()
                    .or_else(|| doc.organization_id.clone())
                    .unwrap_or_else(|| name.clone()),
                resources,
                invitation_lifetime_days: DEFAULT_INVITATION_DAYS,
                advice: Default::default(),
                access_reviews: Default::default(),
            },
        );
        org.metadata = self.meta(org.metadata);
        self.out.organization = Some(org);
    }
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

/// What orgaccess's own admission would refuse among the manifests: the
/// pipeline `orgaccess check` runs (schema, CEL rules, then
/// [`crate::judge::judge`] per object against all the others and the
/// seeded built-in groups), as a trusted principal, one line per refusal.
pub fn refused_by_admission(yaml: &str, namespace: Option<&str>) -> Vec<String> {
    let mut loaded = super::manifest::Loaded::default();
    super::manifest::parse_text("import", yaml, namespace.unwrap_or("default"), &mut loaded);
    let inputs = super::check::Inputs {
        orgs: super::source::states(&loaded.manifests, true),
        loaded,
        before: BTreeMap::new(),
    };
    super::check::refusals(&inputs.verdicts(crate::judge::Asker::Trusted, true))
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
    for u in &imported.unknown_providers {
        emit_err(&format!("{}: {u}\n", s.error("unmapped")));
    }
    let unmapped = imported.unmapped.len() + imported.unknown_providers.len();
    if unmapped > 0 && !args.allow_unknown {
        emit_err(&format!(
            "{}: {unmapped} privileges or members could not be mapped; no manifests written (--allow-unknown writes them without these)\n",
            s.error("error"),
        ));
        return EXIT_FINDINGS;
    }
    let yaml = match to_yaml(&imported) {
        Ok(yaml) => yaml,
        Err(e) => return fail(&anyhow::anyhow!("cannot write the manifests: {e}")),
    };
    let refused = refused_by_admission(&yaml, cluster.namespace.as_deref());
    for r in &refused {
        emit_err(&format!("{}: {r}\n", s.error("refused")));
    }
    if !refused.is_empty() && !args.allow_refused {
        emit_err(&format!(
            "{}: orgaccess's admission would refuse {} of the imported objects (as `orgaccess check` says); no manifests written (--allow-refused writes them anyway)\n",
            s.error("error"),
            refused.len()
        ));
        return EXIT_FINDINGS;
    }
    if args.output == OutputFormat::Json {
        emit(&super::output::to_json(&to_list(&imported)));
    } else {
        emit(&yaml);
    }
    EXIT_OK
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
        // Rounded down: the key never outlives the platform's date.
        assert_eq!(
            lifetime_until("2026-01-30T23:00:00Z", now),
            Ok(Some("P29D".into()))
        );
        assert_eq!(lifetime_until("2026-01-01T23:00:00Z", now), Ok(None));
        assert_eq!(lifetime_until("2025-12-31T00:00:00Z", now), Ok(None));
        assert!(lifetime_until("soon", now).is_err());
    }
}
