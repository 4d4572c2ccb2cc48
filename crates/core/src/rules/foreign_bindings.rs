//! ForeignBindings: a trusted principal's change grants nobody anything
//! through a binding an untrusted requester set (the second-order
//! invariant, docs/security.md).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Change, Object, Rule, Violation, violation};
use crate::bindings::{self, Recorded};
use crate::effective::{Grantee, Grantees, changed_by};
use crate::model::{AccessEntry, IdentitySet, OrgState};

/// ForeignBindings: a trusted principal's change makes no member or API key
/// hold more through a binding an untrusted requester set (recorded in
/// `orgaccess.dev/bound-by`): such a binding counts as set by them, whoever
/// writes the object later. A GitOps apply keeps the fields its manifest does
/// not name; this is the seam it closes (docs/security.md, "Over two steps").
pub fn foreign_bindings(state: &OrgState, grantees: &Grantees, change: &Change) -> Vec<Violation> {
    foreign_bindings_counted(state, grantees, change, Recorded::of(state))
}

/// [`foreign_bindings`], given `recorded`, the count of `state`'s records
/// ([`Recorded::of`] of it; the webhook's index keeps it, so a request
/// that finds none does not scan the organization).
pub fn foreign_bindings_counted(
    state: &OrgState,
    grantees: &Grantees,
    change: &Change,
    recorded: Recorded,
) -> Vec<Violation> {
    let new_recorded = change.new.is_some_and(|n| !n.meta().bound_by.is_empty());
    if !new_recorded && !recorded.any() {
        return Vec::new();
    }
    // The state after the change, holding of the members only those whose
    // holdings can differ (`who_can_gain`): copying every member of a large
    // organization per request cost more than the rest of the judgement.
    let members = who_can_gain(state, change);
    // Nobody to look at: no member can hold more, and no API key carries a
    // record (the keys are all looked at).
    let keys_recorded = recorded.api_keys > 0
        || matches!(change.new, Some(Object::ApiKey(k)) if !k.meta.bound_by.is_empty());
    if members.as_ref().is_some_and(BTreeSet::is_empty) && !keys_recorded {
        return Vec::new();
    }
    let mut after = OrgState {
        org: state.org.clone(),
        groups: state.groups.clone(),
        api_keys: state.api_keys.clone(),
        members: match &members {
            Some(names) => names
                .iter()
                .filter_map(|n| state.members.get_key_value(n))
                .map(|(n, m)| (n.clone(), m.clone()))
                .collect(),
            None => state.members.clone(),
        },
        reviews: BTreeMap::new(),
    };
    match (change.old.or(change.new), change.new) {
        (Some(Object::Group(_)), Some(Object::Group(g))) => {
            after.groups.insert(change.name.into(), Arc::new(g.clone()));
        }
        (Some(Object::Group(_)), None) => {
            after.groups.remove(change.name);
        }
        (Some(Object::Member(_)), Some(Object::Member(m))) => {
            after
                .members
                .insert(change.name.into(), Arc::new(m.clone()));
        }
        (Some(Object::Member(_)), None) => {
            after.members.remove(change.name);
        }
        (Some(Object::ApiKey(_)), Some(Object::ApiKey(k))) => {
            after
                .api_keys
                .insert(change.name.into(), Arc::new(k.clone()));
        }
        (Some(Object::ApiKey(_)), None) => {
            after.api_keys.remove(change.name);
        }
        // The Organization's settings change no holdings of accepted members.
        _ => {}
    }
    let grantees_after = match change.old.or(change.new) {
        Some(Object::Group(_)) => {
            grantees.after_change(state, &after, Grantee::Group(change.name.into()))
        }
        Some(Object::ApiKey(_)) => {
            grantees.after_change(state, &after, Grantee::ApiKey(change.name.into()))
        }
        _ => grantees.clone(),
    };
    bindings::foreign_growth_among(state, grantees, &after, &grantees_after, members.as_ref())
        .into_iter()
        .map(|f| {
            let how: Vec<String> = f
                .bindings
                .iter()
                .map(|(object, key, who)| format!("{object} {} set by '{who}'", describe_binding(key)))
                .collect();
            violation(
                Rule::ForeignBindings,
                format!("metadata.annotations[{}]", bindings::ANNOTATION),
                format!(
                    "this change would give {} {} through bindings a trusted change did not set: {}. \
                     Those count as set by their setter, who cannot grant this. Take them over by naming them in your manifest \
                     (client-side apply, or server-side apply with --force-conflicts), or vouch for them as a trusted principal by \
                     removing them from the annotation ({}); or remove them",
                    f.principal,
                    f.gained,
                    how.join(", "),
                    bindings::ANNOTATION,
                ),
            )
        })
        .collect()
}

