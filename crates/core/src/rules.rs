//! The admission rules (catalogued by name in docs/rules.md), as pure functions.
//!
//! One function per rule; [`check`] runs them in order. The webhook and the
//! offline `orgaccess check` both call [`check`], so a manifest gets the same
//! verdict and the same words in a pull request as at the cluster's door.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use jiff::{Span, SpanRelativeTo};

use super::bindings::{self, Asserted, BoundBy, Setter};
use super::builtin::BuiltinGroup;
use super::catalog::{self, ResourceKind};
use super::effective::{
    Grantee, Grantees, api_key_spec_privileges, group_spec_privileges, member_groups,
    resolve_grantees,
};
use super::model::{
    AccessEntry, ApiKeyDef, GroupDef, Kind, MemberDef, Meta, OrgDef, OrgState, Subject,
};
use super::privilege::{Abilities, Grant, Level, PrivilegeSet, PrivilegeSpec, named_resources};

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

/// An object of one of the four kinds.
#[derive(Clone, Copy, Debug)]
pub enum Object<'a> {
    Organization(&'a OrgDef),
    Group(&'a GroupDef),
    Member(&'a MemberDef),
    ApiKey(&'a ApiKeyDef),
}

impl Object<'_> {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Organization(_) => Kind::Organization,
            Object::Group(_) => Kind::Group,
            Object::Member(_) => Kind::Member,
            Object::ApiKey(_) => Kind::ApiKey,
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
    let mut out = catalog_validity(state, change);
    out.extend(administrators_protected(state, change, requester));
    if matches!(requester, Requester::Trusted) {
        out.extend(foreign_bindings(state, grantees, change));
    }
    if requester.is_trusted() {
        return out;
    }
    if let Requester::Unmapped { user } = requester {
        out.push(violation(
            Rule::UnknownRequester,
            "metadata",
            format!(
                "'{user}' is not a subject of any Member of this organization, so it holds no privileges here; \
                 add {{kind: User, name: {user}}} (or its Group or ServiceAccount) to a Member's spec.subjects, \
                 or configure it as a trusted platform principal"
            ),
        ));
        return out;
    }
    out.extend(identity_claims(change, requester));
    out.extend(guarded_metadata(change, requester));
    out.extend(duplicate(state, grantees, change, requester));
    out.extend(required_privileges(state, change, requester));
    out.extend(no_escalation(state, grantees, change, requester));
    out
}

// ---------------------------------------------------------------------------
// CatalogValidity
// ---------------------------------------------------------------------------

/// CatalogValidity: every privilege names a known domain and a level, ability and
/// resources the domain offers; lifetimes and settings are well-formed.
pub fn catalog_validity(state: &OrgState, change: &Change) -> Vec<Violation> {
    let mut out = Vec::new();
    // An update that leaves the spec as it was (labels, finalizers, ...) adds
    // nothing to judge; refusing it could leave an object stored before a
    // catalog change impossible to relabel or to finish deleting.
    if change.operation == Operation::Update && same_spec(change.old, change.new) {
        return out;
    }
    match change.new {
        Some(Object::Group(g)) => {
            privileges_valid(state, &g.privileges, &mut out);
            access_valid(&g.access, &mut out);
            if let Some(src) = &g.duplicate_of
                && change.operation == Operation::Create
                && !state.groups.contains_key(src)
            {
                out.push(violation(
                    Rule::CatalogValidity,
                    "spec.duplicateOf",
                    format!("duplicateOf names group '{src}', which does not exist in this organization; name an existing Group"),
                ));
            }
        }
        Some(Object::ApiKey(k)) => {
            privileges_valid(state, &k.privileges, &mut out);
            access_valid(&k.access, &mut out);
            api_key_valid(k, &mut out);
        }
        Some(Object::Member(m)) => {
            let mut seen = BTreeSet::new();
            for (i, g) in m.groups.iter().enumerate() {
                if !seen.insert(g) {
                    out.push(violation(
                        Rule::CatalogValidity,
                        format!("spec.groups[{i}]"),
                        format!("group '{g}' is listed twice; list it once"),
                    ));
                }
            }
            for (i, subject) in m.subjects.iter().enumerate() {
                if let Some(why) = subject.class_of_identities() {
                    out.push(violation(
                        Rule::CatalogValidity,
                        format!("spec.subjects[{i}]"),
                        format!(
                            "{} {} matches {why}: every one of them would act as this member with all its privileges; \
                             name a user, an identity-provider group or a service account instead",
                            subject_kind(subject),
                            subject.name
                        ),
                    ));
                }
            }
        }
        Some(Object::Organization(o)) => {
            if o.invitation_lifetime_days == 0 {
                out.push(violation(
                    Rule::CatalogValidity,
                    "spec.invitationLifetimeDays",
                    "the invitation lifetime must be at least 1 day",
                ));
            }
            if let Some(home) = state.org.as_ref().filter(|_| !state.is_home(change.name)) {
                out.push(violation(
                    Rule::CatalogValidity,
                    "metadata.name",
                    format!(
                        "this namespace already holds Organization '{}': a namespace is the home of one organization; \
                         change '{}' instead, or create '{}' in a namespace of its own",
                        home.name, home.name, change.name
                    ),
                ));
            }
        }
        None => {}
    }
    out
}

/// Most undeclared resource names reported one by one per object; the rest
/// are counted in one more violation, so an answer stays small whatever the
/// request holds.
pub const MAX_UNDECLARED_LISTED: usize = 20;

fn privileges_valid(state: &OrgState, specs: &[PrivilegeSpec], out: &mut Vec<Violation>) {
    let mut domains = BTreeSet::new();
    let mut declared = Declared::new(state);
    let mut listed = 0usize;
    let mut unlisted = 0usize;
    for (i, spec) in specs.iter().enumerate() {
        let field = format!("spec.privileges[{i}]");
        match super::privilege::parse(spec) {
            Err(e) => out.push(violation(Rule::CatalogValidity, field, e.to_string())),
            Ok((d, grant)) => {
                if !domains.insert(d) {
                    out.push(violation(
                        Rule::CatalogValidity,
                        format!("{field}.domain"),
                        format!(
                            "{}/{} is listed twice; give each domain one entry",
                            spec.service, spec.domain
                        ),
                    ));
                }
                let mut one = PrivilegeSet::new();
                one.set(d, grant);
                let names = named_resources(&one);
                if names.is_empty() {
                    continue;
                }
                // Where each name is listed (its first entry), found in one pass.
                let mut at: HashMap<&str, usize> = HashMap::with_capacity(spec.resources.len());
                for (j, r) in spec.resources.iter().enumerate() {
                    at.entry(r.name.as_str()).or_insert(j);
                }
                for (kind, _, name) in names {
                    if !declared.lacks(kind, &name) {
                        continue;
                    }
                    if listed == MAX_UNDECLARED_LISTED {
                        unlisted += 1;
                        continue;
                    }
                    listed += 1;
                    let j = at.get(&*name).copied().unwrap_or(0);
                    out.push(violation(
                        Rule::CatalogValidity,
                        format!("{field}.resources[{j}].name"),
                        declared.why(kind, &name),
                    ));
                }
            }
        }
    }
    if unlisted > 0 {
        out.push(violation(
            Rule::CatalogValidity,
            "spec.privileges",
            format!("... and {unlisted} more resource names the Organization does not declare"),
        ));
    }
}

/// The Organization's declared resources, as sets built on first use; says
/// the declared list once per answer, not once per name.
struct Declared<'a> {
    state: &'a OrgState,
    sets: HashMap<ResourceKind, HashSet<&'a str>>,
    listed: HashSet<ResourceKind>,
}

impl<'a> Declared<'a> {
    fn new(state: &'a OrgState) -> Self {
        Declared {
            state,
            sets: HashMap::new(),
            listed: HashSet::new(),
        }
    }

    fn list(&self, kind: ResourceKind) -> Option<&'a [String]> {
        let org = self.state.org.as_ref()?;
        Some(match kind {
            ResourceKind::Sources => &org.resources.sources,
            ResourceKind::Extensions => &org.resources.extensions,
            ResourceKind::QueryPipelines => &org.resources.query_pipelines,
            ResourceKind::TrackingIds => &org.resources.tracking_ids,
            ResourceKind::Groups | ResourceKind::ApiKeys => &[],
        })
    }

    /// Is a Custom grant's resource undeclared?
    fn lacks(&mut self, kind: ResourceKind, name: &str) -> bool {
        // Groups and API keys are objects: a manifest may name one applied
        // later in the same sync, so dangling names are reported in status.
        if matches!(kind, ResourceKind::Groups | ResourceKind::ApiKeys) {
            return false;
        }
        let Some(list) = self.list(kind) else {
            return true;
        };
        !self
            .sets
            .entry(kind)
            .or_insert_with(|| list.iter().map(String::as_str).collect())
            .contains(name)
    }

    /// Why an undeclared resource is refused; the first time for its kind,
    /// with what is declared (at most [`MAX_UNDECLARED_LISTED`] names).
    fn why(&mut self, kind: ResourceKind, name: &str) -> String {
        let Some(list) = self.list(kind) else {
            return format!(
                "Custom names {} '{name}', but this namespace has no Organization declaring its resources; create the Organization first",
                kind.as_str()
            );
        };
        let declared = if list.is_empty() || !self.listed.insert(kind) {
            String::new()
        } else if list.len() > MAX_UNDECLARED_LISTED {
            format!(
                " (declared: {}, ... and {} more)",
                list[..MAX_UNDECLARED_LISTED].join(", "),
                list.len() - MAX_UNDECLARED_LISTED
            )
        } else {
            format!(" (declared: {})", list.join(", "))
        };
        format!(
            "Custom names {} '{name}', which the Organization does not declare; add it to the Organization's spec.resources.{} or fix the name{declared}",
            kind.as_str(),
            kind.as_str(),
        )
    }
}

