//! The objects as the stores keep them: [`Stored`], a lean copy of the
//! object with its status trimmed, and beside it the digests of what the
//! trimming dropped ([`super::cached_status`]).
//!
//! The digest travels with the object in one `Arc` (the reflector store
//! holds `Stored<K>`, and the controllers' reconciles receive it), so a
//! reconcile always reads the digest of the very status it holds: there is
//! no second map to fall out of step with the store.

use kube::Resource;
use kube::api::ObjectMeta;
use serde::Deserialize;

use super::Indexed;
use super::cached_status::{StatusDigest, Written, trim};

/// An object as the stores keep it, and the digests of its trimmed status.
///
/// Deserializes as the object itself (without digests): the controller
/// runtime asks for `DeserializeOwned`, though the stores are only ever
/// filled by the watch ([`Stored::keep`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct Stored<K> {
    /// The object: lean (no labels or annotations; Members and Groups
    /// without spec, [`Indexed::lean`]) and, for the kinds with long
    /// status lists ([`Indexed::TRIMMED`]), its status trimmed.
    pub object: K,
    #[serde(skip)]
    digest: Option<StatusDigest>,
}

impl<K: Indexed> Stored<K> {
    /// What the store keeps of an object the index has read: a lean copy,
    /// its status trimmed, and the digests of what was dropped.
    pub fn keep(mut object: K) -> Self {
        object.lean();
        let digest = if K::TRIMMED.is_empty() {
            None
        } else {
            trim(object.status_mut(), K::TRIMMED)
        };
        Stored { object, digest }
    }

    /// The status last written, as the controller reads it: compared by
    /// digest where the store trimmed it.
    pub fn written(&self) -> Written<'_, K::Status> {
        Written::new(self.object.status(), self.digest.as_ref())
    }
}

/// The whole object, untrimmed (for tests and tools that hold one).
impl<K> From<K> for Stored<K> {
    fn from(object: K) -> Self {
        Stored {
            object,
            digest: None,
        }
    }
}

/// The object's kind and metadata, so the controller runtime looks a
/// `Stored<K>` up, and maps owner references to it, as it would a `K`.
impl<K: Resource> Resource for Stored<K> {
    kind_of_k!();

    fn meta(&self) -> &ObjectMeta {
        self.object.meta()
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.object.meta_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Group, Member, Organization};

    const MEMBER: &str = r#"
apiVersion: orgaccess.dev/v1alpha1
kind: Member
metadata: {name: ana, namespace: acme, labels: {team: a}, annotations: {note: x}}
spec:
  identity: {username: ana@acme.example, provider: Email}
  groups: [readers]
status:
  observedGeneration: 1
  phase: Active
  conditions:
    - {type: Ready, status: "True", reason: PrivilegesComputed, message: "1 privilege", lastTransitionTime: "2026-11-30T10:00:00Z"}
  groups: [{group: readers, via: Invitation, active: true}]
  privileges:
    - {service: Content, domain: Sources, level: View, grantedBy: [readers]}
  privilegeCount: 1
"#;

    /// The store's copy is lean and trimmed, its digests beside it: the
    /// written status compares as the whole one did, conditions given back.
    #[test]
    fn a_kept_member_is_lean_trimmed_and_judged_as_written() {
        let full: Member = serde_saphyr::from_str(MEMBER).unwrap();
        let kept = Stored::keep(full.clone());
        let object = &kept.object;
        assert!(object.metadata.labels.is_none() && object.metadata.annotations.is_none());
        assert!(object.spec.groups.is_empty(), "the index holds the spec");
        let trimmed = object.status.as_ref().unwrap();
        assert!(trimmed.privileges.is_empty() && trimmed.conditions.is_empty());

        let whole = full.status.clone().unwrap();
        let written = kept.written();
        assert!(written.unchanged(&whole));
        assert_eq!(written.status().conditions.len(), 1);
        let mut fewer = whole.clone();
        fewer.privileges.clear();
        assert!(!written.unchanged(&fewer));
        assert!(written.field_changed(&fewer, "privileges"));

        let untrimmed = Stored::from(full);
        assert!(untrimmed.written().unchanged(&whole));
        assert!(untrimmed.written().digest().is_none());
    }

    /// The kinds without long status lists keep their status whole.
    #[test]
    fn organizations_keep_their_status_whole() {
        let org: Organization = serde_json::from_value(serde_json::json!({
            "apiVersion": "orgaccess.dev/v1alpha1",
            "kind": "Organization",
            "metadata": {"name": "o", "namespace": "acme"},
            "spec": {"displayName": "O"},
            "status": {"groups": 3, "conditions": [{"type": "Ready", "status": "True", "reason": "Seeded", "message": "", "lastTransitionTime": "2026-11-30T10:00:00Z"}]}
        }))
        .unwrap();
        let kept = Stored::keep(org.clone());
        assert_eq!(kept.object.status, org.status);
        assert!(kept.written().digest().is_none());
    }

    /// A `Stored<K>` is looked up as a `K`: same kind, API version, URL.
    #[test]
    fn a_stored_object_is_its_kind() {
        assert_eq!(Stored::<Group>::kind(&()), "Group");
        assert_eq!(Stored::<Group>::api_version(&()), Group::api_version(&()));
        assert_eq!(
            Stored::<Group>::url_path(&(), Some("acme")),
            Group::url_path(&(), Some("acme"))
        );
        let g: Stored<Group> = serde_json::from_value(serde_json::json!({
            "apiVersion": "orgaccess.dev/v1alpha1",
            "kind": "Group",
            "metadata": {"name": "g", "namespace": "acme"},
            "spec": {}
        }))
        .unwrap();
        assert_eq!(g.meta().name.as_deref(), Some("g"));
        assert!(g.written().digest().is_none());
    }
}
