//! What the caches keep of a status.
//!
//! A Member's status lists its effective privileges with the groups each
//! comes from, and a Group's lists its members: most of the bytes of the
//! cluster's objects, held in every cached copy, and read by the controller
//! for one thing only: to tell whether the status it computes differs from
//! the one written. So the caches drop those fields and keep a digest of
//! them instead ([`trim`]), in an annotation of the cached copy
//! ([`DIGEST_ANNOTATION`]). The copy is never sent back to the server (the
//! controller writes statuses it computes); the annotation exists only in
//! this process.
//!
//! The digests hash the status as JSON (`serde_json::Value`, whose keys are
//! sorted), computed the same way for the written status and for the one
//! wanted, so equal statuses have equal digests.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Status fields another writer owns: the decision service's
/// `lastUsedAt` on ApiKeys (field manager `orgaccess-usage`,
/// `decision::usage`). The controller neither writes them (its server-side
/// apply leaves them to their owner) nor compares them: a usage write must
/// never look like a status the controller has to correct.
pub const FOREIGN: &[&str] = &["lastUsedAt"];

/// Annotation of a cached copy whose status was trimmed: the digests of the
/// whole status and of each dropped field. Only ever in this process's caches.
pub const DIGEST_ANNOTATION: &str = "orgaccess.dev/cached-status-digest";

/// Digests of a status as it was written: the whole, and each field the
/// cache dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusDigest {
    pub whole: u64,
    pub dropped: BTreeMap<String, u64>,
}

impl StatusDigest {
    /// The digest a cached copy carries, if its status was trimmed.
    pub fn of<K: Resource>(obj: &K) -> Option<StatusDigest> {
        let text = obj.meta().annotations.as_ref()?.get(DIGEST_ANNOTATION)?;
        Self::decode(text)
    }

    /// The digests of `status`, for the fields named by this digest.
    pub fn wanted<S: Serialize>(&self, status: &S) -> StatusDigest {
        let map = own_fields(status);
        StatusDigest {
            whole: digest(&Value::Object(map.clone())),
            dropped: self
                .dropped
                .keys()
                .map(|f| (f.clone(), digest(map.get(f).unwrap_or(&Value::Null))))
                .collect(),
        }
    }

