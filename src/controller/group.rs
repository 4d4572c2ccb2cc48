//! Group reconcile: observe (the group and its namespace in the shared
//! index) → [`desired_status`] (pure: privileges after template expansion,
//! members, conditions) → apply (a status write only when it changed).

use std::sync::Arc;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, ResourceExt};

use super::status::{Progress, Want, apply_if_changed, conditions, unresolved_event};
use super::{Ctx, Error};
use crate::api::{Group, GroupStatus, LastReview};
use crate::core::effective::{granted_by_spec, group_members, group_next_end};
use crate::core::model::GroupDef;
use crate::core::review::{self, Standing, membership_suspended, review_state};
use crate::core::rules::Object;
use crate::core::warnings::{Unresolved, unresolved_references};
use crate::index::{Namespace, Stored};

pub async fn reconcile(stored: Arc<Stored<Group>>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let group = &stored.object;
    let ns = group.namespace().ok_or(Error::NotNamespaced)?;
    let now = super::now();
    // Not held across the write (copy on write, see member::reconcile).
    let (status, next_end) = {
        let snap = ctx.caches.index.namespace(&ns);
        let name = group.name_any();
        let next = group_next_end(&snap.state, snap.candidate_members(&name), &name, now);
        let review = snap
            .state
            .groups
            .get(&name)
            .and_then(|g| review::next_change(&snap.state, g, now));
        (
            desired_status(&stored, &snap, now),
            next.into_iter().chain(review).min(),
        )
    };
    // The review gauges (groups gone: the Organization reconcile).
    ctx.metrics.reviews.set(
        &ns,
        &group.name_any(),
        status.as_ref().and_then(|s| s.review_standing),
    );
    // Not indexed (deleted meanwhile): write nothing (see member::reconcile).
    let Some(status) = status else {
        return Ok(Action::await_change());
    };
    let api: Api<Group> = Api::namespaced(ctx.client.clone(), &ns);
    let written = stored.written();
    let changes = apply_if_changed(&api, group, &written, &status).await?;
    if changes.is_some() {
        ctx.metrics.status_write("Group");
        let previous = written.status();
        if let Some(event) = unresolved_event(&previous.conditions, &status.conditions) {
            ctx.publish(group, event).await;
        }
        if let Some(event) = overdue_event(&previous, &status) {
            ctx.publish(group, event).await;
        }
    }
    ctx.reconciled(group, changes.as_slice());
    // Looked at again at the next end of a membership in it (its members
    // change then, by the clock alone), when its review turns Due or
    // Overdue, and by the periodic resync (`super::RESYNC`).
    Ok(super::requeue_at(next_end, now))
}

/// A Warning when the group's access review becomes overdue.
fn overdue_event(previous: &GroupStatus, status: &GroupStatus) -> Option<Event> {
    let overdue = |s: &GroupStatus| s.review_standing == Some(Standing::Overdue);
    (overdue(status) && !overdue(previous)).then(|| Event {
        type_: EventType::Warning,
        reason: "AccessReviewOverdue".into(),
        note: status
            .conditions
            .iter()
            .find(|c| c.type_ == REVIEWED)
            .map(|c| c.message.clone()),
        action: "Review".into(),
        secondary: None,
    })
}

/// The condition that reports the group's access review.
const REVIEWED: &str = "AccessReviewed";

/// The review part of a Group's status: the last review, the next due
/// date, the standing, how many members are suspended, and the
/// `AccessReviewed` condition (`None` without a cadence).
struct ReviewStatus {
    last: Option<LastReview>,
    next_due: Option<String>,
    standing: Standing,
    suspended: u32,
    want: Want,
}

