//! Decisions: may this principal do this? The one function behind
//! `orgaccess can-i`, `orgaccess who-can` (a listing of everyone [`check`]
//! allows) and, later, the decision service. Pure: the organization's state
//! and its grantees in, an [`Answer`] out.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::apikey::{NoValue, Standing};
use crate::catalog::{self, Create, DomainId, Service};
use crate::effective::{
    Grantee, Grantees, MemberPhase, RequesterView, Steady, access_grants, api_key_spec_privileges,
    has_ended, member_groups, member_phase, member_steady, membership_end, membership_holds,
    requester_view,
};
use crate::model::{ApiKeyDef, MemberDef, OrgState};
use crate::privilege::{Abilities, Grant, Level, PrivilegeSet, PrivilegeSpec};

/// What a principal wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// View (on a resource, or View all).
    View,
    /// Edit (on a resource, or Edit all).
    Edit,
    /// Can Create.
    Create,
    /// An on/off domain's Allowed.
    Allowed,
    /// Push usage-analytics events.
    Push,
}

impl Verb {
    pub const ALL: [Verb; 5] = [
        Verb::View,
        Verb::Edit,
        Verb::Create,
        Verb::Allowed,
        Verb::Push,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::View => "view",
            Verb::Edit => "edit",
            Verb::Create => "create",
            Verb::Allowed => "allowed",
            Verb::Push => "push",
        }
    }
}

impl FromStr for Verb {
    type Err = String;
    fn from_str(s: &str) -> Result<Verb, String> {
        Verb::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown verb '{s}'; the verbs are {}",
                    Verb::ALL.map(Verb::as_str).join(", ")
                )
            })
    }
}

/// A parsed target and the privileges the action needs.
#[derive(Clone, Debug)]
pub struct Need {
    pub verb: Verb,
    pub domain: DomainId,
    pub resource: Option<String>,
    pub set: PrivilegeSet,
}

impl Need {
    /// Parses `SERVICE/DOMAIN[/RESOURCE]` (service and domain in any case)
    /// and builds the privileges `verb` needs there. The error says what
    /// the catalogue offers instead.
    pub fn parse(verb: Verb, target: &str) -> Result<Need, String> {
        let mut parts = target.splitn(3, '/');
        let (Some(svc), Some(dom)) = (parts.next(), parts.next()) else {
            return Err(format!(
                "'{target}' is not SERVICE/DOMAIN[/RESOURCE], e.g. Content/Sources/jira"
            ));
        };
        let resource = parts.next().filter(|r| !r.is_empty()).map(str::to_string);
        let service = Service::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(svc))
            .ok_or_else(|| {
                format!(
                    "unknown service '{svc}'; the services are {}",
                    Service::ALL.map(|s| s.as_str()).join(", ")
                )
            })?;
        let name = catalog::domains_of(service)
            .find(|d| d.eq_ignore_ascii_case(dom))
            .ok_or_else(|| {
                let hint = catalog::suggest(service, dom)
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                format!(
                    "unknown domain '{dom}' in service {service}{hint}; valid domains of {service}: {}",
                    catalog::domains_of(service).collect::<Vec<_>>().join(", ")
                )
            })?;
        let domain = catalog::lookup(service, name).ok_or("unknown domain")?;
        let offers = catalog::domain(domain).offers;
        let what = format!("{service}/{name}");
        if resource.is_some() && offers.custom.is_none() {
            return Err(format!(
                "{what} has no per-resource levels, so it takes no RESOURCE; ask about {what} as a whole"
            ));
        }
        let not_offered = || {
            format!(
                "{what} does not offer {verb:?}; it offers {}",
                offered_verbs(offers).join("|")
            )
        };
        let mut set = PrivilegeSet::new();
        match verb {
            Verb::View | Verb::Edit => {
                let (level, offered) = if verb == Verb::View {
                    (Level::View, offers.view)
                } else {
                    (Level::Edit, offers.edit)
                };
                if !offered {
                    return Err(not_offered());
                }
                match &resource {
                    Some(r) => set.add_resource(domain, r, level),
                    None => set.set(
                        domain,
                        Grant {
                            level,
                            ..Grant::default()
                        },
                    ),
                }
            }
            Verb::Create | Verb::Allowed | Verb::Push => {
                if let Some(r) = &resource {
                    return Err(format!(
                        "{} applies to {what} as a whole, not to resource '{r}'; drop /{r}",
                        verb.as_str()
                    ));
                }
                let (offered, abilities) = match verb {
                    Verb::Create => (offers.create != Create::No, Abilities::CREATE),
                    Verb::Allowed => (offers.allowed, Abilities::ALLOWED),
                    _ => (offers.push, Abilities::PUSH),
                };
                if !offered {
                    return Err(not_offered());
                }
                set.set(
                    domain,
                    Grant {
                        abilities,
                        ..Grant::default()
                    },
                );
            }
        }
        Ok(Need {
            verb,
            domain,
            resource,
            set,
        })
    }
}

