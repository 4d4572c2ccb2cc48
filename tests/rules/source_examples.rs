//! Every example of the source documents (docs/sources.md: seed 000, 001,
//! 002), one test each, named after the example it reproduces. Changes are
//! judged by admission's one pipeline (`judge::judge`, as the webhook and
//! `orgaccess check` judge them), questions answered by the decision core
//! (`decision::check`, what `can-i`, `who-can` and the decision service
//! answer), effective privileges by `member_effective` (the Member status).
//!
//! Examples reproduced elsewhere, named there: seed 001's four-privilege
//! duplicate rule and "Edit groups" requirement, seed 002's John Smith table
//! and per-source administrators (`tests/rules/engine_seeds.rs`).

use jiff::{SignedDuration, Timestamp};
use orgaccess::core::advice::{Settings, review};
use orgaccess::core::builtin::{BuiltinGroup, GroupTemplate, full_access};
use orgaccess::core::catalog::{CATALOG, Create, Service};
use orgaccess::core::change::Def;
use orgaccess::core::decision::{self, Answer, Need, Principal, Verb};
use orgaccess::core::effective::{MemberPhase, member_effective, member_phase, resolve_grantees};
use orgaccess::core::model::{
    AccessEntry, GroupDef, MemberDef, MemberIdentity, OrgDef, OrgState, Provider, Subject,
    SubjectKind,
};
use orgaccess::core::privilege::{AccessLevel, PrivilegeSpec, ResourceAccess, ResourceLevel, spec};
use orgaccess::core::rules::{Operation, Rule};
use orgaccess::judge::{self, Asker, Judgement, Plain, Request};
use std::sync::Arc;

use AccessLevel::{Allowed, Custom, Edit, View};
use Service::*;

fn now() -> Timestamp {
    "2026-12-07T12:00:00Z".parse().unwrap()
}

/// An organization with the built-in groups as the operator seeds them.
fn organization() -> OrgState {
    let mut s = OrgState {
        org: Some(OrgDef {
            name: "acme".into(),
            display_name: "Acme".into(),
            invitation_lifetime_days: 31,
            resources: orgaccess::core::model::OrgResources {
                sources: ["confluence", "jira", "youtube", "web"]
                    .map(String::from)
                    .to_vec(),
                ..Default::default()
            },
            ..OrgDef::default()
        }),
        ..OrgState::default()
    };
    for b in BuiltinGroup::ALL {
        let g = GroupDef::seeded(b);
        s.groups.insert(g.name.clone(), Arc::new(g));
    }
    s
}

fn group(name: &str, template: Option<GroupTemplate>, privileges: Vec<PrivilegeSpec>) -> GroupDef {
    GroupDef {
        name: name.into(),
        template,
        privileges,
        ..GroupDef::default()
    }
}

/// An accepted member of `groups`, acting in Kubernetes as user `name`.
fn member(name: &str, groups: &[&str]) -> MemberDef {
    MemberDef {
        name: name.into(),
        identity: MemberIdentity {
            provider: Provider::Email,
            username: format!("{name}@acme.example"),
        },
        groups: groups.iter().map(|g| g.to_string()).collect(),
        subjects: vec![Subject {
            kind: SubjectKind::User,
            name: name.into(),
            namespace: None,
        }],
        accepted: true,
        ..MemberDef::default()
    }
}

fn add_group(s: &mut OrgState, g: GroupDef) {
    s.groups.insert(g.name.clone(), Arc::new(g));
}

fn add_member(s: &mut OrgState, m: MemberDef) {
    s.members.insert(m.name.clone(), Arc::new(m));
}

fn ask(s: &OrgState, who: Principal, verb: Verb, target: &str) -> Answer {
    let need = Need::parse(verb, target).unwrap();
    decision::check(s, &resolve_grantees(s), who, &need, now())
}

fn may(s: &OrgState, member: &str, verb: Verb, target: &str) -> bool {
    ask(s, Principal::Member(member), verb, target).allowed
}

/// Judges a change by Kubernetes user `user` (mapped to the members whose
/// subject it is), as admission does.
fn judge_as(
    s: &OrgState,
    user: &str,
    operation: Operation,
    old: Option<Def>,
    new: Option<Def>,
) -> Judgement {
    let groups = vec!["system:authenticated".to_string()];
    let def = new.as_ref().or(old.as_ref()).unwrap();
    let name = match def {
        Def::Group(g) => g.name.clone(),
        Def::Member(m) => m.name.clone(),
        Def::ApiKey(k) => k.name.clone(),
        Def::Organization(o) => o.name.clone(),
        Def::AccessReview(r) => r.name.clone(),
    };
    let known = Plain::new(s.clone());
    judge::judge(
        &known,
        Asker::Identity {
            user,
            groups: &groups,
        },
        &Request {
            kind: def.kind(),
            operation,
            namespace: "acme",
            name: &name,
            old: old.as_ref(),
            new: new.as_ref(),
            stored_key: None,
            mutated: false,
        },
        now(),
    )
}

