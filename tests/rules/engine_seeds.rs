//! The seeds' worked examples, through the pure engine.

use orgaccess::core::builtin::{BuiltinGroup, GroupTemplate};
use orgaccess::core::catalog::{self, Service};
use orgaccess::core::effective::{member_effective, resolve_grantees};
use orgaccess::core::model::{GroupDef, MemberDef, MemberIdentity, OrgState, Provider};
use orgaccess::core::privilege::{
    AccessLevel, PrivilegeSet, PrivilegeSpec, ResourceAccess, ResourceLevel, parse, parse_all, spec,
};
use orgaccess::core::rules::{self, Change, Object, Operation, Requester, Rule};
use std::sync::Arc;

use AccessLevel::{Allowed, Custom, Edit, View};
use Service::*;

fn set(specs: &[PrivilegeSpec]) -> PrivilegeSet {
    parse_all(specs).expect("valid privileges")
}

fn group(name: &str, template: Option<GroupTemplate>, privileges: Vec<PrivilegeSpec>) -> GroupDef {
    GroupDef {
        name: name.into(),
        template,
        privileges,
        ..GroupDef::default()
    }
}

fn member(name: &str, groups: &[&str]) -> MemberDef {
    MemberDef {
        name: name.into(),
        identity: MemberIdentity {
            provider: Provider::Email,
            username: format!("{name}@example.com"),
        },
        groups: groups.iter().map(|g| g.to_string()).collect(),
        subjects: vec![],
        accepted: true,
        invited_at: None,
        sso_groups: vec![],
        salesforce_profile: None,
        ..MemberDef::default()
    }
}

/// The level the effective set gives on an Analytics domain, as written in the seed's table.
fn analytics_level(effective: &PrivilegeSet, domain: &str) -> Option<AccessLevel> {
    let d = catalog::lookup(Analytics, domain).unwrap();
    effective.get(d).map(|_| {
        let only: PrivilegeSet = {
            let mut s = PrivilegeSet::new();
            s.set(d, effective.get(d).unwrap().clone());
            s
        };
        only.to_specs()[0].level
    })
}

#[test]
fn seed_002_member_of_analytics_viewers_and_limited_administrators_gets_the_seed_table() {
    let mut state = OrgState::default();
    state.groups.insert(
        "analytics-viewers".into(),
        Arc::new(GroupDef {
            builtin: Some(BuiltinGroup::AnalyticsViewers),
            ..group(
                "analytics-viewers",
                Some(GroupTemplate::AnalyticsViewers),
                vec![],
            )
        }),
    );
    state.groups.insert(
        "limited-administrators".into(),
        Arc::new(group(
            "limited-administrators",
            None,
            vec![
                spec(Analytics, "Administrate", Allowed),
                spec(Analytics, "DataExports", Edit),
                spec(Analytics, "Dimensions", Edit),
                spec(Analytics, "NamedFilters", View),
            ],
        )),
    );
    let john = member(
        "john-smith",
        &["analytics-viewers", "limited-administrators"],
    );
    state
        .members
        .insert(john.name.clone(), Arc::new(john.clone()));
    let grantees = resolve_grantees(&state);
    let eff = member_effective(&state, &grantees, &john, jiff::Timestamp::now()).privileges;

    // Domain, Analytics Viewers, Limited Administrators, John Smith — the seed's table.
    let table = [
        ("Administrate", None, Some(Allowed), Some(Allowed)),
        ("DataExports", Some(View), Some(Edit), Some(Edit)),
        ("Dimensions", Some(View), Some(Edit), Some(Edit)),
        ("Impersonate", Some(Allowed), None, Some(Allowed)),
        ("NamedFilters", Some(View), Some(View), Some(View)),
    ];
    for (domain, viewers, limited, john) in table {
        assert_eq!(
            analytics_level(&grantees.groups["analytics-viewers"], domain),
            viewers,
            "Analytics Viewers {domain}"
        );
        assert_eq!(
            analytics_level(&grantees.groups["limited-administrators"], domain),
            limited,
            "Limited Administrators {domain}"
        );
        assert_eq!(analytics_level(&eff, domain), john, "John Smith {domain}");
    }
    // Edit brings Can Create on domains that create: John can create exports.
    let exports = catalog::lookup(Analytics, "DataExports").unwrap();
    assert!(
        eff.get(exports)
            .unwrap()
            .abilities
            .contains(orgaccess::core::privilege::Abilities::CREATE)
    );
}

