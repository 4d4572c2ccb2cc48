//! The one pipeline that judges a change: from the request's objects to the
//! verdict, the denial text and the warnings. The webhook's `/validate`
//! (`webhook/review.rs`) and `orgaccess check` / `orgaccess duplicate`
//! (`cli/check.rs`) both call [`judge`]; they differ only in what they know
//! before the change ([`Known`]: the webhook's cached index snapshot, or the
//! manifests' state, [`Plain`]) and in who asks ([`Asker`]: the webhook's
//! policy decides, the CLI's `--as`).
//!
//! The steps, in order (docs/rules.md):
//!
//! 1. the judged state: the known state with the object under change as the
//!    request says it was, absent for a create ([`overlay`]);
//! 2. what is derived from it (grantees, the requester's members, a group's
//!    members), from the known state's caches while the judged state is the
//!    known one, computed afresh when the overlay changed it;
//! 3. the rules ([`rules::check`]), the bindings record when the object went
//!    through the mutating half ([`rules::bindings_recorded`]), and an API
//!    key's lifecycle from its stored status (`KeyLifecycle`);
//! 4. the denial text ([`rules::denial_message`]), or for an allowed change
//!    its warnings ([`warnings::with_advice`]).
//!
//! The activity record is made from the [`Judgement`] (`webhook/activity.rs`,
//! `Activity::of`). The agreement tests: `tests/webhook/agreement.rs`.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;

use crate::core::advice::Lookups;
use crate::core::advice::scan_members_at_most;
use crate::core::apikey::{Reported, re_enable_wait};
use crate::core::bindings::Recorded;
use crate::core::change::{Def, overlay, requester, take};
use crate::core::effective::{
    Grantee, Grantees, RequesterView, SubjectNames, requester_view, resolve_grantees,
};
use crate::core::model::{Kind, MemberDef, OrgState};
use crate::core::rules::{self, Change, Object, Operation, Requester, Rule, Violation};
use crate::core::warnings;
use crate::index::Namespace;

/// What a change is judged against: one namespace's organization as known
/// before it, and what is derived from that state.
pub trait Known {
    /// The organization before the change.
    fn state(&self) -> &OrgState;
    /// [`resolve_grantees`] of [`state`](Self::state).
    fn grantees(&self) -> Arc<Grantees>;
    /// Who a Kubernetes identity is in [`state`](Self::state) at `now` ([`requester_view`]).
    fn requester(&self, user: &str, groups: &[String], now: Timestamp) -> Arc<RequesterView>;
    /// A superset of the names of `group`'s members in [`state`](Self::state),
    /// or `None` when it holds more than `limit`.
    fn members_of(&self, group: &str, limit: usize) -> Option<BTreeSet<String>>;
    /// How many objects of [`state`](Self::state) record a tenant's binding
    /// ([`Recorded::of`] of it).
    fn recorded(&self) -> Recorded;
    /// What the advisor asks besides the objects, kept for
    /// [`state`](Self::state) (`None`: found by passes over it).
    fn lookups(&self) -> Option<&dyn Lookups> {
        None
    }
}

/// The webhook's knowledge: the index's snapshot and its caches.
impl Known for Namespace {
    fn state(&self) -> &OrgState {
        &self.state
    }

    fn grantees(&self) -> Arc<Grantees> {
        Namespace::grantees(self)
    }

    fn requester(&self, user: &str, groups: &[String], now: Timestamp) -> Arc<RequesterView> {
        Namespace::requester(self, user, groups, now)
    }

    fn members_of(&self, group: &str, limit: usize) -> Option<BTreeSet<String>> {
        // The index names a group's members without a scan (a superset).
        self.member_names_at_most(group, limit)
    }

    fn recorded(&self) -> Recorded {
        // Kept by the index as objects come and go: no scan per request.
        Namespace::recorded(self)
    }

    fn lookups(&self) -> Option<&dyn Lookups> {
        Some(self)
    }
}