fn rules_of(j: &Judgement) -> Vec<Rule> {
    j.violations.iter().map(|v| v.rule).collect()
}

fn custom_sources(edit: &[&str], view: &[&str]) -> PrivilegeSpec {
    let r = |names: &[&str], level| {
        names
            .iter()
            .map(move |n| ResourceAccess {
                name: n.to_string(),
                level,
            })
            .collect::<Vec<_>>()
    };
    PrivilegeSpec {
        resources: [r(edit, ResourceLevel::Edit), r(view, ResourceLevel::View)].concat(),
        ..spec(Content, "Sources", Custom)
    }
}

/// Seed 000's group: Full access, and no access to Groups.
fn sitecore_integrator() -> GroupDef {
    GroupDef {
        display_name: Some("Sitecore Integrator".into()),
        ..group(
            "sitecore-integrator",
            Some(GroupTemplate::FullAccess),
            vec![spec(Organization, "Groups", AccessLevel::None)],
        )
    }
}

// ---------------------------------------------------------------------------
// Seed 000: a group for developers and system integrators
// ---------------------------------------------------------------------------

/// "Must have full access to the indexed content, the query pipelines, and
/// the analytics reports."
#[test]
fn seed_000_sitecore_integrator_has_full_access_to_content_pipelines_and_reports() {
    let mut s = organization();
    add_group(&mut s, sitecore_integrator());
    add_member(&mut s, member("vendor", &["sitecore-integrator"]));
    for (verb, target) in [
        (Verb::Edit, "Content/Sources"),
        (Verb::Create, "Content/Sources"),
        (Verb::Edit, "Content/Fields"),
        (Verb::Edit, "Search/QueryPipelines"),
        (Verb::Edit, "Analytics/Reports"),
        (Verb::Allowed, "Analytics/ViewAllReports"),
    ] {
        assert!(may(&s, "vendor", verb, target), "{verb:?} {target}");
    }
}

/// "Must not be able to see or edit your groups": no view, no edit, no
/// create, and admission refuses the integrator's changes to groups.
#[test]
fn seed_000_sitecore_integrator_cannot_see_or_edit_groups() {
    let mut s = organization();
    add_group(&mut s, sitecore_integrator());
    add_member(&mut s, member("vendor", &["sitecore-integrator"]));
    for verb in [Verb::View, Verb::Edit, Verb::Create] {
        assert!(!may(&s, "vendor", verb, "Organization/Groups"), "{verb:?}");
    }
    let own = (*s.groups["sitecore-integrator"]).clone();
    let renamed = GroupDef {
        display_name: Some("Integrators".into()),
        ..own.clone()
    };
    let j = judge_as(
        &s,
        "vendor",
        Operation::Update,
        Some(Def::Group(own)),
        Some(Def::Group(renamed)),
    );
    assert!(
        rules_of(&j).contains(&Rule::RequiredPrivileges),
        "{:?}",
        j.message
    );
    let new = group("integrators-2", None, vec![spec(Content, "Fields", View)]);
    let j = judge_as(&s, "vendor", Operation::Create, None, Some(Def::Group(new)));
    assert!(
        rules_of(&j).contains(&Rule::RequiredPrivileges),
        "{:?}",
        j.message
    );
    let invitee = MemberDef {
        subjects: vec![],
        accepted: false,
        ..member("second-vendor", &["sitecore-integrator"])
    };
    let j = judge_as(
        &s,
        "vendor",
        Operation::Create,
        None,
        Some(Def::Member(invitee)),
    );
    assert!(
        !j.allowed(),
        "the integrator cannot invite into groups either"
    );
}

