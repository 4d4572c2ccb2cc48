//! ApiKey reconcile: observe → [`crate::core::apikey::plan`] → apply.
//!
//! The key value lives only in a Secret the operator created for this ApiKey:
//! its uid is recorded in `status.secretUid` (status is written only by the
//! operator), and its controller ownerReference carries the ApiKey's uid.
//! An ownerReference alone proves nothing (anyone who writes Secrets can set
//! one), so a Secret under the derived name with another uid — pre-created
//! with a forged ownerReference, or deleted and re-created by someone — is
//! looked at through its metadata only and never read, patched or reported
//! on (`Ready=False`, reason `SecretConflict`; [`claim`]). Every patch
//! carries the `resourceVersion` it was decided on.
//!
//! Nothing here logs, records or returns a key value: values go straight from
//! the generator into the Secret, and only `fingerprint` output leaves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::status::{Progress, Want, apply_if_changed, conditions};
use super::{Ctx, Error, RESYNC};
use crate::api::{ApiKey, ApiKeyPhase, ApiKeyStatus};
use crate::core::apikey::{
    KeyFacts, NoValue, OwnedSecret, Phase, Plan, SecretAction, SecretFacts, annotations as ann,
    plan, secret_name,
};
use crate::core::builtin::ApiKeyTemplate;
use crate::index::{Namespace, Stored};

/// The Secret's data key holding the current value, and the previous one during rotation.
pub const VALUE_KEY: &str = "apiKey";
pub const PREVIOUS_KEY: &str = "previousApiKey";
/// Label on every key Secret (the operator's Secret watch selects on it).
pub const KEY_LABEL: &str = "orgaccess.dev/api-key";
/// How soon a key in conflict looks again (a removed foreign Secret does not
/// trigger the ApiKey: it was never its owner).
const CONFLICT_RETRY: Duration = Duration::from_secs(60);

/// A new key value: 32 random bytes, URL-safe base64, with a recognisable prefix.
fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "oak_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What may be shown of a value: its first characters and its SHA-256.
pub fn fingerprint(value: &[u8]) -> (String, String) {
    let prefix = String::from_utf8_lossy(&value[..value.len().min(10)]).into_owned();
    (prefix, hex::encode(Sha256::digest(value)))
}

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(v)
}

/// Whether this ApiKey (by uid) is the Secret's controller.
fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid && o.kind == "ApiKey")
}

/// What the controller knows of the Secret it created for a key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims {
    /// `status.secretUid`: the Secret the operator created, as recorded.
    pub recorded: Option<String>,
    /// A Secret this process created whose uid the status, as cached, does
    /// not hold yet (the status write after the create failed, or the
    /// cache has not seen it).
    pub created: Option<String>,
    /// A status written before `secretUid` existed (an upgrade): the Secret
    /// it reported on, recognised by what the status published.
    pub legacy: Option<Legacy>,
}

/// What a status from before `secretUid` published of the key's Secret.
#[derive(Clone, Debug, PartialEq)]
pub struct Legacy {
    /// `status.hash` (none: the Secret held no value).
    pub hash: Option<String>,
}

impl Claims {
    /// From the key's status (and this process's memory of its creates).
    pub fn of(status: Option<&ApiKeyStatus>, created: Option<String>) -> Claims {
        let recorded = status.and_then(|s| s.secret_uid.clone());
        // Written by a version before secretUid, about a Secret it called
        // the key's own: a reconciled status, not a SecretConflict one (a
        // conflict is written without secretUid too, and must stay one).
        let legacy = status
            .filter(|s| {
                recorded.is_none()
                    && s.observed_generation.is_some()
                    && s.secret_name.is_some()
                    && !s.conditions.is_empty()
                    && !s.conditions.iter().any(|c| c.reason == "SecretConflict")
            })
            .map(|s| Legacy {
                hash: s.hash.clone(),
            });
        Claims {
            recorded,
            created,
            legacy,
        }
    }
}

