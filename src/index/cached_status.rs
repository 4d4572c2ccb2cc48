//! What the caches keep of a status.
//!
//! A Member's status lists its effective privileges with the groups each
//! comes from, and a Group's lists its members: most of the bytes of the
//! cluster's objects, held in every cached copy, and read by the controller
//! for one thing only: to tell whether the status it computes differs from
//! the one written. So the caches drop those fields and keep a digest of
//! them instead ([`trim`]), in the status's typed `cached` field
//! ([`StatusDigest`], [`Cached`]). That field is `#[serde(skip)]`: it is
//! never sent to the apiserver nor part of the CRD schema, and a status
//! read from the API never has one; it exists only in this process.
//!
//! The digests hash the status as JSON (`serde_json::Value`, whose keys are
//! sorted), computed the same way for the written status and for the one
//! wanted, so equal statuses have equal digests.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::api::{ApiKeyStatus, GroupStatus, MemberStatus, OrganizationStatus};

/// Status fields another writer owns: the decision service's
/// `lastUsedAt` on ApiKeys (field manager `orgaccess-usage`,
/// `decision::usage`). The controller neither writes them (its server-side
/// apply leaves them to their owner) nor compares them: a usage write must
/// never look like a status the controller has to correct.
pub const FOREIGN: &[&str] = &["lastUsedAt"];

/// Digests of a status as it was written: the whole, and each field the
/// cache dropped, by field name. A handful of fields (at most four), so a
/// boxed slice (one small allocation) rather than a map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusDigest {
    pub whole: u64,
    pub dropped: Box<[(&'static str, u64)]>,
}

/// A status type that can carry the digests of its trimmed cached copy
/// (the four kinds' statuses, in their `cached` field).
pub trait Cached {
    fn cached(&self) -> Option<&StatusDigest>;
    fn set_cached(&mut self, digest: Option<StatusDigest>);
}

macro_rules! cached {
    ($($status:ty),*) => {$(
        impl Cached for $status {
            fn cached(&self) -> Option<&StatusDigest> {
                self.cached.as_ref()
            }
            fn set_cached(&mut self, digest: Option<StatusDigest>) {
                self.cached = digest;
            }
        }
    )*};
}
cached!(OrganizationStatus, GroupStatus, MemberStatus, ApiKeyStatus);

impl StatusDigest {
    /// The digests of `status`, for the fields named by this digest.
    pub fn wanted<S: Serialize>(&self, status: &S) -> StatusDigest {
        let map = own_fields(status);
        StatusDigest {
            whole: digest(&Value::Object(map.clone())),
            dropped: self
                .dropped
                .iter()
                .map(|(f, _)| (*f, digest(map.get(*f).unwrap_or(&Value::Null))))
                .collect(),
        }
    }

    /// The digest kept for a dropped field, if this digest names it.
    pub fn field(&self, field: &str) -> Option<u64> {
        self.dropped
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, d)| *d)
    }

    /// The names of the dropped fields.
    pub fn fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.dropped.iter().map(|(f, _)| *f)
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

