//! Effective privileges: what each group, API key and member can do, and why.
//!
//! A group's or API key's privileges are its template, adjusted domain by domain
//! by its explicit privileges, plus what other objects' access lists give it.
//! A member's are the merge of the privileges of every group they are active in.

use std::collections::{BTreeMap, HashSet};

use jiff::{SignedDuration, Timestamp};

use crate::catalog::{self, DomainId};
use crate::model::{
    AccessEntry, ApiKeyDef, GroupDef, IdentitySet, MemberDef, OrgState, Provider, SubjectKind,
};
use crate::privilege::{Level, PrivilegeError, PrivilegeSet, PrivilegeSpec, parse};

/// The privileges an object grants by its own spec (template + explicit),
/// skipping invalid entries, which the rules report.
pub fn granted_by_spec(
    template: Option<PrivilegeSet>,
    explicit: &[PrivilegeSpec],
) -> (PrivilegeSet, Vec<(usize, PrivilegeError)>) {
    let mut set = template.unwrap_or_default();
    let mut errors = Vec::new();
    for (i, spec) in explicit.iter().enumerate() {
        match parse(spec) {
            Ok((d, g)) => set.set(d, g),
            Err(e) => errors.push((i, e)),
        }
    }
    (set, errors)
}

pub fn group_spec_privileges(g: &GroupDef) -> PrivilegeSet {
    granted_by_spec(g.template.map(|t| t.privileges()), &g.privileges).0
}

pub fn api_key_spec_privileges(k: &ApiKeyDef) -> PrivilegeSet {
    granted_by_spec(k.template.map(|t| t.privileges()), &k.privileges).0
}

/// The grantee an access entry names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grantee {
    Group(String),
    ApiKey(String),
}

impl AccessEntry {
    pub fn grantee(&self) -> Option<Grantee> {
        match (&self.group, &self.api_key) {
            (Some(g), None) => Some(Grantee::Group(g.clone())),
            (None, Some(k)) => Some(Grantee::ApiKey(k.clone())),
            _ => None,
        }
    }
}

/// The Custom grants that access lists give, by grantee: (domain, object, level).
pub fn access_grants(state: &OrgState) -> BTreeMap<Grantee, Vec<(DomainId, String, Level)>> {
    let mut out: BTreeMap<Grantee, Vec<_>> = BTreeMap::new();
    let lists = state
        .groups
        .values()
        .map(|g| (*catalog::GROUPS, &g.name, &g.access))
        .chain(
            state
                .api_keys
                .values()
                .map(|k| (*catalog::API_KEYS, &k.name, &k.access)),
        );
    for (domain, object, list) in lists {
        for entry in list {
            if let Some(grantee) = entry.grantee() {
                out.entry(grantee)
                    .or_default()
                    .push((domain, object.clone(), entry.level.into()));
            }
        }
    }
    out
}

fn access_source(domain: DomainId, object: &str) -> String {
    if domain == *catalog::GROUPS {
        format!("access list of Group {object}")
    } else {
        format!("access list of ApiKey {object}")
    }
}

/// Where each domain of a group's or API key's privileges comes from: its
/// own `spec.privileges`, else its template (`template NAME`), plus every
/// access-list entry naming it (`access list of Group|ApiKey NAME`). One
/// home for the causes `orgaccess explain` and `orgaccess diff` print.
pub fn grantee_provenance(
    state: &OrgState,
    grantee: &Grantee,
    template: Option<&(String, PrivilegeSet)>,
    explicit: &[PrivilegeSpec],
    effective: &PrivilegeSet,
) -> Vec<(PrivilegeSpec, Vec<String>)> {
    let access = access_grants(state).remove(grantee).unwrap_or_default();
    let explicit_domains: Vec<DomainId> = explicit
        .iter()
        .filter_map(|s| parse(s).ok().map(|(d, _)| d))
        .collect();
    effective
        .iter()
        .map(|(d, g)| {
            let mut from = Vec::new();
            if explicit_domains.contains(&d) {
                from.push("spec.privileges".to_string());
            } else if let Some((name, set)) = template
                && set.get(d).is_some()
            {
                from.push(format!("template {name}"));
            }
            let mut objs: Vec<String> = access
                .iter()
                .filter(|(dd, _, _)| *dd == d)
                .map(|(dd, obj, _)| access_source(*dd, obj))
                .collect();
            objs.sort();
            objs.dedup();
            from.extend(objs);
            let mut one = PrivilegeSet::new();
            one.set(d, g.clone());
            (one.to_specs().remove(0), from)
        })
        .collect()
}

