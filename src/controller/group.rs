//! Group reconcile: observe (the group and its namespace in the shared
//! index) → [`desired_status`] (pure: privileges after template expansion,
//! members, conditions) → apply (a status write only when it changed).

use std::sync::Arc;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::status::{Progress, Want, apply_if_changed, conditions, unresolved_event};
use super::{Ctx, Error};
use crate::api::{Group, GroupStatus};
use crate::core::effective::{granted_by_spec, group_members, group_next_end};
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
        (desired_status(&stored, &snap, now), next)
    };
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
    }
    ctx.reconciled(group, changes.as_slice());
    // Looked at again at the next end of a membership in it (its members
    // change then, by the clock alone), and by the periodic resync
    // (`super::RESYNC`).
    Ok(super::requeue_at(next_end, now))
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
    Some(GroupStatus {
        conditions: conditions(
            &previous.conditions,
            vec![
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
            ],
            group.metadata.generation,
        ),
        observed_generation: group.metadata.generation,
        display_name: Some(display_name),
        privilege_count: specs.len() as u32,
        privileges: specs,
        member_count: active.len() as u32,
        members: active,
        inactive_members: inactive,
    })
}
