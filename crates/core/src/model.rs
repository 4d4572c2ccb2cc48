//! The organization's objects as the core sees them: plain data, no kube types.
//!
//! The CRD module builds these from Group/Member/ApiKey/Organization objects;
//! the CLI builds them from manifests. The building blocks that appear in specs
//! (privileges, access entries, identities, subjects) are defined here once and
//! reused by the CRD types, so the schema and the rules cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::{ApiKeyTemplate, BuiltinGroup, GroupTemplate};
use crate::privilege::{PrivilegeSpec, ResourceLevel};

/// Longest object name (a DNS subdomain, as Kubernetes names are).
pub const MAX_NAME: usize = 253;

/// Display names: 1 to 255 characters, no control or bidirectional-override
/// characters (which make a name read as another, e.g. "Administrators").
pub fn display_name_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "x-kubernetes-validations": [{
            "rule": r"!self.matches(r'[\x{0}-\x{1F}\x{7F}-\x{9F}\x{200E}\x{200F}\x{202A}-\x{202E}\x{2066}-\x{2069}]')",
            "message": "a display name holds no control or bidirectional-override characters"
        }]
    })
}

/// [`display_name_schema`], for an optional field.
pub fn optional_display_name_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = display_name_schema(g);
    s.insert("nullable".into(), true.into());
    s
}

/// Default invitation lifetime, in days.
pub const DEFAULT_INVITATION_DAYS: u32 = 31;

/// One entry of an access list (the "Access" tab): a group or API key that may
/// view or edit the object that holds the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.group) != has(self.apiKey)", "message": "an access entry names exactly one of group or apiKey"}
]))]
pub struct AccessEntry {
    /// Name of a Group object in this organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub group: Option<String>,
    /// Name of an ApiKey object in this organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub api_key: Option<String>,
    /// View or Edit on the object holding this list. Counts exactly as the
    /// matching Custom grant on the Groups or API keys domain.
    pub level: ResourceLevel,
}

/// Identity providers a member can sign in with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Provider {
    Email,
    Google,
    Microsoft,
    Salesforce,
    SalesforceSandbox,
    SingleSignOn,
    /// Any listed provider; the member chooses at first sign-in.
    AnyListed,
}

/// A rule that brings members into a group without an invitation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "(has(self.openIdDomain) ? 1 : 0) + (has(self.ssoGroup) ? 1 : 0) + (has(self.salesforceProfile) ? 1 : 0) == 1",
     "message": "an identity set has exactly one of openIdDomain, ssoGroup or salesforceProfile"}
]))]
pub struct IdentitySet {
    /// Everyone of an OpenID provider whose address is in this domain, e.g. `example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_id_domain: Option<OpenIdDomain>,
    /// Everyone the single sign-on provider asserts to be in this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub sso_group: Option<String>,
    /// Everyone with this Salesforce user profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub salesforce_profile: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OpenIdDomain {
    /// Google, Microsoft, Salesforce or SalesforceSandbox.
    pub provider: Provider,
    /// The e-mail domain, e.g. `example.com`.
    #[schemars(length(min = 1, max = 253))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.matches(r'^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$')",
         "message": "an OpenID domain is a DNS domain such as example.com"}
    ]))]
    pub domain: String,
}

/// Who a member is at their identity provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.provider == 'SingleSignOn' || self.username.matches(r'^[^@\\s]+@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$')",
     "message": "username must be an e-mail address (name@domain.example) for providers Email, Google, Microsoft, Salesforce, SalesforceSandbox and AnyListed"},
    {"rule": "!self.username.matches(r'[\\x{0}-\\x{20}\\x{7F}-\\x{9F}\\x{200E}\\x{200F}\\x{202A}-\\x{202E}\\x{2066}-\\x{2069}]')",
     "message": "username holds no spaces, control or bidirectional-override characters"}
]))]
pub struct MemberIdentity {
    /// The identity provider the member signs in with.
    pub provider: Provider,
    /// E-mail address or username at that provider (the NameID for single
    /// sign-on). An e-mail address for every provider but SingleSignOn.
    #[schemars(length(min = 1, max = 254))]
    pub username: String,
}

