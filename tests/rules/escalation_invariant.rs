//! The escalation invariant (docs/security.md), checked over random
//! organizations and random changes:
//!
//! for any state S and any change C admitted for an untrusted requester R,
//! every principal P — each Member, each API key, and each Kubernetes identity
//! through the Members that list it — holds after C at most what it held
//! before plus what R holds:
//!
//! ```text
//! effective(P, S + C) ⊆ effective(P, S) ∪ effective(R, S)
//! ```
//!
//! The oracle here is deliberately naive: it recomputes every principal's
//! effective privileges before and after from scratch, with the same
//! `effective` functions status reports, and never looks at which rule fired.
//! Cases run: `ORGACCESS_INVARIANT_CASES` (default 100,000 in the release
//! profile, 2,000 in debug: `cargo test --release --test rules escalation_invariant::`).

use crate::generators;
use std::sync::Arc;

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use orgaccess::core::bindings::Asserted;
use orgaccess::core::builtin::{ApiKeyTemplate, BuiltinGroup, GroupTemplate};
use orgaccess::core::catalog::{CATALOG, Service};
use orgaccess::core::effective::{member_effective, requester_view, resolve_grantees};
use orgaccess::core::model::{
    AccessEntry, AccessReviewDef, AccessReviewsSpec, ApiKeyDef, GroupDef, IdentitySet, MemberDef,
    MemberIdentity, Meta, OpenIdDomain, OrgDef, OrgResources, OrgState, Provider, Subject,
    SubjectKind, WhenOverdue,
};
use orgaccess::core::privilege::{AccessLevel, PrivilegeSet, PrivilegeSpec, spec};
use orgaccess::core::rules::{self, Change, Object, Operation, Requester};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const GROUPS: [&str; 5] = ["administrators", "g1", "g2", "g3", "g4"];
const MEMBERS: [&str; 4] = ["m0", "m1", "m2", "m3"];
const KEYS: [&str; 3] = ["k0", "k1", "k2"];
/// AccessReview names.
const REVIEWS: [&str; 3] = ["r0", "r1", "r2"];
/// Names Custom grants may use: groups, keys, a declared and an undeclared source.
const RESOURCES: [&str; 6] = ["g1", "g2", "administrators", "k0", "src-a", "src-b"];
const SSO: [&str; 2] = ["sso-admins", "sso-dev"];
const PROFILES: [&str; 2] = ["sf-admin", "sf-user"];
const USERNAMES: [&str; 4] = [
    "x@corp.example",
    "y@other.example",
    "nameid",
    "z@corp.example",
];
const PROVIDERS: [Provider; 7] = [
    Provider::Email,
    Provider::Google,
    Provider::Microsoft,
    Provider::Salesforce,
    Provider::SalesforceSandbox,
    Provider::SingleSignOn,
    Provider::AnyListed,
];

/// The Kubernetes identities whose privileges are watched: name and groups,
/// as the apiserver would authenticate them.
fn identities() -> Vec<(&'static str, Vec<String>)> {
    let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        ("alice", g(&["team-a", "system:authenticated"])),
        ("bob", g(&["team-b", "system:authenticated"])),
        ("mallory", g(&["team-a", "system:authenticated"])),
        ("eve", g(&["system:authenticated"])),
        (
            "system:serviceaccount:acme:bot",
            g(&[
                "system:serviceaccounts",
                "system:serviceaccounts:acme",
                "system:authenticated",
            ]),
        ),
    ]
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/// Domains the generator draws from: the ones that govern access (groups,
/// API keys, organization, activities) and a handful of others.
fn domain_indices() -> Vec<usize> {
    let mut out: Vec<usize> = CATALOG
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            matches!(
                d.name,
                "Groups" | "ApiKeys" | "Organization" | "Activities" | "Sources"
            )
        })
        .map(|(i, _)| i)
        .collect();
    out.extend([0, 7, 13, 21]);
    out.retain(|i| *i < CATALOG.len());
    out.sort();
    out.dedup();
    out
}

fn arb_privileges() -> impl Strategy<Value = Vec<PrivilegeSpec>> {
    generators::privileges(domain_indices(), &RESOURCES, 4)
}

/// Access lists without two entries for the same grantee.
fn arb_access() -> impl Strategy<Value = Vec<AccessEntry>> {
    generators::access_list(&GROUPS, &KEYS).prop_map(|v| {
        let mut seen = BTreeSet::new();
        v.into_iter()
            .filter(|e| seen.insert((e.group.clone(), e.api_key.clone())))
            .collect()
    })
}

fn arb_identity_sets() -> impl Strategy<Value = Vec<IdentitySet>> {
    let set = (0..3usize, 0..7usize, any::<bool>()).prop_map(|(kind, p, b)| match kind {
        0 => IdentitySet {
            open_id_domain: Some(OpenIdDomain {
                provider: [Provider::Google, Provider::Microsoft, Provider::Salesforce][p % 3],
                domain: if b { "corp.example" } else { "other.example" }.into(),
            }),
            sso_group: None,
            salesforce_profile: None,
        },
        1 => IdentitySet {
            open_id_domain: None,
            sso_group: Some(SSO[usize::from(b)].into()),
            salesforce_profile: None,
        },
        _ => IdentitySet {
            open_id_domain: None,
            sso_group: None,
            salesforce_profile: Some(PROFILES[usize::from(b)].into()),
        },
    });
    prop::collection::vec(set, 0..2)
}

fn arb_group_template() -> impl Strategy<Value = Option<GroupTemplate>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(GroupTemplate::FullAccess)),
        1 => Just(Some(GroupTemplate::AnalyticsViewers)),
        1 => Just(Some(GroupTemplate::ContentManagers)),
        1 => Just(Some(GroupTemplate::Users)),
    ]
}

/// Managers: Edit on Groups and Can Create on API keys, domain-wide, so the
/// generated requesters reach the interesting rules often.
fn manager_privileges() -> Vec<PrivilegeSpec> {
    let mut keys = spec(Service::Organization, "ApiKeys", AccessLevel::View);
    keys.can_create = Some(true);
    vec![
        spec(Service::Organization, "Groups", AccessLevel::Edit),
        keys,
    ]
}