fn four_privileges() -> Vec<PrivilegeSpec> {
    vec![
        spec(Analytics, "ViewAllReports", Allowed),
        spec(Organization, "Activities", View),
        spec(Organization, "Groups", Edit),
        spec(Organization, "Organization", View),
    ]
}

fn duplicate_change<'a>(copy: &'a GroupDef) -> Change<'a> {
    Change {
        operation: Operation::Create,
        name: &copy.name,
        old: None,
        new: Some(Object::Group(copy)),
    }
}

#[test]
fn seed_001_holding_four_privileges_you_duplicate_groups_with_three_or_fewer() {
    let mine = set(&four_privileges());
    let requester = Requester::Members {
        user: "me".into(),
        members: vec!["me".into()],
        privileges: mine,
    };
    let mut state = OrgState::default();
    state.groups.insert(
        "three".into(),
        Arc::new(group("three", None, four_privileges()[..3].to_vec())),
    );
    state.groups.insert(
        "four".into(),
        Arc::new(group("four", None, four_privileges())),
    );
    state.groups.insert(
        "other-three".into(),
        Arc::new(group(
            "other-three",
            None,
            vec![
                spec(Analytics, "Reports", Edit),
                spec(Organization, "Activities", View),
                spec(Organization, "Organization", View),
            ],
        )),
    );
    let grantees = resolve_grantees(&state);

    let copy_of = |src: &str| GroupDef {
        duplicate_of: Some(src.into()),
        ..group(&format!("{src}-copy"), None, vec![])
    };
    let three = copy_of("three");
    assert!(rules::duplicate(&state, &grantees, &duplicate_change(&three), &requester).is_empty());

    let four = copy_of("four");
    let denied = rules::duplicate(&state, &grantees, &duplicate_change(&four), &requester);
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].rule, Rule::Duplicate);
    assert!(
        denied[0].message.contains("strictly more"),
        "{}",
        denied[0].message
    );

    // Three privileges are not enough when they are not yours.
    let other = copy_of("other-three");
    let denied = rules::duplicate(&state, &grantees, &duplicate_change(&other), &requester);
    assert_eq!(denied.len(), 1);
    assert!(
        denied[0].message.contains("Analytics/Reports: Edit"),
        "{}",
        denied[0].message
    );
}

#[test]
fn seed_000_sitecore_integrator_is_full_access_except_groups() {
    let integrator = group(
        "sitecore-integrator",
        Some(GroupTemplate::FullAccess),
        vec![spec(Organization, "Groups", AccessLevel::None)],
    );
    let mut state = OrgState::default();
    state
        .groups
        .insert(integrator.name.clone(), Arc::new(integrator));
    let grantees = resolve_grantees(&state);
    let privileges = &grantees.groups["sitecore-integrator"];
    let groups = catalog::lookup(Organization, "Groups").unwrap();
    assert!(privileges.get(groups).is_none(), "no access on Groups");
    assert_eq!(privileges.len(), catalog::CATALOG.len() - 1);
    // Full access to the indexed content, the query pipelines and the reports.
    let full = GroupTemplate::FullAccess.privileges();
    for (service, domain) in [
        (Content, "Sources"),
        (Search, "QueryPipelines"),
        (Analytics, "Reports"),
        (Search, "ViewAllContent"),
    ] {
        let d = catalog::lookup(service, domain).unwrap();
        assert_eq!(privileges.get(d), full.get(d), "{service}/{domain}");
    }
    // And therefore strictly below Administrators, who may duplicate it.
    assert!(
        GroupTemplate::Administrators
            .privileges()
            .strictly_covers(privileges)
    );
}