/// A Kubernetes identity that acts as a member when it changes the organization's objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.kind == 'ServiceAccount' ? has(self.__namespace__) : !has(self.__namespace__)",
     "message": "namespace is required for kind ServiceAccount and not allowed otherwise"}
]))]
pub struct Subject {
    /// User, Group or ServiceAccount, as in RBAC subjects.
    pub kind: SubjectKind,
    /// User name, group name or service account name.
    #[schemars(length(min = 1, max = 512))]
    pub name: String,
    /// Namespace of the service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SubjectKind {
    User,
    Group,
    ServiceAccount,
}

impl Subject {
    /// When this subject stands for a whole class of identities rather than
    /// people or workloads someone chose (every authenticated user, every
    /// service account, anonymous requests, ...), what that class is.
    pub fn class_of_identities(&self) -> Option<&'static str> {
        match (self.kind, self.name.as_str()) {
            (SubjectKind::Group, "system:authenticated") => {
                Some("every authenticated user of the cluster")
            }
            (SubjectKind::Group, "system:unauthenticated") => {
                Some("every anonymous request to the cluster")
            }
            (SubjectKind::Group, "system:serviceaccounts") => {
                Some("every service account of the cluster")
            }
            (SubjectKind::Group, n) if n.starts_with("system:serviceaccounts:") => {
                Some("every service account of a namespace")
            }
            (SubjectKind::Group, n) if n.starts_with("system:") => {
                Some("a Kubernetes system group, a class of identities the cluster assigns")
            }
            (SubjectKind::User, "system:anonymous") => {
                Some("every anonymous request to the cluster")
            }
            _ => None,
        }
    }

    /// The Kubernetes user name this subject stands for: a User's name, or
    /// a ServiceAccount as the apiserver names it
    /// (`system:serviceaccount:NS:NAME`); `None` for a Group.
    pub fn username(&self) -> Option<String> {
        match self.kind {
            SubjectKind::User => Some(self.name.clone()),
            SubjectKind::Group => None,
            SubjectKind::ServiceAccount => Some(format!(
                "system:serviceaccount:{}:{}",
                self.namespace.as_deref().unwrap_or_default(),
                self.name
            )),
        }
    }

    /// Does the Kubernetes user (name and groups) match this subject? A
    /// subject that stands for a whole class of identities matches nobody:
    /// admission refuses it, and one stored before that rule grants nothing.
    pub fn matches(&self, username: &str, groups: &[String]) -> bool {
        if self.class_of_identities().is_some() {
            return false;
        }
        match self.kind {
            SubjectKind::User => self.name == username,
            SubjectKind::Group => groups.contains(&self.name),
            SubjectKind::ServiceAccount => {
                let ns = self.namespace.as_deref().unwrap_or_default();
                username
                    .strip_prefix("system:serviceaccount:")
                    .and_then(|rest| rest.split_once(':'))
                    == Some((ns, self.name.as_str()))
            }
        }
    }
}

/// Named resources of the organization that Custom grants may name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgResources {
    /// Content sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"), length(max = 1000), inner(length(min = 1, max = 253)))]
    pub sources: Vec<String>,
    /// Indexing pipeline extensions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"), length(max = 1000), inner(length(min = 1, max = 253)))]
    pub extensions: Vec<String>,
    /// Query pipelines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"), length(max = 1000), inner(length(min = 1, max = 253)))]
    pub query_pipelines: Vec<String>,
    /// Usage-analytics tracking IDs ("Properties"): the Merchandising Hub is
    /// granted per tracking ID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"), length(max = 1000), inner(length(min = 1, max = 253)))]
    pub tracking_ids: Vec<String>,
}