fn arb_group(name: &'static str) -> BoxedStrategy<GroupDef> {
    (
        arb_group_template(),
        arb_privileges(),
        arb_access(),
        arb_identity_sets(),
        prop::bool::weighted(0.5),
        arb_review_settings(),
    )
        .prop_map(
            move |(
                template,
                mut privileges,
                access,
                identity_sets,
                manager,
                (every, owners, age),
            )| {
                if manager {
                    for extra in manager_privileges() {
                        privileges.retain(|p| p.domain != extra.domain);
                        privileges.push(extra);
                    }
                }
                let admins = name == "administrators";
                GroupDef {
                    name: name.into(),
                    display_name: None,
                    builtin: admins.then_some(BuiltinGroup::Administrators),
                    template: if admins {
                        Some(GroupTemplate::Administrators)
                    } else {
                        template
                    },
                    privileges: if admins { vec![] } else { privileges },
                    access,
                    identity_sets,
                    duplicate_of: None,
                    owners,
                    review_every: every,
                    created: Some(now() - SignedDuration::from_hours(24 * age)),
                    ..GroupDef::default()
                }
            },
        )
        .boxed()
}

/// A group's review settings: a cadence (none half the time), owners among
/// the members, and its age in days (its first review is due a cadence
/// after its creation: [`instants`] straddle the due dates).
fn arb_review_settings() -> impl Strategy<Value = (Option<String>, Vec<String>, i64)> {
    (
        prop_oneof![
            2 => Just(None),
            1 => Just(Some("P10D".to_string())),
            1 => Just(Some("P30D".to_string())),
        ],
        prop::collection::btree_set(prop::sample::select(MEMBERS.to_vec()), 0..3),
        prop_oneof![Just(25i64), Just(5)],
    )
        .prop_map(|(every, owners, age)| {
            (every, owners.into_iter().map(String::from).collect(), age)
        })
}

/// What an overdue review does: report, suspend, suspend after a grace.
fn arb_review_spec() -> impl Strategy<Value = AccessReviewsSpec> {
    prop_oneof![
        2 => Just(AccessReviewsSpec::default()),
        1 => Just(AccessReviewsSpec {
            when_overdue: WhenOverdue::Suspend,
            grace_period: None,
        }),
        1 => Just(AccessReviewsSpec {
            when_overdue: WhenOverdue::Suspend,
            grace_period: Some("P5D".into()),
        }),
    ]
}

/// An access review of a group, confirming some members, recorded `age`
/// days ago (`None`: now, as a create is).
fn arb_review(name: &'static str) -> impl Strategy<Value = AccessReviewDef> {
    (
        0..GROUPS.len(),
        prop::collection::btree_set(prop::sample::select(MEMBERS.to_vec()), 0..4),
        prop_oneof![Just(20i64), Just(3)],
    )
        .prop_map(move |(g, confirmed, age)| AccessReviewDef {
            name: name.into(),
            group: GROUPS[g].into(),
            confirmed: confirmed.into_iter().map(String::from).collect(),
            note: None,
            created: Some(now() - SignedDuration::from_hours(24 * age)),
            meta: Meta::default(),
        })
}

fn arb_subjects() -> impl Strategy<Value = Vec<Subject>> {
    let subject = (0..10usize).prop_map(|i| {
        let (kind, name, namespace) = match i {
            0 => (SubjectKind::User, "alice", None),
            1 => (SubjectKind::User, "bob", None),
            2 => (SubjectKind::User, "mallory", None),
            3 => (SubjectKind::User, "eve", None),
            4 => (SubjectKind::Group, "team-a", None),
            5 => (SubjectKind::Group, "team-b", None),
            6 => (SubjectKind::Group, "system:authenticated", None),
            7 => (SubjectKind::Group, "system:serviceaccounts", None),
            8 => (SubjectKind::ServiceAccount, "bot", Some("acme")),
            _ => (SubjectKind::User, "system:serviceaccount:acme:bot", None),
        };
        Subject {
            kind,
            name: name.into(),
            namespace: namespace.map(Into::into),
        }
    });
    prop::collection::vec(subject, 0..3).prop_map(|mut v| {
        v.dedup();
        v
    })
}

fn arb_member(name: &'static str) -> impl Strategy<Value = MemberDef> {
    (
        (0..PROVIDERS.len(), 0..USERNAMES.len()),
        prop::collection::btree_set(prop::sample::select(GROUPS.to_vec()), 0..3),
        arb_subjects(),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some(0i64)), Just(Some(40))],
        prop_oneof![
            2 => Just(BTreeSet::new()),
            1 => prop::collection::btree_set(prop::sample::select(SSO.to_vec()), 1..2),
        ],
        prop::option::weighted(0.3, prop::sample::select(PROFILES.to_vec())),
        prop::bool::weighted(0.1),
        // Ends, by index ([`end`]): the overall one, then one per invitation.
        prop::collection::vec(0..END_CHOICES, 4),
    )
        .prop_map(
            move |((p, u), groups, subjects, accepted, age, sso, profile, deleting, ends)| {
                MemberDef {
                    // An end for some of its invitations (time-bound membership).
                    group_until: groups
                        .iter()
                        .zip(&ends[1..])
                        .filter_map(|(g, e)| Some((g.to_string(), end(*e)?)))
                        .collect(),
                    until: end(ends[0]),
                    name: name.into(),
                    identity: MemberIdentity {
                        provider: PROVIDERS[p],
                        username: USERNAMES[u].into(),
                    },
                    groups: groups.into_iter().map(String::from).collect(),
                    subjects,
                    accepted,
                    invited_at: age.map(|days| now() - SignedDuration::from_hours(24 * days)),
                    sso_groups: sso.into_iter().map(String::from).collect(),
                    salesforce_profile: profile.map(String::from),
                    meta: Meta {
                        deleting,
                        ..Meta::default()
                    },
                }
            },
        )
}

/// Ends a generator draws from: none (four in five), passed, soon, later,
/// or a duration from the Member's creation ([`instants`] straddle them).
const END_CHOICES: usize = 20;

fn end(i: usize) -> Option<String> {
    let at = |days: i64| (now() + SignedDuration::from_hours(24 * days)).to_string();
    match i {
        0 => Some(at(-1)),
        1 => Some(at(5)),
        2 => Some(at(20)),
        3 => Some("P10D".to_string()),
        _ => None,
    }
}

/// The instants principals are compared at: now, and after some ends (an
/// extended end grants at the later instants only).
fn instants() -> [Timestamp; 3] {
    let later = |days: i64| now() + SignedDuration::from_hours(24 * days);
    [now(), later(8), later(30)]
}

fn arb_key(name: &'static str) -> impl Strategy<Value = ApiKeyDef> {
    (
        prop_oneof![
            3 => Just(None),
            1 => Just(Some(ApiKeyTemplate::AnonymousSearch)),
            1 => Just(Some(ApiKeyTemplate::Custom)),
        ],
        arb_privileges(),
        arb_access(),
        prop::bool::weighted(0.8),
    )
        .prop_map(move |(template, privileges, access, enabled)| ApiKeyDef {
            name: name.into(),
            display_name: Some(name.into()),
            template,
            privileges,
            access,
            enabled,
            lifetime: None,
            ..ApiKeyDef::default()
        })
}