/// An organization with nothing cached but its grantees: what the CLI knows
/// (from manifests or the cluster).
#[derive(Debug)]
pub struct Plain {
    state: OrgState,
    grantees: Arc<Grantees>,
}

impl Plain {
    pub fn new(state: OrgState) -> Plain {
        Plain {
            grantees: Arc::new(resolve_grantees(&state)),
            state,
        }
    }

    /// Runs `f` on the organization as it was before `new` (named `name`)
    /// was applied to it: `old` in its place, or nothing for a create. One
    /// state serves every object of a run (`orgaccess check`): the object is
    /// swapped out and back in place, never copied with the rest, and the
    /// grantees are resolved again only for a group or an API key.
    pub fn before<R>(
        &mut self,
        new: &Def,
        name: &str,
        old: Option<&Def>,
        f: impl FnOnce(&Plain) -> R,
    ) -> R {
        let kind = new.kind();
        let current = take(&mut self.state, kind, name);
        if let Some(old) = old {
            old.put_into(&mut self.state, name);
        }
        let grantees = matches!(kind, Kind::Group | Kind::ApiKey).then(|| {
            std::mem::replace(&mut self.grantees, Arc::new(resolve_grantees(&self.state)))
        });
        let out = f(self);
        take(&mut self.state, kind, name);
        if let Some(current) = current {
            current.put_into(&mut self.state, name);
        }
        if let Some(grantees) = grantees {
            self.grantees = grantees;
        }
        out
    }
}

impl Known for Plain {
    fn state(&self) -> &OrgState {
        &self.state
    }

    fn recorded(&self) -> Recorded {
        // `before` swaps objects in and out of this state: counted each time.
        Recorded::of(&self.state)
    }

    fn grantees(&self) -> Arc<Grantees> {
        self.grantees.clone()
    }

    fn requester(&self, user: &str, groups: &[String], now: Timestamp) -> Arc<RequesterView> {
        Arc::new(view_of(&self.state, &self.grantees, user, groups, now))
    }

    fn members_of(&self, group: &str, limit: usize) -> Option<BTreeSet<String>> {
        scan_members_at_most(&self.state, group, limit)
    }
}

/// A superset of `group`'s members in `state`, `known`'s state with the
/// request's version of its object overlaid, or `None` when it holds more
/// than `limit`: `known`'s answer, corrected for that one object, instead
/// of a pass over every member for each group the advisor asks about.
fn overlaid_members_at_most(
    known: &impl Known,
    state: &OrgState,
    request: &Request,
    group: &str,
    limit: usize,
) -> Option<BTreeSet<String>> {
    // A candidate of `group` in `state`: invited to it, or matched by one
    // of its identity sets (what the index's names are).
    let sets = state
        .groups
        .get(group)
        .map(|g| g.identity_sets.as_slice())
        .unwrap_or_default();
    let candidate =
        |m: &MemberDef| m.groups.iter().any(|g| g == group) || sets.iter().any(|s| s.matches(m));
    match request.kind {
        // The overlaid member is in or out as its version says; everyone
        // else as known.
        Kind::Member => {
            let mut names = known.members_of(group, limit.saturating_add(1))?;
            names.remove(request.name);
            if let Some(m) = state.members.get(request.name)
                && candidate(m)
            {
                names.insert(m.name.clone());
            }
            (names.len() <= limit).then_some(names)
        }
        // Invited as the members say, and its identity sets the request's.
        Kind::Group if group == request.name => {
            let mut names = BTreeSet::new();
            for m in state.members.values() {
                if candidate(m) {
                    names.insert(m.name.clone());
                    if names.len() > limit {
                        return None;
                    }
                }
            }
            Some(names)
        }
        // Members and the other groups are as known.
        _ => known.members_of(group, limit),
    }
}

