//! ForeignBindings: a trusted principal's change grants nobody anything
//! through a binding an untrusted requester set (the second-order
//! invariant, docs/security.md).

use super::{Change, Object, Rule, Violation, violation};
use crate::bindings;
use crate::effective::{Grantee, Grantees};
use crate::model::OrgState;

/// ForeignBindings: a trusted principal's change makes no member or API key
/// hold more through a binding an untrusted requester set (recorded in
/// `orgaccess.dev/bound-by`): such a binding counts as set by them, whoever
/// writes the object later. A GitOps apply keeps the fields its manifest does
/// not name; this is the seam it closes (docs/security.md, "Over two steps").
pub fn foreign_bindings(state: &OrgState, grantees: &Grantees, change: &Change) -> Vec<Violation> {
    let new_recorded = change.new.is_some_and(|n| !n.meta().bound_by.is_empty());
    if !new_recorded && !bindings::any_recorded(state) {
        return Vec::new();
    }
    let mut after = state.clone();
    match (change.old.or(change.new), change.new) {
        (Some(Object::Group(_)), Some(Object::Group(g))) => {
            after.groups.insert(change.name.into(), g.clone());
        }
        (Some(Object::Group(_)), None) => {
            after.groups.remove(change.name);
        }
        (Some(Object::Member(_)), Some(Object::Member(m))) => {
            after.members.insert(change.name.into(), m.clone());
        }
        (Some(Object::Member(_)), None) => {
            after.members.remove(change.name);
        }
        (Some(Object::ApiKey(_)), Some(Object::ApiKey(k))) => {
            after.api_keys.insert(change.name.into(), k.clone());
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
    bindings::foreign_growth(state, grantees, &after, &grantees_after)
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

    #[test]
    fn table() {
        // `viewers` matches SSO group `everyone` (sam's) by an identity set
        // the tenant gm set.
        let mut s = org();
        let viewers = s.groups.get_mut("viewers").expect("viewers");
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
            MemberDef {
                identity: MemberIdentity {
                    provider: Provider::SingleSignOn,
                    username: "sam".into(),
                },
                sso_groups: vec!["everyone".into()],
                ..member("sam", &[])
            },
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
