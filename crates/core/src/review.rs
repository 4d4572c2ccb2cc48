//! Access reviews: a group's review state at an instant, and which of its
//! memberships an overdue review suspends (docs/access-reviews.md).
//!
//! A group with a cadence (`spec.reviewEvery`) is due for review a cadence
//! after its last review (the latest AccessReview of the group, by its
//! server-set creation time), or after its own creation when it has none.
//! It is overdue a grace period (`spec.accessReviews.gracePeriod` of the
//! Organization) after that. When the Organization says `Suspend`, an
//! overdue group's memberships that its last review did not confirm stop
//! counting: [`membership_suspended`] is the one test, which status,
//! admission and decisions all ask, at the instant of the question, as they
//! ask whether a membership has ended.

use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

use crate::model::{AccessReviewDef, GroupDef, MemberDef, OrgState, ReviewPeriod, WhenOverdue};

/// How long before its due date a review is `Due` (at most half the
/// cadence): the Group's `AccessReviewed` condition turns False then.
pub const DUE_NOTICE: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Where a group stands with its reviews at an instant.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub enum Standing {
    /// Reviewed within its cadence; the due date is more than the notice away.
    Current,
    /// The due date is near, or passed within the grace period.
    Due,
    /// The due date and the grace period have passed.
    Overdue,
}

impl Standing {
    /// The reason of a False `AccessReviewed` condition (`None` for Current).
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Standing::Current => None,
            Standing::Due => Some("Due"),
            Standing::Overdue => Some("Overdue"),
        }
    }
}

/// A group's review state at an instant ([`review_state`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewState<'a> {
    /// The group's last review at the instant, if any.
    pub last: Option<&'a AccessReviewDef>,
    /// When it was recorded.
    pub last_at: Option<Timestamp>,
    /// When the next review is due: a cadence after the last review (or the
    /// group's creation). `None`: beyond the representable range.
    pub next_due: Option<Timestamp>,
    /// When it is overdue: the due date plus the grace period.
    pub overdue_at: Option<Timestamp>,
    pub standing: Standing,
}

/// The Organization's grace period; one that cannot be read is none (the
/// safe side: admission refuses it, CatalogValidity).
pub fn grace(state: &OrgState) -> Option<ReviewPeriod> {
    let g = state.org.as_ref()?.access_reviews.grace_period.as_deref()?;
    ReviewPeriod::grace(g).ok()
}

/// Does the Organization suspend unconfirmed memberships of overdue groups?
pub fn suspends(state: &OrgState) -> bool {
    state
        .org
        .as_ref()
        .is_some_and(|o| o.access_reviews.when_overdue == WhenOverdue::Suspend)
}

/// When a group counts as created: its creation, or `t` for a manifest not
/// applied yet.
fn group_start(g: &GroupDef, t: Timestamp) -> Timestamp {
    g.created.unwrap_or(t)
}

/// When a review counts as recorded: its creation, or `t` for a manifest
/// not applied yet (a review written now).
pub fn recorded_at(r: &AccessReviewDef, t: Timestamp) -> Timestamp {
    r.created.unwrap_or(t)
}

/// The reviews of `g` that count at `t`: recorded for this group at or
/// after its creation (a review of a deleted group of the same name counts
/// for nothing) and at or before `t`.
pub fn reviews_of<'a>(
    state: &'a OrgState,
    g: &'a GroupDef,
    t: Timestamp,
) -> impl Iterator<Item = &'a AccessReviewDef> + 'a {
    let start = group_start(g, t);
    state.reviews.values().map(Arc::as_ref).filter(move |r| {
        let at = recorded_at(r, t);
        r.group == g.name && at >= start && at <= t
    })
}

/// The group's last review at `t`: the latest that counts, by recording
/// instant, then by name.
pub fn last_review<'a>(
    state: &'a OrgState,
    g: &'a GroupDef,
    t: Timestamp,
) -> Option<&'a AccessReviewDef> {
    reviews_of(state, g, t)
        .max_by(|a, b| (recorded_at(a, t), &a.name).cmp(&(recorded_at(b, t), &b.name)))
}

