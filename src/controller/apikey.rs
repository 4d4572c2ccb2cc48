//! ApiKey reconcile: the key value lives only in a Secret the ApiKey owns;
//! status holds a prefix and a hash. Rotation keeps the previous value valid
//! for at most 30 days; keys expire after their lifetime.
//!
//! Nothing here logs, records or returns a key value: values go straight from
//! the generator into the Secret, and only `fingerprint` output leaves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::status::{Want, apply_if_changed, conditions};
use super::{Ctx, Error, RESYNC};
use crate::api::{ApiKey, ApiKeyPhase, ApiKeyStatus};
use crate::core::builtin::ApiKeyTemplate;
use crate::core::rules::lifetime_days;

/// The Secret's data key holding the current value, and the previous one during rotation.
pub const VALUE_KEY: &str = "apiKey";
pub const PREVIOUS_KEY: &str = "previousApiKey";
const PREVIOUS_EXPIRES: &str = "orgaccess.dev/previous-expires-at";
/// The longest a rotated-out value stays valid.
pub const MAX_PREVIOUS_DAYS: i64 = 30;

pub fn secret_name(key: &ApiKey) -> String {
    format!("{}-apikey", key.name_any())
}

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

fn ts(s: &Option<String>) -> Option<Timestamp> {
    s.as_deref().and_then(|s| s.parse().ok())
}

fn days(d: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * d)
}

