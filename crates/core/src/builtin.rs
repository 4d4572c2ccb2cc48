//! Built-in groups and templates, as data.
//!
//! Sources (docs/design.md, "Catalog gaps"): only the Administrators row and
//! the Analytics rows of the built-in groups' comparison table survive in the
//! public sources; a worked example fixes the Analytics Viewers column
//! (including Impersonate: Allowed). Everything else below is our evident
//! choice from the role descriptions, marked `inferred`.

use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::{CATALOG, Create, Service};
use crate::privilege::{AccessLevel, PrivilegeSet, PrivilegeSpec, parse_all, spec};

/// The groups the operator creates in every new organization.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum BuiltinGroup {
    Administrators,
    AnalyticsManagers,
    AnalyticsViewers,
    ContentManagers,
    RelevanceManagers,
    Users,
}

impl BuiltinGroup {
    pub const ALL: [BuiltinGroup; 6] = [
        BuiltinGroup::Administrators,
        BuiltinGroup::AnalyticsManagers,
        BuiltinGroup::AnalyticsViewers,
        BuiltinGroup::ContentManagers,
        BuiltinGroup::RelevanceManagers,
        BuiltinGroup::Users,
    ];

    /// Object name of the seeded Group (`metadata.name`).
    pub fn object_name(self) -> &'static str {
        match self {
            BuiltinGroup::Administrators => "administrators",
            BuiltinGroup::AnalyticsManagers => "analytics-managers",
            BuiltinGroup::AnalyticsViewers => "analytics-viewers",
            BuiltinGroup::ContentManagers => "content-managers",
            BuiltinGroup::RelevanceManagers => "relevance-managers",
            BuiltinGroup::Users => "users",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            BuiltinGroup::Administrators => "Administrators",
            BuiltinGroup::AnalyticsManagers => "Analytics Managers",
            BuiltinGroup::AnalyticsViewers => "Analytics Viewers",
            BuiltinGroup::ContentManagers => "Content Managers",
            BuiltinGroup::RelevanceManagers => "Relevance Managers",
            BuiltinGroup::Users => "Users",
        }
    }

    /// The template that holds this group's default privileges.
    pub fn template(self) -> GroupTemplate {
        match self {
            BuiltinGroup::Administrators => GroupTemplate::Administrators,
            BuiltinGroup::AnalyticsManagers => GroupTemplate::AnalyticsManagers,
            BuiltinGroup::AnalyticsViewers => GroupTemplate::AnalyticsViewers,
            BuiltinGroup::ContentManagers => GroupTemplate::ContentManagers,
            BuiltinGroup::RelevanceManagers => GroupTemplate::RelevanceManagers,
            BuiltinGroup::Users => GroupTemplate::Users,
        }
    }
}

/// Privilege templates for groups: a starting point that explicit privileges
/// then adjust domain by domain.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum GroupTemplate {
    /// The highest level on every domain of every service, Can Create everywhere.
    FullAccess,
    /// The Administrators group's privileges (the same as FullAccess).
    Administrators,
    AnalyticsManagers,
    AnalyticsViewers,
    ContentManagers,
    RelevanceManagers,
    Users,
    /// Commerce-oriented: shape product search and recommendations. Inferred.
    Merchandisers,
}

/// API key templates.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum ApiKeyTemplate {
    /// Can be public: query public content and send analytics from a search page.
    AnonymousSearch,
    /// Must remain private: create search tokens for logged-in users, send analytics.
    AuthenticatedSearch,
    /// Can be public: send usage-analytics events under any identity.
    UsageAnalytics,
    /// Can be public: for hosted search pages.
    SearchPages,
    /// Must remain private: no predefined privileges.
    Custom,
}

/// Privacy tag of an API key template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Privacy {
    CanBePublic,
    MustRemainPrivate,
}