/// The least-privilege advisor's settings (`spec.advice` of the
/// Organization): thresholds, and findings switched off with the reason
/// recorded. Every field is optional; an absent one keeps the default
/// ([`Settings::default`]). [`AdviceSpec::settings`] is the one
/// conversion to the core's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdviceSpec {
    /// More members holding Groups Edit than this is the finding
    /// `groups-edit-holders` (default 1: "ideally the authority that manages
    /// access rights").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000))]
    pub groups_edit_max_holders: Option<u32>,
    /// More active members in Administrators than this is the finding
    /// `administrators-size` (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub administrators_max_members: Option<u32>,
    /// An API key living at least this share (percent) of its template's
    /// lifetime cap is the finding `key-near-cap` (default 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub key_cap_percent: Option<u32>,
    /// A membership of an elevated group (one granting Administrators'
    /// privileges, Groups Edit or API keys Edit) that does not end within
    /// this many days is the finding `long-lived-elevated-membership`
    /// (default 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub elevated_membership_max_days: Option<u32>,
    /// Findings switched off, each with the reason it is (the record an
    /// auditor reads). A finding switched off is neither counted in the
    /// status, nor exported as a metric, nor warned about on admission.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["finding"])
    )]
    pub disabled: Vec<DisabledFinding>,
}

/// Every least-privilege finding id, stable: alerts, suppressions
/// (`spec.advice.disabled`) and CI thresholds name them. Here, beneath the
/// advisor (`advice.rs`, which finds them), because the Organization's
/// schema lists them.
pub const IDS: [&str; 13] = [
    "groups-edit-holders",
    "administrators-size",
    "administrator-equivalent",
    "console-without-organization-view",
    "unresolved-reference",
    "public-key-beyond-search",
    "key-without-expiry",
    "key-near-cap",
    "activities-view-holders",
    "group-without-members",
    "identical-duplicate",
    "long-lived-elevated-membership",
    "elevated-group-without-review",
];

/// The advisor's settings: thresholds, and findings switched off. What
/// [`AdviceSpec::settings`] makes of `spec.advice`; `advice::review` reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// More members holding Groups Edit than this is a finding.
    pub groups_edit_max: usize,
    /// More active members in Administrators than this is a finding.
    pub administrators_max: usize,
    /// A key whose lifetime is at least this share (percent) of its
    /// template's cap is "near the cap".
    pub key_cap_percent: i64,
    /// A membership of an elevated group ending later than this many days
    /// from now (or never) is long-lived.
    pub elevated_membership_max_days: i64,
    /// Finding ids switched off (with the reason recorded where they are set).
    pub disabled: BTreeSet<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            // Groups Edit for the smallest possible number of people
            // (docs/cli.md, finding `groups-edit-holders`): one.
            groups_edit_max: 1,
            administrators_max: 3,
            key_cap_percent: 90,
            elevated_membership_max_days: 90,
            disabled: BTreeSet::new(),
        }
    }
}

/// One finding switched off, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DisabledFinding {
    /// The finding's id, as `orgaccess advise` prints it.
    #[schemars(schema_with = "finding_id_schema")]
    pub finding: String,
    /// Why it is switched off: who decided, and on what grounds.
    #[schemars(length(min = 1, max = 512))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.matches('[^\\\\s]')", "message": "a reason is more than white space: say who decided and why"}
    ]))]
    pub reason: String,
}

/// A finding id: one of [`IDS`].
fn finding_id_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": IDS,
    })
}

impl AdviceSpec {
    /// The advisor's settings these ask for, over the defaults: the one
    /// place `spec.advice` becomes [`Settings`].
    pub fn settings(&self) -> Settings {
        let d = Settings::default();
        Settings {
            groups_edit_max: self
                .groups_edit_max_holders
                .map_or(d.groups_edit_max, |n| n as usize),
            administrators_max: self
                .administrators_max_members
                .map_or(d.administrators_max, |n| n as usize),
            key_cap_percent: self.key_cap_percent.map_or(d.key_cap_percent, i64::from),
            elevated_membership_max_days: self
                .elevated_membership_max_days
                .map_or(d.elevated_membership_max_days, i64::from),
            disabled: self.disabled.iter().map(|f| f.finding.clone()).collect(),
        }
    }
}

// ---------------------------------------------------------------------------
// Core views of the four kinds
// ---------------------------------------------------------------------------

