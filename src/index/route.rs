//! Which objects a change affects: the routing of one watch event to the
//! reconciles it calls for.
//!
//! Pure: each function reads the namespace as it was before the change, the
//! object's definition before and after, and answers with the names whose
//! status may now differ. A change costs what it affects: a status write
//! (same definition before and after) affects nothing, a group edit its
//! members, the grantees its access list names and the objects that name it.

use std::collections::BTreeSet;

use crate::core::advice::Lookups;
use crate::core::effective::{Grantee, member_groups};
use crate::core::model::{
    AccessEntry, AccessReviewDef, AccessReviewsSpec, ApiKeyDef, GroupDef, IdentitySet, MemberDef,
    OrgDef, OrgResources,
};

use super::Namespace;

/// The objects of one namespace whose status a change may alter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Affected {
    pub organization: bool,
    pub groups: BTreeSet<String>,
    pub members: BTreeSet<String>,
    pub api_keys: BTreeSet<String>,
}

impl Affected {
    pub fn is_empty(&self) -> bool {
        !self.organization
            && self.groups.is_empty()
            && self.members.is_empty()
            && self.api_keys.is_empty()
    }

    pub fn extend(&mut self, other: Affected) {
        self.organization |= other.organization;
        self.groups.extend(other.groups);
        self.members.extend(other.members);
        self.api_keys.extend(other.api_keys);
    }

    /// Everything in the namespace (the organization's settings changed, or
    /// a controller starts leading).
    pub fn everything(ns: &Namespace) -> Affected {
        Affected {
            organization: true,
            groups: ns.state.groups.keys().cloned().collect(),
            members: ns.state.members.keys().cloned().collect(),
            api_keys: ns.state.api_keys.keys().cloned().collect(),
        }
    }

    /// A group and every member whose privileges come from it.
    fn group_and_members(&mut self, ns: &Namespace, group: &str) {
        self.groups.insert(group.to_string());
        let sets = ns
            .state
            .groups
            .get(group)
            .map(|g| g.identity_sets.as_slice())
            .unwrap_or_default();
        self.members.extend(ns.members_of(group, sets));
    }

    /// The grantees an access list names: their privileges include it.
    fn access(&mut self, ns: &Namespace, list: &[AccessEntry]) {
        for entry in list {
            if let Some(g) = &entry.group {
                self.group_and_members(ns, g);
            }
            if let Some(k) = &entry.api_key {
                self.api_keys.insert(k.clone());
            }
        }
    }

    /// Objects that name `group` or `api_key` (access lists, `duplicateOf`):
    /// their status reports whether it exists. Asked of the references the
    /// index keeps (`lookups.rs`), not found by a pass over every object.
    fn referrers(&mut self, ns: &Namespace, group: Option<&str>, api_key: Option<&str>) {
        let named = group
            .map(|g| Grantee::Group(g.to_string()))
            .into_iter()
            .chain(api_key.map(|k| Grantee::ApiKey(k.to_string())));
        for grantee in named {
            let (groups, api_keys) = ns.naming(&grantee);
            self.groups.extend(groups);
            self.api_keys.extend(api_keys);
        }
        if let Some(g) = group {
            self.groups.extend(ns.duplicates_of(g));
        }
    }
}

/// The organization changed. Its invitation lifetime decides members'
/// phases, its declared resources what Custom grants name and its access
/// review settings which memberships are suspended, so a change of any (or
/// its arrival or removal) concerns everyone; anything else, only itself. A status write changes nothing here and so fans out to nobody.
pub fn organization(ns: &Namespace, old: Option<&OrgDef>, new: Option<&OrgDef>) -> Affected {
    if old == new {
        return Affected::default();
    }
    fn settings(o: Option<&OrgDef>) -> Option<(&OrgResources, u32, &AccessReviewsSpec)> {
        o.map(|o| (&o.resources, o.invitation_lifetime_days, &o.access_reviews))
    }
    if settings(old) != settings(new) {
        return Affected::everything(ns);
    }
    Affected {
        organization: true,
        ..Affected::default()
    }
}

