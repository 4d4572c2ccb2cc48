//! Effective privileges: what each group, API key and member can do, and why.
//!
//! A group's or API key's privileges are its template, adjusted domain by domain
//! by its explicit privileges, plus what other objects' access lists give it.
//! A member's are the merge of the privileges of every group they are active in.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use jiff::{SignedDuration, Timestamp};

use crate::catalog::{self, DomainId};
use crate::model::{
    AccessEntry, ApiKeyDef, GroupDef, IdentitySet, MemberDef, OrgState, Provider, Until,
};
use crate::privilege::{Level, PrivilegeError, PrivilegeSet, PrivilegeSpec, grant_to_spec, parse};
use crate::review::{membership_suspended, suspends, suspension_instants};

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

    /// Whether this entry names `grantee` (its `group` or `apiKey` field,
    /// as the grantee is one or the other).
    pub fn names(&self, grantee: &Grantee) -> bool {
        match grantee {
            Grantee::Group(n) => self.group.as_deref() == Some(n.as_str()),
            Grantee::ApiKey(n) => self.api_key.as_deref() == Some(n.as_str()),
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
            (grant_to_spec(d, g), from)
        })
        .collect()
}

/// Privileges of every group and API key, including access-list grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grantees {
    pub groups: BTreeMap<String, PrivilegeSet>,
    pub api_keys: BTreeMap<String, PrivilegeSet>,
}

impl Grantees {
    /// Brings the entries of `names` up to date with `state`, where nothing
    /// else changed since these grantees were [`resolve_grantees`] of it: an
    /// entry is its object's own spec plus every access-list entry naming
    /// it, so a change of one group or API key changes its own entry and
    /// those its access list names before and after ([`changed_by`]). A
    /// name with no object in `state` loses its entry.
    pub fn refresh(&mut self, state: &OrgState, names: impl IntoIterator<Item = Grantee>) {
        self.refresh_by(state, names, |g| access_grants_to(state, g).collect());
    }

    /// [`refresh`](Self::refresh), where `naming` answers which groups and
    /// API keys (by name) have an access list naming a grantee: an index
    /// that keeps those references spares the pass over every access list.
    pub fn refresh_named(
        &mut self,
        state: &OrgState,
        names: impl IntoIterator<Item = Grantee>,
        naming: impl Fn(&Grantee) -> (BTreeSet<String>, BTreeSet<String>),
    ) {
        self.refresh_by(state, names, |g| {
            let (groups, keys) = naming(g);
            access_grants_among(state, g, &groups, &keys)
        });
    }

    fn refresh_by<'a>(
        &mut self,
        state: &'a OrgState,
        names: impl IntoIterator<Item = Grantee>,
        grants: impl Fn(&Grantee) -> Vec<(DomainId, &'a str, Level)>,
    ) {
        for grantee in names {
            let spec = match &grantee {
                Grantee::Group(n) => state.groups.get(n).map(|g| group_spec_privileges(g)),
                Grantee::ApiKey(n) => state.api_keys.get(n).map(|k| api_key_spec_privileges(k)),
            };
            let map = match &grantee {
                Grantee::Group(_) => &mut self.groups,
                Grantee::ApiKey(_) => &mut self.api_keys,
            };
            let (Grantee::Group(name) | Grantee::ApiKey(name)) = &grantee;
            match spec {
                Some(mut set) => {
                    for (d, object, level) in grants(&grantee) {
                        set.add_resource(d, object, level);
                    }
                    map.insert(name.clone(), set);
                }
                None => {
                    map.remove(name);
                }
            }
        }
    }
}

impl Grantees {
    /// The grantees of `after`, where these are [`resolve_grantees`] of
    /// `before` and the two states differ at most in the definition of
    /// `changed` (one group or API key: added, removed or changed). What a
    /// judgement needs of the state a change would make, for the price of
    /// the entries it can alter.
    pub fn after_change(&self, before: &OrgState, after: &OrgState, changed: Grantee) -> Grantees {
        let names = changed_by(
            changed.clone(),
            access_of(before, &changed),
            access_of(after, &changed),
        );
        let mut out = self.clone();
        out.refresh(after, names);
        out
    }
}