impl Need {
    /// What a person needs for this on the console, where a page can ask
    /// more than its domain: seed 001's "Required privileges" table asks
    /// Organization/Activities: View together with Organization/Groups: View
    /// to view groups, and with Groups: Edit to edit them (admission asks
    /// the same to edit groups, `rules::required`). Members and the
    /// identities mapped to them use the console; API keys call the API,
    /// which lists and edits groups with the Groups privilege alone, so they
    /// are asked [`Need::set`] only.
    pub fn for_people(&self) -> Cow<'_, Need> {
        if self.domain == *catalog::GROUPS && matches!(self.verb, Verb::View | Verb::Edit) {
            let mut need = self.clone();
            need.set.merge_in(&crate::rules::activities_view());
            Cow::Owned(need)
        } else {
            Cow::Borrowed(self)
        }
    }
}

/// The verbs a domain offers, for hints.
pub fn offered_verbs(o: catalog::Offers) -> Vec<&'static str> {
    [
        (o.view, Verb::View),
        (o.edit, Verb::Edit),
        (o.create != Create::No, Verb::Create),
        (o.allowed, Verb::Allowed),
        (o.push, Verb::Push),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, v)| v.as_str())
    .collect()
}

/// Who asks.
#[derive(Clone, Copy, Debug)]
pub enum Principal<'a> {
    /// A Member, by object name.
    Member(&'a str),
    /// An API key, by object name.
    ApiKey(&'a str),
    /// A Kubernetes identity, mapped to Members as admission maps it
    /// (`spec.subjects`), with the privileges of all of them merged.
    Identity { user: &'a str, groups: &'a [String] },
}

/// The decision, with its reasons in the words of `orgaccess explain`.
/// (Deserialize: `orgaccess can-i --server` reads it back from the service.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub allowed: bool,
    /// The groups (for a member or identity) or the key's grants (its own
    /// privileges, access lists) that give what is needed.
    pub granted_by: Vec<String>,
    /// What the principal lacks, when refused for want of privileges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<PrivilegeSpec>,
    /// Why the principal holds nothing at all (unknown, pending, disabled,
    /// expired, unmapped), when that is the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Answer {
    fn holds_nothing(reason: String) -> Answer {
        Answer {
            allowed: false,
            granted_by: Vec::new(),
            missing: Vec::new(),
            reason: Some(reason),
        }
    }

    /// The answer for what `held` covers; `granted_by` is asked only when allowed.
    fn from(held: &PrivilegeSet, need: &Need, granted_by: impl FnOnce() -> Vec<String>) -> Answer {
        let allowed = held.covers(&need.set);
        Answer {
            allowed,
            granted_by: if allowed { granted_by() } else { Vec::new() },
            missing: held.missing(&need.set).to_specs(),
            reason: None,
        }
    }
}

/// What a check reads of one member at an instant, right for the whole
/// span `steady` around it: the groups whose membership counts once the
/// member is accepted (by either route, existing, not ended), and the
/// privileges they merge to. The phase, which depends on the time, is taken
/// at each check; a pending or expired member holds nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberFacts {
    /// Sorted, each once.
    pub groups: Vec<String>,
    pub privileges: PrivilegeSet,
    /// No membership of the member ends inside it: a cached copy answers
    /// only for an instant inside it ([`effective::member_steady`](crate::effective::member_steady)).
    pub steady: Steady,
}

/// A member's [`MemberFacts`] at `now`: [`member_groups`] narrowed to the
/// groups that exist and whose membership has not ended, and their
/// privileges merged (what
/// [`member_effective`](crate::effective::member_effective) gives an
/// accepted member).
pub fn member_facts(
    state: &OrgState,
    grantees: &Grantees,
    m: &MemberDef,
    now: Timestamp,
) -> MemberFacts {
    let mut groups: Vec<String> = member_groups(state, m)
        .into_iter()
        .filter(|(g, via)| membership_holds(state, m, g, *via, now))
        .map(|(g, _)| g)
        .filter(|g| grantees.groups.contains_key(g))
        .collect();
    groups.sort();
    groups.dedup();
    let privileges = PrivilegeSet::union(groups.iter().filter_map(|g| grantees.groups.get(g)));
    MemberFacts {
        groups,
        privileges,
        steady: member_steady(state, m, now),
    }
}

