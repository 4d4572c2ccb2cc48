//! The privilege catalog: every service and domain, and what each domain offers.
//!
//! This is data, kept in one table so it is easy to read and extend. Each row
//! carries its evidence (docs/design.md, "Catalog gaps"): where the public sources are
//! silent we chose the evident answer and mark the row [`Evidence::Inferred`]
//! with the reason, so a reviewer can find every guess in one place.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A family of related domains: one section of the administration console.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Service {
    Analytics,
    Commerce,
    Content,
    CustomerService,
    MachineLearning,
    Organization,
    Search,
}

impl Service {
    pub const ALL: [Service; 7] = [
        Service::Analytics,
        Service::Commerce,
        Service::Content,
        Service::CustomerService,
        Service::MachineLearning,
        Service::Organization,
        Service::Search,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Analytics => "Analytics",
            Service::Commerce => "Commerce",
            Service::Content => "Content",
            Service::CustomerService => "CustomerService",
            Service::MachineLearning => "MachineLearning",
            Service::Organization => "Organization",
            Service::Search => "Search",
        }
    }

    pub fn parse(s: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of organization resources that per-resource (Custom) grants name.
/// The Organization object declares which resources of each kind exist.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum ResourceKind {
    /// Content sources, declared in the Organization's `resources.sources`.
    Sources,
    /// Indexing pipeline extensions, declared in `resources.extensions`.
    Extensions,
    /// Query pipelines, declared in `resources.queryPipelines`.
    QueryPipelines,
    /// Groups of the organization: the Group objects themselves.
    Groups,
    /// API keys of the organization: the ApiKey objects themselves.
    ApiKeys,
    /// Usage-analytics tracking IDs ("Properties" in the console), declared in
    /// `resources.trackingIds`: the Merchandising Hub is granted per tracking ID.
    TrackingIds,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Sources => "sources",
            ResourceKind::Extensions => "extensions",
            ResourceKind::QueryPipelines => "queryPipelines",
            ResourceKind::Groups => "groups",
            ResourceKind::ApiKeys => "apiKeys",
            ResourceKind::TrackingIds => "trackingIds",
        }
    }
}

/// How a domain's Can Create ability relates to its access level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    /// The domain has nothing to create.
    No,
    /// Edit implies Can Create; View does not, and there is nothing to choose.
    WithEdit,
    /// Edit implies Can Create; with View all or Custom it is a separate choice.
    Choosable,
}

/// What a domain offers. A privilege using anything else is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offers {
    pub view: bool,
    pub edit: bool,
    pub allowed: bool,
    /// Analytics data only: the right to push usage-analytics events.
    pub push: bool,
    /// Per-resource levels, and the kind of resource they name.
    pub custom: Option<ResourceKind>,
    pub create: Create,
}

const fn view_edit(create: Create) -> Offers {
    Offers {
        view: true,
        edit: true,
        allowed: false,
        push: false,
        custom: None,
        create,
    }
}
const fn per_resource(kind: ResourceKind) -> Offers {
    Offers {
        view: true,
        edit: true,
        allowed: false,
        push: false,
        custom: Some(kind),
        create: Create::Choosable,
    }
}
/// Per-resource levels on a domain with nothing to create.
const fn per_resource_no_create(kind: ResourceKind) -> Offers {
    Offers {
        view: true,
        edit: true,
        allowed: false,
        push: false,
        custom: Some(kind),
        create: Create::No,
    }
}
const VIEW_ONLY: Offers = Offers {
    view: true,
    edit: false,
    allowed: false,
    push: false,
    custom: None,
    create: Create::No,
};
const ALLOWED: Offers = Offers {
    view: false,
    edit: false,
    allowed: true,
    push: false,
    custom: None,
    create: Create::No,
};
const VIEW_AND_PUSH: Offers = Offers {
    view: true,
    edit: false,
    allowed: false,
    push: true,
    custom: None,
    create: Create::No,
};