/// The parts of an object's metadata the rules guard: an owner reference hands
/// the object's deletion to the garbage collector, a finalizer keeps a deleted
/// object (and, for a Member, its subjects' mapping) alive, and a deletion
/// timestamp means the object is going away.
/// The four kinds of object an organization is made of. Every place that
/// dispatches on "which kind" uses this one enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Organization,
    Group,
    Member,
    ApiKey,
    /// A record of an access review of a group (docs/access-reviews.md).
    AccessReview,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Organization,
        Kind::Group,
        Kind::Member,
        Kind::ApiKey,
        Kind::AccessReview,
    ];

    /// The Kubernetes kind name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Organization => "Organization",
            Kind::Group => "Group",
            Kind::Member => "Member",
            Kind::ApiKey => "ApiKey",
            Kind::AccessReview => "AccessReview",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Owner references, as `Kind/name/uid`.
    pub owner_references: Vec<String>,
    pub finalizers: Vec<String>,
    /// The object has a deletion timestamp (Terminating).
    pub deleting: bool,
    /// Who set the object's bindings, for those an untrusted requester set
    /// (the `orgaccess.dev/bound-by` annotation; `bindings.rs`).
    pub bound_by: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrgDef {
    /// Object name; a namespace holds one organization.
    pub name: String,
    pub display_name: String,
    pub resources: OrgResources,
    pub invitation_lifetime_days: u32,
    /// The least-privilege advisor's settings (`spec.advice`).
    pub advice: AdviceSpec,
    /// What an overdue access review does (`spec.accessReviews`).
    pub access_reviews: AccessReviewsSpec,
    /// `meta.deleting`: the Organization is being deleted, built-in groups may go with it.
    pub meta: Meta,
}

impl GroupDef {
    /// The display name a duplicate of this group gets.
    pub fn copy_display_name(&self) -> String {
        format!(
            "{}_copy",
            self.display_name.as_deref().unwrap_or(&self.name)
        )
    }

