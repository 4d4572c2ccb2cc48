//! What a change does to access: two organization states side by side.
//!
//! [`diff`] compares a base state (the main branch, the cluster) with a head
//! state (a pull request's manifests) and answers what a reviewer of the YAML
//! cannot see: for every principal — member, API key, and the Kubernetes
//! identities members map — the privileges gained and lost, each with what
//! causes it (a group, a template, `spec.privileges`, an access-list entry);
//! who becomes an administrator or holds everything an administrator holds;
//! keys that become live, can be public, or live longer; and the advisor's
//! findings that appear or go away.
//!
//! Every fact is read from the same functions status, `explain` and the
//! advisor use ([`member_effective`], [`resolve_grantees`],
//! [`grantee_provenance`], [`Standing`], [`advice::review`]), at one instant,
//! so the head side of a member's change is what the controller would write
//! in that member's status. The anchors: Terraform's plan (a change shown as
//! its effect before it is applied) and IAM Access Analyzer's "no new access"
//! check (docs/diff.md).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use crate::advice::{self, Finding, Severity};
use crate::apikey::Standing;
use crate::builtin::{BuiltinGroup, Privacy};
use crate::catalog::{self, DomainId};
use crate::effective::{
    Grantee, Grantees, grantee_provenance, group_members, maps_identity, member_effective,
    resolve_grantees,
};
use crate::model::{OrgState, Subject, SubjectKind};
use crate::privilege::{PrivilegeSet, PrivilegeSpec, grant_to_spec};

/// Who holds privileges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PrincipalKind {
    Member,
    ApiKey,
    /// A Kubernetes user, group or service account that members list as a
    /// subject: it acts (through admission and `can-i --as`) with the merged
    /// privileges of the members that map it.
    Identity,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Member => "Member",
            PrincipalKind::ApiKey => "ApiKey",
            PrincipalKind::Identity => "Identity",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The object's name; for an identity, `User NAME`, `Group NAME` or
    /// `ServiceAccount NS/NAME`.
    pub name: String,
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            PrincipalKind::Identity => write!(f, "Identity {}", self.name),
            k => write!(f, "{}/{}", k.as_str(), self.name),
        }
    }
}

/// Which way one domain's grant moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// The head holds more and nothing less.
    Gained,
    /// The head holds less and nothing more.
    Lost,
    /// Some of both (e.g. Edit on one source traded for another).
    Changed,
}

/// One domain of one principal's privileges, before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivilegeChange {
    pub service: catalog::Service,
    pub domain: String,
    pub direction: Direction,
    /// The domain's grant at the base; `None` when none.
    pub before: Option<PrivilegeSpec>,
    /// The domain's grant at the head; `None` when none.
    pub after: Option<PrivilegeSpec>,
    /// What the head holds that the base did not (exactly the missing part).
    pub gained: Option<PrivilegeSpec>,
    /// What the base held that the head does not.
    pub lost: Option<PrivilegeSpec>,
    /// What grants the head's grant (for a gain, its cause).
    pub granted_by: Vec<String>,
    /// What granted the base's grant (for a loss, what was taken away).
    pub was_granted_by: Vec<String>,
}

/// One principal whose privileges moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalDiff {
    pub principal: Principal,
    /// Present at the base / at the head (a new member is absent at the base).
    pub in_base: bool,
    pub in_head: bool,
    pub changes: Vec<PrivilegeChange>,
}

impl PrincipalDiff {
    pub fn gains(&self) -> bool {
        self.changes.iter().any(|c| c.gained.is_some())
    }
}

/// Something a reviewer must not miss.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Notice {
    /// Active in the Administrators group at the head, not at the base.
    #[serde(rename_all = "camelCase")]
    NewAdministrator { principal: Principal },
    /// Holds everything the Administrators group holds, through other
    /// groups, at the head and not at the base (nor an administrator there).
    #[serde(rename_all = "camelCase")]
    NewAdministratorEquivalent { principal: Principal },
    /// An administrator (or equivalent) at the base, neither at the head.
    #[serde(rename_all = "camelCase")]
    NoLongerAdministrator { principal: Principal },
    /// Usable at the head (enabled, not expired), not at the base.
    #[serde(rename_all = "camelCase")]
    KeyBecomesLive { key: String },
    /// Made from a template whose keys may be exposed publicly, at the head
    /// and not at the base.
    #[serde(rename_all = "camelCase")]
    KeyCanBePublic { key: String, template: String },
    /// Expires later at the head than at the base: a longer lifetime, or
    /// `spec.lifetime` removed (the key then lives its template's cap).
    #[serde(rename_all = "camelCase")]
    KeyExpiresLater {
        key: String,
        before: Timestamp,
        after: Timestamp,
        lifetime_removed: bool,
    },
    /// Bound to a search hub at the base, and to none or another at the
    /// head: its queries reach hubs they could not (`spec.searchHub`).
    #[serde(rename_all = "camelCase")]
    KeyLeavesSearchHub {
        key: String,
        before: String,
        after: Option<String>,
    },
}