pub async fn reconcile(key: Arc<ApiKey>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = key.namespace().ok_or(Error::NotNamespaced)?;
    let now = super::now();
    let previous = key.status.clone().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let name = secret_name(&key);
    let wanted_generation = key.spec.rotation.as_ref().map_or(0, |r| r.generation);

    let mut status = ApiKeyStatus {
        secret_name: Some(name.clone()),
        created_at: previous.created_at.clone(),
        rotation_generation: previous.rotation_generation,
        rotated_at: previous.rotated_at.clone(),
        previous_expires_at: previous.previous_expires_at.clone(),
        previous_prefix: previous.previous_prefix.clone(),
        ..ApiKeyStatus::default()
    };
    let mut notes: Vec<String> = Vec::new();

    let value: Vec<u8> = match secrets.get_opt(&name).await? {
        None => {
            // Created once. A Secret deleted by hand is regenerated, loudly.
            let value = generate();
            let owner = key.controller_owner_ref(&()).ok_or(Error::NotNamespaced)?;
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    owner_references: Some(vec![owner]),
                    labels: Some(BTreeMap::from([(
                        "orgaccess.dev/api-key".to_string(),
                        key.name_any(),
                    )])),
                    ..ObjectMeta::default()
                },
                type_: Some("Opaque".into()),
                string_data: Some(BTreeMap::from([(VALUE_KEY.to_string(), value.clone())])),
                ..Secret::default()
            };
            secrets.create(&PostParams::default(), &secret).await?;
            let regenerated = previous.hash.is_some();
            // The lifetime counts from the ApiKey's creation, not from this reconcile.
            status.created_at = Some(
                key.metadata
                    .creation_timestamp
                    .as_ref()
                    .map_or(now, |t| t.0)
                    .to_string(),
            );
            status.rotation_generation = Some(wanted_generation);
            status.rotated_at = None;
            status.previous_expires_at = None;
            status.previous_prefix = None;
            let (reason, type_, note) = if regenerated {
                (
                    "KeyRegenerated",
                    EventType::Warning,
                    format!("Secret {name} was missing; a new key value was generated"),
                )
            } else {
                (
                    "KeyGenerated",
                    EventType::Normal,
                    format!("key value generated into Secret {name}"),
                )
            };
            ctx.publish(
                key.as_ref(),
                Event {
                    type_,
                    reason: reason.into(),
                    note: Some(note),
                    action: "Generate".into(),
                    secondary: None,
                },
            )
            .await;
            value.into_bytes()
        }
        Some(secret) => {
            let data = secret.data.unwrap_or_default();
            let current = data.get(VALUE_KEY).map(|b| b.0.clone()).unwrap_or_default();
            let previous_expires = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(PREVIOUS_EXPIRES))
                .and_then(|s| s.parse::<Timestamp>().ok());
            if status.created_at.is_none() {
                status.created_at = secret.metadata.creation_timestamp.map(|t| t.0.to_string());
            }
            if status.rotation_generation.is_none() {
                status.rotation_generation = Some(wanted_generation);
            }
            if wanted_generation > status.rotation_generation.unwrap_or(0) {
                // Rotate: the new value replaces the old, which stays valid for a bounded time.
                let asked = key
                    .spec
                    .rotation
                    .as_ref()
                    .map(|r| r.previous_key_validity.clone())
                    .unwrap_or_default();
                let mut validity = lifetime_days(&asked).unwrap_or(7);
                if validity > MAX_PREVIOUS_DAYS {
                    notes.push(format!("previousKeyValidity {asked} exceeds {MAX_PREVIOUS_DAYS} days; the previous value is kept {MAX_PREVIOUS_DAYS} days"));
                    validity = MAX_PREVIOUS_DAYS;
                }
                let until = now.saturating_add(days(validity)).unwrap_or(now);
                let new_value = generate();
                let patch = serde_json::json!({
                    "metadata": {"annotations": {PREVIOUS_EXPIRES: until.to_string()}},
                    "data": {
                        VALUE_KEY: base64::engine::general_purpose::STANDARD.encode(&new_value),
                        PREVIOUS_KEY: base64::engine::general_purpose::STANDARD.encode(&current),
                    },
                });
                secrets
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                status.rotation_generation = Some(wanted_generation);
                status.rotated_at = Some(now.to_string());
                status.previous_expires_at = Some(until.to_string());
                status.previous_prefix = Some(fingerprint(&current).0);
                ctx.publish(key.as_ref(), Event {
                    type_: EventType::Normal,
                    reason: "KeyRotated".into(),
                    note: Some(format!("new value in Secret {name}; the previous value stays valid until {until}")),
                    action: "Rotate".into(),
                    secondary: None,
                }).await;
                new_value.into_bytes()
            } else {
                if previous_expires.is_some_and(|t| now >= t) && data.contains_key(PREVIOUS_KEY) {
                    // The rotated-out value has had its time: remove it.
                    let patch = serde_json::json!({
                        "metadata": {"annotations": {PREVIOUS_EXPIRES: null}},
                        "data": {PREVIOUS_KEY: null},
                    });
                    secrets
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                    status.previous_expires_at = None;
                    status.previous_prefix = None;
                }
                current
            }
        }
    };
    let (prefix, hash) = fingerprint(&value);
    status.prefix = Some(prefix);
    status.hash = Some(hash);

    // Expiry by lifetime, capped by the template.
    let template = key.spec.template.unwrap_or(ApiKeyTemplate::Custom);
    let lifetime = key
        .spec
        .lifetime
        .as_deref()
        .map(lifetime_days)
        .transpose()
        .unwrap_or_else(|e| {
            notes.push(e);
            None
        });
    let lifetime = lifetime.map(|d| d.min(template.max_lifetime_days()));
    let created = ts(&status.created_at).unwrap_or(now);
    let expires = lifetime.and_then(|d| created.saturating_add(days(d)).ok());
    status.expires_at = expires.map(|t| t.to_string());
    let previous_valid = ts(&status.previous_expires_at).is_some_and(|t| now < t);
    let phase = if expires.is_some_and(|t| now >= t) {
        ApiKeyPhase::Expired
    } else if !key.spec.enabled {
        ApiKeyPhase::Disabled
    } else if previous_valid {
        ApiKeyPhase::Rotating
    } else {
        ApiKeyPhase::Active
    };
    status.phase = Some(phase);
    let snap = ctx.stores.snapshot(&ns);
    status.privileges = snap
        .grantees
        .api_keys
        .get(&key.name_any())
        .map(|p| p.to_specs())
        .unwrap_or_default();
    status.observed_generation = key.metadata.generation;
    status.conditions = conditions(
        &previous.conditions,
        vec![Want {
            type_: "Ready",
            ok: matches!(phase, ApiKeyPhase::Active | ApiKeyPhase::Rotating),
            reason: match phase {
                ApiKeyPhase::Active => "Active",
                ApiKeyPhase::Rotating => "Rotating",
                ApiKeyPhase::Disabled => "Disabled",
                ApiKeyPhase::Expired => "Expired",
            },
            message: if notes.is_empty() {
                format!("key is {phase:?}")
            } else {
                notes.join("; ")
            },
        }],
        key.metadata.generation,
    );

    let api: Api<ApiKey> = Api::namespaced(ctx.client.clone(), &ns);
    if apply_if_changed(&api, key.as_ref(), key.status.as_ref(), &status).await? {
        ctx.metrics.status_write("ApiKey");
        if phase == ApiKeyPhase::Expired && previous.phase != Some(ApiKeyPhase::Expired) {
            ctx.publish(
                key.as_ref(),
                Event {
                    type_: EventType::Warning,
                    reason: "KeyExpired".into(),
                    note: Some("the key reached the end of its lifetime; create a new key".into()),
                    action: "Expire".into(),
                    secondary: None,
                },
            )
            .await;
        }
    }

    // Wake up for the next deadline: expiry or the end of a rotation window.
    let next = [expires, ts(&status.previous_expires_at)]
        .into_iter()
        .flatten()
        .filter(|t| *t > now)
        .map(|t| Duration::from_secs(t.duration_since(now).as_secs().max(1) as u64))
        .min()
        .unwrap_or(RESYNC)
        .min(RESYNC);
    Ok(Action::requeue(next))
}