/// The access list of a group or API key in `state` (empty when it is not
/// there).
pub fn access_of<'a>(state: &'a OrgState, grantee: &Grantee) -> &'a [AccessEntry] {
    match grantee {
        Grantee::Group(n) => state.groups.get(n).map(|g| g.access.as_slice()),
        Grantee::ApiKey(n) => state.api_keys.get(n).map(|k| k.access.as_slice()),
    }
    .unwrap_or_default()
}

/// The grantees whose entries a change of one group's or API key's
/// definition can change: itself, and those its access list names before
/// (`old`) and after (`new`).
pub fn changed_by(itself: Grantee, old: &[AccessEntry], new: &[AccessEntry]) -> Vec<Grantee> {
    let mut out: Vec<Grantee> = old
        .iter()
        .chain(new)
        .filter_map(AccessEntry::grantee)
        .collect();
    out.push(itself);
    out.sort();
    out.dedup();
    out
}

/// The Custom grants access lists give one grantee: [`access_grants`] for
/// it alone, without building the others'.
fn access_grants_to<'a, 'g>(
    state: &'a OrgState,
    grantee: &'g Grantee,
) -> impl Iterator<Item = (DomainId, &'a str, Level)> + use<'a, 'g> {
    let groups = state.groups.values().flat_map(move |g| {
        g.access
            .iter()
            .filter(move |e| e.names(grantee))
            .map(move |e| (*catalog::GROUPS, g.name.as_str(), e.level.into()))
    });
    let keys = state.api_keys.values().flat_map(move |k| {
        k.access
            .iter()
            .filter(move |e| e.names(grantee))
            .map(move |e| (*catalog::API_KEYS, k.name.as_str(), e.level.into()))
    });
    groups.chain(keys)
}

/// [`access_grants_to`] where the groups and API keys whose access lists
/// name `grantee` are known (by name; others are not looked at).
fn access_grants_among<'a>(
    state: &'a OrgState,
    grantee: &Grantee,
    groups: &BTreeSet<String>,
    keys: &BTreeSet<String>,
) -> Vec<(DomainId, &'a str, Level)> {
    let mut out = Vec::new();
    for g in groups.iter().filter_map(|n| state.groups.get(n)) {
        for e in g.access.iter().filter(|e| e.names(grantee)) {
            out.push((*catalog::GROUPS, g.name.as_str(), e.level.into()));
        }
    }
    for k in keys.iter().filter_map(|n| state.api_keys.get(n)) {
        for e in k.access.iter().filter(|e| e.names(grantee)) {
            out.push((*catalog::API_KEYS, k.name.as_str(), e.level.into()));
        }
    }
    out
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
    /// The membership counts: the group exists, the member is accepted
    /// (by either route), the membership has not ended and is not suspended.
    pub active: bool,
    /// When it ends ([`membership_end`]); `None`: it does not.
    pub ends_at: Option<Timestamp>,
    /// It has ended (`ends_at` is at or before the instant asked about).
    pub ended: bool,
    /// The group's access review is overdue and its last review did not
    /// confirm the member, and the Organization suspends such memberships
    /// ([`crate::review::membership_suspended`]).
    pub suspended: bool,
}

/// Does a membership count at `now` for a member in `phase`: accepted, the
/// group exists, not ended, not suspended. The one test member status,
/// group status and decisions share.
fn counts(
    state: &OrgState,
    m: &MemberDef,
    group: &str,
    via: Via,
    now: Timestamp,
) -> (Option<Timestamp>, bool, bool) {
    let ends_at = membership_end(m, group, via, now);
    let ended = has_ended(ends_at, now);
    let suspended = !ended && membership_suspended(state, m, group, now);
    (ends_at, ended, suspended)
}

/// Does the membership of `m` in `group` (by `via`) neither end nor stand
/// suspended at `now`? (The phase and the group's existence are asked apart.)
pub fn membership_holds(
    state: &OrgState,
    m: &MemberDef,
    group: &str,
    via: Via,
    now: Timestamp,
) -> bool {
    let (_, ended, suspended) = counts(state, m, group, via, now);
    !ended && !suspended
}