impl ApiKeyTemplate {
    pub fn privacy(self) -> Privacy {
        match self {
            ApiKeyTemplate::AnonymousSearch
            | ApiKeyTemplate::UsageAnalytics
            | ApiKeyTemplate::SearchPages => Privacy::CanBePublic,
            ApiKeyTemplate::AuthenticatedSearch | ApiKeyTemplate::Custom => {
                Privacy::MustRemainPrivate
            }
        }
    }

    /// Longest lifetime a key from this template may have, in days; also the
    /// lifetime of a key whose `spec.lifetime` is absent.
    ///
    /// Where the figures come from (docs/api-keys.md): the platform caps
    /// lifetimes per template (`enforcedLifetimePeriod`) and keys expire for
    /// good, but the cap values are not public. Our choice: 90 days for
    /// templates that "can be public" (their keys are exposed by design, so
    /// they must rotate out quickly) and 365 days for the "must remain
    /// private" ones. docs/api-keys.md lists them.
    pub fn max_lifetime_days(self) -> i64 {
        match self.privacy() {
            Privacy::CanBePublic => 90,
            Privacy::MustRemainPrivate => 365,
        }
    }

    /// The template a privilege is reserved to, if it is: a key from any other
    /// template (Custom included) cannot hold it.
    ///
    /// Evidence: the platform answers a Custom key holding Search Impersonate
    /// with an error; such keys must use the Authenticated search template,
    /// whose purpose is minting search tokens on a server (docs/api-keys.md,
    /// which cites the platform's documentation: a key allowed to
    /// impersonate is never exposed publicly).
    pub fn reserved_to(service: Service, domain: &str) -> Option<ApiKeyTemplate> {
        RESERVED
            .iter()
            .find(|(s, d, _)| *s == service && *d == domain)
            .map(|(_, _, t)| *t)
    }

    /// The template's privileges (parsed once: a template is constant).
    pub fn privileges(self) -> PrivilegeSet {
        static SETS: LazyLock<Vec<PrivilegeSet>> = LazyLock::new(|| {
            ApiKeyTemplate::ALL
                .iter()
                .map(|t| t.parse_privileges())
                .collect()
        });
        SETS[self as usize].clone()
    }

    /// Every API key template, in declaration order.
    pub const ALL: [ApiKeyTemplate; 5] = [
        ApiKeyTemplate::AnonymousSearch,
        ApiKeyTemplate::AuthenticatedSearch,
        ApiKeyTemplate::UsageAnalytics,
        ApiKeyTemplate::SearchPages,
        ApiKeyTemplate::Custom,
    ];

    fn parse_privileges(self) -> PrivilegeSet {
        use AccessLevel::*;
        use Service::*;
        let specs = match self {
            // Documented: Execute queries Allowed + Analytics data Push, nothing else.
            ApiKeyTemplate::AnonymousSearch => vec![
                spec(Search, "ExecuteQueries", Allowed),
                spec(Analytics, "AnalyticsData", Push),
            ],
            // What minting search tokens needs (docs/api-keys.md):
            // Search Impersonate to create tokens for a user, Analytics
            // Impersonate and Analytics data Push so the tokens' events are
            // logged as that user, Execute queries for the queries themselves.
            ApiKeyTemplate::AuthenticatedSearch => vec![
                spec(Search, "ExecuteQueries", Allowed),
                spec(Search, "Impersonate", Allowed),
                spec(Analytics, "Impersonate", Allowed),
                spec(Analytics, "AnalyticsData", Push),
            ],
            // Inferred: events under any identity = push + analytics impersonation.
            ApiKeyTemplate::UsageAnalytics => {
                vec![
                    spec(Analytics, "AnalyticsData", Push),
                    spec(Analytics, "Impersonate", Allowed),
                ]
            }
            // Inferred: a hosted page queries, pushes events and reads its page.
            ApiKeyTemplate::SearchPages => vec![
                spec(Search, "ExecuteQueries", Allowed),
                spec(Search, "SearchPages", View),
                spec(Analytics, "AnalyticsData", Push),
            ],
            ApiKeyTemplate::Custom => vec![],
        };
        parse_all(&specs).expect("API key template data is valid")
    }
}