/// What a check reads of one API key, besides its standing (which depends on
/// the time): each source of its privileges, named as an answer names it,
/// with what it alone gives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyFacts {
    /// Its own privileges (template and explicit), then each access-list
    /// grant naming it.
    pub sources: Vec<(String, PrivilegeSet)>,
}

/// A key's [`KeyFacts`]. Scans every access list of the organization.
pub fn key_facts(state: &OrgState, k: &ApiKeyDef) -> KeyFacts {
    let own = match k.template {
        Some(t) if k.privileges.is_empty() => format!("template {t:?}"),
        _ => "own privileges".to_string(),
    };
    let mut sources = vec![(own, api_key_spec_privileges(k))];
    let mut access = access_grants(state);
    for (d, obj, level) in access
        .remove(&Grantee::ApiKey(k.name.clone()))
        .unwrap_or_default()
    {
        let mut one = PrivilegeSet::new();
        one.add_resource(d, &obj, level);
        let kind = if d == *catalog::GROUPS {
            "Group"
        } else {
            "ApiKey"
        };
        sources.push((format!("access list of {kind} {obj}"), one));
    }
    KeyFacts { sources }
}

/// Where a check finds what it derives from the state: computed on each
/// call ([`check`]), or kept by a cache that drops them whenever the state
/// changes (the operator's index). None depends on the time.
pub trait Facts {
    /// The member's [`member_facts`] at `now`.
    fn member(&self, m: &MemberDef, now: Timestamp) -> Arc<MemberFacts>;
    /// The key's [`key_facts`].
    fn api_key(&self, k: &ApiKeyDef) -> Arc<KeyFacts>;
    /// The members a Kubernetes identity maps to ([`requester_view`]; only
    /// its `members` are read).
    fn mapped(&self, user: &str, groups: &[String]) -> Arc<RequesterView>;
}

/// [`Facts`] computed on each call.
pub struct Computed<'a> {
    pub state: &'a OrgState,
    pub grantees: &'a Grantees,
}

impl Facts for Computed<'_> {
    fn member(&self, m: &MemberDef, now: Timestamp) -> Arc<MemberFacts> {
        Arc::new(member_facts(self.state, self.grantees, m, now))
    }
    fn api_key(&self, k: &ApiKeyDef) -> Arc<KeyFacts> {
        Arc::new(key_facts(self.state, k))
    }
    fn mapped(&self, user: &str, groups: &[String]) -> Arc<RequesterView> {
        // The mapping does not depend on the time; the privileges (unread
        // here) do, and are taken per member at the instant (`member`).
        Arc::new(requester_view(
            self.state,
            self.grantees,
            user,
            groups,
            Timestamp::UNIX_EPOCH,
        ))
    }
}

/// May `principal` do what `need` asks, in this organization, at `now`?
/// Derives what it needs on the spot; [`check_with`] reads it from a cache.
pub fn check(
    state: &OrgState,
    grantees: &Grantees,
    principal: Principal,
    need: &Need,
    now: Timestamp,
) -> Answer {
    check_with(
        state,
        grantees,
        &Computed { state, grantees },
        principal,
        need,
        now,
    )
}

/// [`check`], with what is derived from the state read from `facts`.
pub fn check_with(
    state: &OrgState,
    grantees: &Grantees,
    facts: &impl Facts,
    principal: Principal,
    need: &Need,
    now: Timestamp,
) -> Answer {
    match principal {
        Principal::Member(name) => member(state, grantees, facts, name, need, now),
        Principal::ApiKey(name) => api_key(state, grantees, facts, name, need, now),
        Principal::Identity { user, groups } => {
            identity(state, grantees, facts, user, groups, need, now)
        }
    }
}

/// The member's facts if it is active now, and its phase.
fn active_facts(
    state: &OrgState,
    facts: &impl Facts,
    m: &MemberDef,
    now: Timestamp,
) -> (MemberPhase, Option<Arc<MemberFacts>>) {
    let (phase, _) = member_phase(m, state.invitation_lifetime_days(), now);
    let f = (phase == MemberPhase::Active).then(|| facts.member(m, now));
    (phase, f)
}

