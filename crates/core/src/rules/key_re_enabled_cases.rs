//! Cases of `key_re_enabled.rs` (NoEscalation; docs/api-keys.md): enabling a
//! disabled key again is judged as creating it. Through [`super::check`], so
//! every rule a real request meets runs.

use super::*;
use crate::builtin::ApiKeyTemplate;
use crate::catalog;
use crate::catalog::Service;
use crate::effective::resolve_grantees;
use crate::model::AccessEntry;
use crate::privilege::Level;
use crate::privilege::ResourceLevel;
use crate::privilege::{AccessLevel, parse_all, spec};
use std::sync::Arc;

/// `k`: Content › Sources Edit, editable by group `helpers` through its
/// access list, and granted Edit on group `ops` by `ops`'s access list.
/// `search`: an AnonymousSearch key (its template's privileges only),
/// also editable by `helpers`.
fn state(k_enabled: bool) -> OrgState {
    let helpers_edit = AccessEntry {
        group: Some("helpers".into()),
        api_key: None,
        level: ResourceLevel::Edit,
    };
    let mut s = OrgState::default();
    s.groups.insert(
        "helpers".into(),
        Arc::new(GroupDef {
            name: "helpers".into(),
            ..GroupDef::default()
        }),
    );
    s.groups.insert(
        "ops".into(),
        Arc::new(GroupDef {
            name: "ops".into(),
            access: vec![AccessEntry {
                group: None,
                api_key: Some("k".into()),
                level: ResourceLevel::Edit,
            }],
            ..GroupDef::default()
        }),
    );
    s.api_keys.insert(
        "k".into(),
        Arc::new(ApiKeyDef {
            name: "k".into(),
            enabled: k_enabled,
            privileges: vec![spec(Service::Content, "Sources", AccessLevel::Edit)],
            access: vec![helpers_edit.clone()],
            ..ApiKeyDef::default()
        }),
    );
    s.api_keys.insert(
        "search".into(),
        Arc::new(ApiKeyDef {
            name: "search".into(),
            enabled: false,
            template: Some(ApiKeyTemplate::AnonymousSearch),
            access: vec![helpers_edit],
            ..ApiKeyDef::default()
        }),
    );
    s
}

/// What a requester holds: Edit on the keys (as `helpers` gets it), plus
/// `extra`.
fn requester(extra: PrivilegeSet, edit_on_ops: bool) -> Requester {
    let mut privileges = extra;
    privileges.add_resource(*catalog::API_KEYS, "k", Level::Edit);
    privileges.add_resource(*catalog::API_KEYS, "search", Level::Edit);
    if edit_on_ops {
        privileges.add_resource(*catalog::GROUPS, "ops", Level::Edit);
    }
    Requester::Members {
        user: "carol".into(),
        members: vec!["carol".into()],
        privileges,
    }
}

#[test]
fn enabling_a_disabled_key_needs_everything_it_holds() {
    let sources_edit = parse_all(&[spec(Service::Content, "Sources", AccessLevel::Edit)]).unwrap();
    let search = ApiKeyTemplate::AnonymousSearch.privileges();
    // (what, key, enabled before, enabled after, description changes,
    //  requester, refused with these words in spec.enabled's reason)
    type Case<'a> = (
        &'a str,
        &'a str,
        bool,
        bool,
        Requester,
        Option<&'a [&'a str]>,
    );
    let cases: Vec<Case> = vec![
        (
            "Edit on the key alone does not re-enable it",
            "k",
            false,
            true,
            requester(PrivilegeSet::new(), false),
            Some(&["enable API key 'k' again", "Content", "ops"]),
        ),
        (
            "its own privileges are not enough: an access list grants it more",
            "k",
            false,
            true,
            requester(sources_edit.clone(), false),
            Some(&["ops"]),
        ),
        (
            "holding everything it holds re-enables it",
            "k",
            false,
            true,
            requester(sources_edit.clone(), true),
            None,
        ),
        (
            "a template's privileges count",
            "search",
            false,
            true,
            requester(PrivilegeSet::new(), false),
            Some(&["enable API key 'search' again", "Search"]),
        ),
        (
            "holding the template's privileges re-enables it",
            "search",
            false,
            true,
            requester(search, false),
            None,
        ),
        (
            "disabling takes nothing from anyone but the key",
            "k",
            true,
            false,
            requester(PrivilegeSet::new(), false),
            None,
        ),
        (
            "editing a disabled key that stays disabled",
            "k",
            false,
            false,
            requester(PrivilegeSet::new(), false),
            None,
        ),
        (
            "editing an enabled key that stays enabled",
            "k",
            true,
            true,
            requester(PrivilegeSet::new(), false),
            None,
        ),
        (
            "a trusted principal re-enables it",
            "k",
            false,
            true,
            Requester::Trusted,
            None,
        ),
    ];
    for (what, name, before, after, who, refused) in cases {
        let state = state(before);
        let mut old = (*state.api_keys[name]).clone();
        old.enabled = before;
        let mut new = old.clone();
        new.enabled = after;
        new.display_name = Some("edited".into());
        let change = Change {
            operation: Operation::Update,
            name,
            old: Some(Object::ApiKey(&old)),
            new: Some(Object::ApiKey(&new)),
        };
        let violations = check(&state, &resolve_grantees(&state), &change, &who);
        match refused {
            None => assert!(violations.is_empty(), "{what}: refused: {violations:?}"),
            Some(words) => {
                let v = violations
                    .iter()
                    .find(|v| v.field == "spec.enabled")
                    .unwrap_or_else(|| {
                        panic!("{what}: not refused on spec.enabled: {violations:?}")
                    });
                assert_eq!(v.rule, Rule::NoEscalation, "{what}");
                for w in words {
                    assert!(v.message.contains(w), "{what}: {w:?} not in {}", v.message);
                }
                assert_eq!(violations.len(), 1, "{what}: {violations:?}");
            }
        }
    }
}
