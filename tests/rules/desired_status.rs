//! The controller's pure step (observe → desired status → apply), tested
//! from the YAML in `examples/` without a cluster: the Group, Member and
//! Organization statuses it derives say the same thing about the same
//! organization, and match the core's reading of it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use orgaccess::api::{ApiKey, Group, Member, Organization};
use orgaccess::cli::manifest::{Object, load};
use orgaccess::controller::desired;
use orgaccess::core::builtin::BuiltinGroup;
use orgaccess::core::effective::MemberPhase;
use orgaccess::index::{Index, Stored};

const NS: &str = "demo";

struct Fixture {
    index: Index,
    org: Organization,
    groups: Vec<Group>,
    members: Vec<Member>,
    keys: Vec<ApiKey>,
}

/// The examples as the watches would index them (the built-in groups seeded).
fn examples() -> Fixture {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"));
    let loaded = load(&[dir], NS);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let index = Index::new();
    let (mut org, mut groups, mut members, mut keys) = (None, Vec::new(), Vec::new(), Vec::new());
    for m in loaded.manifests {
        match m.object {
            Object::Organization(mut o) => {
                o.metadata.namespace = Some(NS.into());
                index.apply(&o);
                org = Some(o);
            }
            Object::Group(mut g) => {
                g.metadata.namespace = Some(NS.into());
                index.apply(&g);
                groups.push(g);
            }
            Object::Member(mut x) => {
                x.metadata.namespace = Some(NS.into());
                index.apply(&x);
                members.push(x);
            }
            Object::ApiKey(mut k) => {
                k.metadata.namespace = Some(NS.into());
                index.apply(&k);
                keys.push(k);
            }
            Object::AccessReview(mut r) => {
                r.metadata.namespace = Some(NS.into());
                index.apply(&r);
            }
        }
    }
    // What the Organization reconcile seeds.
    for b in BuiltinGroup::ALL {
        if groups
            .iter()
            .any(|g| g.metadata.name.as_deref() == Some(b.object_name()))
        {
            continue;
        }
        let mut g = orgaccess::controller::builtin_group(b);
        g.metadata.namespace = Some(NS.into());
        index.apply(&g);
        groups.push(g);
    }
    Fixture {
        index,
        org: org.expect("examples declare an Organization"),
        groups,
        members,
        keys,
    }
}

/// An accepted Member of the examples with groups, created at `created`
/// (and indexed so), the name of its first group, and that Group.
fn a_member_and_its_group(f: &Fixture, created: jiff::Timestamp) -> (Member, String, Group) {
    let mut m = f
        .members
        .iter()
        .find(|m| m.spec.accepted && !m.spec.groups.is_empty())
        .expect("an accepted member with groups")
        .clone();
    m.metadata.creation_timestamp = Some(Time(created));
    f.index.apply(&m);
    let group = m.spec.groups[0].clone();
    let g = f
        .groups
        .iter()
        .find(|g| g.metadata.name.as_deref() == Some(group.as_str()))
        .expect("the group")
        .clone();
    (m, group, g)
}

#[test]
fn group_and_member_statuses_agree_on_membership() {
    let f = examples();
    let ns = f.index.namespace(NS);
    let now = jiff::Timestamp::now();
    let mut by_member: BTreeSet<(String, String)> = BTreeSet::new();
    for m in &f.members {
        let status = desired::member(&Stored::from(m.clone()), &ns, now).expect("indexed");
        for g in status.groups.iter().filter(|g| g.active) {
            by_member.insert((g.group.clone(), m.metadata.name.clone().unwrap()));
        }
    }
    let mut by_group: BTreeSet<(String, String)> = BTreeSet::new();
    for g in &f.groups {
        let status = desired::group(&Stored::from(g.clone()), &ns, now).expect("indexed");
        assert_eq!(status.member_count as usize, status.members.len());
        for m in status.members {
            by_group.insert((g.metadata.name.clone().unwrap(), m));
        }
    }
    assert!(!by_group.is_empty(), "the examples have active members");
    assert_eq!(by_member, by_group);
}

