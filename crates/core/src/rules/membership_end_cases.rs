//! Table of cases for the ends of memberships (`spec.until`,
//! `spec.groupUntil`, docs/time-bound-membership.md): extending or removing
//! an end is a grant (NoEscalation), nobody extends their own membership,
//! shortening is an edit of the group and no grant, and an end must be
//! readable and name an invitation the member has (CatalogValidity).

use crate::model::{MemberDef, OrgState};
use crate::privilege::AccessLevel::View;
use crate::rules::Rule::{CatalogValidity, NoEscalation, RequiredPrivileges};
use crate::rules::check;
use crate::rules::table::{
    Def, Verdict::*, Who::*, create, group, member, org, privilege, run_in, update,
};
use std::sync::Arc;

const LATER: &str = "2031-01-01T00:00:00Z";
const SOON: &str = "2030-01-01T00:00:00Z";
const SOONER: &str = "2029-06-01T00:00:00Z";

/// `name` in `group`, its invitation ending at `until`.
fn ending(name: &str, group: &str, until: Option<&str>) -> MemberDef {
    let mut m = member(name, &[group]);
    if let Some(u) = until {
        m.group_until.insert(group.into(), u.into());
    }
    m
}

/// `name` in `group`, every membership ending at `until`.
fn ending_overall(name: &str, group: &str, until: Option<&str>) -> MemberDef {
    MemberDef {
        until: until.map(str::to_string),
        ..member(name, &[group])
    }
}

/// [`org`], with `temp` in group-managers until [`SOON`], `contractor` in
/// Administrators until [`SOON`], and `temp-viewer` in group-managers until
/// [`SOON`] and in viewers for good.
fn state() -> OrgState {
    let mut s = org();
    // temp-viewer: group-managers until SOON, viewers for good.
    let mut temp_viewer = ending("temp-viewer", "group-managers", Some(SOON));
    temp_viewer.groups.push("viewers".into());
    for m in [
        ending("temp", "group-managers", Some(SOON)),
        ending_overall("contractor", "administrators", Some(SOON)),
        temp_viewer,
    ] {
        s.members.insert(m.name.clone(), Arc::new(m));
    }
    s
}

#[test]
fn table() {
    let temp = |u: Option<&str>| Def::Member(ending("temp", "group-managers", u));
    let contractor =
        |u: Option<&str>| Def::Member(ending_overall("contractor", "administrators", u));
    run_in(
        state(),
        vec![
            (
                "a member cannot remove the end of their own membership, though they hold all the group grants",
                User("temp"),
                update(temp(Some(SOON)), temp(None)),
                Refused(NoEscalation),
            ),
            (
                "a member cannot move the end of their own membership later",
                User("temp"),
                update(temp(Some(SOON)), temp(Some(LATER))),
                Refused(NoEscalation),
            ),
            (
                "a member may end their own membership sooner: shortening grants nothing",
                User("temp"),
                update(temp(Some(SOON)), temp(Some(SOONER))),
                Admitted,
            ),
            (
                "someone else who holds everything the group grants may extend it",
                User("gm"),
                update(temp(Some(SOON)), temp(Some(LATER))),
                Admitted,
            ),
            (
                "extending a membership of Administrators needs everything Administrators holds",
                User("gm"),
                update(contractor(Some(SOON)), contractor(Some(LATER))),
                Refused(NoEscalation),
            ),
            (
                "removing the overall end is extending every membership",
                User("gm"),
                update(contractor(Some(SOON)), contractor(None)),
                Refused(NoEscalation),
            ),
            (
                "an administrator may extend a membership of Administrators",
                User("olivia"),
                update(contractor(Some(SOON)), contractor(Some(LATER))),
                Admitted,
            ),
            (
                "a duration counted from creation is compared as the instant it names",
                User("temp"),
                update(temp(Some("1970-01-31T00:00:00Z")), temp(Some("P31D"))),
                Refused(NoEscalation),
            ),
            (
                "an end is an edit of the group: Edit on viewers alone does not end group-managers",
                User("viewers-editor"),
                update(temp(Some(SOON)), temp(Some(SOONER))),
                Refused(RequiredPrivileges),
            ),
            (
                "an end that cannot be read is refused, to a trusted principal too",
                Trusted,
                create(Def::Member(ending("new", "viewers", Some("next week")))),
                Refused(CatalogValidity),
            ),
            (
                "a zero duration is refused",
                Trusted,
                create(Def::Member(ending_overall("new", "viewers", Some("P")))),
                Refused(CatalogValidity),
            ),
            (
                "an end for a group the member is not invited to is refused",
                Trusted,
                create(Def::Member(MemberDef {
                    group_until: [("administrators".to_string(), SOON.to_string())].into(),
                    ..member("new", &["viewers"])
                })),
                Refused(CatalogValidity),
            ),
            (
                "a member whose membership ends cannot keep it through a second Member of their own",
                User("temp"),
                create(Def::Member(member("temp-forever", &["group-managers"]))),
                Refused(NoEscalation),
            ),
            (
                "nor grant what it gives through a group (the grant would outlive it)",
                User("temp"),
                create(Def::Group(group(
                    "h",
                    vec![privilege("Organization", "Organization", View)],
                ))),
                Refused(NoEscalation),
            ),
            (
                "what they hold without an end they still grant",
                User("temp-viewer"),
                create(Def::Group(group(
                    "h",
                    vec![privilege("Organization", "Organization", View)],
                ))),
                Admitted,
            ),
            (
                "a trusted principal may extend anything",
                Trusted,
                update(contractor(Some(SOON)), contractor(None)),
                Admitted,
            ),
        ],
        check,
    );
}
