//! RequiredPrivileges, metadata: an untrusted requester adds no owner
//! reference and no finalizer to the organization's objects.

use super::{Change, Requester, Rule, Violation, violation};
use crate::model::Meta;

/// RequiredPrivileges, metadata: untrusted requesters may not add owner references or
/// finalizers to the organization's objects. An owner reference hands the
/// object's deletion to the garbage collector (a trusted principal), and a
/// finalizer keeps a deleted object, and a revoked member's mapping, alive.
pub fn guarded_metadata(change: &Change, requester: &Requester) -> Vec<Violation> {
    if requester.is_trusted() {
        return Vec::new();
    }
    let Some(new) = change.new.map(|o| o.meta()) else {
        return Vec::new();
    };
    let none = Meta::default();
    let old = change.old.map_or(&none, |o| o.meta());
    let mut out = Vec::new();
    if new
        .owner_references
        .iter()
        .any(|r| !old.owner_references.contains(r))
    {
        out.push(violation(
            Rule::RequiredPrivileges,
            "metadata.ownerReferences",
            format!(
                "{} may not add owner references to the organization's objects: an owner reference hands the object's deletion to the garbage collector; \
                 only trusted platform principals set them",
                requester.describe()
            ),
        ));
    }
    if new.finalizers.iter().any(|f| !old.finalizers.contains(f)) {
        out.push(violation(
            Rule::RequiredPrivileges,
            "metadata.finalizers",
            format!(
                "{} may not add finalizers to the organization's objects: a finalizer keeps a deleted object (and a removed member's access) alive; \
                 only trusted platform principals set them",
                requester.describe()
            ),
        ));
    }
    out
}

#[cfg(test)]
mod cases {
    use crate::model::{ApiKeyDef, GroupDef, Meta};
    use crate::rules::Rule::RequiredPrivileges;
    use crate::rules::table::{Def, Verdict::*, Who::*, create, org, run, update};

    #[test]
    fn table() {
        let viewers = org().groups["viewers"].clone();
        let finalized = |g: &GroupDef, finalizer: &str| GroupDef {
            meta: Meta {
                finalizers: vec![finalizer.into()],
                ..g.meta.clone()
            },
            ..g.clone()
        };
        let kept = finalized(&viewers, "example.com/kept");
        let owned_key = Def::ApiKey(ApiKeyDef {
            name: "k".into(),
            enabled: true,
            meta: Meta {
                owner_references: vec!["Deployment/app/uid-1".into()],
                ..Meta::default()
            },
            ..ApiKeyDef::default()
        });
        run(vec![
            (
                "an administrator adds no finalizer: that is a trusted principal's",
                User("olivia"),
                update(
                    Def::Group((*viewers).clone()),
                    Def::Group(finalized(&viewers, "example.com/x")),
                ),
                Refused(RequiredPrivileges),
            ),
            (
                "an administrator creates no object with an owner reference",
                User("olivia"),
                create(owned_key.clone()),
                Refused(RequiredPrivileges),
            ),
            (
                "a finalizer already there is kept on an edit",
                User("olivia"),
                update(
                    Def::Group(kept.clone()),
                    Def::Group(GroupDef {
                        display_name: Some("Viewers".into()),
                        ..kept
                    }),
                ),
                Admitted,
            ),
            (
                "a trusted principal sets owner references",
                Trusted,
                create(owned_key),
                Admitted,
            ),
        ]);
    }
}