#[test]
fn organization_status_counts_what_the_members_report() {
    let f = examples();
    let ns = f.index.namespace(NS);
    let now = jiff::Timestamp::now();
    let findings = desired::organization_findings(&ns, now);
    let org = desired::organization(&f.org, &ns, BuiltinGroup::ALL.to_vec(), &findings, now);
    let statuses: Vec<_> = f
        .members
        .iter()
        .map(|m| {
            (
                m,
                desired::member(&Stored::from(m.clone()), &ns, now).expect("indexed"),
            )
        })
        .collect();
    let active = statuses
        .iter()
        .filter(|(_, s)| s.phase == Some(MemberPhase::Active))
        .count();
    assert_eq!(org.members as usize, f.members.len());
    assert_eq!(org.active_members as usize, active);
    assert_eq!(org.groups as usize, f.groups.len());
    let admins: Vec<String> = statuses
        .iter()
        .filter(|(_, s)| {
            s.groups
                .iter()
                .any(|g| g.active && g.group == BuiltinGroup::Administrators.object_name())
        })
        .map(|(m, _)| m.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(org.administrators, admins);
}

#[test]
fn member_status_is_the_cores_effective_privileges() {
    let f = examples();
    let ns = f.index.namespace(NS);
    let now = jiff::Timestamp::now();
    let grantees = ns.grantees();
    for m in &f.members {
        let status = desired::member(&Stored::from(m.clone()), &ns, now).expect("indexed");
        let def = orgaccess::core::model::MemberDef::from(m);
        let eff = orgaccess::core::effective::member_effective(&ns.state, &grantees, &def, now);
        let expected: Vec<_> = eff.provenance(&grantees);
        let got: Vec<_> = status
            .privileges
            .iter()
            .map(|p| (p.privilege.clone(), p.granted_by.clone()))
            .collect();
        assert_eq!(got, expected, "member {:?}", m.metadata.name);
        assert_eq!(status.phase, Some(eff.phase));
    }
}

#[test]
fn the_seeded_groups_are_the_ones_the_offline_cli_assumes() {
    for b in BuiltinGroup::ALL {
        let seeded = orgaccess::controller::builtin_group(b);
        assert_eq!(
            orgaccess::core::model::GroupDef::from(&seeded),
            // What the offline CLI adds (`cli::source::add_builtin_groups`).
            orgaccess::core::model::GroupDef::seeded(b),
            "{b:?}"
        );
    }
}

#[test]
fn a_duplicate_shows_one_display_name_in_status_and_in_the_cli() {
    let f = examples();
    let ns = f.index.namespace(NS);
    let source = ns.state.groups.values().next().unwrap().clone();
    let org = orgaccess::cli::source::Org {
        namespace: NS.into(),
        state: ns.state.clone(),
        explicit_namespace: false,
        implicit_builtins: Vec::new(),
        key_last_used: Default::default(),
        locations: Default::default(),
    };
    let mut copy = orgaccess::cli::duplicate::duplicate(&org, &source, "the-copy");
    copy.metadata.namespace = Some(NS.into());
    let written = copy.spec.display_name.clone();
    // Without a display name of its own, status derives the same one (the
    // controller reads the definition the index holds).
    copy.spec.display_name = None;
    f.index.apply(&copy);
    let ns = f.index.namespace(NS);
    let status =
        desired::group(&Stored::from(copy.clone()), &ns, jiff::Timestamp::now()).expect("indexed");
    assert_eq!(status.display_name, written);
    assert_eq!(
        written.unwrap(),
        format!("{}_copy", ns.state.group_display_name(&source))
    );
}

/// An API key's phase is one fact (core `apikey::Standing`): the
/// controller's status, `orgaccess explain` and `who-can` say the same about
/// it at every age and switch — an expired or disabled key is listed by no
/// question as able to do anything.
#[test]
fn api_key_phase_agrees_across_status_explain_and_who_can() {
    use jiff::{SignedDuration, Timestamp};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use orgaccess::cli::{explain, source::Org, who_can};
    use orgaccess::core::apikey::{SecretFacts, plan};
    use orgaccess::core::privilege::AccessLevel;

    let f = examples();
    assert!(!f.keys.is_empty(), "the examples declare API keys");
    let now = Timestamp::now();
    let mut seen = BTreeSet::new();
    for k in &f.keys {
        let name = k.metadata.name.clone().unwrap();
        for (age_days, enabled) in [
            (1, true),
            (1, false),
            (100, true),
            (100, false),
            (400, true),
        ] {
            let mut key = k.clone();
            let created = now - SignedDuration::from_hours(24 * age_days);
            key.metadata.creation_timestamp = Some(Time(created));
            key.spec.enabled = enabled;
            f.index.apply(&key);
            let ns = f.index.namespace(NS);

            let facts = desired::api_key_facts(&key, 14, now);
            let plan = plan(&facts, &SecretFacts::Missing, now);
            let status = desired::api_key(
                &key,
                &ns,
                &plan,
                &desired::SecretValues::default(),
                None,
                created,
            );
            let phase = format!("{:?}", status.phase.expect("a phase"));
            seen.insert(phase.clone());

            let org = Org {
                namespace: NS.into(),
                state: ns.state.clone(),
                explicit_namespace: true,
                implicit_builtins: Vec::new(),
                key_last_used: Default::default(),
                locations: Default::default(),
            };
            let grantees = ns.grantees();
            let explained =
                serde_json::to_value(explain::explain_api_key(&org, &name, &grantees, now))
                    .unwrap();
            assert_eq!(
                explained["phase"],
                phase.as_str(),
                "{name}, {age_days} days, enabled {enabled}"
            );

            let live = phase == "Active";
            for p in &status.privileges {
                let verb = match p.level {
                    AccessLevel::View => who_can::Verb::View,
                    AccessLevel::Edit => who_can::Verb::Edit,
                    AccessLevel::Allowed => who_can::Verb::Allowed,
                    AccessLevel::Push | AccessLevel::PushAndView => who_can::Verb::Push,
                    _ => continue,
                };
                let target = format!("{}/{}", p.service.as_str(), p.domain);
                let need = who_can::need(verb, &target).unwrap();
                let _ = &need.verb;
                let listed = who_can::holders(&org, &need, now)
                    .iter()
                    .any(|h| h.kind == "ApiKey" && h.name == name);
                assert_eq!(listed, live, "who-can {verb:?} {target}: {name} is {phase}");
            }
        }
        f.index.apply(k);
    }
    assert_eq!(
        seen,
        ["Active", "Disabled", "Expired"].map(String::from).into(),
        "every phase was exercised"
    );
}

/// The Organization's `status.advice` is the core advisor's review of the
/// same objects (what `orgaccess advise` prints), under the Organization's
/// own `spec.advice`: a finding it switches off is not counted.
#[test]
fn organization_advice_is_the_advisors_review_under_its_settings() {
    use orgaccess::core::advice::{Counts, review};
    use orgaccess::core::effective::resolve_grantees;
    use orgaccess::core::model::DisabledFinding;
    let mut f = examples();
    let now = jiff::Timestamp::now();
    let advice_of = |f: &Fixture| {
        let ns = f.index.namespace(NS);
        let findings = desired::organization_findings(&ns, now);
        desired::organization(&f.org, &ns, BuiltinGroup::ALL.to_vec(), &findings, now)
            .advice
            .expect("status.advice")
    };
    let state = orgaccess::api::org_state(NS, [&f.org], &f.groups, &f.members, &f.keys);
    let reviewed = review(
        &state,
        &resolve_grantees(&state),
        &state.advice_settings(),
        now,
    );
    let before = advice_of(&f);
    let counts = Counts::of(&reviewed);
    assert_eq!(
        (before.critical, before.warning, before.info),
        (counts.critical, counts.warning, counts.info)
    );
    assert!(
        before.findings.iter().any(|id| id == "key-near-cap"),
        "{before:?}"
    );

    f.org.spec.advice.disabled.push(DisabledFinding {
        finding: "key-near-cap".into(),
        reason: "the public search key is rotated by the web team".into(),
    });
    f.index.apply(&f.org);
    let after = advice_of(&f);
    assert!(
        !after.findings.iter().any(|id| id == "key-near-cap"),
        "{after:?}"
    );
    assert_eq!(after.info + 1, before.info);
}

/// The controllers look objects up in stores whose copies keep no spec
/// (`Indexed::lean`: the index has read the full object first): the status
/// comes from the definition the index holds, so a lean copy gets the same
/// status as the full object, and an object the index does not hold none.
#[test]
fn a_lean_stored_copy_gets_the_status_of_the_full_object() {
    let f = examples();
    let ns = f.index.namespace(NS);
    let now = jiff::Timestamp::now();
    // New conditions take the time of the call: compare without it.
    fn timeless(
        mut conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    ) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        for c in &mut conditions {
            c.last_transition_time =
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH);
        }
        conditions
    }
    let mut checked = 0;
    for m in &f.members {
        let lean = Stored::keep(m.clone());
        let spec = &lean.object.spec;
        assert!(spec.groups.is_empty() && spec.identity.username.is_empty());
        let (mut a, mut b) = (
            desired::member(&Stored::from(m.clone()), &ns, now).expect("indexed"),
            desired::member(&lean, &ns, now).expect("indexed"),
        );
        a.conditions = timeless(a.conditions);
        b.conditions = timeless(b.conditions);
        assert_eq!(a, b, "member {:?}", m.metadata.name);
        checked += usize::from(!a.privileges.is_empty());
    }
    assert!(checked > 0, "the examples have members with privileges");
    for g in &f.groups {
        let lean = Stored::keep(g.clone());
        let spec = &lean.object.spec;
        assert!(spec.privileges.is_empty() && spec.template.is_none());
        let (mut a, mut b) = (
            desired::group(&Stored::from(g.clone()), &ns, now).expect("indexed"),
            desired::group(&lean, &ns, now).expect("indexed"),
        );
        a.conditions = timeless(a.conditions);
        b.conditions = timeless(b.conditions);
        assert_eq!(a, b, "group {:?}", g.metadata.name);
    }
    let mut stranger = f.members[0].clone();
    stranger.metadata.name = Some("not-indexed".into());
    assert!(desired::member(&Stored::from(stranger.clone()), &ns, now).is_none());
    let mut stranger = f.groups[0].clone();
    stranger.metadata.name = Some("not-indexed".into());
    assert!(desired::group(&Stored::from(stranger.clone()), &ns, now).is_none());
}

