//! The custom resources: Organization, Group, Member, ApiKey in `orgaccess.dev/v1alpha1`.
//!
//! Specs reuse the core's building blocks (privileges, access entries,
//! identities), so the schema and the rules describe the same thing. Static
//! rules live in the schema (enums, CEL); the webhook keeps what needs context.
//! `orgaccess crds` prints these definitions; `crds/` holds them and CI fails
//! when they drift.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::builtin::{ApiKeyTemplate, BuiltinGroup, GroupTemplate};
use crate::core::effective::{MemberPhase, Via};
use crate::core::model::{
    AccessEntry, AdviceSpec, ApiKeyDef, DEFAULT_INVITATION_DAYS, GroupDef, IdentitySet, MemberDef,
    MemberIdentity, Meta, OrgDef, OrgResources, OrgState, Subject,
};
use crate::core::privilege::PrivilegeSpec;

pub const GROUP: &str = "orgaccess.dev";

fn conditions_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = g.subschema_for::<Vec<Condition>>();
    s.insert("x-kubernetes-list-type".into(), "map".into());
    s.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    s
}

/// IP lists: bounded so their CEL check fits the apiserver's cost budget.
fn ip_list_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "maxItems": 100,
        "items": {"type": "string", "maxLength": 64},
        "x-kubernetes-validations": [
            {"rule": "self.all(c, isCIDR(c) || isIP(c))", "message": "holds IP addresses or CIDR ranges such as 203.0.113.0/24"}
        ]
    })
}

fn default_true() -> bool {
    true
}

fn default_invitation_days() -> u32 {
    DEFAULT_INVITATION_DAYS
}

// ---------------------------------------------------------------------------
// Organization
// ---------------------------------------------------------------------------

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
    /// In this process only: what the cache kept of a trimmed status
    /// (`index::cached_status`). Never serialized, so never sent to the
    /// apiserver, and not part of the CRD schema.
    #[serde(skip)]
    #[schemars(skip)]
    pub cached: Option<crate::index::cached_status::StatusDigest>,
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

// ---------------------------------------------------------------------------
// Group
// ---------------------------------------------------------------------------

/// A group of members and the privileges they share.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "orgaccess.dev",
    version = "v1alpha1",
    kind = "Group",
    namespaced,
    category = "orgaccess",
    doc = "A group of members and the privileges they share: privileges (optionally from a template), identity sets that bring members in by rule, and an access list of other groups and API keys that may view or edit it. Status holds the expanded privileges and the members.",
    shortname = "grp",
    status = "GroupStatus",
    printcolumn = r#"{"name":"Display name","type":"string","jsonPath":".status.displayName"}"#,
    printcolumn = r#"{"name":"Built-in","type":"string","jsonPath":".spec.builtIn"}"#,
    printcolumn = r#"{"name":"Template","type":"string","jsonPath":".spec.template"}"#,
    printcolumn = r#"{"name":"Members","type":"integer","jsonPath":".status.memberCount"}"#,
    printcolumn = r#"{"name":"Privileges","type":"integer","jsonPath":".status.privilegeCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.builtIn) == has(oldSelf.builtIn) && (!has(self.builtIn) || self.builtIn == oldSelf.builtIn)",
     "message": "builtIn is set by the operator when it seeds the organization and cannot change"},
    {"rule": "has(self.duplicateOf) == has(oldSelf.duplicateOf) && (!has(self.duplicateOf) || self.duplicateOf == oldSelf.duplicateOf)",
     "message": "duplicateOf records where the group was copied from and cannot change"}
]))]
pub struct GroupSpec {
    /// Human name. Defaults to the object name, or `<source>_copy` for a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::core::model::optional_display_name_schema")]
    pub display_name: Option<String>,
    /// Marks a built-in group seeded by the operator. Set only by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_in: Option<BuiltinGroup>,
    /// Starting privileges; entries in `privileges` replace the template's grant domain by domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<GroupTemplate>,
    /// Privileges granted to every member of the group, one entry per
    /// service and domain (a map list: server-side apply merges entries by
    /// service and domain, so field managers may own different privileges).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend(
        "maxItems" = 200,
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["service", "domain"]
    ))]
    pub privileges: Vec<PrivilegeSpec>,
    /// Rules that bring members in without an invitation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 64))]
    pub identity_sets: Vec<IdentitySet>,
    /// The Access tab: other groups and API keys that may view or edit this group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 500))]
    pub access: Vec<AccessEntry>,
    /// Name of the Group this one duplicates. Needs privileges strictly above the source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub duplicate_of: Option<String>,
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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": 0}))]
/// What the operator computed for the group: its privileges after template
/// expansion and access-list grants, its members, and its conditions.
pub struct GroupStatus {
    /// Ready: the privileges are valid and expanded. ResolvedRefs: every named group and key exists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The metadata.generation this status describes (0 until the operator
    /// has reconciled the object; kstatus and `kubectl wait` compare it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The display name in effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Privileges after template expansion, including access-list grants from other objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<PrivilegeSpec>,
    /// Number of entries in `privileges`.
    #[serde(default)]
    pub privilege_count: u32,
    /// Active members (by invitation or identity set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Number of active members.
    #[serde(default)]
    pub member_count: u32,
    /// Invited members who have not accepted yet, or whose invitation expired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inactive_members: Vec<String>,
    /// In this process only: what the cache kept of a trimmed status
    /// (`index::cached_status`). Never serialized, so never sent to the
    /// apiserver, and not part of the CRD schema.
    #[serde(skip)]
    #[schemars(skip)]
    pub cached: Option<crate::index::cached_status::StatusDigest>,
}