/// How sure we are of a catalog row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// Stated by the product documentation or the API specs.
    Documented,
    /// Documented, with the source or a note worth keeping next to the row: a
    /// correction of an earlier reading, or a disagreement between sources and
    /// which one we follow.
    Noted(&'static str),
    /// Our evident choice where the sources are silent; the text says what was chosen.
    Inferred(&'static str),
}

/// One domain of the catalog.
#[derive(Clone, Copy, Debug)]
pub struct Domain {
    pub service: Service,
    /// Identifier used in manifests, e.g. `DataExports`.
    pub name: &'static str,
    /// Console wording, e.g. "Data exports".
    pub display: &'static str,
    /// `owner/targetDomain` in the product's API.
    pub api: &'static str,
    pub offers: Offers,
    pub evidence: Evidence,
}

/// Dense index of a domain in [`CATALOG`]; privilege sets are keyed by it.
pub type DomainId = u16;

use Create::{No, WithEdit};
use Evidence::{Documented, Inferred, Noted};
use Service::*;

macro_rules! d {
    ($svc:expr, $name:literal, $display:literal, $api:literal, $offers:expr, $ev:expr) => {
        Domain {
            service: $svc,
            name: $name,
            display: $display,
            api: $api,
            offers: $offers,
            evidence: $ev,
        }
    };
}

/// The catalog, ordered by service then domain. `DomainId`s index this table.
pub static CATALOG: &[Domain] = &[
    // Analytics (owner USAGE_ANALYTICS)
    d!(
        Analytics,
        "Administrate",
        "Administrate",
        "USAGE_ANALYTICS/ADMINISTRATE",
        ALLOWED,
        Documented
    ),
    d!(
        Analytics,
        "AnalyticsData",
        "Analytics data",
        "USAGE_ANALYTICS/ANALYTICS_DATA",
        VIEW_AND_PUSH,
        Documented
    ),
    d!(
        Analytics,
        "DataExports",
        "Data exports",
        "USAGE_ANALYTICS/EXPORTS",
        view_edit(WithEdit),
        Inferred(
            "Can Create from the CREATE type in the API. Built-in defaults: Analytics Viewers get View where the old built-in group comparison table reads as Edit (docs/design.md)"
        )
    ),
    d!(
        Analytics,
        "DeleteUserData",
        "Delete user data",
        "USAGE_ANALYTICS/DELETE_USER_ANALYTICS_DATA",
        ALLOWED,
        Documented
    ),
    d!(
        Analytics,
        "Dimensions",
        "Dimensions",
        "USAGE_ANALYTICS/CUSTOM_DIMENSIONS",
        view_edit(WithEdit),
        Inferred("Can Create from the CREATE type in the API")
    ),
    d!(
        Analytics,
        "Impersonate",
        "Impersonate",
        "USAGE_ANALYTICS/IMPERSONATE",
        ALLOWED,
        Noted(
            "built-in defaults: Analytics Viewers get Allowed where the old built-in group comparison table gives it to Administrators only (docs/design.md)"
        )
    ),
    d!(
        Analytics,
        "IncoherentEvents",
        "Incoherent events",
        "USAGE_ANALYTICS/INCOHERENT_EVENTS",
        VIEW_ONLY,
        Documented
    ),
    d!(
        Analytics,
        "MetricAlerts",
        "Metric alerts",
        "USAGE_ANALYTICS/METRIC_ALERTS",
        view_edit(No),
        Documented
    ),
    d!(
        Analytics,
        "NamedFilters",
        "Named filters",
        "USAGE_ANALYTICS/NAMED_FILTERS",
        view_edit(WithEdit),
        Inferred("Can Create from the CREATE type in the API")
    ),
    d!(
        Analytics,
        "PermissionFilters",
        "Permission filters",
        "USAGE_ANALYTICS/PERMISSION_FILTERS",
        view_edit(WithEdit),
        Noted(
            "View, Edit and the CREATE type documented (owner/targetDomain table, docs/design.md)"
        )
    ),
    d!(
        Analytics,
        "Reports",
        "Reports",
        "USAGE_ANALYTICS/REPORTS",
        view_edit(WithEdit),
        Inferred("API types not retrieved; View/Edit seen in the console, creation with Edit")
    ),
    d!(
        Analytics,
        "SuggestQueries",
        "Suggest queries",
        "USAGE_ANALYTICS/QUERY_SUGGEST",
        ALLOWED,
        Noted(
            "API name QUERY_SUGGEST from the owner/targetDomain table (docs/design.md); earlier guessed as SUGGEST_QUERIES"
        )
    ),
    d!(
        Analytics,
        "TrackingIds",
        "Properties",
        "USAGE_ANALYTICS/TRACKING_ID",
        view_edit(No),
        Noted("console name \"Properties\" (tracking IDs), docs/design.md")
    ),
    d!(
        Analytics,
        "ViewAllReports",
        "View all reports",
        "USAGE_ANALYTICS/VIEW_ALL_REPORTS",
        ALLOWED,
        Noted("API name VIEW_ALL_REPORTS documented (docs/design.md)")
    ),
    // Commerce (owner COMMERCE)
    d!(
        Commerce,
        "Catalogs",
        "Catalogs",
        "COMMERCE/CATALOG",
        view_edit(No),
        Documented
    ),
    d!(
        Commerce,
        "MerchandisingHub",
        "Merchandising Hub",
        "COMMERCE/MERCHANDISING_HUB",
        per_resource_no_create(ResourceKind::TrackingIds),
        Noted(
            "the platform's API checks it per tracking ID (targetId), so it is granted per resource (docs/design.md)"
        )
    ),
    // Content (owner PLATFORM)
    d!(
        Content,
        "ConnectivityDiagnosticLogs",
        "Connectivity diagnostic logs",
        "PLATFORM/CONNECTIVITY_DIAGNOSTIC_LOGS",
        VIEW_ONLY,
        Inferred("console name not retrieved")
    ),
    d!(
        Content,
        "CrawlingModuleLogRequests",
        "Crawling Module log requests",
        "PLATFORM/CRAWLING_MODULE_LOG_REQUEST",
        view_edit(WithEdit),
        Inferred("console name not retrieved")
    ),
    d!(
        Content,
        "CrawlingModules",
        "Crawling Module",
        "PLATFORM/CRAWLING_MODULE",
        view_edit(No),
        Documented
    ),
    d!(
        Content,
        "Extensions",
        "Extensions",
        "PLATFORM/INDEXING_PIPELINE_EXTENSION",
        per_resource(ResourceKind::Extensions),
        Documented
    ),
    d!(
        Content,
        "Fields",
        "Fields",
        "PLATFORM/FIELD",
        view_edit(WithEdit),
        Documented
    ),
    d!(
        Content,
        "SecurityIdentities",
        "Security identities",
        "PLATFORM/SECURITY_CACHE",
        view_edit(No),
        Documented
    ),
    d!(
        Content,
        "SecurityIdentityProviders",
        "Security identity providers",
        "PLATFORM/SECURITY_PROVIDER",
        view_edit(WithEdit),
        Documented
    ),
    d!(
        Content,
        "SourceMetadata",
        "Source metadata",
        "PLATFORM/SOURCE_METADATA",
        VIEW_ONLY,
        Inferred("console name not retrieved")
    ),
    d!(
        Content,
        "Sources",
        "Sources",
        "PLATFORM/SOURCE",
        per_resource(ResourceKind::Sources),
        Documented
    ),
    // Customer Service. Levels and console names documented (docs/design.md); the
    // API names were not retrieved.
    d!(
        CustomerService,
        "CaseAssistConfiguration",
        "Case assist configuration",
        "CUSTOMER_SERVICE/CASE_ASSIST_CONFIGURATION",
        view_edit(WithEdit),
        Inferred(
            "View/Edit documented (docs/design.md); API name not retrieved; Can Create with Edit, as on most domains"
        )
    ),
    d!(
        CustomerService,
        "InsightPanelConfiguration",
        "Insight panel configuration",
        "CUSTOMER_SERVICE/INSIGHT_PANEL_CONFIGURATION",
        VIEW_ONLY,
        Inferred("View documented (docs/design.md); API name not retrieved")
    ),
    d!(
        CustomerService,
        "UseCaseAssist",
        "Use case assist",
        "CUSTOMER_SERVICE/USE_CASE_ASSIST",
        ALLOWED,
        Inferred("Allowed documented (docs/design.md); API name not retrieved")
    ),
    // Machine Learning (owner COVEO_ML)
    d!(
        MachineLearning,
        "AgentConfigurations",
        "Agent configurations",
        "COVEO_ML/AGENT_CONFIGURATION",
        view_edit(WithEdit),
        Inferred("console name not retrieved")
    ),
    d!(
        MachineLearning,
        "AllowContentPreview",
        "Allow content preview",
        "COVEO_ML/ALLOW_CONTENT_PREVIEW",
        ALLOWED,
        Inferred("console name not retrieved")
    ),
    d!(
        MachineLearning,
        "Models",
        "Models",
        "COVEO_ML/MODELS",
        view_edit(WithEdit),
        Documented
    ),
    // Organization (owner PLATFORM)
    d!(
        Organization,
        "Activities",
        "Activities",
        "PLATFORM/ACTIVITIES",
        view_edit(No),
        Noted(
            "View and Edit (Edit: pause, resume or cancel ongoing activities), docs/design.md; editing groups needs View here too (docs/rules.md)"
        )
    ),
    d!(
        Organization,
        "ApiKeys",
        "API keys",
        "PLATFORM/API_KEY",
        per_resource(ResourceKind::ApiKeys),
        Documented
    ),
    d!(
        Organization,
        "Groups",
        "Groups",
        "PLATFORM/GROUP",
        per_resource(ResourceKind::Groups),
        Documented
    ),
    d!(
        Organization,
        "Link",
        "Link",
        "PLATFORM/LINK",
        view_edit(WithEdit),
        Documented
    ),
    d!(
        Organization,
        "Notifications",
        "Notifications",
        "PLATFORM/SUBSCRIPTION",
        view_edit(WithEdit),
        Inferred("console name not retrieved")
    ),
    d!(
        Organization,
        "OnPremisesAdministration",
        "On-premises administration",
        "PLATFORM/ON_PREMISE_ADMINISTRATION",
        view_edit(No),
        Noted(
            "in the Organization service, console name \"On-premises administration\" (docs/design.md); was Content/OnPremiseAdministration"
        )
    ),
    d!(
        Organization,
        "Organization",
        "Organization",
        "PLATFORM/ORGANIZATION",
        view_edit(No),
        Noted("View is what opening the administration console needs (docs/design.md)")
    ),
    d!(
        Organization,
        "Projects",
        "Projects",
        "PLATFORM/PROJECTS",
        view_edit(WithEdit),
        Documented
    ),
    d!(
        Organization,
        "SingleSignOn",
        "SAML identity provider",
        "PLATFORM/SAML_IDENTITY_PROVIDER",
        view_edit(WithEdit),
        Documented
    ),
    d!(
        Organization,
        "Snapshots",
        "Snapshot",
        "PLATFORM/SNAPSHOTS",
        view_edit(WithEdit),
        Noted("console name \"Snapshot\" (docs/design.md)")
    ),
    d!(
        Organization,
        "TemporaryAccess",
        "Temporary access",
        "PLATFORM/TEMPORARY_ACCESS",
        view_edit(No),
        Documented
    ),
    d!(
        Organization,
        "Users",
        "Users",
        "PLATFORM/USERS",
        VIEW_ONLY,
        Inferred("API name not shown")
    ),
    d!(
        Organization,
        "VaultEntries",
        "Vault entries",
        "PLATFORM/VAULT_ENTRY",
        view_edit(WithEdit),
        Inferred("console name not retrieved")
    ),
    // Search (owner SEARCH_API)
    d!(
        Search,
        "AuthenticationEditor",
        "Modify authentication provider",
        "SEARCH_API/AUTHENTICATION_EDITOR",
        ALLOWED,
        Noted("console name \"Modify authentication provider\" (docs/design.md)")
    ),
    d!(
        Search,
        "ExecuteQueries",
        "Execute queries",
        "SEARCH_API/EXECUTE_QUERY",
        ALLOWED,
        Documented
    ),
    d!(
        Search,
        "ExpressionValidation",
        "Expression validation",
        "SEARCH_API/EXPRESSION_VALIDATION_RESULT",
        VIEW_ONLY,
        Inferred("console name not retrieved")
    ),
    // Creating search tokens. Reserved to the AuthenticatedSearch API key
    // template: the platform refuses it on a Custom key
    // (`ApiKeyTemplate::reserved_to`, docs/api-keys.md).
    d!(
        Search,
        "Impersonate",
        "Impersonate",
        "SEARCH_API/IMPERSONATE_SEARCH_API",
        ALLOWED,
        Noted(
            "the current token endpoint requires IMPERSONATE_SEARCH_API (type ENABLE); older tools name it SEARCH_API/IMPERSONATE, accepted as an alias (API_ALIASES)"
        )
    ),
    d!(
        Search,
        "QueryPipelines",
        "Query pipelines",
        "SEARCH_API/QUERY_PIPELINE",
        per_resource(ResourceKind::QueryPipelines),
        Noted(
            "per-pipeline View/Edit documented (docs/design.md), besides the pipeline Access tab"
        )
    ),
    d!(
        Search,
        "ReplayAnyQuery",
        "Replay any query",
        "SEARCH_API/REPLAY_ANY_QUERY",
        VIEW_ONLY,
        Inferred("console name not retrieved")
    ),
    d!(
        Search,
        "SearchPages",
        "Search pages",
        "SEARCH_API/SEARCH_PAGES",
        view_edit(WithEdit),
        Documented
    ),
    d!(
        Search,
        "ViewAllContent",
        "View all content",
        "SEARCH_API/VIEW_ALL_CONTENT",
        ALLOWED,
        Documented
    ),
];

static BY_NAME: LazyLock<HashMap<(Service, &'static str), DomainId>> = LazyLock::new(|| {
    CATALOG
        .iter()
        .enumerate()
        .map(|(i, d)| ((d.service, d.name), i as DomainId))
        .collect()
});