/// Zero writes when idle, through the cache: a status as the apiserver
/// returns it (JSON, times to the second), then cached as the store keeps
/// it (lean, its lists digested and its conditions compact), is the status
/// the next reconcile wants, minutes later: nothing to write. And a
/// condition that turns is seen, by the log too.
#[test]
fn a_cached_written_status_is_wanted_again_unchanged() {
    fn as_returned<T: serde::Serialize + serde::de::DeserializeOwned>(t: &T) -> T {
        serde_json::from_value(serde_json::to_value(t).unwrap()).unwrap()
    }
    let f = examples();
    let ns = f.index.namespace(NS);
    let then = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let later = then + jiff::SignedDuration::from_mins(42);
    let mut checked = 0;
    for m in &f.members {
        let mut written = m.clone();
        let full = as_returned(&desired::member(&Stored::from(m.clone()), &ns, then).unwrap());
        written.status = Some(full.clone());
        let stored = Stored::keep(written);
        let cached = stored.object.status.as_ref();
        assert!(cached.unwrap().conditions.is_empty(), "kept compact");
        let again = desired::member(&stored, &ns, later).unwrap();
        assert!(
            stored.written().unchanged(&again),
            "member {:?}: {:#?}\nvs\n{:#?}",
            m.metadata.name,
            full,
            again
        );
        let restored = stored.written().status();
        assert_eq!(restored.conditions.len(), full.conditions.len());
        for (r, w) in restored.conditions.iter().zip(&full.conditions) {
            assert_eq!(
                (&r.type_, &r.status, &r.last_transition_time),
                (&w.type_, &w.status, &w.last_transition_time)
            );
        }
        let mut turned = again.clone();
        turned.conditions[0].status = "Unknown".into();
        assert!(!stored.written().unchanged(&turned));
        checked += 1;
    }
    for g in &f.groups {
        let mut written = g.clone();
        written.status = Some(as_returned(
            &desired::group(&Stored::from(g.clone()), &ns, then).unwrap(),
        ));
        let stored = Stored::keep(written);
        let again = desired::group(&stored, &ns, later).unwrap();
        assert!(
            stored.written().unchanged(&again),
            "group {:?}",
            g.metadata.name
        );
        checked += 1;
    }
    assert!(checked > 5);
}