/// Whose the Secret under the derived name is, from its metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    /// The Secret recorded in status, or the one this process just created.
    Ours,
    /// Reported on by a status from before `secretUid`: ours if it holds
    /// what that status published ([`Legacy`]).
    Legacy,
    Foreign,
}

/// The Secret is the key's only if the key controls it *and* it is the one
/// the operator created: its uid is the recorded one (or the one this
/// process created and has not recorded yet). With a recorded uid, any other
/// Secret is foreign, whatever its ownerReferences say.
fn claim(meta: &ObjectMeta, key_uid: &str, claims: &Claims) -> Claim {
    let Some(uid) = meta.uid.as_deref() else {
        return Claim::Foreign;
    };
    if !controlled_by(meta, key_uid) {
        return Claim::Foreign;
    }
    if claims.recorded.as_deref() == Some(uid) || claims.created.as_deref() == Some(uid) {
        Claim::Ours
    } else if claims.recorded.is_none() && claims.legacy.is_some() {
        Claim::Legacy
    } else {
        Claim::Foreign
    }
}

impl Legacy {
    /// The Secret holds what the old status published: the value whose
    /// digest it reported, or no value when it reported none.
    fn matches(&self, values: &SecretValues) -> bool {
        match &self.hash {
            Some(hash) => !values.current.is_empty() && &fingerprint(&values.current).1 == hash,
            None => values.current.is_empty() && values.previous.is_empty(),
        }
    }
}

/// What the key's Secret holds: the current value and the previous one
/// (empty when none). Never logged; only [`fingerprint`]s leave.
#[derive(Default)]
pub struct SecretValues {
    pub current: Vec<u8>,
    pub previous: Vec<u8>,
}

fn observe_owned(secret: &Secret) -> (OwnedSecret, SecretValues) {
    let data = secret.data.as_ref();
    let get = |k: &str| {
        data.and_then(|d| d.get(k))
            .map(|b| b.0.clone())
            .unwrap_or_default()
    };
    let values = SecretValues {
        current: get(VALUE_KEY),
        previous: get(PREVIOUS_KEY),
    };
    let a = secret.metadata.annotations.as_ref();
    let note = |k: &str| a.and_then(|a| a.get(k)).map(String::as_str);
    let facts = OwnedSecret {
        has_value: !values.current.is_empty(),
        has_previous: !values.previous.is_empty(),
        generation: note(ann::GENERATION).and_then(|s| s.parse().ok()),
        rotated_at: note(ann::ROTATED_AT).and_then(|s| s.parse().ok()),
        previous_expires: note(ann::PREVIOUS_EXPIRES).and_then(|s| s.parse().ok()),
        no_value: note(ann::NO_VALUE).and_then(NoValue::parse),
    };
    (facts, values)
}

/// The Secret as observed: whose it is, what it holds, at which version.
struct ObservedSecret {
    facts: SecretFacts,
    values: SecretValues,
    resource_version: Option<String>,
    /// The uid of the Secret when it is the key's own (or, after a create,
    /// of the one created).
    uid: Option<String>,
}

/// Observes the key's Secret. Ownership is decided on metadata ([`claim`]):
/// a Secret that is not the key's is never fetched whole. A Secret from
/// before `secretUid` is fetched and kept only if it holds what the old
/// status published; otherwise its values are dropped unread by anything.
async fn observe(
    secrets: &Api<Secret>,
    name: &str,
    key_uid: &str,
    claims: &Claims,
) -> Result<ObservedSecret, Error> {
    let mut observed = ObservedSecret {
        facts: SecretFacts::Missing,
        values: SecretValues::default(),
        resource_version: None,
        uid: None,
    };
    let Some(meta) = secrets.get_metadata_opt(name).await? else {
        return Ok(observed);
    };
    if claim(&meta.metadata, key_uid, claims) == Claim::Foreign {
        observed.facts = SecretFacts::Foreign;
        return Ok(observed);
    }
    // The key's: read it whole, and judge again on what was read (it may
    // have been replaced in between). Gone meanwhile: missing.
    let Some(secret) = secrets.get_opt(name).await? else {
        return Ok(observed);
    };
    let (owned, values) = observe_owned(&secret);
    let ours = match claim(&secret.metadata, key_uid, claims) {
        Claim::Ours => true,
        Claim::Legacy => claims.legacy.as_ref().is_some_and(|l| l.matches(&values)),
        Claim::Foreign => false,
    };
    if ours {
        observed.facts = SecretFacts::Owned(owned);
        observed.values = values;
        observed.resource_version = secret.metadata.resource_version.clone();
        observed.uid = secret.metadata.uid.clone();
    } else {
        observed.facts = SecretFacts::Foreign;
    }
    Ok(observed)
}