/// "Create a member, assign that member to the Sitecore Integrator group and
/// send the member an email invitation": the invitee holds nothing until
/// accepting, then the group's privileges.
#[test]
fn seed_000_the_invited_integrator_holds_nothing_until_accepting() {
    let mut s = organization();
    add_group(&mut s, sitecore_integrator());
    add_member(
        &mut s,
        MemberDef {
            accepted: false,
            invited_at: Some(now() - SignedDuration::from_hours(24)),
            ..member("vendor", &["sitecore-integrator"])
        },
    );
    let a = ask(
        &s,
        Principal::Member("vendor"),
        Verb::Edit,
        "Content/Sources",
    );
    assert!(!a.allowed);
    assert!(a.reason.unwrap().contains("pending"));
    Arc::make_mut(s.members.get_mut("vendor").unwrap()).accepted = true;
    assert!(may(&s, "vendor", Verb::Edit, "Content/Sources"));
}

// ---------------------------------------------------------------------------
// Seed 001: manage member access
// ---------------------------------------------------------------------------

/// "Members of the Administrators group have the highest access level for
/// all privileges and can create resources in all domains."
#[test]
fn seed_001_administrators_have_the_highest_level_and_create_in_all_domains() {
    let mut s = organization();
    add_member(&mut s, member("olivia", &["administrators"]));
    let admins = &resolve_grantees(&s).groups["administrators"];
    assert!(admins.covers(&full_access()) && full_access().covers(admins));
    for d in CATALOG.iter() {
        let target = format!("{}/{}", d.service, d.name);
        let o = d.offers;
        let highest = if o.allowed {
            Verb::Allowed
        } else if o.push {
            Verb::Push
        } else if o.edit {
            Verb::Edit
        } else {
            Verb::View
        };
        assert!(may(&s, "olivia", highest, &target), "{highest:?} {target}");
        if o.create != Create::No {
            assert!(may(&s, "olivia", Verb::Create, &target), "create {target}");
        }
    }
}

/// "The Administrators group is the only one that can manage search pages.
/// They can modify your organization settings and implement a single
/// sign-on method [...] access all the indexed content and query logs [...]
/// receive notifications about any type of activity": among the built-in
/// groups, only Administrators.
#[test]
fn seed_001_only_administrators_manage_search_pages_settings_and_single_sign_on() {
    let mut s = organization();
    for b in BuiltinGroup::ALL {
        add_member(&mut s, member(b.object_name(), &[b.object_name()]));
    }
    for (verb, target) in [
        (Verb::Edit, "Search/SearchPages"),
        (Verb::Edit, "Organization/Organization"),
        (Verb::Edit, "Organization/SingleSignOn"),
        (Verb::Allowed, "Search/ViewAllContent"),
        (Verb::View, "Search/ReplayAnyQuery"),
        (Verb::Edit, "Organization/Notifications"),
    ] {
        let holders: Vec<&str> = BuiltinGroup::ALL
            .iter()
            .map(|b| b.object_name())
            .filter(|m| may(&s, m, verb, target))
            .collect();
        assert_eq!(holders, ["administrators"], "{verb:?} {target}");
    }
}

/// "The Administrators group can't be deleted, and its privileges can't be
/// edited": not even by an administrator.
#[test]
fn seed_001_the_administrators_group_cannot_be_deleted_or_edited() {
    let mut s = organization();
    add_member(&mut s, member("olivia", &["administrators"]));
    let admins = (*s.groups["administrators"]).clone();
    let j = judge_as(
        &s,
        "olivia",
        Operation::Delete,
        Some(Def::Group(admins.clone())),
        None,
    );
    assert_eq!(
        rules_of(&j),
        [Rule::AdministratorsProtected],
        "{:?}",
        j.message
    );
    let narrowed = GroupDef {
        privileges: vec![spec(Search, "SearchPages", View)],
        ..admins.clone()
    };
    let j = judge_as(
        &s,
        "olivia",
        Operation::Update,
        Some(Def::Group(admins)),
        Some(Def::Group(narrowed)),
    );
    assert!(
        rules_of(&j).contains(&Rule::AdministratorsProtected),
        "{:?}",
        j.message
    );
}

/// "You can however duplicate the Administrators group, and then edit the
/// privilege set of the new group."
#[test]
fn seed_001_an_administrator_duplicates_administrators_and_edits_the_copy() {
    let mut s = organization();
    add_member(&mut s, member("olivia", &["administrators"]));
    let copy = GroupDef {
        duplicate_of: Some("administrators".into()),
        ..group(
            "administrators-copy",
            Some(GroupTemplate::Administrators),
            vec![],
        )
    };
    let j = judge_as(
        &s,
        "olivia",
        Operation::Create,
        None,
        Some(Def::Group(copy.clone())),
    );
    assert!(j.allowed(), "{:?}", j.message);
    assert_eq!(s.group_display_name(&copy), "Administrators_copy");
    add_group(&mut s, copy.clone());
    let edited = GroupDef {
        privileges: vec![
            spec(Search, "SearchPages", View),
            spec(Organization, "SingleSignOn", View),
        ],
        ..copy.clone()
    };
    let j = judge_as(
        &s,
        "olivia",
        Operation::Update,
        Some(Def::Group(copy)),
        Some(Def::Group(edited)),
    );
    assert!(j.allowed(), "{:?}", j.message);
}