    /// A built-in group as the operator seeds it: the one definition the
    /// controller creates and the offline CLI assumes.
    pub fn seeded(b: BuiltinGroup) -> GroupDef {
        GroupDef {
            name: b.object_name().to_string(),
            display_name: Some(b.display_name().to_string()),
            builtin: Some(b),
            template: Some(b.template()),
            ..GroupDef::default()
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupDef {
    pub name: String,
    pub display_name: Option<String>,
    pub builtin: Option<BuiltinGroup>,
    pub template: Option<GroupTemplate>,
    pub privileges: Vec<PrivilegeSpec>,
    pub access: Vec<AccessEntry>,
    pub identity_sets: Vec<IdentitySet>,
    pub duplicate_of: Option<String>,
    /// `spec.owners`: the Members who review the group's access (an owner
    /// records an [`AccessReviewDef`]).
    pub owners: Vec<String>,
    /// `spec.reviewEvery`: the review cadence ([`ReviewPeriod::cadence`]),
    /// as written.
    pub review_every: Option<String>,
    /// `metadata.creationTimestamp` (the first review is due a cadence
    /// after it); `None` for a manifest not applied yet.
    pub created: Option<Timestamp>,
    pub meta: Meta,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MemberDef {
    pub name: String,
    pub identity: MemberIdentity,
    pub groups: Vec<String>,
    pub subjects: Vec<Subject>,
    pub accepted: bool,
    /// When the invitation was sent (the object's creation time).
    pub invited_at: Option<Timestamp>,
    pub sso_groups: Vec<String>,
    pub salesforce_profile: Option<String>,
    /// `spec.until`: when every membership of the member ends ([`Until`]).
    pub until: Option<String>,
    /// `spec.groupUntil`: when the invitation to a group ends ([`Until`]),
    /// by group name.
    pub group_until: BTreeMap<String, String>,
    /// A Terminating member maps no Kubernetes identity.
    pub meta: Meta,
}

impl Default for MemberDef {
    fn default() -> Self {
        MemberDef {
            name: String::new(),
            identity: MemberIdentity {
                provider: Provider::Email,
                username: String::new(),
            },
            groups: Vec::new(),
            subjects: Vec::new(),
            accepted: false,
            invited_at: None,
            sso_groups: Vec::new(),
            salesforce_profile: None,
            until: None,
            group_until: BTreeMap::new(),
            meta: Meta::default(),
        }
    }
}

/// The end of a membership as written (`spec.until`, `spec.groupUntil`):
/// an RFC 3339 time, or an ISO-8601 duration counted from the membership's
/// start, the Member's creation (docs/time-bound-membership.md).
#[derive(Clone, Copy, Debug)]
pub enum Until {
    At(Timestamp),
    After(jiff::Span),
}

/// The pattern the CRD checks an end against (the core parses it: [`Until::parse`]).
pub const UNTIL_PATTERN: &str = r"^(P([0-9]+Y)?([0-9]+M)?([0-9]+W)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+S)?)?|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))$";

impl Until {
    /// Reads an end: an RFC 3339 time with an offset, or a positive
    /// ISO-8601 duration (`P30D`, `PT12H`).
    pub fn parse(value: &str) -> Result<Until, String> {
        if value.starts_with(['P', 'p']) {
            let span: jiff::Span = value.parse().map_err(|e| {
                format!("'{value}' is not an ISO-8601 duration such as P30D or PT12H ({e})")
            })?;
            if !span.is_positive() {
                return Err(format!("the duration '{value}' must be positive"));
            }
            return Ok(Until::After(span));
        }
        value.parse::<Timestamp>().map(Until::At).map_err(|e| {
            format!(
                "'{value}' is neither an RFC 3339 time (2027-01-31T00:00:00Z) nor an ISO-8601 duration (P30D) ({e})"
            )
        })
    }

    /// The instant it names, a duration counted from `start` (in UTC, so a
    /// day is 24 hours). `None` when it overflows the representable range
    /// (then it never ends within it).
    pub fn instant(&self, start: Timestamp) -> Option<Timestamp> {
        match self {
            Until::At(t) => Some(*t),
            Until::After(span) => start
                .to_zoned(jiff::tz::TimeZone::UTC)
                .checked_add(*span)
                .ok()
                .map(|z| z.timestamp()),
        }
    }
}

/// An access review as recorded (an `AccessReview` object): an owner of
/// `group` confirmed that the `confirmed` members keep their membership.
/// Its instant is the server-set creation time, never a client-written one
/// (docs/access-reviews.md).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccessReviewDef {
    pub name: String,
    /// `spec.group`: the Group reviewed.
    pub group: String,
    /// `spec.confirmed`: the Members whose membership of the group is confirmed.
    pub confirmed: Vec<String>,
    /// `spec.note`: free text for the audit trail.
    pub note: Option<String>,
    /// `metadata.creationTimestamp`: when the review was recorded; `None`
    /// for a manifest not applied yet (it then counts as recorded at the
    /// instant of the question).
    pub created: Option<Timestamp>,
    pub meta: Meta,
}

/// What an overdue access review does (`spec.accessReviews.whenOverdue` of
/// the Organization).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum WhenOverdue {
    /// The Group's `AccessReviewed` condition says so; access is unchanged.
    #[default]
    Report,
    /// The memberships not confirmed in the group's last review stop
    /// counting until a review confirms them.
    Suspend,
}

/// The Organization's access review settings (`spec.accessReviews`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessReviewsSpec {
    /// Report (default): an overdue review is reported in the Group's
    /// status and an Event. Suspend: once a group's review is overdue
    /// (its due date plus `gracePeriod`), memberships not confirmed in its
    /// last review stop counting. Switching from Suspend to Report restores
    /// them, and is judged as a grant.
    #[serde(default)]
    pub when_overdue: WhenOverdue,
    /// How long after its due date a review becomes overdue: an ISO-8601
    /// duration (`P7D`), 0 to 90 days. Absent: no grace, overdue at the due
    /// date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "grace_period_schema")]
    pub grace_period: Option<String>,
}

/// A review period as written: a cadence (`spec.reviewEvery` of a Group) or
/// a grace period (`spec.accessReviews.gracePeriod`), an ISO-8601 duration
/// of years, months, weeks and days. Counted in UTC.
#[derive(Clone, Copy, Debug)]
pub struct ReviewPeriod(jiff::Span);

/// The shape the CRD checks a review period against (the core reads it:
/// [`ReviewPeriod::cadence`], [`ReviewPeriod::grace`]).
pub const REVIEW_PERIOD_PATTERN: &str =
    r"^P([0-9]{1,4}Y)?([0-9]{1,4}M)?([0-9]{1,4}W)?([0-9]{1,5}D)?$";

/// The shortest cadence, in days.
pub const MIN_REVIEW_EVERY_DAYS: i64 = 1;
/// The longest cadence, in days (three years).
pub const MAX_REVIEW_EVERY_DAYS: i64 = 1096;
/// The longest grace period, in days.
pub const MAX_GRACE_DAYS: i64 = 90;
/// The most owners a Group lists.
pub const MAX_OWNERS: usize = 32;
/// The most members an AccessReview confirms.
pub const MAX_CONFIRMED: usize = 1000;

impl ReviewPeriod {
    /// Reads a duration of whole days (years, months and weeks counted
    /// from 2000-01-01 UTC to bound it) between `min` and `max` days.
    fn read(value: &str, min: i64, max: i64, what: &str) -> Result<ReviewPeriod, String> {
        let shape = value.len() <= 32
            && value.starts_with('P')
            && !value.contains(['T', 't', 'H', 'S', '.', ',', '-', '+']);
        let span: jiff::Span = if shape {
            value.parse().map_err(|e| {
                format!("{what} '{value}' is not an ISO-8601 duration such as P90D ({e})")
            })?
        } else {
            return Err(format!(
                "{what} '{value}' is not an ISO-8601 duration of years, months, weeks and days such as P90D"
            ));
        };
        let reference = jiff::civil::date(2000, 1, 1);
        let days = span
            .total((jiff::Unit::Day, reference))
            .map_err(|e| format!("{what} '{value}' is out of range ({e})"))?;
        if days < min as f64 || days > max as f64 {
            return Err(format!(
                "{what} '{value}' must be between {min} and {max} days"
            ));
        }
        Ok(ReviewPeriod(span))
    }

