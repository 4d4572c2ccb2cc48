//! The AccessReview: an owner's record that the members it confirms keep
//! their membership of a group (docs/access-reviews.md).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{conditions_schema, guarded_meta};
use crate::core::model::{AccessReviewDef, MAX_CONFIRMED};

/// An access review of a group, as recorded by one of its owners.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "orgaccess.dev",
    version = "v1alpha1",
    kind = "AccessReview",
    namespaced,
    category = "orgaccess",
    doc = "An access review of a group: one of the group's owners confirms which members keep their membership. A record, in Git and in the audit trail: its instant is the server-set metadata.creationTimestamp, and its spec cannot change once created. The group's latest review sets when the next is due (the Group's status.nextReviewDue); when the Organization says so, memberships it does not confirm are suspended once the next review is overdue.",
    shortname = "arev",
    status = "AccessReviewStatus",
    printcolumn = r#"{"name":"Group","type":"string","jsonPath":".spec.group"}"#,
    printcolumn = r#"{"name":"Confirmed","type":"string","jsonPath":".spec.confirmed"}"#,
    printcolumn = r#"{"name":"Note","type":"string","priority":1,"jsonPath":".spec.note"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self == oldSelf", "message": "an access review is a record: its spec cannot change; record a new AccessReview instead"}
]))]
pub struct AccessReviewSpec {
    /// The Group reviewed (its object name). The requester must be one of
    /// its owners and hold Edit on it.
    #[schemars(length(min = 1, max = 253))]
    pub group: String,
    /// The Members whose membership of the group is confirmed (object
    /// names; each a member of the group). A member of the group left out is
    /// not confirmed: once the next review is overdue, and the Organization
    /// says Suspend, that membership stops counting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "confirmed_schema")]
    pub confirmed: Vec<String>,
    /// Why, for the audit trail (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub note: Option<String>,
}

fn confirmed_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "maxItems": MAX_CONFIRMED,
        "x-kubernetes-list-type": "set",
        "items": {"type": "string", "minLength": 1, "maxLength": 253},
    })
}

/// The operator writes nothing here: a review takes effect through its
/// Group (`status.lastReview`, `status.nextReviewDue`, the
/// `AccessReviewed` condition). Kept so the kind has the status subresource
/// every orgaccess kind has (a client cannot write status with the spec).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessReviewStatus {
    /// Conditions (none are written today).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl From<&AccessReview> for AccessReviewDef {
    fn from(r: &AccessReview) -> Self {
        AccessReviewDef {
            name: r.name_any(),
            group: r.spec.group.clone(),
            confirmed: r.spec.confirmed.clone(),
            note: r.spec.note.clone(),
            created: r.meta().creation_timestamp.as_ref().map(|t| t.0),
            meta: guarded_meta(r.meta()),
        }
    }
}
