//! The platform's own privilege format, and the mapping to and from ours.
//!
//! The platform stores a privilege as `{owner, targetDomain, type, targetId}`
//! items (docs/import-export.md); a grantee holds a list of them. This
//! module maps one grantee's [`PrivilegeSet`] to that list and back, and holds
//! the shapes of the organization document `orgaccess import` reads and
//! `orgaccess export` writes (`docs/import-export.md`). Pure: no I/O.
//!
//! The mapping, per domain (the catalog's `api` column gives owner/targetDomain):
//!
//! | ours | the platform's |
//! |---|---|
//! | View (View all) | `type: VIEW` (`targetId: "*"` on resource domains) |
//! | Edit (Edit all) | `type: EDIT`, plus `type: CREATE` where the domain creates |
//! | Can Create with View all or Custom | `type: CREATE`, `targetId: "*"` |
//! | Custom: View or Edit on a resource | `type: VIEW` / `EDIT` with `targetId: <resource>` |
//! | Allowed | `type: ENABLE` (no `type` on the Analytics service, whose on/off domains have none) |
//! | Push (Analytics data) | `type: EDIT`; Push and view is `VIEW` + `EDIT` |
//!
//! On import a missing `type` and `ENABLE` both mean Allowed, a missing
//! `targetId` means `*`, and `API_ALIASES` names are accepted (e.g.
//! `SEARCH_API/IMPERSONATE` for `IMPERSONATE_SEARCH_API`). Anything that names
//! an unknown domain, or a type the domain does not offer, is returned in the
//! `unmapped` list with the reason: never dropped silently.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{self, Create, DomainId, ResourceKind, Service};
use crate::model::{IdentitySet, Provider};
use crate::privilege::{Abilities, Grant, Level, PrivilegeSet, PrivilegeSpec, ResourceId};

/// One privilege item as the platform writes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformPrivilege {
    pub owner: String,
    pub target_domain: String,
    /// `VIEW`, `EDIT`, `CREATE` or `ENABLE`; absent on some on/off domains.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// One resource's ID, or `*` for all; absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
}

/// A platform privilege that has no place in our catalog, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unmapped {
    pub privilege: PlatformPrivilege,
    pub reason: String,
}

fn owner_and_domain(d: DomainId) -> (&'static str, &'static str) {
    catalog::domain(d)
        .api
        .split_once('/')
        .expect("catalog API names are owner/targetDomain")
}

/// The `type` an Allowed domain carries: none on the Analytics service (its
/// on/off domains list no type in the owner/targetDomain table), `ENABLE`
/// elsewhere (the Search API spec's `EXECUTE_QUERY`, `IMPERSONATE_SEARCH_API`).
fn allowed_type(d: DomainId) -> Option<String> {
    (catalog::domain(d).service != Service::Analytics).then(|| "ENABLE".to_string())
}

fn item(d: DomainId, type_: Option<&str>, target_id: Option<&str>) -> PlatformPrivilege {
    let (owner, target_domain) = owner_and_domain(d);
    PlatformPrivilege {
        owner: owner.into(),
        target_domain: target_domain.into(),
        type_: type_.map(str::to_string),
        target_id: target_id.map(str::to_string),
    }
}

/// A grantee's privileges in the platform's format, sorted.
pub fn to_platform(set: &PrivilegeSet) -> Vec<PlatformPrivilege> {
    let mut out = Vec::new();
    for (d, g) in set.iter() {
        let o = catalog::domain(d).offers;
        let all = o.custom.map(|_| "*");
        if g.abilities.contains(Abilities::ALLOWED) {
            let mut p = item(d, None, None);
            p.type_ = allowed_type(d);
            out.push(p);
        }
        if g.abilities.contains(Abilities::PUSH) {
            out.push(item(d, Some("EDIT"), all));
        }
        match g.level {
            Level::None => {}
            Level::View => out.push(item(d, Some("VIEW"), all)),
            Level::Edit => out.push(item(d, Some("EDIT"), all)),
        }
        if g.abilities.contains(Abilities::CREATE) {
            out.push(item(d, Some("CREATE"), all));
        }
        for (r, l) in &g.resources {
            let t = if l == Level::Edit { "EDIT" } else { "VIEW" };
            out.push(item(d, Some(t), Some(&r.name())));
        }
    }
    out.sort();
    out
}