/// The key's facts for [`plan`]: its spec, creation time and what its status
/// last reported (for Secrets older than the generation annotation).
pub fn key_facts(key: &ApiKey, warning_days: i64, now: Timestamp) -> KeyFacts {
    KeyFacts {
        created: created(key, now),
        enabled: key.spec.enabled,
        template: key.spec.template.unwrap_or(ApiKeyTemplate::Custom),
        lifetime: key.spec.lifetime.clone(),
        wanted_generation: key.spec.rotation.as_ref().map_or(0, |r| r.generation),
        previous_validity: key
            .spec
            .rotation
            .as_ref()
            .map(|r| r.previous_key_validity.clone()),
        warning_days,
        legacy_generation: key.status.as_ref().and_then(|s| s.rotation_generation),
    }
}

/// When the key's lifetime started (`now` for an object without one, which
/// the apiserver never serves).
fn created(key: &ApiKey, now: Timestamp) -> Timestamp {
    key.metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0)
}

/// An Event to publish: type, reason, note, action.
type EventSpec = (EventType, &'static str, String, &'static str);

fn conflict_message(name: &str) -> String {
    format!(
        "Secret {name} exists but is not the one the operator created for this ApiKey (status.secretUid), \
         whatever its ownerReferences say; it is left untouched and nothing of it is used. \
         Delete or rename it for this key to get a value"
    )
}

/// The Event that says what `action` did to Secret `name` (none for silent
/// actions, and for a conflict the status already reports).
fn secret_event(
    action: &SecretAction,
    facts: &SecretFacts,
    previous: &ApiKeyStatus,
    name: &str,
    expires: Timestamp,
) -> Option<EventSpec> {
    let gone = |why: NoValue, removed: bool| -> EventSpec {
        let what = if removed {
            format!("its value was removed from Secret {name}")
        } else {
            format!("Secret {name} holds no value")
        };
        match why {
            NoValue::Expired => (
                EventType::Warning,
                "KeyExpired",
                format!(
                    "the key reached the end of its lifetime at {expires}; {what}. Create a new key"
                ),
                "Expire",
            ),
            NoValue::Disabled => (
                EventType::Normal,
                "KeyDisabled",
                format!(
                    "the key is disabled; {what}. Enabling it generates {}",
                    if removed { "a new value" } else { "one" }
                ),
                "Disable",
            ),
        }
    };
    match action {
        SecretAction::Nothing | SecretAction::DropPrevious | SecretAction::Stamp { .. } => None,
        SecretAction::Conflict => (!previous
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.reason == "SecretConflict"))
        .then(|| {
            (
                EventType::Warning,
                "SecretConflict",
                conflict_message(name),
                "Generate",
            )
        }),
        SecretAction::Create { .. } if previous.hash.is_some() => Some((
            EventType::Warning,
            "KeyRegenerated",
            format!("Secret {name} was missing; a new key value was generated"),
            "Generate",
        )),
        SecretAction::Create { .. } => Some((
            EventType::Normal,
            "KeyGenerated",
            format!("key value generated into Secret {name}"),
            "Generate",
        )),
        SecretAction::CreateEmpty { why } => Some(gone(*why, false)),
        SecretAction::Blank { why } => Some(gone(*why, true)),
        SecretAction::Rotate {
            generation,
            previous_until,
        } => Some((
            EventType::Normal,
            "KeyRotated",
            format!(
                "new value in Secret {name} (generation {generation}); the previous value stays valid until {previous_until}"
            ),
            "Rotate",
        )),
        SecretAction::Regenerate { .. } if matches!(facts, SecretFacts::Owned(s) if s.no_value == Some(NoValue::Disabled)) => {
            Some((
                EventType::Normal,
                "KeyEnabled",
                format!("the key is enabled again: a new value was generated into Secret {name}"),
                "Enable",
            ))
        }
        SecretAction::Regenerate { .. } => Some((
            EventType::Warning,
            "KeyRegenerated",
            format!("Secret {name} held no value; a new key value was generated"),
            "Generate",
        )),
    }
}