/// The members whose holdings (`bindings::foreign_growth`: an accepted
/// member's groups' privileges) can differ between `before` and the state
/// `change` alone makes of it; `None`: any member's. A member's holdings
/// read its own definition, the groups it is in (invited, or matched by an
/// identity set) and those groups' privileges, which a group's or API key's
/// change alters for itself and the grantees its access list names
/// ([`changed_by`]). So: a Member, itself; a Group, its members before and
/// after and the members of the groups its access list names before or
/// after; an API key, the members of the groups its access list names.
/// Found by a scan of memberships, without computing anyone's privileges.
pub fn who_can_gain(before: &OrgState, change: &Change) -> Option<BTreeSet<String>> {
    let name = change.name;
    let access = |o: Option<Object>| -> Vec<AccessEntry> {
        match o {
            Some(Object::Group(g)) => g.access.clone(),
            Some(Object::ApiKey(k)) => k.access.clone(),
            _ => Vec::new(),
        }
    };
    let itself = match change.old.or(change.new)? {
        Object::Member(_) => return Some([name.to_string()].into()),
        Object::Group(_) => Grantee::Group(name.to_string()),
        Object::ApiKey(_) => Grantee::ApiKey(name.to_string()),
        Object::Organization(_) | Object::AccessReview(_) => return None,
    };
    // Members are the same before and after a group's or key's change; of
    // the groups, only the changed one's identity sets can differ.
    let changed_group = match change.new {
        Some(Object::Group(g)) => Some(g),
        _ => None,
    };
    let groups: BTreeSet<String> = changed_by(itself, &access(change.old), &access(change.new))
        .into_iter()
        .filter_map(|g| match g {
            Grantee::Group(g) => Some(g),
            Grantee::ApiKey(_) => None,
        })
        .collect();
    // A member is in one of them by invitation, or matched by an identity
    // set one of them has before or after: the sets gathered once, not
    // looked up per member.
    let mut sets: Vec<&IdentitySet> = groups
        .iter()
        .filter_map(|g| before.groups.get(g))
        .flat_map(|g| &g.identity_sets)
        .collect();
    sets.extend(changed_group.into_iter().flat_map(|g| &g.identity_sets));
    let out = before
        .members
        .values()
        .filter(|m| {
            m.groups.iter().any(|g| groups.contains(g)) || sets.iter().any(|s| s.matches(m))
        })
        .map(|m| m.name.clone())
        .collect();
    Some(out)
}

fn describe_binding(key: &str) -> String {
    match key.strip_prefix(bindings::INVITATION) {
        Some(g) => format!("invitation to group '{g}' (spec.groups)"),
        None if key == bindings::UNREADABLE => "bindings (an unreadable record)".into(),
        None => format!("spec.{key}"),
    }
}

#[cfg(test)]
mod cases {
    use crate::bindings::IDENTITY_SETS;
    use crate::model::{GroupDef, IdentitySet, MemberDef, MemberIdentity, Provider};
    use crate::privilege::AccessLevel::Edit;
    use crate::rules::Rule::ForeignBindings;
    use crate::rules::check;
    use crate::rules::table::{Def, Verdict::*, Who::*, member, org, privilege, run_in, update};
    use std::sync::Arc;

    #[test]
    fn table() {
        // `viewers` matches SSO group `everyone` (sam's) by an identity set
        // the tenant gm set.
        let mut s = org();
        let viewers = Arc::make_mut(s.groups.get_mut("viewers").expect("viewers"));
        viewers.identity_sets.push(IdentitySet {
            open_id_domain: None,
            sso_group: Some("everyone".into()),
            salesforce_profile: None,
        });
        viewers
            .meta
            .bound_by
            .insert(IDENTITY_SETS.into(), "gm".into());
        let viewers = viewers.clone();
        s.members.insert(
            "sam".into(),
            Arc::new(MemberDef {
                identity: MemberIdentity {
                    provider: Provider::SingleSignOn,
                    username: "sam".into(),
                },
                sso_groups: vec!["everyone".into()],
                ..member("sam", &[])
            }),
        );
        let widened = GroupDef {
            privileges: [
                viewers.privileges.clone(),
                vec![privilege("Content", "Sources", Edit)],
            ]
            .concat(),
            ..viewers.clone()
        };
        let mut vouched = widened.clone();
        vouched.meta.bound_by.clear();
        let renamed = GroupDef {
            display_name: Some("Viewers".into()),
            ..viewers.clone()
        };
        let updated = |new: &GroupDef| update(Def::Group(viewers.clone()), Def::Group(new.clone()));
        run_in(
            s,
            vec![
                (
                    "a trusted grant reaching sam through the tenant's identity set is refused",
                    Trusted,
                    updated(&widened),
                    Refused(ForeignBindings),
                ),
                (
                    "dropping the tenant's entry vouches for the identity set",
                    Trusted,
                    updated(&vouched),
                    Admitted,
                ),
                (
                    "a trusted change that grants nobody more is admitted",
                    Trusted,
                    updated(&renamed),
                    Admitted,
                ),
            ],
            check,
        );
    }
}
