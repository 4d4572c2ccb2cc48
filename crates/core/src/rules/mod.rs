//! The admission rules (catalogued by name in docs/rules.md), as pure functions.
//!
//! One file per rule in this directory, named for what it judges, with its
//! table of cases beside it (a `#[cfg(test)] mod cases`, or `<rule>_cases.rs`;
//! the organization the tables judge in is `table.rs`). Here: the types the
//! rules share (the change, the requester, the verdict) and [`check`], which
//! runs them in order. The webhook and the offline `orgaccess check` both
//! call [`check`], so a manifest gets the same verdict and the same words in
//! a pull request as at the cluster's door.

use std::collections::BTreeSet;
use std::fmt;

use crate::effective::{Grantees, member_groups};
use crate::model::{AccessReviewDef, ApiKeyDef, GroupDef, Kind, MemberDef, Meta, OrgDef, OrgState};
use crate::privilege::PrivilegeSet;

mod administrators_protected;
mod bindings_recorded;
mod catalog_validity;
mod deletion_widens;
mod duplicate;
mod foreign_bindings;
mod guarded_metadata;
mod holdings;
mod identity_claims;
mod key_re_enabled;
mod no_escalation;
mod required_privileges;
mod review_grants;
mod review_validity;
mod reviewed_by_owner;
mod search_hub;
mod unknown_requester;

#[cfg(test)]
mod access_review_cases;
#[cfg(test)]
mod deletion_widens_cases;
#[cfg(test)]
mod key_re_enabled_cases;
#[cfg(test)]
mod membership_end_cases;
#[cfg(test)]
mod table;

pub use crate::bounds::truncate;
pub use administrators_protected::administrators_protected;
pub use bindings_recorded::{bindings_after, bindings_recorded, setter};
pub use catalog_validity::{MAX_UNDECLARED_LISTED, catalog_validity};
pub use duplicate::duplicate;
pub use foreign_bindings::{foreign_bindings, foreign_bindings_counted, who_can_gain};
pub use guarded_metadata::guarded_metadata;
pub use identity_claims::identity_claims;
pub use no_escalation::no_escalation;
pub use required_privileges::{activities_view, required, required_privileges};
pub use review_grants::{lifted, postponed, review_grants};
pub use reviewed_by_owner::reviewed_by_owner;
pub use unknown_requester::unknown_requester;

/// The rules, named as in the documentation and in denial messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Rule {
    CatalogValidity,
    AdministratorsProtected,
    Duplicate,
    RequiredPrivileges,
    NoEscalation,
    UnknownRequester,
    /// A disabled API key is enabled again only once its disabling was
    /// carried out (`apikey::re_enable_wait`; judged by the webhook, which
    /// sees the stored status).
    KeyLifecycle,
    /// SSO groups and Salesforce profiles are identity-provider assertions:
    /// only trusted principals (an identity-provider sync) write them.
    IdentityClaims,
    /// The record of who set an object's bindings (`orgaccess.dev/bound-by`)
    /// is what admission saw: nobody forges it, only a trusted principal
    /// drops entries (`bindings.rs`).
    BindingsRecorded,
    /// A trusted change grants nobody anything through a binding an
    /// untrusted requester set (the second-order invariant, docs/security.md).
    ForeignBindings,
    /// Only an owner of a group (`spec.owners`) records or deletes its
    /// access reviews (docs/access-reviews.md).
    ReviewedByOwner,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One reason a change is refused.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub rule: Rule,
    /// JSON path of the offending field, e.g. `spec.privileges[2].domain`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.rule, self.field, self.message)
    }
}