/// Carries out `plan.action` on the Secret; `values` becomes what it holds.
/// Each patch carries the `resourceVersion` the plan was made on.
async fn apply_secret(
    secrets: &Api<Secret>,
    key: &ApiKey,
    name: &str,
    plan: &Plan,
    observed: &mut ObservedSecret,
    now: Timestamp,
) -> Result<(), Error> {
    let resource_version = observed.resource_version.clone();
    let precondition = |mut patch: serde_json::Value| {
        patch["metadata"]["resourceVersion"] = serde_json::json!(resource_version);
        patch
    };
    match &plan.action {
        SecretAction::Nothing | SecretAction::Conflict => {}
        SecretAction::Create { generation } => {
            let value = generate();
            let notes = BTreeMap::from([(ann::GENERATION.to_string(), generation.to_string())]);
            observed.uid = create(secrets, key, name, notes, &value).await?;
            observed.values.current = value.into_bytes();
        }
        SecretAction::CreateEmpty { why } => {
            let generation = key.spec.rotation.as_ref().map_or(0, |r| r.generation);
            let notes = BTreeMap::from([
                (ann::GENERATION.to_string(), generation.to_string()),
                (ann::NO_VALUE.to_string(), why.as_str().to_string()),
                (ann::NO_VALUE_MESSAGE.to_string(), why.message(plan.expires)),
            ]);
            observed.uid = create(secrets, key, name, notes, "").await?;
        }
        SecretAction::Rotate {
            generation,
            previous_until,
        } => {
            let value = generate();
            let patch = precondition(serde_json::json!({
                "metadata": {"annotations": {
                    ann::GENERATION: generation.to_string(),
                    ann::ROTATED_AT: now.to_string(),
                    ann::PREVIOUS_EXPIRES: previous_until.to_string(),
                }},
                "data": {VALUE_KEY: b64(value.as_bytes()), PREVIOUS_KEY: b64(&observed.values.current)},
            }));
            patch_secret(secrets, name, &patch).await?;
            observed.values.previous =
                std::mem::replace(&mut observed.values.current, value.into_bytes());
        }
        SecretAction::Regenerate { generation } => {
            let value = generate();
            let patch = precondition(serde_json::json!({
                "metadata": {"annotations": {
                    ann::GENERATION: generation.to_string(),
                    ann::ROTATED_AT: null,
                    ann::PREVIOUS_EXPIRES: null,
                    ann::NO_VALUE: null,
                    ann::NO_VALUE_MESSAGE: null,
                }},
                "data": {VALUE_KEY: b64(value.as_bytes()), PREVIOUS_KEY: null},
            }));
            patch_secret(secrets, name, &patch).await?;
            observed.values.current = value.into_bytes();
            observed.values.previous.clear();
        }
        SecretAction::DropPrevious => {
            let patch = precondition(serde_json::json!({
                "metadata": {"annotations": {ann::PREVIOUS_EXPIRES: null}},
                "data": {PREVIOUS_KEY: null},
            }));
            patch_secret(secrets, name, &patch).await?;
            observed.values.previous.clear();
        }
        SecretAction::Blank { why } => {
            let patch = precondition(serde_json::json!({
                "metadata": {"annotations": {
                    ann::NO_VALUE: why.as_str(),
                    ann::NO_VALUE_MESSAGE: why.message(plan.expires),
                    ann::PREVIOUS_EXPIRES: null,
                }},
                "data": {VALUE_KEY: "", PREVIOUS_KEY: null},
            }));
            patch_secret(secrets, name, &patch).await?;
            observed.values.current.clear();
            observed.values.previous.clear();
        }
        SecretAction::Stamp { generation } => {
            let patch = precondition(serde_json::json!({
                "metadata": {"annotations": {ann::GENERATION: generation.to_string()}},
            }));
            patch_secret(secrets, name, &patch).await?;
        }
    }
    Ok(())
}