#[test]
fn seed_002_per_source_administrators_edit_their_sources_and_view_the_rest() {
    let sources = |edit: [&str; 2], view: [&str; 2]| PrivilegeSpec {
        resources: edit
            .iter()
            .map(|n| ResourceAccess {
                name: n.to_string(),
                level: ResourceLevel::Edit,
            })
            .chain(view.iter().map(|n| ResourceAccess {
                name: n.to_string(),
                level: ResourceLevel::View,
            }))
            .collect(),
        ..spec(Content, "Sources", Custom)
    };
    let common = |s: PrivilegeSpec| {
        set(&[
            spec(Content, "Extensions", Edit),
            spec(Content, "Fields", Edit),
            s,
            spec(Organization, "Activities", View),
            spec(Organization, "Organization", View),
            spec(Search, "ExecuteQueries", Allowed),
        ])
    };
    let atlassian = common(sources(["confluence", "jira"], ["youtube", "web"]));
    let marketing = common(sources(["youtube", "web"], ["confluence", "jira"]));
    let d = catalog::lookup(Content, "Sources").unwrap();
    use orgaccess::core::privilege::Level;
    assert_eq!(atlassian.get(d).unwrap().level_on("jira"), Level::Edit);
    assert_eq!(atlassian.get(d).unwrap().level_on("web"), Level::View);
    assert_eq!(marketing.get(d).unwrap().level_on("web"), Level::Edit);
    // Neither covers the other; together they edit all four sources.
    assert!(!atlassian.covers(&marketing) && !marketing.covers(&atlassian));
    let both = atlassian.merge(&marketing);
    for s in ["confluence", "jira", "youtube", "web"] {
        assert_eq!(both.get(d).unwrap().level_on(s), Level::Edit);
    }
    // A per-resource list never covers a domain-wide level.
    assert!(!both.covers(&set(&[spec(Content, "Sources", Edit)])));
}

#[test]
fn catalog_errors_name_the_offending_part() {
    let unknown = parse(&spec(Analytics, "Report", View))
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("unknown domain 'Report'") && unknown.contains("did you mean 'Reports'"),
        "{unknown}"
    );
    let level = parse(&spec(Analytics, "Administrate", Edit))
        .unwrap_err()
        .to_string();
    assert!(
        level.contains("Analytics/Administrate does not offer level Edit")
            && level.contains("Allowed"),
        "{level}"
    );
    let custom = PrivilegeSpec {
        resources: vec![ResourceAccess {
            name: "x".into(),
            level: ResourceLevel::View,
        }],
        ..spec(Content, "Fields", Custom)
    };
    let custom = parse(&custom).unwrap_err().to_string();
    assert!(
        custom.contains("Content/Fields does not offer the Custom level"),
        "{custom}"
    );
    let create = PrivilegeSpec {
        can_create: Some(true),
        ..spec(Organization, "Activities", View)
    };
    assert!(
        parse(&create)
            .unwrap_err()
            .to_string()
            .contains("nothing to create")
    );
    let create_view = PrivilegeSpec {
        can_create: Some(true),
        ..spec(Content, "Fields", View)
    };
    assert!(
        parse(&create_view)
            .unwrap_err()
            .to_string()
            .contains("comes with Edit only")
    );
    // On resource domains Can Create is a choice alongside View all.
    let sources_view_create = PrivilegeSpec {
        can_create: Some(true),
        ..spec(Content, "Sources", View)
    };
    assert!(parse(&sources_view_create).is_ok());
}

#[test]
fn an_update_that_keeps_an_invalid_spec_is_not_blocked_by_catalog_validity() {
    // Stored before a catalog change: names a domain that no longer exists.
    let stored = group("legacy", None, vec![spec(Analytics, "RetiredDomain", View)]);
    let state = OrgState::default();
    let relabel = Change {
        operation: Operation::Update,
        name: "legacy",
        old: Some(Object::Group(&stored)),
        new: Some(Object::Group(&stored)),
    };
    assert!(rules::catalog_validity(&state, &relabel).is_empty());
    // Any real change to the spec is judged in full.
    let changed = GroupDef {
        display_name: Some("Legacy".into()),
        ..stored.clone()
    };
    let edit = Change {
        operation: Operation::Update,
        name: "legacy",
        old: Some(Object::Group(&stored)),
        new: Some(Object::Group(&changed)),
    };
    let v = rules::catalog_validity(&state, &edit);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].rule, Rule::CatalogValidity);
    assert!(v[0].message.contains("unknown domain 'RetiredDomain'"));
}