/// Looks a domain up by service and identifier.
pub fn lookup(service: Service, name: &str) -> Option<DomainId> {
    BY_NAME.get(&(service, name)).copied()
}

pub fn domain(id: DomainId) -> &'static Domain {
    &CATALOG[id as usize]
}

/// The domain that per-resource grants of this kind live on.
pub fn domain_for_resources(kind: ResourceKind) -> DomainId {
    CATALOG
        .iter()
        .position(|d| d.offers.custom == Some(kind))
        .expect("every resource kind has a domain") as DomainId
}

/// Well-known domains the rules refer to.
pub static GROUPS: LazyLock<DomainId> =
    LazyLock::new(|| domain_for_resources(ResourceKind::Groups));
pub static API_KEYS: LazyLock<DomainId> =
    LazyLock::new(|| domain_for_resources(ResourceKind::ApiKeys));
pub static ORGANIZATION: LazyLock<DomainId> = LazyLock::new(|| {
    lookup(Service::Organization, "Organization").expect("catalog has Organization")
});
pub static ACTIVITIES: LazyLock<DomainId> =
    LazyLock::new(|| lookup(Service::Organization, "Activities").expect("catalog has Activities"));

/// Other `owner/targetDomain` names the platform uses for a domain of the
/// catalog: accepted on import, never written.
pub static API_ALIASES: &[(&str, &str)] = &[
    // Older tools (the coveo/cli privilege definitions) name Search
    // Impersonate this way; the current token endpoint uses the catalog's name.
    (
        "SEARCH_API/IMPERSONATE",
        "SEARCH_API/IMPERSONATE_SEARCH_API",
    ),
];