/// The ApiKey's status, from the key, its organization as indexed, the plan
/// and what the Secret holds after the plan's action (pure).
pub fn desired_status(
    key: &ApiKey,
    snap: &Namespace,
    plan: &Plan,
    held: &SecretValues,
    secret_uid: Option<String>,
    created: Timestamp,
) -> ApiKeyStatus {
    let name = secret_name(&key.name_any());
    let previous = key.status.clone().unwrap_or_default();
    let conflict = plan.action == SecretAction::Conflict;
    // A disabled or expired key in conflict says so by its phase (it has
    // no value either way); a key that would be live says SecretConflict.
    let phase = match plan.phase {
        Phase::Active | Phase::Rotating if conflict => ApiKeyPhase::SecretConflict,
        Phase::Active => ApiKeyPhase::Active,
        Phase::Disabled => ApiKeyPhase::Disabled,
        Phase::Expired => ApiKeyPhase::Expired,
        Phase::Rotating => ApiKeyPhase::Rotating,
    };
    let shown = |has: bool, v: &[u8]| (has && !conflict && !v.is_empty()).then(|| fingerprint(v));
    let current = shown(plan.has_value, &held.current);
    let previous_value = shown(plan.has_previous, &held.previous);
    let mut status = ApiKeyStatus {
        secret_name: Some(name.clone()),
        // The Secret the operator created; in a conflict, still the one
        // recorded before (none: nothing was ever created).
        secret_uid: secret_uid.or_else(|| previous.secret_uid.clone()),
        phase: Some(phase),
        prefix: current.as_ref().map(|f| f.0.clone()),
        hash: current.map(|f| f.1),
        created_at: Some(created.to_string()),
        expires_at: Some(plan.expires.to_string()),
        rotation_generation: plan.generation,
        rotated_at: plan.rotated_at.map(|t| t.to_string()),
        previous_expires_at: plan.previous_expires.map(|t| t.to_string()),
        previous_hash: previous_value.as_ref().map(|f| f.1.clone()),
        previous_prefix: previous_value.map(|f| f.0),
        ..ApiKeyStatus::default()
    };
    status.privileges = snap
        .grantees()
        .api_keys
        .get(&key.name_any())
        .map(|p| p.to_specs())
        .unwrap_or_default();
    // Read by gateways from the decision service; shown here so the
    // binding is visible where the key's standing is.
    status.search_hub = key.spec.search_hub.clone();
    status.observed_generation = key.metadata.generation;
    let (ready_reason, ready_message) = if conflict {
        ("SecretConflict", conflict_message(&name))
    } else {
        ready(phase, plan, &name)
    };
    let expires = plan.expires;
    status.conditions = conditions(
        &previous.conditions,
        vec![
            // Disabled and Expired are what the spec (or time) asks for:
            // settled, so Ready. Only a Secret the key does not control
            // stalls it (docs/status.md).
            Want {
                type_: "Ready",
                ok: !conflict,
                reason: ready_reason,
                message: ready_message.clone(),
            },
            Want {
                type_: "ExpiringSoon",
                ok: plan.expiring_soon,
                reason: if plan.expiring_soon {
                    "ExpiringSoon"
                } else if phase == ApiKeyPhase::Expired {
                    "Expired"
                } else {
                    "NotExpiringSoon"
                },
                message: if phase == ApiKeyPhase::Expired {
                    format!("the key expired at {expires}")
                } else {
                    format!(
                        "the key expires at {expires} ({} days after its creation)",
                        plan.lifetime_days
                    )
                },
            },
        ]
        .into_iter()
        .chain(
            if conflict {
                Progress::Stalled("SecretConflict", ready_message)
            } else {
                Progress::Settled
            }
            .wants(),
        )
        .collect(),
        key.metadata.generation,
    );
    status
}