// ---------------------------------------------------------------------------
// Member
// ---------------------------------------------------------------------------

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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MembershipStatus {
    pub group: String,
    /// Invitation or IdentitySet.
    pub via: Via,
    /// The membership grants privileges now.
    pub active: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": 0}))]
/// What the operator computed for the member: phase, memberships and
/// effective privileges with the groups each comes from.
pub struct MemberStatus {
    /// Ready: effective privileges computed. ResolvedRefs: every group exists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
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
    /// In this process only: what the cache kept of a trimmed status
    /// (`index::cached_status`). Never serialized, so never sent to the
    /// apiserver, and not part of the CRD schema.
    #[serde(skip)]
    #[schemars(skip)]
    pub cached: Option<crate::index::cached_status::StatusDigest>,
}

// ---------------------------------------------------------------------------
// ApiKey
// ---------------------------------------------------------------------------

/// An API key: a token with privileges, generated by the operator into a Secret.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "orgaccess.dev",
    version = "v1alpha1",
    kind = "ApiKey",
    namespaced,
    category = "orgaccess",
    doc = "An API key: a token with privileges whose value the operator generates into the Secret <name>-apikey (never in status). Status holds the phase, a prefix and hash of the value, and the expiry.",
    shortname = "ak",
    status = "ApiKeyStatus",
    printcolumn = r#"{"name":"Display name","type":"string","jsonPath":".spec.displayName"}"#,
    printcolumn = r#"{"name":"Template","type":"string","jsonPath":".spec.template"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Prefix","type":"string","jsonPath":".status.prefix"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","jsonPath":".status.expiresAt"}"#,
    printcolumn = r#"{"name":"Last used","type":"date","jsonPath":".status.lastUsedAt"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","priority":1,"jsonPath":".status.secretName"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(oldSelf.lifetime) || (has(self.lifetime) && self.lifetime == oldSelf.lifetime)",
     "message": "lifetime cannot be removed or changed once set (a key without one lives its template's cap, which setting a lifetime may only shorten); create a new key for a longer life"},
    {"rule": "(has(self.template) ? self.template : 'Custom') == (has(oldSelf.template) ? oldSelf.template : 'Custom')",
     "message": "template is fixed when the key is created (it sets the key's lifetime cap and privacy); create a new key from the other template"},
    {"rule": "!has(oldSelf.rotation) || (has(self.rotation) && self.rotation.generation >= oldSelf.rotation.generation)",
     "message": "rotation.generation only goes up (the key's Secret records the generation it holds); raise it to rotate"}
]))]
pub struct ApiKeySpec {
    /// Human name of the key.
    #[schemars(schema_with = "crate::core::model::display_name_schema")]
    pub display_name: String,
    /// What the key is for, who it was shared with, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
    /// Starting privileges from an API key template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ApiKeyTemplate>,
    /// Privileges of the key; entries replace the template's grant domain by
    /// domain. One entry per service and domain (a map list, as on Groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend(
        "maxItems" = 200,
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["service", "domain"]
    ))]
    pub privileges: Vec<PrivilegeSpec>,
    /// The Access tab: groups and API keys that may view or edit this key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 500))]
    pub access: Vec<AccessEntry>,
    /// A disabled key is kept but refused.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// ISO-8601 duration after which the key expires for good, counted from
    /// the key's creation, e.g. P90D. Capped per template: at most P90D for the
    /// templates that can be public (AnonymousSearch, UsageAnalytics,
    /// SearchPages), P365D for AuthenticatedSearch and Custom. Absent: the
    /// template's cap. Cannot be removed or lengthened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub lifetime: Option<String>,
    /// Addresses or CIDR ranges the key may be used from. Empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "ip_list_schema")]
    pub allowed_ips: Vec<String>,
    /// Addresses or CIDR ranges the key is refused from. An address in both lists is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "ip_list_schema")]
    pub denied_ips: Vec<String>,
    /// Rotation: raise `generation` to replace the key value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// Raise to rotate: the operator generates a new value and keeps the previous one valid for `previousKeyValidity`.
    #[schemars(range(min = 0))]
    pub generation: i64,
    /// ISO-8601 duration the previous value stays valid, at most P30D (and
    /// never past the key's own expiry). Default P7D.
    #[serde(default = "default_previous_validity")]
    #[schemars(length(min = 1, max = 64))]
    pub previous_key_validity: String,
}