/// The built-in groups "have been created with specific duties in mind":
/// each can do what seed 001 says it is for, and no more than that says.
#[test]
fn seed_001_built_in_groups_can_do_what_their_duties_need() {
    let mut s = organization();
    for b in BuiltinGroup::ALL {
        add_member(&mut s, member(b.object_name(), &[b.object_name()]));
    }
    type Duty<'a> = (&'a str, &'a [(Verb, &'a str)], &'a [(Verb, &'a str)]);
    let duties: [Duty; 5] = [
        (
            "analytics-managers",
            &[
                (Verb::Edit, "Analytics/Dimensions"),
                (Verb::Edit, "Analytics/NamedFilters"),
                (Verb::Edit, "Analytics/Reports"),
            ],
            &[(Verb::Edit, "Content/Sources")],
        ),
        (
            "analytics-viewers",
            &[(Verb::View, "Analytics/Reports")],
            &[(Verb::Edit, "Analytics/Reports")],
        ),
        (
            "content-managers",
            &[
                (Verb::Edit, "Content/Sources"),
                (Verb::Edit, "Content/Fields"),
                (Verb::Edit, "Content/Extensions"),
                (Verb::Allowed, "Search/ExecuteQueries"),
                (Verb::Edit, "Content/SecurityIdentities"),
                (Verb::Edit, "Content/SecurityIdentityProviders"),
            ],
            &[(Verb::Edit, "Search/QueryPipelines")],
        ),
        (
            "relevance-managers",
            &[
                (Verb::Edit, "Search/QueryPipelines"),
                (Verb::Edit, "MachineLearning/Models"),
                (Verb::Edit, "Analytics/Reports"),
            ],
            &[(Verb::Edit, "Content/Sources")],
        ),
        ("users", &[(Verb::Allowed, "Search/ExecuteQueries")], &[]),
    ];
    for (g, can, cannot) in duties {
        for (verb, target) in can {
            assert!(may(&s, g, *verb, target), "{g} should {verb:?} {target}");
        }
        for (verb, target) in cannot {
            assert!(
                !may(&s, g, *verb, target),
                "{g} should not {verb:?} {target}"
            );
        }
    }
    // Users "can't make any changes in the Administration Console".
    let users = &resolve_grantees(&s).groups["users"];
    for spec in users.to_specs() {
        assert!(
            !matches!(spec.level, Edit) && spec.can_create != Some(true),
            "users: {spec}"
        );
    }
}

/// "Although not yet part of built-in groups, you can [...] select the
/// Merchandisers Template preset."
#[test]
fn seed_001_merchandisers_is_a_template_not_a_built_in_group() {
    assert!(!GroupTemplate::Merchandisers.privileges().is_empty());
    assert!(
        BuiltinGroup::ALL
            .iter()
            .all(|b| b.object_name() != "merchandisers")
    );
}

/// "Your invitation expires after 31 days", and the member appears "once
/// they accept the invitation".
#[test]
fn seed_001_an_invitation_expires_after_31_days() {
    let invited = now();
    let m = MemberDef {
        accepted: false,
        invited_at: Some(invited),
        ..member("newcomer", &["users"])
    };
    let at = |days: i64| member_phase(&m, 31, invited + SignedDuration::from_hours(24 * days)).0;
    assert_eq!(at(30), MemberPhase::Pending);
    assert_eq!(at(31), MemberPhase::Expired);
    let accepted = MemberDef {
        accepted: true,
        ..m
    };
    assert_eq!(
        member_phase(&accepted, 31, invited + SignedDuration::from_hours(24 * 40)).0,
        MemberPhase::Active
    );
}

/// "Select Any listed if the member's email address is linked to more than
/// one of the listed applications": such a member is matched by an OpenID
/// domain identity set of any provider.
#[test]
fn seed_001_an_any_listed_member_is_matched_by_an_openid_domain() {
    let set = orgaccess::core::model::IdentitySet {
        open_id_domain: Some(orgaccess::core::model::OpenIdDomain {
            provider: Provider::Google,
            domain: "acme.example".into(),
        }),
        sso_group: None,
        salesforce_profile: None,
    };
    let any = MemberDef {
        identity: MemberIdentity {
            provider: Provider::AnyListed,
            username: "kim@acme.example".into(),
        },
        ..member("kim", &[])
    };
    assert!(set.matches(&any));
    let other = MemberDef {
        identity: MemberIdentity {
            provider: Provider::AnyListed,
            username: "kim@elsewhere.example".into(),
        },
        ..any
    };
    assert!(!set.matches(&other));
}