/// The Ready condition's reason and message for a key without conflict.
fn ready(phase: ApiKeyPhase, plan: &Plan, name: &str) -> (&'static str, String) {
    let reason = match phase {
        ApiKeyPhase::Active => "Active",
        ApiKeyPhase::Rotating => "Rotating",
        ApiKeyPhase::Disabled => "Disabled",
        ApiKeyPhase::Expired => "Expired",
        ApiKeyPhase::SecretConflict => "SecretConflict",
    };
    let settled = match phase {
        ApiKeyPhase::Active | ApiKeyPhase::Rotating => format!("key is {phase:?}"),
        // Never asked: a conflict has its own reason and message.
        ApiKeyPhase::SecretConflict => conflict_message(name),
        ApiKeyPhase::Disabled => format!(
            "key is disabled as spec.enabled asks; Secret {name} holds no value (enabling it generates one)"
        ),
        ApiKeyPhase::Expired => format!(
            "key expired at {}; Secret {name} holds no value. Create a new key",
            plan.expires
        ),
    };
    let message = if plan.notes.is_empty() {
        settled
    } else {
        format!("{settled}; {}", plan.notes.join("; "))
    };
    (reason, message)
}

/// Observe the Secret → plan (core) → apply to the Secret → desired status →
/// write it if it changed; wake up at the next deadline.
pub async fn reconcile(stored: Arc<Stored<ApiKey>>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let key = &stored.object;
    let ns = key.namespace().ok_or(Error::NotNamespaced)?;
    let uid = key.uid().ok_or(Error::NotNamespaced)?;
    let now = super::now();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let name = secret_name(&key.name_any());

    let claims = Claims::of(key.status.as_ref(), ctx.created_secret(&uid));
    if claims.created.is_some() && claims.created == claims.recorded {
        ctx.remember_created_secret(&uid, None);
    }
    let mut observed = observe(&secrets, &name, &uid, &claims).await?;
    let plan = plan(
        &key_facts(key, ctx.api_key_warning_days, now),
        &observed.facts,
        now,
    );
    let previous = key.status.clone().unwrap_or_default();
    let event = secret_event(
        &plan.action,
        &observed.facts,
        &previous,
        &name,
        plan.expires,
    );
    apply_secret(&secrets, key, &name, &plan, &mut observed, now).await?;
    if matches!(
        plan.action,
        SecretAction::Create { .. } | SecretAction::CreateEmpty { .. }
    ) {
        // Until the cached status shows it recorded (the write below may
        // fail, and the next reconcile may read a status older than it).
        ctx.remember_created_secret(&uid, observed.uid.clone());
    }
    if let Some(event) = event {
        publish(&ctx, key, event).await;
    }

    // Not held across the write (copy on write, see member::reconcile).
    let status = desired_status(
        key,
        &ctx.caches.index.namespace(&ns),
        &plan,
        &observed.values,
        observed.uid.clone(),
        created(key, now),
    );
    let api: Api<ApiKey> = Api::namespaced(ctx.client.clone(), &ns);
    let mut changes: Vec<String> = secret_change(&plan.action)
        .map(String::from)
        .into_iter()
        .collect();
    if let Some(status_change) = apply_if_changed(&api, key, &stored.written(), &status).await? {
        ctx.metrics.status_write("ApiKey");
        changes.push(status_change);
    }
    ctx.reconciled(key, &changes);
    let was_soon = previous
        .conditions
        .iter()
        .any(|c| c.type_ == "ExpiringSoon" && c.status == "True");
    if plan.expiring_soon && !was_soon {
        let note = format!(
            "the key expires at {}; create a replacement key and move its consumers before then",
            plan.expires
        );
        publish(
            &ctx,
            key,
            (EventType::Warning, "KeyExpiringSoon", note, "Expire"),
        )
        .await;
    }

    // Wake up for the next deadline: the warning, expiry or the end of a rotation window.
    let conflict = plan.action == SecretAction::Conflict;
    let next = plan
        .next_deadline
        .map(|t: Timestamp| Duration::from_secs(t.duration_since(now).as_secs().max(1) as u64))
        .unwrap_or(RESYNC)
        .min(if conflict { CONFLICT_RETRY } else { RESYNC });
    Ok(Action::requeue(next))
}