fn member(
    state: &OrgState,
    grantees: &Grantees,
    facts: &impl Facts,
    name: &str,
    need: &Need,
    now: Timestamp,
) -> Answer {
    let Some(m) = state.members.get(name) else {
        return Answer::holds_nothing(format!("no Member '{name}' in this organization"));
    };
    let need = &*need.for_people();
    let (phase, f) = active_facts(state, facts, m, now);
    let empty = PrivilegeSet::new();
    let held = f.as_ref().map_or(&empty, |f| &f.privileges);
    let mut answer = Answer::from(held, need, || {
        f.as_ref()
            .map(|f| groups_covering(grantees, &f.groups, need))
            .unwrap_or_default()
    });
    if !answer.allowed && held.is_empty() {
        answer.reason = match phase {
            MemberPhase::Pending => {
                Some("the invitation is pending: a pending member holds nothing".into())
            }
            MemberPhase::Expired => {
                Some("the invitation expired unaccepted: the member holds nothing".into())
            }
            MemberPhase::Active => {
                let groups = member_groups(state, m);
                if groups
                    .iter()
                    .any(|(g, via)| has_ended(membership_end(m, g, *via, now), now))
                {
                    Some("the member's memberships have ended (spec.until, spec.groupUntil): the member holds nothing".into())
                } else if groups
                    .iter()
                    .any(|(g, via)| !membership_holds(state, m, g, *via, now))
                {
                    Some("the member's memberships are suspended: their groups' access reviews are overdue and the last review did not confirm the member".into())
                } else {
                    None
                }
            }
        };
    }
    answer
}

/// The groups (sorted, each once) whose privileges alone cover `need`; when
/// none does (a need over two domains, met by two groups), those that give
/// a domain of it.
fn groups_covering(grantees: &Grantees, groups: &[String], need: &Need) -> Vec<String> {
    let set_of = |g: &String| grantees.groups.get(g.as_str());
    let whole: Vec<String> = groups
        .iter()
        .filter(|g| set_of(g).is_some_and(|set| set.covers(&need.set)))
        .cloned()
        .collect();
    if !whole.is_empty() {
        return whole;
    }
    groups
        .iter()
        .filter(|g| {
            set_of(g).is_some_and(|set| {
                need.set.iter().any(|(d, want)| {
                    let mut part = PrivilegeSet::new();
                    part.set(d, want.clone());
                    set.covers(&part)
                })
            })
        })
        .cloned()
        .collect()
}

fn api_key(
    state: &OrgState,
    grantees: &Grantees,
    facts: &impl Facts,
    name: &str,
    need: &Need,
    now: Timestamp,
) -> Answer {
    let Some(k) = state.api_keys.get(name) else {
        return Answer::holds_nothing(format!("no ApiKey '{name}' in this organization"));
    };
    let standing = Standing::of(k, now);
    match standing.no_value {
        Some(NoValue::Disabled) => return Answer::holds_nothing("the key is disabled".into()),
        Some(NoValue::Expired) => {
            return Answer::holds_nothing(format!("the key expired at {}", standing.expires));
        }
        None => {}
    }
    let empty = PrivilegeSet::new();
    let held = grantees.api_keys.get(name).unwrap_or(&empty);
    Answer::from(held, need, || {
        facts
            .api_key(k)
            .sources
            .iter()
            .filter(|(_, set)| set.covers(&need.set))
            .map(|(why, _)| why.clone())
            .collect()
    })
}

fn identity(
    state: &OrgState,
    grantees: &Grantees,
    facts: &impl Facts,
    user: &str,
    groups: &[String],
    need: &Need,
    now: Timestamp,
) -> Answer {
    let need = &*need.for_people();
    let view = facts.mapped(user, groups);
    if view.members.is_empty() {
        return Answer::holds_nothing(format!(
            "'{user}' is not a subject of any Member of this organization"
        ));
    }
    let mut held = PrivilegeSet::new();
    let mut active = Vec::new();
    for m in view.members.iter().filter_map(|n| state.members.get(n)) {
        if let (_, Some(f)) = active_facts(state, facts, m, now) {
            held.merge_in(&f.privileges);
            active.push((m.name.as_str(), f));
        }
    }
    Answer::from(&held, need, || {
        let mut through: Vec<String> = active
            .iter()
            .flat_map(|(name, f)| {
                groups_covering(grantees, &f.groups, need)
                    .into_iter()
                    .map(move |g| format!("{g} (member {name})"))
            })
            .collect();
        through.sort();
        through.dedup();
        through
    })
}

/// What verification knows of one key's values: SHA-256 digests only (the
/// values never reach this process), the previous one with the end of its
/// rotation overlap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyDigests {
    pub current: Option<[u8; 32]>,
    pub previous: Option<([u8; 32], Timestamp)>,
}

