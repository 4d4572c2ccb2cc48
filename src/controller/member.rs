//! Member reconcile: observe (the member and its namespace in the shared
//! index) → [`desired_status`] (pure: effective privileges with provenance,
//! the invitation phase, conditions) → apply (a status write only when it
//! changed, an Event when the phase or the privileges moved).

use std::sync::Arc;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, ResourceExt};

use super::status::{Progress, Want, apply_if_changed, conditions, unresolved_event};
use super::{Ctx, Error};
use crate::api::{EffectivePrivilege, Member, MemberStatus, MembershipStatus};
use crate::core::effective::{
    ConsoleAccess, DEFAULT_END_WARNING_DAYS, MemberPhase, console_access, member_effective,
    member_steady,
};
use crate::core::rules::Object;
use crate::core::warnings::unresolved_references;
use crate::index::{Namespace, Stored};

pub async fn reconcile(stored: Arc<Stored<Member>>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let member = &stored.object;
    let ns = member.namespace().ok_or(Error::NotNamespaced)?;
    let now = super::now();
    let written = stored.written();
    let previous = written.status();
    // The snapshot is dropped before the write: a reader holding it makes
    // the next change to the namespace copy it (copy on write).
    let wanted = {
        let snap = ctx.caches.index.namespace(&ns);
        desired_status_warned(&stored, &snap, now, warning(ctx.membership_warning_days))
            .zip(username(member, &snap))
    };
    // Not indexed (deleted meanwhile; the store keeps no definition): write
    // nothing. Indexing it again routes it here.
    let Some(((status, deadline), username)) = wanted else {
        return Ok(Action::await_change());
    };
    let phase = status.phase.unwrap_or(MemberPhase::Pending);

    let api: Api<Member> = Api::namespaced(ctx.client.clone(), &ns);
    let changes = apply_if_changed(&api, member, &written, &status).await?;
    if changes.is_some() {
        ctx.metrics.status_write("Member");
        let privileges_moved = written.field_changed(&status, "privileges");
        if let Some(event) = event(&username, &previous, &status, privileges_moved) {
            ctx.publish(member, event).await;
        }
        if let Some(event) = ending_event(&username, &previous, &status) {
            ctx.publish(member, event).await;
        }
        if let Some(event) = unresolved_event(&previous.conditions, &status.conditions) {
            ctx.publish(member, event).await;
        }
    }
    ctx.reconciled(member, changes.as_slice());

    // Come back when a pending invitation expires, or at a membership's end
    // or the start of its warning; otherwise the periodic resync (`RESYNC`)
    // looks at it again.
    let expires = status
        .invitation_expires_at
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .filter(|_| phase == MemberPhase::Pending);
    Ok(super::requeue_at(
        expires.into_iter().chain(deadline).min(),
        now,
    ))
}

fn warning(days: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_hours(24 * days.clamp(0, 3650))
}

/// A Warning when a membership starts to end soon (the `MembershipEnding`
/// condition turns True), when one ends, and when an overdue access review
/// suspends one.
fn ending_event(username: &str, previous: &MemberStatus, status: &MemberStatus) -> Option<Event> {
    if status.suspended_memberships > previous.suspended_memberships && previous.phase.is_some() {
        let suspended: Vec<&str> = status
            .groups
            .iter()
            .filter(|m| m.suspended)
            .map(|m| m.group.as_str())
            .collect();
        return Some(Event {
            type_: EventType::Warning,
            reason: "MembershipSuspended".into(),
            note: Some(format!(
                "{username}'s membership of {} is suspended: the group's access review is overdue and the last review did not confirm them",
                suspended.join(", ")
            )),
            action: "Suspend".into(),
            secondary: None,
        });
    }
    // The store's copy drops the groups list (`Indexed::TRIMMED`), not the
    // count: an Event only when the count grows.
    if status.ended_memberships > previous.ended_memberships && previous.phase.is_some() {
        let ended: Vec<&str> = status
            .groups
            .iter()
            .filter(|m| m.ended)
            .map(|m| m.group.as_str())
            .collect();
        return Some(Event {
            type_: EventType::Warning,
            reason: "MembershipEnded".into(),
            note: Some(format!(
                "{username}'s membership of {} ended: it grants nothing",
                ended.join(", ")
            )),
            action: "End".into(),
            secondary: None,
        });
    }
    let ending = |s: &MemberStatus| {
        s.conditions
            .iter()
            .any(|c| c.type_ == ENDING && c.status == "True")
    };
    (ending(status) && !ending(previous)).then(|| Event {
        type_: EventType::Warning,
        reason: "MembershipEnding".into(),
        note: status
            .conditions
            .iter()
            .find(|c| c.type_ == ENDING)
            .map(|c| format!("{username}: {}", c.message)),
        action: "Warn".into(),
        secondary: None,
    })
}

/// The condition that reports memberships ending soon.
const ENDING: &str = "MembershipEnding";

/// The member's username, from its definition in the index (the store's
/// copy keeps no spec).
fn username(member: &Member, snap: &Namespace) -> Option<String> {
    let def = snap.state.members.get(&member.name_any())?;
    Some(def.identity.username.clone())
}

/// What a status change is worth telling: an invitation that expired, or
/// effective privileges that moved.
fn event(
    username: &str,
    previous: &MemberStatus,
    status: &MemberStatus,
    privileges_moved: bool,
) -> Option<Event> {
    if previous.phase != Some(MemberPhase::Expired) && status.phase == Some(MemberPhase::Expired) {
        return Some(Event {
            type_: EventType::Warning,
            reason: "InvitationExpired".into(),
            note: Some(format!(
                "{username} did not accept within the invitation lifetime"
            )),
            action: "Expire".into(),
            secondary: None,
        });
    }
    (privileges_moved && previous.phase.is_some()).then(|| Event {
        type_: EventType::Normal,
        reason: "PrivilegesChanged".into(),
        note: Some(format!(
            "effective privileges now: {} domains",
            status.privilege_count
        )),
        action: "Reconcile".into(),
        secondary: None,
    })
}