/// [`requester_view`] reading only the identity's relevant part (the user
/// and group names Members list, [`SubjectNames::relevant`]), as the index's
/// cache does: the work is bounded by the organization, not by the request.
fn view_of(
    state: &OrgState,
    grantees: &Grantees,
    user: &str,
    groups: &[String],
    now: Timestamp,
) -> RequesterView {
    let names = SubjectNames::of(state);
    let (_, relevant) = names.relevant(user, groups);
    let relevant: Vec<String> = relevant.into_iter().map(str::to_string).collect();
    // At `now`: a membership past its end counts for nothing.
    requester_view(state, grantees, user, &relevant, now)
}

/// Who asks, before the organization is consulted (docs/rules.md: who asks).
#[derive(Clone, Copy, Debug)]
pub enum Asker<'a> {
    /// The operator's own service account.
    Operator,
    /// A configured platform principal (the CLI without `--as`).
    Trusted,
    /// The namespace controller: trusted, and its deletes are a teardown
    /// (the Organization goes with the namespace).
    NamespaceController,
    /// Anyone else: mapped to the Members whose subjects match.
    Identity { user: &'a str, groups: &'a [String] },
}

/// The change asked for.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub kind: Kind,
    pub operation: Operation,
    pub namespace: &'a str,
    pub name: &'a str,
    /// The object as it is (update, delete).
    pub old: Option<&'a Def>,
    /// The object as asked (create, update).
    pub new: Option<&'a Def>,
    /// For an ApiKey update at the webhook: what the stored key's status
    /// reports (`KeyLifecycle`). Manifests have none.
    pub stored_key: Option<&'a Reported>,
    /// The new object went through the mutating half, which wrote its
    /// `orgaccess.dev/bound-by` record (`BindingsRecorded` judges it).
    /// Manifests checked offline carry no record.
    pub mutated: bool,
}

/// An operation as the API spells it.
pub fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

impl Request<'_> {
    /// The change the rules read.
    fn change(&self) -> Change<'_> {
        Change {
            operation: self.operation,
            name: self.name,
            old: self.old.map(Def::object),
            new: self.new.map(Def::object),
        }
    }
}

/// The verdict on one change.
#[derive(Debug)]
pub struct Judgement {
    /// Who asked, as the rules saw them.
    pub requester: Requester,
    /// Empty when the change is allowed.
    pub violations: Vec<Violation>,
    /// The denial text (what kubectl prints), when denied.
    pub message: Option<String>,
    /// For an allowed change: what kubectl prints as `Warning:`.
    pub warnings: Vec<String>,
}