/// Why a presented key value is refused. Never carries the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyRefusal {
    /// No key of this organization has this value.
    Unknown,
    Disabled,
    Expired,
    /// The client address is outside the allow list, or inside the deny list.
    AddressRefused,
    /// The value is a rotated-out one whose overlap has ended.
    PreviousPastOverlap,
}

impl KeyRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRefusal::Unknown => "unknown key",
            KeyRefusal::Disabled => "key disabled",
            KeyRefusal::Expired => "key expired",
            KeyRefusal::AddressRefused => "address refused",
            KeyRefusal::PreviousPastOverlap => "previous value past its overlap",
        }
    }
}

/// A verified key: which one, through which value, holding what.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedKey {
    pub name: String,
    /// Presented the previous value, inside its rotation overlap.
    pub previous: bool,
    pub privileges: Vec<PrivilegeSpec>,
    /// The search hub the key's queries are bound to (`spec.searchHub`;
    /// `null`: none). The gateway enforces it: orgaccess does not see the
    /// queries.
    pub search_hub: Option<String>,
}

/// The digests of every key, by digest: built once per change of the keys,
/// read on each verification.
#[derive(Clone, Debug, Default)]
pub struct KeyTable {
    by_digest: std::collections::HashMap<[u8; 32], (String, Option<Timestamp>)>,
}

impl KeyTable {
    pub fn new<'a>(keys: impl IntoIterator<Item = (&'a str, &'a KeyDigests)>) -> KeyTable {
        let mut by_digest = std::collections::HashMap::new();
        for (name, d) in keys {
            if let Some(current) = d.current {
                by_digest.insert(current, (name.to_string(), None));
            }
            if let Some((previous, until)) = d.previous {
                by_digest
                    .entry(previous)
                    .or_insert((name.to_string(), Some(until)));
            }
        }
        KeyTable { by_digest }
    }

    /// Digests held (current and previous values).
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

/// Equality of two digests in time independent of where they differ.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Is `presented` a live key value of this organization for a client at
/// `client`, and what does it hold? The lookup is by the value's SHA-256
/// (which says nothing about other keys' values), confirmed in constant time.
pub fn verify_key(
    state: &OrgState,
    grantees: &Grantees,
    table: &KeyTable,
    presented: &[u8],
    client: std::net::IpAddr,
    now: Timestamp,
) -> Result<VerifiedKey, KeyRefusal> {
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(presented).into();
    let Some(((name, previous_until), stored)) =
        table.by_digest.get_key_value(&digest).map(|(d, v)| (v, d))
    else {
        return Err(KeyRefusal::Unknown);
    };
    if !same_digest(stored, &digest) {
        return Err(KeyRefusal::Unknown);
    }
    let Some(key) = state.api_keys.get(name) else {
        return Err(KeyRefusal::Unknown);
    };
    match Standing::of(key, now).no_value {
        Some(NoValue::Disabled) => return Err(KeyRefusal::Disabled),
        Some(NoValue::Expired) => return Err(KeyRefusal::Expired),
        None => {}
    }
    if previous_until.is_some_and(|until| now >= until) {
        return Err(KeyRefusal::PreviousPastOverlap);
    }
    if !address_allowed(&key.allowed_ips, &key.denied_ips, client) {
        return Err(KeyRefusal::AddressRefused);
    }
    Ok(VerifiedKey {
        name: name.clone(),
        previous: previous_until.is_some(),
        privileges: grantees
            .api_keys
            .get(name)
            .map(|p| p.to_specs())
            .unwrap_or_default(),
        search_hub: key.search_hub.clone(),
    })
}

/// An address in the deny list is refused; with an allow list, only an
/// address in it passes (an address in both is refused). An entry that does
/// not parse matches nothing (admission refuses such entries).
///
/// IPv4-mapped IPv6 addresses (`::ffff:203.0.113.5`, how dual-stack servers
/// and Envoy report IPv4 clients) are the IPv4 address they carry, in the
/// client address and in both lists ([`canonical_net`]).
pub fn address_allowed(allowed: &[String], denied: &[String], client: std::net::IpAddr) -> bool {
    let client = client.to_canonical();
    let matches = |entry: &String| canonical_net(entry).is_some_and(|net| net.contains(&client));
    !denied.iter().any(matches) && (allowed.is_empty() || allowed.iter().any(matches))
}

