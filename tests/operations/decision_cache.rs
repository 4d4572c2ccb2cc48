//! The decision service's cached check (`Namespace::check`: each member's
//! and key's facts kept with the index's snapshot) answers exactly as the
//! core's uncached `decision::check`, over random organizations, principals,
//! questions and instants (a member's invitation and a key's lifetime run
//! out between two questions, while the cached facts stay). Each question is
//! asked twice, so the second answer comes from the cache. Invalidation on a
//! change is pinned by `index::decisions::tests::a_change_drops_the_facts`.
//! Both are also compared with an oracle: the check as it was written before
//! the facts were factored out of it (everything recomputed per member).
//! Cases: `ORGACCESS_DECISION_CACHE_CASES` (default 500).

use crate::generators;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use orgaccess::core::builtin::{ApiKeyTemplate, GroupTemplate};
use orgaccess::core::catalog::CATALOG;
use orgaccess::core::decision::{self, Need, Principal, Verb};
use orgaccess::core::effective::resolve_grantees;
use orgaccess::core::model::{
    AccessEntry, AccessReviewDef, AccessReviewsSpec, ApiKeyDef, GroupDef, IdentitySet, MemberDef,
    MemberIdentity, Meta, OrgDef, OrgState, Provider, Subject, SubjectKind, WhenOverdue,
};
use orgaccess::core::privilege::PrivilegeSpec;
use orgaccess::index::Namespace;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const GROUPS: [&str; 5] = ["administrators", "g1", "g2", "g3", "g4"];
const MEMBERS: [&str; 5] = ["m0", "m1", "m2", "m3", "m4"];
const KEYS: [&str; 3] = ["k0", "k1", "k2"];
const RESOURCES: [&str; 6] = ["g1", "g2", "administrators", "k0", "src-a", "src-b"];
const SSO: [&str; 2] = ["sso-admins", "sso-dev"];
const USERS: [&str; 3] = ["alice", "bob", "eve"];

fn t0() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn arb_privileges() -> impl Strategy<Value = Vec<PrivilegeSpec>> {
    generators::privileges((0..CATALOG.len()).collect(), &RESOURCES, 6)
}

fn arb_access() -> impl Strategy<Value = Vec<AccessEntry>> {
    generators::access_list(&GROUPS, &KEYS)
}

fn arb_group(name: &'static str) -> impl Strategy<Value = GroupDef> {
    (
        prop_oneof![
            3 => Just(None),
            1 => Just(Some(GroupTemplate::FullAccess)),
            1 => Just(Some(GroupTemplate::AnalyticsViewers)),
        ],
        arb_privileges(),
        arb_access(),
        prop::option::weighted(0.3, prop::sample::select(SSO.to_vec())),
        // A review cadence: due a day or a month after the group's creation
        // (a day before t0), or never.
        prop_oneof![
            2 => Just(None),
            1 => Just(Some("P1D".to_string())),
            1 => Just(Some("P30D".to_string())),
        ],
    )
        .prop_map(
            move |(template, privileges, access, sso, review_every)| GroupDef {
                name: name.into(),
                template,
                privileges,
                access,
                review_every,
                created: Some(t0() - SignedDuration::from_hours(24)),
                identity_sets: sso
                    .map(|g| IdentitySet {
                        open_id_domain: None,
                        sso_group: Some(g.into()),
                        salesforce_profile: None,
                    })
                    .into_iter()
                    .collect(),
                ..GroupDef::default()
            },
        )
}

fn arb_member(name: &'static str) -> impl Strategy<Value = MemberDef> {
    (
        // Invited to groups that may not exist, twice over at times.
        prop::collection::vec(prop::sample::select(GROUPS.to_vec()), 0..4),
        prop::collection::vec((0..USERS.len(), any::<bool>()), 0..3),
        prop::bool::weighted(0.7),
        // Days since the invitation (the lifetime is 31 days).
        prop_oneof![Just(None), Just(Some(0i64)), Just(Some(30)), Just(Some(40))],
        prop::bool::weighted(0.4),
        prop::bool::weighted(0.1),
        // Ends, by index ([`end`]): the overall one, then one per invitation.
        prop::collection::vec(0..END_CHOICES, 5),
    )
        .prop_map(
            move |(groups, subjects, accepted, age, sso, deleting, ends)| MemberDef {
                // Ends of memberships: the instants asked about straddle them.
                group_until: groups
                    .iter()
                    .zip(&ends[1..])
                    .filter_map(|(g, e)| Some((g.to_string(), end(*e)?)))
                    .collect(),
                until: end(ends[0]),
                name: name.into(),
                identity: MemberIdentity {
                    provider: if sso {
                        Provider::SingleSignOn
                    } else {
                        Provider::Email
                    },
                    username: format!("{name}@corp.example"),
                },
                groups: groups.into_iter().map(String::from).collect(),
                subjects: subjects
                    .into_iter()
                    .map(|(u, group)| Subject {
                        kind: if group {
                            SubjectKind::Group
                        } else {
                            SubjectKind::User
                        },
                        name: if group { "team-a" } else { USERS[u] }.into(),
                        namespace: None,
                    })
                    .collect(),
                accepted,
                invited_at: age.map(|days| t0() - SignedDuration::from_hours(24 * days)),
                sso_groups: if sso { vec![SSO[0].into()] } else { vec![] },
                salesforce_profile: None,
                meta: Meta {
                    deleting,
                    ..Meta::default()
                },
            },
        )
}

