//! Privileges: the wire form used in manifests, the normalized in-memory form,
//! and the algebra over it (merge, covers, missing).
//!
//! A [`PrivilegeSet`] is kept normalized so that equal access has one
//! representation: no empty grants, Edit carries Can Create where the domain
//! ties creation to Edit, and per-resource levels that a domain-wide level
//! already covers are dropped. Its form is dense (a bit per catalog domain,
//! per-resource levels packed in one sorted vector): `privilege/set.rs`.

mod set;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, RwLock};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::{self, Create, DomainId, ResourceKind, Service};

pub use set::{GrantRef, PrivilegeSet, ResourceIter, Resources};

/// Access level on a domain or a resource. Ordered: None < View < Edit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    #[default]
    None,
    View,
    Edit,
}

/// On/off abilities, as bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Abilities(u8);

impl Abilities {
    pub const NONE: Abilities = Abilities(0);
    pub const ALLOWED: Abilities = Abilities(1);
    pub const PUSH: Abilities = Abilities(2);
    pub const CREATE: Abilities = Abilities(4);

    pub fn contains(self, other: Abilities) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn union(self, other: Abilities) -> Abilities {
        Abilities(self.0 | other.0)
    }
    pub fn minus(self, other: Abilities) -> Abilities {
        Abilities(self.0 & !other.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A resource name inside an organization (a source, a group, ...), interned.
///
/// Per-resource grants are the bulk of merge work at scale; comparing and
/// copying integer ids instead of strings keeps a merge well under a
/// microsecond. Ids order by first use, not alphabetically: lists are sorted
/// by id internally and by name whenever they are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId(u32);

#[derive(Default)]
struct Interner {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Interner {
    fn insert(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }
}

// The process-wide interner grows with the distinct resource names of the
// objects that are kept (the webhook's cache interns them with
// [`intern_names`] as they arrive), never with names from requests: those
// are interned in a [`request_scope`] that is dropped with the request.
static INTERNER: LazyLock<RwLock<Interner>> = LazyLock::new(Default::default);

/// Ids of names interned in a request scope carry this bit.
const SCOPED: u32 = 1 << 31;

thread_local! {
    /// The current request scope's interner, if any.
    static SCOPE: RefCell<Option<Interner>> = const { RefCell::new(None) };
}

/// Runs `f` with names not already known process-wide interned in a table of
/// its own, dropped when `f` returns: judging a request then adds nothing to
/// process-wide state, whatever names it carries. Ids made inside must not
/// outlive `f` (the webhook keeps none: answers are text).
pub fn request_scope<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Interner>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            SCOPE.with(|s| *s.borrow_mut() = previous);
        }
    }
    let previous = SCOPE.with(|s| s.replace(Some(Interner::default())));
    let _restore = Restore(previous);
    f()
}

/// Runs `f` outside any request scope: what it interns is process-wide. For
/// data derived from a cache and kept with it (ids there must outlive requests).
pub fn outside_request_scope<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Interner>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let scope = self.0.take();
            SCOPE.with(|s| *s.borrow_mut() = scope);
        }
    }
    let scope = SCOPE.with(|s| s.borrow_mut().take());
    let _restore = Restore(scope);
    f()
}

/// Interns `names` process-wide, e.g. those of an object entering a cache, so
/// that requests judged against the cache share their ids.
pub fn intern_names<'a>(names: impl IntoIterator<Item = &'a str>) {
    for name in names {
        if ResourceId::global(name).is_none() {
            INTERNER
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name);
        }
    }
}

/// The resource names a list of privileges names, for [`intern_names`].
pub fn spec_names(specs: &[PrivilegeSpec]) -> impl Iterator<Item = &str> {
    specs
        .iter()
        .flat_map(|s| s.resources.iter().map(|r| r.name.as_str()))
}

