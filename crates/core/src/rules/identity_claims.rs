//! IdentityClaims: SSO groups and Salesforce profiles are the identity
//! provider's assertions; only trusted principals write them.

use super::{Change, Requester, Rule, Violation, member, violation};

/// SSO groups and Salesforce profiles decide membership by identity set, and
/// they are the identity provider's assertions about a person: only a trusted
/// principal (the identity-provider sync) writes them, never a tenant, for
/// themselves or anyone else.
pub fn identity_claims(change: &Change, requester: &Requester) -> Vec<Violation> {
    if requester.is_trusted() {
        return Vec::new();
    }
    let Some(new) = member(change.new) else {
        return Vec::new();
    };
    let old = member(change.old);
    let mut out = Vec::new();
    let sso_before = old.map(|o| &o.sso_groups[..]).unwrap_or_default();
    if new.sso_groups != sso_before {
        out.push(violation(
            Rule::IdentityClaims,
            "spec.ssoGroups",
            format!(
                "{} may not set a member's SSO groups: they are the identity provider's assertion (its user.groups attribute) and decide identity-set memberships; \
                 they are written only by the identity-provider sync (a trusted platform principal)",
                requester.describe()
            ),
        ));
    }
    let profile_before = old.and_then(|o| o.salesforce_profile.as_ref());
    if new.salesforce_profile.as_ref() != profile_before {
        out.push(violation(
            Rule::IdentityClaims,
            "spec.salesforceProfile",
            format!(
                "{} may not set a member's Salesforce profile: it is the identity provider's assertion and decides identity-set memberships; \
                 it is written only by the identity-provider sync (a trusted platform principal)",
                requester.describe()
            ),
        ));
    }
    out
}

#[cfg(test)]
mod cases {
    use crate::rules::Rule::IdentityClaims;
    use crate::rules::table::{Def, Verdict::*, Who::*, org, run, update};
    use std::sync::Arc;

    #[test]
    fn table() {
        let s = org();
        let viewer = s.members["viewer"].clone();
        let claimed = crate::model::MemberDef {
            sso_groups: vec!["admins".into()],
            ..(*viewer).clone()
        };
        run(vec![
            (
                "a tenant cannot assert a member's SSO groups",
                User("gm"),
                update(Def::Member((*viewer).clone()), Def::Member(claimed.clone())),
                Refused(IdentityClaims),
            ),
            (
                "the identity-provider sync (trusted) asserts them",
                Trusted,
                update(
                    Def::Member(Arc::unwrap_or_clone(viewer)),
                    Def::Member(claimed),
                ),
                Admitted,
            ),
        ]);
    }
}