/// Privileges of every group and API key, including access-list grants.
#[derive(Clone, Debug, Default)]
pub struct Grantees {
    pub groups: BTreeMap<String, PrivilegeSet>,
    pub api_keys: BTreeMap<String, PrivilegeSet>,
}

pub fn resolve_grantees(state: &OrgState) -> Grantees {
    let mut access = access_grants(state);
    let mut with_access = |grantee: Grantee, mut set: PrivilegeSet| {
        for (d, object, level) in access.remove(&grantee).unwrap_or_default() {
            set.add_resource(d, &object, level);
        }
        set
    };
    let groups = state
        .groups
        .values()
        .map(|g| {
            (
                g.name.clone(),
                with_access(Grantee::Group(g.name.clone()), group_spec_privileges(g)),
            )
        })
        .collect();
    let api_keys = state
        .api_keys
        .values()
        .map(|k| {
            (
                k.name.clone(),
                with_access(Grantee::ApiKey(k.name.clone()), api_key_spec_privileges(k)),
            )
        })
        .collect();
    Grantees { groups, api_keys }
}

/// Where a member stands with their invitation.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum MemberPhase {
    /// Accepted: holds the privileges of their groups.
    Active,
    /// Invited, not yet accepted: holds no privileges from invitations.
    Pending,
    /// Not accepted within the organization's invitation lifetime: holds none.
    Expired,
}

/// How a member is in a group.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum Via {
    Invitation,
    IdentitySet,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub group: String,
    pub via: Via,
    /// The membership counts: the group exists and the member is accepted
    /// (by either route).
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEffective {
    pub phase: MemberPhase,
    pub invitation_expires_at: Option<Timestamp>,
    pub memberships: Vec<Membership>,
    pub privileges: PrivilegeSet,
}

impl MemberEffective {
    /// For each effective domain grant, the active groups that contribute its
    /// highest part (its level, an ability or a per-resource level).
    pub fn provenance(&self, grantees: &Grantees) -> Vec<(PrivilegeSpec, Vec<String>)> {
        let active: Vec<(&str, &PrivilegeSet)> = self
            .memberships
            .iter()
            .filter(|m| m.active)
            .filter_map(|m| grantees.groups.get(&m.group).map(|p| (m.group.as_str(), p)))
            .collect();
        self.privileges
            .iter()
            .map(|(d, eff)| {
                let from: Vec<String> = active
                    .iter()
                    .filter(|(_, set)| {
                        set.get(d).is_some_and(|g| {
                            let same_level = eff.level > Level::None && g.level == eff.level;
                            let shares_ability = !g.abilities.is_empty();
                            let top_resource = g
                                .resources
                                .iter()
                                .any(|(n, l)| *l > eff.level && eff.level_on_id(*n) == *l);
                            same_level || shares_ability || top_resource
                        })
                    })
                    .map(|(name, _)| name.to_string())
                    .collect();
                let mut one = PrivilegeSet::new();
                one.set(d, eff.clone());
                (one.to_specs().remove(0), from)
            })
            .collect()
    }
}

impl IdentitySet {
    pub fn matches(&self, m: &MemberDef) -> bool {
        if let Some(oid) = &self.open_id_domain {
            let provider_ok =
                m.identity.provider == oid.provider || m.identity.provider == Provider::AnyListed;
            let domain_ok = m
                .identity
                .username
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&oid.domain));
            return provider_ok && domain_ok;
        }
        if let Some(group) = &self.sso_group {
            return m.identity.provider == Provider::SingleSignOn
                && m.sso_groups.iter().any(|g| g == group);
        }
        if let Some(profile) = &self.salesforce_profile {
            return matches!(
                m.identity.provider,
                Provider::Salesforce | Provider::SalesforceSandbox
            ) && m.salesforce_profile.as_deref() == Some(profile.as_str());
        }
        false
    }
}

