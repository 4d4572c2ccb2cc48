//! Warnings: what is suspicious about a change the rules allow. The webhook
//! sends them as `AdmissionResponse.warnings` (kubectl prints each as
//! `Warning: ...`) and `orgaccess check` prints the same, from the same
//! function. A warning never refuses anything.
//!
//! The names an object refers to that its organization does not hold
//! ([`unresolved_references`]) are in `references.rs`, beneath the advisor
//! that reports them too; the controller reports the same set in the
//! `ResolvedRefs` condition.

use crate::apikey::effective_lifetime_days;
use crate::bounds::truncate;
use crate::builtin::ApiKeyTemplate;
use crate::effective::member_groups;
use crate::model::{AccessEntry, Kind, OrgState};
use crate::rules::{Change, Object, Operation};

pub use crate::bounds::{MAX_WARNING_BYTES, MAX_WARNINGS};
pub use crate::references::{Unresolved, unresolved_references};

/// Most object names listed in one warning; the rest are counted.
const MAX_NAMES: usize = 5;

/// What is suspicious about an allowed change, in `state` (the organization
/// the rules judged it in), at most [`MAX_WARNINGS`] of at most
/// [`MAX_WARNING_BYTES`] each.
pub fn warnings(state: &OrgState, change: &Change) -> Vec<String> {
    let mut out = match (change.operation, change.new, change.old) {
        (Operation::Delete, _, Some(old)) => still_referred_to(state, old, change.name),
        (_, Some(new), _) => about_the_object(state, new, change.name),
        _ => Vec::new(),
    };
    if out.len() > MAX_WARNINGS {
        let rest = out.len() - (MAX_WARNINGS - 1);
        out.truncate(MAX_WARNINGS - 1);
        out.push(format!("... and {rest} more warnings"));
    }
    out.into_iter()
        .map(|w| truncate(w, MAX_WARNING_BYTES))
        .collect()
}

/// Every warning of an allowed change, as the webhook sends them and
/// `orgaccess check` prints them: [`warnings`], then the least-privilege
/// findings the change creates ([`crate::advice::change_warnings`]; see
/// there for `members_of`).
pub fn with_advice(
    state: &OrgState,
    grantees: &crate::effective::Grantees,
    change: &Change,
    members_of: &crate::advice::MembersOf,
    now: jiff::Timestamp,
) -> Vec<String> {
    let mut out = warnings(state, change);
    out.extend(crate::advice::change_warnings(
        state, grantees, change, members_of, now,
    ));
    out
}

/// [`with_advice`], the advisor asking `lookups` (an index's, kept for
/// `state`) instead of passes over the state.
pub fn with_advice_from(
    state: &OrgState,
    change: &Change,
    lookups: &dyn crate::advice::Lookups,
    now: jiff::Timestamp,
) -> Vec<String> {
    let mut out = warnings(state, change);
    out.extend(crate::advice::change_warnings_with(
        state, change, lookups, now,
    ));
    out
}

/// Dangling names, a member in no group, a key without a lifetime of its own.
fn about_the_object(state: &OrgState, object: Object, name: &str) -> Vec<String> {
    let mut out: Vec<String> = unresolved_references(state, object, name)
        .into_iter()
        .map(|u| {
            let effect = match (&object, u.kind) {
                (Object::Member(_), _) => "the invitation gives nothing until it is created",
                (Object::Group(_), Kind::Group) if u.field == "spec.duplicateOf" => {
                    "the duplicate records a source that is not there"
                }
                _ => "the access entry gives nothing until it is created",
            };
            format!(
                "{}: {} does not exist in this namespace; {effect}",
                u.field,
                u.describe()
            )
        })
        .collect();
    match object {
        Object::Member(m) if member_groups(state, m).is_empty() => out.push(
            "spec.groups: the member is in no group (none invited, no identity set matches): they hold no privileges"
                .into(),
        ),
        Object::ApiKey(k) if k.lifetime.is_none() => {
            let template = k.template.unwrap_or(ApiKeyTemplate::Custom);
            let (days, _) = effective_lifetime_days(template, None);
            out.push(format!(
                "spec.lifetime: not set, so the key lives the {days} days its template {template:?} allows; \
                 set spec.lifetime (e.g. P30D) to choose when it expires"
            ));
        }
        _ => {}
    }
    out
}

/// Deleting a group or API key that other objects still name.
fn still_referred_to(state: &OrgState, object: Object, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let named = |list: &[AccessEntry]| {
        list.iter().any(|e| match object {
            Object::Group(_) => e.group.as_deref() == Some(name),
            _ => e.api_key.as_deref() == Some(name),
        })
    };
    let what = match object {
        Object::Group(_) => format!("group {name}"),
        Object::ApiKey(_) => format!("API key {name}"),
        _ => return out,
    };
    if matches!(object, Object::Group(_)) {
        let invited: Vec<&str> = state
            .members
            .values()
            .filter(|m| m.groups.iter().any(|g| g == name))
            .map(|m| m.name.as_str())
            .collect();
        if !invited.is_empty() {
            out.push(format!(
                "members still invited to {what}: {}; their invitations will name a missing group",
                listing(&invited)
            ));
        }
    }
    let holders: Vec<String> = state
        .groups
        .values()
        .filter(|g| !(g.name == name && matches!(object, Object::Group(_))) && named(&g.access))
        .map(|g| format!("Group {}", g.name))
        .chain(
            state
                .api_keys
                .values()
                .filter(|k| {
                    !(k.name == name && matches!(object, Object::ApiKey(_))) && named(&k.access)
                })
                .map(|k| format!("ApiKey {}", k.name)),
        )
        .collect();
    if !holders.is_empty() {
        let holders: Vec<&str> = holders.iter().map(String::as_str).collect();
        out.push(format!(
            "access lists still naming {what}: {}; those entries will give nothing",
            listing(&holders)
        ));
    }
    out
}