fn same_spec(old: Option<Object>, new: Option<Object>) -> bool {
    match (old, new) {
        // The whole definition but its metadata, as for the other kinds: a
        // field added later is a spec change without anyone listing it here.
        (Some(Object::Organization(a)), Some(Object::Organization(b))) => {
            *a == OrgDef {
                meta: a.meta.clone(),
                ..b.clone()
            }
        }
        (Some(Object::Group(a)), Some(Object::Group(b))) => {
            *a == GroupDef {
                meta: a.meta.clone(),
                ..b.clone()
            }
        }
        (Some(Object::Member(a)), Some(Object::Member(b))) => {
            *a == MemberDef {
                meta: a.meta.clone(),
                ..b.clone()
            }
        }
        (Some(Object::ApiKey(a)), Some(Object::ApiKey(b))) => {
            *a == ApiKeyDef {
                meta: a.meta.clone(),
                ..b.clone()
            }
        }
        _ => false,
    }
}

fn subject_kind(s: &Subject) -> &'static str {
    match s.kind {
        super::model::SubjectKind::User => "User",
        super::model::SubjectKind::Group => "Group",
        super::model::SubjectKind::ServiceAccount => "ServiceAccount",
    }
}

fn access_valid(list: &[AccessEntry], out: &mut Vec<Violation>) {
    let mut seen = BTreeSet::new();
    for (i, e) in list.iter().enumerate() {
        match e.grantee() {
            None => out.push(violation(
                Rule::CatalogValidity,
                format!("spec.access[{i}]"),
                "an access entry names exactly one of group or apiKey",
            )),
            Some(g) if !seen.insert(g.clone()) => out.push(violation(
                Rule::CatalogValidity,
                format!("spec.access[{i}]"),
                format!("{g:?} is listed twice; give each grantee one entry"),
            )),
            Some(_) => {}
        }
    }
}