/// "You can individually invite people to a group": inviting needs Edit on
/// that group (and Activities View, as every group edit), not on all groups.
#[test]
fn seed_001_inviting_a_member_to_a_group_needs_edit_on_that_group() {
    let mut s = organization();
    let groups_edit_on = |g: &str| PrivilegeSpec {
        resources: vec![ResourceAccess {
            name: g.into(),
            level: ResourceLevel::Edit,
        }],
        ..spec(Organization, "Groups", Custom)
    };
    add_group(
        &mut s,
        group(
            "team-leads",
            None,
            vec![
                groups_edit_on("users"),
                spec(Organization, "Activities", View),
                spec(Organization, "Organization", View),
                spec(Search, "ExecuteQueries", Allowed),
            ],
        ),
    );
    add_member(&mut s, member("lead", &["team-leads"]));
    let invite = |g: &str| MemberDef {
        subjects: vec![],
        accepted: false,
        ..member("newcomer", &[g])
    };
    let j = judge_as(
        &s,
        "lead",
        Operation::Create,
        None,
        Some(Def::Member(invite("users"))),
    );
    assert!(j.allowed(), "{:?}", j.message);
    let j = judge_as(
        &s,
        "lead",
        Operation::Create,
        None,
        Some(Def::Member(invite("content-managers"))),
    );
    assert!(
        rules_of(&j).contains(&Rule::RequiredPrivileges),
        "{:?}",
        j.message
    );
}

/// "Grant the privilege to edit groups [...] only to the smallest possible
/// number of people": the advisor says when more hold it.
#[test]
fn seed_001_groups_edit_is_kept_to_few_people() {
    let mut s = organization();
    add_member(&mut s, member("olivia", &["administrators"]));
    let ids = |s: &OrgState| -> Vec<&'static str> {
        review(s, &resolve_grantees(s), &Settings::default(), now())
            .iter()
            .map(|f| f.id)
            .collect()
    };
    assert!(!ids(&s).contains(&"groups-edit-holders"));
    add_member(&mut s, member("oscar", &["administrators"]));
    assert!(ids(&s).contains(&"groups-edit-holders"));
}

/// "A member with the View access level on the Activities domain [...] can
/// therefore see all activities": the advisor names such members outside
/// Administrators.
#[test]
fn seed_001_activities_view_sees_every_activity() {
    let mut s = organization();
    add_group(
        &mut s,
        group(
            "auditors",
            None,
            vec![
                spec(Organization, "Activities", View),
                spec(Organization, "Organization", View),
            ],
        ),
    );
    add_member(&mut s, member("audrey", &["auditors"]));
    let found = review(&s, &resolve_grantees(&s), &Settings::default(), now());
    assert!(
        found
            .iter()
            .any(|f| f.id == "activities-view-holders" && f.message.contains("1 members")),
        "{found:?}"
    );
}

/// "Members of Group A can edit its configuration while Group B can only
/// view it" (the Access tab).
#[test]
fn seed_001_the_access_tab_lets_group_a_edit_a_group_and_group_b_view_it() {
    let mut s = organization();
    let basics = || {
        vec![
            spec(Organization, "Activities", View),
            spec(Organization, "Organization", View),
        ]
    };
    add_group(&mut s, group("group-a", None, basics()));
    add_group(&mut s, group("group-b", None, basics()));
    add_group(
        &mut s,
        GroupDef {
            access: vec![
                AccessEntry {
                    group: Some("group-a".into()),
                    api_key: None,
                    level: ResourceLevel::Edit,
                },
                AccessEntry {
                    group: Some("group-b".into()),
                    api_key: None,
                    level: ResourceLevel::View,
                },
            ],
            ..group(
                "new-group",
                None,
                vec![spec(Organization, "Organization", View)],
            )
        },
    );
    add_member(&mut s, member("ann", &["group-a"]));
    add_member(&mut s, member("bob", &["group-b"]));
    assert!(may(&s, "ann", Verb::Edit, "Organization/Groups/new-group"));
    assert!(may(&s, "bob", Verb::View, "Organization/Groups/new-group"));
    assert!(!may(&s, "bob", Verb::Edit, "Organization/Groups/new-group"));
    let g = (*s.groups["new-group"]).clone();
    let renamed = GroupDef {
        display_name: Some("New group".into()),
        ..g.clone()
    };
    let j = judge_as(
        &s,
        "ann",
        Operation::Update,
        Some(Def::Group(g.clone())),
        Some(Def::Group(renamed.clone())),
    );
    assert!(j.allowed(), "{:?}", j.message);
    let j = judge_as(
        &s,
        "bob",
        Operation::Update,
        Some(Def::Group(g)),
        Some(Def::Group(renamed)),
    );
    assert!(
        rules_of(&j).contains(&Rule::RequiredPrivileges),
        "{:?}",
        j.message
    );
}

