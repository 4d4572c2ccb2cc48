//! The change under review: one owned model that the webhook and
//! `orgaccess check` both judge with. An object's core view ([`Def`]), who
//! asks ([`requester`]), and the state the rules see ([`overlay`]).

use std::borrow::Cow;
use std::sync::Arc;

use crate::effective::RequesterView;
use crate::model::{AccessReviewDef, ApiKeyDef, GroupDef, Kind, MemberDef, OrgDef, OrgState};
use crate::rules::{self, Operation, Requester};

/// One object of the four kinds, as the rules read it.
#[derive(Clone, Debug, PartialEq)]
pub enum Def {
    Organization(OrgDef),
    Group(GroupDef),
    Member(MemberDef),
    ApiKey(ApiKeyDef),
    AccessReview(AccessReviewDef),
}

impl Def {
    pub fn kind(&self) -> Kind {
        match self {
            Def::Organization(_) => Kind::Organization,
            Def::Group(_) => Kind::Group,
            Def::Member(_) => Kind::Member,
            Def::ApiKey(_) => Kind::ApiKey,
            Def::AccessReview(_) => Kind::AccessReview,
        }
    }

    pub fn object(&self) -> rules::Object<'_> {
        match self {
            Def::Organization(d) => rules::Object::Organization(d),
            Def::Group(d) => rules::Object::Group(d),
            Def::Member(d) => rules::Object::Member(d),
            Def::ApiKey(d) => rules::Object::ApiKey(d),
            Def::AccessReview(d) => rules::Object::AccessReview(d),
        }
    }

    /// The state holding this object as it is. A second organization of a
    /// namespace is never put in ([`OrgState::is_home`]).
    pub fn put_into(&self, state: &mut OrgState, name: &str) {
        match self {
            Def::Organization(d) => {
                if state.is_home(name) {
                    state.org = Some(d.clone());
                }
            }
            Def::Group(d) => {
                state.groups.insert(name.to_string(), Arc::new(d.clone()));
            }
            Def::Member(d) => {
                state.members.insert(name.to_string(), Arc::new(d.clone()));
            }
            Def::ApiKey(d) => {
                state.api_keys.insert(name.to_string(), Arc::new(d.clone()));
            }
            Def::AccessReview(d) => {
                state.reviews.insert(name.to_string(), Arc::new(d.clone()));
            }
        }
    }
}

/// Takes the object of a kind and name out of the state, if there.
pub fn take(state: &mut OrgState, kind: Kind, name: &str) -> Option<Def> {
    match kind {
        Kind::Organization if state.is_home(name) => state.org.take().map(Def::Organization),
        Kind::Organization => None,
        Kind::Group => state
            .groups
            .remove(name)
            .map(|d| Def::Group(Arc::unwrap_or_clone(d))),
        Kind::Member => state
            .members
            .remove(name)
            .map(|d| Def::Member(Arc::unwrap_or_clone(d))),
        Kind::ApiKey => state
            .api_keys
            .remove(name)
            .map(|d| Def::ApiKey(Arc::unwrap_or_clone(d))),
        Kind::AccessReview => state
            .reviews
            .remove(name)
            .map(|d| Def::AccessReview(Arc::unwrap_or_clone(d))),
    }
}

/// The requester an identity is, given the members it maps to
/// ([`crate::effective::requester_view`]): nobody, or those members with
/// their merged privileges. Trusted principals and the operator are decided
/// before (by configuration), never from the organization's state.
pub fn requester(user: &str, view: &RequesterView) -> Requester {
    if view.members.is_empty() {
        Requester::Unmapped {
            user: user.to_string(),
        }
    } else {
        Requester::Members {
            user: user.to_string(),
            members: view.members.clone(),
            privileges: view.privileges.clone(),
        }
    }
}

