//! The cases of `long-lived-elevated-membership`, a table: which group is
//! elevated, which memberships are long-lived at an instant.

use jiff::Timestamp;
use std::sync::Arc;

use super::super::review;
use super::elevation;
use crate::catalog::Service;
use crate::effective::resolve_grantees;
use crate::model::{GroupDef, MemberDef, OrgState, Settings};
use crate::privilege::{AccessLevel, PrivilegeSpec, spec};

const NOW: &str = "2027-01-01T00:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn group(name: &str, privileges: Vec<PrivilegeSpec>) -> GroupDef {
    GroupDef {
        name: name.into(),
        privileges,
        ..GroupDef::default()
    }
}

/// One member `m` in `g`, accepted, with an overall end `until`.
fn state(g: GroupDef, until: Option<&str>) -> OrgState {
    let mut s = OrgState::default();
    let name = g.name.clone();
    s.groups.insert(name.clone(), Arc::new(g));
    s.members.insert(
        "m".into(),
        Arc::new(MemberDef {
            name: "m".into(),
            groups: vec![name],
            accepted: true,
            until: until.map(str::to_string),
            invited_at: Some("2026-12-01T00:00:00Z".parse().unwrap()),
            ..MemberDef::default()
        }),
    );
    s
}

fn api_keys() -> &'static str {
    crate::catalog::domain(*crate::catalog::API_KEYS).name
}

fn groups_edit() -> Vec<PrivilegeSpec> {
    vec![spec(Service::Organization, "Groups", AccessLevel::Edit)]
}

#[test]
fn elevation_table() {
    let cases: Vec<(&str, Vec<PrivilegeSpec>, Option<&str>)> = vec![
        ("groups edit", groups_edit(), Some("Groups Edit")),
        (
            "api keys edit",
            vec![spec(Service::Organization, api_keys(), AccessLevel::Edit)],
            Some("API keys Edit"),
        ),
        (
            "groups view",
            vec![spec(Service::Organization, "Groups", AccessLevel::View)],
            None,
        ),
        (
            "api keys view",
            vec![spec(Service::Organization, api_keys(), AccessLevel::View)],
            None,
        ),
        ("nothing", vec![], None),
    ];
    for (name, privileges, want) in cases {
        let s = state(group("g", privileges), None);
        let grantees = resolve_grantees(&s);
        assert_eq!(
            elevation("g", &grantees.groups["g"], None),
            want,
            "case {name}"
        );
    }
}

#[test]
fn administrators_and_its_equivalents_are_elevated() {
    let admins = group("x", groups_edit()).privileges;
    let s = state(group("g", admins.clone()), None);
    let grantees = resolve_grantees(&s);
    let a = grantees.groups["g"].clone();
    assert_eq!(
        elevation("other", &a, Some(&a)),
        Some("Administrators' privileges")
    );
    assert_eq!(
        elevation("administrators", &Default::default(), None),
        Some("Administrators' privileges")
    );
    // An empty Administrators set makes nobody its equivalent.
    assert_eq!(
        elevation("other", &Default::default(), Some(&Default::default())),
        None
    );
}

#[test]
fn long_lived_table() {
    // (case, group privileges, the member's overall end, finding expected)
    let cases: Vec<(&str, Vec<PrivilegeSpec>, Option<&str>, bool)> = vec![
        ("no end", groups_edit(), None, true),
        (
            "ends in a year",
            groups_edit(),
            Some("2028-01-01T00:00:00Z"),
            true,
        ),
        (
            "ends in 30 days",
            groups_edit(),
            Some("2027-01-31T00:00:00Z"),
            false,
        ),
        (
            "ends at the horizon",
            groups_edit(),
            Some("2027-04-01T00:00:00Z"),
            false,
        ),
        (
            "ends a second later",
            groups_edit(),
            Some("2027-04-01T00:00:01Z"),
            true,
        ),
        (
            "ended already",
            groups_edit(),
            Some("2026-12-31T00:00:00Z"),
            false,
        ),
        (
            "not elevated",
            vec![spec(Service::Organization, "Groups", AccessLevel::View)],
            None,
            false,
        ),
    ];
    for (name, privileges, until, want) in cases {
        let s = state(group("g", privileges), until);
        let found = review(&s, &resolve_grantees(&s), &Settings::default(), now());
        let hits: Vec<_> = found
            .iter()
            .filter(|f| f.id == "long-lived-elevated-membership")
            .collect();
        assert_eq!(!hits.is_empty(), want, "case {name}: {found:#?}");
        if want {
            assert_eq!(hits[0].objects, ["Group/g", "Member/m"], "case {name}");
        }
    }
}

#[test]
fn the_horizon_is_a_setting_and_the_finding_can_be_switched_off() {
    let s = state(group("g", groups_edit()), Some("2027-03-01T00:00:00Z"));
    let grantees = resolve_grantees(&s);
    let count = |settings: &Settings| {
        review(&s, &grantees, settings, now())
            .iter()
            .filter(|f| f.id == "long-lived-elevated-membership")
            .count()
    };
    assert_eq!(count(&Settings::default()), 0, "59 days is within 90");
    let short = Settings {
        elevated_membership_max_days: 30,
        ..Settings::default()
    };
    assert_eq!(count(&short), 1, "59 days is beyond 30");
    let off = Settings {
        elevated_membership_max_days: 30,
        disabled: ["long-lived-elevated-membership".to_string()].into(),
        ..Settings::default()
    };
    assert_eq!(count(&off), 0);
}

/// (case, owners, cadence, member's end, finding expected)
type ReviewCase<'a> = (
    &'a str,
    Vec<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    bool,
);

#[test]
fn without_review_table() {
    let cases: Vec<ReviewCase> = vec![
        ("neither", vec![], None, None, true),
        ("owners only", vec!["m"], None, None, true),
        ("cadence only", vec![], Some("P90D"), None, true),
        ("owners and cadence", vec!["m"], Some("P90D"), None, false),
        (
            "no member counts",
            vec![],
            None,
            Some("2026-12-31T00:00:00Z"),
            false,
        ),
    ];
    for (name, owners, every, until, want) in cases {
        let mut g = group("g", groups_edit());
        g.owners = owners.iter().map(|o| o.to_string()).collect();
        g.review_every = every.map(str::to_string);
        let s = state(g, until);
        let found = review(&s, &resolve_grantees(&s), &Settings::default(), now());
        let hit = found
            .iter()
            .any(|f| f.id == "elevated-group-without-review" && f.objects == ["Group/g"]);
        assert_eq!(hit, want, "case {name}: {found:#?}");
    }
    // Not elevated: never.
    let s = state(
        group(
            "g",
            vec![spec(Service::Organization, "Groups", AccessLevel::View)],
        ),
        None,
    );
    let found = review(&s, &resolve_grantees(&s), &Settings::default(), now());
    assert!(
        found
            .iter()
            .all(|f| f.id != "elevated-group-without-review")
    );
}