/// Required privileges, "View groups": Organization/Activities: View and
/// Organization/Groups: View. A person holding Groups View alone cannot
/// (the answer names Activities View); an API key calls the API, which asks
/// the Groups privilege only.
#[test]
fn seed_001_viewing_groups_needs_activities_view_and_groups_view() {
    let mut s = organization();
    add_group(
        &mut s,
        group(
            "readers",
            None,
            vec![
                spec(Organization, "Groups", View),
                spec(Organization, "Organization", View),
            ],
        ),
    );
    add_group(
        &mut s,
        group(
            "watchers",
            None,
            vec![spec(Organization, "Activities", View)],
        ),
    );
    add_member(&mut s, member("rita", &["readers"]));
    add_member(&mut s, member("will", &["readers", "watchers"]));
    let a = ask(
        &s,
        Principal::Member("rita"),
        Verb::View,
        "Organization/Groups",
    );
    assert!(!a.allowed);
    assert_eq!(a.missing, vec![spec(Organization, "Activities", View)]);
    let a = ask(
        &s,
        Principal::Member("will"),
        Verb::View,
        "Organization/Groups",
    );
    assert!(a.allowed, "{a:?}");
    assert_eq!(a.granted_by, ["readers", "watchers"]);
    // The same through the Kubernetes identity mapped to the member.
    let groups: Vec<String> = vec![];
    assert!(
        !ask(
            &s,
            Principal::Identity {
                user: "rita",
                groups: &groups
            },
            Verb::View,
            "Organization/Groups"
        )
        .allowed
    );
    // An API key holding Groups View lists groups through the API.
    s.api_keys.insert(
        "lister".into(),
        Arc::new(orgaccess::core::model::ApiKeyDef {
            name: "lister".into(),
            privileges: vec![spec(Organization, "Groups", View)],
            enabled: true,
            ..Default::default()
        }),
    );
    assert!(
        ask(
            &s,
            Principal::ApiKey("lister"),
            Verb::View,
            "Organization/Groups"
        )
        .allowed
    );
}

// ---------------------------------------------------------------------------
// Seed 002: manage privileges
// ---------------------------------------------------------------------------

/// "If you grant a group the Edit access level on Fields, the members of
/// this group will be able to change the configuration of the fields."
#[test]
fn seed_002_edit_on_fields_lets_members_change_fields() {
    let mut s = organization();
    add_group(
        &mut s,
        group("field-editors", None, vec![spec(Content, "Fields", Edit)]),
    );
    add_group(
        &mut s,
        group("field-viewers", None, vec![spec(Content, "Fields", View)]),
    );
    add_member(&mut s, member("eve", &["field-editors"]));
    add_member(&mut s, member("vic", &["field-viewers"]));
    assert!(may(&s, "eve", Verb::Edit, "Content/Fields"));
    assert!(may(&s, "vic", Verb::View, "Content/Fields"));
    assert!(!may(&s, "vic", Verb::Edit, "Content/Fields"));
}

/// "When granted the Allowed access level for the Delete User Data domain
/// [...] an organization member can permanently delete user data."
#[test]
fn seed_002_allowed_on_delete_user_data_lets_a_member_delete_it() {
    let mut s = organization();
    add_group(
        &mut s,
        group(
            "privacy",
            None,
            vec![spec(Analytics, "DeleteUserData", Allowed)],
        ),
    );
    add_member(&mut s, member("pia", &["privacy"]));
    add_member(&mut s, member("nobody", &["users"]));
    assert!(may(&s, "pia", Verb::Allowed, "Analytics/DeleteUserData"));
    assert!(!may(
        &s,
        "nobody",
        Verb::Allowed,
        "Analytics/DeleteUserData"
    ));
}