/// Parses an ISO-8601 lifetime into days (calendar units counted from the epoch
/// of a fixed date so the answer does not depend on today).
pub fn lifetime_days(lifetime: &str) -> Result<i64, String> {
    let span: Span = lifetime.parse().map_err(|e| {
        format!("lifetime '{lifetime}' is not an ISO-8601 duration such as P90D or P1Y ({e})")
    })?;
    let base = jiff::civil::date(2000, 1, 1);
    let days = span
        .total((jiff::Unit::Day, SpanRelativeTo::from(base)))
        .map_err(|e| format!("lifetime '{lifetime}' cannot be measured in days ({e})"))?;
    if days <= 0.0 {
        return Err(format!("lifetime '{lifetime}' must be positive"));
    }
    Ok(days.ceil() as i64)
}

fn api_key_valid(k: &ApiKeyDef, out: &mut Vec<Violation>) {
    use super::apikey::{MAX_NAME_LEN, MAX_PREVIOUS_DAYS, SECRET_SUFFIX};
    use super::builtin::ApiKeyTemplate;
    let template = k.template.unwrap_or(ApiKeyTemplate::Custom);
    if k.name.len() > MAX_NAME_LEN {
        out.push(violation(
            Rule::CatalogValidity,
            "metadata.name",
            format!(
                "an API key name has at most {MAX_NAME_LEN} characters (this one has {}), so that its Secret '<name>{SECRET_SUFFIX}' is a valid name",
                k.name.len()
            ),
        ));
    }
    if let Some(lifetime) = &k.lifetime {
        match lifetime_days(lifetime) {
            Err(e) => out.push(violation(Rule::CatalogValidity, "spec.lifetime", e)),
            Ok(days) if days > template.max_lifetime_days() => out.push(violation(
                Rule::CatalogValidity,
                "spec.lifetime",
                format!(
                    "lifetime {lifetime} ({days} days) exceeds the {} days allowed for template {template:?}; choose P{}D or less",
                    template.max_lifetime_days(),
                    template.max_lifetime_days()
                ),
            )),
            Ok(_) => {}
        }
    }
    if let Some(v) = &k.previous_key_validity {
        let field = "spec.rotation.previousKeyValidity";
        match lifetime_days(v) {
            Err(_) => out.push(violation(
                Rule::CatalogValidity,
                field,
                format!("previousKeyValidity '{v}' is not an ISO-8601 duration such as P7D; give the days the previous value stays valid, at most P{MAX_PREVIOUS_DAYS}D"),
            )),
            Ok(days) if days > MAX_PREVIOUS_DAYS => out.push(violation(
                Rule::CatalogValidity,
                field,
                format!("previousKeyValidity {v} ({days} days) exceeds {MAX_PREVIOUS_DAYS} days: a rotated-out value stays valid at most P{MAX_PREVIOUS_DAYS}D; choose P{MAX_PREVIOUS_DAYS}D or less"),
            )),
            Ok(_) => {}
        }
    }
    for (i, p) in k.privileges.iter().enumerate() {
        if let Some(owner) = ApiKeyTemplate::reserved_to(p.service, &p.domain)
            && owner != template
        {
            out.push(violation(
                Rule::CatalogValidity,
                format!("spec.privileges[{i}]"),
                format!(
                    "{}/{} is reserved to the {owner:?} API key template; a {template:?} key cannot hold it. Use template {owner:?} (spec.template: {owner:?}), which holds it",
                    p.service, p.domain
                ),
            ));
        }
    }
    for (field, list) in [("allowedIps", &k.allowed_ips), ("deniedIps", &k.denied_ips)] {
        for (i, cidr) in list.iter().enumerate() {
            if cidr.parse::<ipnet::IpNet>().is_err() && cidr.parse::<std::net::IpAddr>().is_err() {
                out.push(violation(
                    Rule::CatalogValidity,
                    format!("spec.{field}[{i}]"),
                    format!("'{cidr}' is not an IP address or CIDR range such as 203.0.113.0/24"),
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// AdministratorsProtected
// ---------------------------------------------------------------------------

/// AdministratorsProtected: Administrators cannot be deleted or have its privileges edited; the
/// built-in marker belongs to the operator.
///
/// Administrators goes only with its Organization: when the Organization is
/// gone or being deleted (`state.org` is `None` or `deleting`, e.g. during a
/// namespace teardown), deleting it is allowed, or the teardown would stick.
pub fn administrators_protected(
    state: &OrgState,
    change: &Change,
    requester: &Requester,
) -> Vec<Violation> {
    let (old, new) = match (change.old, change.new) {
        (Some(Object::Group(o)), n) => (
            Some(o),
            n.and_then(|n| {
                if let Object::Group(g) = n {
                    Some(g)
                } else {
                    None
                }
            }),
        ),
        (None, Some(Object::Group(n))) => (None, Some(n)),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    let is_admins = |g: &GroupDef| g.builtin == Some(BuiltinGroup::Administrators);
    match (change.operation, old, new) {
        (Operation::Delete, Some(o), _)
            if is_admins(o) && state.org.as_ref().is_some_and(|org| !org.meta.deleting) =>
        {
            out.push(violation(
            Rule::AdministratorsProtected,
            "metadata.name",
            format!(
                "the Administrators group '{}' cannot be deleted; it goes only with its Organization. To take someone's access away, remove them from the group",
                o.name
            ),
        ))
        }
        (Operation::Update, Some(o), Some(n)) => {
            if is_admins(o) && (o.template != n.template || o.privileges != n.privileges) {
                out.push(violation(
                    Rule::AdministratorsProtected,
                    "spec.privileges",
                    "the privileges of the Administrators group cannot be edited; duplicate it (spec.duplicateOf: administrators) and edit the copy",
                ));
            }
            if o.builtin != n.builtin {
                out.push(violation(
                    Rule::AdministratorsProtected,
                    "spec.builtIn",
                    "spec.builtIn is set by the operator when it seeds the organization and cannot change; create a new group instead",
                ));
            }
        }
        (Operation::Create, None, Some(n)) if n.builtin.is_some() && !matches!(requester, Requester::Operator) => out.push(violation(
            Rule::AdministratorsProtected,
            "spec.builtIn",
            "only the operator creates built-in groups; remove spec.builtIn (use spec.template to start from a built-in group's privileges)",
        )),
        _ => {}
    }
    out
}

// ---------------------------------------------------------------------------
// Duplicate
// ---------------------------------------------------------------------------

/// Duplicate: a duplicate is admitted only if the requester strictly out-ranks the source.
pub fn duplicate(
    state: &OrgState,
    grantees: &Grantees,
    change: &Change,
    requester: &Requester,
) -> Vec<Violation> {
    let (Operation::Create, Some(Object::Group(g)), Some(mine)) =
        (change.operation, change.new, requester.privileges())
    else {
        return Vec::new();
    };
    let Some(src_name) = &g.duplicate_of else {
        return Vec::new();
    };
    let Some(src) = state.groups.get(src_name) else {
        return Vec::new();
    };
    let source = grantees
        .groups
        .get(src_name)
        .cloned()
        .unwrap_or_else(|| group_spec_privileges(src));
    if mine.strictly_covers(&source) {
        return Vec::new();
    }
    let lacking = mine.missing(&source);
    let detail = if lacking.is_empty() {
        "your privileges equal the source group's; a duplicate needs strictly more privileges than the group it copies".to_string()
    } else {
        format!("you lack: {lacking}")
    };
    vec![violation(
        Rule::Duplicate,
        "spec.duplicateOf",
        format!(
            "{} may duplicate only groups with fewer privileges than their own; group '{src_name}' is not strictly covered: {detail}",
            requester.describe()
        ),
    )]
}

// ---------------------------------------------------------------------------
// RequiredPrivileges
// ---------------------------------------------------------------------------

/// Privileges an action needs: Can Create on a domain, or Edit on one object.
fn can_create(domain: catalog::DomainId) -> PrivilegeSet {
    let mut s = PrivilegeSet::new();
    s.set(
        domain,
        Grant {
            abilities: Abilities::CREATE,
            ..Grant::default()
        },
    );
    s
}

fn edit_on(domain: catalog::DomainId, object: &str) -> PrivilegeSet {
    let mut s = PrivilegeSet::new();
    s.add_resource(domain, object, Level::Edit);
    s
}

fn edit_domain(domain: catalog::DomainId) -> PrivilegeSet {
    let mut s = PrivilegeSet::new();
    s.set(
        domain,
        Grant {
            level: Level::Edit,
            ..Grant::default()
        },
    );
    s
}

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

/// Who a member is changed: their identity, the identity provider's claims,
/// their acceptance or the Kubernetes subjects that act as them. Such a change
/// is an update of the organization's members, not of one group.
fn member_who_changed(old: &MemberDef, new: &MemberDef) -> bool {
    old.identity != new.identity
        || old.sso_groups != new.sso_groups
        || old.salesforce_profile != new.salesforce_profile
        || old.accepted != new.accepted
        || old.subjects != new.subjects
}

/// Does the change hand the member's privileges to someone who did not hold
/// them: a new member, a new subject, a new identity or claim, an acceptance?
/// Then every group the member is in is granted anew.
fn member_granted_anew(old: Option<&MemberDef>, new: &MemberDef) -> bool {
    let Some(old) = old else { return true };
    old.identity != new.identity
        || old.sso_groups != new.sso_groups
        || old.salesforce_profile != new.salesforce_profile
        || (!old.accepted && new.accepted)
        || new.subjects.iter().any(|s| !old.subjects.contains(s))
}

/// What a change requires of its requester (RequiredPrivileges), with a
/// phrase for the denial.
///
/// Every change that edits groups (Edit on Groups, domain-wide or on one
/// group) also needs Organization/Activities: View: seed 001's Required
/// privileges table asks both to edit groups. It is a requirement of its own,
/// so the denial names it apart from the Groups one.
pub fn required(state: &OrgState, change: &Change) -> Vec<(PrivilegeSet, String)> {
    let mut out = required_by_object(state, change);
    let view = activities_view();
    if out
        .iter()
        .any(|(need, _)| edits_groups(need) && !need.covers(&view))
    {
        out.push((
            view,
            "editing groups (the platform asks Organization/Activities: View together with Organization/Groups: Edit)".into(),
        ));
    }
    out
}

/// Organization/Activities: View.
pub fn activities_view() -> PrivilegeSet {
    let mut s = PrivilegeSet::new();
    s.set(
        *catalog::ACTIVITIES,
        Grant {
            level: Level::View,
            ..Grant::default()
        },
    );
    s
}

/// Does this requirement ask for Edit on Groups, domain-wide or on a group?
fn edits_groups(need: &PrivilegeSet) -> bool {
    need.get(*catalog::GROUPS).is_some_and(|g| {
        g.level == Level::Edit || g.resources.iter().any(|(_, l)| *l == Level::Edit)
    })
}

fn required_by_object(state: &OrgState, change: &Change) -> Vec<(PrivilegeSet, String)> {
    let groups = *catalog::GROUPS;
    let keys = *catalog::API_KEYS;
    let name = change.name;
    let op = change.operation;
    match (change.old.or(change.new), op) {
        (Some(Object::Group(_)), Operation::Create) => {
            vec![(can_create(groups), "creating a group".into())]
        }
        (Some(Object::Group(_)), Operation::Update) => {
            vec![(edit_on(groups, name), format!("editing group '{name}'"))]
        }
        (Some(Object::Group(_)), Operation::Delete) => {
            vec![(edit_on(groups, name), format!("deleting group '{name}'"))]
        }
        (Some(Object::ApiKey(_)), Operation::Create) => {
            vec![(can_create(keys), "creating an API key".into())]
        }
        (Some(Object::ApiKey(_)), Operation::Update) => {
            vec![(edit_on(keys, name), format!("editing API key '{name}'"))]
        }
        (Some(Object::ApiKey(_)), Operation::Delete) => {
            vec![(edit_on(keys, name), format!("deleting API key '{name}'"))]
        }
        (Some(Object::Organization(_)), Operation::Delete) => vec![(
            super::builtin::full_access(),
            "deleting the Organization (an organization-level act: it needs every privilege, as Administrators hold)".into(),
        )],
        (Some(Object::Organization(_)), _) => {
            vec![(
                edit_domain(*catalog::ORGANIZATION),
                "changing the Organization's settings".into(),
            )]
        }
        (Some(Object::Member(_)), _) => member_required(state, change),
        (None, _) => Vec::new(),
    }
}

/// RequiredPrivileges for members. Creating, deleting or changing who a member is needs
/// Edit on Groups domain-wide (the platform's "update organization members");
/// adding or removing a member to or from a group, by invitation or by an
/// identity set that starts or stops matching, is an edit of that group; any
/// other update is an edit of every group the member is in.
fn member_required(state: &OrgState, change: &Change) -> Vec<(PrivilegeSet, String)> {
    let groups = *catalog::GROUPS;
    let name = change.name;
    let members_edit = |what: String| (edit_domain(groups), what);
    let (old, new) = (member(change.old), member(change.new));
    match (old, new) {
        (None, Some(_)) => vec![members_edit(format!(
            "creating member '{name}' (an update of the organization's members)"
        ))],
        (Some(_), None) => vec![members_edit(format!(
            "deleting member '{name}' (an update of the organization's members)"
        ))],
        (Some(o), Some(n)) => {
            if member_who_changed(o, n) {
                return vec![members_edit(format!(
                    "changing who member '{name}' is (identity, identity-provider claims, acceptance or Kubernetes subjects)"
                ))];
            }
            let (before, after) = (group_names(state, Some(o)), group_names(state, Some(n)));
            let mut out: Vec<(PrivilegeSet, String)> = after
                .difference(&before)
                .map(|g| {
                    (
                        edit_on(groups, g),
                        format!("adding a member to group '{g}' (an edit of that group)"),
                    )
                })
                .chain(before.difference(&after).map(|g| {
                    (
                        edit_on(groups, g),
                        format!("removing a member from group '{g}' (an edit of that group)"),
                    )
                }))
                .collect();
            if out.is_empty() {
                // Labels, annotations and the like: an edit of the member,
                // which belongs to the groups it is in.
                out = before
                    .iter()
                    .map(|g| {
                        (
                            edit_on(groups, g),
                            format!("editing member '{name}' of group '{g}'"),
                        )
                    })
                    .collect();
                if out.is_empty() {
                    out.push(members_edit(format!("editing member '{name}'")));
                }
            }
            out
        }
        (None, None) => Vec::new(),
    }
}

/// RequiredPrivileges: creating needs Can Create, changing or deleting needs Edit on the object.
pub fn required_privileges(
    state: &OrgState,
    change: &Change,
    requester: &Requester,
) -> Vec<Violation> {
    let Some(mine) = requester.privileges() else {
        return Vec::new();
    };
    required(state, change)
        .into_iter()
        .filter_map(|(need, what)| {
            let lacking = mine.missing(&need);
            (!lacking.is_empty()).then(|| {
                violation(
                    Rule::RequiredPrivileges,
                    "metadata.name",
                    format!(
                        "{} needs {need} to allow {what}; you lack: {lacking}. Ask an administrator to grant it to one of your groups, or to add this object's access list entry for your group",
                        requester.describe()
                    ),
                )
            })
        })
        .collect()
}

/// RequiredPrivileges, metadata: untrusted requesters may not add owner references or
/// finalizers to the organization's objects. An owner reference hands the
/// object's deletion to the garbage collector (a trusted principal), and a
/// finalizer keeps a deleted object, and a revoked member's mapping, alive.
pub fn guarded_metadata(change: &Change, requester: &Requester) -> Vec<Violation> {
    if requester.is_trusted() {
        return Vec::new();
    }
    let meta = |o: Option<Object>| -> Option<Meta> {
        Some(match o? {
            Object::Organization(x) => x.meta.clone(),
            Object::Group(x) => x.meta.clone(),
            Object::Member(x) => x.meta.clone(),
            Object::ApiKey(x) => x.meta.clone(),
        })
    };
    let Some(new) = meta(change.new) else {
        return Vec::new();
    };
    let old = meta(change.old).unwrap_or_default();
    let mut out = Vec::new();
    if new
        .owner_references
        .iter()
        .any(|r| !old.owner_references.contains(r))
    {
        out.push(violation(
            Rule::RequiredPrivileges,
            "metadata.ownerReferences",
            format!(
                "{} may not add owner references to the organization's objects: an owner reference hands the object's deletion to the garbage collector; \
                 only trusted platform principals set them",
                requester.describe()
            ),
        ));
    }
    if new.finalizers.iter().any(|f| !old.finalizers.contains(f)) {
        out.push(violation(
            Rule::RequiredPrivileges,
            "metadata.finalizers",
            format!(
                "{} may not add finalizers to the organization's objects: a finalizer keeps a deleted object (and a removed member's access) alive; \
                 only trusted platform principals set them",
                requester.describe()
            ),
        ));
    }
    out
}

/// SSO groups and Salesforce profiles decide membership by identity set, and
/// they are the identity provider's assertions about a person: only a trusted
/// principal (the identity-provider sync) writes them, never a tenant, for
/// themselves or anyone else.
pub fn identity_claims(change: &Change, requester: &Requester) -> Vec<Violation> {
    if requester.is_trusted() {
        return Vec::new();
    }
    let Some(new) = member(change.new) else {
        return Vec::new();
    };
    let old = member(change.old);
    let mut out = Vec::new();
    let sso_before = old.map(|o| &o.sso_groups[..]).unwrap_or_default();
    if new.sso_groups != sso_before {
        out.push(violation(
            Rule::IdentityClaims,
            "spec.ssoGroups",
            format!(
                "{} may not set a member's SSO groups: they are the identity provider's assertion (its user.groups attribute) and decide identity-set memberships; \
                 they are written only by the identity-provider sync (a trusted platform principal)",
                requester.describe()
            ),
        ));
    }
    let profile_before = old.and_then(|o| o.salesforce_profile.as_ref());
    if new.salesforce_profile.as_ref() != profile_before {
        out.push(violation(
            Rule::IdentityClaims,
            "spec.salesforceProfile",
            format!(
                "{} may not set a member's Salesforce profile: it is the identity provider's assertion and decides identity-set memberships; \
                 it is written only by the identity-provider sync (a trusted platform principal)",
                requester.describe()
            ),
        ));
    }
    out
}

// ---------------------------------------------------------------------------
// BindingsRecorded and ForeignBindings (the second-order invariant)
// ---------------------------------------------------------------------------

/// Who writes, as the record of bindings sees them.
pub fn setter<'a>(requester: &'a Requester) -> Setter<'a> {
    match requester {
        Requester::Trusted | Requester::Operator => Setter::Trusted,
        Requester::Members { user, .. } | Requester::Unmapped { user } => Setter::Untrusted(user),
    }
}

/// The record a change leaves (`bindings.rs`), given the binding keys the
/// request names itself; `None` for a delete or an Organization.
pub fn bindings_after(
    change: &Change,
    requester: &Requester,
    asserted: &Asserted,
) -> Option<BoundBy> {
    let who = setter(requester);
    Some(match (change.old, change.new?) {
        (old, Object::Member(n)) => bindings::member(member(old), n, who, asserted),
        (old, Object::Group(n)) => {
            let old = match old {
                Some(Object::Group(o)) => Some(o),
                _ => None,
            };
            bindings::group(old, n, who, asserted)
        }
        (old, Object::ApiKey(n)) => {
            let old = match old {
                Some(Object::ApiKey(o)) => Some(o),
                _ => None,
            };
            bindings::api_key(old, n, who, asserted)
        }
        (_, Object::Organization(_)) => return None,
    })
}

/// The bound-by record an object of the change carries.
fn recorded<'a>(o: Object<'a>) -> &'a BoundBy {
    match o {
        Object::Organization(x) => &x.meta.bound_by,
        Object::Group(x) => &x.meta.bound_by,
        Object::Member(x) => &x.meta.bound_by,
        Object::ApiKey(x) => &x.meta.bound_by,
    }
}

/// BindingsRecorded: the new version's `orgaccess.dev/bound-by` is the
/// record admission computes for this change (the webhook's mutating half
/// writes it); a trusted principal may leave fewer entries, nobody other ones.
/// Not part of [`check`]: manifests checked offline carry no record.
pub fn bindings_recorded(change: &Change, requester: &Requester) -> Vec<Violation> {
    let Some(new) = change.new else {
        return Vec::new();
    };
    let Some(expected) = bindings_after(change, requester, &Asserted::new()) else {
        return Vec::new();
    };
    let written = recorded(new);
    if bindings::may_write(written, &expected, setter(requester)) {
        return Vec::new();
    }
    vec![violation(
        Rule::BindingsRecorded,
        format!("metadata.annotations[{}]", bindings::ANNOTATION),
        format!(
            "the annotation {} records who set this object's bindings and is written by orgaccess's mutating admission webhook; \
             for this change by {} it must be {} (it is {}). Leave the annotation alone, and check that the MutatingWebhookConfiguration \
             'orgaccess' is installed",
            bindings::ANNOTATION,
            requester.describe(),
            bindings::render(&expected).unwrap_or_else(|| "absent".into()),
            bindings::render(written).unwrap_or_else(|| "absent".into()),
        ),
    )]
}

/// ForeignBindings: a trusted principal's change makes no member or API key
/// hold more through a binding an untrusted requester set (recorded in
/// `orgaccess.dev/bound-by`): such a binding counts as set by them, whoever
/// writes the object later. A GitOps apply keeps the fields its manifest does
/// not name; this is the seam it closes (docs/security.md, "Over two steps").
pub fn foreign_bindings(state: &OrgState, grantees: &Grantees, change: &Change) -> Vec<Violation> {
    let new_recorded = change.new.is_some_and(|n| !recorded(n).is_empty());
    if !new_recorded && !bindings::any_recorded(state) {
        return Vec::new();
    }
    let mut after = state.clone();
    let touches_grantees = matches!(
        change.old.or(change.new),
        Some(Object::Group(_)) | Some(Object::ApiKey(_))
    );
    match (change.old.or(change.new), change.new) {
        (Some(Object::Group(_)), Some(Object::Group(g))) => {
            after.groups.insert(change.name.into(), g.clone());
        }
        (Some(Object::Group(_)), None) => {
            after.groups.remove(change.name);
        }
        (Some(Object::Member(_)), Some(Object::Member(m))) => {
            after.members.insert(change.name.into(), m.clone());
        }
        (Some(Object::Member(_)), None) => {
            after.members.remove(change.name);
        }
        (Some(Object::ApiKey(_)), Some(Object::ApiKey(k))) => {
            after.api_keys.insert(change.name.into(), k.clone());
        }
        (Some(Object::ApiKey(_)), None) => {
            after.api_keys.remove(change.name);
        }
        // The Organization's settings change no holdings of accepted members.
        _ => {}
    }
    let grantees_after = if touches_grantees {
        resolve_grantees(&after)
    } else {
        grantees.clone()
    };
    bindings::foreign_growth(state, grantees, &after, &grantees_after)
        .into_iter()
        .map(|f| {
            let how: Vec<String> = f
                .bindings
                .iter()
                .map(|(object, key, who)| format!("{object} {} set by '{who}'", describe_binding(key)))
                .collect();
            violation(
                Rule::ForeignBindings,
                format!("metadata.annotations[{}]", bindings::ANNOTATION),
                format!(
                    "this change would give {} {} through bindings a trusted change did not set: {}. \
                     Those count as set by their setter, who cannot grant this. Take them over by naming them in your manifest \
                     (client-side apply, or server-side apply with --force-conflicts), or vouch for them as a trusted principal by \
                     removing them from the annotation ({}); or remove them",
                    f.principal,
                    f.gained,
                    how.join(", "),
                    bindings::ANNOTATION,
                ),
            )
        })
        .collect()
}

fn describe_binding(key: &str) -> String {
    match key.strip_prefix(bindings::INVITATION) {
        Some(g) => format!("invitation to group '{g}' (spec.groups)"),
        None if key == bindings::UNREADABLE => "bindings (an unreadable record)".into(),
        None => format!("spec.{key}"),
    }
}

// ---------------------------------------------------------------------------
// NoEscalation
// ---------------------------------------------------------------------------

/// What other objects' access lists grant to a grantee in the state, leaving
/// out the list of the object under change (its old and new lists are
/// compared separately).
fn incoming_access(state: &OrgState, to: &Grantee, changed: (&str, &str)) -> PrivilegeSet {
    let mut set = PrivilegeSet::new();
    let lists = state
        .groups
        .values()
        .map(|g| ("Group", *catalog::GROUPS, &g.name, &g.access))
        .chain(
            state
                .api_keys
                .values()
                .map(|k| ("ApiKey", *catalog::API_KEYS, &k.name, &k.access)),
        );
    for (kind, domain, object, list) in lists {
        if (kind, object.as_str()) == changed {
            continue;
        }
        for e in list {
            if e.grantee().as_ref() == Some(to) {
                set.add_resource(domain, object, e.level.into());
            }
        }
    }
    set
}

/// What a group or API key holds: its own privileges (template + explicit)
/// and what access lists grant it — other objects' lists as the state has
/// them, and its own list as this version has it.
fn holds(state: &OrgState, obj: Option<Object>, name: &str) -> PrivilegeSet {
    let (kind, grantee, mut set, own_access, domain) = match obj {
        Some(Object::Group(g)) => (
            "Group",
            Grantee::Group(name.into()),
            group_spec_privileges(g),
            &g.access[..],
            *catalog::GROUPS,
        ),
        Some(Object::ApiKey(k)) => (
            "ApiKey",
            Grantee::ApiKey(name.into()),
            api_key_spec_privileges(k),
            &k.access[..],
            *catalog::API_KEYS,
        ),
        _ => return PrivilegeSet::new(),
    };
    set.merge_in(&incoming_access(state, &grantee, (kind, name)));
    for e in own_access {
        if e.grantee().as_ref() == Some(&grantee) {
            set.add_resource(domain, name, e.level.into());
        }
    }
    set
}

/// The privileges an object grants: what it holds (see [`holds`]) and,
/// through its access list, Custom levels on itself to other grantees.
fn granted(state: &OrgState, obj: Option<Object>, name: &str) -> PrivilegeSet {
    let mut set = holds(state, obj, name);
    let (access, domain) = match obj {
        Some(Object::Group(g)) => (&g.access[..], *catalog::GROUPS),
        Some(Object::ApiKey(k)) => (&k.access[..], *catalog::API_KEYS),
        _ => return set,
    };
    for e in access {
        set.add_resource(domain, name, e.level.into());
    }
    set
}

/// NoEscalation: a requester grants only what their own privileges cover, whatever
/// the path (docs/rules.md, docs/security.md):
/// - a group's or API key's privileges and access lists: what the change adds,
///   including, on a create, what other objects' access lists already grant
///   the name (so edit rights on a group allow renaming it without holding all
///   it grants, and a re-created name inherits nothing for free);
/// - an identity set added to a group brings in whoever it matches: it needs
///   everything the group holds;
/// - a member newly in a group, by invitation or identity set, or a member
///   whose identity, claims, acceptance or Kubernetes subjects change: it
///   needs everything each such group holds (access-list grants included);
///   invitations to groups that do not exist are refused, not skipped;
/// - a disabled API key enabled again: everything it holds (`key_re_enabled`).
pub fn no_escalation(
    state: &OrgState,
    grantees: &Grantees,
    change: &Change,
    requester: &Requester,
) -> Vec<Violation> {
    let Some(mine) = requester.privileges() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if matches!(change.new, Some(Object::Group(_)) | Some(Object::ApiKey(_))) {
        let before = granted(state, change.old, change.name);
        let added = before.missing(&granted(state, change.new, change.name));
        let lacking = mine.missing(&added);
        if !lacking.is_empty() {
            let template = match change.new {
                Some(Object::Group(g)) => g
                    .template
                    .map(|t| format!(" (template {t:?} is granted only if you hold all of it)")),
                Some(Object::ApiKey(k)) => k
                    .template
                    .map(|t| format!(" (template {t:?} is granted only if you hold all of it)")),
                _ => None,
            };
            out.push(violation(
                Rule::NoEscalation,
                "spec.privileges",
                format!(
                    "{} cannot grant privileges they do not hold{}; missing: {lacking}. Remove these from the {} or ask someone who holds them",
                    requester.describe(),
                    template.unwrap_or_default(),
                    change.new.map(|o| o.kind().as_str()).unwrap_or_default(),
                ),
            ));
        }
    }
    // On a create the check above already asked for all the group holds.
    if let (Some(Object::Group(old)), Some(Object::Group(new))) = (change.old, change.new) {
        let old_sets = &old.identity_sets[..];
        if new.identity_sets.iter().any(|s| !old_sets.contains(s)) {
            let lacking = mine.missing(&holds(state, change.new, change.name));
            if !lacking.is_empty() {
                out.push(violation(
                    Rule::NoEscalation,
                    "spec.identitySets",
                    format!(
                        "{} cannot add an identity set to group '{}': it makes everyone it matches a member, with everything the group holds, and they lack: {lacking}",
                        requester.describe(),
                        change.name
                    ),
                ));
            }
        }
    }
    out.extend(key_re_enabled(state, change, requester, mine));
    out.extend(deletion_widens(state, change, requester, mine));
    if let Some(Object::Member(new)) = change.new {
        out.extend(member_escalation(
            state, grantees, change, new, requester, mine,
        ));
    }
    out
}

/// NoEscalation, keys: a disabled key holds nothing live; enabling it again
/// brings everything it holds back (its privileges, template and what access
/// lists grant it), so the requester must hold all of it, as for a new key.
/// Cases: `rules/key_cases.rs`.
fn key_re_enabled(
    state: &OrgState,
    change: &Change,
    requester: &Requester,
    mine: &PrivilegeSet,
) -> Option<Violation> {
    let (Some(Object::ApiKey(old)), Some(Object::ApiKey(new))) = (change.old, change.new) else {
        return None;
    };
    if old.enabled || !new.enabled {
        return None;
    }
    let lacking = mine.missing(&holds(state, change.new, change.name));
    (!lacking.is_empty()).then(|| {
        violation(
            Rule::NoEscalation,
            "spec.enabled",
            format!(
                "{} cannot enable API key '{}' again: enabling a disabled key grants everything it holds, and they lack: {lacking}. \
                 Ask someone who holds it, or create a key with what you hold",
                requester.describe(),
                change.name
            ),
        )
    })
}

/// Deleting hands an object's re-creation to whoever applies its manifest
/// (a GitOps self-heal restores deleted objects), and every field the
/// manifest does not name comes back with its default: a disabled key
/// enabled, a group's or key's template without the explicit privileges that
/// narrowed it. What the object would hold then beyond what it holds now is
/// granted by the deletion: the requester must hold it (the second-order
/// invariant, docs/security.md).
fn deletion_widens(
    state: &OrgState,
    change: &Change,
    requester: &Requester,
    mine: &PrivilegeSet,
) -> Vec<Violation> {
    if change.operation != Operation::Delete {
        return Vec::new();
    }
    let (now, restored, what) = match change.old {
        Some(Object::ApiKey(k)) => {
            let now = if k.enabled {
                holds(state, change.old, change.name)
            } else {
                PrivilegeSet::new()
            };
            let bare = ApiKeyDef {
                enabled: true,
                privileges: Vec::new(),
                ..k.clone()
            };
            let restored = holds(state, change.old, change.name).merge(&holds(
                state,
                Some(Object::ApiKey(&bare)),
                change.name,
            ));
            let what = if k.enabled {
                "its template without the explicit privileges that narrow it"
            } else {
                "enabled again, and its template without the explicit privileges that narrow it"
            };
            (now, restored, ("API key", what))
        }
        Some(Object::Group(g)) => {
            let bare = GroupDef {
                privileges: Vec::new(),
                ..g.clone()
            };
            let now = holds(state, change.old, change.name);
            let restored = now.merge(&holds(state, Some(Object::Group(&bare)), change.name));
            (
                now,
                restored,
                (
                    "group",
                    "its template without the explicit privileges that narrow it",
                ),
            )
        }
        _ => return Vec::new(),
    };
    let widened = now.missing(&restored);
    let lacking = mine.missing(&widened);
    if lacking.is_empty() {
        return Vec::new();
    }
    let (kind, what) = what;
    vec![violation(
        Rule::NoEscalation,
        "metadata.name",
        format!(
            "{} cannot delete {kind} '{}': re-created from its manifest (a GitOps sync restores deleted objects) with the \
             defaults of the fields the manifest does not name ({what}), it would grant {widened}, and they lack: {lacking}. \
             Ask someone who holds it, or leave it",
            requester.describe(),
            change.name
        ),
    )]
}

fn member_escalation(
    state: &OrgState,
    grantees: &Grantees,
    change: &Change,
    new: &MemberDef,
    requester: &Requester,
    mine: &PrivilegeSet,
) -> Vec<Violation> {
    let old = member(change.old);
    let after = group_names(state, Some(new));
    let before = group_names(state, old);
    let newly: BTreeSet<&String> = if member_granted_anew(old, new) {
        after.iter().collect()
    } else {
        after.difference(&before).collect()
    };
    // A dangling invitation kept from before, on a member whose holder does
    // not change, grants nothing now. Handed to someone new (a subject, an
    // identity, an acceptance), it would hand them whatever the group brings
    // when it is created again: that is granting what nobody can judge.
    let anew = member_granted_anew(old, new);
    let invited_before = |g: &String| !anew && old.is_some_and(|o| o.groups.contains(g));
    let mut out = Vec::new();
    for group in newly {
        let Some(holds) = grantees.groups.get(group) else {
            if !invited_before(group) {
                out.push(violation(
                    Rule::NoEscalation,
                    "spec.groups",
                    format!(
                        "group '{group}' does not exist in this organization; invite members only to existing groups \
                         (a member waiting for a group would join it, with whatever it grants, the moment someone creates it)"
                    ),
                ));
            }
            continue;
        };
        let lacking = mine.missing(holds);
        if !lacking.is_empty() {
            out.push(violation(
                Rule::NoEscalation,
                "spec.groups",
                format!(
                    "{} cannot make member '{}' hold group '{group}' (by invitation, identity set or a change of who the member is), which grants privileges they do not hold; missing: {lacking}",
                    requester.describe(),
                    change.name
                ),
            ));
        }
    }
    out
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

/// Cuts `s` to at most `max` bytes (`max` >= 3) on a character boundary, marking the cut.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max.saturating_sub(3);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update<'a>(old: &'a OrgDef, new: &'a OrgDef) -> Change<'a> {
        Change {
            operation: Operation::Update,
            name: &new.name,
            old: Some(Object::Organization(old)),
            new: Some(Object::Organization(new)),
        }
    }

    /// An Organization stored before a rule tightened (here: a lifetime of
    /// 0 days) may still have its metadata changed; any spec change — the
    /// advisor's settings too — is judged.
    #[test]
    fn an_organization_update_is_judged_unless_only_metadata_changed() {
        let stored = OrgDef {
            name: "acme".into(),
            invitation_lifetime_days: 0,
            ..OrgDef::default()
        };
        let state = OrgState::default();
        let finalized = OrgDef {
            meta: Meta {
                finalizers: vec!["x".into()],
                ..Meta::default()
            },
            ..stored.clone()
        };
        assert!(catalog_validity(&state, &update(&stored, &finalized)).is_empty());
        let mut advised = stored.clone();
        advised.advice.administrators_max_members = Some(5);
        assert!(
            !catalog_validity(&state, &update(&stored, &advised)).is_empty(),
            "a change of spec.advice was waved through as metadata"
        );
    }
}

#[cfg(test)]
mod key_cases;

#[cfg(test)]
mod deletion_cases;