impl ResourceId {
    pub fn of(name: &str) -> ResourceId {
        if let Some(id) = Self::lookup(name) {
            return id;
        }
        let scoped = SCOPE.with(|s| {
            s.borrow_mut()
                .as_mut()
                .map(|local| ResourceId(SCOPED | local.insert(name)))
        });
        if let Some(id) = scoped {
            return id;
        }
        ResourceId(
            INTERNER
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name),
        )
    }

    fn global(name: &str) -> Option<ResourceId> {
        INTERNER
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .ids
            .get(name)
            .map(|&i| ResourceId(i))
    }

    /// The id of a name already seen; a name never seen is in no grant.
    /// Inside a request scope, the scope's own names come first, so a name
    /// keeps one id for the whole request even if the cache learns it meanwhile.
    pub fn lookup(name: &str) -> Option<ResourceId> {
        let scoped = SCOPE.with(|s| {
            s.borrow()
                .as_ref()
                .and_then(|local| local.ids.get(name).map(|&i| ResourceId(SCOPED | i)))
        });
        scoped.or_else(|| Self::global(name))
    }

    pub fn name(self) -> Arc<str> {
        let found = if self.0 & SCOPED != 0 {
            SCOPE.with(|s| {
                s.borrow()
                    .as_ref()
                    .and_then(|local| local.names.get((self.0 & !SCOPED) as usize).cloned())
            })
        } else {
            INTERNER
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .names
                .get(self.0 as usize)
                .cloned()
        };
        found.unwrap_or_else(|| Arc::from("(unknown resource)"))
    }
}

/// What one grantee holds on one domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Grant {
    /// Domain-wide level (View all / Edit all on resource domains).
    pub level: Level,
    pub abilities: Abilities,
    /// Custom: per-resource levels, sorted by id, each above `level`.
    pub resources: Vec<(ResourceId, Level)>,
}

impl Grant {
    pub fn is_empty(&self) -> bool {
        self.level == Level::None && self.abilities.is_empty() && self.resources.is_empty()
    }

    /// The level this grant gives on one resource of its domain.
    pub fn level_on(&self, resource: &str) -> Level {
        match ResourceId::lookup(resource) {
            Some(id) => self.level_on_id(id),
            None => self.level,
        }
    }

    pub fn level_on_id(&self, resource: ResourceId) -> Level {
        let per = self
            .resources
            .binary_search_by_key(&resource, |(n, _)| *n)
            .map(|i| self.resources[i].1)
            .unwrap_or(Level::None);
        self.level.max(per)
    }

    /// Restores the invariants after construction or change.
    fn normalize(&mut self, domain: DomainId) {
        if self.level == Level::Edit && catalog::domain(domain).offers.create != Create::No {
            self.abilities = self.abilities.union(Abilities::CREATE);
        }
        let wide = self.level;
        self.resources.retain(|(_, l)| *l > wide);
    }
}

impl fmt::Display for PrivilegeSet {
    /// Human list such as `Organization/Groups: Edit, Search/ExecuteQueries: Allowed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, spec) in self.to_specs().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{spec}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Wire form
// ---------------------------------------------------------------------------

/// Access level as written in manifests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AccessLevel {
    /// No access. Useful to take a domain out of a template.
    None,
    /// View (View all on resource domains).
    View,
    /// Edit (Edit all on resource domains). Includes Can Create where the domain creates.
    Edit,
    /// On for domains that are actions rather than pages (Administrate, Impersonate, ...).
    Allowed,
    /// A level per resource, listed in `resources`. Only on domains that offer it.
    Custom,
    /// Analytics data only: send usage-analytics events.
    Push,
    /// Analytics data only: send events and view the data.
    PushAndView,
}

/// A per-resource level inside a Custom privilege.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ResourceLevel {
    View,
    Edit,
}

impl From<ResourceLevel> for Level {
    fn from(l: ResourceLevel) -> Level {
        match l {
            ResourceLevel::View => Level::View,
            ResourceLevel::Edit => Level::Edit,
        }
    }
}

/// One resource and the level granted on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceAccess {
    /// Name of the resource: a source, extension or query pipeline declared by
    /// the Organization, or the name of a Group or ApiKey object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// View or Edit on this resource.
    pub level: ResourceLevel,
}

