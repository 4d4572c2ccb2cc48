//! Cases of `deletion_widens.rs` (NoEscalation, the second-order invariant:
//! docs/security.md): deleting hands the object's re-creation to whoever applies its
//! manifest, with defaults for every field the manifest does not name.
//! Through [`super::check`], so every rule a real request meets runs.

use super::*;
use crate::builtin::{ApiKeyTemplate, GroupTemplate};
use crate::catalog;
use crate::catalog::Service;
use crate::effective::resolve_grantees;
use crate::model::AccessEntry;
use crate::privilege::Level;
use crate::privilege::{AccessLevel, ResourceLevel, spec};
use std::sync::Arc;

/// `narrowed`: FullAccess, narrowed to Organization/ApiKeys: View by an
/// explicit privilege; `plain`: Content/Sources Edit, no template;
/// `off`: a disabled key; `on`: an enabled one. `helpers` may edit all four.
fn state() -> OrgState {
    let helpers_edit = AccessEntry {
        group: Some("helpers".into()),
        api_key: None,
        level: ResourceLevel::Edit,
    };
    let mut s = OrgState::default();
    for (name, template, privileges) in [
        ("helpers", None, vec![]),
        (
            "narrowed",
            Some(GroupTemplate::FullAccess),
            vec![spec(Service::Organization, "ApiKeys", AccessLevel::View)],
        ),
        (
            "plain",
            None,
            vec![spec(Service::Content, "Sources", AccessLevel::Edit)],
        ),
    ] {
        s.groups.insert(
            name.into(),
            Arc::new(GroupDef {
                name: name.into(),
                template,
                privileges,
                access: vec![helpers_edit.clone()],
                ..GroupDef::default()
            }),
        );
    }
    for (name, enabled) in [("off", false), ("on", true)] {
        s.api_keys.insert(
            name.into(),
            Arc::new(ApiKeyDef {
                name: name.into(),
                enabled,
                template: Some(ApiKeyTemplate::AnonymousSearch),
                access: vec![helpers_edit.clone()],
                ..ApiKeyDef::default()
            }),
        );
    }
    s
}

fn requester(extra: PrivilegeSet) -> Requester {
    let mut privileges = extra;
    for g in ["helpers", "narrowed", "plain"] {
        privileges.add_resource(*catalog::GROUPS, g, Level::Edit);
    }
    for k in ["off", "on"] {
        privileges.add_resource(*catalog::API_KEYS, k, Level::Edit);
    }
    privileges.merge_in(&activities_view());
    Requester::Members {
        user: "carol".into(),
        members: vec!["carol".into()],
        privileges,
    }
}

#[test]
fn deleting_what_a_re_creation_would_widen_needs_the_difference() {
    let s = state();
    let grantees = resolve_grantees(&s);
    let full = GroupTemplate::FullAccess.privileges();
    let search = ApiKeyTemplate::AnonymousSearch.privileges();
    // (what, kind and name, requester's extra privileges, refused with these words)
    type Case<'a> = (
        &'a str,
        (&'a str, &'a str),
        PrivilegeSet,
        Option<&'a [&'a str]>,
    );
    let cases: Vec<Case> = vec![
        (
            "a group without a template may be deleted with Edit on it",
            ("group", "plain"),
            PrivilegeSet::new(),
            None,
        ),
        (
            "a template narrowed by an explicit privilege comes back whole",
            ("group", "narrowed"),
            PrivilegeSet::new(),
            Some(&["cannot delete group 'narrowed'", "ApiKeys"]),
        ),
        (
            "holding the whole template deletes it",
            ("group", "narrowed"),
            full,
            None,
        ),
        (
            "a disabled key comes back enabled",
            ("key", "off"),
            PrivilegeSet::new(),
            Some(&["cannot delete API key 'off'", "enabled again", "Search"]),
        ),
        (
            "holding what the disabled key holds deletes it",
            ("key", "off"),
            search,
            None,
        ),
        (
            "an enabled key with nothing narrowed goes with Edit on it",
            ("key", "on"),
            PrivilegeSet::new(),
            None,
        ),
    ];
    for (what, (kind, name), extra, refused) in cases {
        let old = match kind {
            "group" => Object::Group(&s.groups[name]),
            _ => Object::ApiKey(&s.api_keys[name]),
        };
        let change = Change {
            operation: Operation::Delete,
            name,
            old: Some(old),
            new: None,
        };
        let found = check(&s, &grantees, &change, &requester(extra));
        match refused {
            None => assert!(found.is_empty(), "{what}: refused: {found:?}"),
            Some(words) => {
                let v = found
                    .iter()
                    .find(|v| v.rule == Rule::NoEscalation)
                    .unwrap_or_else(|| panic!("{what}: not refused: {found:?}"));
                for w in words {
                    assert!(v.message.contains(w), "{what}: {w:?} not in {}", v.message);
                }
            }
        }
    }
}
