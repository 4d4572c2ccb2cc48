//! What the caches keep of a status.
//!
//! A Member's status lists its effective privileges with the groups each
//! comes from, and a Group's lists its members: most of the bytes of the
//! cluster's objects, held in every cached copy, and read by the controller
//! for one thing only: to tell whether the status it computes differs from
//! the one written. So the caches drop those fields and keep a digest of
//! them instead ([`trim`]): a [`StatusDigest`], held beside the object in
//! the store ([`super::stored::Stored`]), never in the API types, so it is
//! never sent to the apiserver nor part of the CRD schema.
//!
//! The digests hash the status as JSON (`serde_json::Value`, whose keys are
//! sorted), computed the same way for the written status and for the one
//! wanted, so equal statuses have equal digests. [`Written`] answers the
//! controller's questions of a written status, trimmed or whole.

use std::borrow::Cow;
use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::api::{AccessReviewStatus, ApiKeyStatus, GroupStatus, MemberStatus, OrganizationStatus};

/// Status fields another writer owns: the decision service's
/// `lastUsedAt` on ApiKeys (field manager `orgaccess-usage`,
/// `decision::usage`). The controller neither writes them (its server-side
/// apply leaves them to their owner) nor compares them: a usage write must
/// never look like a status the controller has to correct.
pub const FOREIGN: &[&str] = &["lastUsedAt"];

/// Digests of a status as it was written: the whole, and each field the
/// cache dropped, by field name. A handful of fields (at most four), so a
/// boxed slice (one small allocation) rather than a map. And the written
/// conditions, compact ([`CachedCondition`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusDigest {
    pub whole: u64,
    pub dropped: Box<[(&'static str, u64)]>,
    pub conditions: Box<[CachedCondition]>,
}

/// What the controller reads of a written condition: its type and status
/// (the log's `Type=Status` changes), its transition time
/// (`controller::status::conditions` carries it over while the status
/// stays), `Ready`'s reason (the API key reconcile warns once per Secret
/// conflict) and a False `ResolvedRefs`'s message (`unresolved_event`
/// warns once per new message). Whether the conditions changed at all is
/// judged by their digest. As `Condition`s with their five `String`s,
/// a Member's five conditions were the largest part of its cached copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedCondition {
    type_: Cow<'static, str>,
    status: Cow<'static, str>,
    since: Time,
    reason: Option<Box<str>>,
    message: Option<Box<str>>,
}

/// The condition types and statuses the controller writes, held without
/// an allocation of their own; another (another writer's) is kept too, as
/// an owned string.
const CONDITION_NAMES: &[&str] = &[
    "Ready",
    "ResolvedRefs",
    "Reconciling",
    "Stalled",
    "ConsoleAccess",
    "LeastPrivilege",
    "ExpiringSoon",
    "MembershipEnding",
    "AccessReviewed",
    "True",
    "False",
    "Unknown",
];

fn name(s: &str) -> Cow<'static, str> {
    match CONDITION_NAMES.iter().find(|k| **k == s) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(s.to_string()),
    }
}

impl CachedCondition {
    fn keep(c: &Condition) -> Self {
        let ready = c.type_ == "Ready";
        let unresolved = c.type_ == "ResolvedRefs" && c.status == "False";
        CachedCondition {
            type_: name(&c.type_),
            status: name(&c.status),
            since: c.last_transition_time.clone(),
            reason: ready.then(|| c.reason.as_str().into()),
            message: unresolved.then(|| c.message.as_str().into()),
        }
    }

    fn restore(&self) -> Condition {
        Condition {
            type_: self.type_.to_string(),
            status: self.status.to_string(),
            last_transition_time: self.since.clone(),
            reason: self.reason.as_deref().unwrap_or_default().to_string(),
            message: self.message.as_deref().unwrap_or_default().to_string(),
            observed_generation: None,
        }
    }
}

/// A status of one of the four kinds, as the caches handle it: JSON for
/// the digests, its conditions (which a trimmed copy keeps compact) and
/// the generation it reports on.
pub trait KindStatus: Serialize + DeserializeOwned + Clone + Default + PartialEq {
    fn conditions(&self) -> &[Condition];
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    fn observed_generation(&self) -> Option<i64>;
}

macro_rules! kind_status {
    ($($status:ty),*) => {$(
        impl KindStatus for $status {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
            fn conditions_mut(&mut self) -> &mut Vec<Condition> {
                &mut self.conditions
            }
            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }
        }
    )*};
}
kind_status!(
    OrganizationStatus,
    GroupStatus,
    MemberStatus,
    ApiKeyStatus,
    AccessReviewStatus
);