/// The `owner/targetDomain` names that are our inference: no source states
/// them (the row's evidence says "API name not retrieved" or "not shown"). The
/// console names and levels of these domains are documented; what the
/// platform's API calls them is not. Export refuses them unless asked
/// (docs/import-export.md, "Inferred wire names").
pub static INFERRED_API_NAMES: &[&str] = &[
    "CUSTOMER_SERVICE/CASE_ASSIST_CONFIGURATION",
    "CUSTOMER_SERVICE/INSIGHT_PANEL_CONFIGURATION",
    "CUSTOMER_SERVICE/USE_CASE_ASSIST",
    "PLATFORM/USERS",
];

/// Is the platform's name of this domain (`Domain::api`) our inference?
pub fn api_name_inferred(d: DomainId) -> bool {
    INFERRED_API_NAMES.contains(&domain(d).api)
}

static BY_API: LazyLock<HashMap<&'static str, DomainId>> = LazyLock::new(|| {
    let mut map: HashMap<&'static str, DomainId> = CATALOG
        .iter()
        .enumerate()
        .map(|(i, d)| (d.api, i as DomainId))
        .collect();
    for (alias, name) in API_ALIASES {
        let id = map[name];
        map.insert(alias, id);
    }
    map
});

/// Looks a domain up by the platform's `owner/targetDomain` (or an alias).
pub fn lookup_api(owner: &str, target_domain: &str) -> Option<DomainId> {
    BY_API
        .get(format!("{owner}/{target_domain}").as_str())
        .copied()
}