/// Privileges reserved to one API key template (see [`ApiKeyTemplate::reserved_to`]).
const RESERVED: &[(Service, &str, ApiKeyTemplate)] = &[(
    Service::Search,
    "Impersonate",
    ApiKeyTemplate::AuthenticatedSearch,
)];

/// Every domain at its highest level, Can Create wherever the domain creates.
pub fn full_access() -> PrivilegeSet {
    static SET: LazyLock<PrivilegeSet> = LazyLock::new(parse_full_access);
    SET.clone()
}

fn parse_full_access() -> PrivilegeSet {
    let specs: Vec<PrivilegeSpec> = CATALOG
        .iter()
        .map(|d| {
            let o = d.offers;
            let level = if o.allowed {
                AccessLevel::Allowed
            } else if o.push {
                AccessLevel::PushAndView
            } else if o.edit {
                AccessLevel::Edit
            } else {
                AccessLevel::View
            };
            let mut s = spec(d.service, d.name, level);
            if level != AccessLevel::Edit && o.create == Create::Choosable {
                s.can_create = Some(true);
            }
            s
        })
        .collect();
    parse_all(&specs).expect("full access is valid")
}

impl GroupTemplate {
    /// Every group template, in declaration order.
    pub const ALL: [GroupTemplate; 8] = [
        GroupTemplate::FullAccess,
        GroupTemplate::Administrators,
        GroupTemplate::AnalyticsManagers,
        GroupTemplate::AnalyticsViewers,
        GroupTemplate::ContentManagers,
        GroupTemplate::RelevanceManagers,
        GroupTemplate::Users,
        GroupTemplate::Merchandisers,
    ];

    /// The template's privileges (parsed once: a template is constant).
    pub fn privileges(self) -> PrivilegeSet {
        static SETS: LazyLock<Vec<PrivilegeSet>> = LazyLock::new(|| {
            GroupTemplate::ALL
                .iter()
                .map(|t| t.parse_privileges())
                .collect()
        });
        SETS[self as usize].clone()
    }