/// A privilege as written in manifests: service + domain + access level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.level == 'Custom' ? has(self.resources) && size(self.resources) > 0 : !has(self.resources) || size(self.resources) == 0",
     "message": "resources lists the per-resource levels of a Custom privilege: give at least one with level Custom, and none with any other level"}
]))]
pub struct PrivilegeSpec {
    /// The service (a section of the console) the domain belongs to.
    pub service: Service,
    /// The domain within the service, e.g. Sources, Groups, Reports. `orgaccess catalog` lists them.
    #[schemars(length(min = 1, max = 64))]
    pub domain: String,
    /// The access level. Each domain offers only some levels.
    pub level: AccessLevel,
    /// Can Create. Implied by Edit where the domain creates resources; a separate
    /// choice with View or Custom on resource domains (Sources, Groups, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_create: Option<bool>,
    /// Per-resource levels, with level Custom only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 1000))]
    pub resources: Vec<ResourceAccess>,
}

impl fmt::Display for PrivilegeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}: ", self.service, self.domain)?;
        match (self.level, self.can_create == Some(true)) {
            (AccessLevel::None, true) => f.write_str("Can Create")?,
            (level, true) if level != AccessLevel::Edit => write!(f, "{level:?} + Can Create")?,
            (level, _) => write!(f, "{level:?}")?,
        }
        if !self.resources.is_empty() {
            let list: Vec<String> = self
                .resources
                .iter()
                .map(|r| format!("{} {:?}", r.name, r.level))
                .collect();
            write!(f, " ({})", list.join(", "))?;
        }
        Ok(())
    }
}

/// The wire form of one grant of a set (already normalized, as every grant a
/// [`PrivilegeSet`] holds is): what [`PrivilegeSet::to_specs`] writes for it.
pub fn grant_to_spec(d: DomainId, g: GrantRef<'_>) -> PrivilegeSpec {
    let dom = catalog::domain(d);
    let level = if g.abilities.contains(Abilities::ALLOWED) {
        AccessLevel::Allowed
    } else if g.abilities.contains(Abilities::PUSH) {
        if g.level >= Level::View {
            AccessLevel::PushAndView
        } else {
            AccessLevel::Push
        }
    } else if !g.resources.is_empty() {
        AccessLevel::Custom
    } else {
        match g.level {
            Level::None => AccessLevel::None,
            Level::View => AccessLevel::View,
            Level::Edit => AccessLevel::Edit,
        }
    };
    // A Custom grant can also carry a domain-wide View all; the wire form keeps
    // it as a resource-less View entry only when there are no resources, so a
    // View-all plus per-resource Edit is written as Custom with every resource
    // listed would lose "all". Keep it lossless: list the wide level first.
    let mut resources: Vec<ResourceAccess> = g
        .resources
        .iter()
        .map(|(n, l)| ResourceAccess {
            name: n.name().to_string(),
            level: if l == Level::Edit {
                ResourceLevel::Edit
            } else {
                ResourceLevel::View
            },
        })
        .collect();
    resources.sort_by(|a, b| a.name.cmp(&b.name));
    if level == AccessLevel::Custom && g.level == Level::View {
        resources.insert(
            0,
            ResourceAccess {
                name: "*".into(),
                level: ResourceLevel::View,
            },
        );
    }
    let explicit_create = dom.offers.create == Create::Choosable && g.level != Level::Edit;
    PrivilegeSpec {
        service: dom.service,
        domain: dom.name.to_string(),
        level,
        can_create: (explicit_create && g.abilities.contains(Abilities::CREATE)).then_some(true),
        resources,
    }
}