impl Notice {
    pub fn is_new_administrator(&self) -> bool {
        matches!(
            self,
            Notice::NewAdministrator { .. } | Notice::NewAdministratorEquivalent { .. }
        )
    }

    /// One line a person reads.
    pub fn message(&self) -> String {
        match self {
            Notice::NewAdministrator { principal } => {
                format!("{principal} becomes an administrator (member of Administrators)")
            }
            Notice::NewAdministratorEquivalent { principal } => format!(
                "{principal} becomes administrator-equivalent: holds everything Administrators holds, through other groups"
            ),
            Notice::NoLongerAdministrator { principal } => {
                format!("{principal} is no longer an administrator")
            }
            Notice::KeyBecomesLive { key } => {
                format!("ApiKey/{key} becomes live (enabled and not expired)")
            }
            Notice::KeyCanBePublic { key, template } => {
                format!("ApiKey/{key} can be public (template {template})")
            }
            Notice::KeyExpiresLater {
                key,
                before,
                after,
                lifetime_removed,
            } => {
                let why = if *lifetime_removed {
                    "; spec.lifetime removed, it lives its template's cap"
                } else {
                    ""
                };
                format!("ApiKey/{key} expires later: {before} → {after}{why}")
            }
            Notice::KeyLeavesSearchHub { key, before, after } => match after {
                Some(after) => format!(
                    "ApiKey/{key} moves from search hub '{before}' to '{after}': its queries reach another hub"
                ),
                None => format!(
                    "ApiKey/{key} leaves search hub '{before}': its queries reach every hub"
                ),
            },
        }
    }
}

/// Advisor findings at the base and the head, by id and objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingsDiff {
    pub appeared: Vec<Finding>,
    pub resolved: Vec<Finding>,
}

/// What the head does to access, relative to the base.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessDiff {
    /// Principals whose privileges moved, by kind then name.
    pub principals: Vec<PrincipalDiff>,
    pub notices: Vec<Notice>,
    pub findings: FindingsDiff,
}

/// A reason to fail a pipeline (`orgaccess diff --fail-on`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Concern {
    /// Someone becomes an administrator or administrator-equivalent.
    NewAdministrator,
    /// Any principal gains any privilege.
    Gain,
    /// A key becomes able to be public, becomes live, or lives longer.
    KeyExposure,
    /// A new advisor finding of severity critical.
    Critical,
    /// A new advisor finding of severity warning or above.
    Warning,
}

impl AccessDiff {
    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
            && self.notices.is_empty()
            && self.findings.appeared.is_empty()
            && self.findings.resolved.is_empty()
    }

    /// The concerns this diff raises.
    pub fn concerns(&self) -> BTreeSet<Concern> {
        let mut out = BTreeSet::new();
        if self.notices.iter().any(Notice::is_new_administrator) {
            out.insert(Concern::NewAdministrator);
        }
        if self.principals.iter().any(PrincipalDiff::gains) {
            out.insert(Concern::Gain);
        }
        if self.notices.iter().any(|n| {
            matches!(
                n,
                Notice::KeyBecomesLive { .. }
                    | Notice::KeyCanBePublic { .. }
                    | Notice::KeyExpiresLater { .. }
                    | Notice::KeyLeavesSearchHub { .. }
            )
        }) {
            out.insert(Concern::KeyExposure);
        }
        for f in &self.findings.appeared {
            if f.severity >= Severity::Warning {
                out.insert(Concern::Warning);
            }
            if f.severity >= Severity::Critical {
                out.insert(Concern::Critical);
            }
        }
        out
    }
}

/// Everything [`diff`] reads from one state.
struct Side {
    /// Each principal's privileges and, per domain, what grants them.
    principals: BTreeMap<Principal, (PrivilegeSet, BTreeMap<DomainId, Vec<String>>)>,
    administrators: BTreeSet<Principal>,
    equivalents: BTreeSet<Principal>,
    findings: Vec<Finding>,
}