async fn publish(ctx: &Ctx, key: &ApiKey, (type_, reason, note, action): EventSpec) {
    ctx.publish(
        key,
        Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        },
    )
    .await;
}

/// What a Secret action did, for the reconcile's log line (never a value).
fn secret_change(action: &SecretAction) -> Option<&'static str> {
    match action {
        SecretAction::Nothing | SecretAction::Conflict => None,
        SecretAction::Create { .. } => Some("secret created with a new key"),
        SecretAction::CreateEmpty { .. } => Some("secret created without a key"),
        SecretAction::Rotate { .. } => Some("key rotated (previous key kept for its validity)"),
        SecretAction::Regenerate { .. } => Some("key regenerated"),
        SecretAction::DropPrevious => Some("previous key removed"),
        SecretAction::Blank { .. } => Some("key removed from the secret"),
        SecretAction::Stamp { .. } => Some("secret stamped with the rotation generation"),
    }
}

/// Creates the key's Secret; the uid the apiserver gave it.
async fn create(
    secrets: &Api<Secret>,
    key: &ApiKey,
    name: &str,
    annotations: BTreeMap<String, String>,
    value: &str,
) -> Result<Option<String>, Error> {
    let owner = key.controller_owner_ref(&()).ok_or(Error::NotNamespaced)?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            owner_references: Some(vec![owner]),
            labels: Some(BTreeMap::from([(KEY_LABEL.to_string(), key.name_any())])),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([(VALUE_KEY.to_string(), value.to_string())])),
        ..Secret::default()
    };
    // A Secret created meanwhile under the name makes this fail (409): the
    // next reconcile judges its ownership.
    let created = secrets.create(&PostParams::default(), &secret).await?;
    Ok(created.metadata.uid)
}