/// Ends a generator draws from: none, before or between the instants asked
/// about, or a duration from the Member's creation.
const END_CHOICES: usize = 7;

fn end(i: usize) -> Option<String> {
    let at = |hours: i64| (t0() + SignedDuration::from_hours(hours)).to_string();
    match i {
        3 => Some(at(-1)),
        4 => Some(at(30)),
        5 => Some(at(24 * 100)),
        6 => Some("P31D".to_string()),
        _ => None,
    }
}

fn arb_key(name: &'static str) -> impl Strategy<Value = ApiKeyDef> {
    (
        prop_oneof![
            2 => Just(None),
            1 => Just(Some(ApiKeyTemplate::AnonymousSearch)),
            1 => Just(Some(ApiKeyTemplate::Custom)),
        ],
        arb_privileges(),
        arb_access(),
        prop::bool::weighted(0.8),
        // Days since creation.
        prop_oneof![Just(0i64), Just(80), Just(200), Just(400)],
    )
        .prop_map(
            move |(template, privileges, access, enabled, age)| ApiKeyDef {
                name: name.into(),
                template,
                privileges,
                access,
                enabled,
                created: Some(t0() - SignedDuration::from_hours(24 * age)),
                ..ApiKeyDef::default()
            },
        )
}

/// An access review of a group, confirming some members, recorded some
/// hours from t0 (before, or between the instants asked: a suspension is
/// lifted then).
fn arb_review(name: &'static str) -> impl Strategy<Value = AccessReviewDef> {
    (
        prop::sample::select(GROUPS.to_vec()),
        prop::collection::btree_set(prop::sample::select(MEMBERS.to_vec()), 0..4),
        prop_oneof![Just(-12i64), Just(36), Just(24 * 40)],
    )
        .prop_map(move |(group, confirmed, hours)| AccessReviewDef {
            name: name.into(),
            group: group.into(),
            confirmed: confirmed.into_iter().map(String::from).collect(),
            created: Some(t0() + SignedDuration::from_hours(hours)),
            ..AccessReviewDef::default()
        })
}

fn arb_state() -> impl Strategy<Value = OrgState> {
    let groups = GROUPS.map(|n| prop::option::weighted(0.8, arb_group(n)));
    let members = MEMBERS.map(|n| prop::option::weighted(0.8, arb_member(n)));
    let keys = KEYS.map(|n| prop::option::weighted(0.7, arb_key(n)));
    let reviews = ["r0", "r1"].map(|n| prop::option::weighted(0.5, arb_review(n)));
    let when = prop_oneof![Just(WhenOverdue::Report), Just(WhenOverdue::Suspend)];
    (groups, members, keys, reviews, when).prop_map(|(groups, members, keys, reviews, when)| {
        let mut s = OrgState {
            org: Some(OrgDef {
                name: "acme".into(),
                display_name: "Acme".into(),
                invitation_lifetime_days: 31,
                access_reviews: AccessReviewsSpec {
                    when_overdue: when,
                    grace_period: None,
                },
                ..OrgDef::default()
            }),
            ..OrgState::default()
        };
        for r in reviews.into_iter().flatten() {
            s.reviews.insert(r.name.clone(), Arc::new(r));
        }
        for g in groups.into_iter().flatten() {
            s.groups.insert(g.name.clone(), Arc::new(g));
        }
        for m in members.into_iter().flatten() {
            s.members.insert(m.name.clone(), Arc::new(m));
        }
        for k in keys.into_iter().flatten() {
            s.api_keys.insert(k.name.clone(), Arc::new(k));
        }
        s
    })
}

