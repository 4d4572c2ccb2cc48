//! The five kinds as the index reads them ([`Indexed`]): each one's
//! definition, whether its status lags its spec, what the store need not
//! keep of it, and an API key's digests.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::core::object::HasStatus;

use super::cached_status::KindStatus;
use crate::api::{
    AccessReview, ApiKey, ApiKeyStatus, Group, GroupSpec, Member, MemberSpec, Organization,
};
use crate::core::change::Def;
use crate::core::decision::KeyDigests;
use crate::core::model::{
    AccessReviewDef, ApiKeyDef, GroupDef, Kind, MemberDef, MemberIdentity, OrgDef, Provider,
};
use crate::core::privilege::{intern_names, spec_names};

/// The five kinds, as the index stores them.
pub trait Indexed:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + HasStatus<Status: KindStatus>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    const KIND: Kind;
    /// The status fields the store's copy drops, keeping their digests
    /// ([`super::cached_status::trim`], [`super::Stored::keep`]); none: the
    /// status is kept whole.
    const TRIMMED: &'static [&'static str] = &[];
    /// The definition the rules read.
    fn def(&self) -> Def;
    /// What Events about the namespace's organization regard (the
    /// Organization only; the index keeps it beside the definition).
    fn reference(&self) -> Option<ObjectReference> {
        None
    }
    /// The generation the status last reported on, if any.
    fn observed_generation(&self) -> Option<i64> {
        self.status()?.observed_generation()
    }
    /// Its status does not report on its current spec (new, or edited in a
    /// field the definition leaves out): it must be reconciled even when the
    /// definition did not change.
    fn stale(&self) -> bool {
        self.meta().generation.is_some() && self.observed_generation() != self.meta().generation
    }
    /// The digests of the values an API key's status reports (others: none).
    fn digests(&self) -> Option<KeyDigests> {
        None
    }
    /// When an API key's status says it was last used (others: never).
    fn last_used(&self) -> Option<Timestamp> {
        None
    }
    /// Drops what the store's copy need not hold once the index has the
    /// definition (`watch`: the index reads each event first). The
    /// controllers read their definitions from the index snapshot and of the
    /// stored object only its name, namespace, uid, generation, timestamps
    /// and status: never its labels or annotations (the status digests are
    /// kept beside the object, [`super::Stored`]).
    fn lean(&mut self) {
        let meta = self.meta_mut();
        meta.labels = None;
        meta.annotations = None;
    }
}

impl Indexed for Organization {
    const KIND: Kind = Kind::Organization;
    fn def(&self) -> Def {
        Def::Organization(OrgDef::from(self))
    }
    fn reference(&self) -> Option<ObjectReference> {
        Some(reference(self))
    }
}

impl Indexed for Group {
    const KIND: Kind = Kind::Group;
    const TRIMMED: &'static [&'static str] = &["privileges", "members", "inactiveMembers"];
    /// And the spec: the Group reconcile reads the `GroupDef` from the
    /// index (`controller::group::desired_status`), the Organization's
    /// seeding whether Administrators exists from the index too.
    fn lean(&mut self) {
        self.meta_mut().labels = None;
        self.meta_mut().annotations = None;
        self.spec = GroupSpec {
            display_name: None,
            built_in: None,
            template: None,
            privileges: Vec::new(),
            identity_sets: Vec::new(),
            access: Vec::new(),
            duplicate_of: None,
            owners: Vec::new(),
            review_every: None,
        };
    }
    fn def(&self) -> Def {
        let def = GroupDef::from(self);
        intern_names(std::iter::once(def.name.as_str()).chain(spec_names(&def.privileges)));
        Def::Group(def)
    }
}

impl Indexed for Member {
    const KIND: Kind = Kind::Member;
    const TRIMMED: &'static [&'static str] = &["groups", "privileges"];
    /// And the spec: the Member reconcile reads the `MemberDef` from the
    /// index (`controller::member::desired_status`).
    fn lean(&mut self) {
        self.meta_mut().labels = None;
        self.meta_mut().annotations = None;
        self.spec = MemberSpec {
            identity: MemberIdentity {
                provider: Provider::Email,
                username: String::new(),
            },
            groups: Vec::new(),
            subjects: Vec::new(),
            accepted: false,
            sso_groups: Vec::new(),
            salesforce_profile: None,
            until: None,
            group_until: Default::default(),
        };
    }
    fn def(&self) -> Def {
        Def::Member(MemberDef::from(self))
    }
}

impl Indexed for ApiKey {
    const KIND: Kind = Kind::ApiKey;
    fn def(&self) -> Def {
        let def = ApiKeyDef::from(self);
        intern_names(std::iter::once(def.name.as_str()).chain(spec_names(&def.privileges)));
        Def::ApiKey(def)
    }
    fn digests(&self) -> Option<KeyDigests> {
        Some(key_digests(self.status.as_ref()?))
    }
    fn last_used(&self) -> Option<Timestamp> {
        self.status.as_ref()?.last_used_at.as_deref()?.parse().ok()
    }
}

impl Indexed for AccessReview {
    const KIND: Kind = Kind::AccessReview;
    fn def(&self) -> Def {
        Def::AccessReview(AccessReviewDef::from(self))
    }
    /// A record: nothing reconciles it, its status never reports.
    fn stale(&self) -> bool {
        false
    }
}

/// The digests an ApiKey status reports: the current value's, and the
/// previous value's with the end of its overlap (without an end, the
/// previous value is not accepted at all). A hash that is not 64 hex digits
/// is ignored.
pub fn key_digests(status: &ApiKeyStatus) -> KeyDigests {
    let digest = |hex_digest: &Option<String>| {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_digest.as_deref()?, &mut out).ok()?;
        Some(out)
    };
    let until = status
        .previous_expires_at
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok());
    KeyDigests {
        current: digest(&status.hash),
        previous: digest(&status.previous_hash).zip(until),
    }
}

/// A reference to an object, for Events.
pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: obj.meta().name.clone(),
        namespace: obj.meta().namespace.clone(),
        uid: obj.meta().uid.clone(),
        resource_version: None,
        field_path: None,
    }
}