fn arb_org() -> impl Strategy<Value = Option<OrgDef>> {
    prop_oneof![
        1 => Just(None),
        6 => arb_review_spec().prop_map(|access_reviews| Some(OrgDef {
            access_reviews,
            ..org(31)
        })),
    ]
}

fn org(days: u32) -> OrgDef {
    OrgDef {
        name: "acme".into(),
        display_name: "Acme".into(),
        resources: OrgResources {
            sources: vec!["src-a".into()],
            ..OrgResources::default()
        },
        invitation_lifetime_days: days,
        advice: Default::default(),
        access_reviews: Default::default(),
        meta: Meta::default(),
    }
}

pub(crate) fn arb_state() -> BoxedStrategy<OrgState> {
    let groups = GROUPS.map(|n| prop::option::weighted(0.7, arb_group(n)));
    let members =
        MEMBERS.map(|n| prop::option::weighted(if n == "m0" { 0.95 } else { 0.7 }, arb_member(n)));
    let keys = KEYS.map(|n| prop::option::weighted(0.6, arb_key(n)));
    let reviews = REVIEWS.map(|n| prop::option::weighted(0.4, arb_review(n)));
    (arb_org(), groups, members, keys, reviews)
        .prop_map(|(org, groups, members, keys, reviews)| {
            let mut s = OrgState {
                org,
                ..OrgState::default()
            };
            for g in groups.into_iter().flatten() {
                s.groups.insert(g.name.clone(), Arc::new(g));
            }
            for mut m in members.into_iter().flatten() {
                if m.name == "m0" {
                    // The usual requester: alice, accepted, in some groups.
                    m.subjects = vec![Subject {
                        kind: SubjectKind::User,
                        name: "alice".into(),
                        namespace: None,
                    }];
                    m.accepted = true;
                    m.groups.retain(|g| g != "administrators");
                    if m.groups.is_empty() {
                        m.groups.push("g2".into());
                    }
                }
                s.members.insert(m.name.clone(), Arc::new(m));
            }
            for k in keys.into_iter().flatten() {
                s.api_keys.insert(k.name.clone(), Arc::new(k));
            }
            for r in reviews.into_iter().flatten() {
                s.reviews.insert(r.name.clone(), Arc::new(r));
            }
            s
        })
        .boxed()
}

/// A new version of an object of each kind (for creates and updates), and
/// choices for how to mix it with the old one.
#[derive(Clone, Debug)]
struct Fresh {
    group: GroupDef,
    member: MemberDef,
    key: ApiKeyDef,
    review: AccessReviewDef,
    org_days: u32,
    org_reviews: AccessReviewsSpec,
    /// Which fields of the old object the update keeps (bit per field).
    keep: u8,
    meta: Meta,
}

fn arb_fresh() -> BoxedStrategy<Fresh> {
    (
        arb_group("g1"),
        arb_member("m0"),
        arb_key("k0"),
        (
            arb_review("r0"),
            prop_oneof![Just(31u32), Just(1), Just(400)],
            arb_review_spec(),
        ),
        prop_oneof![
            3 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| a | b),
            1 => Just(0xffu8),
        ],
        (
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.1),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                group,
                member,
                key,
                (review, org_days, org_reviews),
                keep,
                (owner, finalizer, deleting),
            )| Fresh {
                group,
                member,
                key,
                review,
                org_days,
                org_reviews,
                keep,
                meta: Meta {
                    owner_references: if owner {
                        vec!["ConfigMap/gone".into()]
                    } else {
                        vec![]
                    },
                    finalizers: if finalizer {
                        vec!["example.com/keep".into()]
                    } else {
                        vec![]
                    },
                    deleting,
                    ..Meta::default()
                },
            },
        )
        .boxed()
}

#[derive(Clone, Debug)]
enum Kind {
    Organization,
    Group,
    Member,
    ApiKey,
    AccessReview,
}

#[derive(Clone, Debug)]
struct Plan {
    kind: Kind,
    operation: Operation,
    /// Index into the kind's name pool.
    target: usize,
    fresh: Fresh,
    /// For a group create: duplicate the group at this index.
    duplicate: Option<usize>,
    /// Which identity makes the request.
    requester: usize,
}

fn arb_plan() -> impl Strategy<Value = Plan> {
    (
        prop_oneof![
            1 => Just(Kind::Organization),
            3 => Just(Kind::Group),
            4 => Just(Kind::Member),
            2 => Just(Kind::ApiKey),
            2 => Just(Kind::AccessReview),
        ],
        prop_oneof![
            2 => Just(Operation::Create),
            4 => Just(Operation::Update),
            1 => Just(Operation::Delete),
        ],
        0..8usize,
        arb_fresh(),
        prop::option::weighted(0.2, 0..GROUPS.len()),
        prop_oneof![3 => Just(0usize), 2 => 0..identities().len()],
    )
        .prop_map(
            |(kind, operation, target, fresh, duplicate, requester)| Plan {
                kind,
                operation,
                target,
                fresh,
                duplicate,
                requester,
            },
        )
}

// ---------------------------------------------------------------------------
// Applying a plan
// ---------------------------------------------------------------------------

/// Old and new versions of the changed object, or None when the plan does not
/// fit the state (an update of an object that does not exist, ...).
enum Versions {
    Organization(Option<OrgDef>, Option<OrgDef>),
    Group(Option<GroupDef>, Option<GroupDef>),
    Member(Option<MemberDef>, Option<MemberDef>),
    ApiKey(Option<ApiKeyDef>, Option<ApiKeyDef>),
    AccessReview(Option<AccessReviewDef>, Option<AccessReviewDef>),
}

fn pick<T: Clone>(keep: bool, old: &T, new: &T) -> T {
    if keep { old.clone() } else { new.clone() }
}