/// The invitation phase of a member at `now`.
pub fn member_phase(
    m: &MemberDef,
    lifetime_days: u32,
    now: Timestamp,
) -> (MemberPhase, Option<Timestamp>) {
    if m.accepted {
        return (MemberPhase::Active, None);
    }
    let Some(invited) = m.invited_at else {
        // Not yet stored (offline check): a fresh invitation.
        return (MemberPhase::Pending, None);
    };
    let expires = invited
        .saturating_add(SignedDuration::from_hours(24 * i64::from(lifetime_days)))
        .ok();
    match expires {
        Some(at) if now >= at => (MemberPhase::Expired, Some(at)),
        at => (MemberPhase::Pending, at),
    }
}

/// The groups a member is in, by both routes: the groups they are invited to
/// (whether or not those exist yet) and every group of the state whose identity
/// sets match them. This is the one place membership is computed: status,
/// requester mapping and the admission rules all ask it.
pub fn member_groups(state: &OrgState, m: &MemberDef) -> Vec<(String, Via)> {
    let mut out: Vec<(String, Via)> = m
        .groups
        .iter()
        .map(|g| (g.clone(), Via::Invitation))
        .collect();
    // Most groups have no identity sets: asked first, it skips them cheaply.
    for g in state.groups.values() {
        if !g.identity_sets.is_empty()
            && !m.groups.contains(&g.name)
            && g.identity_sets.iter().any(|s| s.matches(m))
        {
            out.push((g.name.clone(), Via::IdentitySet));
        }
    }
    out
}

/// A member the platform does not list on its Members page: invited to no
/// group, in at least one by an identity set (seed 001: "Although the users
/// in the identity sets you import into your organization can access
/// Coveo, they don't appear on the organization member list").
pub fn only_by_identity_sets(state: &OrgState, m: &MemberDef) -> bool {
    m.groups.is_empty()
        && state
            .groups
            .values()
            .any(|g| !g.identity_sets.is_empty() && g.identity_sets.iter().any(|s| s.matches(m)))
}

/// How a member is in one group, if at all: [`member_groups`] narrowed to
/// `group`, without looking at the other groups.
pub fn membership_in(state: &OrgState, m: &MemberDef, group: &str) -> Option<Via> {
    if m.groups.iter().any(|g| g == group) {
        return Some(Via::Invitation);
    }
    state
        .groups
        .get(group)
        .filter(|g| g.identity_sets.iter().any(|s| s.matches(m)))
        .map(|_| Via::IdentitySet)
}

/// A member's effective privileges at `now`.
///
/// Only an accepted member holds anything, whichever route brings them into a
/// group: a pending or expired member holds no privileges (docs/status.md). An
/// identity-provider sync (or the member's first sign-in) sets `accepted`.
pub fn member_effective(
    state: &OrgState,
    grantees: &Grantees,
    m: &MemberDef,
    now: Timestamp,
) -> MemberEffective {
    let (phase, expires) = member_phase(m, state.invitation_lifetime_days(), now);
    let memberships: Vec<Membership> = member_groups(state, m)
        .into_iter()
        .map(|(group, via)| Membership {
            active: phase == MemberPhase::Active && grantees.groups.contains_key(&group),
            group,
            via,
        })
        .collect();
    let mut privileges = PrivilegeSet::new();
    for ms in memberships.iter().filter(|ms| ms.active) {
        if let Some(set) = grantees.groups.get(&ms.group) {
            privileges.merge_in(set);
        }
    }
    MemberEffective {
        phase,
        invitation_expires_at: expires,
        memberships,
        privileges,
    }
}

/// Whether a member can open the administration console: that needs
/// Organization/Organization: View or more (the platform's minimum privilege
/// to access the Administration Console; docs/design.md, "Console access"). A member without it still holds
/// every other privilege (through the REST API, for instance); the member's
/// status and `orgaccess explain` say so. One home for the fact: the member
/// controller and the CLI both ask here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleAccess {
    /// Holds Organization/Organization: View (or Edit).
    Granted,
    /// Active, but no active group grants Organization/Organization: View.
    MissingOrganizationView,
    /// Pending or expired: holds nothing, the console included.
    NotActive,
}