#[test]
fn a_namespace_holds_one_organization() {
    use orgaccess::core::model::OrgDef;
    let home = OrgDef {
        name: "acme".into(),
        invitation_lifetime_days: 31,
        ..OrgDef::default()
    };
    let state = OrgState {
        org: Some(home.clone()),
        ..OrgState::default()
    };
    let second = OrgDef {
        name: "other".into(),
        ..home.clone()
    };
    let create = Change {
        operation: Operation::Create,
        name: "other",
        old: None,
        new: Some(Object::Organization(&second)),
    };
    let v = rules::check(
        &state,
        &resolve_grantees(&state),
        &create,
        &Requester::Trusted,
    );
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        (v[0].rule, v[0].field.as_str()),
        (Rule::CatalogValidity, "metadata.name")
    );
    assert!(
        v[0].message.contains("already holds Organization 'acme'"),
        "{}",
        v[0].message
    );
    // The organization itself may change.
    let edited = OrgDef {
        display_name: "ACME".into(),
        ..home.clone()
    };
    let update = Change {
        operation: Operation::Update,
        name: "acme",
        old: Some(Object::Organization(&home)),
        new: Some(Object::Organization(&edited)),
    };
    assert!(
        rules::check(
            &state,
            &resolve_grantees(&state),
            &update,
            &Requester::Trusted
        )
        .is_empty()
    );
}

fn requester_holding(specs: &[PrivilegeSpec]) -> Requester {
    Requester::Members {
        user: "me".into(),
        members: vec!["me".into()],
        privileges: set(specs),
    }
}

fn required_privileges_violations(
    state: &OrgState,
    change: &Change,
    requester: &Requester,
) -> Vec<String> {
    rules::check(state, &resolve_grantees(state), change, requester)
        .into_iter()
        .filter(|v| v.rule == Rule::RequiredPrivileges)
        .map(|v| v.message)
        .collect()
}

fn groups_custom_edit(name: &str) -> PrivilegeSpec {
    PrivilegeSpec {
        resources: vec![ResourceAccess {
            name: name.into(),
            level: ResourceLevel::Edit,
        }],
        ..spec(Organization, "Groups", Custom)
    }
}

/// Seed 001 (Required privileges) and the platform's API: removing a member
/// from the organization or changing who it is needs Edit on all groups
/// (`GROUP EDIT *`); Edit on the member's only group is not enough.
#[test]
fn removing_a_member_or_changing_its_identity_needs_edit_on_all_groups() {
    let mut state = OrgState::default();
    state
        .groups
        .insert("team".into(), Arc::new(group("team", None, vec![])));
    let erin = member("erin", &["team"]);
    state.members.insert("erin".into(), Arc::new(erin.clone()));
    let renamed = MemberDef {
        identity: MemberIdentity {
            provider: Provider::Email,
            username: "someone-else@example.com".into(),
        },
        ..erin.clone()
    };
    let delete = Change {
        operation: Operation::Delete,
        name: "erin",
        old: Some(Object::Member(&erin)),
        new: None,
    };
    let identity = Change {
        operation: Operation::Update,
        name: "erin",
        old: Some(Object::Member(&erin)),
        new: Some(Object::Member(&renamed)),
    };
    let one_group = requester_holding(&[
        groups_custom_edit("team"),
        spec(Organization, "Activities", View),
    ]);
    let all_groups = requester_holding(&[
        spec(Organization, "Groups", Edit),
        spec(Organization, "Activities", View),
    ]);
    for (what, change) in [("delete", &delete), ("identity", &identity)] {
        let denied = required_privileges_violations(&state, change, &one_group);
        assert_eq!(denied.len(), 1, "{what}: {denied:?}");
        assert!(
            denied[0].contains("needs Organization/Groups: Edit"),
            "{what}: {}",
            denied[0]
        );
        assert!(
            required_privileges_violations(&state, change, &all_groups).is_empty(),
            "{what}: Groups Edit domain-wide is enough"
        );
    }
}