fn versions(s: &OrgState, p: &Plan) -> Option<(String, Versions)> {
    let k = p.fresh.keep;
    let bit = |i: u8| k & (1 << i) != 0;
    let meta_only = k == 0xff;
    match p.kind {
        Kind::Organization => {
            let old = s.org.clone();
            let mut new = org(p.fresh.org_days);
            new.access_reviews = p.fresh.org_reviews.clone();
            new.meta = p.fresh.meta.clone();
            match (p.operation, old) {
                (Operation::Create, None) => {
                    Some(("acme".into(), Versions::Organization(None, Some(new))))
                }
                (Operation::Update, Some(o)) => {
                    if meta_only {
                        new = OrgDef {
                            meta: p.fresh.meta.clone(),
                            ..o.clone()
                        };
                    }
                    Some((o.name.clone(), Versions::Organization(Some(o), Some(new))))
                }
                (Operation::Delete, Some(o)) => {
                    Some((o.name.clone(), Versions::Organization(Some(o), None)))
                }
                _ => None,
            }
        }
        Kind::Group => {
            let name = GROUPS[p.target % GROUPS.len()];
            let old = s.groups.get(name).map(|d| (**d).clone());
            let mut new = p.fresh.group.clone();
            new.name = name.into();
            new.meta = p.fresh.meta.clone();
            match (p.operation, old) {
                (Operation::Create, None) => {
                    if let Some(src) = p
                        .duplicate
                        .map(|i| GROUPS[i])
                        .filter(|n| s.groups.contains_key(*n))
                    {
                        let source = &s.groups[src];
                        new.template = source
                            .template
                            .filter(|t| *t != GroupTemplate::Administrators)
                            .or(source.builtin.map(|_| GroupTemplate::FullAccess));
                        new.privileges = source.privileges.clone();
                        new.duplicate_of = Some(src.into());
                    }
                    new.builtin = None;
                    new.created = Some(now());
                    if new.template == Some(GroupTemplate::Administrators) {
                        new.template = Some(GroupTemplate::FullAccess);
                    }
                    Some((name.into(), Versions::Group(None, Some(new))))
                }
                (Operation::Update, Some(o)) => {
                    let new = if meta_only {
                        GroupDef {
                            meta: p.fresh.meta.clone(),
                            ..o.clone()
                        }
                    } else {
                        GroupDef {
                            name: name.into(),
                            display_name: o.display_name.clone(),
                            builtin: o.builtin,
                            template: pick(bit(0), &o.template, &new.template),
                            privileges: pick(bit(1), &o.privileges, &new.privileges),
                            access: pick(bit(2), &o.access, &new.access),
                            identity_sets: pick(bit(3), &o.identity_sets, &new.identity_sets),
                            duplicate_of: o.duplicate_of.clone(),
                            meta: pick(bit(4), &o.meta, &new.meta),
                            owners: pick(bit(5), &o.owners, &new.owners),
                            review_every: pick(bit(6), &o.review_every, &new.review_every),
                            created: o.created,
                        }
                    };
                    Some((name.into(), Versions::Group(Some(o), Some(new))))
                }
                (Operation::Delete, Some(o)) => Some((name.into(), Versions::Group(Some(o), None))),
                _ => None,
            }
        }
        Kind::Member => {
            let name = MEMBERS[p.target % MEMBERS.len()];
            let old = s.members.get(name).map(|d| (**d).clone());
            let mut new = p.fresh.member.clone();
            new.name = name.into();
            new.meta = p.fresh.meta.clone();
            match (p.operation, old) {
                (Operation::Create, None) => {
                    new.invited_at = None;
                    new.meta.deleting = false;
                    Some((name.into(), Versions::Member(None, Some(new))))
                }
                (Operation::Update, Some(o)) => {
                    let new = if meta_only {
                        MemberDef {
                            meta: p.fresh.meta.clone(),
                            ..o.clone()
                        }
                    } else {
                        MemberDef {
                            name: name.into(),
                            identity: pick(bit(0), &o.identity, &new.identity),
                            groups: pick(bit(1), &o.groups, &new.groups),
                            subjects: pick(bit(2), &o.subjects, &new.subjects),
                            accepted: pick(bit(3), &o.accepted, &new.accepted),
                            invited_at: o.invited_at,
                            sso_groups: pick(bit(4), &o.sso_groups, &new.sso_groups),
                            salesforce_profile: pick(
                                bit(5),
                                &o.salesforce_profile,
                                &new.salesforce_profile,
                            ),
                            meta: pick(bit(6), &o.meta, &new.meta),
                            until: pick(bit(7), &o.until, &new.until),
                            // Ends of the invitations it keeps: the old
                            // ones or the new, moved either way.
                            group_until: pick(bit(7) == bit(1), &o.group_until, &new.group_until),
                        }
                    };
                    let mut new = new;
                    let groups = new.groups.clone();
                    new.group_until.retain(|g, _| groups.contains(g));
                    Some((name.into(), Versions::Member(Some(o), Some(new))))
                }
                (Operation::Delete, Some(o)) => {
                    Some((name.into(), Versions::Member(Some(o), None)))
                }
                _ => None,
            }
        }
        Kind::ApiKey => {
            let name = KEYS[p.target % KEYS.len()];
            let old = s.api_keys.get(name).map(|d| (**d).clone());
            let mut new = p.fresh.key.clone();
            new.name = name.into();
            new.meta = p.fresh.meta.clone();
            match (p.operation, old) {
                (Operation::Create, None) => Some((name.into(), Versions::ApiKey(None, Some(new)))),
                (Operation::Update, Some(o)) => {
                    let new = if meta_only {
                        ApiKeyDef {
                            meta: p.fresh.meta.clone(),
                            ..o.clone()
                        }
                    } else {
                        ApiKeyDef {
                            template: pick(bit(0), &o.template, &new.template),
                            privileges: pick(bit(1), &o.privileges, &new.privileges),
                            access: pick(bit(2), &o.access, &new.access),
                            enabled: pick(bit(3), &o.enabled, &new.enabled),
                            meta: pick(bit(4), &o.meta, &new.meta),
                            ..o.clone()
                        }
                    };
                    Some((name.into(), Versions::ApiKey(Some(o), Some(new))))
                }
                (Operation::Delete, Some(o)) => {
                    Some((name.into(), Versions::ApiKey(Some(o), None)))
                }
                _ => None,
            }
        }
        Kind::AccessReview => {
            let name = REVIEWS[p.target % REVIEWS.len()];
            let old = s.reviews.get(name).map(|d| (**d).clone());
            let mut new = p.fresh.review.clone();
            new.name = name.into();
            new.meta = p.fresh.meta.clone();
            match (p.operation, old) {
                (Operation::Create, None) => {
                    // The apiserver sets the creation: now.
                    new.created = Some(now());
                    new.meta.deleting = false;
                    Some((name.into(), Versions::AccessReview(None, Some(new))))
                }
                (Operation::Update, Some(o)) => {
                    let new = if meta_only {
                        AccessReviewDef {
                            meta: p.fresh.meta.clone(),
                            ..o.clone()
                        }
                    } else {
                        AccessReviewDef {
                            confirmed: pick(bit(0), &o.confirmed, &new.confirmed),
                            group: pick(bit(1), &o.group, &new.group),
                            meta: pick(bit(4), &o.meta, &new.meta),
                            ..o.clone()
                        }
                    };
                    Some((name.into(), Versions::AccessReview(Some(o), Some(new))))
                }
                (Operation::Delete, Some(o)) => {
                    Some((name.into(), Versions::AccessReview(Some(o), None)))
                }
                _ => None,
            }
        }
    }
}

