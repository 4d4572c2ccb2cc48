//! UnknownRequester: a Kubernetes identity no Member maps holds no
//! privileges in the organization, so every change it asks is refused.

use super::{Requester, Rule, Violation, violation};

/// UnknownRequester: the refusal of an unmapped requester; `None` for anyone else.
pub fn unknown_requester(requester: &Requester) -> Option<Violation> {
    let Requester::Unmapped { user } = requester else {
        return None;
    };
    Some(violation(
        Rule::UnknownRequester,
        "metadata",
        format!(
            "'{user}' is not a subject of any Member of this organization, so it holds no privileges here; \
             add {{kind: User, name: {user}}} (or its Group or ServiceAccount) to a Member's spec.subjects, \
             or configure it as a trusted platform principal"
        ),
    ))
}

#[cfg(test)]
mod cases {
    use crate::rules::Rule::UnknownRequester;
    use crate::rules::table::{Def, Verdict::*, Who::*, create, group, run};

    #[test]
    fn table() {
        run(vec![
            (
                "an identity no member maps is refused",
                User("mallory"),
                create(Def::Group(group("g", Vec::new()))),
                Refused(UnknownRequester),
            ),
            (
                "a trusted principal is no member, and is not refused",
                Trusted,
                create(Def::Group(group("g", Vec::new()))),
                Admitted,
            ),
        ]);
    }
}