/// Every question a principal can be asked here: each verb on each domain
/// the generator draws from, as a whole and on each resource name.
fn needs() -> Vec<Need> {
    let mut out = Vec::new();
    for d in CATALOG.iter() {
        for verb in Verb::ALL {
            let whole = format!("{}/{}", d.service.as_str(), d.name);
            out.extend(Need::parse(verb, &whole));
            for r in ["src-a", "g1", "k0", "nowhere"] {
                out.extend(Need::parse(verb, &format!("{whole}/{r}")));
            }
        }
    }
    out
}

fn principals() -> Vec<(String, Vec<String>, u8)> {
    let mut out: Vec<(String, Vec<String>, u8)> = Vec::new();
    for m in MEMBERS.iter().chain(["nobody"].iter()) {
        out.push((m.to_string(), vec![], 0));
    }
    for k in KEYS.iter().chain(["nokey"].iter()) {
        out.push((k.to_string(), vec![], 1));
    }
    for u in USERS {
        out.push((u.to_string(), vec![], 2));
        out.push((u.to_string(), vec!["team-a".into()], 2));
    }
    out
}

#[test]
fn the_cached_check_answers_as_the_core_does() {
    let cases = std::env::var("ORGACCESS_DECISION_CACHE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let needs = needs();
    let principals = principals();
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let question = (0..principals.len(), 0..needs.len());
    let strategy = (
        arb_state(),
        prop::collection::vec(question, 1..40),
        // Instants, asked in any order on one snapshot: now, a day later (an
        // invitation runs out, a membership ends, a review lapses or a later one
        // lifts its suspension), a year later (keys expire).
        prop::collection::vec(prop_oneof![Just(0i64), Just(2), Just(365)], 1..4),
    );
    runner
        .run(&strategy, |(state, questions, days)| {
            let ns = Namespace::new(state.clone());
            let grantees = resolve_grantees(&state);
            for day in days {
                let now = t0() + SignedDuration::from_hours(24 * day);
                for &(p, n) in &questions {
                    let (name, groups, kind) = &principals[p];
                    let principal = match kind {
                        0 => Principal::Member(name),
                        1 => Principal::ApiKey(name),
                        _ => Principal::Identity { user: name, groups },
                    };
                    let need = &needs[n];
                    let uncached = decision::check(&state, &grantees, principal, need, now);
                    let naive = oracle::check(&state, &grantees, principal, need, now);
                    prop_assert_eq!(
                        &uncached,
                        &naive,
                        "{:?} {:?} at day {}",
                        principal,
                        need,
                        day
                    );
                    for _ in 0..2 {
                        let cached = ns.check(principal, need, now);
                        prop_assert_eq!(
                            &cached,
                            &uncached,
                            "{:?} {:?} at day {}",
                            principal,
                            need,
                            day
                        );
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------
// The oracle: the core's check as it was before the facts were factored out
// (every fact recomputed from the state, member by member), kept verbatim.
// ---------------------------------------------------------------------------

mod oracle {
    use jiff::Timestamp;
    use orgaccess::core::apikey::{NoValue, Standing};
    use orgaccess::core::catalog;
    use orgaccess::core::decision::{Answer, Need, Principal};
    use orgaccess::core::effective::{
        Grantee, Grantees, MemberEffective, MemberPhase, access_grants, api_key_spec_privileges,
        maps_identity, member_effective,
    };
    use orgaccess::core::model::OrgState;
    use orgaccess::core::privilege::PrivilegeSet;

    fn holds_nothing(reason: String) -> Answer {
        Answer {
            allowed: false,
            granted_by: Vec::new(),
            missing: Vec::new(),
            reason: Some(reason),
        }
    }

    fn from(held: &PrivilegeSet, need: &Need, granted_by: Vec<String>) -> Answer {
        let allowed = held.covers(&need.set);
        Answer {
            allowed,
            granted_by: if allowed { granted_by } else { Vec::new() },
            missing: held.missing(&need.set).to_specs(),
            reason: None,
        }
    }

    pub fn check(
        state: &OrgState,
        grantees: &Grantees,
        principal: Principal,
        need: &Need,
        now: Timestamp,
    ) -> Answer {
        // People are asked what the console's page asks (Activities View
        // with Groups, seed 001); keys the domain alone.
        let people = need.for_people();
        match principal {
            Principal::Member(name) => member(state, grantees, name, &people, now),
            Principal::ApiKey(name) => api_key(state, grantees, name, need, now),
            Principal::Identity { user, groups } => {
                identity(state, grantees, user, groups, &people, now)
            }
        }
    }

    fn member(
        state: &OrgState,
        grantees: &Grantees,
        name: &str,
        need: &Need,
        now: Timestamp,
    ) -> Answer {
        let Some(m) = state.members.get(name) else {
            return holds_nothing(format!("no Member '{name}' in this organization"));
        };
        let eff = member_effective(state, grantees, m, now);
        let mut answer = from(&eff.privileges, need, groups_covering(grantees, &eff, need));
        if !answer.allowed && eff.privileges.is_empty() {
            answer.reason = match eff.phase {
                MemberPhase::Pending => {
                    Some("the invitation is pending: a pending member holds nothing".into())
                }
                MemberPhase::Expired => {
                    Some("the invitation expired unaccepted: the member holds nothing".into())
                }
                MemberPhase::Active if eff.memberships.iter().any(|m| m.ended) => Some(
                    "the member's memberships have ended (spec.until, spec.groupUntil): the member holds nothing"
                        .into(),
                ),
                MemberPhase::Active => eff.memberships.iter().any(|m| m.suspended).then(|| {
                    "the member's memberships are suspended: their groups' access reviews are overdue and the last review did not confirm the member"
                        .into()
                }),
            };
        }
        answer
    }

    /// The active groups whose privileges alone cover `need`; when none
    /// does, those covering one domain of it.
    fn groups_covering(grantees: &Grantees, eff: &MemberEffective, need: &Need) -> Vec<String> {
        let active = || eff.memberships.iter().filter(|ms| ms.active);
        let covering = |want: &PrivilegeSet| -> Vec<String> {
            active()
                .filter(|ms| {
                    grantees
                        .groups
                        .get(&ms.group)
                        .is_some_and(|g| g.covers(want))
                })
                .map(|ms| ms.group.clone())
                .collect()
        };
        let mut through = covering(&need.set);
        if through.is_empty() {
            for (d, want) in need.set.iter() {
                let mut part = PrivilegeSet::new();
                part.set(d, want.clone());
                through.extend(covering(&part));
            }
        }
        through.sort();
        through.dedup();
        through
    }

    fn api_key(
        state: &OrgState,
        grantees: &Grantees,
        name: &str,
        need: &Need,
        now: Timestamp,
    ) -> Answer {
        let Some(k) = state.api_keys.get(name) else {
            return holds_nothing(format!("no ApiKey '{name}' in this organization"));
        };
        let standing = Standing::of(k, now);
        match standing.no_value {
            Some(NoValue::Disabled) => return holds_nothing("the key is disabled".into()),
            Some(NoValue::Expired) => {
                return holds_nothing(format!("the key expired at {}", standing.expires));
            }
            None => {}
        }
        let held = grantees.api_keys.get(name).cloned().unwrap_or_default();
        let mut through = Vec::new();
        if api_key_spec_privileges(k).covers(&need.set) {
            through.push(match k.template {
                Some(t) if k.privileges.is_empty() => format!("template {t:?}"),
                _ => "own privileges".to_string(),
            });
        }
        let access = access_grants(state);
        for (d, obj, level) in access
            .get(&Grantee::ApiKey(name.to_string()))
            .into_iter()
            .flatten()
        {
            let mut one = PrivilegeSet::new();
            one.add_resource(*d, obj, *level);
            if one.covers(&need.set) {
                let kind = if *d == *catalog::GROUPS {
                    "Group"
                } else {
                    "ApiKey"
                };
                through.push(format!("access list of {kind} {obj}"));
            }
        }
        from(&held, need, through)
    }

    fn identity(
        state: &OrgState,
        grantees: &Grantees,
        user: &str,
        groups: &[String],
        need: &Need,
        now: Timestamp,
    ) -> Answer {
        let mut held = PrivilegeSet::new();
        let mut through = Vec::new();
        let mut mapped = false;
        for m in state
            .members
            .values()
            .filter(|m| maps_identity(m, user, groups))
        {
            mapped = true;
            let eff = member_effective(state, grantees, m, now);
            held.merge_in(&eff.privileges);
            through.extend(
                groups_covering(grantees, &eff, need)
                    .into_iter()
                    .map(|g| format!("{g} (member {})", m.name)),
            );
        }
        if !mapped {
            return holds_nothing(format!(
                "'{user}' is not a subject of any Member of this organization"
            ));
        }
        through.sort();
        through.dedup();
        from(&held, need, through)
    }
}