/// A list entry (an address or a CIDR range) as a network, IPv4-mapped IPv6
/// written as IPv4: `::ffff:203.0.113.0/120` is `203.0.113.0/24`, and
/// `::ffff:203.0.113.5` is `203.0.113.5/32`, `::ffff:0:0/96` all of IPv4. A
/// range of `/95` or wider stays IPv6 (it is not within the mapped block).
pub fn canonical_net(entry: &str) -> Option<ipnet::IpNet> {
    use ipnet::{IpNet, Ipv4Net};
    let net = match entry.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => IpNet::from(entry.parse::<std::net::IpAddr>().ok()?),
    };
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).ok().map(IpNet::V4),
            None => Some(net),
        },
        _ => Some(net),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effective::resolve_grantees;
    use crate::model::{ApiKeyDef, GroupDef, MemberDef, Subject, SubjectKind};
    use crate::privilege::{AccessLevel, spec};

    fn org() -> OrgState {
        let mut s = OrgState::default();
        s.groups.insert(
            "editors".into(),
            Arc::new(GroupDef {
                name: "editors".into(),
                privileges: vec![spec(Service::Content, "Sources", AccessLevel::Edit)],
                ..GroupDef::default()
            }),
        );
        for (name, accepted) in [("ann", true), ("bob", false)] {
            s.members.insert(
                name.into(),
                Arc::new(MemberDef {
                    name: name.into(),
                    groups: vec!["editors".into()],
                    accepted,
                    invited_at: Some(Timestamp::now()),
                    subjects: vec![Subject {
                        kind: SubjectKind::User,
                        name: name.into(),
                        namespace: None,
                    }],
                    ..MemberDef::default()
                }),
            );
        }
        s.api_keys.insert(
            "k".into(),
            Arc::new(ApiKeyDef {
                name: "k".into(),
                enabled: true,
                privileges: vec![spec(Service::Content, "Sources", AccessLevel::View)],
                ..ApiKeyDef::default()
            }),
        );
        s
    }

    fn ask(state: &OrgState, p: Principal, verb: Verb, target: &str) -> Answer {
        let need = Need::parse(verb, target).unwrap();
        check(state, &resolve_grantees(state), p, &need, Timestamp::now())
    }

    #[test]
    fn an_active_member_is_allowed_through_its_group() {
        let s = org();
        let a = ask(
            &s,
            Principal::Member("ann"),
            Verb::Edit,
            "Content/Sources/jira",
        );
        assert!(a.allowed);
        assert_eq!(a.granted_by, ["editors"]);
    }

    #[test]
    fn a_pending_member_holds_nothing_and_says_why() {
        let s = org();
        let a = ask(&s, Principal::Member("bob"), Verb::View, "Content/Sources");
        assert!(!a.allowed);
        assert!(a.reason.unwrap().contains("pending"));
    }

    /// An overdue review suspends ann's membership (not confirmed) when the
    /// Organization says Suspend: the check refuses and says why.
    #[test]
    fn a_suspended_member_holds_nothing_and_says_why() {
        use crate::model::{AccessReviewDef, OrgDef, WhenOverdue};
        let mut s = org();
        let mut o = OrgDef {
            name: "acme".into(),
            invitation_lifetime_days: 31,
            ..OrgDef::default()
        };
        o.access_reviews.when_overdue = WhenOverdue::Suspend;
        s.org = Some(o);
        let g = Arc::make_mut(s.groups.get_mut("editors").unwrap());
        g.review_every = Some("P1D".into());
        g.created = Some(Timestamp::now() - jiff::SignedDuration::from_hours(72));
        let a = ask(&s, Principal::Member("ann"), Verb::View, "Content/Sources");
        assert!(!a.allowed);
        assert!(a.reason.unwrap().contains("suspended"));
        // A review confirming her, recorded after she was invited, restores her.
        let invited = s.members["ann"].invited_at.unwrap();
        s.reviews.insert(
            "r".into(),
            Arc::new(AccessReviewDef {
                name: "r".into(),
                group: "editors".into(),
                confirmed: vec!["ann".into()],
                created: Some(invited),
                ..AccessReviewDef::default()
            }),
        );
        let a = ask(&s, Principal::Member("ann"), Verb::View, "Content/Sources");
        assert!(a.allowed);
    }

    #[test]
    fn a_refusal_names_what_is_missing() {
        let s = org();
        let a = ask(&s, Principal::ApiKey("k"), Verb::Edit, "Content/Sources");
        assert!(!a.allowed);
        assert_eq!(a.missing.len(), 1, "{a:?}");
        let ok = ask(
            &s,
            Principal::ApiKey("k"),
            Verb::View,
            "Content/Sources/jira",
        );
        assert!(ok.allowed && ok.granted_by == ["own privileges"], "{ok:?}");
    }

    #[test]
    fn a_disabled_or_expired_key_holds_nothing() {
        let mut s = org();
        Arc::make_mut(s.api_keys.get_mut("k").unwrap()).enabled = false;
        let a = ask(&s, Principal::ApiKey("k"), Verb::View, "Content/Sources");
        assert_eq!(a.reason.as_deref(), Some("the key is disabled"));
        let k = Arc::make_mut(s.api_keys.get_mut("k").unwrap());
        k.enabled = true;
        k.created = Some(Timestamp::now() - jiff::SignedDuration::from_hours(24 * 400));
        let a = ask(&s, Principal::ApiKey("k"), Verb::View, "Content/Sources");
        assert!(!a.allowed && a.reason.unwrap().contains("expired"));
    }

    #[test]
    fn an_identity_is_mapped_as_admission_maps_it() {
        let s = org();
        let ann = ask(
            &s,
            Principal::Identity {
                user: "ann",
                groups: &[],
            },
            Verb::Edit,
            "Content/Sources",
        );
        assert!(
            ann.allowed && ann.granted_by == ["editors (member ann)"],
            "{ann:?}"
        );
        let nobody = ask(
            &s,
            Principal::Identity {
                user: "eve",
                groups: &[],
            },
            Verb::View,
            "Content/Sources",
        );
        assert!(!nobody.allowed && nobody.reason.unwrap().contains("not a subject"));
    }

    #[test]
    fn targets_the_catalogue_does_not_offer_are_refused_with_a_hint() {
        let e = Need::parse(Verb::Push, "Content/Sources").unwrap_err();
        assert!(
            e.contains("does not offer Push") && e.contains("view"),
            "{e}"
        );
        assert!(Need::parse(Verb::View, "Content").is_err());
        assert!(Need::parse(Verb::View, "Nope/Sources").is_err());
    }

    fn digest(v: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(v.as_bytes()).into()
    }

    fn verify(
        s: &OrgState,
        table: &KeyTable,
        value: &str,
        ip: &str,
    ) -> Result<VerifiedKey, KeyRefusal> {
        verify_key(
            s,
            &resolve_grantees(s),
            table,
            value.as_bytes(),
            ip.parse().unwrap(),
            Timestamp::now(),
        )
    }

    #[test]
    fn a_verified_key_carries_its_search_hub_for_the_gateway() {
        let mut s = org();
        let digests = KeyDigests {
            current: Some(digest("oak_current")),
            previous: None,
        };
        let table = KeyTable::new([("k", &digests)]);
        let unbound = verify(&s, &table, "oak_current", "192.0.2.1").unwrap();
        assert_eq!(unbound.search_hub, None);
        let json = serde_json::to_value(&unbound).unwrap();
        assert!(json["searchHub"].is_null(), "{json}");
        Arc::make_mut(s.api_keys.get_mut("k").unwrap()).search_hub = Some("community".into());
        let bound = verify(&s, &table, "oak_current", "192.0.2.1").unwrap();
        assert_eq!(bound.search_hub.as_deref(), Some("community"));
        let json = serde_json::to_value(&bound).unwrap();
        assert_eq!(json["searchHub"], "community");
    }

    #[test]
    fn a_live_key_verifies_and_every_refusal_names_its_reason() {
        let mut s = org();
        let past = Timestamp::now() - jiff::SignedDuration::from_hours(1);
        let soon = Timestamp::now() + jiff::SignedDuration::from_hours(1);
        let digests = KeyDigests {
            current: Some(digest("oak_current")),
            previous: Some((digest("oak_previous"), soon)),
        };
        let table = KeyTable::new([("k", &digests)]);
        let ok = verify(&s, &table, "oak_current", "192.0.2.1").unwrap();
        assert_eq!((ok.name.as_str(), ok.previous), ("k", false));
        assert_eq!(ok.privileges.len(), 1);
        assert!(
            verify(&s, &table, "oak_previous", "192.0.2.1")
                .unwrap()
                .previous
        );
        assert_eq!(
            verify(&s, &table, "oak_wrong", "192.0.2.1"),
            Err(KeyRefusal::Unknown)
        );

        let over = KeyDigests {
            previous: Some((digest("oak_previous"), past)),
            ..digests.clone()
        };
        let table_over = KeyTable::new([("k", &over)]);
        assert_eq!(
            verify(&s, &table_over, "oak_previous", "192.0.2.1"),
            Err(KeyRefusal::PreviousPastOverlap)
        );

        let k = Arc::make_mut(s.api_keys.get_mut("k").unwrap());
        k.allowed_ips = vec!["192.0.2.0/24".into()];
        k.denied_ips = vec!["192.0.2.9".into()];
        assert!(verify(&s, &table, "oak_current", "192.0.2.1").is_ok());
        assert_eq!(
            verify(&s, &table, "oak_current", "192.0.2.9"),
            Err(KeyRefusal::AddressRefused),
            "in both lists"
        );
        assert_eq!(
            verify(&s, &table, "oak_current", "198.51.100.1"),
            Err(KeyRefusal::AddressRefused)
        );

        // An IPv4 client reported as IPv4-mapped IPv6 is the IPv4 client.
        assert!(verify(&s, &table, "oak_current", "::ffff:192.0.2.1").is_ok());
        assert_eq!(
            verify(&s, &table, "oak_current", "::ffff:192.0.2.9"),
            Err(KeyRefusal::AddressRefused)
        );

        Arc::make_mut(s.api_keys.get_mut("k").unwrap()).enabled = false;
        assert_eq!(
            verify(&s, &table, "oak_current", "192.0.2.1"),
            Err(KeyRefusal::Disabled)
        );
        let k = Arc::make_mut(s.api_keys.get_mut("k").unwrap());
        k.enabled = true;
        k.created = Some(Timestamp::now() - jiff::SignedDuration::from_hours(24 * 400));
        assert_eq!(
            verify(&s, &table, "oak_current", "192.0.2.1"),
            Err(KeyRefusal::Expired)
        );
        s.api_keys.clear();
        assert_eq!(
            verify(&s, &table, "oak_current", "192.0.2.1"),
            Err(KeyRefusal::Unknown),
            "a deleted key"
        );
    }

    /// Issue 27, path 5: IPv4-mapped IPv6 addresses are the IPv4 address they
    /// carry, whether in the client address or in a list entry.
    #[test]
    fn ipv4_mapped_addresses_are_judged_as_ipv4() {
        let s = |v: &[&str]| v.iter().map(|e| e.to_string()).collect::<Vec<_>>();
        // (allowed, denied, client, passes)
        let cases: &[(&[&str], &[&str], &str, bool)] = &[
            (&[], &["203.0.113.0/24"], "203.0.113.5", false),
            (&[], &["203.0.113.0/24"], "::ffff:203.0.113.5", false),
            (&[], &["203.0.113.0/24"], "::ffff:198.51.100.5", true),
            (&[], &["203.0.113.5"], "::ffff:203.0.113.5", false),
            (&[], &["::ffff:203.0.113.0/120"], "203.0.113.5", false),
            (
                &[],
                &["::ffff:203.0.113.0/120"],
                "::ffff:203.0.113.5",
                false,
            ),
            (&[], &["::ffff:203.0.113.5"], "203.0.113.5", false),
            (&[], &["::ffff:203.0.113.5/128"], "203.0.113.5", false),
            (&["203.0.113.0/24"], &[], "::ffff:203.0.113.5", true),
            (&["203.0.113.0/24"], &[], "::ffff:198.51.100.5", false),
            (&["::ffff:203.0.113.0/120"], &[], "203.0.113.5", true),
            (&["::ffff:203.0.113.0/120"], &[], "198.51.100.5", false),
            (&["203.0.113.5"], &[], "::ffff:203.0.113.5", true),
            (
                &["203.0.113.0/24"],
                &["::ffff:203.0.113.9"],
                "::ffff:203.0.113.9",
                false,
            ),
            // Not mapped: IPv4-compatible (::203.0.113.5) and NAT64 addresses
            // are other addresses, and a wide IPv6 range stays IPv6.
            (&[], &["203.0.113.0/24"], "::cb00:7105", true),
            (&[], &["203.0.113.0/24"], "64:ff9b::cb00:7105", true),
            // The whole mapped block is all of IPv4; `::/0` is IPv6 only, so
            // an IPv4 client gets the same answer however it is reported.
            (&[], &["::ffff:0:0/96"], "203.0.113.5", false),
            (&[], &["::/0"], "::ffff:203.0.113.5", true),
            (&[], &["0.0.0.0/0"], "::ffff:203.0.113.5", false),
            (&["2001:db8::/32"], &[], "2001:db8::1", true),
            (&[], &["2001:db8::/32"], "2001:db8::1", false),
        ];
        for (allowed, denied, client, passes) in cases {
            assert_eq!(
                address_allowed(&s(allowed), &s(denied), client.parse().unwrap()),
                *passes,
                "allowed {allowed:?}, denied {denied:?}, client {client}"
            );
        }
        assert_eq!(
            canonical_net("::ffff:203.0.113.0/120"),
            "203.0.113.0/24".parse().ok()
        );
        assert_eq!(canonical_net("not an address"), None);
    }
}