/// The state the rules judge: the known one, with the object under change as
/// the request says it was (absent for a create), because the request is the
/// truth when a cache lags behind. Copies only when they differ; says whether
/// a group or API key changed (the grantees' privileges then differ). A
/// `teardown` (the namespace going away) judges the Organization as deleting.
pub fn overlay<'a>(
    known: &'a OrgState,
    kind: Kind,
    operation: Operation,
    name: &str,
    old: Option<&Def>,
    teardown: bool,
) -> (Cow<'a, OrgState>, bool) {
    let mut state = Cow::Borrowed(known);
    match (operation, old) {
        (Operation::Create, _) => {
            let stale = match kind {
                Kind::Organization => known.org.is_some() && known.is_home(name),
                Kind::Group => known.groups.contains_key(name),
                Kind::Member => known.members.contains_key(name),
                Kind::ApiKey => known.api_keys.contains_key(name),
                Kind::AccessReview => known.reviews.contains_key(name),
            };
            if stale {
                take(state.to_mut(), kind, name);
            }
        }
        (_, Some(Def::Organization(o))) => {
            // Only the namespace's own organization is overlaid: a second one
            // must meet the first (the home) in the state to be refused.
            if known.is_home(&o.name) && known.org.as_ref() != Some(o) {
                state.to_mut().org = Some(o.clone());
            }
        }
        (_, Some(Def::Group(g))) => {
            if known.groups.get(name).map(|d| &**d) != Some(g) {
                state
                    .to_mut()
                    .groups
                    .insert(name.to_string(), Arc::new(g.clone()));
            }
        }
        (_, Some(Def::Member(m))) => {
            if known.members.get(name).map(|d| &**d) != Some(m) {
                state
                    .to_mut()
                    .members
                    .insert(name.to_string(), Arc::new(m.clone()));
            }
        }
        (_, Some(Def::ApiKey(k))) => {
            if known.api_keys.get(name).map(|d| &**d) != Some(k) {
                state
                    .to_mut()
                    .api_keys
                    .insert(name.to_string(), Arc::new(k.clone()));
            }
        }
        (_, Some(Def::AccessReview(r))) => {
            if known.reviews.get(name).map(|d| &**d) != Some(r) {
                state
                    .to_mut()
                    .reviews
                    .insert(name.to_string(), Arc::new(r.clone()));
            }
        }
        (_, None) => {}
    }
    let grantees_changed =
        matches!(state, Cow::Owned(_)) && matches!(kind, Kind::Group | Kind::ApiKey);
    if teardown
        && state.org.as_ref().is_some_and(|o| !o.meta.deleting)
        && let Some(org) = state.to_mut().org.as_mut()
    {
        org.meta.deleting = true;
    }
    (state, grantees_changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, display: &str) -> GroupDef {
        GroupDef {
            name: name.into(),
            display_name: Some(display.into()),
            ..GroupDef::default()
        }
    }

    #[test]
    fn overlay_copies_only_when_the_request_differs() {
        let mut known = OrgState::default();
        Def::Group(group("g", "G")).put_into(&mut known, "g");
        let same = Def::Group(group("g", "G"));
        let (state, changed) = overlay(
            &known,
            Kind::Group,
            Operation::Update,
            "g",
            Some(&same),
            false,
        );
        assert!(matches!(state, Cow::Borrowed(_)) && !changed);
        let other = Def::Group(group("g", "Other"));
        let (state, changed) = overlay(
            &known,
            Kind::Group,
            Operation::Update,
            "g",
            Some(&other),
            false,
        );
        assert!(changed);
        assert_eq!(state.groups["g"].display_name.as_deref(), Some("Other"));
        // A create of a name the cache still holds judges it as absent.
        let (state, _) = overlay(&known, Kind::Group, Operation::Create, "g", None, false);
        assert!(state.groups.is_empty());
        // The Organization too; a second one meets the first.
        let org = OrgDef {
            name: "acme".into(),
            ..OrgDef::default()
        };
        Def::Organization(org).put_into(&mut known, "acme");
        let create = |name| {
            overlay(
                &known,
                Kind::Organization,
                Operation::Create,
                name,
                None,
                false,
            )
        };
        assert!(create("acme").0.org.is_none());
        assert_eq!(
            create("other").0.org.as_ref().map(|o| o.name.as_str()),
            Some("acme")
        );
    }

    #[test]
    fn a_second_organization_never_replaces_the_first() {
        let mut state = OrgState::default();
        let org = |n: &str| OrgDef {
            name: n.into(),
            ..OrgDef::default()
        };
        Def::Organization(org("first")).put_into(&mut state, "first");
        Def::Organization(org("second")).put_into(&mut state, "second");
        assert_eq!(state.org.as_ref().map(|o| o.name.as_str()), Some("first"));
        assert!(take(&mut state, Kind::Organization, "second").is_none());
        assert!(take(&mut state, Kind::Organization, "first").is_some());
    }
}
