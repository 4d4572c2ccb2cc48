//! The organization the rules' tables of cases judge in, and the one way they
//! judge: through [`check`], so every rule a real request meets runs, with the
//! requester mapped from the organization as the webhook maps it.
//!
//! The organization `acme` holds the built-in groups as the operator seeds
//! them, `group-managers` (a group manager's four privileges, Groups Edit
//! among them) and `viewers` (Organization View); `olivia` is in
//! Administrators, `gm` in group-managers, `viewer` in viewers,
//! `viewers-editor` in viewers-editors (Edit on the viewers group only, with
//! Activities and Organization View).

use super::{Change, Object, Operation, Requester, Rule, Violation, check};
use crate::builtin::BuiltinGroup;
use crate::catalog::Service;
use crate::effective::{Grantees, requester_view, resolve_grantees};
use crate::model::{
    AccessReviewDef, ApiKeyDef, GroupDef, MemberDef, MemberIdentity, OrgDef, OrgState, Provider,
    Subject, SubjectKind,
};
use crate::privilege::{AccessLevel, PrivilegeSpec, spec};
use std::sync::Arc;

/// A privilege spec by service name, domain and level.
pub fn privilege(service: &str, domain: &str, level: AccessLevel) -> PrivilegeSpec {
    spec(Service::parse(service).expect("a service"), domain, level)
}

/// The four privileges of a group manager.
pub fn four_privileges() -> Vec<PrivilegeSpec> {
    vec![
        privilege("Analytics", "ViewAllReports", AccessLevel::Allowed),
        privilege("Organization", "Activities", AccessLevel::View),
        privilege("Organization", "Groups", AccessLevel::Edit),
        privilege("Organization", "Organization", AccessLevel::View),
    ]
}

pub fn group(name: &str, privileges: Vec<PrivilegeSpec>) -> GroupDef {
    GroupDef {
        name: name.into(),
        display_name: Some(name.to_uppercase()),
        privileges,
        ..GroupDef::default()
    }
}

/// An accepted member, `user@example.com`, acting as Kubernetes user `user`.
pub fn member(user: &str, groups: &[&str]) -> MemberDef {
    MemberDef {
        name: user.into(),
        identity: MemberIdentity {
            provider: Provider::Email,
            username: format!("{user}@example.com"),
        },
        groups: groups.iter().map(|g| g.to_string()).collect(),
        subjects: vec![Subject {
            kind: SubjectKind::User,
            name: user.into(),
            namespace: None,
        }],
        accepted: true,
        ..MemberDef::default()
    }
}

/// The organization every table judges in.
pub fn org() -> OrgState {
    let mut s = OrgState {
        org: Some(OrgDef {
            name: "acme".into(),
            display_name: "Acme".into(),
            invitation_lifetime_days: 31,
            ..OrgDef::default()
        }),
        ..OrgState::default()
    };
    let groups = BuiltinGroup::ALL.into_iter().map(GroupDef::seeded).chain([
        group("group-managers", four_privileges()),
        group(
            "viewers",
            vec![privilege("Organization", "Organization", AccessLevel::View)],
        ),
        group(
            "viewers-editors",
            vec![
                PrivilegeSpec {
                    resources: vec![crate::privilege::ResourceAccess {
                        name: "viewers".into(),
                        level: crate::privilege::ResourceLevel::Edit,
                    }],
                    ..privilege("Organization", "Groups", AccessLevel::Custom)
                },
                privilege("Organization", "Activities", AccessLevel::View),
                privilege("Organization", "Organization", AccessLevel::View),
            ],
        ),
    ]);
    for g in groups {
        s.groups.insert(g.name.clone(), Arc::new(g));
    }
    for m in [
        member("olivia", &["administrators"]),
        member("gm", &["group-managers"]),
        member("viewer", &["viewers"]),
        member("viewers-editor", &["viewers-editors"]),
    ] {
        s.members.insert(m.name.clone(), Arc::new(m));
    }
    s
}

