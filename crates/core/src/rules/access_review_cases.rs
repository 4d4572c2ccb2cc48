//! The table of access review cases: ReviewedByOwner, the review fields'
//! CatalogValidity, and NoEscalation/RequiredPrivileges for changes that lift
//! or postpone a suspension (`review_grants.rs`), judged by `check` in the
//! table's organization with a reviewed group.
//!
//! `ops` (Content/Sources: Edit) is reviewed every 30 days, owned by `lead`
//! (in `ops-leads`: Edit on `ops` and what `ops` holds) and `ann`; `ann` and
//! `bob` are its members. Review `r1` confirmed `ann` and `bob`, the later
//! `r2` only `ann`. `gm` holds Groups Edit but not what `ops` holds;
//! `org-editor` holds Organization: Edit only.

use jiff::Timestamp;
use std::sync::Arc;

use crate::model::{AccessReviewDef, GroupDef, OrgState, WhenOverdue};
use crate::privilege::{AccessLevel, PrivilegeSpec, ResourceAccess, ResourceLevel};
use crate::rules::Rule::{CatalogValidity, NoEscalation, RequiredPrivileges, ReviewedByOwner};
use crate::rules::check;
use crate::rules::table::{
    Case, Def, Verdict::*, Who::*, create, delete, group, member, org, privilege, run_in, update,
};

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn review(name: &str, group: &str, confirmed: &[&str], created: Option<&str>) -> AccessReviewDef {
    AccessReviewDef {
        name: name.into(),
        group: group.into(),
        confirmed: confirmed.iter().map(|c| c.to_string()).collect(),
        created: created.map(at),
        ..AccessReviewDef::default()
    }
}

fn state(when: WhenOverdue) -> OrgState {
    let mut s = org();
    s.org.as_mut().unwrap().access_reviews.when_overdue = when;
    let ops = GroupDef {
        owners: vec!["lead".into(), "ann".into()],
        review_every: Some("P30D".into()),
        created: Some(at("2026-01-01T00:00:00Z")),
        ..group(
            "ops",
            vec![privilege("Content", "Sources", AccessLevel::Edit)],
        )
    };
    let leads = group(
        "ops-leads",
        vec![
            PrivilegeSpec {
                resources: vec![ResourceAccess {
                    name: "ops".into(),
                    level: ResourceLevel::Edit,
                }],
                ..privilege("Organization", "Groups", AccessLevel::Custom)
            },
            privilege("Organization", "Activities", AccessLevel::View),
            privilege("Content", "Sources", AccessLevel::Edit),
        ],
    );
    let org_editors = group(
        "org-editors",
        vec![
            privilege("Organization", "Organization", AccessLevel::Edit),
            privilege("Organization", "Activities", AccessLevel::View),
        ],
    );
    for g in [ops, leads, org_editors] {
        s.groups.insert(g.name.clone(), Arc::new(g));
    }
    for (name, groups) in [
        ("lead", &["ops-leads"][..]),
        ("ann", &["ops", "ops-leads"][..]),
        ("bob", &["ops"][..]),
        ("org-editor", &["org-editors"][..]),
    ] {
        let mut m = member(name, groups);
        m.invited_at = Some(at("2026-01-02T00:00:00Z"));
        s.members.insert(m.name.clone(), Arc::new(m));
    }
    for r in [
        review("r1", "ops", &["ann", "bob"], Some("2026-01-10T00:00:00Z")),
        review("r2", "ops", &["ann"], Some("2026-01-20T00:00:00Z")),
    ] {
        s.reviews.insert(r.name.clone(), Arc::new(r));
    }
    s
}

fn ops_with(s: &OrgState, f: impl FnOnce(&mut GroupDef)) -> Op2 {
    let old = (*s.groups["ops"]).clone();
    let mut new = old.clone();
    f(&mut new);
    (Def::Group(old), Def::Group(new))
}

type Op2 = (Def, Def);

const NOW: &str = "2026-02-01T00:00:00Z";

