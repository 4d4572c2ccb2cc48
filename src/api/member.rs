//! The Member: a person invited to groups, and the Kubernetes subjects that act as them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{atomic_conditions_schema, guarded_meta};
use crate::core::effective::{MemberPhase, Via};
use crate::core::model::{MemberDef, MemberIdentity, Subject, UNTIL_PATTERN};
use crate::core::privilege::PrivilegeSpec;

/// A person invited to groups of the organization.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "orgaccess.dev",
    version = "v1alpha1",
    kind = "Member",
    namespaced,
    category = "orgaccess",
    doc = "A person invited to groups of the organization, with the Kubernetes subjects that act as them. Status holds their phase (Active, Pending, Expired) and effective privileges with the groups each comes from.",
    shortname = "mbr",
    status = "MemberStatus",
    printcolumn = r#"{"name":"Username","type":"string","jsonPath":".spec.identity.username"}"#,
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".spec.identity.provider"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Privileges","type":"integer","jsonPath":".status.privilegeCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Groups","type":"string","priority":1,"jsonPath":".spec.groups"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MemberSpec {
    /// Who the member is at their identity provider.
    pub identity: MemberIdentity,
    /// Groups the member is invited to (Group object names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"), length(max = 256), inner(length(min = 1, max = 253)))]
    pub groups: Vec<String>,
    /// Kubernetes users, groups and service accounts that act as this member
    /// when they change the organization's objects. Their requests are judged
    /// with this member's effective privileges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub subjects: Vec<Subject>,
    /// The member accepted the invitation. Until then they hold no privileges
    /// from invitations, and after the organization's invitation lifetime the
    /// invitation expires.
    #[serde(default)]
    pub accepted: bool,
    /// Groups the single sign-on provider asserts for this member (for identity sets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 256)))]
    pub sso_groups: Vec<String>,
    /// Salesforce user profile of this member (for identity sets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub salesforce_profile: Option<String>,
    /// When every membership of the member ends: an RFC 3339 time
    /// (`2027-01-31T00:00:00Z`) or an ISO-8601 duration counted from the
    /// Member's creation (`P90D`). From that instant the member holds nothing
    /// through any group. Extending or removing it is a grant
    /// (docs/time-bound-membership.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "until_schema")]
    pub until: Option<String>,
    /// When the invitation to a group ends, by group name (each a group of
    /// `groups`): an RFC 3339 time or an ISO-8601 duration counted from the
    /// Member's creation. The earlier of this and `until` applies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "group_until_schema")]
    pub group_until: BTreeMap<String, String>,
}

/// An end: an RFC 3339 time or an ISO-8601 duration (the core reads it:
/// `model::Until`; admission refuses what it cannot read, CatalogValidity).
/// Checked in CEL, which `orgaccess check` evaluates offline too.
fn end_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "string",
        "maxLength": 64,
        "x-kubernetes-validations": [{
            "rule": format!("self.matches(r'{UNTIL_PATTERN}')"),
            "message": "an end is an RFC 3339 time (2027-01-31T00:00:00Z) or an ISO-8601 duration (P30D)"
        }]
    })
}

fn until_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = end_schema();
    s["nullable"] = true.into();
    schemars::Schema::try_from(s).expect("a schema object")
}

fn group_until_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::Schema::try_from(serde_json::json!({
        "type": "object",
        "maxProperties": 256,
        "additionalProperties": end_schema(),
    }))
    .expect("a schema object")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MembershipStatus {
    pub group: String,
    /// Invitation or IdentitySet.
    pub via: Via,
    /// The membership grants privileges now.
    pub active: bool,
    /// When the membership ends (RFC 3339), if it does (`spec.until`,
    /// `spec.groupUntil`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// The membership has ended: it grants nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ended: bool,
    /// The membership is suspended: the group's access review is overdue,
    /// its last review did not confirm the member, and the Organization
    /// says Suspend. It grants nothing until a review confirms the member
    /// (docs/access-reviews.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspended: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": 0}))]
/// What the operator computed for the member: phase, memberships and
/// effective privileges with the groups each comes from.
pub struct MemberStatus {
    /// Ready: effective privileges computed. ResolvedRefs: every group exists.
    /// Written whole by the operator (an atomic list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "atomic_conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The metadata.generation this status describes (0 until the operator
    /// has reconciled the object; kstatus and `kubectl wait` compare it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Active, Pending or Expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<MemberPhase>,
    /// When a pending invitation expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_expires_at: Option<String>,
    /// Every group the member is in, by invitation or identity set, and
    /// whether the membership grants privileges now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<MembershipStatus>,
    /// Effective privileges: the merge of every active group's, with provenance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<EffectivePrivilege>,
    /// Number of entries in `privileges`.
    #[serde(default)]
    pub privilege_count: u32,
    /// Number of memberships in `groups` that have ended (`spec.until`,
    /// `spec.groupUntil`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ended_memberships: u32,
    /// Number of memberships in `groups` that are suspended by an overdue
    /// access review.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suspended_memberships: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A privilege in status, with the groups it comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectivePrivilege {
    #[serde(flatten)]
    pub privilege: PrivilegeSpec,
    /// Groups that grant the highest part of this privilege.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted_by: Vec<String>,
}

impl From<&Member> for MemberDef {
    fn from(m: &Member) -> Self {
        MemberDef {
            name: m.name_any(),
            identity: m.spec.identity.clone(),
            groups: m.spec.groups.clone(),
            subjects: m.spec.subjects.clone(),
            accepted: m.spec.accepted,
            invited_at: m.meta().creation_timestamp.as_ref().map(|t| t.0),
            sso_groups: m.spec.sso_groups.clone(),
            salesforce_profile: m.spec.salesforce_profile.clone(),
            until: m.spec.until.clone(),
            group_until: m.spec.group_until.clone(),
            meta: guarded_meta(m.meta()),
        }
    }
}