fn default_previous_validity() -> String {
    "P7D".into()
}

/// Lifecycle phase of an API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiKeyPhase {
    Active,
    Disabled,
    Expired,
    /// Rotated: the previous value is still valid until `previousExpiresAt`.
    Rotating,
    /// The Secret under the key's name is not the one the operator created
    /// for it (`status.secretUid`): the key has no value until that Secret
    /// goes (`Ready=False`, reason SecretConflict).
    SecretConflict,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": 0}))]
/// The key's lifecycle as the operator sees it. Never holds the value: only
/// a prefix and a hash of it.
pub struct ApiKeyStatus {
    /// Ready (settled, including Disabled and Expired), Stalled
    /// (SecretConflict), Reconciling, ExpiringSoon. See docs/status.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The metadata.generation this status describes (0 until the operator
    /// has reconciled the object; kstatus and `kubectl wait` compare it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ApiKeyPhase>,
    /// Secret holding the key value (key `apiKey`); owned by this ApiKey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// The uid of the Secret the operator created for this key. Only that
    /// Secret is ever read or written: one under the same name with another
    /// uid (created by someone else, whatever its ownerReferences say) puts
    /// the key in SecretConflict and nothing of it is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub secret_uid: Option<String>,
    /// First characters of the value, to recognise it. Never the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// SHA-256 of the value, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// When the key was created (its lifetime counts from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the key expires for good: creation + min(lifetime, template cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Rotation generation the current value belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_generation: Option<i64>,
    /// When the value was last rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<String>,
    /// Until when the previous value stays valid after a rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_expires_at: Option<String>,
    /// First characters of the previous value while it is still valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_prefix: Option<String>,
    /// SHA-256 of the previous value, hex, while it is still valid (the
    /// decision service accepts it until `previousExpiresAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_hash: Option<String>,
    /// Effective privileges, including access-list grants from other objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<PrivilegeSpec>,
    /// When the decision service last verified a value of this key (RFC
    /// 3339), coarse: truncated to its recording interval
    /// (`--decision-usage-interval`, default 5 minutes). Absent: not used
    /// since usage is recorded. Written by the decision service (field
    /// manager `orgaccess-usage`), not by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub last_used_at: Option<String>,
    /// In this process only: what the cache kept of a trimmed status
    /// (`index::cached_status`). Never serialized, so never sent to the
    /// apiserver, and not part of the CRD schema.
    #[serde(skip)]
    #[schemars(skip)]
    pub cached: Option<crate::index::cached_status::StatusDigest>,
}