/// "You could decide that its members can edit Source A, but only view
/// Source B."
#[test]
fn seed_002_custom_lets_members_edit_source_a_and_only_view_source_b() {
    let mut s = organization();
    add_group(
        &mut s,
        group(
            "source-a-team",
            None,
            vec![custom_sources(&["confluence"], &["jira"])],
        ),
    );
    add_member(&mut s, member("sam", &["source-a-team"]));
    assert!(may(&s, "sam", Verb::Edit, "Content/Sources/confluence"));
    assert!(may(&s, "sam", Verb::View, "Content/Sources/jira"));
    assert!(!may(&s, "sam", Verb::Edit, "Content/Sources/jira"));
    assert!(!may(&s, "sam", Verb::View, "Content/Sources/web"));
}

/// "Groups or API keys granted the Edit access level on a domain are also
/// automatically granted the ability to create resources [...] when you
/// select the View all or the Custom access level [...] you must decide".
#[test]
fn seed_002_edit_brings_can_create_and_view_or_custom_choose_it() {
    let mut s = organization();
    let view_create = PrivilegeSpec {
        can_create: Some(true),
        ..spec(Content, "Sources", View)
    };
    add_group(
        &mut s,
        group("editors", None, vec![spec(Content, "Sources", Edit)]),
    );
    add_group(
        &mut s,
        group("viewers", None, vec![spec(Content, "Sources", View)]),
    );
    add_group(&mut s, group("view-create", None, vec![view_create]));
    for (m, g, creates) in [
        ("e", "editors", true),
        ("v", "viewers", false),
        ("vc", "view-create", true),
    ] {
        add_member(&mut s, member(m, &[g]));
        assert_eq!(may(&s, m, Verb::Create, "Content/Sources"), creates, "{g}");
    }
}

/// The segregation-of-duties walkthrough: "you can create one, grant them
/// the desired privileges, and then duplicate it. Next, you edit the
/// duplicate group to grant it the desired granular access level for the
/// Sources domain" — then "Invite users in each group".
#[test]
fn seed_002_create_one_group_duplicate_it_and_edit_the_duplicates_sources() {
    let mut s = organization();
    add_member(&mut s, member("admin", &["administrators"]));
    let common = |sources: PrivilegeSpec| {
        vec![
            spec(Content, "Extensions", Edit),
            spec(Content, "Fields", Edit),
            sources,
            spec(Organization, "Activities", View),
            spec(Organization, "Organization", View),
            spec(Search, "ExecuteQueries", Allowed),
        ]
    };
    let atlassian = group(
        "atlassian-administrators",
        None,
        common(custom_sources(&["confluence", "jira"], &["youtube", "web"])),
    );
    let j = judge_as(
        &s,
        "admin",
        Operation::Create,
        None,
        Some(Def::Group(atlassian.clone())),
    );
    assert!(j.allowed(), "create: {:?}", j.message);
    add_group(&mut s, atlassian.clone());
    let copy = GroupDef {
        duplicate_of: Some("atlassian-administrators".into()),
        privileges: atlassian.privileges.clone(),
        ..group("marketing-administrators", None, vec![])
    };
    let j = judge_as(
        &s,
        "admin",
        Operation::Create,
        None,
        Some(Def::Group(copy.clone())),
    );
    assert!(j.allowed(), "duplicate: {:?}", j.message);
    assert_eq!(s.group_display_name(&copy), "atlassian-administrators_copy");
    add_group(&mut s, copy.clone());
    let edited = GroupDef {
        display_name: Some("Marketing Administrators".into()),
        privileges: common(custom_sources(&["youtube", "web"], &["confluence", "jira"])),
        ..copy.clone()
    };
    let j = judge_as(
        &s,
        "admin",
        Operation::Update,
        Some(Def::Group(copy)),
        Some(Def::Group(edited.clone())),
    );
    assert!(j.allowed(), "edit the duplicate: {:?}", j.message);
    add_group(&mut s, edited);
    // Invite users in each group; once accepted, each edits its own sources.
    for (name, g) in [
        ("ada", "atlassian-administrators"),
        ("mia", "marketing-administrators"),
    ] {
        let invite = MemberDef {
            subjects: vec![],
            accepted: false,
            ..member(name, &[g])
        };
        let j = judge_as(
            &s,
            "admin",
            Operation::Create,
            None,
            Some(Def::Member(invite.clone())),
        );
        assert!(j.allowed(), "invite {name}: {:?}", j.message);
        add_member(
            &mut s,
            MemberDef {
                accepted: true,
                ..invite
            },
        );
    }
    assert!(may(&s, "ada", Verb::Edit, "Content/Sources/jira"));
    assert!(!may(&s, "ada", Verb::Edit, "Content/Sources/web"));
    assert!(may(&s, "mia", Verb::Edit, "Content/Sources/web"));
    assert!(may(&s, "mia", Verb::View, "Content/Sources/jira"));
    assert!(
        !may(&s, "mia", Verb::Allowed, "Analytics/ViewAllReports"),
        "no usage analytics"
    );
    let eff = member_effective(&s, &resolve_grantees(&s), &s.members["mia"], now());
    assert_eq!(eff.privileges.len(), 6);
}

