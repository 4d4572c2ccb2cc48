//! The admission rules of DOMAIN.md §4, as pure functions.
//!
//! One function per rule; [`check`] runs them in order. The webhook and the
//! offline `orgaccess check` both call [`check`], so a manifest gets the same
//! verdict and the same words in a pull request as at the cluster's door.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use jiff::{Span, SpanRelativeTo};

use super::builtin::BuiltinGroup;
use super::catalog::{self, ResourceKind};
use super::effective::{Grantees, api_key_spec_privileges, group_spec_privileges};
use super::model::{AccessEntry, ApiKeyDef, GroupDef, MemberDef, OrgDef, OrgState};
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
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Organization(_) => "Organization",
            Object::Group(_) => "Group",
            Object::Member(_) => "Member",
            Object::ApiKey(_) => "ApiKey",
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
    /// skips rules 3-5, never rules 1-2.
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
    out.extend(duplicate(state, grantees, change, requester));
    out.extend(required_privileges(state, change, requester));
    out.extend(no_escalation(state, change, requester));
    out
}

// ---------------------------------------------------------------------------
// Rule 1: catalog validity
// ---------------------------------------------------------------------------

/// Rule 1: every privilege names a known domain and a level, ability and
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
        }
        Some(Object::Organization(o)) => {
            if o.invitation_lifetime_days == 0 {
                out.push(violation(
                    Rule::CatalogValidity,
                    "spec.invitationLifetimeDays",
                    "the invitation lifetime must be at least 1 day",
                ));
            }
            if let Some(home) = state.org.as_ref().filter(|home| home.name != change.name) {
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
        (Some(Object::Organization(a)), Some(Object::Organization(b))) => {
            a.display_name == b.display_name
                && a.resources == b.resources
                && a.invitation_lifetime_days == b.invitation_lifetime_days
        }
        (Some(Object::Group(a)), Some(Object::Group(b))) => a == b,
        (Some(Object::Member(a)), Some(Object::Member(b))) => a == b,
        (Some(Object::ApiKey(a)), Some(Object::ApiKey(b))) => a == b,
        _ => false,
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
    let template = k.template.unwrap_or(super::builtin::ApiKeyTemplate::Custom);
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
// Rule 2: Administrators is protected
// ---------------------------------------------------------------------------

/// Rule 2: Administrators cannot be deleted or have its privileges edited; the
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
            if is_admins(o) && state.org.as_ref().is_some_and(|org| !org.deleting) =>
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
// Rule 3: duplicates
// ---------------------------------------------------------------------------

/// Rule 3: a duplicate is admitted only if the requester strictly out-ranks the source.
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
// Rule 4: required privileges
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

/// What a change requires of its requester (DOMAIN.md §4 rule 4), with a
/// phrase for the denial.
pub fn required(change: &Change) -> Vec<(PrivilegeSet, String)> {
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
        (Some(Object::Organization(_)), _) => {
            vec![(
                edit_domain(*catalog::ORGANIZATION),
                "changing the Organization's settings".into(),
            )]
        }
        (Some(Object::Member(_)), _) => member_changes(change)
            .into_iter()
            .map(|(group, what)| {
                (
                    edit_on(groups, &group),
                    format!("{what} group '{group}' (an edit of that group)"),
                )
            })
            .collect(),
        (None, _) => Vec::new(),
    }
}

/// The groups a member change edits, and how.
fn member_changes<'a>(change: &Change<'a>) -> Vec<(String, &'static str)> {
    fn member<'a>(o: Option<Object<'a>>) -> Option<&'a MemberDef> {
        match o {
            Some(Object::Member(m)) => Some(m),
            _ => None,
        }
    }
    let (old, new) = (member(change.old), member(change.new));
    let groups_of = |m: Option<&MemberDef>| {
        m.map(|m| m.groups.iter().cloned().collect::<BTreeSet<_>>())
            .unwrap_or_default()
    };
    let (before, after) = (groups_of(old), groups_of(new));
    // Changing who the member is (identity, subjects, acceptance) changes who
    // holds every one of their groups' privileges.
    let identity_changed = match (old, new) {
        (Some(o), Some(n)) => {
            o.identity != n.identity
                || o.subjects != n.subjects
                || o.accepted != n.accepted
                || o.sso_groups != n.sso_groups
                || o.salesforce_profile != n.salesforce_profile
        }
        _ => false,
    };
    let mut out = Vec::new();
    for g in after.difference(&before) {
        out.push((g.clone(), "adding a member to"));
    }
    for g in before.difference(&after) {
        out.push((g.clone(), "removing a member from"));
    }
    if identity_changed {
        for g in before.intersection(&after) {
            out.push((g.clone(), "changing the identity of a member of"));
        }
    }
    out
}

/// Rule 4: creating needs Can Create, changing or deleting needs Edit on the object.
pub fn required_privileges(
    _state: &OrgState,
    change: &Change,
    requester: &Requester,
) -> Vec<Violation> {
    let Some(mine) = requester.privileges() else {
        return Vec::new();
    };
    required(change)
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

// ---------------------------------------------------------------------------
// Rule 5: no escalation
// ---------------------------------------------------------------------------

/// The privileges an object grants: its own (template + explicit) and, through
/// its access list, Custom levels on itself to other grantees.
fn granted(obj: Option<Object>, name: &str) -> PrivilegeSet {
    let (mut set, access, domain) = match obj {
        Some(Object::Group(g)) => (group_spec_privileges(g), &g.access[..], *catalog::GROUPS),
        Some(Object::ApiKey(k)) => (
            api_key_spec_privileges(k),
            &k.access[..],
            *catalog::API_KEYS,
        ),
        _ => return PrivilegeSet::new(),
    };
    for e in access {
        set.add_resource(domain, name, e.level.into());
    }
    set
}

/// Rule 5: a requester grants only what their own privileges cover. For an
/// edit, only what the change adds is checked, so holders of a group's edit
/// right can rename it without holding all it grants. Adding a member to a
/// group grants them the group's privileges, so that is checked too.
pub fn no_escalation(state: &OrgState, change: &Change, requester: &Requester) -> Vec<Violation> {
    let Some(mine) = requester.privileges() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if matches!(change.new, Some(Object::Group(_)) | Some(Object::ApiKey(_))) {
        let added = granted(change.old, change.name).missing(&granted(change.new, change.name));
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
                    change.new.map(|o| o.kind()).unwrap_or_default(),
                ),
            ));
        }
    }
    if let Some(Object::Member(_)) = change.new {
        for (group, what) in member_changes(change) {
            if what != "adding a member to" {
                continue;
            }
            let Some(g) = state.groups.get(&group) else {
                continue;
            };
            let lacking = mine.missing(&group_spec_privileges(g));
            if !lacking.is_empty() {
                out.push(violation(
                    Rule::NoEscalation,
                    "spec.groups",
                    format!(
                        "{} cannot add a member to group '{group}', which grants privileges they do not hold; missing: {lacking}",
                        requester.describe()
                    ),
                ));
            }
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