/// Seed 001: identity-set users "don't appear on the organization member
/// list". The Organization's status counts them apart (`identitySetMembers`,
/// among `members`), and the member's own status shows its group by
/// identity set.
#[test]
fn organization_status_counts_members_brought_in_by_identity_sets_alone() {
    let f = examples();
    let staff: Group = serde_json::from_value(serde_json::json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
        "metadata": {"name": "staff", "namespace": NS},
        "spec": {"identitySets": [{"openIdDomain": {"provider": "Google", "domain": "acme.example"}}],
                 "privileges": [{"service": "Search", "domain": "ExecuteQueries", "level": "Allowed"}]}
    }))
    .unwrap();
    let ivy: Member = serde_json::from_value(serde_json::json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Member",
        "metadata": {"name": "ivy", "namespace": NS},
        "spec": {"identity": {"provider": "Google", "username": "ivy@acme.example"}, "accepted": true}
    }))
    .unwrap();
    let now = jiff::Timestamp::now();
    let before = {
        let ns = f.index.namespace(NS);
        desired::organization(&f.org, &ns, BuiltinGroup::ALL.to_vec(), &[], now)
    };
    f.index.apply(&staff);
    f.index.apply(&ivy);
    let ns = f.index.namespace(NS);
    let org = desired::organization(&f.org, &ns, BuiltinGroup::ALL.to_vec(), &[], now);
    assert_eq!(org.identity_set_members, before.identity_set_members + 1);
    assert_eq!(org.members, before.members + 1);
    let status = desired::member(&Stored::from(ivy), &ns, now).expect("indexed");
    assert!(
        status.groups.iter().any(|g| g.group == "staff" && g.active),
        "{:?}",
        status.groups
    );
}