/// A group changed: itself, its members (invited, or matched by its identity
/// sets before or after), the grantees its access list names before or after,
/// the objects that name it (when it comes or goes, or its display name
/// changes, for duplicates), and the organization (its counts, its
/// administrators and its least-privilege findings).
pub fn group(ns: &Namespace, old: Option<&GroupDef>, new: Option<&GroupDef>) -> Affected {
    if old == new {
        return Affected::default();
    }
    let Some(name) = old.or(new).map(|g| g.name.as_str()) else {
        return Affected::default();
    };
    let mut out = Affected::default();
    out.groups.insert(name.to_string());
    let sets: Vec<IdentitySet> = old
        .into_iter()
        .chain(new)
        .flat_map(|g| g.identity_sets.iter().cloned())
        .collect();
    out.members.extend(ns.members_of(name, &sets));
    for g in old.into_iter().chain(new) {
        out.access(ns, &g.access);
    }
    let came_or_went = old.is_none() || new.is_none();
    if came_or_went || old.map(|g| &g.display_name) != new.map(|g| &g.display_name) {
        out.referrers(ns, Some(name), None);
    }
    // The organization: its counts and administrators, and its
    // least-privilege findings, which any group's definition can change
    // (one reconcile per namespace, however many groups changed).
    out.organization = true;
    out
}

/// A member changed: itself, the groups it is in before or after (by either
/// route; their member lists change), when it comes or goes the groups
/// naming it among their owners (their status reports whether it exists),
/// and the organization (its counts).
pub fn member(ns: &Namespace, old: Option<&MemberDef>, new: Option<&MemberDef>) -> Affected {
    if old == new {
        return Affected::default();
    }
    let mut out = Affected {
        organization: true,
        ..Affected::default()
    };
    for m in old.into_iter().chain(new) {
        out.members.insert(m.name.clone());
        out.groups
            .extend(member_groups(&ns.state, m).into_iter().map(|(g, _)| g));
    }
    let came_or_went = old.is_none() || new.is_none();
    if came_or_went && let Some(name) = old.or(new).map(|m| &m.name) {
        out.groups.extend(
            ns.state
                .groups
                .values()
                .filter(|g| g.owners.contains(name))
                .map(|g| g.name.clone()),
        );
    }
    out
}

/// An API key changed: itself, the grantees its access list names before or
/// after, when it comes or goes the objects naming it, and the organization
/// (its count and its least-privilege findings).
pub fn api_key(ns: &Namespace, old: Option<&ApiKeyDef>, new: Option<&ApiKeyDef>) -> Affected {
    if old == new {
        return Affected::default();
    }
    let Some(name) = old.or(new).map(|k| k.name.as_str()) else {
        return Affected::default();
    };
    let mut out = Affected::default();
    out.api_keys.insert(name.to_string());
    for k in old.into_iter().chain(new) {
        out.access(ns, &k.access);
    }
    if old.is_none() || new.is_none() {
        out.referrers(ns, None, Some(name));
    }
    // Its count, and its least-privilege findings (lifetime, privileges).
    out.organization = true;
    out
}