    /// A group's review cadence (`spec.reviewEvery`): 1 day to 3 years.
    pub fn cadence(value: &str) -> Result<ReviewPeriod, String> {
        ReviewPeriod::read(
            value,
            MIN_REVIEW_EVERY_DAYS,
            MAX_REVIEW_EVERY_DAYS,
            "reviewEvery",
        )
    }

    /// An Organization's grace period (`spec.accessReviews.gracePeriod`):
    /// 0 to 90 days.
    pub fn grace(value: &str) -> Result<ReviewPeriod, String> {
        ReviewPeriod::read(value, 0, MAX_GRACE_DAYS, "gracePeriod")
    }

    /// The instant this period after `start` (in UTC); `None` when it
    /// overflows the representable range.
    pub fn after(&self, start: Timestamp) -> Option<Timestamp> {
        start
            .to_zoned(jiff::tz::TimeZone::UTC)
            .checked_add(self.0)
            .ok()
            .map(|z| z.timestamp())
    }
}

/// A review period field's schema: the shape, checked in CEL (which
/// `orgaccess check` evaluates offline too); the core checks the bounds.
pub fn review_period_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "nullable": true,
        "maxLength": 32,
        "x-kubernetes-validations": [{
            "rule": format!("self.matches(r'{REVIEW_PERIOD_PATTERN}')"),
            "message": "a review period is an ISO-8601 duration of years, months, weeks and days, such as P90D"
        }]
    })
}