impl StatusDigest {
    /// The digests of `status`, for the fields named by this digest.
    fn wanted<S: Serialize>(&self, status: &S) -> StatusDigest {
        let map = own_fields(status);
        StatusDigest {
            whole: digest(&Value::Object(map.clone())),
            dropped: self
                .dropped
                .iter()
                .map(|(f, _)| (*f, digest(map.get(*f).unwrap_or(&Value::Null))))
                .collect(),
            conditions: Box::default(),
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

/// Drops `fields` from `status` and answers their digests, with the whole
/// status's; nothing happens (and no digest) when there is no status.
///
/// The conditions go too, kept compact in the digest ([`CachedCondition`])
/// and digested as a dropped field is, so whether they changed is judged by
/// digest; [`Written::status`] gives them back as `Condition`s.
pub fn trim<S: KindStatus>(
    status: &mut Option<S>,
    fields: &[&'static str],
) -> Option<StatusDigest> {
    let written = status.as_ref()?;
    let mut map = as_map(written);
    let whole = digest(&Value::Object(own_fields(&map)));
    let mut dropped: Vec<(&'static str, u64)> = fields
        .iter()
        .chain(std::iter::once(&CONDITIONS))
        .map(|f| (*f, digest(&map.remove(*f).unwrap_or(Value::Null))))
        .collect();
    dropped.shrink_to_fit();
    let kept = written
        .conditions()
        .iter()
        .map(CachedCondition::keep)
        .collect();
    let trimmed = serde_json::from_value::<S>(Value::Object(map)).ok()?;
    *status = Some(trimmed);
    Some(StatusDigest {
        whole,
        dropped: dropped.into_boxed_slice(),
        conditions: kept,
    })
}

/// The status field of the conditions.
const CONDITIONS: &str = "conditions";

/// A written status as the controller reads it: the stored copy (possibly
/// trimmed) and, for a trimmed one, the digests of what was dropped.
#[derive(Clone, Copy, Debug)]
pub struct Written<'a, S> {
    stored: Option<&'a S>,
    digest: Option<&'a StatusDigest>,
}

impl<'a, S: KindStatus> Written<'a, S> {
    /// A status as stored, with the digests of what its trimming dropped
    /// (`None`: the whole status).
    pub fn new(stored: Option<&'a S>, digest: Option<&'a StatusDigest>) -> Self {
        Written { stored, digest }
    }

    /// The stored copy, as stored (a trimmed copy lacks the dropped fields
    /// and its conditions).
    pub fn stored(&self) -> Option<&'a S> {
        self.stored
    }

    /// The digests of a trimmed copy.
    pub fn digest(&self) -> Option<&'a StatusDigest> {
        self.digest
    }

    /// The written status: a copy, with a trimmed copy's conditions given
    /// back ([`CachedCondition`], without what nothing reads: other reasons
    /// and messages, the generation); the default status when none was
    /// written.
    pub fn status(&self) -> S {
        let mut copy = self.stored.cloned().unwrap_or_default();
        if let Some(digest) = self.digest {
            *copy.conditions_mut() = digest
                .conditions
                .iter()
                .map(CachedCondition::restore)
                .collect();
        }
        copy
    }

    /// The status wanted is the one written: by digest for a trimmed copy,
    /// else by value; the [`FOREIGN`] fields are left out either way.
    pub fn unchanged(&self, wanted: &S) -> bool {
        match self.digest {
            Some(d) => d.wanted(wanted).whole == d.whole,
            None => {
                self.stored == Some(wanted)
                    || self
                        .stored
                        .is_some_and(|c| own_fields(c) == own_fields(wanted))
            }
        }
    }

    /// Whether one top-level status field differs between the written
    /// status and the one wanted.
    pub fn field_changed(&self, wanted: &S, field: &str) -> bool {
        let after = as_map(wanted);
        let after_field = after.get(field).unwrap_or(&Value::Null);
        if let Some(before) = self.digest.and_then(|d| d.field(field)) {
            return digest(after_field) != before;
        }
        let before = self.stored.map(as_map).unwrap_or_default();
        before.get(field).unwrap_or(&Value::Null) != after_field
    }
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

    /// A member's status trimmed as the store keeps it, and its digest.
    fn trimmed(mut m: Member) -> (Option<MemberStatus>, Option<StatusDigest>) {
        let digest = trim(&mut m.status, &["groups", "privileges"]);
        (m.status, digest)
    }

    #[test]
    fn a_trimmed_copy_keeps_what_the_controller_reads_and_drops_the_lists() {
        let full = member(MEMBER);
        let (cached, digest) = trimmed(full.clone());
        let s = cached.as_ref().unwrap();
        assert!(s.privileges.is_empty() && s.groups.is_empty());
        assert_eq!(s.phase, full.status.as_ref().unwrap().phase);
        assert_eq!(s.privilege_count, 1);
        assert_eq!(s.observed_generation, Some(1));
        let fields: Vec<&str> = digest.as_ref().unwrap().fields().collect();
        assert_eq!(fields, ["groups", "privileges", "conditions"]);
        assert!(digest.as_ref().unwrap().field("phase").is_none());
    }

    #[test]
    fn the_status_written_is_unchanged_and_any_edit_is_seen() {
        let full = member(MEMBER);
        let (cached, digest) = trimmed(full.clone());
        let was = Written::new(cached.as_ref(), digest.as_ref());
        let written = full.status.clone().unwrap();
        assert!(was.unchanged(&written));
        assert!(!was.field_changed(&written, "privileges"));

        let mut more = written.clone();
        more.privileges[0].granted_by.push("writers".into());
        assert!(!was.unchanged(&more));
        assert!(was.field_changed(&more, "privileges"));
        assert!(!was.field_changed(&more, "groups"));

        let mut phase = written.clone();
        phase.phase = None;
        assert!(!was.unchanged(&phase));
        assert!(!was.unchanged(&MemberStatus::default()));
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
- {type: ExampleOther, status: Maybe, reason: Theirs, message: "another writer's", lastTransitionTime: "2026-11-30T08:00:00Z"}
"#,
        )
        .unwrap();
        let written = full.status.clone().unwrap();
        let (cached, digest) = trimmed(full);
        assert!(
            cached.as_ref().unwrap().conditions.is_empty(),
            "kept compact, in the digest"
        );
        let was = Written::new(cached.as_ref(), digest.as_ref());
        let restored = was.status();
        let kept = &restored.conditions;
        assert_eq!(kept.len(), written.conditions.len());
        for (c, w) in kept.iter().zip(&written.conditions) {
            assert_eq!(
                (&c.type_, &c.status, &c.last_transition_time),
                (&w.type_, &w.status, &w.last_transition_time)
            );
        }
        assert_eq!(
            (kept[0].reason.as_str(), kept[0].message.as_str()),
            ("GroupNotFound", ""),
            "Ready keeps its reason"
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
        assert!(was.unchanged(&written));
        assert!(!was.field_changed(&written, "conditions"));
        let mut other = written.clone();
        other.conditions[2].message = "may not sign in".into();
        assert!(!was.unchanged(&other));
        assert!(was.field_changed(&other, "conditions"));
    }

    #[test]
    fn an_untrimmed_copy_compares_by_value() {
        let full = member(MEMBER);
        let was = Written::new(full.status.as_ref(), None);
        let written = full.status.clone().unwrap();
        assert!(was.unchanged(&written));
        let mut other = written.clone();
        other.privileges.clear();
        assert!(!was.unchanged(&other));
        assert!(was.field_changed(&other, "privileges"));
    }

    /// The API types carry no digest: a trimmed status serializes (what a
    /// status write or the CLI would send) as the fields it kept, and the
    /// CRD schema names no cache field.
    #[test]
    fn digests_never_leave_the_process() {
        let (cached, _) = trimmed(member(MEMBER));
        let json = serde_json::to_value(cached.as_ref().unwrap()).unwrap();
        let keys: std::collections::BTreeSet<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["observedGeneration", "phase", "privilegeCount"].into(),
            "{json}"
        );
        let schema = serde_json::to_string(&schemars::schema_for!(MemberStatus)).unwrap();
        assert!(!schema.contains("cached"), "not in the CRD schema");
    }

    /// The decision service's `lastUsedAt` (another field manager's) is no
    /// difference to the controller: by value, by digest, nor in what it sends.
    #[test]
    fn foreign_fields_are_neither_compared_nor_digested() {
        use crate::api::ApiKeyStatus;
        let wanted = ApiKeyStatus {
            hash: Some("ab".into()),
            ..ApiKeyStatus::default()
        };
        let mut used = wanted.clone();
        used.last_used_at = Some("2026-11-30T19:05:00Z".into());
        let status = Some(used.clone());
        let was = Written::new(status.as_ref(), None);
        assert!(was.unchanged(&wanted));
        let mut rotated = wanted.clone();
        rotated.hash = Some("cd".into());
        assert!(!was.unchanged(&rotated));
        assert!(!own_fields(&used).contains_key("lastUsedAt"));
        assert!(own_fields(&used).contains_key("hash"));

        let mut cached = status.clone();
        let digest = trim(&mut cached, &["privileges"]);
        assert!(digest.is_some());
        let was = Written::new(cached.as_ref(), digest.as_ref());
        assert!(was.unchanged(&wanted));
        assert!(!was.unchanged(&rotated));
    }

    #[test]
    fn what_is_written_of_an_untrimmed_status_is_that_status() {
        let full = member(MEMBER);
        let was = Written::new(full.status.as_ref(), None);
        assert_eq!(was.status(), full.status.clone().unwrap());
        assert_eq!(
            Written::<MemberStatus>::new(None, None).status(),
            MemberStatus::default()
        );
    }

    #[test]
    fn no_status_no_digest() {
        let mut m = member(MEMBER);
        m.status = None;
        let (status, digest) = trimmed(m);
        assert!(status.is_none() && digest.is_none());
    }
}