impl ConsoleAccess {
    /// Condition reason, e.g. `MissingOrganizationView`.
    pub fn reason(self) -> &'static str {
        match self {
            ConsoleAccess::Granted => "OrganizationViewGranted",
            ConsoleAccess::MissingOrganizationView => "MissingOrganizationView",
            ConsoleAccess::NotActive => "MemberNotActive",
        }
    }

    /// One sentence for a person.
    pub fn message(self) -> &'static str {
        match self {
            ConsoleAccess::Granted => {
                "holds Organization/Organization: View, the minimum privilege to open the administration console"
            }
            ConsoleAccess::MissingOrganizationView => {
                "cannot open the administration console: none of the member's groups grants Organization/Organization: View \
                 (the minimum privilege); the other privileges still apply (e.g. through the REST API)"
            }
            ConsoleAccess::NotActive => {
                "cannot open the administration console: the invitation is not accepted, so the member holds no privileges"
            }
        }
    }
}

pub fn console_access(eff: &MemberEffective) -> ConsoleAccess {
    if eff.phase != MemberPhase::Active {
        return ConsoleAccess::NotActive;
    }
    let view = eff
        .privileges
        .get(*catalog::ORGANIZATION)
        .is_some_and(|g| g.level >= Level::View);
    if view {
        ConsoleAccess::Granted
    } else {
        ConsoleAccess::MissingOrganizationView
    }
}

/// The members of a group, by either route, split into those whose membership
/// counts (accepted, the group exists) and the others (pending or expired).
/// The Group's status reports this; it is the same membership the members'
/// own effective privileges are computed from.
pub fn group_members<'a>(
    state: &OrgState,
    grantees: &Grantees,
    members: impl IntoIterator<Item = &'a MemberDef>,
    group: &str,
    now: Timestamp,
) -> (Vec<String>, Vec<String>) {
    let (mut active, mut inactive) = (Vec::new(), Vec::new());
    let lifetime = state.invitation_lifetime_days();
    let exists = grantees.groups.contains_key(group);
    for m in members {
        if membership_in(state, m, group).is_none() {
            continue;
        }
        // The same test as `member_effective`'s `Membership::active`.
        let (phase, _) = member_phase(m, lifetime, now);
        if phase == MemberPhase::Active && exists {
            active.push(m.name.clone());
        } else {
            inactive.push(m.name.clone());
        }
    }
    active.sort();
    inactive.sort();
    (active, inactive)
}

/// Does this member map the Kubernetes identity? A Terminating member maps
/// nobody: a finalizer must not keep a revoked member's subjects acting.
pub fn maps_identity(m: &MemberDef, username: &str, groups: &[String]) -> bool {
    !m.meta.deleting && m.subjects.iter().any(|s| s.matches(username, groups))
}

/// The Kubernetes user and group names the members of a state list as
/// subjects: the only parts of a requester's identity that can map it to
/// anyone. A user name outside `users`, or a group outside `groups`, never
/// changes [`requester_view`]'s answer, so what is derived from an identity
/// is derived from its [`relevant`](Self::relevant) part: bounded by the
/// organization's data, not by what a request carries.
#[derive(Clone, Debug, Default)]
pub struct SubjectNames {
    /// User subjects' names, and service account subjects as the user name
    /// the apiserver gives them (`system:serviceaccount:NS:NAME`).
    users: HashSet<String>,
    groups: HashSet<String>,
}

impl SubjectNames {
    /// Every member's subjects (Terminating members' too: a superset is
    /// harmless). Subjects that stand for a class of identities match nobody
    /// and are left out.
    pub fn of(state: &OrgState) -> SubjectNames {
        let mut names = SubjectNames::default();
        for s in state.members.values().flat_map(|m| &m.subjects) {
            if s.class_of_identities().is_some() {
                continue;
            }
            match s.kind {
                SubjectKind::User => names.users.insert(s.name.clone()),
                SubjectKind::Group => names.groups.insert(s.name.clone()),
                SubjectKind::ServiceAccount => names.users.insert(format!(
                    "system:serviceaccount:{}:{}",
                    s.namespace.as_deref().unwrap_or_default(),
                    s.name
                )),
            };
        }
        names
    }

    /// Does some member name this group?
    pub fn names_group(&self, group: &str) -> bool {
        self.groups.contains(group)
    }

