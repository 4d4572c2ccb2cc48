//! The Group: members and the privileges they share.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{conditions_schema, guarded_meta};
use crate::core::builtin::{BuiltinGroup, GroupTemplate};
use crate::core::model::{AccessEntry, GroupDef, IdentitySet};
use crate::core::privilege::PrivilegeSpec;
use crate::core::review::Standing;

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
    printcolumn = r#"{"name":"Review","type":"string","priority":1,"jsonPath":".status.reviewStanding"}"#,
    printcolumn = r#"{"name":"Next review","type":"string","priority":1,"jsonPath":".status.nextReviewDue"}"#,
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
    /// Members who review the group's access (Member object names): one of
    /// them records each AccessReview of the group, and must hold Edit on
    /// it. Changing the owners is an edit of the group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"), length(max = 32), inner(length(min = 1, max = 253)))]
    pub owners: Vec<String>,
    /// How often the group's access is reviewed: an ISO-8601 duration of
    /// years, months, weeks and days (`P90D`), from 1 day to 3 years. The
    /// next review is due this long after the last one (or after the
    /// group's creation). Absent: the group is not reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::core::model::review_period_schema")]
    pub review_every: Option<String>,
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
    /// Invited members who have not accepted yet, or whose invitation
    /// expired, or whose membership ended or is suspended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inactive_members: Vec<String>,
    /// The group's last access review (an AccessReview of it), when it has
    /// a cadence (`spec.reviewEvery`) and has been reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_review: Option<LastReview>,
    /// When the next access review is due (RFC 3339): a cadence after the
    /// last review, or after the group's creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_review_due: Option<String>,
    /// Current, Due (the due date is near, or passed within the
    /// Organization's grace period) or Overdue; absent without a cadence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_standing: Option<Standing>,
    /// Members whose membership is suspended: the review is overdue, the
    /// last review did not confirm them, and the Organization says Suspend
    /// (they are among `inactiveMembers`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suspended_members: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An access review, as a Group's status names it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastReview {
    /// The AccessReview's name.
    pub name: String,
    /// When it was recorded (its creation, RFC 3339).
    pub at: String,
    /// How many members it confirmed.
    pub confirmed: u32,
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
            owners: g.spec.owners.clone(),
            review_every: g.spec.review_every.clone(),
            created: g.meta().creation_timestamp.as_ref().map(|t| t.0),
            meta: guarded_meta(g.meta()),
        }
    }
}