/// An end that cannot be read has passed already: a membership whose end
/// cannot be read does not count (admission refuses such an end,
/// CatalogValidity; the CRD's pattern too).
pub const UNREADABLE_END: Timestamp = Timestamp::MIN;

fn end_of(value: Option<&String>, start: Timestamp) -> Option<Timestamp> {
    let value = value?;
    match Until::parse(value) {
        Ok(u) => u.instant(start),
        Err(_) => Some(UNREADABLE_END),
    }
}

/// When a member's membership in `group` ends: the earlier of the member's
/// overall end (`spec.until`) and, for an invitation, its own
/// (`spec.groupUntil`); `None` when neither is set. A duration counts from
/// the Member's creation, or from `start_if_unknown` for a manifest not
/// applied yet (docs/time-bound-membership.md). The one place an end is
/// computed: status, admission and decisions ask it.
pub fn membership_end(
    m: &MemberDef,
    group: &str,
    via: Via,
    start_if_unknown: Timestamp,
) -> Option<Timestamp> {
    let start = m.invited_at.unwrap_or(start_if_unknown);
    let overall = end_of(m.until.as_ref(), start);
    let own = match via {
        Via::Invitation => end_of(m.group_until.get(group), start),
        Via::IdentitySet => None,
    };
    match (overall, own) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Has a membership ending at `end` ended at `now`? (An end is the first
/// instant the membership no longer counts.)
pub fn has_ended(end: Option<Timestamp>, now: Timestamp) -> bool {
    end.is_some_and(|e| now >= e)
}

/// Is `new` a later end than `old` (`None`: no end)? Extending an end, or
/// removing it, is a grant (docs/rules.md, NoEscalation).
pub fn extends(old: Option<Timestamp>, new: Option<Timestamp>) -> bool {
    match (old, new) {
        (Some(_), None) => true,
        (Some(o), Some(n)) => n > o,
        (None, _) => false,
    }
}

/// The span of time around an instant in which nothing derived from a
/// member changes with the clock: from the latest end at or before it to
/// the earliest end after it (`None`: unbounded). What is computed at the
/// instant holds at any other inside it; caches keep it with what they keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Steady {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Steady {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from.is_none_or(|f| t >= f) && self.until.is_none_or(|u| t < u)
    }

    /// The part both hold for.
    pub fn meet(self, other: Steady) -> Steady {
        let later = |a: Option<Timestamp>, b: Option<Timestamp>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let earlier = |a: Option<Timestamp>, b: Option<Timestamp>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Steady {
            from: later(self.from, other.from),
            until: earlier(self.until, other.until),
        }
    }

    /// Around `now`, given the ends that apply.
    pub fn around(now: Timestamp, ends: impl IntoIterator<Item = Timestamp>) -> Steady {
        let mut s = Steady::default();
        for e in ends {
            if e <= now {
                s.from = Some(s.from.map_or(e, |f| f.max(e)));
            } else {
                s.until = Some(s.until.map_or(e, |u| u.min(e)));
            }
        }
        s
    }
}