/// Reads a grantee's platform privileges. `rename` turns a resource ID of a
/// kind into our resource name (e.g. a platform group ID into the Group's
/// object name); identity for sources, extensions, pipelines and tracking IDs.
pub fn from_platform(
    items: &[PlatformPrivilege],
    rename: impl Fn(ResourceKind, &str) -> String,
) -> (PrivilegeSet, Vec<Unmapped>) {
    let mut grants: BTreeMap<DomainId, Grant> = BTreeMap::new();
    let mut unmapped = Vec::new();
    for p in items {
        let mut refuse = |reason: String| {
            unmapped.push(Unmapped {
                privilege: p.clone(),
                reason,
            })
        };
        let Some(d) = catalog::lookup_api(&p.owner, &p.target_domain) else {
            refuse(format!(
                "unknown domain {}/{}: not in the catalog (`orgaccess catalog` lists the known ones)",
                p.owner, p.target_domain
            ));
            continue;
        };
        let dom = catalog::domain(d);
        let o = dom.offers;
        let what = format!("{}/{}", dom.service, dom.name);
        let resource = p.target_id.as_deref().filter(|t| *t != "*");
        if resource.is_some() && o.custom.is_none() {
            refuse(format!(
                "{what} is not granted per resource (no Custom level), so targetId must be * or absent"
            ));
            continue;
        }
        let grant = grants.entry(d).or_default();
        let type_ = p.type_.as_deref().map(str::to_ascii_uppercase);
        match (type_.as_deref(), resource) {
            (None | Some("ENABLE"), None) if o.allowed => {
                grant.abilities = grant.abilities.union(Abilities::ALLOWED)
            }
            (Some("VIEW"), None) if o.view => grant.level = grant.level.max(Level::View),
            (Some("EDIT"), None) if o.push => {
                grant.abilities = grant.abilities.union(Abilities::PUSH)
            }
            (Some("EDIT"), None) if o.edit => grant.level = Level::Edit,
            (Some("CREATE"), None) if o.create != Create::No => {
                grant.abilities = grant.abilities.union(Abilities::CREATE)
            }
            (Some(t @ ("VIEW" | "EDIT")), Some(id)) => {
                let kind = o.custom.expect("checked above");
                let level = if t == "EDIT" {
                    Level::Edit
                } else {
                    Level::View
                };
                let id = ResourceId::of(&rename(kind, id));
                match grant.resources.iter_mut().find(|(r, _)| *r == id) {
                    Some((_, l)) => *l = (*l).max(level),
                    None => grant.resources.push((id, level)),
                }
            }
            (t, _) => refuse(format!(
                "{what} does not offer type {}{}",
                t.unwrap_or("(none)"),
                if resource.is_some() {
                    " per resource"
                } else {
                    ""
                }
            )),
        }
    }
    let mut set = PrivilegeSet::new();
    for (d, mut g) in grants {
        // Can Create comes only with Edit on domains that tie it to Edit.
        if catalog::domain(d).offers.create == Create::WithEdit
            && g.abilities.contains(Abilities::CREATE)
            && g.level != Level::Edit
        {
            g.abilities = g.abilities.minus(Abilities::CREATE);
            let dom = catalog::domain(d);
            unmapped.push(Unmapped {
                privilege: item(d, Some("CREATE"), None),
                reason: format!(
                    "{}/{}: CREATE without EDIT has no equivalent here (Can Create comes with Edit on this domain); left out",
                    dom.service, dom.name
                ),
            });
        }
        g.resources.sort();
        set.set(d, g);
    }
    (set, unmapped)
}