// ---------------------------------------------------------------------------
// CRDs and core views
// ---------------------------------------------------------------------------

/// Every CRD, in a stable order.
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    vec![
        Organization::crd(),
        Group::crd(),
        Member::crd(),
        api_key_crd(),
    ]
}

/// The ApiKey CRD, with a rule on `metadata.name` the derive cannot express:
/// the Secret `<name>-apikey` must be a valid object name.
fn api_key_crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::ValidationRule;
    let mut crd = ApiKey::crd();
    let max = crate::core::apikey::MAX_NAME_LEN;
    for v in &mut crd.spec.versions {
        if let Some(schema) = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            schema
                .x_kubernetes_validations
                .get_or_insert_with(Vec::new)
                .push(ValidationRule {
                    rule: format!("self.metadata.name.size() <= {max}"),
                    message: Some(format!(
                        "an API key name has at most {max} characters, so that its Secret '<name>-apikey' is a valid name"
                    )),
                    ..ValidationRule::default()
                });
        }
    }
    crd
}

/// The CRDs as one multi-document YAML stream (what `orgaccess crds` prints).
pub fn crds_yaml() -> anyhow::Result<String> {
    let mut out = String::from(
        "# Generated by `orgaccess crds`. Do not edit: change src/api.rs and regenerate.\n",
    );
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

fn created_at<K: Resource>(obj: &K) -> Option<jiff::Timestamp> {
    obj.meta().creation_timestamp.as_ref().map(|t| t.0)
}

/// The guarded parts of an object's metadata, for the rules.
pub fn guarded_meta(meta: &kube::api::ObjectMeta) -> Meta {
    Meta {
        owner_references: meta
            .owner_references
            .iter()
            .flatten()
            .map(|o| format!("{}/{}/{}", o.kind, o.name, o.uid))
            .collect(),
        finalizers: meta.finalizers.clone().unwrap_or_default(),
        deleting: meta.deletion_timestamp.is_some(),
        bound_by: crate::core::bindings::parse(
            meta.annotations
                .as_ref()
                .and_then(|a| a.get(crate::core::bindings::ANNOTATION))
                .map(String::as_str),
        ),
    }
}

impl From<&Organization> for OrgDef {
    fn from(o: &Organization) -> Self {
        OrgDef {
            name: o.name_any(),
            display_name: o.spec.display_name.clone(),
            resources: o.spec.resources.clone(),
            invitation_lifetime_days: o.spec.invitation_lifetime_days,
            advice: o.spec.advice.clone(),
            meta: guarded_meta(o.meta()),
        }
    }
}

impl From<&Group> for GroupDef {
    fn from(g: &Group) -> Self {
        GroupDef {
            name: g.name_any(),
            display_name: g.spec.display_name.clone(),
            builtin: g.spec.built_in,
            template: g.spec.template,
            privileges: g.spec.privileges.clone(),
            access: g.spec.access.clone(),
            identity_sets: g.spec.identity_sets.clone(),
            duplicate_of: g.spec.duplicate_of.clone(),
            meta: guarded_meta(g.meta()),
        }
    }
}

impl From<&Member> for MemberDef {
    fn from(m: &Member) -> Self {
        MemberDef {
            name: m.name_any(),
            identity: m.spec.identity.clone(),
            groups: m.spec.groups.clone(),
            subjects: m.spec.subjects.clone(),
            accepted: m.spec.accepted,
            invited_at: created_at(m),
            sso_groups: m.spec.sso_groups.clone(),
            salesforce_profile: m.spec.salesforce_profile.clone(),
            meta: guarded_meta(m.meta()),
        }
    }
}

impl From<&ApiKey> for ApiKeyDef {
    fn from(k: &ApiKey) -> Self {
        ApiKeyDef {
            name: k.name_any(),
            display_name: Some(k.spec.display_name.clone()),
            template: k.spec.template,
            privileges: k.spec.privileges.clone(),
            access: k.spec.access.clone(),
            enabled: k.spec.enabled,
            lifetime: k.spec.lifetime.clone(),
            allowed_ips: k.spec.allowed_ips.clone(),
            denied_ips: k.spec.denied_ips.clone(),
            previous_key_validity: k
                .spec
                .rotation
                .as_ref()
                .map(|r| r.previous_key_validity.clone()),
            created: k.metadata.creation_timestamp.as_ref().map(|t| t.0),
            meta: guarded_meta(k.meta()),
        }
    }
}

/// When each ApiKey of `namespace` was last used, as its status says
/// (`status.lastUsedAt`; keys without it are absent).
pub fn key_last_used<'a>(
    namespace: &str,
    keys: impl IntoIterator<Item = &'a ApiKey>,
) -> std::collections::BTreeMap<String, jiff::Timestamp> {
    keys.into_iter()
        .filter(|k| k.namespace().as_deref() == Some(namespace))
        .filter_map(|k| {
            let at = k.status.as_ref()?.last_used_at.as_deref()?.parse().ok()?;
            Some((k.name_any(), at))
        })
        .collect()
}

