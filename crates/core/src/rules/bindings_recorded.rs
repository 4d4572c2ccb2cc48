//! BindingsRecorded: the record of who set an object's bindings
//! (`orgaccess.dev/bound-by`, `bindings.rs`) is the one admission computes
//! for the change. Not part of [`super::check`]: the webhook calls it, since
//! manifests checked offline carry no record.

use super::{Change, Object, Requester, Rule, Violation, member, violation};
use crate::bindings::{self, Asserted, BoundBy, Setter};

/// BindingsRecorded: the new version's `orgaccess.dev/bound-by` is the
/// record admission computes for this change (the webhook's mutating half
/// writes it); a trusted principal may leave fewer entries, nobody other ones.
/// Not part of [`super::check`]: manifests checked offline carry no record.
pub fn bindings_recorded(change: &Change, requester: &Requester) -> Vec<Violation> {
    let Some(new) = change.new else {
        return Vec::new();
    };
    let Some(expected) = bindings_after(change, requester, &Asserted::new()) else {
        return Vec::new();
    };
    let written = &new.meta().bound_by;
    if bindings::may_write(written, &expected, setter(requester)) {
        return Vec::new();
    }
    vec![violation(
        Rule::BindingsRecorded,
        format!("metadata.annotations[{}]", bindings::ANNOTATION),
        format!(
            "the annotation {} records who set this object's bindings and is written by orgaccess's mutating admission webhook; \
             for this change by {} it must be {} (it is {}). Leave the annotation alone, and check that the MutatingWebhookConfiguration \
             'orgaccess' is installed",
            bindings::ANNOTATION,
            requester.describe(),
            bindings::render(&expected).unwrap_or_else(|| "absent".into()),
            bindings::render(written).unwrap_or_else(|| "absent".into()),
        ),
    )]
}

/// Who writes, as the record of bindings sees them.
pub fn setter<'a>(requester: &'a Requester) -> Setter<'a> {
    match requester {
        Requester::Trusted | Requester::Operator => Setter::Trusted,
        Requester::Members { user, .. } | Requester::Unmapped { user } => Setter::Untrusted(user),
    }
}

/// The record a change leaves (`bindings.rs`), given the binding keys the
/// request names itself; `None` for a delete or an Organization.
pub fn bindings_after(
    change: &Change,
    requester: &Requester,
    asserted: &Asserted,
) -> Option<BoundBy> {
    let who = setter(requester);
    Some(match (change.old, change.new?) {
        (old, Object::Member(n)) => bindings::member(member(old), n, who, asserted),
        (old, Object::Group(n)) => {
            let old = match old {
                Some(Object::Group(o)) => Some(o),
                _ => None,
            };
            bindings::group(old, n, who, asserted)
        }
        (old, Object::ApiKey(n)) => {
            let old = match old {
                Some(Object::ApiKey(o)) => Some(o),
                _ => None,
            };
            bindings::api_key(old, n, who, asserted)
        }
        (_, Object::Organization(_) | Object::AccessReview(_)) => return None,
    })
}

#[cfg(test)]
mod cases {
    use crate::bindings::{BoundBy, PRIVILEGES};
    use crate::model::{GroupDef, Meta};
    use crate::privilege::AccessLevel::View;
    use crate::rules::Rule::BindingsRecorded;
    use crate::rules::table::{
        Def, Verdict::*, Who::*, create, group, privilege, run_with, update,
    };

    /// Group `g` granting Organization View, with the record `bound_by`.
    fn g(bound_by: &[(&str, &str)]) -> Def {
        Def::Group(GroupDef {
            meta: Meta {
                bound_by: bound_by
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BoundBy>(),
                ..Meta::default()
            },
            ..group("g", vec![privilege("Organization", "Organization", View)])
        })
    }

    #[test]
    fn table() {
        run_with(
            vec![
                (
                    "a tenant's grant is recorded as theirs",
                    User("gm"),
                    create(g(&[(PRIVILEGES, "gm")])),
                    Admitted,
                ),
                (
                    "a tenant's grant recorded as nobody's is a forged record",
                    User("gm"),
                    create(g(&[])),
                    Refused(BindingsRecorded),
                ),
                (
                    "a tenant's grant recorded as someone else's is a forged record",
                    User("gm"),
                    create(g(&[(PRIVILEGES, "olivia")])),
                    Refused(BindingsRecorded),
                ),
                (
                    "a trusted principal vouches for a binding by dropping its entry",
                    Trusted,
                    update(g(&[(PRIVILEGES, "gm")]), g(&[])),
                    Admitted,
                ),
                (
                    "a trusted principal adds no entry",
                    Trusted,
                    update(g(&[]), g(&[(PRIVILEGES, "gm")])),
                    Refused(BindingsRecorded),
                ),
            ],
            |_, _, change, requester| super::bindings_recorded(change, requester),
        );
    }
}
