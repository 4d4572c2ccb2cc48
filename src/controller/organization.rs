//! Organization reconcile: seed the built-in groups once (I/O), then
//! [`desired_status`] (pure: the summary of the namespace as indexed) →
//! apply (a status write only when it changed).

use std::sync::Arc;

use kube::api::{ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, ResourceExt};

use super::status::{Progress, Want, apply_if_changed, conditions};
use super::{Ctx, Error};
use crate::api::{AdviceStatus, Group, GroupSpec, Organization, OrganizationStatus};
use crate::core::advice::{Counts, Finding, review};
use crate::core::builtin::BuiltinGroup;
use crate::core::effective::{
    MemberPhase, group_members, group_next_end, member_phase, only_by_identity_sets,
};
use crate::core::model::GroupDef;
use crate::index::{Namespace, Stored};

/// The Group object the operator seeds for a built-in group
/// ([`GroupDef::seeded`], the definition the offline CLI assumes too).
pub fn builtin_group(b: BuiltinGroup) -> Group {
    let def = GroupDef::seeded(b);
    Group {
        metadata: ObjectMeta {
            name: Some(def.name),
            ..ObjectMeta::default()
        },
        spec: GroupSpec {
            display_name: def.display_name,
            built_in: def.builtin,
            template: def.template,
            privileges: def.privileges,
            identity_sets: def.identity_sets,
            access: def.access,
            duplicate_of: def.duplicate_of,
            owners: def.owners,
            review_every: def.review_every,
        },
        status: None,
    }
}

/// Does the organization's Administrators group exist? The shared index
/// answers; only when it says "no" is the API asked, so an index that has
/// not caught up (a restart, a watch lag) never makes the operator re-seed.
async fn administrators_exist(ctx: &Ctx, api: &Api<Group>, ns: &str) -> Result<bool, Error> {
    let name = BuiltinGroup::Administrators.object_name();
    let indexed = ctx
        .caches
        .index
        .namespace(ns)
        .state
        .groups
        .get(name)
        .map(|g| g.builtin == Some(BuiltinGroup::Administrators));
    if let Some(seeded) = indexed {
        return Ok(seeded);
    }
    let seeded = |g: &Group| g.spec.built_in == Some(BuiltinGroup::Administrators);
    Ok(api.get_opt(name).await?.is_some_and(|g| seeded(&g)))
}