/// Domains that moved to another service, by their old service and name:
/// the error for the old place names the new one.
static MOVED: &[(Service, &str, Service, &str)] = &[(
    Service::Content,
    "OnPremiseAdministration",
    Service::Organization,
    "OnPremisesAdministration",
)];

/// Where a domain that moved lives now.
pub fn moved(service: Service, name: &str) -> Option<(Service, &'static str)> {
    MOVED
        .iter()
        .find(|(s, n, _, _)| *s == service && *n == name)
        .map(|(_, _, s, n)| (*s, *n))
}

/// Domain identifiers of a service, for error messages.
pub fn domains_of(service: Service) -> impl Iterator<Item = &'static str> {
    CATALOG
        .iter()
        .filter(move |d| d.service == service)
        .map(|d| d.name)
}

/// The closest known domain name in a service, to suggest a fix for a typo.
pub fn suggest(service: Service, name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    domains_of(service)
        .map(|d| (edit_distance(&lower, &d.to_ascii_lowercase()), d))
        .filter(|(dist, d)| *dist <= 3.max(d.len() / 3))
        .min()
        .map(|(_, d)| d)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_sorted_per_service() {
        assert_eq!(BY_NAME.len(), CATALOG.len());
        for pair in CATALOG.windows(2) {
            assert!(
                (pair[0].service, pair[0].name) < (pair[1].service, pair[1].name),
                "{:?}",
                pair[1].name
            );
        }
    }

    #[test]
    fn every_domain_offers_something_coherent() {
        for d in CATALOG {
            let o = d.offers;
            assert!(o.view || o.allowed, "{} offers nothing", d.name);
            assert!(
                !(o.allowed && (o.view || o.edit)),
                "{} mixes Allowed with levels",
                d.name
            );
            if o.custom.is_some() {
                // Can Create is a choice beside View all / Custom where the
                // domain creates; Merchandising Hub creates nothing.
                assert!(
                    o.view && o.edit && o.create != Create::WithEdit,
                    "{}",
                    d.name
                );
            }
            if o.create != Create::No {
                assert!(o.edit, "{} creates without Edit", d.name);
            }
        }
    }

    #[test]
    fn the_four_custom_domains_of_the_docs_query_pipelines_and_merchandising_hub_offer_custom() {
        let custom: Vec<_> = CATALOG
            .iter()
            .filter(|d| d.offers.custom.is_some())
            .map(|d| d.name)
            .collect();
        assert_eq!(
            custom,
            [
                "MerchandisingHub",
                "Extensions",
                "Sources",
                "ApiKeys",
                "Groups",
                "QueryPipelines"
            ]
        );
    }

    #[test]
    fn api_names_are_unique_and_aliases_resolve_to_the_catalog_name() {
        let names: std::collections::HashSet<_> = CATALOG.iter().map(|d| d.api).collect();
        assert_eq!(names.len(), CATALOG.len());
        let impersonate = lookup(Service::Search, "Impersonate").unwrap();
        assert_eq!(lookup_api("SEARCH_API", "IMPERSONATE"), Some(impersonate));
        assert_eq!(
            lookup_api("SEARCH_API", "IMPERSONATE_SEARCH_API"),
            Some(impersonate)
        );
        assert_eq!(domain(impersonate).api, "SEARCH_API/IMPERSONATE_SEARCH_API");
        for (alias, _) in API_ALIASES {
            assert!(
                !names.contains(alias),
                "{alias} is an alias and a catalog name"
            );
        }
    }

    #[test]
    fn the_catalog_corrections_hold() {
        let at = |s, n| domain(lookup(s, n).unwrap());
        assert_eq!(
            at(Service::Analytics, "SuggestQueries").api,
            "USAGE_ANALYTICS/QUERY_SUGGEST"
        );
        let activities = at(Service::Organization, "Activities").offers;
        assert!(activities.view && activities.edit);
        assert_eq!(lookup(Service::Content, "OnPremiseAdministration"), None);
        assert_eq!(
            moved(Service::Content, "OnPremiseAdministration"),
            Some((Service::Organization, "OnPremisesAdministration"))
        );
        assert_eq!(
            at(Service::Organization, "OnPremisesAdministration").display,
            "On-premises administration"
        );
        let cs: Vec<_> = domains_of(Service::CustomerService).collect();
        assert_eq!(
            cs,
            [
                "CaseAssistConfiguration",
                "InsightPanelConfiguration",
                "UseCaseAssist"
            ]
        );
        assert!(at(Service::CustomerService, "UseCaseAssist").offers.allowed);
        let insight = at(Service::CustomerService, "InsightPanelConfiguration").offers;
        assert!(insight.view && !insight.edit);
        assert_eq!(
            at(Service::Commerce, "MerchandisingHub").offers.custom,
            Some(ResourceKind::TrackingIds)
        );
        for (s, n) in [
            (Service::Search, "QueryPipelines"),
            (Service::Analytics, "ViewAllReports"),
            (Service::Analytics, "PermissionFilters"),
        ] {
            assert!(
                !matches!(at(s, n).evidence, Evidence::Inferred(_)),
                "{n} is documented now"
            );
        }
        assert_eq!(
            at(Service::Search, "AuthenticationEditor").display,
            "Modify authentication provider"
        );
        assert_eq!(at(Service::Organization, "Snapshots").display, "Snapshot");
        assert_eq!(at(Service::Analytics, "TrackingIds").display, "Properties");
    }

    #[test]
    fn inferred_api_names_are_exactly_the_rows_whose_api_name_was_not_retrieved() {
        for name in INFERRED_API_NAMES {
            let (owner, target) = name.split_once('/').unwrap();
            let d = lookup_api(owner, target).expect("an inferred name is a catalog name");
            assert!(api_name_inferred(d));
        }
        for (i, d) in CATALOG.iter().enumerate() {
            let says = match d.evidence {
                Evidence::Inferred(why) => {
                    why.contains("API name not retrieved") || why.contains("API name not shown")
                }
                _ => false,
            };
            assert_eq!(
                api_name_inferred(i as DomainId),
                says,
                "{}: the list and the evidence column disagree",
                d.api
            );
        }
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(suggest(Service::Analytics, "Report"), Some("Reports"));
        assert_eq!(suggest(Service::Content, "sources"), Some("Sources"));
        assert_eq!(suggest(Service::Content, "Zzzzzzzzzzzzzz"), None);
    }
}