/// A membership's end (docs/time-bound-membership.md): the Member's status
/// and its group's say the same at each instant — counted and warned of
/// before the end, ended and gone from the group's members from it on — and
/// the Member's status names the next instant worth a reconcile.
#[test]
fn member_and_group_status_agree_across_a_membership_end() {
    let f = examples();
    let created = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let (mut m, group, g) = a_member_and_its_group(&f, created);
    m.spec.group_until.insert(group.clone(), "P30D".into());
    f.index.apply(&m);
    let ns = f.index.namespace(NS);
    let end = created + jiff::SignedDuration::from_hours(24 * 30);
    let name = m.metadata.name.clone().unwrap();
    for (at, counts, warned) in [
        (created, true, false),
        (end - jiff::SignedDuration::from_hours(24), true, true),
        (end, false, false),
    ] {
        let status = desired::member(&Stored::from(m.clone()), &ns, at).expect("indexed");
        let ms = status.groups.iter().find(|x| x.group == group).unwrap();
        assert_eq!((ms.active, ms.ended), (counts, !counts), "at {at}");
        assert_eq!(ms.ends_at.as_deref(), Some(end.to_string().as_str()));
        assert_eq!(status.ended_memberships, u32::from(!counts));
        let ending = status
            .conditions
            .iter()
            .find(|c| c.type_ == "MembershipEnding")
            .expect("the condition");
        assert_eq!(
            ending.status == "True",
            warned,
            "at {at}: {}",
            ending.message
        );
        let gs = desired::group(&Stored::from(g.clone()), &ns, at).expect("indexed");
        assert_eq!(gs.members.contains(&name), counts, "group status at {at}");
    }
}