fn subject_name(s: &Subject) -> String {
    match s.kind {
        SubjectKind::User => format!("User {}", s.name),
        SubjectKind::Group => format!("Group {}", s.name),
        SubjectKind::ServiceAccount => format!(
            "ServiceAccount {}/{}",
            s.namespace.as_deref().unwrap_or_default(),
            s.name
        ),
    }
}

fn domain_of(spec: &PrivilegeSpec) -> Option<DomainId> {
    catalog::lookup(spec.service, &spec.domain)
}

fn read(state: &OrgState, now: Timestamp) -> Side {
    let grantees: Grantees = resolve_grantees(state);
    let admins_group = BuiltinGroup::Administrators.object_name();
    let admin_set = grantees.groups.get(admins_group).filter(|s| !s.is_empty());
    let (admins, _) = group_members(
        state,
        &grantees,
        state.members.values().map(Arc::as_ref),
        admins_group,
        now,
    );
    let admins: BTreeSet<String> = admins.into_iter().collect();
    let mut side = Side {
        principals: BTreeMap::new(),
        administrators: BTreeSet::new(),
        equivalents: BTreeSet::new(),
        findings: advice::review(state, &grantees, &state.advice_settings(), now),
    };
    // Members, and the identities they map (merged over the members).
    let mut identities: BTreeMap<String, (Subject, Vec<String>)> = BTreeMap::new();
    for m in state.members.values() {
        let eff = member_effective(state, &grantees, m, now);
        let causes: BTreeMap<DomainId, Vec<String>> = eff
            .provenance(&grantees)
            .into_iter()
            .filter_map(|(spec, from)| {
                let from = from.into_iter().map(|g| format!("Group {g}")).collect();
                domain_of(&spec).map(|d| (d, from))
            })
            .collect();
        let p = Principal {
            kind: PrincipalKind::Member,
            name: m.name.clone(),
        };
        if admins.contains(&m.name) {
            side.administrators.insert(p.clone());
        } else if admin_set.is_some_and(|a| eff.privileges.covers(a)) {
            side.equivalents.insert(p.clone());
        }
        side.principals.insert(p, (eff.privileges, causes));
        for s in &m.subjects {
            if s.class_of_identities().is_none() {
                let e = identities
                    .entry(subject_name(s))
                    .or_insert_with(|| (s.clone(), Vec::new()));
                e.1.push(m.name.clone());
            }
        }
    }
    for (name, (subject, _)) in identities {
        // The identity as the apiserver would present it, mapped the way
        // admission maps a requester (`maps_identity`).
        let (user, groups) = match subject.username() {
            Some(user) => (user, Vec::new()),
            None => (String::new(), vec![subject.name.clone()]),
        };
        let mut set = PrivilegeSet::new();
        let mut causes: BTreeMap<DomainId, Vec<String>> = BTreeMap::new();
        let mut is_admin = false;
        for m in state
            .members
            .values()
            .filter(|m| maps_identity(m, &user, &groups))
        {
            let mp = Principal {
                kind: PrincipalKind::Member,
                name: m.name.clone(),
            };
            is_admin |= side.administrators.contains(&mp);
            if let Some((mset, _)) = side.principals.get(&mp) {
                set.merge_in(mset);
                for (d, _) in mset.iter() {
                    causes
                        .entry(d)
                        .or_default()
                        .push(format!("Member {}", m.name));
                }
            }
        }
        let p = Principal {
            kind: PrincipalKind::Identity,
            name,
        };
        if is_admin {
            side.administrators.insert(p.clone());
        } else if admin_set.is_some_and(|a| set.covers(a)) {
            side.equivalents.insert(p.clone());
        }
        side.principals.insert(p, (set, causes));
    }
    for k in state.api_keys.values() {
        let set = grantees.api_keys.get(&k.name).cloned().unwrap_or_default();
        let template = k.template.map(|t| (format!("{t:?}"), t.privileges()));
        let causes = grantee_provenance(
            state,
            &Grantee::ApiKey(k.name.clone()),
            template.as_ref(),
            &k.privileges,
            &set,
        )
        .into_iter()
        .filter_map(|(spec, from)| domain_of(&spec).map(|d| (d, from)))
        .collect();
        side.principals.insert(
            Principal {
                kind: PrincipalKind::ApiKey,
                name: k.name.clone(),
            },
            (set, causes),
        );
    }
    side
}

fn one(d: DomainId, set: &PrivilegeSet) -> Option<PrivilegeSpec> {
    set.get(d)
        .filter(|g| !g.is_empty())
        .map(|g| grant_to_spec(d, g))
}