/// Seed 001, Required privileges: "Edit groups" needs Organization/Activities:
/// View and Organization/Groups: Edit. Either alone is refused, with what is
/// missing named; both together admit the edit.
#[test]
fn editing_groups_needs_activities_view_and_groups_edit() {
    let mut state = OrgState::default();
    let team = group("team", None, vec![spec(Search, "ExecuteQueries", Allowed)]);
    state.groups.insert("team".into(), Arc::new(team.clone()));
    let renamed = GroupDef {
        display_name: Some("The team".into()),
        ..team.clone()
    };
    let edit = Change {
        operation: Operation::Update,
        name: "team",
        old: Some(Object::Group(&team)),
        new: Some(Object::Group(&renamed)),
    };
    let delete = Change {
        operation: Operation::Delete,
        name: "team",
        old: Some(Object::Group(&team)),
        new: None,
    };
    // Inviting someone to the group is an edit of the group too.
    let newcomer = member("newcomer", &[]);
    state
        .members
        .insert("newcomer".into(), Arc::new(newcomer.clone()));
    let invited = MemberDef {
        groups: vec!["team".into()],
        ..newcomer.clone()
    };
    let invite = Change {
        operation: Operation::Update,
        name: "newcomer",
        old: Some(Object::Member(&newcomer)),
        new: Some(Object::Member(&invited)),
    };
    let groups_only = requester_holding(&[
        groups_custom_edit("team"),
        spec(Search, "ExecuteQueries", Allowed),
    ]);
    let activities_only = requester_holding(&[
        spec(Organization, "Activities", View),
        spec(Search, "ExecuteQueries", Allowed),
    ]);
    let both = requester_holding(&[
        groups_custom_edit("team"),
        spec(Organization, "Activities", View),
        spec(Search, "ExecuteQueries", Allowed),
    ]);
    for (what, change) in [("edit", &edit), ("delete", &delete), ("invite", &invite)] {
        let denied = required_privileges_violations(&state, change, &groups_only);
        assert_eq!(denied.len(), 1, "{what}: {denied:?}");
        assert!(
            denied[0].contains("needs Organization/Activities: View to allow editing groups"),
            "{what}: {}",
            denied[0]
        );
        let denied = required_privileges_violations(&state, change, &activities_only);
        assert_eq!(denied.len(), 1, "{what}: {denied:?}");
        assert!(
            denied[0].contains("Organization/Groups: Custom (team Edit)"),
            "{what}: {}",
            denied[0]
        );
        assert!(
            rules::check(&state, &resolve_grantees(&state), change, &both).is_empty(),
            "{what}: Activities View and Edit on the group admit it"
        );
    }
    // Creating a group needs Can Create, not Edit: no Activities View asked.
    let fresh = group("fresh", None, vec![]);
    let create = Change {
        operation: Operation::Create,
        name: "fresh",
        old: None,
        new: Some(Object::Group(&fresh)),
    };
    let creator = requester_holding(&[PrivilegeSpec {
        can_create: Some(true),
        ..spec(Organization, "Groups", View)
    }]);
    assert!(required_privileges_violations(&state, &create, &creator).is_empty());
}

/// Seed 002: "The privilege to view an organization is required for a user to
/// access the Coveo Administration Console".
#[test]
fn a_member_without_organization_view_cannot_open_the_console() {
    use orgaccess::core::effective::{ConsoleAccess, console_access};
    let mut state = OrgState::default();
    state.groups.insert(
        "api-only".into(),
        Arc::new(group(
            "api-only",
            None,
            vec![spec(Search, "ExecuteQueries", Allowed)],
        )),
    );
    state.groups.insert(
        "users".into(),
        Arc::new(group("users", Some(GroupTemplate::Users), vec![])),
    );
    let grantees = resolve_grantees(&state);
    let now = jiff::Timestamp::UNIX_EPOCH;
    let of = |m: &MemberDef| console_access(&member_effective(&state, &grantees, m, now));
    let api_only = member("a", &["api-only"]);
    assert_eq!(of(&api_only), ConsoleAccess::MissingOrganizationView);
    assert!(
        !member_effective(&state, &grantees, &api_only, now)
            .privileges
            .is_empty(),
        "its privileges still hold"
    );
    assert_eq!(
        of(&member("b", &["api-only", "users"])),
        ConsoleAccess::Granted
    );
    let pending = MemberDef {
        accepted: false,
        ..member("c", &["users"])
    };
    assert_eq!(of(&pending), ConsoleAccess::NotActive);
}

/// Issue 17: On-premises administration moved to the Organization service;
/// the old place is refused with where it went.
#[test]
fn a_domain_that_moved_is_refused_with_its_new_place() {
    let err = parse(&spec(Content, "OnPremiseAdministration", View)).unwrap_err();
    assert!(
        err.to_string()
            .contains("it moved: use service Organization, domain OnPremisesAdministration"),
        "{err}"
    );
    assert!(parse(&spec(Organization, "OnPremisesAdministration", Edit)).is_ok());
}
