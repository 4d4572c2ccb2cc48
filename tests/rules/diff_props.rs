//! `orgaccess diff`'s core ([`diff::diff`]) over random organizations: a
//! state against itself is empty; every principal's changes, applied to its
//! privileges at the base, give its privileges at the head as status and
//! admission compute them (`member_effective`, `resolve_grantees`,
//! `requester_view`); each change's direction and parts are what its before
//! and after say; a member who joins Administrators is a new administrator.
//! The agreement with the controller's written status over the examples is
//! `tests/rules/diff_status.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use orgaccess::core::diff::{self, Direction, Notice, PrincipalKind};
use orgaccess::core::effective::{member_effective, requester_view, resolve_grantees};
use orgaccess::core::model::{OrgState, SubjectKind};
use orgaccess::core::privilege::{PrivilegeSet, parse_all};
use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::escalation_invariant::arb_state;

fn now() -> Timestamp {
    "2026-12-07T12:00:00Z".parse().unwrap()
}

/// Every principal's privileges as status and admission compute them, by
/// (kind, name) as the diff names them.
fn privileges(s: &OrgState) -> BTreeMap<(PrincipalKind, String), PrivilegeSet> {
    let grantees = resolve_grantees(s);
    let mut out = BTreeMap::new();
    for m in s.members.values() {
        out.insert(
            (PrincipalKind::Member, m.name.clone()),
            member_effective(s, &grantees, m, now()).privileges,
        );
        for sub in m
            .subjects
            .iter()
            .filter(|x| x.class_of_identities().is_none())
        {
            let (user, groups, name) = match sub.kind {
                SubjectKind::User => (sub.name.clone(), vec![], format!("User {}", sub.name)),
                SubjectKind::Group => (
                    String::new(),
                    vec![sub.name.clone()],
                    format!("Group {}", sub.name),
                ),
                SubjectKind::ServiceAccount => {
                    let ns = sub.namespace.clone().unwrap_or_default();
                    (
                        format!("system:serviceaccount:{ns}:{}", sub.name),
                        vec![],
                        format!("ServiceAccount {ns}/{}", sub.name),
                    )
                }
            };
            let view = requester_view(s, &grantees, &user, &groups, now());
            out.insert((PrincipalKind::Identity, name), view.privileges);
        }
    }
    for (k, set) in grantees.api_keys {
        out.insert((PrincipalKind::ApiKey, k), set);
    }
    out
}

fn config() -> Config {
    Config {
        cases: 192,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_state_against_itself_changes_nothing(s in arb_state()) {
        let d = diff::diff(&s, &s, now());
        prop_assert!(d.is_empty(), "{d:#?}");
        prop_assert!(d.concerns().is_empty());
    }

    #[test]
    fn applying_the_changes_gives_the_head(base in arb_state(), head in arb_state()) {
        let d = diff::diff(&base, &head, now());
        let before = privileges(&base);
        let after = privileges(&head);
        let empty = PrivilegeSet::new();
        for ((kind, name), want) in &after {
            let was = before.get(&(*kind, name.clone())).unwrap_or(&empty);
            let changes = d
                .principals
                .iter()
                .find(|p| p.principal.kind == *kind && &p.principal.name == name)
                .map_or(&[][..], |p| &p.changes[..]);
            let got = diff::apply(was, changes);
            prop_assert!(
                got.covers(want) && want.covers(&got),
                "{kind:?} {name}: base {was} + changes gives {got}, the head holds {want}"
            );
        }
        // A principal only at the base lost everything it held.
        for ((kind, name), was) in &before {
            if after.contains_key(&(*kind, name.clone())) || was.is_empty() {
                continue;
            }
            let p = d.principals.iter().find(|p| p.principal.kind == *kind && &p.principal.name == name);
            prop_assert!(p.is_some_and(|p| !p.in_head && p.changes.iter().all(|c| c.direction == Direction::Lost)));
        }
    }

    #[test]
    fn each_change_is_what_its_sides_say(base in arb_state(), head in arb_state()) {
        let d = diff::diff(&base, &head, now());
        for p in &d.principals {
            for c in &p.changes {
                let one = |s: &Option<_>| parse_all(s.as_slice()).unwrap();
                let (b, a) = (one(&c.before), one(&c.after));
                prop_assert_eq!(c.gained.is_some(), !b.covers(&a), "{:?}", c);
                prop_assert_eq!(c.lost.is_some(), !a.covers(&b), "{:?}", c);
                if let Some(g) = &c.gained {
                    // Everything missing, within what the head holds, not
                    // held before (a spec of Edit implies Can Create, so the
                    // part may hold more than exactly the missing part), and
                    // something grants it.
                    let g = parse_all(std::slice::from_ref(g)).unwrap();
                    prop_assert!(g.covers(&b.missing(&a)) && a.covers(&g) && !b.covers(&g), "{:?}", c);
                    prop_assert!(!c.granted_by.is_empty(), "a gain without a cause: {:?}", c);
                }
                match c.direction {
                    Direction::Gained => prop_assert!(a.covers(&b)),
                    Direction::Lost => prop_assert!(b.covers(&a)),
                    Direction::Changed => prop_assert!(!a.covers(&b) && !b.covers(&a)),
                }
            }
        }
    }

    #[test]
    fn joining_administrators_is_reported(base in arb_state()) {
        let mut head = base.clone();
        let admins = "administrators";
        prop_assume!(head.groups.get(admins).is_some_and(|g| !g.privileges.is_empty() || g.template.is_some()));
        let Some(m) = head.members.values_mut().find(|m| m.accepted && !m.groups.iter().any(|g| g == admins)) else {
            return Ok(());
        };
        let m = Arc::make_mut(m);
        m.groups.push(admins.into());
        let name = m.name.clone();
        let d = diff::diff(&base, &head, now());
        let was_admin = diff::diff(&OrgState::default(), &base, now())
            .notices
            .iter()
            .any(|n| matches!(n, Notice::NewAdministrator { principal } if principal.name == name));
        prop_assume!(!was_admin);
        prop_assert!(
            d.notices.iter().any(|n| matches!(n, Notice::NewAdministrator { principal } if principal.kind == PrincipalKind::Member && principal.name == name)),
            "{:#?}", d.notices
        );
    }
}