    fn encode(&self) -> String {
        std::iter::once(format!("={:016x}", self.whole))
            .chain(self.dropped.iter().map(|(f, d)| format!("{f}={d:016x}")))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn decode(text: &str) -> Option<StatusDigest> {
        let mut out = StatusDigest::default();
        for (i, part) in text.split(',').enumerate() {
            let (field, hex) = part.split_once('=')?;
            let value = u64::from_str_radix(hex, 16).ok()?;
            match (i, field) {
                (0, "") => out.whole = value,
                (0, _) | (_, "") => return None,
                _ => {
                    out.dropped.insert(field.to_string(), value);
                }
            }
        }
        Some(out)
    }
}

/// A stable digest of a JSON value (within this process).
fn digest(value: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_vec(value).unwrap_or_default().hash(&mut h);
    h.finish()
}

fn as_map<S: Serialize>(status: &S) -> Map<String, Value> {
    match serde_json::to_value(status) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The status as JSON without the [`FOREIGN`] fields: what the controller
/// writes and compares.
pub fn own_fields<S: Serialize>(status: &S) -> Map<String, Value> {
    let mut map = as_map(status);
    for f in FOREIGN {
        map.remove(*f);
    }
    map
}

/// Drops `fields` from `status` and returns the digests to keep in their
/// place; `None` (and the status untouched) when there is no status.
///
/// The conditions are kept lighter ([`lighten_conditions`]) and digested
/// as a dropped field is, so whether they changed is judged by digest.
pub fn trim<S: Serialize + DeserializeOwned>(
    status: &mut Option<S>,
    fields: &[&str],
) -> Option<StatusDigest> {
    let mut map = as_map(status.as_ref()?);
    let whole = digest(&Value::Object(own_fields(&map)));
    let mut dropped: BTreeMap<String, u64> = fields
        .iter()
        .map(|f| {
            let value = map.remove(*f).unwrap_or(Value::Null);
            (f.to_string(), digest(&value))
        })
        .collect();
    if let Some(conditions) = map.get_mut(CONDITIONS) {
        dropped.insert(CONDITIONS.to_string(), digest(conditions));
        lighten_conditions(conditions);
    }
    let trimmed = serde_json::from_value(Value::Object(map)).ok()?;
    *status = Some(trimmed);
    Some(StatusDigest { whole, dropped })
}

/// The status field of the conditions.
const CONDITIONS: &str = "conditions";

/// What a cached condition keeps: its type, status, transition time and
/// generation, which is what the controller reads of the conditions written
/// (`controller::status::conditions` carries a transition time over while
/// the status stays; the log names `Type=Status` changes). The reason and
/// the message (a few hundred bytes per object, five conditions a Member)
/// are emptied, except for a False `ResolvedRefs`, whose message says which
/// references are missing (`unresolved_event` warns once per new message).
fn lighten_conditions(conditions: &mut Value) {
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    for c in list.iter_mut().filter_map(Value::as_object_mut) {
        let unresolved = c.get("type").and_then(Value::as_str) == Some("ResolvedRefs")
            && c.get("status").and_then(Value::as_str) == Some("False");
        if !unresolved {
            for field in ["reason", "message"] {
                if c.contains_key(field) {
                    c.insert(field.to_string(), Value::String(String::new()));
                }
            }
        }
    }
}

/// Records `digest` on the cached copy (or removes a stale one).
pub fn annotate<K: Resource>(obj: &mut K, digest: Option<StatusDigest>) {
    let annotations = obj.meta_mut().annotations.get_or_insert_with(BTreeMap::new);
    match digest {
        Some(d) => {
            annotations.insert(DIGEST_ANNOTATION.to_string(), d.encode());
        }
        None => {
            annotations.remove(DIGEST_ANNOTATION);
        }
    }
}

/// The status wanted is the one written: by digest for a trimmed copy, else
/// by value; the [`FOREIGN`] fields are left out either way.
pub fn unchanged<K: Resource, S: Serialize + PartialEq>(
    obj: &K,
    current: Option<&S>,
    wanted: &S,
) -> bool {
    match StatusDigest::of(obj) {
        Some(d) => d.wanted(wanted).whole == d.whole,
        None => {
            current == Some(wanted) || current.is_some_and(|c| own_fields(c) == own_fields(wanted))
        }
    }
}

/// Whether one top-level status field differs between the written status
/// (`current`, possibly trimmed) and the one wanted.
pub fn field_changed<K: Resource, S: Serialize>(
    obj: &K,
    current: Option<&S>,
    wanted: &S,
    field: &str,
) -> bool {
    let after = as_map(wanted);
    let after_field = after.get(field).unwrap_or(&Value::Null);
    if let Some(d) = StatusDigest::of(obj)
        && let Some(before) = d.dropped.get(field)
    {
        return digest(after_field) != *before;
    }
    let before = current.map(as_map).unwrap_or_default();
    before.get(field).unwrap_or(&Value::Null) != after_field
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Member, MemberStatus};

    fn member(yaml: &str) -> Member {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const MEMBER: &str = r#"
apiVersion: orgaccess.dev/v1alpha1
kind: Member
metadata: {name: ana, namespace: acme}
spec:
  identity: {username: ana@acme.example, provider: Email}
  groups: [readers]
status:
  observedGeneration: 1
  phase: Active
  groups: [{group: readers, via: Invitation, active: true}]
  privileges:
    - {service: Content, domain: Sources, level: View, grantedBy: [readers]}
  privilegeCount: 1
"#;

    fn trimmed(mut m: Member) -> Member {
        let d = trim(&mut m.status, &["groups", "privileges"]);
        annotate(&mut m, d);
        m
    }

    #[test]
    fn a_trimmed_copy_keeps_what_the_controller_reads_and_drops_the_lists() {
        let full = member(MEMBER);
        let cached = trimmed(full.clone());
        let s = cached.status.as_ref().unwrap();
        assert!(s.privileges.is_empty() && s.groups.is_empty());
        assert_eq!(s.phase, full.status.as_ref().unwrap().phase);
        assert_eq!(s.privilege_count, 1);
        assert_eq!(s.observed_generation, Some(1));
    }

    #[test]
    fn the_status_written_is_unchanged_and_any_edit_is_seen() {
        let full = member(MEMBER);
        let cached = trimmed(full.clone());
        let written = full.status.clone().unwrap();
        assert!(unchanged(&cached, cached.status.as_ref(), &written));
        assert!(!field_changed(
            &cached,
            cached.status.as_ref(),
            &written,
            "privileges"
        ));

        let mut more = written.clone();
        more.privileges[0].granted_by.push("writers".into());
        assert!(!unchanged(&cached, cached.status.as_ref(), &more));
        assert!(field_changed(
            &cached,
            cached.status.as_ref(),
            &more,
            "privileges"
        ));
        assert!(!field_changed(
            &cached,
            cached.status.as_ref(),
            &more,
            "groups"
        ));

        let mut phase = written.clone();
        phase.phase = None;
        assert!(!unchanged(&cached, cached.status.as_ref(), &phase));
        assert!(!unchanged(
            &cached,
            cached.status.as_ref(),
            &MemberStatus::default()
        ));
    }

    #[test]
    fn cached_conditions_keep_what_the_controller_reads() {
        let mut full = member(MEMBER);
        let status = full.status.as_mut().unwrap();
        status.conditions = serde_saphyr::from_str(
            r#"
- {type: Ready, status: "False", reason: GroupNotFound, message: "groups not found: x", lastTransitionTime: "2026-11-30T10:00:00Z", observedGeneration: 1}
- {type: ResolvedRefs, status: "False", reason: GroupNotFound, message: "groups not found: x", lastTransitionTime: "2026-11-30T10:00:00Z", observedGeneration: 1}
- {type: ConsoleAccess, status: "True", reason: Granted, message: "may sign in", lastTransitionTime: "2026-11-30T09:00:00Z", observedGeneration: 1}
"#,
        )
        .unwrap();
        let written = full.status.clone().unwrap();
        let cached = trimmed(full);
        let kept = &cached.status.as_ref().unwrap().conditions;
        for (c, w) in kept.iter().zip(&written.conditions) {
            assert_eq!(
                (
                    &c.type_,
                    &c.status,
                    &c.last_transition_time,
                    c.observed_generation
                ),
                (
                    &w.type_,
                    &w.status,
                    &w.last_transition_time,
                    w.observed_generation
                )
            );
        }
        assert_eq!(
            (kept[0].reason.as_str(), kept[0].message.as_str()),
            ("", "")
        );
        assert_eq!(
            kept[1].message, "groups not found: x",
            "a False ResolvedRefs keeps its message"
        );
        assert_eq!(
            (kept[2].reason.as_str(), kept[2].message.as_str()),
            ("", "")
        );

        // Judged by digest: the written conditions are unchanged, a new
        // message is a change.
        assert!(unchanged(&cached, cached.status.as_ref(), &written));
        assert!(!field_changed(
            &cached,
            cached.status.as_ref(),
            &written,
            "conditions"
        ));
        let mut other = written.clone();
        other.conditions[2].message = "may not sign in".into();
        assert!(!unchanged(&cached, cached.status.as_ref(), &other));
        assert!(field_changed(
            &cached,
            cached.status.as_ref(),
            &other,
            "conditions"
        ));
    }

    #[test]
    fn an_untrimmed_copy_compares_by_value() {
        let full = member(MEMBER);
        let written = full.status.clone().unwrap();
        assert!(unchanged(&full, full.status.as_ref(), &written));
        let mut other = written.clone();
        other.privileges.clear();
        assert!(!unchanged(&full, full.status.as_ref(), &other));
        assert!(field_changed(
            &full,
            full.status.as_ref(),
            &other,
            "privileges"
        ));
    }

    #[test]
    fn digests_survive_their_annotation() {
        let d = StatusDigest {
            whole: 7,
            dropped: [
                ("privileges".to_string(), u64::MAX),
                ("groups".to_string(), 0),
            ]
            .into(),
        };
        assert_eq!(StatusDigest::decode(&d.encode()), Some(d));
        for bad in ["", "x=1", "=zz", "=1,=2", "=1,a"] {
            assert_eq!(StatusDigest::decode(bad), None, "{bad}");
        }
    }

    /// The decision service's `lastUsedAt` (another field manager's) is no
    /// difference to the controller: by value, by digest, nor in what it sends.
    #[test]
    fn foreign_fields_are_neither_compared_nor_digested() {
        use crate::api::{ApiKey, ApiKeyStatus};
        let mut key: ApiKey = serde_json::from_value(serde_json::json!({
            "apiVersion": "orgaccess.dev/v1alpha1",
            "kind": "ApiKey",
            "metadata": {"name": "k", "namespace": "acme"},
            "spec": {"displayName": "k"}
        }))
        .unwrap();
        let wanted = ApiKeyStatus {
            hash: Some("ab".into()),
            ..ApiKeyStatus::default()
        };
        let mut used = wanted.clone();
        used.last_used_at = Some("2026-11-30T19:05:00Z".into());
        key.status = Some(used.clone());
        assert!(unchanged(&key, key.status.as_ref(), &wanted));
        let mut rotated = wanted.clone();
        rotated.hash = Some("cd".into());
        assert!(!unchanged(&key, key.status.as_ref(), &rotated));
        assert!(!own_fields(&used).contains_key("lastUsedAt"));
        assert!(own_fields(&used).contains_key("hash"));

        let mut cached = key.clone();
        let digest = trim(&mut cached.status, &["privileges"]);
        annotate(&mut cached, digest);
        assert!(StatusDigest::of(&cached).is_some());
        assert!(unchanged(&cached, cached.status.as_ref(), &wanted));
        assert!(!unchanged(&cached, cached.status.as_ref(), &rotated));
    }

    #[test]
    fn no_status_no_digest() {
        let mut m = member(MEMBER);
        m.status = None;
        let m = trimmed(m);
        assert!(StatusDigest::of(&m).is_none());
    }
}