/// The apiserver owns deletionTimestamp: a create never has one, and an
/// update keeps the stored one.
fn settle_deletion(v: &mut Versions) {
    fn keep(old: Option<&Meta>, new: Option<&mut Meta>) {
        if let Some(new) = new {
            new.deleting = old.is_some_and(|o| o.deleting);
        }
    }
    match v {
        Versions::Organization(o, n) => {
            keep(o.as_ref().map(|x| &x.meta), n.as_mut().map(|x| &mut x.meta))
        }
        Versions::Group(o, n) => keep(o.as_ref().map(|x| &x.meta), n.as_mut().map(|x| &mut x.meta)),
        Versions::Member(o, n) => {
            keep(o.as_ref().map(|x| &x.meta), n.as_mut().map(|x| &mut x.meta))
        }
        Versions::ApiKey(o, n) => {
            keep(o.as_ref().map(|x| &x.meta), n.as_mut().map(|x| &mut x.meta))
        }
        Versions::AccessReview(o, n) => {
            keep(o.as_ref().map(|x| &x.meta), n.as_mut().map(|x| &mut x.meta))
        }
    }
}

/// The state after the change is stored.
fn apply(s: &OrgState, name: &str, v: &Versions) -> OrgState {
    let mut after = s.clone();
    match v {
        Versions::Organization(_, new) => after.org = new.clone(),
        Versions::Group(_, new) => match new {
            Some(g) => drop(after.groups.insert(name.into(), Arc::new(g.clone()))),
            None => drop(after.groups.remove(name)),
        },
        Versions::Member(_, new) => match new {
            Some(m) => drop(after.members.insert(name.into(), Arc::new(m.clone()))),
            None => drop(after.members.remove(name)),
        },
        Versions::ApiKey(_, new) => match new {
            Some(k) => drop(after.api_keys.insert(name.into(), Arc::new(k.clone()))),
            None => drop(after.api_keys.remove(name)),
        },
        Versions::AccessReview(_, new) => match new {
            Some(r) => drop(after.reviews.insert(name.into(), Arc::new(r.clone()))),
            None => drop(after.reviews.remove(name)),
        },
    }
    after
}

// ---------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------

/// Every principal's effective privileges in a state, by a label.
/// Members and identities at each of [`instants`].
fn principals(s: &OrgState) -> Vec<(String, PrivilegeSet)> {
    let grantees = resolve_grantees(s);
    let mut out = Vec::new();
    for at in instants() {
        for m in MEMBERS {
            let set = s
                .members
                .get(m)
                .map(|def| member_effective(s, &grantees, def, at).privileges)
                .unwrap_or_default();
            out.push((format!("member {m} at {at}"), set));
        }
        for (user, groups) in identities() {
            out.push((
                format!("identity {user} at {at}"),
                requester_view(s, &grantees, user, &groups, at).privileges,
            ));
        }
    }
    for k in KEYS {
        out.push((
            format!("api key {k}"),
            grantees.api_keys.get(k).cloned().unwrap_or_default(),
        ));
    }
    out
}

/// The identity a plan names, mapped in the state as admission maps it:
/// its name, view and requester; `None` when it maps to no Member.
fn tenant_of(
    state: &OrgState,
    grantees: &orgaccess::core::effective::Grantees,
    plan: &Plan,
) -> Option<(
    &'static str,
    orgaccess::core::effective::RequesterView,
    Requester,
)> {
    let (user, groups) = identities().swap_remove(plan.requester);
    let view = requester_view(state, grantees, user, &groups, now());
    if view.members.is_empty() {
        return None;
    }
    let requester = Requester::Members {
        user: user.into(),
        members: view.members.clone(),
        privileges: view.privileges.clone(),
    };
    Some((user, view, requester))
}

/// One case: Ok(true) when the change was admitted (and the invariant held).
fn one_case(state: &OrgState, plan: &Plan) -> Result<bool, TestCaseError> {
    let Some((name, mut v)) = versions(state, plan) else {
        return Ok(false);
    };
    settle_deletion(&mut v);
    let grantees = resolve_grantees(state);
    let Some((user, view, requester)) = tenant_of(state, &grantees, plan) else {
        return Ok(false);
    };
    let change = change_of(plan.operation, &name, &v);
    let violations = rules::check(state, &grantees, &change, &requester);
    if std::env::var("INVARIANT_DEBUG").is_ok() {
        let rules: BTreeSet<_> = violations
            .iter()
            .map(|v| format!("{:?}/{}", v.rule, v.field))
            .collect();
        eprintln!("DBG {:?} {:?} {:?}", plan.kind, plan.operation, rules);
    }
    if !violations.is_empty() {
        return Ok(false);
    }
    let after = apply(state, &name, &v);
    for ((who, before), (_, now_holds)) in principals(state).into_iter().zip(principals(&after)) {
        let allowed = before.merge(&view.privileges);
        prop_assert!(
            allowed.covers(&now_holds),
            "{who} gained {} through an admitted {:?} of {:?} '{name}' by {user} (members {:?})",
            allowed.missing(&now_holds),
            plan.operation,
            plan.kind,
            view.members,
        );
    }
    Ok(true)
}

fn cases() -> u32 {
    std::env::var("ORGACCESS_INVARIANT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            2_000
        } else {
            100_000
        })
}

