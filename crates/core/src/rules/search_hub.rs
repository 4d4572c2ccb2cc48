//! A key bound to a search hub (`spec.searchHub`), judged by two rules:
//!
//! - CatalogValidity ([`search_hub_valid`], for everyone): the name is one
//!   orgaccess accepts (`apikey::search_hub_problem`), and the key can execute
//!   queries (Search/ExecuteQueries, from its template or its privileges):
//!   the platform's binding (`search.enforcedQueryPipelineConfiguration.searchHub`,
//!   "forces a search hub") applies to the key's queries, so on a key that
//!   runs none it would promise a restriction that restricts nothing. Refused,
//!   not warned: a reader of the manifest would take the key for scoped.
//! - NoEscalation ([`search_hub_widened`], untrusted requesters): removing or
//!   changing the hub of a bound key lets its queries reach hubs they could
//!   not reach before. That is granting the key's Search/ExecuteQueries anew,
//!   so the requester must hold it, as creating the key unbound would ask.
//!   Binding a key that was unbound only narrows it: Edit on the key suffices.

use super::{Change, Object, Requester, Rule, Violation, violation};
use crate::apikey::{queries_of, search_hub_problem};
use crate::effective::api_key_spec_privileges;
use crate::model::ApiKeyDef;
use crate::privilege::PrivilegeSet;

/// CatalogValidity for `spec.searchHub`: a name orgaccess accepts, on a key
/// that can execute queries.
pub(super) fn search_hub_valid(k: &ApiKeyDef, out: &mut Vec<Violation>) {
    let Some(hub) = &k.search_hub else { return };
    if let Some(why) = search_hub_problem(hub) {
        out.push(violation(Rule::CatalogValidity, "spec.searchHub", why));
        return;
    }
    if queries_of(&api_key_spec_privileges(k)).is_empty() {
        out.push(violation(
            Rule::CatalogValidity,
            "spec.searchHub",
            format!(
                "a search hub binds the key's queries, and this key cannot execute queries \
                 (no Search/ExecuteQueries: Allowed from its template or privileges), so '{hub}' would restrict nothing; \
                 remove spec.searchHub, or grant Search/ExecuteQueries (template AnonymousSearch, AuthenticatedSearch or SearchPages)"
            ),
        ));
    }
}

/// NoEscalation for `spec.searchHub`: removing or changing a key's hub
/// grants its Search/ExecuteQueries beyond the hub; the requester must hold it.
pub(super) fn search_hub_widened(
    change: &Change,
    requester: &Requester,
    mine: &PrivilegeSet,
) -> Option<Violation> {
    let (Some(Object::ApiKey(old)), Some(Object::ApiKey(new))) = (change.old, change.new) else {
        return None;
    };
    let before = old.search_hub.as_ref()?;
    if new.search_hub.as_ref() == Some(before) {
        return None;
    }
    let lacking = mine.missing(&queries_of(&api_key_spec_privileges(new)));
    if lacking.is_empty() {
        return None;
    }
    let what = match &new.search_hub {
        Some(after) => format!(
            "moving API key '{}' from search hub '{before}' to '{after}'",
            change.name
        ),
        None => format!(
            "removing search hub '{before}' from API key '{}'",
            change.name
        ),
    };
    Some(violation(
        Rule::NoEscalation,
        "spec.searchHub",
        format!(
            "{} cannot widen a key's queries: {what} lets them reach search hubs they could not, \
             which grants its Search/ExecuteQueries anew; missing: {lacking}. Keep the hub, or ask someone who holds it",
            requester.describe()
        ),
    ))
}

#[cfg(test)]
mod cases {
    use crate::builtin::ApiKeyTemplate;
    use crate::model::ApiKeyDef;
    use crate::privilege::AccessLevel::{Allowed, Edit, None as NoAccess};
    use crate::rules::Rule::{CatalogValidity, NoEscalation, RequiredPrivileges};
    use crate::rules::table::{
        Def, Verdict::*, Who::*, create, four_privileges, group, member, org, privilege, run_in,
        update,
    };
    use std::sync::Arc;

    fn key(template: ApiKeyTemplate, hub: Option<&str>) -> ApiKeyDef {
        ApiKeyDef {
            name: "new-key".into(),
            display_name: Some("Search".into()),
            template: Some(template),
            enabled: true,
            search_hub: hub.map(str::to_string),
            ..ApiKeyDef::default()
        }
    }

    fn hub(k: &ApiKeyDef, hub: Option<&str>) -> Def {
        Def::ApiKey(ApiKeyDef {
            search_hub: hub.map(str::to_string),
            ..k.clone()
        })
    }

