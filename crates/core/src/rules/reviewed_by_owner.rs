//! ReviewedByOwner: only an owner of a group records or deletes its access
//! reviews (docs/access-reviews.md). The owner must also hold Edit on the
//! group (RequiredPrivileges), and a review that lifts or postpones a
//! suspension is a grant (NoEscalation, `review_grants.rs`).

use super::{Change, Object, Operation, Requester, Rule, Violation, violation};
use crate::model::OrgState;

/// ReviewedByOwner: creating or deleting an AccessReview needs the
/// requester to be one of the group's owners (a Member mapping the
/// requester's identity is listed in the group's `spec.owners`). Trusted
/// principals are not asked (a GitOps controller applies reviews from Git).
pub fn reviewed_by_owner(
    state: &OrgState,
    change: &Change,
    requester: &Requester,
) -> Vec<Violation> {
    if change.operation == Operation::Update {
        return Vec::new();
    }
    let Some(Object::AccessReview(r)) = change.new.or(change.old) else {
        return Vec::new();
    };
    let Requester::Members { members, .. } = requester else {
        return Vec::new();
    };
    let owners = state
        .groups
        .get(&r.group)
        .map(|g| g.owners.as_slice())
        .unwrap_or_default();
    if members.iter().any(|m| owners.contains(m)) {
        return Vec::new();
    }
    vec![violation(
        Rule::ReviewedByOwner,
        "spec.group",
        format!(
            "{} is not an owner of group '{}' (its spec.owners: {}): only an owner records or deletes its access reviews",
            requester.describe(),
            r.group,
            if owners.is_empty() {
                "none".to_string()
            } else {
                owners.join(", ")
            }
        ),
    )]
}