fn grace_period_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    review_period_schema(g)
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiKeyDef {
    pub name: String,
    pub display_name: Option<String>,
    pub template: Option<ApiKeyTemplate>,
    pub privileges: Vec<PrivilegeSpec>,
    pub access: Vec<AccessEntry>,
    pub enabled: bool,
    /// ISO-8601 duration, e.g. `P90D`.
    pub lifetime: Option<String>,
    pub allowed_ips: Vec<String>,
    pub denied_ips: Vec<String>,
    /// `spec.rotation.previousKeyValidity`, when a rotation is declared.
    pub previous_key_validity: Option<String>,
    /// `spec.searchHub`: the search hub the key's queries are bound to
    /// (gateways enforce it, from the decision service's answer).
    pub search_hub: Option<String>,
    /// `metadata.creationTimestamp` (its lifetime counts from here); `None`
    /// for a manifest not applied yet.
    pub created: Option<Timestamp>,
    pub meta: Meta,
}

/// One kind's objects of an organization, by name. Each object is shared
/// (`Arc`): copying a state, which the index does when a reader holds its
/// snapshot and the webhook does to see a change, copies the map and not
/// the objects (an object is copied only when changed, `Arc::make_mut`).
pub type Objects<T> = BTreeMap<String, Arc<T>>;

/// Everything the rules need to know about one organization.
#[derive(Clone, Debug, Default)]
pub struct OrgState {
    pub org: Option<OrgDef>,
    pub groups: Objects<GroupDef>,
    pub members: Objects<MemberDef>,
    pub api_keys: Objects<ApiKeyDef>,
    /// The AccessReviews, by object name.
    pub reviews: Objects<AccessReviewDef>,
}

impl OrgState {
    /// Is an Organization named `name` this namespace's (or would it become
    /// it)? The first Organization of a namespace is its home: it is when the
    /// state holds none or holds it. A second one is never put in; admission
    /// refuses it (rule CatalogValidity, docs/rules.md).
    pub fn is_home(&self, name: &str) -> bool {
        self.org.as_ref().is_none_or(|o| o.name == name)
    }

    pub fn invitation_lifetime_days(&self) -> u32 {
        self.org
            .as_ref()
            .map_or(DEFAULT_INVITATION_DAYS, |o| o.invitation_lifetime_days)
    }

    /// A group's display name, the one place it is decided: its own; for a
    /// duplicate without one, its source's followed by `_copy`
    /// ([`GroupDef::copy_display_name`]); else its object name.
    pub fn group_display_name(&self, g: &GroupDef) -> String {
        if let Some(d) = &g.display_name {
            return d.clone();
        }
        match &g.duplicate_of {
            Some(src) => match self.groups.get(src) {
                Some(source) => source.copy_display_name(),
                None => format!("{src}_copy"),
            },
            None => g.name.clone(),
        }
    }

    /// The advisor's settings: the Organization's `spec.advice`, or the
    /// defaults when there is no Organization.
    pub fn advice_settings(&self) -> Settings {
        self.org
            .as_ref()
            .map_or_else(Settings::default, |o| o.advice.settings())
    }

    pub fn administrators(&self) -> Option<&GroupDef> {
        self.groups
            .values()
            .find(|g| g.builtin == Some(BuiltinGroup::Administrators))
            .map(Arc::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_periods_are_read_and_bounded() {
        let t: Timestamp = "2027-01-31T00:00:00Z".parse().unwrap();
        let after = |v: &str| ReviewPeriod::cadence(v).map(|p| p.after(t).unwrap().to_string());
        assert_eq!(after("P90D").unwrap(), "2027-05-01T00:00:00Z");
        assert_eq!(after("P1W").unwrap(), "2027-02-07T00:00:00Z");
        // A month from January 31st is the end of February, in UTC.
        assert_eq!(after("P1M").unwrap(), "2027-02-28T00:00:00Z");
        assert_eq!(after("P3Y").unwrap(), "2030-01-31T00:00:00Z");
        for bad in [
            "P0D", "P4Y", "P1097D", "PT12H", "P1DT1H", "90d", "", "P", "-P1D", "P1.5D",
        ] {
            assert!(ReviewPeriod::cadence(bad).is_err(), "{bad}");
        }
        assert!(ReviewPeriod::grace("P0D").is_ok());
        assert!(ReviewPeriod::grace("P90D").is_ok());
        assert!(ReviewPeriod::grace("P91D").is_err());
        assert!(ReviewPeriod::grace("P4M").is_err());
    }
}