/// The review state of a group at `t`; `None` when it has no cadence. A
/// cadence that cannot be read (stored around admission, which refuses it)
/// makes the group due at once: the safe side.
pub fn review_state<'a>(
    state: &'a OrgState,
    g: &'a GroupDef,
    t: Timestamp,
) -> Option<ReviewState<'a>> {
    let every = g.review_every.as_deref()?;
    let last = last_review(state, g, t);
    let base = last.map_or_else(|| group_start(g, t), |r| recorded_at(r, t));
    let next_due = match ReviewPeriod::cadence(every) {
        Ok(p) => p.after(base),
        Err(_) => Some(base),
    };
    let overdue_at = next_due.and_then(|d| match grace(state) {
        Some(p) => p.after(d),
        None => Some(d),
    });
    let notice = next_due.map_or(DUE_NOTICE, |d| DUE_NOTICE.min(d.duration_since(base) / 2));
    let standing = match (next_due, overdue_at) {
        (_, Some(o)) if t >= o => Standing::Overdue,
        (Some(d), _) if t >= d.saturating_sub(notice).unwrap_or(Timestamp::MIN) => Standing::Due,
        _ => Standing::Current,
    };
    Some(ReviewState {
        last,
        last_at: last.map(|r| recorded_at(r, t)),
        next_due,
        overdue_at,
        standing,
    })
}

/// Did `review` confirm member `m`? Named in it, and the Member existed
/// when it was recorded: a Member created later under a confirmed name
/// (deleted and re-created, perhaps for someone else) is not confirmed.
pub fn confirms(review: &AccessReviewDef, m: &MemberDef, t: Timestamp) -> bool {
    review.confirmed.contains(&m.name) && m.invited_at.unwrap_or(t) <= recorded_at(review, t)
}

/// Is member `m`'s membership of `group` suspended at `t`? When the
/// Organization says Suspend, the group has a cadence, its review is
/// overdue at `t`, and its last review did not confirm the member. The one
/// place this is decided: member and group status, the requester's
/// privileges in admission and decisions all ask it.
pub fn membership_suspended(state: &OrgState, m: &MemberDef, group: &str, t: Timestamp) -> bool {
    if !suspends(state) {
        return false;
    }
    let Some(g) = state.groups.get(group) else {
        return false;
    };
    let Some(rs) = review_state(state, g, t) else {
        return false;
    };
    rs.standing == Standing::Overdue && !rs.last.is_some_and(|r| confirms(r, m, t))
}

/// From which instant member `m`'s membership of `group` is suspended
/// under this state, whatever the clock (`None`: never): the group's overdue
/// instant when its last review does not confirm the member and the
/// Organization says Suspend. Every record counts (a manifest not applied
/// yet is recorded after all the others). What admission compares before and
/// after a change: a later instant, or none where there was one, is a grant
/// ([`crate::effective::extends`], as for a membership's end).
pub fn suspended_from(state: &OrgState, m: &MemberDef, group: &str) -> Option<Timestamp> {
    if !suspends(state) {
        return None;
    }
    let g = state.groups.get(group)?;
    let rs = review_state(state, g, Timestamp::MAX)?;
    if rs.last.is_some_and(|r| confirms(r, m, Timestamp::MAX)) {
        return None;
    }
    rs.overdue_at
}

/// The instants around `t` at which a membership of `group` may start or
/// stop being suspended without any object changing: the group's overdue
/// instant, and the recording instants of its reviews (a review recorded
/// after `t`, for a clock set back). Empty when nothing can be suspended.
/// What caches keep with an answer ([`crate::effective::Steady`]).
pub fn suspension_instants(state: &OrgState, group: &str, t: Timestamp) -> Vec<Timestamp> {
    let Some(g) = state.groups.get(group).filter(|_| suspends(state)) else {
        return Vec::new();
    };
    let Some(rs) = review_state(state, g, t) else {
        return Vec::new();
    };
    let start = group_start(g, t);
    let mut out: Vec<Timestamp> = state
        .reviews
        .values()
        .filter(|r| r.group == g.name)
        .filter_map(|r| r.created)
        .filter(|at| *at >= start)
        .collect();
    out.extend(rs.overdue_at);
    out
}