/// An access review came, went or changed: the group it reviews before or
/// after (its last review and next due date) and that group's members
/// (whether their membership is suspended). Nothing else reads a review.
pub fn access_review(
    ns: &Namespace,
    old: Option<&AccessReviewDef>,
    new: Option<&AccessReviewDef>,
) -> Affected {
    if old == new {
        return Affected::default();
    }
    let mut out = Affected::default();
    for r in old.into_iter().chain(new) {
        out.group_and_members(ns, &r.group);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::api::Group;
    use crate::index::fixtures::{fixture, names, org, yaml};

    /// The operator's own status write (same spec, status now current)
    /// affects nothing: no reconcile, no fan-out.
    #[test]
    fn a_status_write_affects_nothing() {
        let (index, mut groups, _) = fixture();
        let g = &mut groups[0];
        g.status = Some(crate::api::GroupStatus {
            observed_generation: Some(1),
            ..Default::default()
        });
        assert!(index.apply(g).is_empty());
    }

    /// An edit reaches the group, its members by either route, the grantees
    /// its access list names and the organization; nobody else.
    #[test]
    fn a_group_edit_reaches_its_members_and_grantees_only() {
        let (index, mut groups, _) = fixture();
        groups[0].spec.privileges.clear();
        let affected = index.apply(&groups[0]);
        assert_eq!(affected.groups, names(&["readers"]));
        assert_eq!(affected.members, names(&["ann"]));
        // The organization's least-privilege findings follow every group.
        assert!(affected.organization);

        // sso-ops gives readers access: editing it re-resolves readers too.
        groups[1].spec.access.clear();
        let affected = index.apply(&groups[1]);
        assert_eq!(affected.groups, names(&["readers", "sso-ops"]));
        assert_eq!(affected.members, names(&["ann", "bob"]));
    }

    /// A member change reaches its groups before and after, and the organization.
    #[test]
    fn a_member_change_reaches_its_old_and_new_groups() {
        let (index, _, mut members) = fixture();
        members[0].spec.groups = vec!["lonely".into()];
        let affected = index.apply(&members[0]);
        assert_eq!(affected.members, names(&["ann"]));
        assert_eq!(affected.groups, names(&["lonely", "readers"]));
        assert!(affected.organization);
        // The invitation index follows.
        assert_eq!(
            index.namespace("a").members_of("readers", &[]),
            BTreeSet::new()
        );
        assert_eq!(
            index.namespace("a").members_of("lonely", &[]),
            names(&["ann"])
        );
    }

    /// A new group reaches those invited to it before it existed, and the
    /// objects naming it; deleting it, the same.
    #[test]
    fn a_group_coming_or_going_reaches_who_names_it() {
        let (index, groups, mut members) = fixture();
        members[2].spec.groups = vec!["later".into()];
        index.apply(&members[2]);
        let later: Group = yaml("metadata: {name: later, generation: 1}\nspec: {}");
        let affected = index.apply(&later);
        assert_eq!(affected.members, names(&["cy"]));
        assert!(affected.organization);
        // A duplicate records its source: its status reports the source missing.
        let copy: Group =
            yaml("metadata: {name: readers-copy, generation: 1}\nspec: {duplicateOf: readers}");
        index.apply(&copy);
        let affected = index.delete(&groups[0]);
        // sso-ops's access list names readers: its status reports it missing.
        assert!(affected.groups.contains("sso-ops"));
        assert!(affected.groups.contains("readers-copy"), "{affected:?}");
        assert_eq!(affected.members, names(&["ann"]));
    }

    /// A Member coming or going reaches the groups naming it as an owner
    /// (their ResolvedRefs); an AccessReview reaches its group and the
    /// group's members, nobody else.
    #[test]
    fn owners_and_reviews_reach_their_groups() {
        let (index, mut groups, _) = fixture();
        groups[1].spec.owners = vec!["dora".into()];
        index.apply(&groups[1]);
        let dora: crate::api::Member = yaml(
            "metadata: {name: dora, generation: 1}\nspec: {identity: {provider: Email, username: dora@example.com}}",
        );
        let affected = index.apply(&dora);
        assert!(affected.groups.contains("sso-ops"), "{affected:?}");
        let affected = index.delete(&dora);
        assert!(affected.groups.contains("sso-ops"), "{affected:?}");
        let review: crate::api::AccessReview =
            yaml("metadata: {name: q1, generation: 1}\nspec: {group: readers, confirmed: [ann]}");
        let affected = index.apply(&review);
        assert_eq!(affected.groups, names(&["readers"]));
        assert_eq!(affected.members, names(&["ann"]));
        assert!(!affected.organization);
        // A record nothing reconciles: the same review again affects nothing.
        assert!(index.apply(&review).is_empty());
    }

    /// The organization's status write touches nobody; its invitation
    /// lifetime touches everyone.
    #[test]
    fn organization_settings_fan_out_its_status_does_not() {
        let (index, _, _) = fixture();
        let mut o = org("a");
        o.status = Some(Default::default());
        assert!(index.apply(&o).is_empty());
        o.spec.invitation_lifetime_days = 7;
        let affected = index.apply(&o);
        assert_eq!(affected.members, names(&["ann", "bob", "cy"]));
        assert_eq!(affected.groups.len(), 3);
    }
}