/// The [`Steady`] span of a member's memberships around `now`: their ends,
/// and the instants a suspension may start or stop
/// ([`crate::review::suspension_instants`]).
pub fn member_steady(state: &OrgState, m: &MemberDef, now: Timestamp) -> Steady {
    let reviewed = suspends(state);
    if m.until.is_none() && m.group_until.is_empty() && !reviewed {
        return Steady::default();
    }
    let groups = member_groups(state, m);
    let ends = groups
        .iter()
        .filter_map(|(g, via)| membership_end(m, g, *via, now));
    let suspensions = groups
        .iter()
        .filter(|_| reviewed)
        .flat_map(|(g, _)| suspension_instants(state, g, now));
    Steady::around(now, ends.chain(suspensions))
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
                                .any(|(n, l)| l > eff.level && eff.level_on_id(n) == l);
                            same_level || shares_ability || top_resource
                        })
                    })
                    .map(|(name, _)| name.to_string())
                    .collect();
                (grant_to_spec(d, eff), from)
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
        .map(|(group, via)| {
            let (ends_at, ended, suspended) = counts(state, m, &group, via, now);
            Membership {
                active: phase == MemberPhase::Active
                    && grantees.groups.contains_key(&group)
                    && !ended
                    && !suspended,
                ends_at,
                ended,
                suspended,
                group,
                via,
            }
        })
        .collect();
    // One allocation for the member's set, sized for all its groups.
    let privileges = PrivilegeSet::union(
        memberships
            .iter()
            .filter(|ms| ms.active)
            .filter_map(|ms| grantees.groups.get(&ms.group)),
    );
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
/// counts at `now` (accepted, the group exists, not ended, not suspended)
/// and the others (pending, expired, ended or suspended).
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
        let Some(via) = membership_in(state, m, group) else {
            continue;
        };
        // The same test as `member_effective`'s `Membership::active`.
        let (phase, _) = member_phase(m, lifetime, now);
        if phase == MemberPhase::Active && exists && membership_holds(state, m, group, via, now) {
            active.push(m.name.clone());
        } else {
            inactive.push(m.name.clone());
        }
    }
    active.sort();
    inactive.sort();
    (active, inactive)
}

/// Default warning before a membership ends, in days (the operator's
/// `--membership-end-warning-days`).
pub const DEFAULT_END_WARNING_DAYS: i64 = 7;

impl MemberEffective {
    /// The memberships that count now and end within `warning` of `now`,
    /// soonest first: what the Member's `MembershipEnding` condition and its
    /// Warning Event report.
    pub fn ending_within(&self, now: Timestamp, warning: SignedDuration) -> Vec<(&str, Timestamp)> {
        let horizon = now.saturating_add(warning).unwrap_or(Timestamp::MAX);
        let mut out: Vec<(&str, Timestamp)> = self
            .memberships
            .iter()
            .filter(|m| m.active)
            .filter_map(|m| m.ends_at.map(|e| (m.group.as_str(), e)))
            .filter(|(_, e)| *e > now && *e <= horizon)
            .collect();
        out.sort_by_key(|(g, e)| (*e, *g));
        out
    }

    /// The next instant after `now` worth looking at the member again: a
    /// membership's end, or the start of its warning.
    pub fn next_deadline(&self, now: Timestamp, warning: SignedDuration) -> Option<Timestamp> {
        self.memberships
            .iter()
            .filter_map(|m| m.ends_at)
            .flat_map(|e| [e, e.saturating_sub(warning).unwrap_or(Timestamp::MIN)])
            .filter(|t| *t > now)
            .min()
    }
}