/// Merge-patches an owned Secret; the patch carries the resourceVersion the
/// decision was made on, so a concurrent change makes it fail (409) and the
/// reconcile starts over from what is there.
async fn patch_secret(
    secrets: &Api<Secret>,
    name: &str,
    patch: &serde_json::Value,
) -> Result<(), Error> {
    secrets
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn meta(owners: Vec<(&str, &str, Option<bool>)>) -> ObjectMeta {
        ObjectMeta {
            owner_references: Some(
                owners
                    .into_iter()
                    .map(|(kind, uid, controller)| OwnerReference {
                        api_version: "orgaccess.dev/v1alpha1".into(),
                        kind: kind.into(),
                        name: "k".into(),
                        uid: uid.into(),
                        controller,
                        block_owner_deletion: None,
                    })
                    .collect(),
            ),
            ..ObjectMeta::default()
        }
    }

    fn secret(uid: &str, owner: &str) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            ..meta(vec![("ApiKey", owner, Some(true))])
        }
    }

    /// An ownerReference proves nothing (docs/api-keys.md, a Secret
    /// pre-created with a forged owner reference): only the Secret whose uid
    /// the status recorded (or this process just created) is the key's.
    /// (claims, secret uid, claim)
    #[test]
    fn only_the_secret_the_operator_created_is_the_keys() {
        let recorded = |uid: &str| Claims {
            recorded: Some(uid.into()),
            ..Claims::default()
        };
        let created = |uid: &str| Claims {
            created: Some(uid.into()),
            ..Claims::default()
        };
        let legacy = Claims {
            legacy: Some(Legacy { hash: None }),
            ..Claims::default()
        };
        let cases = [
            ("the recorded Secret", recorded("s1"), "s1", Claim::Ours),
            (
                "re-created by someone, forged owner",
                recorded("s1"),
                "s2",
                Claim::Foreign,
            ),
            (
                "created here, status not written yet",
                created("s1"),
                "s1",
                Claim::Ours,
            ),
            (
                "pre-created before the first reconcile",
                Claims::default(),
                "s1",
                Claim::Foreign,
            ),
            (
                "another Secret than the one created",
                created("s1"),
                "s2",
                Claim::Foreign,
            ),
            (
                "re-created here, the cached status names the one before",
                Claims {
                    recorded: Some("s1".into()),
                    created: Some("s2".into()),
                    legacy: None,
                },
                "s2",
                Claim::Ours,
            ),
            ("from before secretUid", legacy.clone(), "s1", Claim::Legacy),
        ];
        for (what, claims, uid, want) in cases {
            assert_eq!(claim(&secret(uid, "k1"), "k1", &claims), want, "{what}");
        }
        // Whatever the status says, a Secret the key does not control is not its.
        for claims in [recorded("s1"), created("s1"), legacy] {
            assert_eq!(claim(&secret("s1", "k0"), "k1", &claims), Claim::Foreign);
        }
        assert_eq!(
            claim(
                &meta(vec![("ApiKey", "k1", Some(true))]),
                "k1",
                &recorded("s1")
            ),
            Claim::Foreign,
            "no uid"
        );
    }

    #[test]
    fn a_status_from_before_secret_uid_is_legacy_unless_it_reported_a_conflict() {
        let ready = |reason: &str| ApiKeyStatus {
            observed_generation: Some(1),
            secret_name: Some("k-apikey".into()),
            hash: Some("ab".into()),
            conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: reason.into(),
                message: String::new(),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    Timestamp::now(),
                ),
                observed_generation: Some(1),
            }],
            ..ApiKeyStatus::default()
        };
        let legacy = Claims::of(Some(&ready("Active")), None).legacy;
        assert_eq!(
            legacy,
            Some(Legacy {
                hash: Some("ab".into())
            })
        );
        assert_eq!(
            Claims::of(Some(&ready("SecretConflict")), None).legacy,
            None
        );
        assert_eq!(Claims::of(None, None).legacy, None);
        let mut recorded = ready("Active");
        recorded.secret_uid = Some("s1".into());
        let claims = Claims::of(Some(&recorded), None);
        assert_eq!(
            (claims.recorded.as_deref(), claims.legacy),
            (Some("s1"), None)
        );
        // A legacy Secret is the key's only if it holds what was published.
        let held = |v: &[u8]| SecretValues {
            current: v.to_vec(),
            previous: Vec::new(),
        };
        let published = Legacy {
            hash: Some(fingerprint(b"oak_value").1),
        };
        assert!(published.matches(&held(b"oak_value")));
        assert!(!published.matches(&held(b"another apps value")));
        assert!(!published.matches(&held(b"")));
        let none = Legacy { hash: None };
        assert!(none.matches(&held(b"")));
        assert!(!none.matches(&held(b"oak_value")));
    }

    #[test]
    fn only_the_controller_reference_with_this_uid_counts() {
        assert!(controlled_by(
            &meta(vec![("ApiKey", "u1", Some(true))]),
            "u1"
        ));
        // Same name, another (older) key: an orphan from a deleted ApiKey.
        assert!(!controlled_by(
            &meta(vec![("ApiKey", "u0", Some(true))]),
            "u1"
        ));
        // An owner reference that is not the controller one.
        assert!(!controlled_by(&meta(vec![("ApiKey", "u1", None)]), "u1"));
        assert!(!controlled_by(
            &meta(vec![("ConfigMap", "u1", Some(true))]),
            "u1"
        ));
        assert!(!controlled_by(&ObjectMeta::default(), "u1"));
    }
}