/// Why a privilege is not valid, naming what is wrong and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "unknown domain '{domain}' in service {service}{hint}; valid domains of {service}: {valid}"
    )]
    UnknownDomain {
        service: Service,
        domain: String,
        hint: String,
        valid: String,
    },
    #[error("{service}/{domain} does not offer level {level:?}; it offers {offered}")]
    LevelNotOffered {
        service: Service,
        domain: String,
        level: AccessLevel,
        offered: String,
    },
    #[error(
        "{service}/{domain} does not offer the Custom level (per-resource access); use {offered}"
    )]
    CustomNotOffered {
        service: Service,
        domain: String,
        offered: String,
    },
    #[error(
        "{service}/{domain} has nothing to create, so canCreate cannot be set; remove canCreate"
    )]
    CreateNotOffered { service: Service, domain: String },
    #[error(
        "on {service}/{domain} Can Create comes with Edit only; grant level Edit or remove canCreate"
    )]
    CreateNeedsEdit { service: Service, domain: String },
    #[error("on {service}/{domain} level Edit includes Can Create; remove canCreate: false")]
    CreateImpliedByEdit { service: Service, domain: String },
    #[error("{service}/{domain} Custom lists resource '{name}' twice; list each resource once")]
    DuplicateResource {
        service: Service,
        domain: String,
        name: String,
    },
    #[error(
        "{service}/{domain} lists resources, but only level Custom takes them; set level: Custom or remove resources"
    )]
    ResourcesWithoutCustom { service: Service, domain: String },
    #[error("{service}/{domain} level Custom needs at least one entry in resources")]
    CustomWithoutResources { service: Service, domain: String },
}

fn offered_levels(d: DomainId) -> String {
    let o = catalog::domain(d).offers;
    let mut v = Vec::new();
    if o.view {
        v.push("View");
    }
    if o.edit {
        v.push("Edit");
    }
    if o.allowed {
        v.push("Allowed");
    }
    if o.push {
        v.push("Push");
        v.push("PushAndView");
    }
    if o.custom.is_some() {
        v.push("Custom");
    }
    v.push("None");
    v.join(", ")
}

/// Resolves a wire-form privilege against the catalog. Does not check that
/// Custom resources exist: that needs the organization (see the rules).
pub fn parse(spec: &PrivilegeSpec) -> Result<(DomainId, Grant), PrivilegeError> {
    let service = spec.service;
    let Some(d) = catalog::lookup(service, &spec.domain) else {
        let hint = match catalog::moved(service, &spec.domain) {
            Some((to, name)) => format!(" (it moved: use service {to}, domain {name})"),
            None => catalog::suggest(service, &spec.domain)
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default(),
        };
        let valid: Vec<_> = catalog::domains_of(service).collect();
        return Err(PrivilegeError::UnknownDomain {
            service,
            domain: spec.domain.clone(),
            hint,
            valid: valid.join(", "),
        });
    };
    let dom = catalog::domain(d);
    let o = dom.offers;
    let domain = dom.name.to_string();
    let not_offered = || PrivilegeError::LevelNotOffered {
        service,
        domain: domain.clone(),
        level: spec.level,
        offered: offered_levels(d),
    };
    let mut grant = Grant::default();
    match spec.level {
        AccessLevel::None => {}
        AccessLevel::View if o.view => grant.level = Level::View,
        AccessLevel::Edit if o.edit => grant.level = Level::Edit,
        AccessLevel::Allowed if o.allowed => grant.abilities = Abilities::ALLOWED,
        AccessLevel::Push if o.push => grant.abilities = Abilities::PUSH,
        AccessLevel::PushAndView if o.push => {
            grant.abilities = Abilities::PUSH;
            grant.level = Level::View;
        }
        AccessLevel::Custom if o.custom.is_some() => {
            if spec.resources.is_empty() {
                return Err(PrivilegeError::CustomWithoutResources { service, domain });
            }
            let mut res: Vec<(ResourceId, Level)> = Vec::with_capacity(spec.resources.len());
            for r in &spec.resources {
                // "*" in a Custom list is the domain-wide level (View all + exceptions).
                if r.name == "*" {
                    grant.level = grant.level.max(r.level.into());
                    continue;
                }
                res.push((ResourceId::of(&r.name), r.level.into()));
            }
            res.sort();
            if let Some(w) = res.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(PrivilegeError::DuplicateResource {
                    service,
                    domain,
                    name: w[0].0.name().to_string(),
                });
            }
            grant.resources = res;
        }
        AccessLevel::Custom => {
            return Err(PrivilegeError::CustomNotOffered {
                service,
                domain,
                offered: offered_levels(d),
            });
        }
        _ => return Err(not_offered()),
    }
    if spec.level != AccessLevel::Custom && !spec.resources.is_empty() {
        return Err(PrivilegeError::ResourcesWithoutCustom { service, domain });
    }
    match (spec.can_create, o.create) {
        (Some(true), Create::No) => {
            return Err(PrivilegeError::CreateNotOffered { service, domain });
        }
        (Some(true), _) if grant.level == Level::Edit => {}
        (Some(true), Create::WithEdit) => {
            return Err(PrivilegeError::CreateNeedsEdit { service, domain });
        }
        (Some(true), Create::Choosable) => {
            grant.abilities = grant.abilities.union(Abilities::CREATE)
        }
        (Some(false), c) if c != Create::No && grant.level == Level::Edit => {
            return Err(PrivilegeError::CreateImpliedByEdit { service, domain });
        }
        _ => {}
    }
    grant.normalize(d);
    Ok((d, grant))
}

