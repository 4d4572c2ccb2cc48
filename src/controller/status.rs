//! Status writing: conditions per the API conventions, and server-side apply
//! only when the status actually changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::index::cached_status::{FOREIGN, KindStatus, Written, own_fields};

/// Field manager of every status write.
pub const MANAGER: &str = "orgaccess-controller";

/// A condition as we want it; `lastTransitionTime` is filled by [`conditions`].
#[derive(Clone)]
pub struct Want {
    pub type_: &'static str,
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

/// Builds conditions, keeping the previous transition time when the status
/// did not change, so an unchanged object produces an identical status.
pub fn conditions(
    previous: &[Condition],
    wanted: Vec<Want>,
    generation: Option<i64>,
) -> Vec<Condition> {
    wanted
        .into_iter()
        .map(|w| {
            let status = if w.ok { "True" } else { "False" }.to_string();
            let last = previous
                .iter()
                .find(|c| c.type_ == w.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| Time(jiff::Timestamp::now()));
            Condition {
                type_: w.type_.to_string(),
                status,
                reason: w.reason.to_string(),
                message: w.message,
                observed_generation: generation,
                last_transition_time: last,
            }
        })
        .collect()
}

/// Writes `status` by server-side apply if it differs from the status
/// written. Returns what changed (see [`changed_fields`]) when a
/// write happened, `None` when the status was already right. The fields
/// another writer owns ([`FOREIGN`]: an ApiKey's `lastUsedAt`) are neither
/// compared nor sent, so the apply (forced) leaves them to their owner.
pub async fn apply_if_changed<K, S>(
    api: &Api<K>,
    obj: &K,
    written: &Written<'_, S>,
    status: &S,
) -> kube::Result<Option<String>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: KindStatus,
{
    if written.unchanged(status) {
        return Ok(None);
    }
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": own_fields(status),
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(Some(changed_fields_of(written, status)))
}

/// [`changed_fields`] of a written status, which may be trimmed: a dropped
/// field is compared by digest.
fn changed_fields_of<S: KindStatus>(written: &Written<'_, S>, wanted: &S) -> String {
    let dropped: Vec<String> = written
        .digest()
        .map(|d| d.fields().map(String::from).collect())
        .unwrap_or_default();
    // A trimmed copy's conditions are in its digest: given back, so that
    // the log names the `Type=Status` changes.
    let restored = written.stored().map(|_| written.status());
    describe_changes(restored.as_ref(), wanted, &dropped, |field| {
        written.field_changed(wanted, field)
    })
}

/// For the log: which status fields differ, by name, and each condition
/// whose status changed as `Type=Status`. Never a value (a status holds
/// no secret, but a log line needs no more than this).
pub fn changed_fields<S: Serialize>(current: Option<&S>, wanted: &S) -> String {
    describe_changes(current, wanted, &[], |_| false)
}

/// [`changed_fields`], with the fields in `dropped` (absent from a trimmed
/// `current`) judged by `dropped_changed` instead of by value.
fn describe_changes<S: Serialize>(
    current: Option<&S>,
    wanted: &S,
    dropped: &[String],
    dropped_changed: impl Fn(&str) -> bool,
) -> String {
    let as_map = |s: Option<&S>| match s.map(serde_json::to_value) {
        Some(Ok(serde_json::Value::Object(m))) => m,
        _ => serde_json::Map::new(),
    };
    let (before, after) = (as_map(current), as_map(Some(wanted)));
    let keys: std::collections::BTreeSet<&String> = after
        .keys()
        .chain(before.keys())
        .chain(dropped)
        .filter(|k| !FOREIGN.contains(&k.as_str()))
        .collect();
    let mut fields: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            if dropped.contains(k) {
                dropped_changed(k)
            } else {
                before.get(*k) != after.get(*k)
            }
        })
        .map(|k| match k.as_str() {
            "conditions" => condition_changes(before.get(k), after.get(k)),
            _ => k.clone(),
        })
        .collect();
    fields.sort();
    format!("status {}", fields.join(", "))
}