/// Who asks: a trusted principal, the operator, or a Kubernetes user mapped
/// (or not) to members of the organization.
#[derive(Clone, Copy, Debug)]
pub enum Who {
    Trusted,
    User(&'static str),
}

fn requester(state: &OrgState, who: Who) -> Requester {
    let Who::User(user) = who else {
        return Requester::Trusted;
    };
    let now = jiff::Timestamp::UNIX_EPOCH;
    let view = requester_view(state, &resolve_grantees(state), user, &[], now);
    if view.members.is_empty() {
        Requester::Unmapped { user: user.into() }
    } else {
        Requester::Members {
            user: user.into(),
            members: view.members,
            privileges: view.privileges,
        }
    }
}

/// An object of a case, owned.
#[derive(Clone, Debug)]
pub enum Def {
    Organization(OrgDef),
    Group(GroupDef),
    Member(MemberDef),
    ApiKey(ApiKeyDef),
    AccessReview(AccessReviewDef),
}

impl Def {
    fn object(&self) -> Object<'_> {
        match self {
            Def::Organization(d) => Object::Organization(d),
            Def::Group(d) => Object::Group(d),
            Def::Member(d) => Object::Member(d),
            Def::ApiKey(d) => Object::ApiKey(d),
            Def::AccessReview(d) => Object::AccessReview(d),
        }
    }

    fn name(&self) -> &str {
        match self {
            Def::Organization(d) => &d.name,
            Def::Group(d) => &d.name,
            Def::Member(d) => &d.name,
            Def::ApiKey(d) => &d.name,
            Def::AccessReview(d) => &d.name,
        }
    }
}

/// The change of a case: old and new as the request has them.
#[derive(Clone, Debug)]
pub struct Op {
    operation: Operation,
    old: Option<Def>,
    new: Option<Def>,
}

pub fn create(new: Def) -> Op {
    Op {
        operation: Operation::Create,
        old: None,
        new: Some(new),
    }
}

pub fn update(old: Def, new: Def) -> Op {
    Op {
        operation: Operation::Update,
        old: Some(old),
        new: Some(new),
    }
}

pub fn delete(old: Def) -> Op {
    Op {
        operation: Operation::Delete,
        old: Some(old),
        new: None,
    }
}

/// What a case expects: admitted, or refused with a reason of this rule.
#[derive(Clone, Copy, Debug)]
pub enum Verdict {
    Admitted,
    Refused(Rule),
}

/// `(what, who asks, the change, the verdict)`, judged in [`org`].
pub type Case = (&'static str, Who, Op, Verdict);

/// Judges every case in [`org`] with [`check`] and says which ones went otherwise.
pub fn run(cases: Vec<Case>) {
    run_with(cases, check);
}

/// [`run`], judged by `judge` instead (a rule [`check`] does not run).
pub fn run_with(
    cases: Vec<Case>,
    judge: fn(&OrgState, &Grantees, &Change, &Requester) -> Vec<Violation>,
) {
    run_in(org(), cases, judge);
}

/// [`run_with`], in `state` instead of [`org`].
pub fn run_in(
    state: OrgState,
    cases: Vec<Case>,
    judge: fn(&OrgState, &Grantees, &Change, &Requester) -> Vec<Violation>,
) {
    let grantees = resolve_grantees(&state);
    let mut wrong = Vec::new();
    for (what, who, op, verdict) in cases {
        let (old, new) = (op.old.as_ref(), op.new.as_ref());
        let change = Change {
            operation: op.operation,
            name: new.or(old).map(Def::name).unwrap_or_default(),
            old: old.map(Def::object),
            new: new.map(Def::object),
        };
        let found = judge(&state, &grantees, &change, &requester(&state, who));
        let as_expected = match verdict {
            Verdict::Admitted => found.is_empty(),
            Verdict::Refused(rule) => found.iter().any(|v| v.rule == rule),
        };
        if !as_expected {
            wrong.push(format!("{what}: expected {verdict:?}, got {found:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
