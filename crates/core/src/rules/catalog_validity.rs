//! CatalogValidity: every privilege names a known domain and a level,
//! ability and resources the domain offers; the Organization declares the
//! resources a Custom grant names; lifetimes, IP lists, access entries and
//! settings are well-formed; one Organization per namespace. Binds everyone,
//! trusted principals too.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::search_hub::search_hub_valid;
use super::{Change, Object, Operation, Rule, Violation, violation};
use crate::apikey::{MAX_NAME_LEN, MAX_PREVIOUS_DAYS, SECRET_SUFFIX, lifetime_days};
use crate::builtin::ApiKeyTemplate;
use crate::catalog::ResourceKind;
use crate::model::{
    AccessEntry, AccessReviewDef, ApiKeyDef, GroupDef, MemberDef, OrgDef, OrgState, Subject,
    SubjectKind, Until,
};
use crate::privilege::{PrivilegeSet, PrivilegeSpec, named_resources};

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
    super::review_validity::review_validity(state, change, &mut out);
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
            search_hub_valid(k, &mut out);
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
            ends_valid(m, &mut out);
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
        Some(Object::AccessReview(_)) | None => {}
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
        match crate::privilege::parse(spec) {
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
        (Some(Object::AccessReview(a)), Some(Object::AccessReview(b))) => {
            *a == AccessReviewDef {
                meta: a.meta.clone(),
                ..b.clone()
            }
        }
        _ => false,
    }
}

/// A member's ends are readable, and `spec.groupUntil` names only groups
/// the member is invited to (an end for no invitation would wait for one).
fn ends_valid(m: &MemberDef, out: &mut Vec<Violation>) {
    let mut check = |field: String, value: &str| {
        if let Err(why) = Until::parse(value) {
            out.push(violation(
                Rule::CatalogValidity,
                field,
                format!("{why}; a membership's end is an RFC 3339 time or an ISO-8601 duration counted from the Member's creation"),
            ));
        }
    };
    if let Some(u) = &m.until {
        check("spec.until".into(), u);
    }
    for (g, u) in &m.group_until {
        check(format!("spec.groupUntil.{g}"), u);
    }
    for g in m.group_until.keys().filter(|g| !m.groups.contains(g)) {
        out.push(violation(
            Rule::CatalogValidity,
            format!("spec.groupUntil.{g}"),
            format!("group '{g}' has an end but is not in spec.groups; end only invitations the member has"),
        ));
    }
}

fn subject_kind(s: &Subject) -> &'static str {
    match s.kind {
        SubjectKind::User => "User",
        SubjectKind::Group => "Group",
        SubjectKind::ServiceAccount => "ServiceAccount",
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

fn api_key_valid(k: &ApiKeyDef, out: &mut Vec<Violation>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Meta;

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
mod cases {
    use crate::model::GroupDef;
    use crate::privilege::AccessLevel::View;
    use crate::rules::Rule::CatalogValidity;
    use crate::rules::table::{Def, Verdict::*, Who::*, create, group, privilege, run};

    fn g(privileges: Vec<crate::privilege::PrivilegeSpec>) -> Def {
        Def::Group(GroupDef {
            ..group("g", privileges)
        })
    }

    #[test]
    fn table() {
        run(vec![
            (
                "a domain the service does not have is refused, to a trusted principal too",
                Trusted,
                create(g(vec![privilege("Content", "NoSuchDomain", View)])),
                Refused(CatalogValidity),
            ),
            (
                "a level the domain offers is admitted",
                User("olivia"),
                create(g(vec![privilege("Organization", "Organization", View)])),
                Admitted,
            ),
        ]);
    }
}