    /// The part of an identity that can map it: the user name if some
    /// subject names it, and the groups some subject names, sorted, each once.
    pub fn relevant<'a>(
        &self,
        username: &'a str,
        groups: &'a [String],
    ) -> (Option<&'a str>, Vec<&'a str>) {
        let user = self.users.contains(username).then_some(username);
        let mut kept: Vec<&str> = groups
            .iter()
            .map(String::as_str)
            .filter(|g| self.groups.contains(*g))
            .collect();
        kept.sort_unstable();
        kept.dedup();
        (user, kept)
    }

    /// Names held (users and groups).
    pub fn len(&self) -> usize {
        self.users.len() + self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The requester's identity mapped to members, and their merged privileges.
#[derive(Clone, Debug, Default)]
pub struct RequesterView {
    pub members: Vec<String>,
    pub privileges: PrivilegeSet,
}

pub fn requester_view(
    state: &OrgState,
    grantees: &Grantees,
    username: &str,
    groups: &[String],
    now: Timestamp,
) -> RequesterView {
    let mut view = RequesterView::default();
    for m in state.members.values() {
        if maps_identity(m, username, groups) {
            view.members.push(m.name.clone());
            view.privileges
                .merge_in(&member_effective(state, grantees, m, now).privileges);
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Subject, SubjectKind};

    fn subject(kind: SubjectKind, name: &str, namespace: Option<&str>) -> Subject {
        Subject {
            kind,
            name: name.into(),
            namespace: namespace.map(str::to_string),
        }
    }

    fn state() -> OrgState {
        let mut s = OrgState::default();
        let members = [
            (
                "ann",
                vec![subject(SubjectKind::User, "ann@example.com", None)],
            ),
            ("ops", vec![subject(SubjectKind::Group, "oidc:ops", None)]),
            (
                "bot",
                vec![subject(SubjectKind::ServiceAccount, "ci", Some("build"))],
            ),
            (
                "everyone",
                vec![subject(SubjectKind::Group, "system:authenticated", None)],
            ),
        ];
        for (name, subjects) in members {
            s.members.insert(
                name.into(),
                MemberDef {
                    name: name.into(),
                    subjects,
                    accepted: true,
                    ..MemberDef::default()
                },
            );
        }
        s
    }

    #[test]
    fn only_the_names_subjects_list_are_relevant() {
        let names = SubjectNames::of(&state());
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // (user, groups, relevant user, relevant groups)
        type Case<'a> = (&'a str, Vec<String>, Option<&'a str>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            ("ann@example.com", g(&[]), Some("ann@example.com"), vec![]),
            (
                "mallory",
                g(&["oidc:ops", "x", "oidc:ops"]),
                None,
                vec!["oidc:ops"],
            ),
            (
                "system:serviceaccount:build:ci",
                g(&["system:serviceaccounts"]),
                Some("system:serviceaccount:build:ci"),
                vec![],
            ),
            ("system:serviceaccount:other:ci", g(&[]), None, vec![]),
            // A class of identities maps nobody, so it is not relevant.
            ("x", g(&["system:authenticated"]), None, vec![]),
        ];
        for (user, groups, want_user, want_groups) in cases {
            let (u, gs) = names.relevant(user, &groups);
            assert_eq!((u, gs), (want_user, want_groups), "{user} {groups:?}");
        }
        assert!(names.names_group("oidc:ops") && !names.names_group("x"));
        assert_eq!(names.len(), 3);
    }

    /// The view of an identity is the view of its relevant part: an
    /// unnamed user and groups change nothing.
    #[test]
    fn the_relevant_part_of_an_identity_maps_the_same_members() {
        let s = state();
        let grantees = resolve_grantees(&s);
        let names = SubjectNames::of(&s);
        let now = Timestamp::UNIX_EPOCH;
        let junk: Vec<String> = (0..1000).map(|i| format!("junk-{i}")).collect();
        for user in [
            "ann@example.com",
            "mallory",
            "system:serviceaccount:build:ci",
            "",
        ] {
            for extra in [
                vec![],
                vec!["oidc:ops".to_string()],
                vec!["system:authenticated".to_string()],
            ] {
                let groups: Vec<String> = junk.iter().cloned().chain(extra).collect();
                let full = requester_view(&s, &grantees, user, &groups, now);
                let (u, gs) = names.relevant(user, &groups);
                let gs: Vec<String> = gs.into_iter().map(str::to_string).collect();
                let reduced = requester_view(&s, &grantees, u.unwrap_or("nobody named"), &gs, now);
                assert_eq!(full.members, reduced.members, "{user} {:?}", gs);
            }
        }
    }
}