/// The explicit privileges that, applied over `template` (later entries
/// replace a domain), give exactly `full`: the domains where they differ, in
/// catalog order, with level None where `full` holds nothing.
pub fn explicit_over(template: &PrivilegeSet, full: &PrivilegeSet) -> Vec<PrivilegeSpec> {
    let mut out = Vec::new();
    let domains: std::collections::BTreeSet<DomainId> = template
        .iter()
        .map(|(d, _)| d)
        .chain(full.iter().map(|(d, _)| d))
        .collect();
    for d in domains {
        if template.get(d) == full.get(d) {
            continue;
        }
        match full.get(d) {
            Some(g) => {
                let mut one = PrivilegeSet::new();
                one.set(d, g.clone());
                out.extend(one.to_specs());
            }
            None => {
                let dom = catalog::domain(d);
                out.push(crate::privilege::spec(
                    dom.service,
                    dom.name,
                    crate::privilege::AccessLevel::None,
                ));
            }
        }
    }
    out
}

/// The platform's identity providers: its API's provider enum is `SALESFORCE`,
/// `SALESFORCE_SANDBOX`, `GOOGLE`, `OFFICE365`, `SAML`, `EMAIL`
/// (docs/import-export.md, the providers row). The console's "Any" provider
/// of an invitation has no value in that enum, so [`Provider::AnyListed`] has
/// none here: `None`, and export leaves such members out rather than invent one.
pub fn provider_to_platform(p: Provider) -> Option<&'static str> {
    Some(match p {
        Provider::Email => "EMAIL",
        Provider::Google => "GOOGLE",
        Provider::Microsoft => "OFFICE365",
        Provider::Salesforce => "SALESFORCE",
        Provider::SalesforceSandbox => "SALESFORCE_SANDBOX",
        Provider::SingleSignOn => "SAML",
        Provider::AnyListed => return None,
    })
}

/// A value of the platform's provider enum (any case); anything else,
/// `ANY` included, is no provider the platform writes: `None`.
pub fn provider_from_platform(p: &str) -> Option<Provider> {
    Some(match p.to_ascii_uppercase().as_str() {
        "EMAIL" => Provider::Email,
        "GOOGLE" => Provider::Google,
        "OFFICE365" => Provider::Microsoft,
        "SALESFORCE" => Provider::Salesforce,
        "SALESFORCE_SANDBOX" => Provider::SalesforceSandbox,
        "SAML" => Provider::SingleSignOn,
        _ => return None,
    })
}

/// Is this item's `owner/targetDomain` a name we inferred
/// ([`catalog::INFERRED_API_NAMES`])? An alias or an unknown name is not.
pub fn wire_name_inferred(p: &PlatformPrivilege) -> bool {
    catalog::lookup_api(&p.owner, &p.target_domain).is_some_and(|d| {
        catalog::api_name_inferred(d)
            && catalog::domain(d).api == format!("{}/{}", p.owner, p.target_domain)
    })
}

/// A platform username without the `-provider` suffix the platform appends
/// (`jsmith@email.com-google`).
pub fn plain_username(username: &str, provider: &str) -> String {
    let suffix = format!("-{}", provider.to_ascii_lowercase());
    username
        .strip_suffix(&suffix)
        .unwrap_or(username)
        .to_string()
}

// ---------------------------------------------------------------------------
// The organization document
// ---------------------------------------------------------------------------