/// "Although the users in the identity sets you import into your
/// organization can access Coveo, they don't appear on the organization
/// member list": a member matched by an identity set alone holds the group's
/// privileges, and is the kind the Organization's status counts apart
/// (`identitySetMembers`); an invited member is listed.
#[test]
fn seed_001_identity_set_users_access_but_are_not_listed_as_members() {
    use orgaccess::core::effective::only_by_identity_sets;
    use orgaccess::core::model::{IdentitySet, OpenIdDomain};
    let mut s = organization();
    add_group(
        &mut s,
        GroupDef {
            identity_sets: vec![IdentitySet {
                open_id_domain: Some(OpenIdDomain {
                    provider: Provider::Google,
                    domain: "acme.example".into(),
                }),
                sso_group: None,
                salesforce_profile: None,
            }],
            ..group(
                "staff",
                None,
                vec![
                    spec(Search, "ExecuteQueries", Allowed),
                    spec(Organization, "Organization", View),
                ],
            )
        },
    );
    let imported = MemberDef {
        identity: MemberIdentity {
            provider: Provider::Google,
            username: "ivy@acme.example".into(),
        },
        ..member("ivy", &[])
    };
    add_member(&mut s, imported);
    add_member(&mut s, member("ian", &["users"]));
    assert!(
        may(&s, "ivy", Verb::Allowed, "Search/ExecuteQueries"),
        "the identity set gives access"
    );
    assert!(only_by_identity_sets(&s, &s.members["ivy"]));
    assert!(
        !only_by_identity_sets(&s, &s.members["ian"]),
        "an invited member is listed"
    );
}

/// "If you want to make your Web source accessible to two more groups,
/// Coveo Administrator Intern and Website Developers [...] In the Access
/// tab, you switch the access level of the desired groups to Edit." The
/// platform keeps a per-resource grant with its grantee (a privilege whose
/// target is the source); orgaccess does too: the Access tab's change is an
/// edit of each group's Custom Sources grant, judged as granting, and its
/// per-resource view is `who-can edit Content/Sources/web`.
#[test]
fn seed_002_the_access_tab_of_the_web_source_gives_two_more_groups_edit() {
    let mut s = organization();
    add_member(&mut s, member("admin", &["administrators"]));
    let basics = || vec![spec(Organization, "Organization", View)];
    for g in ["intern", "website-developers"] {
        add_group(&mut s, group(g, None, basics()));
        add_member(&mut s, member(&format!("{g}-member"), &[g]));
    }
    add_group(
        &mut s,
        group(
            "marketing",
            None,
            vec![custom_sources(&["youtube", "web"], &[])],
        ),
    );
    add_member(&mut s, member("mia", &["marketing"]));
    let editors = |s: &OrgState| -> Vec<String> {
        let mut v: Vec<String> = s
            .members
            .keys()
            .filter(|m| may(s, m, Verb::Edit, "Content/Sources/web"))
            .cloned()
            .collect();
        v.sort();
        v
    };
    assert_eq!(editors(&s), ["admin", "mia"]);
    for g in ["intern", "website-developers"] {
        let old = (*s.groups[g]).clone();
        let new = GroupDef {
            privileges: [basics(), vec![custom_sources(&["web"], &[])]].concat(),
            ..old.clone()
        };
        let j = judge_as(
            &s,
            "admin",
            Operation::Update,
            Some(Def::Group(old)),
            Some(Def::Group(new.clone())),
        );
        assert!(j.allowed(), "{g}: {:?}", j.message);
        // Mia edits the Web source but not the groups: she cannot hand it out.
        let j = judge_as(
            &s,
            "mia",
            Operation::Update,
            Some(Def::Group((*s.groups[g]).clone())),
            Some(Def::Group(new.clone())),
        );
        assert!(!j.allowed());
        add_group(&mut s, new);
    }
    assert_eq!(
        editors(&s),
        ["admin", "intern-member", "mia", "website-developers-member"]
    );
}