/// The Member's status, from its definition and organization as indexed
/// (and, of the member as stored, its written status and generation); `None`
/// when the index does not hold it. Memberships ending within the default
/// warning ([`DEFAULT_END_WARNING_DAYS`]) are reported.
pub fn desired_status(
    stored: &Stored<Member>,
    snap: &Namespace,
    now: Timestamp,
) -> Option<MemberStatus> {
    desired_status_warned(stored, snap, now, warning(DEFAULT_END_WARNING_DAYS)).map(|(s, _)| s)
}

/// [`desired_status`] with the warning before a membership's end, and the
/// next instant the status changes by the clock alone (an end, or a
/// warning's start).
pub fn desired_status_warned(
    stored: &Stored<Member>,
    snap: &Namespace,
    now: Timestamp,
    warning: jiff::SignedDuration,
) -> Option<(MemberStatus, Option<Timestamp>)> {
    let member = &stored.object;
    let def = snap.state.members.get(&member.name_any())?;
    let grantees = snap.grantees();
    let eff = member_effective(&snap.state, &grantees, def, now);
    let console = console_access(&eff);
    let ending = eff.ending_within(now, warning);
    // The next end or warning, and the next instant a suspension starts or
    // stops (the steady span's end covers both ends and suspensions).
    let deadline = eff
        .next_deadline(now, warning)
        .into_iter()
        .chain(member_steady(&snap.state, def, now).until)
        .min();
    let ending_message = if ending.is_empty() {
        format!("no membership ends within {} days", warning.as_hours() / 24)
    } else {
        ending
            .iter()
            .map(|(g, at)| format!("membership of group '{g}' ends at {at}"))
            .collect::<Vec<_>>()
            .join("; ")
    };

    let missing: Vec<String> = unresolved_references(&snap.state, Object::Member(def), &def.name)
        .into_iter()
        .map(|u| u.name)
        .collect();
    let previous = stored.written().status();
    let privileges: Vec<EffectivePrivilege> = eff
        .provenance(&grantees)
        .into_iter()
        .map(|(privilege, granted_by)| EffectivePrivilege {
            privilege,
            granted_by,
        })
        .collect();
    let phase_message = match eff.phase {
        MemberPhase::Active => "invitation accepted".to_string(),
        MemberPhase::Pending => format!(
            "invitation pending until {}; set spec.accepted when the member accepts",
            eff.invitation_expires_at
                .map(|t| t.to_string())
                .unwrap_or_default()
        ),
        MemberPhase::Expired => {
            "invitation expired unaccepted: recreate the Member to invite again".to_string()
        }
    };
    let missing_message = format!(
        "groups not found: {}",
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    // A missing group: not Ready, and Reconciling while it may still be
    // created (GitOps order); every phase is a settled state (docs/status.md).
    let (ready, ready_reason, ready_message, progress) = if missing.is_empty() {
        (
            true,
            match eff.phase {
                MemberPhase::Active => "Active",
                MemberPhase::Pending => "InvitationPending",
                MemberPhase::Expired => "InvitationExpired",
            },
            phase_message,
            Progress::Settled,
        )
    } else {
        (
            false,
            "GroupNotFound",
            format!("{missing_message}; {phase_message}"),
            Progress::Waiting(
                "WaitingForGroups",
                format!("waiting for the groups to be created; {missing_message}"),
            ),
        )
    };
    let [reconciling, stalled] = progress.wants();
    let status = MemberStatus {
        conditions: conditions(
            &previous.conditions,
            vec![
                Want {
                    type_: "Ready",
                    ok: ready,
                    reason: ready_reason,
                    message: ready_message,
                },
                Want {
                    type_: "ResolvedRefs",
                    ok: missing.is_empty(),
                    reason: if missing.is_empty() {
                        "AllGroupsFound"
                    } else {
                        "GroupNotFound"
                    },
                    message: if missing.is_empty() {
                        "every group exists".into()
                    } else {
                        missing_message
                    },
                },
                reconciling,
                stalled,
                // Informational: a member without Organization View keeps
                // every other privilege and stays Ready.
                Want {
                    type_: "ConsoleAccess",
                    ok: console == ConsoleAccess::Granted,
                    reason: console.reason(),
                    message: console.message().to_string(),
                },
                // Informational: True while a membership that counts ends
                // within the warning (docs/status.md).
                Want {
                    type_: ENDING,
                    ok: !ending.is_empty(),
                    reason: if ending.is_empty() {
                        "NoneEndingSoon"
                    } else {
                        "EndsSoon"
                    },
                    message: ending_message,
                },
            ],
            member.metadata.generation,
        ),
        observed_generation: member.metadata.generation,
        phase: Some(eff.phase),
        invitation_expires_at: eff.invitation_expires_at.map(|t| t.to_string()),
        groups: eff
            .memberships
            .iter()
            .map(|m| MembershipStatus {
                group: m.group.clone(),
                via: m.via,
                active: m.active,
                ends_at: m.ends_at.map(|t| t.to_string()),
                ended: m.ended,
                suspended: m.suspended,
            })
            .collect(),
        privilege_count: privileges.len() as u32,
        privileges,
        ended_memberships: eff.memberships.iter().filter(|m| m.ended).count() as u32,
        suspended_memberships: eff.memberships.iter().filter(|m| m.suspended).count() as u32,
    };
    Some((status, deadline))
}