/// `a, b, c` or `a, b, c, d, e and 3 more`.
fn listing(names: &[&str]) -> String {
    let shown = names[..names.len().min(MAX_NAMES)].join(", ");
    match names.len().saturating_sub(MAX_NAMES) {
        0 => shown,
        rest => format!("{shown} and {rest} more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ApiKeyDef, GroupDef, MemberDef};
    use crate::privilege::ResourceLevel;
    use std::sync::Arc;

    fn group(name: &str) -> GroupDef {
        GroupDef {
            name: name.into(),
            ..GroupDef::default()
        }
    }

    fn member(name: &str, groups: &[&str]) -> MemberDef {
        MemberDef {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..MemberDef::default()
        }
    }

    fn entry(group: Option<&str>, key: Option<&str>) -> AccessEntry {
        AccessEntry {
            group: group.map(str::to_string),
            api_key: key.map(str::to_string),
            level: ResourceLevel::View,
        }
    }

    fn create<'a>(name: &'a str, new: Object<'a>) -> Change<'a> {
        Change {
            operation: Operation::Create,
            name,
            old: None,
            new: Some(new),
        }
    }

    fn state_with(groups: &[&str]) -> OrgState {
        let mut s = OrgState::default();
        for g in groups {
            s.groups.insert(g.to_string(), Arc::new(group(g)));
        }
        s
    }

    #[test]
    fn a_member_invited_to_a_missing_group_is_warned_about() {
        let state = state_with(&["viewers"]);
        let m = member("ada", &["viewers", "ghosts"]);
        let w = warnings(&state, &create("ada", Object::Member(&m)));
        assert_eq!(
            w,
            [
                "spec.groups[1]: group ghosts does not exist in this namespace; the invitation gives nothing until it is created"
            ]
        );
        let fine = member("ada", &["viewers"]);
        assert!(warnings(&state, &create("ada", Object::Member(&fine))).is_empty());
    }

    #[test]
    fn a_member_in_no_group_holds_nothing() {
        let state = state_with(&["viewers"]);
        let m = member("ada", &[]);
        let w = warnings(&state, &create("ada", Object::Member(&m)));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("in no group"), "{w:?}");
    }

    #[test]
    fn access_lists_naming_missing_objects_but_not_themselves() {
        let state = state_with(&["viewers"]);
        let g = GroupDef {
            access: vec![
                entry(Some("viewers"), None),
                entry(Some("editors"), None),
                entry(None, Some("robot")),
                entry(Some("self"), None),
            ],
            duplicate_of: Some("gone".into()),
            ..group("self")
        };
        let refs = unresolved_references(&state, Object::Group(&g), "self");
        let fields: Vec<&str> = refs.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.access[1].group",
                "spec.access[2].apiKey",
                "spec.duplicateOf"
            ]
        );
        assert_eq!(refs[1].describe(), "API key robot");
        assert_eq!(
            warnings(&state, &create("self", Object::Group(&g))).len(),
            3
        );
    }

    #[test]
    fn an_api_key_without_a_lifetime_says_when_it_expires() {
        let k = ApiKeyDef {
            name: "k".into(),
            template: Some(ApiKeyTemplate::AnonymousSearch),
            ..ApiKeyDef::default()
        };
        let w = warnings(&OrgState::default(), &create("k", Object::ApiKey(&k)));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("spec.lifetime: not set, so the key lives the 90 days"),
            "{w:?}"
        );
        let with = ApiKeyDef {
            lifetime: Some("P30D".into()),
            ..k
        };
        assert!(warnings(&OrgState::default(), &create("k", Object::ApiKey(&with))).is_empty());
    }

    #[test]
    fn deleting_a_group_still_named_says_by_whom() {
        let mut state = state_with(&["viewers"]);
        state.groups.insert(
            "auditors".into(),
            Arc::new(GroupDef {
                access: vec![entry(Some("viewers"), None)],
                ..group("auditors")
            }),
        );
        for i in 0..7 {
            let m = member(&format!("m{i}"), &["viewers"]);
            state.members.insert(m.name.clone(), Arc::new(m));
        }
        let viewers = group("viewers");
        let w = warnings(
            &state,
            &Change {
                operation: Operation::Delete,
                name: "viewers",
                old: Some(Object::Group(&viewers)),
                new: None,
            },
        );
        assert_eq!(
            w,
            [
                "members still invited to group viewers: m0, m1, m2, m3, m4 and 2 more; their invitations will name a missing group",
                "access lists still naming group viewers: Group auditors; those entries will give nothing",
            ]
        );
    }

    #[test]
    fn warnings_are_bounded_in_number_and_length() {
        let long = "g".repeat(253);
        let names: Vec<String> = (0..30).map(|i| format!("{long}{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let m = member("ada", &refs);
        let w = warnings(&OrgState::default(), &create("ada", Object::Member(&m)));
        assert_eq!(w.len(), MAX_WARNINGS);
        assert!(w.iter().all(|s| s.len() <= MAX_WARNING_BYTES));
        assert_eq!(w[MAX_WARNINGS - 1], "... and 21 more warnings");
    }
}