fn violation(rule: Rule, field: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation {
        rule,
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// An object of one of the five kinds.
#[derive(Clone, Copy, Debug)]
pub enum Object<'a> {
    Organization(&'a OrgDef),
    Group(&'a GroupDef),
    Member(&'a MemberDef),
    ApiKey(&'a ApiKeyDef),
    AccessReview(&'a AccessReviewDef),
}

impl<'a> Object<'a> {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Organization(_) => Kind::Organization,
            Object::Group(_) => Kind::Group,
            Object::Member(_) => Kind::Member,
            Object::ApiKey(_) => Kind::ApiKey,
            Object::AccessReview(_) => Kind::AccessReview,
        }
    }

    /// The guarded part of the object's metadata.
    pub fn meta(self) -> &'a Meta {
        match self {
            Object::Organization(x) => &x.meta,
            Object::Group(x) => &x.meta,
            Object::Member(x) => &x.meta,
            Object::ApiKey(x) => &x.meta,
            Object::AccessReview(x) => &x.meta,
        }
    }
}

/// A change to check: old is set for Update and Delete, new for Create and Update.
#[derive(Clone, Copy, Debug)]
pub struct Change<'a> {
    pub operation: Operation,
    pub name: &'a str,
    pub old: Option<Object<'a>>,
    pub new: Option<Object<'a>>,
}

/// Who asks, as the rules see them.
#[derive(Clone, Debug)]
pub enum Requester {
    /// A configured platform principal (GitOps controller, system:masters):
    /// skips the requester rules, never CatalogValidity or AdministratorsProtected.
    Trusted,
    /// The operator itself: trusted, and may manage the built-in groups.
    Operator,
    /// A Kubernetes identity mapped to these members.
    Members {
        user: String,
        members: Vec<String>,
        privileges: PrivilegeSet,
    },
    /// Nobody in the organization.
    Unmapped { user: String },
}

impl Requester {
    fn privileges(&self) -> Option<&PrivilegeSet> {
        match self {
            Requester::Members { privileges, .. } => Some(privileges),
            _ => None,
        }
    }

    fn is_trusted(&self) -> bool {
        matches!(self, Requester::Trusted | Requester::Operator)
    }

    fn describe(&self) -> String {
        match self {
            Requester::Trusted => "a trusted platform principal".into(),
            Requester::Operator => "the operator".into(),
            Requester::Members { user, members, .. } => {
                format!("'{user}' (member {})", members.join(", "))
            }
            Requester::Unmapped { user } => format!("'{user}'"),
        }
    }
}

/// Runs every rule on a change; an empty result means admitted.
pub fn check(
    state: &OrgState,
    grantees: &Grantees,
    change: &Change,
    requester: &Requester,
) -> Vec<Violation> {
    check_counted(
        state,
        grantees,
        change,
        requester,
        crate::bindings::Recorded::of(state),
    )
}

/// [`check`], given the count of `state`'s recorded bindings
/// ([`crate::bindings::Recorded::of`] of it), which a caller that keeps it
/// (the webhook's index) passes instead of a scan per request.
pub fn check_counted(
    state: &OrgState,
    grantees: &Grantees,
    change: &Change,
    requester: &Requester,
    recorded: crate::bindings::Recorded,
) -> Vec<Violation> {
    let mut out = catalog_validity(state, change);
    out.extend(administrators_protected(state, change, requester));
    if matches!(requester, Requester::Trusted) {
        out.extend(foreign_bindings_counted(state, grantees, change, recorded));
    }
    if requester.is_trusted() {
        return out;
    }
    if let Some(v) = unknown_requester(requester) {
        out.push(v);
        return out;
    }
    out.extend(identity_claims(change, requester));
    out.extend(guarded_metadata(change, requester));
    out.extend(duplicate(state, grantees, change, requester));
    out.extend(required_privileges(state, change, requester));
    out.extend(reviewed_by_owner(state, change, requester));
    out.extend(no_escalation(state, grantees, change, requester));
    out
}

/// The member of one side of a change, if it is one.
fn member<'a>(o: Option<Object<'a>>) -> Option<&'a MemberDef> {
    match o {
        Some(Object::Member(m)) => Some(m),
        _ => None,
    }
}

/// The groups a member is in by both routes, by name.
fn group_names(state: &OrgState, m: Option<&MemberDef>) -> BTreeSet<String> {
    m.map(|m| {
        member_groups(state, m)
            .into_iter()
            .map(|(g, _)| g)
            .collect()
    })
    .unwrap_or_default()
}

/// The one denial message for a refused change, shared by the webhook and
/// `orgaccess check` so both say exactly the same thing.
///
/// At most [`MAX_MESSAGE_VIOLATIONS`] reasons are given ("... and N more"), and
/// the message is cut at [`MAX_MESSAGE_BYTES`]: it is sent, logged and kept.
pub fn denial_message(kind: &str, namespace: &str, name: &str, violations: &[Violation]) -> String {
    let reasons: Vec<String> = violations
        .iter()
        .take(MAX_MESSAGE_VIOLATIONS)
        .map(Violation::to_string)
        .collect();
    let mut message = format!("{kind} {namespace}/{name} denied: {}", reasons.join("; "));
    if violations.len() > MAX_MESSAGE_VIOLATIONS {
        message.push_str(&format!(
            "; ... and {} more",
            violations.len() - MAX_MESSAGE_VIOLATIONS
        ));
    }
    truncate(message, MAX_MESSAGE_BYTES)
}

/// Most reasons given in one denial message.
pub const MAX_MESSAGE_VIOLATIONS: usize = 30;
/// Longest denial message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