/// Builds one namespace's state from objects (from caches or manifests).
pub fn org_state<'a>(
    namespace: &str,
    orgs: impl IntoIterator<Item = &'a Organization>,
    groups: impl IntoIterator<Item = &'a Group>,
    members: impl IntoIterator<Item = &'a Member>,
    keys: impl IntoIterator<Item = &'a ApiKey>,
) -> OrgState {
    let here = |ns: Option<String>| ns.as_deref() == Some(namespace);
    let mut state = OrgState {
        org: orgs
            .into_iter()
            .find(|o| here(o.namespace()))
            .map(OrgDef::from),
        ..OrgState::default()
    };
    for g in groups.into_iter().filter(|g| here(g.namespace())) {
        state.groups.insert(g.name_any(), GroupDef::from(g));
    }
    for m in members.into_iter().filter(|m| here(m.namespace())) {
        state.members.insert(m.name_any(), MemberDef::from(m));
    }
    for k in keys.into_iter().filter(|k| here(k.namespace())) {
        state.api_keys.insert(k.name_any(), ApiKeyDef::from(k));
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_have_descriptions_status_and_printer_columns() {
        for crd in crds() {
            let v = &crd.spec.versions[0];
            assert!(
                v.subresources
                    .as_ref()
                    .and_then(|s| s.status.as_ref())
                    .is_some(),
                "{}",
                crd.spec.names.kind
            );
            assert!(
                v.additional_printer_columns
                    .as_ref()
                    .is_some_and(|c| c.len() >= 4)
            );
            let schema = serde_json::to_value(v.schema.as_ref().unwrap()).unwrap();
            let root = &schema["openAPIV3Schema"];
            let kind_doc = root["description"].as_str().unwrap_or_default();
            assert!(
                !kind_doc.is_empty() && !kind_doc.contains("Auto-generated"),
                "{}: kubectl explain shows {kind_doc:?}",
                crd.spec.names.kind
            );
            for part in ["spec", "status"] {
                let p = &root["properties"][part];
                assert!(
                    p.get("description").is_some(),
                    "{}.{part}",
                    crd.spec.names.kind
                );
                for (field, s) in p["properties"].as_object().unwrap() {
                    assert!(
                        s.get("description").is_some(),
                        "{}.{part}.{field} has no description",
                        crd.spec.names.kind
                    );
                }
            }
            assert_eq!(
                crd.spec.names.categories.as_deref(),
                Some(&["orgaccess".to_string()][..])
            );
            let columns = v.additional_printer_columns.as_ref().unwrap();
            assert!(
                columns
                    .iter()
                    .any(|c| c.priority == Some(1) && c.name == "Reason"),
                "{}: no -o wide column",
                crd.spec.names.kind
            );
        }
    }
}