#[test]
fn recording_a_review() {
    let s = state(WhenOverdue::Suspend);
    let new = |confirmed: &[&str]| Def::AccessReview(review("r3", "ops", confirmed, Some(NOW)));
    let cases: Vec<Case> = vec![
        (
            "an owner holding Edit on the group and what it holds records a review",
            User("lead"),
            create(new(&["ann", "bob"])),
            Admitted,
        ),
        (
            "Groups Edit alone does not make a reviewer: gm is no owner",
            User("gm"),
            create(new(&["ann"])),
            Refused(ReviewedByOwner),
        ),
        (
            "an administrator who is no owner records no review",
            User("olivia"),
            create(new(&["ann"])),
            Refused(ReviewedByOwner),
        ),
        (
            "a viewer neither owns nor edits the group",
            User("viewer"),
            create(new(&["bob"])),
            Refused(RequiredPrivileges),
        ),
        (
            "ann, an owner confirmed in the last review, confirms bob and herself: nothing of hers is lifted",
            User("ann"),
            create(new(&["ann", "bob"])),
            Admitted,
        ),
        (
            "a review of a group that does not exist yet is refused, for trusted principals too",
            Trusted,
            create(Def::AccessReview(review("r3", "later", &[], Some(NOW)))),
            Refused(CatalogValidity),
        ),
        (
            "a review confirms only members of the group",
            User("lead"),
            create(new(&["bob", "viewer"])),
            Refused(CatalogValidity),
        ),
        (
            "a review's spec never changes",
            Trusted,
            update(
                Def::AccessReview((*s.reviews["r2"]).clone()),
                Def::AccessReview(review(
                    "r2",
                    "ops",
                    &["ann", "bob"],
                    Some("2026-01-20T00:00:00Z"),
                )),
            ),
            Refused(CatalogValidity),
        ),
        (
            "a metadata-only update of a review changes nothing",
            User("lead"),
            update(
                Def::AccessReview((*s.reviews["r2"]).clone()),
                Def::AccessReview(AccessReviewDef {
                    meta: crate::model::Meta {
                        finalizers: vec![],
                        ..Default::default()
                    },
                    ..(*s.reviews["r2"]).clone()
                }),
            ),
            Admitted,
        ),
        (
            "deleting the latest review restores what the earlier one confirmed (bob): a grant, which lead may make",
            User("lead"),
            delete(Def::AccessReview((*s.reviews["r2"]).clone())),
            Admitted,
        ),
        (
            "gm may not delete a review: no owner",
            User("gm"),
            delete(Def::AccessReview((*s.reviews["r2"]).clone())),
            Refused(ReviewedByOwner),
        ),
    ];
    run_in(s, cases, check);
}

/// An owner who is a member of the group does not lift or postpone their
/// own suspension: bob, made an owner with Edit, cannot confirm himself nor
/// restart the count while unconfirmed.
#[test]
fn nobody_reviews_their_own_membership() {
    let mut s = state(WhenOverdue::Suspend);
    Arc::make_mut(s.groups.get_mut("ops").unwrap())
        .owners
        .push("bob".into());
    Arc::make_mut(s.members.get_mut("bob").unwrap())
        .groups
        .push("ops-leads".into());
    let new = |confirmed: &[&str]| Def::AccessReview(review("r3", "ops", confirmed, Some(NOW)));
    let cases: Vec<Case> = vec![
        (
            "bob confirms himself",
            User("bob"),
            create(new(&["ann", "bob"])),
            Refused(NoEscalation),
        ),
        (
            "bob leaves himself out, which still restarts his count",
            User("bob"),
            create(new(&["ann"])),
            Refused(NoEscalation),
        ),
        (
            "ann (confirmed in r2) confirms bob",
            User("ann"),
            create(new(&["ann", "bob"])),
            Admitted,
        ),
        (
            "bob deletes r2, which makes r1 (confirming him) the last",
            User("bob"),
            delete(Def::AccessReview((*s.reviews["r2"]).clone())),
            Refused(NoEscalation),
        ),
    ];
    run_in(s, cases, check);
}

#[test]
fn cadence_owners_and_settings() {
    let s = state(WhenOverdue::Suspend);
    let longer = ops_with(&s, |g| g.review_every = Some("P365D".into()));
    let removed = ops_with(&s, |g| g.review_every = None);
    let shorter = ops_with(&s, |g| g.review_every = Some("P7D".into()));
    let gm_owner = ops_with(&s, |g| g.owners.push("gm".into()));
    let viewer_owner = ops_with(&s, |g| g.owners.push("viewer".into()));
    let bad = ops_with(&s, |g| g.review_every = Some("P5Y".into()));
    let org = s.org.clone().unwrap();
    let mut report = org.clone();
    report.access_reviews.when_overdue = WhenOverdue::Report;
    let mut grace = org.clone();
    grace.access_reviews.grace_period = Some("P30D".into());
    let mut bad_grace = org.clone();
    bad_grace.access_reviews.grace_period = Some("P100D".into());
    let o = |d: &crate::model::OrgDef| Def::Organization(d.clone());
    let cases: Vec<Case> = vec![
        (
            "lengthening the cadence postpones bob's suspension: gm lacks what ops holds",
            User("gm"),
            update(longer.0.clone(), longer.1.clone()),
            Refused(NoEscalation),
        ),
        (
            "removing the cadence lifts it: gm lacks what ops holds",
            User("gm"),
            update(removed.0.clone(), removed.1.clone()),
            Refused(NoEscalation),
        ),
        (
            "lead, who holds what ops holds, lengthens it",
            User("lead"),
            update(longer.0, longer.1),
            Admitted,
        ),
        (
            "shortening the cadence grants nothing",
            User("gm"),
            update(shorter.0, shorter.1),
            Admitted,
        ),
        (
            "gm, who edits every group, makes itself an owner (then still needs what ops holds to review)",
            User("gm"),
            update(gm_owner.0, gm_owner.1),
            Admitted,
        ),
        (
            "a viewer cannot make itself an owner of a group it cannot edit",
            User("viewer"),
            update(viewer_owner.0, viewer_owner.1),
            Refused(RequiredPrivileges),
        ),
        (
            "a cadence beyond three years is refused, for trusted principals too",
            Trusted,
            update(bad.0, bad.1),
            Refused(CatalogValidity),
        ),
        (
            "switching Suspend to Report restores suspended memberships: org-editor lacks ops",
            User("org-editor"),
            update(o(&org), o(&report)),
            Refused(NoEscalation),
        ),
        (
            "a longer grace postpones suspensions: org-editor lacks Edit on ops",
            User("org-editor"),
            update(o(&org), o(&grace)),
            Refused(RequiredPrivileges),
        ),
        (
            "an administrator switches to Report",
            User("olivia"),
            update(o(&org), o(&report)),
            Admitted,
        ),
        (
            "a grace beyond 90 days is refused",
            Trusted,
            update(o(&org), o(&bad_grace)),
            Refused(CatalogValidity),
        ),
        (
            "switching Report to Suspend takes access away: no grant",
            User("org-editor"),
            update(o(&report), o(&org)),
            Admitted,
        ),
    ];
    run_in(s, cases, check);
}

