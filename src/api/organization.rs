//! The Organization: one per namespace, the home of its groups, members and API keys.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{conditions_schema, guarded_meta};
use crate::core::builtin::BuiltinGroup;
use crate::core::model::{
    AccessReviewsSpec, AdviceSpec, DEFAULT_INVITATION_DAYS, OrgDef, OrgResources,
};

fn default_invitation_days() -> u32 {
    DEFAULT_INVITATION_DAYS
}

/// An organization: the home of groups, members and API keys. One per namespace.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "orgaccess.dev",
    version = "v1alpha1",
    kind = "Organization",
    namespaced,
    category = "orgaccess",
    doc = "An organization: the home of its groups, members and API keys, one per namespace. Its status counts them and lists who holds Administrators; the operator seeds the built-in groups when it is created.",
    shortname = "org",
    status = "OrganizationStatus",
    printcolumn = r#"{"name":"Display name","type":"string","jsonPath":".spec.displayName"}"#,
    printcolumn = r#"{"name":"Groups","type":"integer","jsonPath":".status.groups"}"#,
    printcolumn = r#"{"name":"Members","type":"integer","jsonPath":".status.members"}"#,
    printcolumn = r#"{"name":"API keys","type":"integer","jsonPath":".status.apiKeys"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Least privilege","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"LeastPrivilege\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationSpec {
    /// Human name of the organization.
    #[schemars(schema_with = "crate::core::model::display_name_schema")]
    pub display_name: String,
    /// The organization's resources that per-resource (Custom) privileges may name.
    #[serde(default)]
    pub resources: OrgResources,
    /// Days an invitation stays valid before it expires unaccepted.
    #[serde(default = "default_invitation_days")]
    #[schemars(range(min = 1, max = 365))]
    pub invitation_lifetime_days: u32,
    /// The least-privilege advisor's thresholds and the findings switched
    /// off (each with its reason). Absent: the defaults (docs/cli.md,
    /// `orgaccess advise`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub advice: AdviceSpec,
    /// What an overdue access review of a group does: report it (default),
    /// or suspend the memberships its last review did not confirm
    /// (docs/access-reviews.md). Optional rather than defaulted, so that a
    /// manifest spelling out the default (`whenOverdue: Report`) reads back
    /// as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_reviews: Option<AccessReviewsSpec>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The organization's access state, summarized.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": 0}))]
pub struct OrganizationStatus {
    /// Ready: the built-in groups exist and every object is reconciled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The metadata.generation this status describes (0 until the operator
    /// has reconciled the object; kstatus and `kubectl wait` compare it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Number of groups.
    #[serde(default)]
    pub groups: u32,
    /// Number of members, and of each phase.
    #[serde(default)]
    pub members: u32,
    /// Members who accepted their invitation.
    #[serde(default)]
    pub active_members: u32,
    /// Members whose invitation is still open.
    #[serde(default)]
    pub pending_members: u32,
    /// Members whose invitation expired unaccepted.
    #[serde(default)]
    pub expired_members: u32,
    /// Members brought in by identity sets alone (invited to no group). They
    /// hold their groups' privileges once accepted, but the platform does not
    /// list them on its Members page (seed 001); counted among `members`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub identity_set_members: u32,
    /// Number of API keys.
    #[serde(default)]
    pub api_keys: u32,
    /// Active members of the Administrators group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub administrators: Vec<String>,
    /// Built-in groups the operator has created (each is created once: a
    /// deleted built-in group other than Administrators stays deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeded_builtin_groups: Vec<BuiltinGroup>,
    /// The least-privilege advisor's findings (`orgaccess advise`), counted
    /// by severity; the `LeastPrivilege` condition summarizes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<AdviceStatus>,
}

/// The advisor's findings on the organization, as the operator last
/// reviewed it (findings switched off in `spec.advice` are not counted).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdviceStatus {
    /// Findings of severity critical.
    pub critical: u32,
    /// Findings of severity warning.
    pub warning: u32,
    /// Findings of severity info.
    pub info: u32,
    /// The ids of the findings, each once, most severe first (at most 32).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = 64)))]
    pub findings: Vec<String>,
}

impl From<&Organization> for OrgDef {
    fn from(o: &Organization) -> Self {
        OrgDef {
            name: o.name_any(),
            display_name: o.spec.display_name.clone(),
            resources: o.spec.resources.clone(),
            invitation_lifetime_days: o.spec.invitation_lifetime_days,
            advice: o.spec.advice.clone(),
            access_reviews: o.spec.access_reviews.clone().unwrap_or_default(),
            meta: guarded_meta(o.meta()),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