    /// The table's organization, plus the AnonymousSearch key `search` bound
    /// to hub `community`, `keeper` (Edit on API keys, no query execution)
    /// and `searcher` (the same and Search/ExecuteQueries).
    fn state() -> crate::model::OrgState {
        let mut s = org();
        let mut keepers = four_privileges();
        keepers.push(privilege("Organization", "ApiKeys", Edit));
        let mut searchers = keepers.clone();
        searchers.push(privilege("Search", "ExecuteQueries", Allowed));
        for (g, m, p) in [
            ("keepers", "keeper", keepers),
            ("searchers", "searcher", searchers),
        ] {
            s.groups.insert(g.into(), Arc::new(group(g, p)));
            s.members.insert(m.into(), Arc::new(member(m, &[g])));
        }
        let k = ApiKeyDef {
            name: "search".into(),
            ..key(ApiKeyTemplate::AnonymousSearch, Some("community"))
        };
        s.api_keys.insert(k.name.clone(), Arc::new(k));
        s
    }

    #[test]
    fn table() {
        let s = state();
        let stored = s.api_keys["search"].clone();
        let unbound = ApiKeyDef {
            search_hub: None,
            ..(*stored).clone()
        };
        let usage = key(ApiKeyTemplate::UsageAnalytics, Some("community"));
        let custom_queries = ApiKeyDef {
            privileges: vec![privilege("Search", "ExecuteQueries", Allowed)],
            ..key(ApiKeyTemplate::Custom, Some("agent panel"))
        };
        let cases = vec![
            (
                "a search key bound to a hub is admitted",
                User("olivia"),
                create(Def::ApiKey(key(
                    ApiKeyTemplate::AnonymousSearch,
                    Some("community"),
                ))),
                Admitted,
            ),
            (
                "a Custom key granted Execute queries may be bound (a space inside the name is allowed)",
                User("olivia"),
                create(Def::ApiKey(custom_queries)),
                Admitted,
            ),
            (
                "a key that cannot execute queries cannot be bound: the hub would restrict nothing",
                Trusted,
                create(Def::ApiKey(usage)),
                Refused(CatalogValidity),
            ),
            (
                "a search hub name with a character a header cannot carry unchanged is refused",
                Trusted,
                create(Def::ApiKey(key(
                    ApiKeyTemplate::AnonymousSearch,
                    Some("hub\u{e9}"),
                ))),
                Refused(CatalogValidity),
            ),
            (
                "a search hub name with a space at its end is refused (gateways trim header values)",
                Trusted,
                create(Def::ApiKey(key(
                    ApiKeyTemplate::AnonymousSearch,
                    Some("community "),
                ))),
                Refused(CatalogValidity),
            ),
            (
                "an empty search hub is refused",
                Trusted,
                create(Def::ApiKey(key(ApiKeyTemplate::AnonymousSearch, Some("")))),
                Refused(CatalogValidity),
            ),
            (
                "dropping Execute queries while keeping the hub is refused",
                Trusted,
                update(
                    Def::ApiKey((*stored).clone()),
                    Def::ApiKey(ApiKeyDef {
                        privileges: vec![privilege("Search", "ExecuteQueries", NoAccess)],
                        ..(*stored).clone()
                    }),
                ),
                Refused(CatalogValidity),
            ),
            (
                "Edit on the key without Execute queries cannot remove its hub",
                User("keeper"),
                update(Def::ApiKey((*stored).clone()), hub(&stored, None)),
                Refused(NoEscalation),
            ),
            (
                "Edit on the key without Execute queries cannot move it to another hub",
                User("keeper"),
                update(
                    Def::ApiKey((*stored).clone()),
                    hub(&stored, Some("intranet")),
                ),
                Refused(NoEscalation),
            ),
            (
                "Edit on the key without Execute queries may leave its hub as it is",
                User("keeper"),
                update(
                    Def::ApiKey((*stored).clone()),
                    Def::ApiKey(ApiKeyDef {
                        enabled: false,
                        ..(*stored).clone()
                    }),
                ),
                Admitted,
            ),
            (
                "Edit on the key without Execute queries may bind an unbound key (narrowing)",
                User("keeper"),
                update(
                    Def::ApiKey(unbound.clone()),
                    hub(&unbound, Some("intranet")),
                ),
                Admitted,
            ),
            (
                "a holder of Execute queries with Edit on the key may remove its hub",
                User("searcher"),
                update(Def::ApiKey((*stored).clone()), hub(&stored, None)),
                Admitted,
            ),
            (
                "a viewer (no Edit on the key) cannot remove its hub",
                User("viewer"),
                update(Def::ApiKey((*stored).clone()), hub(&stored, None)),
                Refused(RequiredPrivileges),
            ),
            (
                "a trusted principal may remove the hub",
                Trusted,
                update(Def::ApiKey((*stored).clone()), hub(&stored, None)),
                Admitted,
            ),
        ];
        run_in(s, cases, crate::rules::check);
    }
}