/// `conditions (Ready=True, ResolvedRefs=False)`: the conditions whose
/// status is new; only `conditions` when just a message or reason changed.
fn condition_changes(
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> String {
    let states = |v: Option<&serde_json::Value>| -> Vec<(String, String)> {
        v.and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some((
                    c["type"].as_str()?.to_string(),
                    c["status"].as_str()?.to_string(),
                ))
            })
            .collect()
    };
    let old = states(before);
    let changed: Vec<String> = states(after)
        .into_iter()
        .filter(|c| !old.contains(c))
        .map(|(t, s)| format!("{t}={s}"))
        .collect();
    if changed.is_empty() {
        "conditions".into()
    } else {
        format!("conditions ({})", changed.join(", "))
    }
}

/// What kstatus, `kubectl wait`, Flux and Argo CD read besides `Ready`
/// (docs/status.md). At most one of the two is true:
/// - `Reconciling=True`: the operator is waiting for something that is
///   expected to happen without anyone changing this object (a referenced
///   group or key being created, the built-in groups being seeded);
///   kstatus reads InProgress.
/// - `Stalled=True`: the operator cannot make progress until someone changes
///   something (an invalid spec, a Secret it does not control); kstatus reads
///   Failed.
///
/// Both are always written (False when not the case), so `kubectl wait
/// --for=condition=Stalled=False` and Argo CD see an explicit answer.
pub enum Progress {
    Settled,
    Waiting(&'static str, String),
    Stalled(&'static str, String),
}

impl Progress {
    pub fn wants(self) -> [Want; 2] {
        let (reconciling, stalled) = match self {
            Progress::Settled => (None, None),
            Progress::Waiting(r, m) => (Some((r, m)), None),
            Progress::Stalled(r, m) => (None, Some((r, m))),
        };
        let want =
            |type_, c: Option<(&'static str, String)>, idle: &'static str, note: &str| match c {
                Some((reason, message)) => Want {
                    type_,
                    ok: true,
                    reason,
                    message,
                },
                None => Want {
                    type_,
                    ok: false,
                    reason: idle,
                    message: note.to_string(),
                },
            };
        [
            want(
                "Reconciling",
                reconciling,
                "Reconciled",
                "the status reflects the current generation",
            ),
            want(
                "Stalled",
                stalled,
                "NotStalled",
                "nothing blocks reconciliation",
            ),
        ]
    }
}

/// A Warning Event when the `ResolvedRefs` condition turns False, or names
/// other missing objects than before: said once per change, not per resync.
pub fn unresolved_event(
    previous: &[Condition],
    current: &[Condition],
) -> Option<kube::runtime::events::Event> {
    let now = current
        .iter()
        .find(|c| c.type_ == "ResolvedRefs" && c.status == "False")?;
    let before = previous.iter().find(|c| c.type_ == "ResolvedRefs");
    if before.is_some_and(|b| b.status == now.status && b.message == now.message) {
        return None;
    }
    Some(kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Warning,
        reason: now.reason.clone(),
        note: Some(now.message.clone()),
        action: "Resolve".into(),
        secondary: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(ok: bool, message: &str) -> Vec<Condition> {
        conditions(
            &[],
            vec![Want {
                type_: "ResolvedRefs",
                ok,
                reason: if ok {
                    "AllGroupsFound"
                } else {
                    "GroupNotFound"
                },
                message: message.into(),
            }],
            Some(1),
        )
    }

    #[test]
    fn an_unresolved_reference_is_told_once_per_change() {
        let fine = resolved(true, "every group exists");
        let ghosts = resolved(false, "groups not found: ghosts");
        let event = unresolved_event(&fine, &ghosts).expect("a Warning when refs break");
        assert_eq!(event.reason, "GroupNotFound");
        assert_eq!(event.note.as_deref(), Some("groups not found: ghosts"));
        assert!(unresolved_event(&[], &ghosts).is_some(), "first status");
        assert!(unresolved_event(&ghosts, &ghosts).is_none(), "a resync");
        let more = resolved(false, "groups not found: ghosts, spirits");
        assert!(unresolved_event(&ghosts, &more).is_some());
        assert!(unresolved_event(&ghosts, &fine).is_none());
    }

    #[test]
    fn changed_fields_names_fields_and_condition_transitions_only() {
        let before = serde_json::json!({
            "phase": "Pending",
            "memberCount": 2,
            "fingerprint": "sha256:aaaa",
            "conditions": [
                {"type": "Ready", "status": "False", "message": "waiting"},
                {"type": "Stalled", "status": "False", "message": "fine"},
            ],
        });
        let after = serde_json::json!({
            "phase": "Active",
            "memberCount": 2,
            "fingerprint": "sha256:bbbb",
            "conditions": [
                {"type": "Ready", "status": "True", "message": "ok"},
                {"type": "Stalled", "status": "False", "message": "still fine"},
            ],
        });
        let changed = changed_fields(Some(&before), &after);
        assert_eq!(
            changed,
            "status conditions (Ready=True), fingerprint, phase"
        );
        assert!(!changed.contains("bbbb") && !changed.contains("Active"));
        assert_eq!(
            changed_fields(None, &serde_json::json!({"phase": "Active"})),
            "status phase"
        );
        let reworded = serde_json::json!({"conditions": [{"type": "Ready", "status": "True", "message": "b"}]});
        let original = serde_json::json!({"conditions": [{"type": "Ready", "status": "True", "message": "a"}]});
        assert_eq!(
            changed_fields(Some(&original), &reworded),
            "status conditions"
        );
        // The decision service's lastUsedAt is not the controller's change.
        let used = serde_json::json!({"hash": "ab", "lastUsedAt": "2026-11-30T19:05:00Z"});
        assert_eq!(
            changed_fields(Some(&used), &serde_json::json!({"hash": "cd"})),
            "status hash"
        );
    }
}

#[cfg(test)]
mod trimmed_tests {
    use super::*;
    use crate::api::{EffectivePrivilege, Member, MemberSpec, MemberStatus};
    use crate::core::catalog::Service;
    use crate::core::model::MemberIdentity;
    use crate::core::privilege::{AccessLevel, PrivilegeSpec};
    use crate::index::Stored;

    fn want(type_: &'static str, ok: bool) -> Want {
        Want {
            type_,
            ok,
            reason: "R",
            message: String::new(),
        }
    }

    /// A trimmed cached copy names the same changes as the full one: the
    /// dropped `privileges` by digest, two condition transitions intact.
    #[test]
    fn a_trimmed_copy_names_the_same_changes() {
        let mut m = Member::new(
            "ana",
            MemberSpec {
                identity: MemberIdentity {
                    provider: crate::core::model::Provider::Email,
                    username: "ana@acme.example".into(),
                },
                groups: vec![],
                subjects: vec![],
                accepted: true,
                sso_groups: vec![],
                salesforce_profile: None,
                until: None,
                group_until: Default::default(),
            },
        );
        m.status = Some(MemberStatus {
            conditions: conditions(
                &[],
                vec![want("Ready", false), want("ResolvedRefs", false)],
                None,
            ),
            ..MemberStatus::default()
        });
        let wanted = MemberStatus {
            conditions: conditions(
                &[],
                vec![want("Ready", true), want("ResolvedRefs", true)],
                None,
            ),
            privileges: vec![EffectivePrivilege {
                privilege: PrivilegeSpec {
                    service: Service::Content,
                    domain: "Sources".into(),
                    level: AccessLevel::View,
                    can_create: None,
                    resources: vec![],
                },
                granted_by: vec!["readers".into()],
            }],
            ..MemberStatus::default()
        };
        let full = changed_fields(m.status.as_ref(), &wanted);
        assert_eq!(
            full,
            "status conditions (Ready=True, ResolvedRefs=True), privileges"
        );
        let whole = Stored::from(m.clone());
        assert_eq!(changed_fields_of(&whole.written(), &wanted), full);
        let kept = Stored::keep(m);
        assert!(kept.written().digest().is_some(), "trimmed");
        assert_eq!(changed_fields_of(&kept.written(), &wanted), full);
    }
}