    fn parse_privileges(self) -> PrivilegeSet {
        use AccessLevel::*;
        use Service::*;
        let org_view = || spec(Organization, "Organization", View);
        let specs = match self {
            GroupTemplate::FullAccess | GroupTemplate::Administrators => {
                return parse_full_access();
            }
            // Inferred from "manage usage analytics: dimensions, named filters, reports".
            GroupTemplate::AnalyticsManagers => vec![
                spec(Analytics, "AnalyticsData", View),
                spec(Analytics, "DataExports", Edit),
                spec(Analytics, "Dimensions", Edit),
                spec(Analytics, "NamedFilters", Edit),
                spec(Analytics, "PermissionFilters", View),
                spec(Analytics, "Reports", Edit),
                spec(Analytics, "ViewAllReports", Allowed),
                org_view(),
            ],
            // The worked example of docs/design.md ("Catalog gaps") fixes
            // DataExports, Dimensions, Impersonate, NamedFilters and no
            // Administrate. It disagrees with the old comparison table, read
            // as Data exports Edit and Impersonate for Administrators only:
            // the example wins (DataExports View, Impersonate Allowed), as the
            // evidence column of both rows in `catalog.rs` notes.
            GroupTemplate::AnalyticsViewers => vec![
                spec(Analytics, "AnalyticsData", View),
                spec(Analytics, "DataExports", View),
                spec(Analytics, "Dimensions", View),
                spec(Analytics, "Impersonate", Allowed),
                spec(Analytics, "NamedFilters", View),
                spec(Analytics, "PermissionFilters", View),
                spec(Analytics, "Reports", View),
                org_view(),
            ],
            // Seed 001: sources, fields, extensions, content browser queries, security identities.
            GroupTemplate::ContentManagers => vec![
                spec(Content, "Sources", Edit),
                spec(Content, "Fields", Edit),
                spec(Content, "Extensions", Edit),
                spec(Content, "SecurityIdentities", Edit),
                spec(Content, "SecurityIdentityProviders", Edit),
                spec(Content, "SourceMetadata", View),
                spec(Search, "ExecuteQueries", Allowed),
                spec(Organization, "Activities", View),
                org_view(),
            ],
            // Seed 001: query pipeline rules, ML models, reports on their impact.
            GroupTemplate::RelevanceManagers => vec![
                spec(Search, "QueryPipelines", Edit),
                spec(Search, "ExecuteQueries", Allowed),
                spec(MachineLearning, "Models", Edit),
                spec(Analytics, "AnalyticsData", View),
                spec(Analytics, "Reports", Edit),
                spec(Analytics, "Dimensions", View),
                spec(Analytics, "NamedFilters", View),
                org_view(),
            ],
            // Seed 001: use search interfaces, change nothing in the console.
            GroupTemplate::Users => vec![spec(Search, "ExecuteQueries", Allowed), org_view()],
            // Seed 001 names the template without its contents; inferred from the role.
            GroupTemplate::Merchandisers => vec![
                spec(Commerce, "Catalogs", View),
                spec(Commerce, "MerchandisingHub", Edit),
                spec(Search, "QueryPipelines", View),
                spec(Search, "ExecuteQueries", Allowed),
                spec(MachineLearning, "Models", View),
                spec(Analytics, "Reports", View),
                org_view(),
            ],
        };
        parse_all(&specs).expect("group template data is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_listed_in_order_and_parsed_once_as_they_read() {
        for (i, t) in GroupTemplate::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t:?}");
            assert_eq!(t.privileges(), t.parse_privileges(), "{t:?}");
        }
        for (i, t) in ApiKeyTemplate::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t:?}");
            assert_eq!(t.privileges(), t.parse_privileges(), "{t:?}");
        }
        assert_eq!(full_access(), parse_full_access());
    }

    #[test]
    fn every_template_is_valid_and_administrators_covers_all_of_them() {
        let admin = GroupTemplate::Administrators.privileges();
        for b in BuiltinGroup::ALL {
            assert!(admin.covers(&b.template().privileges()), "{b:?}");
        }
        for t in [GroupTemplate::Merchandisers, GroupTemplate::FullAccess] {
            assert!(admin.covers(&t.privileges()));
        }
        for t in [
            ApiKeyTemplate::AnonymousSearch,
            ApiKeyTemplate::AuthenticatedSearch,
            ApiKeyTemplate::UsageAnalytics,
            ApiKeyTemplate::SearchPages,
        ] {
            assert!(admin.covers(&t.privileges()));
            assert!(!t.privileges().is_empty());
        }
        assert!(ApiKeyTemplate::Custom.privileges().is_empty());
    }

    #[test]
    fn authenticated_search_holds_what_minting_search_tokens_needs() {
        let held = ApiKeyTemplate::AuthenticatedSearch.privileges().to_specs();
        for (service, domain) in [
            (Service::Search, "Impersonate"),
            (Service::Analytics, "Impersonate"),
            (Service::Analytics, "AnalyticsData"),
        ] {
            assert!(
                held.iter()
                    .any(|p| p.service == service && p.domain == domain),
                "{service:?}/{domain}"
            );
        }
        // Reserved privileges sit in the template they are reserved to.
        for (service, domain, t) in RESERVED {
            assert!(
                t.privileges()
                    .to_specs()
                    .iter()
                    .any(|p| p.service == *service && p.domain == *domain)
            );
            assert_eq!(ApiKeyTemplate::reserved_to(*service, domain), Some(*t));
        }
        assert_eq!(
            ApiKeyTemplate::reserved_to(Service::Analytics, "Impersonate"),
            None
        );
    }

    #[test]
    fn full_access_touches_every_domain() {
        assert_eq!(full_access().len(), CATALOG.len());
    }
}