/// An access review, from the controller's pure step: the Group's status
/// (last review, next due date, standing, the `AccessReviewed` condition,
/// its members) and a Member's (its membership suspended) agree at each
/// instant; a review confirming the member lifts the suspension; with
/// Report, only the condition changes.
#[test]
fn group_and_member_status_follow_access_reviews() {
    use orgaccess::api::{AccessReview, AccessReviewSpec};
    use orgaccess::core::model::WhenOverdue;
    use orgaccess::core::review::Standing;
    let mut f = examples();
    let created = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let day = jiff::SignedDuration::from_hours(24);
    let (m, group, mut g) = a_member_and_its_group(&f, created);
    g.metadata.creation_timestamp = Some(Time(created));
    g.spec.review_every = Some("P30D".into());
    f.index.apply(&g);
    f.org
        .spec
        .access_reviews
        .get_or_insert_default()
        .when_overdue = WhenOverdue::Suspend;
    f.index.apply(&f.org);
    let name = m.metadata.name.clone().unwrap();
    let due = created + day * 30;
    let look = |f: &Fixture, at: jiff::Timestamp| {
        let ns = f.index.namespace(NS);
        let gs = desired::group(&Stored::from(g.clone()), &ns, at).expect("indexed");
        let ms = desired::member(&Stored::from(m.clone()), &ns, at).expect("indexed");
        (gs, ms)
    };
    for (at, standing, counts) in [
        (created + day, Standing::Current, true),
        (due - day, Standing::Due, true),
        (due, Standing::Overdue, false),
    ] {
        let (gs, ms) = look(&f, at);
        assert_eq!(gs.review_standing, Some(standing), "at {at}");
        assert_eq!(
            gs.next_review_due.as_deref(),
            Some(due.to_string().as_str())
        );
        assert_eq!(gs.last_review, None);
        let c = gs
            .conditions
            .iter()
            .find(|c| c.type_ == "AccessReviewed")
            .expect("the condition");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            match standing {
                Standing::Current => ("True", "NotYetDue"),
                Standing::Due => ("False", "Due"),
                Standing::Overdue => ("False", "Overdue"),
            },
            "at {at}: {}",
            c.message
        );
        // Ready does not follow the review.
        let ready = gs.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "True", "{}", ready.message);
        assert_eq!(gs.members.contains(&name), counts, "group members at {at}");
        assert_eq!(gs.suspended_members >= 1, !counts, "at {at}");
        let x = ms.groups.iter().find(|x| x.group == group).unwrap();
        assert_eq!((x.active, x.suspended), (counts, !counts), "at {at}");
        assert_eq!(ms.suspended_memberships, u32::from(!counts));
    }
    // A review confirming the member, recorded before the due date.
    let mut r = AccessReview::new(
        "r1",
        AccessReviewSpec {
            group: group.clone(),
            confirmed: vec![name.clone()],
            note: None,
        },
    );
    r.metadata.namespace = Some(NS.into());
    r.metadata.creation_timestamp = Some(Time(created + day * 10));
    f.index.apply(&r);
    let (gs, ms) = look(&f, due);
    assert_eq!(gs.review_standing, Some(Standing::Current));
    assert_eq!(gs.last_review.as_ref().map(|l| l.name.as_str()), Some("r1"));
    let next = created + day * 40;
    assert_eq!(
        gs.next_review_due.as_deref(),
        Some(next.to_string().as_str())
    );
    assert!(gs.members.contains(&name));
    let x = ms.groups.iter().find(|x| x.group == group).unwrap();
    assert!(x.active && !x.suspended);
    // Overdue again, but the last review confirmed the member.
    let (gs, ms) = look(&f, next);
    assert_eq!(gs.review_standing, Some(Standing::Overdue));
    assert!(gs.members.contains(&name));
    assert_eq!(ms.suspended_memberships, 0);
    // Report only: overdue without a review, nobody suspended.
    f.index.delete(&r);
    f.org
        .spec
        .access_reviews
        .get_or_insert_default()
        .when_overdue = WhenOverdue::Report;
    f.index.apply(&f.org);
    let (gs, ms) = look(&f, due);
    assert_eq!(gs.review_standing, Some(Standing::Overdue));
    assert_eq!(gs.suspended_members, 0);
    assert!(gs.members.contains(&name));
    assert_eq!(ms.suspended_memberships, 0);
}