fn principal_changes(
    before: Option<&(PrivilegeSet, BTreeMap<DomainId, Vec<String>>)>,
    after: Option<&(PrivilegeSet, BTreeMap<DomainId, Vec<String>>)>,
) -> Vec<PrivilegeChange> {
    let empty = (PrivilegeSet::new(), BTreeMap::new());
    let (b, bc) = before.unwrap_or(&empty);
    let (a, ac) = after.unwrap_or(&empty);
    let domains: BTreeSet<DomainId> = b.iter().chain(a.iter()).map(|(d, _)| d).collect();
    let gained_all = b.missing(a);
    let lost_all = a.missing(b);
    let mut out = Vec::new();
    for d in domains {
        let gained = one(d, &gained_all);
        let lost = one(d, &lost_all);
        let direction = match (&gained, &lost) {
            (None, None) => continue,
            (Some(_), None) => Direction::Gained,
            (None, Some(_)) => Direction::Lost,
            (Some(_), Some(_)) => Direction::Changed,
        };
        let meta = catalog::domain(d);
        out.push(PrivilegeChange {
            service: meta.service,
            domain: meta.name.to_string(),
            direction,
            before: one(d, b),
            after: one(d, a),
            gained,
            lost,
            granted_by: ac.get(&d).cloned().unwrap_or_default(),
            was_granted_by: bc.get(&d).cloned().unwrap_or_default(),
        });
    }
    out
}

fn key_notices(base: &OrgState, head: &OrgState, now: Timestamp, out: &mut Vec<Notice>) {
    let custom = crate::builtin::ApiKeyTemplate::Custom;
    for (name, k) in &head.api_keys {
        let old = base.api_keys.get(name);
        // A manifest has no creation time; applied over a stored key it
        // keeps the stored one, so the head's key counts from there.
        let mut k = crate::model::ApiKeyDef::clone(k);
        if k.created.is_none() {
            k.created = old.and_then(|o| o.created);
        }
        let standing = Standing::of(&k, now);
        let was = old.map(|o| Standing::of(o, now));
        if standing.is_live() && !was.as_ref().is_some_and(Standing::is_live) {
            out.push(Notice::KeyBecomesLive { key: name.clone() });
        }
        let template = k.template.unwrap_or(custom);
        let was_public =
            old.is_some_and(|o| o.template.unwrap_or(custom).privacy() == Privacy::CanBePublic);
        if template.privacy() == Privacy::CanBePublic && !was_public {
            out.push(Notice::KeyCanBePublic {
                key: name.clone(),
                template: format!("{template:?}"),
            });
        }
        if let (Some(was), Some(old)) = (was, old)
            && standing.expires > was.expires
        {
            out.push(Notice::KeyExpiresLater {
                key: name.clone(),
                before: was.expires,
                after: standing.expires,
                lifetime_removed: old.lifetime.is_some() && k.lifetime.is_none(),
            });
        }
        if let Some(before) = old.and_then(|o| o.search_hub.as_ref())
            && k.search_hub.as_ref() != Some(before)
        {
            out.push(Notice::KeyLeavesSearchHub {
                key: name.clone(),
                before: before.clone(),
                after: k.search_hub.clone(),
            });
        }
    }
}

fn finding_key(f: &Finding) -> (&'static str, &[String], &str) {
    (f.id, &f.objects, &f.message)
}

/// What `head` does to access relative to `base`, at `now`.
pub fn diff(base: &OrgState, head: &OrgState, now: Timestamp) -> AccessDiff {
    let b = read(base, now);
    let h = read(head, now);
    let names: BTreeSet<&Principal> = b.principals.keys().chain(h.principals.keys()).collect();
    let principals = names
        .into_iter()
        .filter_map(|p| {
            let changes = principal_changes(b.principals.get(p), h.principals.get(p));
            (!changes.is_empty()).then(|| PrincipalDiff {
                principal: p.clone(),
                in_base: b.principals.contains_key(p),
                in_head: h.principals.contains_key(p),
                changes,
            })
        })
        .collect();
    let mut notices = Vec::new();
    for p in &h.administrators {
        if !b.administrators.contains(p) {
            notices.push(Notice::NewAdministrator {
                principal: p.clone(),
            });
        }
    }
    for p in &h.equivalents {
        if !b.administrators.contains(p) && !b.equivalents.contains(p) {
            notices.push(Notice::NewAdministratorEquivalent {
                principal: p.clone(),
            });
        }
    }
    for p in b.administrators.iter().chain(&b.equivalents) {
        if !h.administrators.contains(p) && !h.equivalents.contains(p) {
            notices.push(Notice::NoLongerAdministrator {
                principal: p.clone(),
            });
        }
    }
    key_notices(base, head, now, &mut notices);
    notices.sort();
    let base_keys: BTreeSet<_> = b.findings.iter().map(finding_key).collect();
    let head_keys: BTreeSet<_> = h.findings.iter().map(finding_key).collect();
    let findings = FindingsDiff {
        appeared: h
            .findings
            .iter()
            .filter(|f| !base_keys.contains(&finding_key(f)))
            .cloned()
            .collect(),
        resolved: b
            .findings
            .iter()
            .filter(|f| !head_keys.contains(&finding_key(f)))
            .cloned()
            .collect(),
    };
    AccessDiff {
        principals,
        notices,
        findings,
    }
}