/// The next instant after `now` at which one of `members` stops counting in
/// `group` (the Group's status changes then).
pub fn group_next_end<'a>(
    state: &OrgState,
    members: impl IntoIterator<Item = &'a MemberDef>,
    group: &str,
    now: Timestamp,
) -> Option<Timestamp> {
    members
        .into_iter()
        .filter(|m| m.until.is_some() || m.group_until.contains_key(group))
        .filter_map(|m| {
            let via = membership_in(state, m, group)?;
            membership_end(m, group, via, now)
        })
        .filter(|e| *e > now)
        .min()
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
            match s.username() {
                Some(user) => names.users.insert(user),
                None => names.groups.insert(s.name.clone()),
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
    /// The span around the instant asked about in which the view stays
    /// right (a membership ending changes the privileges).
    pub steady: Steady,
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
            view.steady = view.steady.meet(member_steady(state, m, now));
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Subject, SubjectKind};
    use std::sync::Arc;

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
                Arc::new(MemberDef {
                    name: name.into(),
                    subjects,
                    accepted: true,
                    ..MemberDef::default()
                }),
            );
        }
        s
    }

    /// `after_change` is `resolve_grantees` of the state after: a group's
    /// privileges, its access list gaining, losing or moving an entry, the
    /// group or key coming and going.
    #[test]
    fn grantees_after_one_change_are_the_resolved_ones() {
        use crate::model::{ApiKeyDef, GroupDef};
        use crate::privilege::{AccessLevel, ResourceLevel, spec};
        let entry = |group: Option<&str>, key: Option<&str>| AccessEntry {
            group: group.map(str::to_string),
            api_key: key.map(str::to_string),
            level: ResourceLevel::Edit,
        };
        let group = |name: &str, access: Vec<AccessEntry>, edit: bool| GroupDef {
            name: name.into(),
            privileges: vec![spec(
                catalog::Service::Content,
                "Sources",
                if edit {
                    AccessLevel::Edit
                } else {
                    AccessLevel::View
                },
            )],
            access,
            ..GroupDef::default()
        };
        let mut base = OrgState::default();
        for g in [
            group("a", vec![], false),
            group("b", vec![entry(Some("a"), None)], false),
        ] {
            base.groups.insert(g.name.clone(), Arc::new(g));
        }
        let key = ApiKeyDef {
            name: "k".into(),
            access: vec![entry(Some("b"), None)],
            ..ApiKeyDef::default()
        };
        base.api_keys.insert("k".into(), Arc::new(key.clone()));
        // (what changes, the state after)
        let mut cases: Vec<(Grantee, OrgState)> = Vec::new();
        let mut s = base.clone();
        s.groups
            .insert("a".into(), Arc::new(group("a", vec![], true)));
        cases.push((Grantee::Group("a".into()), s));
        let mut s = base.clone();
        s.groups.insert(
            "b".into(),
            Arc::new(group("b", vec![entry(None, Some("k"))], false)),
        );
        cases.push((Grantee::Group("b".into()), s));
        let mut s = base.clone();
        s.groups.remove("b");
        cases.push((Grantee::Group("b".into()), s));
        let mut s = base.clone();
        s.groups.insert(
            "c".into(),
            Arc::new(group("c", vec![entry(Some("a"), None)], true)),
        );
        cases.push((Grantee::Group("c".into()), s));
        let mut s = base.clone();
        s.api_keys.remove("k");
        cases.push((Grantee::ApiKey("k".into()), s));
        let before = resolve_grantees(&base);
        for (changed, after) in cases {
            assert_eq!(
                before.after_change(&base, &after, changed.clone()),
                resolve_grantees(&after),
                "{changed:?}"
            );
        }
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

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// When a membership ends, by both fields, and whether it counts at an
    /// instant: (overall, the group's own, via, creation, now, end, counts).
    #[test]
    fn a_membership_ends_at_the_earlier_of_its_ends() {
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Via,
            Option<&'a str>,
            &'a str,
            Option<&'a str>,
            bool,
        );
        let created = Some("2026-01-01T00:00:00Z");
        let cases: Vec<Case> = vec![
            (
                None,
                None,
                Via::Invitation,
                created,
                "2099-01-01T00:00:00Z",
                None,
                true,
            ),
            (
                Some("2026-03-01T00:00:00Z"),
                None,
                Via::Invitation,
                created,
                "2026-02-28T23:59:59Z",
                Some("2026-03-01T00:00:00Z"),
                true,
            ),
            // The end is the first instant the membership no longer counts.
            (
                Some("2026-03-01T00:00:00Z"),
                None,
                Via::Invitation,
                created,
                "2026-03-01T00:00:00Z",
                Some("2026-03-01T00:00:00Z"),
                false,
            ),
            (
                None,
                Some("P30D"),
                Via::Invitation,
                created,
                "2026-01-30T23:59:59Z",
                Some("2026-01-31T00:00:00Z"),
                true,
            ),
            (
                None,
                Some("P30D"),
                Via::Invitation,
                created,
                "2026-01-31T00:00:00Z",
                Some("2026-01-31T00:00:00Z"),
                false,
            ),
            // The earlier of the two applies.
            (
                Some("P10D"),
                Some("2026-06-01T00:00:00Z"),
                Via::Invitation,
                created,
                "2026-01-12T00:00:00Z",
                Some("2026-01-11T00:00:00Z"),
                false,
            ),
            (
                Some("2026-06-01T00:00:00Z"),
                Some("PT12H"),
                Via::Invitation,
                created,
                "2026-01-01T11:00:00Z",
                Some("2026-01-01T12:00:00Z"),
                true,
            ),
            // An identity set's membership has only the overall end.
            (
                None,
                Some("PT1H"),
                Via::IdentitySet,
                created,
                "2026-05-01T00:00:00Z",
                None,
                true,
            ),
            (
                Some("PT1H"),
                None,
                Via::IdentitySet,
                created,
                "2026-01-01T01:00:00Z",
                Some("2026-01-01T01:00:00Z"),
                false,
            ),
            // A manifest not applied yet: a duration counts from now.
            (
                Some("P1D"),
                None,
                Via::Invitation,
                None,
                "2026-04-01T00:00:00Z",
                Some("2026-04-02T00:00:00Z"),
                true,
            ),
            // An end that cannot be read has passed.
            (
                Some("soon"),
                None,
                Via::Invitation,
                created,
                "2026-01-01T00:00:00Z",
                Some("-009999-01-02T01:59:59Z"),
                false,
            ),
        ];
        for (overall, own, via, created, now, want_end, counts) in cases {
            let mut m = MemberDef {
                name: "m".into(),
                groups: vec!["g".into()],
                accepted: true,
                until: overall.map(str::to_string),
                invited_at: created.map(at),
                ..MemberDef::default()
            };
            if let Some(own) = own {
                m.group_until.insert("g".into(), own.into());
            }
            let now = at(now);
            let end = membership_end(&m, "g", via, now);
            let label = format!("{overall:?} {own:?} {via:?} at {now}");
            assert_eq!(end, want_end.map(at), "{label}");
            assert_eq!(!has_ended(end, now), counts, "{label}");
        }
    }

    /// An overdue review suspends an unconfirmed membership at the same
    /// instant in the member's effective privileges, the group's members,
    /// the requester's view (whose steady span stops there) and a decision.
    #[test]
    fn a_suspension_counts_everywhere_at_the_overdue_instant() {
        use crate::model::{AccessReviewDef, AccessReviewsSpec, OrgDef, WhenOverdue};
        let mut s = state();
        s.org = Some(OrgDef {
            name: "acme".into(),
            invitation_lifetime_days: 31,
            access_reviews: AccessReviewsSpec {
                when_overdue: WhenOverdue::Suspend,
                grace_period: None,
            },
            ..OrgDef::default()
        });
        s.groups.insert(
            "editors".into(),
            Arc::new(GroupDef {
                name: "editors".into(),
                privileges: vec![crate::privilege::spec(
                    crate::catalog::Service::Content,
                    "Sources",
                    crate::privilege::AccessLevel::Edit,
                )],
                review_every: Some("P30D".into()),
                created: Some(at("2026-01-01T00:00:00Z")),
                ..GroupDef::default()
            }),
        );
        for name in ["ann", "bot"] {
            let m = Arc::make_mut(s.members.get_mut(name).unwrap());
            m.groups = vec!["editors".into()];
            m.invited_at = Some(at("2026-01-01T00:00:00Z"));
        }
        s.reviews.insert(
            "r".into(),
            Arc::new(AccessReviewDef {
                name: "r".into(),
                group: "editors".into(),
                confirmed: vec!["bot".into()],
                created: Some(at("2026-01-10T00:00:00Z")),
                ..AccessReviewDef::default()
            }),
        );
        let grantees = resolve_grantees(&s);
        let overdue = at("2026-02-09T00:00:00Z");
        for (now, counts) in [
            (overdue - SignedDuration::from_secs(1), true),
            (overdue, false),
        ] {
            let eff = member_effective(&s, &grantees, &s.members["ann"], now);
            let ms = &eff.memberships[0];
            assert_eq!(
                (ms.active, ms.suspended, ms.ended),
                (counts, !counts, false),
                "{now}"
            );
            assert_eq!(eff.privileges.is_empty(), !counts, "{now}");
            let (active, inactive) = group_members(
                &s,
                &grantees,
                s.members.values().map(Arc::as_ref),
                "editors",
                now,
            );
            assert_eq!(active.contains(&"ann".to_string()), counts, "{now}");
            assert_eq!(inactive.contains(&"ann".to_string()), !counts, "{now}");
            // The confirmed member keeps the group.
            assert!(active.contains(&"bot".to_string()), "{now}");
            let view = requester_view(&s, &grantees, "ann@example.com", &[], now);
            assert_eq!(!view.privileges.is_empty(), counts, "{now}");
            assert!(view.steady.contains(now), "{now}");
            assert_eq!(view.steady.contains(overdue), !counts, "{now}");
        }
        // Report: nothing is suspended.
        s.org.as_mut().unwrap().access_reviews.when_overdue = WhenOverdue::Report;
        let eff = member_effective(&s, &grantees, &s.members["ann"], overdue);
        assert!(eff.memberships[0].active && !eff.memberships[0].suspended);
    }

    #[test]
    fn status_group_members_and_requester_agree_at_the_instant() {
        let mut s = state();
        s.groups.insert(
            "editors".into(),
            Arc::new(GroupDef {
                name: "editors".into(),
                privileges: vec![crate::privilege::spec(
                    crate::catalog::Service::Content,
                    "Sources",
                    crate::privilege::AccessLevel::Edit,
                )],
                ..GroupDef::default()
            }),
        );
        let ann = Arc::make_mut(s.members.get_mut("ann").unwrap());
        ann.groups = vec!["editors".into()];
        ann.invited_at = Some(at("2026-01-01T00:00:00Z"));
        ann.group_until.insert("editors".into(), "P7D".into());
        let grantees = resolve_grantees(&s);
        let end = at("2026-01-08T00:00:00Z");
        for (now, counts) in [
            (end - SignedDuration::from_secs(1), true),
            (end, false),
            (end + SignedDuration::from_hours(1), false),
        ] {
            let eff = member_effective(&s, &grantees, &s.members["ann"], now);
            assert_eq!(eff.memberships[0].active, counts, "{now}");
            assert_eq!(eff.memberships[0].ends_at, Some(end));
            let (active, inactive) = group_members(
                &s,
                &grantees,
                s.members.values().map(Arc::as_ref),
                "editors",
                now,
            );
            assert_eq!(active.contains(&"ann".to_string()), counts, "{now}");
            assert_eq!(inactive.contains(&"ann".to_string()), !counts, "{now}");
            let view = requester_view(&s, &grantees, "ann@example.com", &[], now);
            assert_eq!(!view.privileges.is_empty(), counts, "{now}");
            assert!(view.steady.contains(now), "{now}");
            assert_eq!(
                view.steady.contains(end),
                !counts,
                "the span stops at the end"
            );
            assert_eq!(
                eff.ending_within(now, SignedDuration::from_hours(24 * 7))
                    .len(),
                usize::from(counts)
            );
            assert_eq!(
                group_next_end(&s, s.members.values().map(Arc::as_ref), "editors", now),
                counts.then_some(end)
            );
        }
    }

    #[test]
    fn extending_is_a_later_end_or_none() {
        let (a, b) = (
            Some(at("2026-01-01T00:00:00Z")),
            Some(at("2026-02-01T00:00:00Z")),
        );
        for (old, new, want) in [
            (a, b, true),
            (b, a, false),
            (a, a, false),
            (a, None, true),
            (None, a, false),
            (None, None, false),
        ] {
            assert_eq!(extends(old, new), want, "{old:?} → {new:?}");
        }
    }

    #[test]
    fn the_steady_span_stops_at_the_ends_around_now() {
        let t = |h: i64| Timestamp::UNIX_EPOCH + SignedDuration::from_hours(h);
        let s = Steady::around(t(10), [t(5), t(15), t(8), t(20), t(10)]);
        assert_eq!(
            s,
            Steady {
                from: Some(t(10)),
                until: Some(t(15))
            }
        );
        assert!(s.contains(t(10)) && s.contains(t(14)) && !s.contains(t(15)) && !s.contains(t(9)));
        assert_eq!(Steady::around(t(0), []), Steady::default());
        let m = s.meet(Steady {
            from: Some(t(12)),
            until: None,
        });
        assert_eq!(
            m,
            Steady {
                from: Some(t(12)),
                until: Some(t(15))
            }
        );
    }
}
