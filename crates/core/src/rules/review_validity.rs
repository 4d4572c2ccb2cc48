//! CatalogValidity for access reviews, for every requester (trusted ones
//! too): an AccessReview names an existing group and only its members, and
//! is a record whose spec never changes; a Group's `reviewEvery` and the
//! Organization's `accessReviews.gracePeriod` are readable and bounded
//! (docs/access-reviews.md).

use std::collections::BTreeSet;

use super::{Change, Object, Operation, Rule, Violation, violation};
use crate::effective::membership_in;
use crate::model::{
    AccessReviewDef, GroupDef, MAX_CONFIRMED, MAX_OWNERS, OrgDef, OrgState, ReviewPeriod,
};

/// The violations of a change's review fields (the spec has changed).
pub(super) fn review_validity(state: &OrgState, change: &Change, out: &mut Vec<Violation>) {
    match change.new {
        Some(Object::AccessReview(_)) if change.operation == Operation::Update => {
            out.push(violation(
                Rule::CatalogValidity,
                "spec",
                "an access review is a record: its spec cannot change once created; record a new AccessReview instead",
            ));
        }
        Some(Object::AccessReview(r)) => review_valid(state, r, out),
        Some(Object::Group(g)) => group_valid(g, out),
        Some(Object::Organization(o)) => org_valid(o, out),
        _ => {}
    }
}

fn review_valid(state: &OrgState, r: &AccessReviewDef, out: &mut Vec<Violation>) {
    let Some(group) = state.groups.get(&r.group) else {
        out.push(violation(
            Rule::CatalogValidity,
            "spec.group",
            format!(
                "group '{}' does not exist in this organization; review an existing group \
                 (a review waiting for a group would confirm members of whatever group is created under that name)",
                r.group
            ),
        ));
        return;
    };
    if r.confirmed.len() > MAX_CONFIRMED {
        out.push(violation(
            Rule::CatalogValidity,
            "spec.confirmed",
            format!("a review confirms at most {MAX_CONFIRMED} members"),
        ));
        return;
    }
    let mut seen = BTreeSet::new();
    for (i, name) in r.confirmed.iter().enumerate() {
        if !seen.insert(name) {
            out.push(violation(
                Rule::CatalogValidity,
                format!("spec.confirmed[{i}]"),
                format!("member '{name}' is listed twice; list it once"),
            ));
            continue;
        }
        let member_of = state
            .members
            .get(name)
            .is_some_and(|m| membership_in(state, m, &group.name).is_some());
        if !member_of {
            out.push(violation(
                Rule::CatalogValidity,
                format!("spec.confirmed[{i}]"),
                format!(
                    "'{name}' is not a member of group '{}'; a review confirms only the group's members",
                    group.name
                ),
            ));
        }
    }
}

fn group_valid(g: &GroupDef, out: &mut Vec<Violation>) {
    if let Some(every) = &g.review_every
        && let Err(why) = ReviewPeriod::cadence(every)
    {
        out.push(violation(
            Rule::CatalogValidity,
            "spec.reviewEvery",
            format!("{why}; a review cadence is 1 day to 3 years, such as P90D"),
        ));
    }
    if g.owners.len() > MAX_OWNERS {
        out.push(violation(
            Rule::CatalogValidity,
            "spec.owners",
            format!("a group has at most {MAX_OWNERS} owners"),
        ));
    }
}

fn org_valid(o: &OrgDef, out: &mut Vec<Violation>) {
    if let Some(grace) = &o.access_reviews.grace_period
        && let Err(why) = ReviewPeriod::grace(grace)
    {
        out.push(violation(
            Rule::CatalogValidity,
            "spec.accessReviews.gracePeriod",
            format!("{why}; a grace period is 0 to 90 days, such as P7D"),
        ));
    }
}