/// A group's overdue instant moved later postpones the suspension of
/// whoever joins it later, unconfirmed (a trusted apply may invite them):
/// a grant of the group even when nobody is in it now. And a member holds
/// for good only what no overdue review will suspend: bob (unconfirmed in
/// `ops`'s last review) cannot grant what only `ops` gives him.
#[test]
fn postponing_an_empty_group_and_granting_from_an_unconfirmed_membership() {
    let mut s = state(WhenOverdue::Suspend);
    let mut empty = group(
        "empty",
        vec![privilege("Content", "Sources", AccessLevel::Edit)],
    );
    empty.review_every = Some("P30D".into());
    empty.created = Some(at("2026-01-01T00:00:00Z"));
    s.groups.insert(empty.name.clone(), Arc::new(empty.clone()));
    // bob also edits every group (through ops), and holds Groups Edit.
    let ops = Arc::make_mut(s.groups.get_mut("ops").unwrap());
    ops.privileges
        .extend(crate::rules::table::four_privileges());
    let org = s.org.clone().unwrap();
    let mut report = org.clone();
    report.access_reviews.when_overdue = WhenOverdue::Report;
    let o = |d: &crate::model::OrgDef| Def::Organization(d.clone());
    let longer = Def::Group(GroupDef {
        review_every: Some("P365D".into()),
        ..empty.clone()
    });
    let cases: Vec<Case> = vec![
        (
            "org-editor switches to Report: 'empty' has no members, but its later ones would not be suspended",
            User("org-editor"),
            update(o(&org), o(&report)),
            Refused(NoEscalation),
        ),
        (
            "gm lengthens the cadence of 'empty', which grants what gm lacks",
            User("gm"),
            update(Def::Group(empty.clone()), longer.clone()),
            Refused(NoEscalation),
        ),
        (
            "an administrator lengthens it",
            User("olivia"),
            update(Def::Group(empty), longer),
            Admitted,
        ),
        (
            "bob, unconfirmed in ops, invites viewer to a group only ops gives him the privileges of",
            User("bob"),
            update(
                Def::Member((*s.members["viewer"]).clone()),
                Def::Member(crate::model::MemberDef {
                    groups: vec!["viewers".into(), "ops".into()],
                    ..(*s.members["viewer"]).clone()
                }),
            ),
            Refused(NoEscalation),
        ),
        (
            "ann, confirmed in ops, invites viewer to it",
            User("ann"),
            update(
                Def::Member((*s.members["viewer"]).clone()),
                Def::Member(crate::model::MemberDef {
                    groups: vec!["viewers".into(), "ops".into()],
                    ..(*s.members["viewer"]).clone()
                }),
            ),
            Admitted,
        ),
    ];
    run_in(s, cases, check);
}

/// Report only: nothing is ever suspended, so no review, cadence or setting
/// grants anything (owners and Edit are still asked of a review).
#[test]
fn report_only_grants_nothing() {
    let s = state(WhenOverdue::Report);
    let longer = ops_with(&s, |g| g.review_every = None);
    let cases: Vec<Case> = vec![
        (
            "gm removes the cadence",
            User("gm"),
            update(longer.0, longer.1),
            Admitted,
        ),
        (
            "gm is still no owner",
            User("gm"),
            create(Def::AccessReview(review("r3", "ops", &["bob"], Some(NOW)))),
            Refused(ReviewedByOwner),
        ),
        (
            "lead records a review confirming nobody",
            User("lead"),
            create(Def::AccessReview(review("r3", "ops", &[], Some(NOW)))),
            Admitted,
        ),
    ];
    run_in(s, cases, check);
}