/// An organization as the platform's API returns it, gathered in one document:
/// its groups (with their members and pending invitations) and API keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformOrganization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub groups: Vec<PlatformGroup>,
    #[serde(default)]
    pub api_keys: Vec<PlatformApiKey>,
    /// orgaccess's extension: the `owner/targetDomain` names of this document
    /// that are our inference, not the platform's documented names (written
    /// only by `export --allow-inferred`; docs/import-export.md).
    #[serde(
        rename = "x-orgaccess-inferred",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inferred: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformGroup {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `ADMINISTRATOR` for the Administrators group, `CUSTOM` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_type: Option<String>,
    #[serde(default)]
    pub privileges: Vec<PlatformPrivilege>,
    /// Members who accepted (`/groups/{id}/members`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<PlatformMember>,
    /// Pending invitations (`/groups/{id}/invites`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invites: Vec<PlatformMember>,
    /// orgaccess's extension: the group's identity sets in orgaccess's own
    /// shape. The platform attaches them as "realms" (`/groups/{id}/realms`),
    /// whose JSON shape no source documents (docs/import-export.md).
    #[serde(
        rename = "x-orgaccess-identitySets",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub identity_sets: Vec<IdentitySet>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformMember {
    pub username: String,
    pub provider: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformApiKey {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub privileges: Vec<PlatformPrivilege>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_ips: Vec<String>,
    /// ISO-8601 lifetime given at creation, e.g. `P90D`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_duration: Option<String>,
    /// When the key expires (read-only on the platform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    /// The template the key was made from (`apiKeyTemplateId` at creation):
    /// our template names (`AnonymousSearch`, `AuthenticatedSearch`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_template_id: Option<String>,
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privilege::{AccessLevel, ResourceAccess, ResourceLevel, parse_all, spec};

    fn p(owner: &str, domain: &str, t: Option<&str>, id: Option<&str>) -> PlatformPrivilege {
        PlatformPrivilege {
            owner: owner.into(),
            target_domain: domain.into(),
            type_: t.map(Into::into),
            target_id: id.map(Into::into),
        }
    }

    #[test]
    fn levels_types_can_create_and_custom_map_as_documented() {
        let set = parse_all(&[
            spec(
                Service::Analytics,
                "AnalyticsData",
                AccessLevel::PushAndView,
            ),
            spec(Service::Analytics, "Administrate", AccessLevel::Allowed),
            spec(Service::Search, "ExecuteQueries", AccessLevel::Allowed),
            spec(Service::Content, "Fields", AccessLevel::Edit),
            PrivilegeSpec {
                can_create: Some(true),
                resources: vec![ResourceAccess {
                    name: "jira".into(),
                    level: ResourceLevel::Edit,
                }],
                ..spec(Service::Content, "Sources", AccessLevel::Custom)
            },
        ])
        .unwrap();
        let mut got = to_platform(&set);
        let mut want = vec![
            p("USAGE_ANALYTICS", "ANALYTICS_DATA", Some("VIEW"), None),
            p("USAGE_ANALYTICS", "ANALYTICS_DATA", Some("EDIT"), None),
            p("USAGE_ANALYTICS", "ADMINISTRATE", None, None),
            p("SEARCH_API", "EXECUTE_QUERY", Some("ENABLE"), None),
            p("PLATFORM", "FIELD", Some("EDIT"), None),
            p("PLATFORM", "FIELD", Some("CREATE"), None),
            p("PLATFORM", "SOURCE", Some("CREATE"), Some("*")),
            p("PLATFORM", "SOURCE", Some("EDIT"), Some("jira")),
        ];
        got.sort();
        want.sort();
        assert_eq!(got, want);
        let (back, unmapped) = from_platform(&got, |_, id| id.to_string());
        assert!(unmapped.is_empty(), "{unmapped:?}");
        assert_eq!(back, set);
    }

    #[test]
    fn both_impersonate_names_are_accepted_and_the_current_one_is_written() {
        let (old, u1) = from_platform(
            &[p("SEARCH_API", "IMPERSONATE", Some("ENABLE"), None)],
            |_, id| id.into(),
        );
        let (new, u2) = from_platform(
            &[p("SEARCH_API", "IMPERSONATE_SEARCH_API", None, Some("*"))],
            |_, id| id.into(),
        );
        assert!(u1.is_empty() && u2.is_empty());
        assert_eq!(old, new);
        assert_eq!(
            to_platform(&old),
            [p(
                "SEARCH_API",
                "IMPERSONATE_SEARCH_API",
                Some("ENABLE"),
                None
            )]
        );
    }

    #[test]
    fn unknown_domains_and_types_are_reported_not_dropped() {
        let items = [
            p("PLATFORM", "NO_SUCH_DOMAIN", Some("VIEW"), None),
            p("PLATFORM", "FIELD", Some("ENABLE"), None),
            p("PLATFORM", "FIELD", Some("VIEW"), Some("one-field")),
            p("USAGE_ANALYTICS", "REPORTS", Some("VIEW"), None),
            p("USAGE_ANALYTICS", "EXPORTS", Some("CREATE"), None),
        ];
        let (set, unmapped) = from_platform(&items, |_, id| id.into());
        let reasons: Vec<&str> = unmapped.iter().map(|u| u.reason.as_str()).collect();
        assert_eq!(unmapped.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("unknown domain PLATFORM/NO_SUCH_DOMAIN"));
        assert!(reasons[1].contains("does not offer type ENABLE"));
        assert!(reasons[2].contains("not granted per resource"));
        assert!(reasons[3].contains("CREATE without EDIT"));
        assert_eq!(set.to_string(), "Analytics/Reports: View");
    }

    #[test]
    fn inferred_wire_names_are_recognised_and_aliases_are_not() {
        assert!(wire_name_inferred(&p(
            "CUSTOMER_SERVICE",
            "USE_CASE_ASSIST",
            Some("ENABLE"),
            None
        )));
        assert!(wire_name_inferred(&p(
            "PLATFORM",
            "USERS",
            Some("VIEW"),
            None
        )));
        assert!(!wire_name_inferred(&p(
            "PLATFORM",
            "SOURCE",
            Some("VIEW"),
            None
        )));
        assert!(!wire_name_inferred(&p(
            "SEARCH_API",
            "IMPERSONATE",
            None,
            None
        )));
        assert!(!wire_name_inferred(&p(
            "PLATFORM",
            "NO_SUCH_DOMAIN",
            None,
            None
        )));
    }

    #[test]
    fn explicit_over_a_template_rebuilds_the_set() {
        use crate::builtin::GroupTemplate;
        let template = GroupTemplate::FullAccess.privileges();
        let mut full = template.clone();
        full.set(*catalog::GROUPS, Grant::default());
        let explicit = explicit_over(&template, &full);
        assert_eq!(explicit.len(), 1);
        assert_eq!(explicit[0].level, AccessLevel::None);
        let (rebuilt, errors) = crate::effective::granted_by_spec(Some(template), &explicit);
        assert!(errors.is_empty());
        assert_eq!(rebuilt, full);
    }

    #[test]
    fn providers_round_trip_and_suffixes_are_stripped() {
        for p in [
            Provider::Email,
            Provider::Google,
            Provider::Microsoft,
            Provider::Salesforce,
            Provider::SalesforceSandbox,
            Provider::SingleSignOn,
        ] {
            assert_eq!(
                provider_from_platform(provider_to_platform(p).unwrap()),
                Some(p)
            );
        }
        // The platform has no "any listed provider" value: none is written,
        // and none is read from a value the platform does not have.
        assert_eq!(provider_to_platform(Provider::AnyListed), None);
        for not_the_platforms in ["ANY", "ANY_LISTED", "MICROSOFT", "SSO", ""] {
            assert_eq!(provider_from_platform(not_the_platforms), None);
        }
        assert_eq!(
            provider_from_platform("office365"),
            Some(Provider::Microsoft)
        );
        assert_eq!(
            plain_username("jsmith@email.com-google", "GOOGLE"),
            "jsmith@email.com"
        );
        assert_eq!(plain_username("a@b.example", "EMAIL"), "a@b.example");
    }
}