#[test]
fn no_admitted_change_escalates_any_principal() {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let admitted = std::cell::Cell::new(0u32);
    let result = runner.run(&(arb_state(), arb_plan()), |(state, plan)| {
        if one_case(&state, &plan)? {
            admitted.set(admitted.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generator must reach admitted changes, or the property says nothing.
    // It admits about 5% (98-102 of 2,000 in four runs with membership ends,
    // access reviews and Suspend drawn: an unconfirmed membership under
    // Suspend grants nothing, so fewer changes pass); the floor, 3%, sits
    // four standard deviations below that, so a random seed does not fail it
    // while a generator that stops reaching admitted changes does.
    let ratio = f64::from(admitted.get()) / f64::from(cases());
    eprintln!(
        "escalation invariant: {} cases, {} admitted",
        cases(),
        admitted.get()
    );
    assert!(
        ratio > 0.03,
        "only {} of {} cases were admitted",
        admitted.get(),
        cases()
    );
}

/// A group's members (its status) and its members' own memberships (their
/// status and the requester mapping) are one fact: they agree on any state.
#[test]
fn group_members_agree_with_member_memberships() {
    use orgaccess::core::effective::group_members;
    let mut runner = TestRunner::new(Config {
        cases: 500,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&arb_state(), |state| {
        let grantees = resolve_grantees(&state);
        for (g, at) in GROUPS.iter().flat_map(|g| instants().map(|at| (*g, at))) {
            let (active, inactive) = group_members(
                &state,
                &grantees,
                state.members.values().map(Arc::as_ref),
                g,
                at,
            );
            for m in state.members.values() {
                let ms = member_effective(&state, &grantees, m, at)
                    .memberships
                    .into_iter()
                    .find(|ms| ms.group == g);
                prop_assert_eq!(
                    ms.as_ref().is_some_and(|ms| ms.active),
                    active.contains(&m.name)
                );
                prop_assert_eq!(ms.is_some_and(|ms| !ms.active), inactive.contains(&m.name));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------
// Over two steps: a tenant's change C, then a trusted apply T
// ---------------------------------------------------------------------------
//
// For every state S, every change C by an untrusted requester R admitted in S,
// and every later change T by a trusted principal admitted in S + C:
//
//     effective(P, S+C+T) ⊆ effective(P, S+T) ∪ effective(R, S)
//
// T is written as GitOps writes: an apply of a manifest that names only some
// fields (client-side and server-side apply both keep the fields it does not
// name, annotations included), a create from a manifest, or a delete. Both C
// and T carry the record of who set each binding that admission's mutating
// half writes (`bindings_after`), and S has records of bindings set earlier
// by another tenant. An API key counts only while it is enabled.

const UNTRUSTED_SETTER: &str = "bob";

/// Records in S: bindings some other tenant set earlier, one bit each.
fn with_records(mut s: OrgState, bits: u64) -> OrgState {
    let mut bit = 0u32;
    let mut next = || {
        bit = (bit + 1) % 64;
        bits & (1 << bit) != 0 && bits & (1 << ((bit + 17) % 64)) != 0
    };
    for m in s.members.values_mut() {
        let m = Arc::make_mut(m);
        let mut keys = vec!["subjects".to_string(), "identity".into(), "accepted".into()];
        keys.extend(m.groups.iter().map(|g| format!("groups/{g}")));
        for k in keys {
            let granting = match k.as_str() {
                "subjects" => !m.subjects.is_empty(),
                "accepted" => m.accepted,
                _ => true,
            };
            if granting && next() {
                m.meta.bound_by.insert(k, UNTRUSTED_SETTER.into());
            }
        }
    }
    for g in s.groups.values_mut() {
        let g = Arc::make_mut(g);
        if !g.identity_sets.is_empty() && next() {
            g.meta
                .bound_by
                .insert("identitySets".into(), UNTRUSTED_SETTER.into());
        }
        for grant in ["privileges", "template", "access"] {
            if next() {
                g.meta
                    .bound_by
                    .insert(grant.into(), UNTRUSTED_SETTER.into());
            }
        }
    }
    for k in s.api_keys.values_mut() {
        let k = Arc::make_mut(k);
        if k.enabled && next() {
            k.meta
                .bound_by
                .insert("enabled".into(), UNTRUSTED_SETTER.into());
        }
        for grant in ["privileges", "template", "access"] {
            if next() {
                k.meta
                    .bound_by
                    .insert(grant.into(), UNTRUSTED_SETTER.into());
            }
        }
    }
    s
}

/// A trusted GitOps step: an apply of a manifest naming some fields, or a delete.
#[derive(Clone, Debug)]
struct GitOps {
    kind: Kind,
    target: usize,
    manifest: Fresh,
    /// Which fields the manifest names (bit per field; a Member's identity is
    /// required, so always named).
    named: u8,
    delete: bool,
}

fn arb_gitops() -> impl Strategy<Value = GitOps> {
    (
        prop_oneof![
            3 => Just(Kind::Group),
            4 => Just(Kind::Member),
            2 => Just(Kind::ApiKey),
        ],
        0..8usize,
        arb_fresh(),
        any::<u8>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(kind, target, manifest, named, delete)| GitOps {
            kind,
            target,
            manifest,
            named,
            delete,
        })
}

/// Old and new versions of T's object in a state, and the binding keys the
/// manifest names (what the mutating half reads from managedFields or the
/// last-applied manifest); `None` when T changes nothing (a delete of an
/// object that is not there).
fn gitops_versions(s: &OrgState, t: &GitOps) -> Option<(String, Versions, Asserted)> {
    let named = |i: u8| t.named & (1 << i) != 0;
    let mut asserted = Asserted::new();
    match t.kind {
        Kind::Member => {
            let name = MEMBERS[t.target % MEMBERS.len()];
            let old = s.members.get(name).map(|d| (**d).clone());
            if t.delete {
                return old.map(|o| (name.into(), Versions::Member(Some(o), None), asserted));
            }
            let f = &t.manifest.member;
            let base = old.clone().unwrap_or_else(|| MemberDef {
                name: name.into(),
                ..MemberDef::default()
            });
            let mut new = base.clone();
            new.identity = f.identity.clone();
            asserted.insert("identity".into());
            if named(0) {
                new.groups = f.groups.clone();
                new.group_until = f.group_until.clone();
                asserted.extend(new.groups.iter().map(|g| format!("groups/{g}")));
            }
            if named(5) {
                new.until = f.until.clone();
                asserted.insert("until".into());
            }
            if named(1) {
                new.subjects = f.subjects.clone();
                asserted.insert("subjects".into());
            }
            if named(2) {
                new.accepted = f.accepted;
                asserted.insert("accepted".into());
            }
            if named(3) {
                new.sso_groups = f.sso_groups.clone();
            }
            if named(4) {
                new.salesforce_profile = f.salesforce_profile.clone();
            }
            Some((name.into(), Versions::Member(old, Some(new)), asserted))
        }
        Kind::Group => {
            let name = GROUPS[t.target % GROUPS.len()];
            let old = s.groups.get(name).map(|d| (**d).clone());
            if t.delete {
                return old.map(|o| (name.into(), Versions::Group(Some(o), None), asserted));
            }
            let f = &t.manifest.group;
            let mut new = old.clone().unwrap_or_else(|| GroupDef {
                name: name.into(),
                ..GroupDef::default()
            });
            if named(0) && new.builtin.is_none() {
                new.template = f.template.filter(|t| *t != GroupTemplate::Administrators);
                asserted.insert("template".into());
            }
            if named(1) && new.builtin.is_none() {
                new.privileges = f.privileges.clone();
                asserted.insert("privileges".into());
            }
            if named(2) {
                new.access = f.access.clone();
                asserted.insert("access".into());
            }
            if named(3) {
                new.identity_sets = f.identity_sets.clone();
                asserted.insert("identitySets".into());
            }
            Some((name.into(), Versions::Group(old, Some(new)), asserted))
        }
        Kind::ApiKey => {
            let name = KEYS[t.target % KEYS.len()];
            let old = s.api_keys.get(name).map(|d| (**d).clone());
            if t.delete {
                return old.map(|o| (name.into(), Versions::ApiKey(Some(o), None), asserted));
            }
            let f = &t.manifest.key;
            let mut new = old.clone().unwrap_or_else(|| ApiKeyDef {
                name: name.into(),
                display_name: Some(name.into()),
                enabled: true,
                ..ApiKeyDef::default()
            });
            if named(0) {
                new.template = f.template;
                asserted.insert("template".into());
            }
            if named(1) {
                new.privileges = f.privileges.clone();
                asserted.insert("privileges".into());
            }
            if named(2) {
                new.access = f.access.clone();
                asserted.insert("access".into());
            }
            if named(3) {
                new.enabled = f.enabled;
                asserted.insert("enabled".into());
            }
            Some((name.into(), Versions::ApiKey(old, Some(new)), asserted))
        }
        Kind::Organization | Kind::AccessReview => None,
    }
}

fn change_of<'a>(operation: Operation, name: &'a str, v: &'a Versions) -> Change<'a> {
    let (old, new) = match v {
        Versions::Organization(o, n) => (
            o.as_ref().map(Object::Organization),
            n.as_ref().map(Object::Organization),
        ),
        Versions::Group(o, n) => (o.as_ref().map(Object::Group), n.as_ref().map(Object::Group)),
        Versions::Member(o, n) => (
            o.as_ref().map(Object::Member),
            n.as_ref().map(Object::Member),
        ),
        Versions::ApiKey(o, n) => (
            o.as_ref().map(Object::ApiKey),
            n.as_ref().map(Object::ApiKey),
        ),
        Versions::AccessReview(o, n) => (
            o.as_ref().map(Object::AccessReview),
            n.as_ref().map(Object::AccessReview),
        ),
    };
    Change {
        operation,
        name,
        old,
        new,
    }
}

fn operation_of(v: &Versions) -> Operation {
    let (old, new) = match v {
        Versions::Organization(o, n) => (o.is_some(), n.is_some()),
        Versions::Group(o, n) => (o.is_some(), n.is_some()),
        Versions::Member(o, n) => (o.is_some(), n.is_some()),
        Versions::ApiKey(o, n) => (o.is_some(), n.is_some()),
        Versions::AccessReview(o, n) => (o.is_some(), n.is_some()),
    };
    match (old, new) {
        (false, _) => Operation::Create,
        (true, true) => Operation::Update,
        (true, false) => Operation::Delete,
    }
}

/// Writes the record admission's mutating half leaves on the new version:
/// exactly the computed one for an untrusted requester; for a trusted one,
/// what the object carried (its annotation, kept by the apply) less what the
/// change takes over.
fn stamp(
    v: &mut Versions,
    name: &str,
    operation: Operation,
    requester: &Requester,
    asserted: &Asserted,
) {
    let record = {
        let change = change_of(operation, name, v);
        let Some(expected) = rules::bindings_after(&change, requester, asserted) else {
            return;
        };
        match requester {
            Requester::Trusted | Requester::Operator => {
                let written = match change.new {
                    Some(Object::Member(m)) => m.meta.bound_by.clone(),
                    Some(Object::Group(g)) => g.meta.bound_by.clone(),
                    Some(Object::ApiKey(k)) => k.meta.bound_by.clone(),
                    _ => Default::default(),
                };
                written
                    .into_iter()
                    .filter(|(k, w)| expected.get(k) == Some(w))
                    .collect()
            }
            _ => expected,
        }
    };
    match v {
        Versions::Member(_, Some(n)) => n.meta.bound_by = record,
        Versions::Group(_, Some(n)) => n.meta.bound_by = record,
        Versions::ApiKey(_, Some(n)) => n.meta.bound_by = record,
        _ => {}
    }
}

/// Every principal's effective privileges; an API key's only while enabled.
fn live_principals(s: &OrgState) -> Vec<(String, PrivilegeSet)> {
    principals(s)
        .into_iter()
        .map(|(who, set)| {
            let disabled = who
                .strip_prefix("api key ")
                .is_some_and(|k| s.api_keys.get(k).is_some_and(|k| !k.enabled));
            (who, if disabled { PrivilegeSet::new() } else { set })
        })
        .collect()
}

/// One two-step case: Ok(true) when both steps were admitted.
fn two_step_case(state: &OrgState, plan: &Plan, gitops: &GitOps) -> Result<bool, TestCaseError> {
    // C: the tenant's change, with its record, judged as the webhook judges.
    let Some((c_name, mut c)) = versions(state, plan) else {
        return Ok(false);
    };
    settle_deletion(&mut c);
    let grantees = resolve_grantees(state);
    let Some((user, view, tenant)) = tenant_of(state, &grantees, plan) else {
        return Ok(false);
    };
    stamp(&mut c, &c_name, plan.operation, &tenant, &Asserted::new());
    let change = change_of(plan.operation, &c_name, &c);
    if !rules::check(state, &grantees, &change, &tenant).is_empty()
        || !rules::bindings_recorded(&change, &tenant).is_empty()
    {
        return Ok(false);
    }
    let after_c = apply(state, &c_name, &c);

    // T: the trusted apply, judged in S + C.
    let Some((t_name, mut t, asserted)) = gitops_versions(&after_c, gitops) else {
        return Ok(false);
    };
    settle_deletion(&mut t);
    let t_op = operation_of(&t);
    stamp(&mut t, &t_name, t_op, &Requester::Trusted, &asserted);
    let grantees_c = resolve_grantees(&after_c);
    let change = change_of(t_op, &t_name, &t);
    let refused = rules::check(&after_c, &grantees_c, &change, &Requester::Trusted);
    if !refused.is_empty() || !rules::bindings_recorded(&change, &Requester::Trusted).is_empty() {
        return Ok(false);
    }
    let after_ct = apply(&after_c, &t_name, &t);

    // What T alone would have given: the same manifest applied to S.
    let after_t = match gitops_versions(state, gitops) {
        Some((name, mut v, _)) => {
            settle_deletion(&mut v);
            apply(state, &name, &v)
        }
        None => state.clone(),
    };
    for ((who, alone), (_, both)) in live_principals(&after_t)
        .into_iter()
        .zip(live_principals(&after_ct))
    {
        let allowed = alone.merge(&view.privileges);
        prop_assert!(
            allowed.covers(&both),
            "{who} gained {} through {user}'s admitted {:?} of {:?} '{c_name}' followed by a trusted {:?} of '{t_name}' (manifest naming {:#010b}, asserted {:?})",
            allowed.missing(&both),
            plan.operation,
            plan.kind,
            t_op,
            gitops.named,
            asserted,
        );
    }
    Ok(true)
}

#[test]
fn no_tenant_change_escalates_through_a_later_trusted_apply() {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let admitted = std::cell::Cell::new(0u32);
    let strategy = (
        (arb_state(), any::<u64>()).prop_map(|(s, bits)| with_records(s, bits)),
        arb_plan(),
        arb_gitops(),
    );
    let result = runner.run(&strategy, |(state, plan, gitops)| {
        if two_step_case(&state, &plan, &gitops)? {
            admitted.set(admitted.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let ratio = f64::from(admitted.get()) / f64::from(cases());
    eprintln!(
        "two-step invariant: {} sequences, {} with both steps admitted",
        cases(),
        admitted.get()
    );
    assert!(
        ratio > 0.02,
        "only {} of {} sequences had both steps admitted",
        admitted.get(),
        cases()
    );
}

/// ForeignBindings looks only at the members a change can make hold more
/// (`rules::who_can_gain`): on any state with records and any one change (a
/// tenant's or a GitOps apply), it finds what it finds looking at every
/// member.
#[test]
fn foreign_growth_among_who_can_gain_is_foreign_growth() {
    use orgaccess::core::bindings::{foreign_growth, foreign_growth_among};
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let found = std::cell::Cell::new(0u32);
    let strategy = (
        (arb_state(), any::<u64>()).prop_map(|(s, bits)| with_records(s, bits)),
        arb_plan(),
        arb_gitops(),
    );
    let result = runner.run(&strategy, |(state, plan, gitops)| {
        let grantees = resolve_grantees(&state);
        let changes = [
            versions(&state, &plan).map(|(n, v)| (n, plan.operation, v)),
            gitops_versions(&state, &gitops).map(|(n, v, _)| {
                let op = operation_of(&v);
                (n, op, v)
            }),
        ];
        for (name, operation, mut v) in changes.into_iter().flatten() {
            settle_deletion(&mut v);
            let after = apply(&state, &name, &v);
            let grantees_after = resolve_grantees(&after);
            let change = change_of(operation, &name, &v);
            let all = foreign_growth(&state, &grantees, &after, &grantees_after);
            let among = foreign_growth_among(
                &state,
                &grantees,
                &after,
                &grantees_after,
                rules::who_can_gain(&state, &change).as_ref(),
            );
            prop_assert_eq!(&among, &all, "{:?} of '{}'", operation, name);
            // The rule, which copies only those members into its state
            // after the change, finds each of them.
            let found_by_rule = rules::foreign_bindings(&state, &grantees, &change);
            prop_assert_eq!(
                found_by_rule.len(),
                all.len(),
                "{:?} of '{}'",
                operation,
                name
            );
            for (v, f) in found_by_rule.iter().zip(&all) {
                prop_assert!(
                    v.message.contains(&f.principal) && v.message.contains(&f.gained.to_string()),
                    "{:?} of '{}': {} for {:?}",
                    operation,
                    name,
                    v.message,
                    f
                );
            }
            if !all.is_empty() {
                found.set(found.get() + 1);
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The property says something only if some changes grow holdings
    // through records.
    eprintln!("foreign growth found in {} changes", found.get());
    assert!(found.get() > 0, "no change grew anything through a record");
}

/// The webhook and `orgaccess check` judge with one pipeline
/// (`orgaccess::judge`) and differ only in what they know before a change:
/// the index's snapshot with its caches (the requester views keyed by the
/// identity's relevant part, the grantees, a group's candidate members) or
/// the CLI's plain state. On any state and change, by any identity, the two
/// give the same verdict, denial text and warnings.
#[test]
fn the_webhook_s_knowledge_and_the_cli_s_judge_alike() {
    use orgaccess::core::change::Def;
    use orgaccess::index::Namespace;
    use orgaccess::judge::{self, Asker, Plain};
    let defs = |v: &Versions| -> (orgaccess::core::model::Kind, Option<Def>, Option<Def>) {
        use orgaccess::core::model::Kind as K;
        match v {
            Versions::Organization(o, n) => (
                K::Organization,
                o.clone().map(Def::Organization),
                n.clone().map(Def::Organization),
            ),
            Versions::Group(o, n) => (
                K::Group,
                o.clone().map(Def::Group),
                n.clone().map(Def::Group),
            ),
            Versions::Member(o, n) => (
                K::Member,
                o.clone().map(Def::Member),
                n.clone().map(Def::Member),
            ),
            Versions::ApiKey(o, n) => (
                K::ApiKey,
                o.clone().map(Def::ApiKey),
                n.clone().map(Def::ApiKey),
            ),
            Versions::AccessReview(o, n) => (
                K::AccessReview,
                o.clone().map(Def::AccessReview),
                n.clone().map(Def::AccessReview),
            ),
        }
    };
    let mut runner = TestRunner::new(Config {
        cases: cases() / 4,
        failure_persistence: None,
        ..Config::default()
    });
    let compared = std::cell::Cell::new((0u32, 0u32));
    let result = runner.run(&(arb_state(), arb_plan()), |(state, plan)| {
        let Some((name, mut v)) = versions(&state, &plan) else {
            return Ok(());
        };
        settle_deletion(&mut v);
        let (kind, old, new) = defs(&v);
        let request = judge::Request {
            kind,
            operation: plan.operation,
            namespace: "acme",
            name: &name,
            old: old.as_ref(),
            new: new.as_ref(),
            stored_key: None,
            mutated: false,
        };
        let (user, groups) = identities().swap_remove(plan.requester);
        let asker = Asker::Identity {
            user,
            groups: &groups,
        };
        let webhook = judge::judge(&Namespace::new(state.clone()), asker, &request, now());
        // The index ahead of or behind the request (its version of the
        // object is the change's result): the judge overlays the request's.
        let lagging = judge::judge(
            &Namespace::new(apply(&state, &name, &v)),
            asker,
            &request,
            now(),
        );
        let cli = judge::judge(&Plain::new(state.clone()), asker, &request, now());
        let said = |j: &judge::Judgement| {
            let violations: Vec<String> = j
                .violations
                .iter()
                .map(|v| format!("[{}] {}: {}", v.rule, v.field, v.message))
                .collect();
            (violations, j.message.clone(), j.warnings.clone())
        };
        prop_assert_eq!(
            said(&webhook),
            said(&cli),
            "{:?} {:?} '{}' by {}",
            plan.operation,
            plan.kind,
            name,
            user
        );
        prop_assert_eq!(
            said(&lagging),
            said(&cli),
            "the index's copy not the request's: {:?} {:?} '{}' by {}",
            plan.operation,
            plan.kind,
            name,
            user
        );
        let (n, allowed) = compared.get();
        compared.set((n + 1, allowed + u32::from(webhook.allowed())));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (n, allowed) = compared.get();
    eprintln!("webhook and CLI knowledge: {n} changes compared, {allowed} allowed");
    assert!(
        n > 0 && allowed > 0,
        "nothing worth comparing: {n} compared, {allowed} allowed"
    );
}