/// A principal's privileges at the base with the diff's head side put in:
/// every changed domain replaced by its `after`. Equal to the principal's
/// privileges at the head (the property tests assert it).
pub fn apply(base: &PrivilegeSet, changes: &[PrivilegeChange]) -> PrivilegeSet {
    let mut out = PrivilegeSet::new();
    let changed: BTreeSet<DomainId> = changes
        .iter()
        .filter_map(|c| catalog::lookup(c.service, &c.domain))
        .collect();
    for (d, g) in base.iter() {
        if !changed.contains(&d) {
            out.set(d, g.clone());
        }
    }
    for c in changes {
        if let Some(after) = &c.after
            && let Ok((d, g)) = crate::privilege::parse(after)
        {
            out.set(d, g);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ApiKeyDef, GroupDef, MemberDef};

    fn now() -> Timestamp {
        "2026-12-07T00:00:00Z".parse().unwrap()
    }

    fn state() -> OrgState {
        let mut s = OrgState::default();
        for b in BuiltinGroup::ALL {
            let g = GroupDef::seeded(b);
            s.groups.insert(g.name.clone(), Arc::new(g));
        }
        s.members.insert(
            "ann".into(),
            Arc::new(MemberDef {
                name: "ann".into(),
                accepted: true,
                ..MemberDef::default()
            }),
        );
        s
    }

    #[test]
    fn a_key_leaving_its_search_hub_is_a_key_exposure() {
        let mut base = state();
        base.api_keys.insert(
            "search".into(),
            Arc::new(ApiKeyDef {
                name: "search".into(),
                enabled: true,
                template: Some(crate::builtin::ApiKeyTemplate::AnonymousSearch),
                search_hub: Some("community".into()),
                created: Some(now()),
                ..ApiKeyDef::default()
            }),
        );
        let mut head = base.clone();
        Arc::make_mut(head.api_keys.get_mut("search").unwrap()).search_hub = None;
        let d = diff(&base, &head, now());
        assert_eq!(
            d.notices,
            vec![Notice::KeyLeavesSearchHub {
                key: "search".into(),
                before: "community".into(),
                after: None,
            }]
        );
        assert!(d.concerns().contains(&Concern::KeyExposure));
        // Binding a key narrows it: nothing to notice.
        assert!(diff(&head, &base, now()).notices.is_empty());
    }

    #[test]
    fn a_state_against_itself_is_empty() {
        let s = state();
        assert!(diff(&s, &s, now()).is_empty());
    }

    #[test]
    fn joining_administrators_is_a_new_administrator_with_its_cause() {
        let base = state();
        let mut head = base.clone();
        let admins = BuiltinGroup::Administrators.object_name().to_string();
        Arc::make_mut(head.members.get_mut("ann").unwrap())
            .groups
            .push(admins.clone());
        let d = diff(&base, &head, now());
        let ann = Principal {
            kind: PrincipalKind::Member,
            name: "ann".into(),
        };
        assert!(d.notices.contains(&Notice::NewAdministrator {
            principal: ann.clone()
        }));
        assert!(d.concerns().contains(&Concern::NewAdministrator));
        let pd = d.principals.iter().find(|p| p.principal == ann).unwrap();
        assert!(!pd.changes.is_empty());
        assert!(
            pd.changes.iter().all(|c| c.direction == Direction::Gained
                && c.granted_by == vec![format!("Group {admins}")])
        );
        // And back: a loss, and no longer an administrator.
        let back = diff(&head, &base, now());
        assert!(
            back.notices
                .contains(&Notice::NoLongerAdministrator { principal: ann })
        );
        assert!(!back.concerns().contains(&Concern::Gain));
    }
}