fn review_status(snap: &Namespace, def: &GroupDef, now: Timestamp) -> Option<ReviewStatus> {
    let state = &snap.state;
    let rs = review_state(state, def, now)?;
    let suspended = snap
        .candidate_members(&def.name)
        .into_iter()
        .filter(|m| membership_suspended(state, m, &def.name, now))
        .count() as u32;
    let due = rs
        .next_due
        .map_or_else(|| "never".to_string(), |t| t.to_string());
    let last = match rs.last {
        Some(r) => format!(
            "last reviewed at {} ({}, {} confirmed)",
            rs.last_at.map(|t| t.to_string()).unwrap_or_default(),
            r.name,
            r.confirmed.len()
        ),
        None => "never reviewed".to_string(),
    };
    let effect = if review::suspends(state) {
        format!("; {suspended} memberships suspended")
    } else {
        String::new()
    };
    let (reason, message) = match rs.standing {
        Standing::Current if rs.last.is_none() => {
            ("NotYetDue", format!("{last}; first review due at {due}"))
        }
        Standing::Current => ("Reviewed", format!("{last}; next review due at {due}")),
        Standing::Due => ("Due", format!("{last}; next review due at {due}")),
        Standing::Overdue => (
            "Overdue",
            format!(
                "{last}; the review was due at {due} and is overdue{}{effect}",
                rs.overdue_at
                    .filter(|o| Some(*o) != rs.next_due)
                    .map(|o| format!(" since {o}"))
                    .unwrap_or_default()
            ),
        ),
    };
    Some(ReviewStatus {
        last: rs.last.map(|r| LastReview {
            name: r.name.clone(),
            at: rs.last_at.map(|t| t.to_string()).unwrap_or_default(),
            confirmed: r.confirmed.len() as u32,
        }),
        next_due: rs.next_due.map(|t| t.to_string()),
        standing: rs.standing,
        suspended,
        want: Want {
            type_: REVIEWED,
            ok: rs.standing == Standing::Current,
            reason,
            message,
        },
    })
}

/// The Group's status, from its definition and organization as indexed
/// (and, of the group as stored, its written status and generation); `None`
/// when the index does not hold it.
pub fn desired_status(
    stored: &Stored<Group>,
    snap: &Namespace,
    now: Timestamp,
) -> Option<GroupStatus> {
    let group = &stored.object;
    let name = group.name_any();
    let def = snap.state.groups.get(&name)?;
    let previous = stored.written().status();
    let grantees = snap.grantees();

    let (_, invalid) = granted_by_spec(def.template.map(|t| t.privileges()), &def.privileges);
    let privileges = grantees.groups.get(&name).cloned().unwrap_or_default();

    // Members by either route, from the one core definition of membership,
    // over the members that may be in it (not every member of the namespace).
    let (active, inactive) = group_members(
        &snap.state,
        &grantees,
        snap.candidate_members(&name),
        &name,
        now,
    );

    let dangling: Vec<String> = unresolved_references(&snap.state, Object::Group(def), &name)
        .iter()
        .map(Unresolved::describe)
        .collect();
    let display_name = snap.state.group_display_name(def);
    let specs = privileges.to_specs();
    // Ready is False while anything is wrong; Stalled when only a change of
    // the spec helps, Reconciling while a named object may still appear
    // (GitOps applies a directory in any order). docs/status.md.
    let invalid_message = invalid
        .iter()
        .map(|(i, e)| format!("spec.privileges[{i}]: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    let dangling_message = format!("not found: {}", dangling.join(", "));
    let (ready_reason, ready_message, progress) = if !invalid.is_empty() {
        (
            "InvalidPrivileges",
            invalid_message.clone(),
            Progress::Stalled("InvalidPrivileges", invalid_message),
        )
    } else if !dangling.is_empty() {
        (
            "ReferenceNotFound",
            format!("waiting for referenced objects; {dangling_message}"),
            Progress::Waiting(
                "WaitingForReferences",
                format!("waiting for referenced objects to be created; {dangling_message}"),
            ),
        )
    } else {
        (
            "PrivilegesExpanded",
            format!("{} privileges in effect", specs.len()),
            Progress::Settled,
        )
    };
    let [reconciling, stalled] = progress.wants();
    let review = review_status(snap, def, now);
    let mut wants = vec![
        Want {
            type_: "Ready",
            ok: ready_reason == "PrivilegesExpanded",
            reason: ready_reason,
            message: ready_message,
        },
        Want {
            type_: "ResolvedRefs",
            ok: dangling.is_empty(),
            reason: if dangling.is_empty() {
                "AllReferencesFound"
            } else {
                "ReferenceNotFound"
            },
            message: if dangling.is_empty() {
                "every referenced object exists".into()
            } else {
                dangling_message
            },
        },
        reconciling,
        stalled,
    ];
    // Informational: the group stays Ready whatever its review's standing.
    wants.extend(review.as_ref().map(|r| r.want.clone()));
    Some(GroupStatus {
        conditions: conditions(&previous.conditions, wants, group.metadata.generation),
        observed_generation: group.metadata.generation,
        display_name: Some(display_name),
        privilege_count: specs.len() as u32,
        privileges: specs,
        member_count: active.len() as u32,
        members: active,
        inactive_members: inactive,
        last_review: review.as_ref().and_then(|r| r.last.clone()),
        next_review_due: review.as_ref().and_then(|r| r.next_due.clone()),
        review_standing: review.as_ref().map(|r| r.standing),
        suspended_members: review.as_ref().map_or(0, |r| r.suspended),
    })
}