impl Judgement {
    pub fn allowed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Judges `request` by `asker` against what is `known`, at `now`.
pub fn judge(known: &impl Known, asker: Asker, request: &Request, now: Timestamp) -> Judgement {
    let teardown =
        matches!(asker, Asker::NamespaceController) && request.operation == Operation::Delete;
    // The object under change is taken from the request, which is the truth
    // when a cache lags behind; the rest of the organization from `known`.
    let (state, grantees_changed) = overlay(
        known.state(),
        request.kind,
        request.operation,
        request.name,
        request.old,
        teardown,
    );
    let overlaid = matches!(state, Cow::Owned(_));
    // Grantees come from groups and API keys: recomputed only when the
    // overlay changed one of those.
    let grantees = if grantees_changed {
        let changed = match request.kind {
            Kind::ApiKey => Grantee::ApiKey(request.name.to_string()),
            _ => Grantee::Group(request.name.to_string()),
        };
        Arc::new(
            known
                .grantees()
                .after_change(known.state(), &state, changed),
        )
    } else {
        known.grantees()
    };
    let requester = match asker {
        Asker::Operator => Requester::Operator,
        Asker::Trusted | Asker::NamespaceController => Requester::Trusted,
        Asker::Identity { user, groups } if overlaid => {
            requester(user, &view_of(&state, &grantees, user, groups, now))
        }
        Asker::Identity { user, groups } => requester(user, &known.requester(user, groups, now)),
    };
    let change = request.change();
    let recorded = if overlaid {
        Recorded::of(&state)
    } else {
        known.recorded()
    };
    let mut violations = rules::check_counted(&state, &grantees, &change, &requester, recorded);
    if request.mutated {
        violations.extend(rules::bindings_recorded(&change, &requester));
    }
    violations.extend(key_lifecycle(&change, request.stored_key));
    let allowed = violations.is_empty();
    let message = (!allowed).then(|| {
        rules::denial_message(
            request.kind.as_str(),
            request.namespace,
            request.name,
            &violations,
        )
    });
    let warnings = if allowed {
        let members_of = |g: &str, limit: usize| {
            if overlaid {
                overlaid_members_at_most(known, &state, request, g, limit)
            } else {
                known.members_of(g, limit)
            }
        };
        match known.lookups() {
            // The index's, when the state judged is its own.
            Some(lookups) if !overlaid => warnings::with_advice_from(&state, &change, lookups, now),
            _ => warnings::with_advice(&state, &grantees, &change, &members_of, now),
        }
    } else {
        Vec::new()
    };
    Judgement {
        requester,
        violations,
        message,
        warnings,
    }
}

/// KeyLifecycle: a disabled key is enabled again only once its disabling
/// was carried out; for everyone, trusted principals too.
fn key_lifecycle(change: &Change, stored: Option<&Reported>) -> Option<Violation> {
    let (Some(Object::ApiKey(old)), Some(Object::ApiKey(new)), Some(reported)) =
        (change.old, change.new, stored)
    else {
        return None;
    };
    re_enable_wait(change.name, old.enabled, new.enabled, reported).map(|message| Violation {
        rule: Rule::KeyLifecycle,
        field: "spec.enabled".into(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{GroupDef, MemberDef, OrgDef, Subject, SubjectKind};

    fn org() -> OrgDef {
        OrgDef {
            name: "acme".into(),
            invitation_lifetime_days: 7,
            ..OrgDef::default()
        }
    }

    fn member(name: &str, user: &str) -> MemberDef {
        MemberDef {
            name: name.into(),
            subjects: vec![Subject {
                kind: SubjectKind::User,
                name: user.into(),
                namespace: None,
            }],
            accepted: true,
            ..MemberDef::default()
        }
    }

    fn known() -> OrgState {
        let mut state = OrgState::default();
        Def::Organization(org()).put_into(&mut state, "acme");
        Def::Member(member("olivia", "olivia")).put_into(&mut state, "olivia");
        state
    }

    fn request<'a>(
        operation: Operation,
        name: &'a str,
        old: Option<&'a Def>,
        new: Option<&'a Def>,
    ) -> Request<'a> {
        Request {
            kind: new.or(old).map_or(Kind::Group, Def::kind),
            operation,
            namespace: "acme",
            name,
            old,
            new,
            stored_key: None,
            mutated: false,
        }
    }

    /// Each asker is the requester the rules expect, whatever the state.
    #[test]
    fn askers_become_requesters() {
        let known = Plain::new(known());
        let new = Def::Group(GroupDef {
            name: "g".into(),
            ..GroupDef::default()
        });
        let r = request(Operation::Create, "g", None, Some(&new));
        let groups = vec!["system:authenticated".to_string()];
        let cases: [(Asker, &str); 5] = [
            (Asker::Operator, "operator"),
            (Asker::Trusted, "trusted"),
            (Asker::NamespaceController, "trusted"),
            (
                Asker::Identity {
                    user: "olivia",
                    groups: &groups,
                },
                "member olivia",
            ),
            (
                Asker::Identity {
                    user: "mallory",
                    groups: &groups,
                },
                "unmapped",
            ),
        ];
        for (asker, want) in cases {
            let got = match judge(&known, asker, &r, Timestamp::now()).requester {
                Requester::Operator => "operator".to_string(),
                Requester::Trusted => "trusted".to_string(),
                Requester::Members { members, .. } => format!("member {}", members.join(",")),
                Requester::Unmapped { .. } => "unmapped".to_string(),
            };
            assert_eq!(got, want, "{asker:?}");
        }
    }

    /// A create is judged without a stale object of its name, so a Member
    /// being created maps nobody yet: its own subjects do not vouch for it.
    #[test]
    fn a_create_is_judged_without_the_object_it_creates() {
        let known = Plain::new(known());
        let olivia = Def::Member(member("olivia", "olivia"));
        let groups = Vec::new();
        let asker = Asker::Identity {
            user: "olivia",
            groups: &groups,
        };
        let create = request(Operation::Create, "olivia", None, Some(&olivia));
        let j = judge(&known, asker, &create, Timestamp::now());
        assert!(matches!(j.requester, Requester::Unmapped { .. }), "{j:?}");
        assert!(!j.allowed() && j.message.is_some() && j.warnings.is_empty());
        // The same object as an update: she is herself.
        let update = request(Operation::Update, "olivia", Some(&olivia), Some(&olivia));
        let j = judge(&known, asker, &update, Timestamp::now());
        assert!(matches!(j.requester, Requester::Members { .. }), "{j:?}");
    }

    /// A second Organization meets the first (the home) and is refused; the
    /// home's own create is judged without itself.
    #[test]
    fn a_second_organization_is_refused_and_the_first_is_judged_alone() {
        let known = Plain::new(known());
        let second = Def::Organization(OrgDef {
            name: "other".into(),
            ..org()
        });
        let r = request(Operation::Create, "other", None, Some(&second));
        let j = judge(&known, Asker::Trusted, &r, Timestamp::now());
        assert!(
            j.violations.iter().any(|v| v.field == "metadata.name"),
            "{j:?}"
        );
        let first = Def::Organization(org());
        let r = request(Operation::Create, "acme", None, Some(&first));
        let j = judge(&known, Asker::Trusted, &r, Timestamp::now());
        assert!(j.allowed(), "{j:?}");
    }

    /// `before` shows the organization without the object (or with its old
    /// version), and puts everything back.
    #[test]
    fn before_swaps_the_object_out_and_back() {
        let group = |display: &str| {
            Def::Group(GroupDef {
                name: "g".into(),
                display_name: Some(display.into()),
                ..GroupDef::default()
            })
        };
        let mut state = known();
        group("new").put_into(&mut state, "g");
        let mut plain = Plain::new(state.clone());
        let seen = plain.before(&group("new"), "g", None, |k| {
            k.state().groups.get("g").cloned()
        });
        assert_eq!(seen, None);
        let old = group("old");
        let seen = plain.before(&group("new"), "g", Some(&old), |k| {
            k.state().groups["g"].display_name.clone()
        });
        assert_eq!(seen.as_deref(), Some("old"));
        assert_eq!(plain.state().groups, state.groups);
        assert_eq!(plain.state().members, state.members);
        let member = Def::Member(member("olivia", "olivia"));
        let gone = plain.before(&member, "olivia", None, |k| k.state().members.is_empty());
        assert!(gone);
        assert_eq!(plain.state().members, state.members);
    }

    /// Only the namespace controller's deletes are a teardown: Administrators
    /// may go with the namespace, not otherwise.
    #[test]
    fn the_namespace_controller_tears_down() {
        let mut state = known();
        let admins = Def::Group(GroupDef::seeded(
            crate::core::builtin::BuiltinGroup::Administrators,
        ));
        let name = crate::core::builtin::BuiltinGroup::Administrators.object_name();
        admins.put_into(&mut state, name);
        let known = Plain::new(state);
        let r = request(Operation::Delete, name, Some(&admins), None);
        assert!(judge(&known, Asker::NamespaceController, &r, Timestamp::now()).allowed());
        assert!(!judge(&known, Asker::Trusted, &r, Timestamp::now()).allowed());
    }

    mod overlaid_members {
        use proptest::prelude::*;

        use super::*;
        use crate::core::model::{IdentitySet, MemberIdentity, Provider};

        const GROUPS: [&str; 3] = ["g0", "g1", "g2"];

        fn group_def(name: &str, sso: bool) -> GroupDef {
            GroupDef {
                name: name.into(),
                identity_sets: if sso {
                    vec![IdentitySet {
                        open_id_domain: None,
                        sso_group: Some("Eng".into()),
                        salesforce_profile: None,
                    }]
                } else {
                    vec![]
                },
                ..GroupDef::default()
            }
        }

        /// In g0, g1, g2 by bits 0 to 2, not accepted by bit 3; single
        /// sign-on in Eng.
        fn member_def(name: &str, groups: u8, sso: bool) -> MemberDef {
            MemberDef {
                name: name.into(),
                identity: MemberIdentity {
                    provider: if sso {
                        Provider::SingleSignOn
                    } else {
                        Provider::Email
                    },
                    username: format!("{name}@x.example"),
                },
                groups: (0..3)
                    .filter(|i| groups & (1 << i) != 0)
                    .map(|i| GROUPS[i].to_string())
                    .collect(),
                sso_groups: if sso { vec!["Eng".into()] } else { vec![] },
                accepted: groups & 8 == 0,
                ..MemberDef::default()
            }
        }

        fn member_strategy() -> impl Strategy<Value = Option<(u8, bool)>> {
            prop::option::weighted(0.8, (0u8..16, any::<bool>()))
        }

        proptest! {
            /// Corrected for the request's version of one member or group,
            /// the index's names are those an index of the overlaid state
            /// gives, at every bound.
            #[test]
            fn are_those_of_an_index_of_the_overlaid_state(
                sso_groups in prop::collection::vec(any::<bool>(), 3),
                members in prop::collection::vec(member_strategy(), 4),
                member_change in any::<bool>(),
                target in 0usize..4,
                old_member in member_strategy(),
                old_group_sso in any::<bool>(),
                create in prop::bool::weighted(0.2),
            ) {
                let mut known = OrgState::default();
                Def::Organization(org()).put_into(&mut known, "acme");
                for (i, sso) in sso_groups.iter().enumerate() {
                    Def::Group(group_def(GROUPS[i], *sso)).put_into(&mut known, GROUPS[i]);
                }
                for (i, m) in members.iter().enumerate() {
                    if let Some((groups, sso)) = m {
                        let name = format!("m{i}");
                        Def::Member(member_def(&name, *groups, *sso)).put_into(&mut known, &name);
                    }
                }
                let (kind, name) = if member_change {
                    (Kind::Member, format!("m{target}"))
                } else {
                    (Kind::Group, GROUPS[target % 3].to_string())
                };
                let old = match kind {
                    Kind::Member => old_member.map(|(g, sso)| Def::Member(member_def(&name, g, sso))),
                    _ => Some(Def::Group(group_def(&name, old_group_sso))),
                };
                let operation = if create { Operation::Create } else { Operation::Update };
                let request = Request {
                    kind,
                    operation,
                    namespace: "acme",
                    name: &name,
                    old: old.as_ref(),
                    new: None,
                    stored_key: None,
                    mutated: false,
                };
                let index = Namespace::new(known.clone());
                let (state, _) = overlay(&known, kind, operation, &name, old.as_ref(), false);
                let of_overlaid = Namespace::new(state.clone().into_owned());
                for g in GROUPS.iter().chain(&["g3"]) {
                    for limit in 0..6 {
                        prop_assert_eq!(
                            overlaid_members_at_most(&index, &state, &request, g, limit),
                            of_overlaid.member_names_at_most(g, limit),
                            "{} at most {}", g, limit
                        );
                    }
                }
            }
        }
    }
}