/// Drops `fields` from `status` and keeps their digests, with the whole
/// status's, in its `cached` field; nothing happens when there is no status.
///
/// The conditions are kept lighter ([`lighten_conditions`]) and digested
/// as a dropped field is, so whether they changed is judged by digest.
pub fn trim<S: Cached + Serialize + DeserializeOwned>(
    status: &mut Option<S>,
    fields: &[&'static str],
) {
    let Some(written) = status.as_ref() else {
        return;
    };
    let mut map = as_map(written);
    let whole = digest(&Value::Object(own_fields(&map)));
    let mut dropped: Vec<(&'static str, u64)> = fields
        .iter()
        .map(|f| (*f, digest(&map.remove(*f).unwrap_or(Value::Null))))
        .collect();
    if let Some(conditions) = map.get_mut(CONDITIONS) {
        dropped.push((CONDITIONS, digest(conditions)));
        lighten_conditions(conditions);
    }
    let Ok(mut trimmed) = serde_json::from_value::<S>(Value::Object(map)) else {
        return;
    };
    trimmed.set_cached(Some(StatusDigest {
        whole,
        dropped: dropped.into_boxed_slice(),
    }));
    *status = Some(trimmed);
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

/// The status wanted is the one written: by digest for a trimmed copy, else
/// by value; the [`FOREIGN`] fields are left out either way.
pub fn unchanged<S: Cached + Serialize + PartialEq>(current: Option<&S>, wanted: &S) -> bool {
    match current.and_then(Cached::cached) {
        Some(d) => d.wanted(wanted).whole == d.whole,
        None => {
            current == Some(wanted) || current.is_some_and(|c| own_fields(c) == own_fields(wanted))
        }
    }
}

/// Whether one top-level status field differs between the written status
/// (`current`, possibly trimmed) and the one wanted.
pub fn field_changed<S: Cached + Serialize>(current: Option<&S>, wanted: &S, field: &str) -> bool {
    let after = as_map(wanted);
    let after_field = after.get(field).unwrap_or(&Value::Null);
    if let Some(before) = current
        .and_then(Cached::cached)
        .and_then(|d| d.field(field))
    {
        return digest(after_field) != before;
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
        trim(&mut m.status, &["groups", "privileges"]);
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
        assert!(unchanged(cached.status.as_ref(), &written));
        assert!(!field_changed(
            cached.status.as_ref(),
            &written,
            "privileges"
        ));

        let mut more = written.clone();
        more.privileges[0].granted_by.push("writers".into());
        assert!(!unchanged(cached.status.as_ref(), &more));
        assert!(field_changed(cached.status.as_ref(), &more, "privileges"));
        assert!(!field_changed(cached.status.as_ref(), &more, "groups"));

        let mut phase = written.clone();
        phase.phase = None;
        assert!(!unchanged(cached.status.as_ref(), &phase));
        assert!(!unchanged(cached.status.as_ref(), &MemberStatus::default()));
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
        assert!(unchanged(cached.status.as_ref(), &written));
        assert!(!field_changed(
            cached.status.as_ref(),
            &written,
            "conditions"
        ));
        let mut other = written.clone();
        other.conditions[2].message = "may not sign in".into();
        assert!(!unchanged(cached.status.as_ref(), &other));
        assert!(field_changed(cached.status.as_ref(), &other, "conditions"));
    }

    #[test]
    fn an_untrimmed_copy_compares_by_value() {
        let full = member(MEMBER);
        let written = full.status.clone().unwrap();
        assert!(unchanged(full.status.as_ref(), &written));
        let mut other = written.clone();
        other.privileges.clear();
        assert!(!unchanged(full.status.as_ref(), &other));
        assert!(field_changed(full.status.as_ref(), &other, "privileges"));
    }

    /// The digests live only in this process: a trimmed status serializes
    /// (what a status write or the CLI would send) without them, and a
    /// status read from JSON has none.
    #[test]
    fn digests_never_leave_the_process() {
        let cached = trimmed(member(MEMBER));
        let status = cached.status.as_ref().unwrap();
        let digest = status
            .cached()
            .expect("a trimmed status carries its digests");
        let fields: Vec<&str> = digest.fields().collect();
        assert_eq!(fields, ["groups", "privileges"]);
        assert!(digest.field("privileges").is_some() && digest.field("phase").is_none());

        let json = serde_json::to_value(status).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert!(!keys.iter().any(|k| k.as_str() == "cached"), "{keys:?}");
        let back: MemberStatus = serde_json::from_value(json).unwrap();
        assert!(back.cached.is_none());
        let schema = serde_json::to_string(&schemars::schema_for!(MemberStatus)).unwrap();
        assert!(!schema.contains("cached"), "not in the CRD schema");
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
        assert!(unchanged(key.status.as_ref(), &wanted));
        let mut rotated = wanted.clone();
        rotated.hash = Some("cd".into());
        assert!(!unchanged(key.status.as_ref(), &rotated));
        assert!(!own_fields(&used).contains_key("lastUsedAt"));
        assert!(own_fields(&used).contains_key("hash"));

        let mut cached = key.clone();
        trim(&mut cached.status, &["privileges"]);
        assert!(cached.status.as_ref().unwrap().cached().is_some());
        assert!(unchanged(cached.status.as_ref(), &wanted));
        assert!(!unchanged(cached.status.as_ref(), &rotated));
    }

    #[test]
    fn no_status_no_digest() {
        let mut m = member(MEMBER);
        m.status = None;
        let m = trimmed(m);
        assert!(m.status.is_none());
    }
}