/// Parses a list of privileges. Later entries for the same domain replace
/// earlier ones, so a list can override a template domain by domain.
pub fn parse_all(specs: &[PrivilegeSpec]) -> Result<PrivilegeSet, Vec<(usize, PrivilegeError)>> {
    let mut set = PrivilegeSet::new();
    let mut errors = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        match parse(spec) {
            Ok((d, g)) => set.set(d, g),
            Err(e) => errors.push((i, e)),
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// Resource kinds named by Custom grants in a set, with the names, for the
/// "resource is declared" rule.
pub fn named_resources(set: &PrivilegeSet) -> Vec<(ResourceKind, DomainId, Arc<str>)> {
    let mut out = Vec::new();
    for (d, g) in set.iter() {
        if let Some(kind) = catalog::domain(d).offers.custom {
            out.extend(g.resources.iter().map(|(n, _)| (kind, d, n.name())));
        }
    }
    out
}

/// Convenience constructor for tests and data: `spec(Service::Content, "Sources", AccessLevel::Edit)`.
pub fn spec(service: Service, domain: &str, level: AccessLevel) -> PrivilegeSpec {
    PrivilegeSpec {
        service,
        domain: domain.to_string(),
        level,
        can_create: None,
        resources: Vec::new(),
    }
}

#[cfg(test)]
mod interner_tests {
    use super::*;

    #[test]
    fn request_scopes_leave_no_names_behind() {
        intern_names(["kept-by-the-cache"]);
        let kept = ResourceId::of("kept-by-the-cache");
        let (a, b) = request_scope(|| {
            let a = ResourceId::of("only-in-one-request-1f3a");
            let b = ResourceId::of("only-in-one-request-1f3a");
            assert_eq!(&*a.name(), "only-in-one-request-1f3a");
            assert_eq!(ResourceId::of("kept-by-the-cache"), kept);
            // Derived cache data is interned process-wide even inside a request.
            let global = outside_request_scope(|| ResourceId::of("derived-9c1e"));
            assert_eq!(global.0 & SCOPED, 0);
            assert_eq!(ResourceId::lookup("only-in-one-request-1f3a"), Some(a));
            (a, b)
        });
        assert_eq!(a, b);
        assert_ne!(a.0 & SCOPED, 0);
        assert_eq!(ResourceId::global("only-in-one-request-1f3a"), None);
        assert_eq!(ResourceId::lookup("only-in-one-request-1f3a"), None);
        // The process-wide table holds the derived name and not the
        // request's. (Its size is not compared: the other tests of this
        // binary intern their own names in it at the same time, which made
        // a count before and after fail once in CI.)
        let table = INTERNER.read().unwrap();
        assert!(table.names.iter().any(|n| &**n == "derived-9c1e"));
        assert!(
            !table
                .names
                .iter()
                .any(|n| &**n == "only-in-one-request-1f3a")
        );
    }
}