/// The next instant after `t` at which the group's review state changes
/// (it turns Due, or Overdue): when the Group is looked at again.
pub fn next_change(state: &OrgState, g: &GroupDef, t: Timestamp) -> Option<Timestamp> {
    let rs = review_state(state, g, t)?;
    let base = rs.last_at.unwrap_or_else(|| group_start(g, t));
    let notice = rs
        .next_due
        .map_or(DUE_NOTICE, |d| DUE_NOTICE.min(d.duration_since(base) / 2));
    [
        rs.next_due.and_then(|d| d.saturating_sub(notice).ok()),
        rs.overdue_at,
    ]
    .into_iter()
    .flatten()
    .filter(|i| *i > t)
    .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccessReviewsSpec, OrgDef};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn state(when: WhenOverdue, grace: Option<&str>) -> OrgState {
        let mut s = OrgState {
            org: Some(OrgDef {
                name: "acme".into(),
                access_reviews: AccessReviewsSpec {
                    when_overdue: when,
                    grace_period: grace.map(str::to_string),
                },
                ..OrgDef::default()
            }),
            ..OrgState::default()
        };
        s.groups.insert(
            "ops".into(),
            Arc::new(GroupDef {
                name: "ops".into(),
                review_every: Some("P30D".into()),
                created: Some(ts("2027-01-01T00:00:00Z")),
                ..GroupDef::default()
            }),
        );
        for name in ["ann", "bob"] {
            s.members.insert(
                name.into(),
                Arc::new(MemberDef {
                    name: name.into(),
                    groups: vec!["ops".into()],
                    accepted: true,
                    invited_at: Some(ts("2027-01-01T00:00:00Z")),
                    ..MemberDef::default()
                }),
            );
        }
        s
    }

    fn review(s: &mut OrgState, name: &str, group: &str, at: &str, confirmed: &[&str]) {
        s.reviews.insert(
            name.into(),
            Arc::new(AccessReviewDef {
                name: name.into(),
                group: group.into(),
                confirmed: confirmed.iter().map(|c| c.to_string()).collect(),
                created: Some(ts(at)),
                ..AccessReviewDef::default()
            }),
        );
    }

    /// The review state over time: Current, Due from the notice, Overdue
    /// from the due date plus the grace; a review starts the count again.
    #[test]
    fn review_state_over_time() {
        let cases: &[(Option<&str>, &str, Standing)] = &[
            (None, "2027-01-20T00:00:00Z", Standing::Current),
            (None, "2027-01-24T00:00:00Z", Standing::Due),
            (None, "2027-01-30T23:59:59Z", Standing::Due),
            (None, "2027-01-31T00:00:00Z", Standing::Overdue),
            (Some("P7D"), "2027-01-31T00:00:00Z", Standing::Due),
            (Some("P7D"), "2027-02-06T23:59:59Z", Standing::Due),
            (Some("P7D"), "2027-02-07T00:00:00Z", Standing::Overdue),
            // An unreadable grace is none.
            (Some("P1000D"), "2027-01-31T00:00:00Z", Standing::Overdue),
        ];
        for (grace, at, want) in cases {
            let s = state(WhenOverdue::Report, *grace);
            let rs = review_state(&s, &s.groups["ops"], ts(at)).unwrap();
            assert_eq!(rs.standing, *want, "grace {grace:?} at {at}");
            assert_eq!(rs.next_due, Some(ts("2027-01-31T00:00:00Z")));
        }
        let mut s = state(WhenOverdue::Report, None);
        review(&mut s, "r1", "ops", "2027-01-20T00:00:00Z", &["ann"]);
        let rs = review_state(&s, &s.groups["ops"], ts("2027-02-01T00:00:00Z")).unwrap();
        assert_eq!(rs.last.map(|r| r.name.as_str()), Some("r1"));
        assert_eq!(rs.next_due, Some(ts("2027-02-19T00:00:00Z")));
        assert_eq!(rs.standing, Standing::Current);
        // Before it was recorded, the review does not count.
        let rs = review_state(&s, &s.groups["ops"], ts("2027-01-19T00:00:00Z")).unwrap();
        assert_eq!(rs.last, None);
        // No cadence: no state.
        Arc::make_mut(s.groups.get_mut("ops").unwrap()).review_every = None;
        assert!(review_state(&s, &s.groups["ops"], ts("2027-02-01T00:00:00Z")).is_none());
    }

    /// Which review is the last: the latest by recording instant; reviews
    /// of another group, or of an earlier group of the same name, do not
    /// count.
    #[test]
    fn the_last_review_is_the_latest_of_this_group() {
        let mut s = state(WhenOverdue::Suspend, None);
        review(
            &mut s,
            "b-old",
            "ops",
            "2027-01-10T00:00:00Z",
            &["ann", "bob"],
        );
        review(&mut s, "a-new", "ops", "2027-01-20T00:00:00Z", &["ann"]);
        review(&mut s, "other", "dev", "2027-01-25T00:00:00Z", &["bob"]);
        review(&mut s, "before", "ops", "2026-12-31T00:00:00Z", &["bob"]);
        let t = ts("2027-01-26T00:00:00Z");
        let last = last_review(&s, &s.groups["ops"], t).unwrap();
        assert_eq!(last.name, "a-new");
        assert_eq!(reviews_of(&s, &s.groups["ops"], t).count(), 2);
    }

    /// Suspension: only with Suspend, only once overdue, only members the
    /// last review did not confirm (or who did not exist when it was
    /// recorded).
    #[test]
    fn unconfirmed_memberships_of_an_overdue_group_are_suspended() {
        let overdue = ts("2027-03-01T00:00:00Z");
        let due = ts("2027-02-18T00:00:00Z");
        let mut s = state(WhenOverdue::Suspend, None);
        review(&mut s, "r1", "ops", "2027-01-20T00:00:00Z", &["ann"]);
        let suspended = |s: &OrgState, m: &str, t| membership_suspended(s, &s.members[m], "ops", t);
        assert!(!suspended(&s, "ann", overdue));
        assert!(suspended(&s, "bob", overdue));
        assert!(!suspended(&s, "bob", due));
        // Report: nothing is suspended.
        let mut r = s.clone();
        r.org.as_mut().unwrap().access_reviews.when_overdue = WhenOverdue::Report;
        assert!(!suspended(&r, "bob", overdue));
        // A Member re-created after the review under a confirmed name.
        let mut later = s.clone();
        Arc::make_mut(later.members.get_mut("ann").unwrap()).invited_at =
            Some(ts("2027-01-21T00:00:00Z"));
        assert!(suspended(&later, "ann", overdue));
        // A new review confirming bob restores him until it is overdue.
        review(&mut s, "r2", "ops", "2027-02-28T00:00:00Z", &["ann", "bob"]);
        assert!(!suspended(&s, "bob", overdue));
        // Past r2's due date, those it confirmed keep counting.
        assert!(!suspended(&s, "bob", ts("2027-04-01T00:00:00Z")));
        // No review at all: everyone is unconfirmed once overdue.
        let s = state(WhenOverdue::Suspend, None);
        assert!(suspended(&s, "ann", ts("2027-01-31T00:00:00Z")));
        assert!(!suspended(&s, "ann", ts("2027-01-30T23:59:59Z")));
    }

    /// An unreadable cadence is due at once (admission refuses it).
    #[test]
    fn an_unreadable_cadence_is_due_at_once() {
        let mut s = state(WhenOverdue::Suspend, None);
        Arc::make_mut(s.groups.get_mut("ops").unwrap()).review_every = Some("P9999Y".into());
        let t = ts("2027-01-02T00:00:00Z");
        assert_eq!(
            review_state(&s, &s.groups["ops"], t).unwrap().standing,
            Standing::Overdue
        );
        assert!(membership_suspended(&s, &s.members["ann"], "ops", t));
    }

    /// The instants a cached answer must not outlive, and the next change.
    #[test]
    fn instants_and_next_change() {
        let mut s = state(WhenOverdue::Suspend, Some("P2D"));
        review(&mut s, "r1", "ops", "2027-01-20T00:00:00Z", &["ann"]);
        let t = ts("2027-01-25T00:00:00Z");
        let mut got = suspension_instants(&s, "ops", t);
        got.sort();
        assert_eq!(
            got,
            vec![ts("2027-01-20T00:00:00Z"), ts("2027-02-21T00:00:00Z")]
        );
        assert_eq!(
            next_change(&s, &s.groups["ops"], t),
            Some(ts("2027-02-12T00:00:00Z"))
        );
        assert_eq!(
            next_change(&s, &s.groups["ops"], ts("2027-02-12T00:00:00Z")),
            Some(ts("2027-02-21T00:00:00Z"))
        );
        assert_eq!(
            next_change(&s, &s.groups["ops"], ts("2027-02-21T00:00:00Z")),
            None
        );
        s.org.as_mut().unwrap().access_reviews.when_overdue = WhenOverdue::Report;
        assert!(suspension_instants(&s, "ops", t).is_empty());
    }
}