pub async fn reconcile(stored: Arc<Stored<Organization>>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let org = &stored.object;
    let ns = org.namespace().ok_or(Error::NotNamespaced)?;
    if org.metadata.deletion_timestamp.is_some() {
        ctx.metrics.advice.set(&ns, &[]);
        ctx.metrics.reviews.retain(&ns, |_| false);
        return Ok(Action::await_change());
    }
    let groups_api: Api<Group> = Api::namespaced(ctx.client.clone(), &ns);

    // Seed the built-in groups once per organization. Administrators is
    // created last and cannot be deleted while its Organization exists, so it
    // is the record: once it exists, seeding is done, and a built-in group an
    // administrator deleted is never re-created, not even when the
    // Organization itself is deleted and re-created (status, which a status
    // writer could reset, is only a report).
    let seeded_already = administrators_exist(&ctx, &groups_api, &ns).await?;
    let mut created = Vec::new();
    if !seeded_already {
        let others = BuiltinGroup::ALL
            .into_iter()
            .filter(|b| *b != BuiltinGroup::Administrators);
        for b in others.chain([BuiltinGroup::Administrators]) {
            match groups_api
                .create(&PostParams::default(), &builtin_group(b))
                .await
            {
                Ok(_) => created.push(b.display_name()),
                // Exists already (a cache lag, or a previous partial pass).
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut seeded = BuiltinGroup::ALL.to_vec();
    seeded.sort();
    if !created.is_empty() {
        ctx.publish(
            org,
            Event {
                type_: EventType::Normal,
                reason: "BuiltinGroupsSeeded".into(),
                note: Some(format!("created {}", created.join(", "))),
                action: "Seed".into(),
                secondary: None,
            },
        )
        .await;
    }

    let now = super::now();
    // The snapshot is not held across the write (copy on write, see
    // member::reconcile).
    let (findings, status, next_end) = {
        let snapshot = ctx.caches.index.namespace(&ns);
        let findings = findings(&snapshot, now);
        let status = desired_status(org, &snapshot, seeded, &findings, now);
        // The administrators listed change when one's membership ends.
        let next_end = snapshot.state.administrators().and_then(|g| {
            group_next_end(
                &snapshot.state,
                snapshot.candidate_members(&g.name),
                &g.name,
                now,
            )
        });
        (findings, status, next_end)
    };
    ctx.metrics.advice.set(&ns, &findings);
    let index = &ctx.caches.index;
    {
        let snapshot = index.namespace(&ns);
        ctx.metrics
            .reviews
            .retain(&ns, |g| snapshot.state.groups.contains_key(g));
    }
    ctx.metrics
        .advice
        .retain(|ns| index.namespace(ns).state.org.is_some());
    let api: Api<Organization> = Api::namespaced(ctx.client.clone(), &ns);
    let mut changes = Vec::new();
    if !created.is_empty() {
        changes.push(format!("seeded {}", created.join(", ")));
    }
    if let Some(status_change) = apply_if_changed(&api, org, &stored.written(), &status).await? {
        ctx.metrics.status_write("Organization");
        changes.push(status_change);
    }
    ctx.reconciled(org, &changes);
    // Looked at again when an administrator's membership ends, and by the
    // periodic resync (`super::RESYNC`).
    Ok(super::requeue_at(next_end, now))
}

/// The least-privilege advisor's findings on the namespace as indexed, under
/// the Organization's `spec.advice` (core `advice::review`, the function
/// `orgaccess advise` calls): the status and the metrics project them.
/// Costs each member's effective privileges.
pub fn findings(snap: &Namespace, now: jiff::Timestamp) -> Vec<Finding> {
    review(
        &snap.state,
        &snap.grantees(),
        &snap.state.advice_settings(),
        now,
    )
}

/// `status.advice` and the `LeastPrivilege` condition, from the findings.
fn advice(findings: &[Finding]) -> (AdviceStatus, Want) {
    let counts = Counts::of(findings);
    let mut ids: Vec<String> = Vec::new();
    for f in findings {
        if !ids.iter().any(|i| i == f.id) {
            ids.push(f.id.to_string());
        }
    }
    let ok = counts.critical == 0 && counts.warning == 0;
    let reason = match (ok, counts.info) {
        (true, 0) => "NoFindings",
        (true, _) => "OnlyInfo",
        (false, _) => "Findings",
    };
    let message = if ids.is_empty() {
        "no least-privilege findings".to_string()
    } else {
        format!(
            "{}: {} (orgaccess advise -n <namespace> lists them)",
            counts.summary(),
            ids.join(", ")
        )
    };
    ids.truncate(32);
    (
        AdviceStatus {
            critical: counts.critical,
            warning: counts.warning,
            info: counts.info,
            findings: ids,
        },
        Want {
            type_: "LeastPrivilege",
            ok,
            reason,
            message,
        },
    )
}

/// The Organization's status: counts by phase, its administrators and the
/// advisor's findings (computed by [`findings`]), from the namespace as
/// indexed. Costs one phase per member and the members of the
/// Administrators group (the findings cost more; they are an argument).
pub fn desired_status(
    org: &Organization,
    snap: &Namespace,
    seeded: Vec<BuiltinGroup>,
    findings: &[Finding],
    now: jiff::Timestamp,
) -> OrganizationStatus {
    let (advice, least_privilege) = advice(findings);
    let previous = org.status.clone().unwrap_or_default();
    let members = &snap.state.members;
    let lifetime = snap.state.invitation_lifetime_days();
    let (mut active, mut pending, mut expired) = (0, 0, 0);
    let identity_set_members = members
        .values()
        .filter(|m| only_by_identity_sets(&snap.state, m))
        .count() as u32;
    for m in members.values() {
        match member_phase(m, lifetime, now).0 {
            MemberPhase::Active => active += 1,
            MemberPhase::Pending => pending += 1,
            MemberPhase::Expired => expired += 1,
        }
    }
    let admins_group = snap.state.administrators().map(|g| g.name.clone());
    let administrators = match &admins_group {
        Some(name) => {
            group_members(
                &snap.state,
                &snap.grantees(),
                snap.candidate_members(name),
                name,
                now,
            )
            .0
        }
        None => Vec::new(),
    };
    let has_admins = admins_group.is_some();
    OrganizationStatus {
        conditions: conditions(
            &previous.conditions,
            vec![Want {
                type_: "Ready",
                ok: has_admins,
                reason: if has_admins {
                    "Seeded"
                } else {
                    "AdministratorsMissing"
                },
                message: if has_admins {
                    format!(
                        "{} groups, {} members, {} API keys",
                        snap.state.groups.len(),
                        members.len(),
                        snap.state.api_keys.len()
                    )
                } else {
                    "the Administrators group is being created".into()
                },
            }]
            .into_iter()
            .chain(
                if has_admins {
                    Progress::Settled
                } else {
                    Progress::Waiting(
                        "SeedingBuiltinGroups",
                        "the Administrators group is being created".into(),
                    )
                }
                .wants(),
            )
            .chain([least_privilege])
            .collect(),
            org.metadata.generation,
        ),
        observed_generation: org.metadata.generation,
        groups: snap.state.groups.len() as u32,
        members: members.len() as u32,
        active_members: active,
        pending_members: pending,
        expired_members: expired,
        identity_set_members,
        api_keys: snap.state.api_keys.len() as u32,
        administrators,
        seeded_builtin_groups: seeded,
        advice: Some(advice),
    }
}
