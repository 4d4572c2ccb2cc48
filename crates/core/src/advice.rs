//! The least-privilege advisor: the leading practices of docs/cli.md
//! (`orgaccess advise`), checked on an organization's state. One function,
//! [`review`], returns findings with a stable id, a severity, the objects
//! concerned, the practice (and the document that states it) and the fix; `orgaccess advise` prints them (and, later,
//! the Organization's status, metrics and admission warnings project them).

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use crate::apikey::{Standing, effective_lifetime_days};
use crate::builtin::{ApiKeyTemplate, BuiltinGroup, Privacy};
use crate::catalog;
use crate::effective::{
    ConsoleAccess, Grantee, Grantees, console_access, group_members, member_effective,
};
use crate::model::{GroupDef, OrgState};
use crate::privilege::{GrantRef, Level, PrivilegeSet};
use crate::references::unresolved_references;

pub mod elevated;

/// The advisor's settings and finding ids live beneath the model, which
/// carries them in the Organization's `spec.advice`.
pub use crate::model::{IDS, Settings};

/// How much a finding matters, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Severity, String> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!("unknown severity '{s}'; info, warning or critical")),
        }
    }
}

/// One practice the organization does not follow, where, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable: alerts, suppressions and CI thresholds name it.
    pub id: &'static str,
    pub severity: Severity,
    /// `Kind/name` of every object concerned, sorted.
    pub objects: Vec<String>,
    pub message: String,
    /// The leading practice, and the source document that states it.
    pub practice: &'static str,
    pub source: &'static str,
    pub fix: String,
}

const MANAGE_ACCESS: &str = "Manage member access (docs/sources.md, seed 001)";
const LEAST_PRIVILEGE: &str =
    "Create a group for developers and system integrators (docs/sources.md, seed 000)";
const PRIVILEGES: &str = "Manage privileges (docs/sources.md, seed 002)";

/// Every finding of `state` under `settings`, most severe first, then by id.
pub fn review(
    state: &OrgState,
    grantees: &Grantees,
    settings: &Settings,
    now: Timestamp,
) -> Vec<Finding> {
    let mut out = Vec::new();
    members_findings(state, grantees, settings, now, &mut out);
    groups_findings(state, grantees, &mut out);
    elevated::findings(state, grantees, settings, now, &mut out);
    keys_findings(state, grantees, settings, now, &mut out);
    references_findings(state, &mut out);
    debug_assert!(
        out.iter().all(|f| IDS.contains(&f.id)),
        "an id missing from IDS"
    );
    out.retain(|f| !settings.disabled.contains(f.id));
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.id.cmp(b.id))
            .then(a.objects.cmp(&b.objects))
    });
    out
}

/// Findings counted by severity: the Organization's status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub critical: u32,
    pub warning: u32,
    pub info: u32,
}

impl Counts {
    pub fn of(findings: &[Finding]) -> Counts {
        let mut c = Counts::default();
        for f in findings {
            match f.severity {
                Severity::Critical => c.critical += 1,
                Severity::Warning => c.warning += 1,
                Severity::Info => c.info += 1,
            }
        }
        c
    }

    /// `1 critical, 2 warning, 0 info`.
    pub fn summary(&self) -> String {
        format!(
            "{} critical, {} warning, {} info",
            self.critical, self.warning, self.info
        )
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Findings counted by id (each id has one severity): the metrics.
pub fn by_id(findings: &[Finding]) -> std::collections::BTreeMap<(&'static str, Severity), u32> {
    let mut out = std::collections::BTreeMap::new();
    for f in findings {
        *out.entry((f.id, f.severity)).or_insert(0) += 1;
    }
    out
}

/// Ids whose findings the change's own warnings ([`crate::warnings::warnings`])
/// already state for the object under change: not repeated as advice.
const SAID_BY_WARNINGS: [&str; 2] = ["unresolved-reference", "key-without-expiry"];

/// Most advice warnings for one change (the rest are counted in the last).
pub const MAX_ADVICE_WARNINGS: usize = 4;

/// What a change adds: the findings of `after` that concern an object no
/// finding of the same id concerned in `before` (a finding that only lost
/// objects, or stayed as it was, is not new).
pub fn new_findings<'a>(before: &[Finding], after: &'a [Finding]) -> Vec<&'a Finding> {
    let known: BTreeSet<(&str, &str)> = before
        .iter()
        .flat_map(|f| f.objects.iter().map(move |o| (f.id, o.as_str())))
        .collect();
    after
        .iter()
        .filter(|f| {
            f.objects
                .iter()
                .any(|o| !known.contains(&(f.id, o.as_str())))
        })
        .collect()
}

/// The admission warnings for a change that turns `before` into `after`
/// (kubectl prints each as `Warning: ...`): its new findings, at most
/// [`MAX_ADVICE_WARNINGS`], each at most [`crate::bounds::MAX_WARNING_BYTES`].
pub fn warnings(before: &[Finding], after: &[Finding]) -> Vec<String> {
    let new: Vec<&Finding> = new_findings(before, after)
        .into_iter()
        .filter(|f| !SAID_BY_WARNINGS.contains(&f.id))
        .collect();
    let mut out: Vec<String> = new
        .iter()
        .take(MAX_ADVICE_WARNINGS)
        .map(|f| {
            crate::bounds::truncate(
                format!(
                    "advice {} ({}): {}; fix: {}",
                    f.id,
                    f.severity.as_str(),
                    f.message,
                    f.fix
                ),
                crate::bounds::MAX_WARNING_BYTES,
            )
        })
        .collect();
    if new.len() > MAX_ADVICE_WARNINGS {
        out.pop();
        out.push(format!(
            "advice: {} more new findings; see orgaccess advise",
            new.len() - (MAX_ADVICE_WARNINGS - 1)
        ));
    }
    out
}

/// Most members the review of one change looks at; a change concerning more
/// (a group of thousands) gets no advice warnings: the Organization's status
/// still reports its findings.
pub const MAX_CHANGE_MEMBERS: usize = 256;

/// Findings whose inputs an excerpt holds completely whatever it leaves
/// out: what an Organization change (thresholds, switches) is warned about.
const ORGANIZATION_WIDE: [&str; 4] = [
    "groups-edit-holders",
    "administrators-size",
    "administrator-equivalent",
    "activities-view-holders",
];

/// Warned about on admission: findings of severity warning or critical
/// (the info ones are in the status, the metrics and `orgaccess advise`),
/// but not a group without members (a group is created before its members
/// are invited, so that is its normal first state) nor what the change's own
/// warnings say ([`SAID_BY_WARNINGS`]).
fn warned_on_admission(f: &Finding) -> bool {
    f.severity >= Severity::Warning
        && f.id != "group-without-members"
        && !SAID_BY_WARNINGS.contains(&f.id)
}

/// The groups whose members the organization-wide findings count: a member
/// outside them holds neither Groups Edit nor Activities View (a member's
/// level on a domain is the highest of their groups'), so cannot be in
/// those findings. Administrators is one of them.
fn counted_groups(state: &OrgState, grantees: &Grantees) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = grantees
        .groups
        .iter()
        .filter(|(_, p)| oversees(p))
        .map(|(g, _)| g.clone())
        .collect();
    if let Some(a) = state.administrators() {
        out.insert(a.name.clone());
    }
    out
}

/// Whether a group holding `p` is one whose members the organization-wide
/// findings count (Groups Edit or Activities View): what an index keeping
/// [`Lookups::counted_groups`] asks of a group's privileges.
pub fn oversees(p: &PrivilegeSet) -> bool {
    holds_groups_edit(p) || holds_activities_view(p)
}

/// A superset of the names of a group's members, or `None` when it holds
/// more than the limit: what [`change_warnings`] asks.
pub type MembersOf<'a> = dyn Fn(&str, usize) -> Option<BTreeSet<String>> + 'a;

/// The groups whose members the organization-wide findings count
/// ([`Lookups::counted_groups`]) and the union of their members' names, or
/// no names (`None`) when that union holds more than a limit: what every
/// review of a change starts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    pub groups: BTreeSet<String>,
    pub members: Option<BTreeSet<String>>,
}

impl Counted {
    /// By asking `lookups` for each counted group's members in turn,
    /// stopping as soon as the union is past `limit`.
    pub fn gather<L: Lookups + ?Sized>(lookups: &L, limit: usize) -> Counted {
        let groups = lookups.counted_groups();
        let mut members = BTreeSet::new();
        for g in &groups {
            let Some(of_g) = lookups.members_of(g, limit) else {
                return Counted {
                    groups,
                    members: None,
                };
            };
            members.extend(of_g);
            if members.len() > limit {
                return Counted {
                    groups,
                    members: None,
                };
            }
        }
        Counted {
            groups,
            members: Some(members),
        }
    }
}

/// What the review of a change ([`change_warnings_with`]) asks of the
/// organization besides its objects. [`Scan`] finds each by a pass over the
/// state; the webhook's index keeps them as objects come and go, so a
/// review costs what the change concerns, not the size of the namespace.
/// Both must answer alike (the index's property test).
pub trait Lookups {
    /// A superset of the names of a group's members, or `None` when it
    /// holds more than `limit` ([`MembersOf`]).
    fn members_of(&self, group: &str, limit: usize) -> Option<BTreeSet<String>>;
    /// The groups whose privileges hold Groups Edit or Activities View
    /// ([`oversees`]), and the Administrators group.
    fn counted_groups(&self) -> BTreeSet<String>;
    /// The groups with identity sets.
    fn identity_set_groups(&self) -> BTreeSet<String>;
    /// The groups recording `group` as their source (`spec.duplicateOf`).
    fn duplicates_of(&self, group: &str) -> BTreeSet<String>;
    /// The groups and the API keys whose access list names `grantee`.
    fn naming(&self, grantee: &crate::effective::Grantee) -> (BTreeSet<String>, BTreeSet<String>);
    /// The counted groups and their members up to `limit` ([`Counted`]):
    /// asked group by group unless kept.
    fn counted(&self, limit: usize) -> Arc<Counted> {
        Arc::new(Counted::gather(self, limit))
    }
}

/// [`Lookups`] by passes over a state (the CLI; the webhook when the state
/// judged is not its index's).
pub struct Scan<'a> {
    pub state: &'a OrgState,
    pub grantees: &'a Grantees,
    pub members_of: &'a MembersOf<'a>,
}

impl Lookups for Scan<'_> {
    fn members_of(&self, group: &str, limit: usize) -> Option<BTreeSet<String>> {
        (self.members_of)(group, limit)
    }

    fn counted_groups(&self) -> BTreeSet<String> {
        counted_groups(self.state, self.grantees)
    }

    fn identity_set_groups(&self) -> BTreeSet<String> {
        self.state
            .groups
            .values()
            .filter(|g| !g.identity_sets.is_empty())
            .map(|g| g.name.clone())
            .collect()
    }

    fn duplicates_of(&self, group: &str) -> BTreeSet<String> {
        self.state
            .groups
            .values()
            .filter(|g| g.duplicate_of.as_deref() == Some(group))
            .map(|g| g.name.clone())
            .collect()
    }

    fn naming(&self, grantee: &crate::effective::Grantee) -> (BTreeSet<String>, BTreeSet<String>) {
        let names = |e: &crate::model::AccessEntry| e.names(grantee);
        (
            self.state
                .groups
                .values()
                .filter(|g| g.access.iter().any(names))
                .map(|g| g.name.clone())
                .collect(),
            self.state
                .api_keys
                .values()
                .filter(|k| k.access.iter().any(names))
                .map(|k| k.name.clone())
                .collect(),
        )
    }
}

/// [`scan_members_of`], or `None` when there are more than `limit`: the
/// `members_of` of [`change_warnings`] where no index is at hand (the CLI).
pub fn scan_members_at_most(
    state: &OrgState,
    group: &str,
    limit: usize,
) -> Option<BTreeSet<String>> {
    Some(scan_members_of(state, group)).filter(|m| m.len() <= limit)
}

/// The members of `group` in `state` by either route, by a scan.
pub fn scan_members_of(state: &OrgState, group: &str) -> BTreeSet<String> {
    state
        .members
        .values()
        .filter(|m| crate::effective::membership_in(state, m, group).is_some())
        .map(|m| m.name.clone())
        .collect()
}

/// The part of `state` the review of a change needs: the members `members`,
/// the groups they are in (and every group with identity sets, which may
/// match them), `groups`, duplicates' sources and `keys`, and, until nothing
/// more is added, every group and key whose access list names one of them
/// (their grants are part of its privileges).
fn excerpt(
    state: &OrgState,
    lookups: &dyn Lookups,
    members: &BTreeSet<String>,
    mut groups: BTreeSet<String>,
    mut keys: BTreeSet<String>,
) -> OrgState {
    let mut out = OrgState {
        org: state.org.clone(),
        ..OrgState::default()
    };
    for name in members {
        if let Some(m) = state.members.get(name) {
            groups.extend(m.groups.iter().cloned());
            out.members.insert(name.clone(), Arc::clone(m));
        }
    }
    groups.extend(lookups.identity_set_groups());
    let sources: Vec<String> = groups
        .iter()
        .filter_map(|g| state.groups.get(g)?.duplicate_of.clone())
        .collect();
    groups.extend(sources);
    // Every group and key whose access list names one of them, until
    // nothing more is added: each name is asked once.
    use crate::effective::Grantee;
    let mut todo: Vec<Grantee> = groups
        .iter()
        .cloned()
        .map(Grantee::Group)
        .chain(keys.iter().cloned().map(Grantee::ApiKey))
        .collect();
    while let Some(next) = todo.pop() {
        let (more_groups, more_keys) = lookups.naming(&next);
        for g in more_groups {
            if groups.insert(g.clone()) {
                todo.push(Grantee::Group(g));
            }
        }
        for k in more_keys {
            if keys.insert(k.clone()) {
                todo.push(Grantee::ApiKey(k));
            }
        }
    }
    for g in &groups {
        if let Some(def) = state.groups.get(g) {
            out.groups.insert(g.clone(), Arc::clone(def));
        }
    }
    for k in &keys {
        if let Some(def) = state.api_keys.get(k) {
            out.api_keys.insert(k.clone(), Arc::clone(def));
        }
    }
    out
}

/// The admission warnings of the advisor for an allowed change: the
/// findings of severity warning or critical concerning the object under
/// change (for a group, also its members; for the Organization, the
/// organization-wide findings) that the change creates, at most
/// [`MAX_ADVICE_WARNINGS`]. Never a denial.
///
/// `state` is the organization the rules judged the change in (the object
/// as it was; absent for a create), `grantees` its grantees, and
/// `members_of(group, limit)` a superset of the names of a group's members
/// in it, or `None` when it holds more than `limit` (the webhook's index
/// answers without a scan, and without collecting a large group's names;
/// [`scan_members_at_most`]).
///
/// The cost is bounded by what the change concerns, not by the namespace:
/// both sides are reviewed on an excerpt holding the changed object, the
/// members of the groups that hold Groups Edit or Activities View (so the
/// organization-wide findings count right), and what their privileges come
/// from; beyond [`MAX_CHANGE_MEMBERS`] members nothing is said.
pub fn change_warnings(
    state: &OrgState,
    grantees: &Grantees,
    change: &crate::rules::Change,
    members_of: &MembersOf,
    now: Timestamp,
) -> Vec<String> {
    let scan = Scan {
        state,
        grantees,
        members_of,
    };
    change_warnings_with(state, change, &scan, now)
}

/// [`change_warnings`], asking `lookups` what it would otherwise find by
/// passes over the state (`lookups` must answer for `state`).
pub fn change_warnings_with(
    state: &OrgState,
    change: &crate::rules::Change,
    lookups: &dyn Lookups,
    now: Timestamp,
) -> Vec<String> {
    use crate::rules::{Object, Operation};
    let name = change.name;
    let Some(object) = change.new.or(change.old) else {
        return Vec::new();
    };
    if matches!(object, Object::Organization(_)) && change.operation == Operation::Delete {
        return Vec::new();
    }
    let counted = lookups.counted(MAX_CHANGE_MEMBERS);
    let Some(counted_members) = &counted.members else {
        return Vec::new();
    };
    let mut members = counted_members.clone();
    let (mut groups, mut keys) = (counted.groups.clone(), BTreeSet::new());
    match object {
        Object::Member(_) => {
            members.insert(name.to_string());
        }
        Object::Group(_) => {
            let Some(of_it) = lookups.members_of(name, MAX_CHANGE_MEMBERS) else {
                return Vec::new();
            };
            members.extend(of_it);
            // Members the new identity sets bring in.
            if let Some(Object::Group(g)) = change.new
                && !g.identity_sets.is_empty()
            {
                members.extend(
                    state
                        .members
                        .values()
                        .filter(|m| g.identity_sets.iter().any(|s| s.matches(m)))
                        .map(|m| m.name.clone()),
                );
            }
            groups.insert(name.to_string());
            groups.extend(lookups.duplicates_of(name));
        }
        Object::ApiKey(_) => {
            keys.insert(name.to_string());
        }
        Object::Organization(_) | Object::AccessReview(_) => {}
    }
    if members.len() > MAX_CHANGE_MEMBERS {
        return Vec::new();
    }
    // The new object's own references (groups it is invited to, its access
    // list, its source) are part of the excerpt too.
    match change.new {
        Some(Object::Member(m)) => groups.extend(m.groups.iter().cloned()),
        Some(Object::Group(g)) => groups.extend(g.duplicate_of.iter().cloned()),
        _ => {}
    }
    for e in change.new.iter().flat_map(|o| match o {
        Object::Group(g) => g.access.as_slice(),
        Object::ApiKey(k) => k.access.as_slice(),
        _ => &[],
    }) {
        groups.extend(e.group.iter().cloned());
        keys.extend(e.api_key.iter().cloned());
    }
    let before = excerpt(state, lookups, &members, groups, keys);
    let mut after = before.clone();
    crate::change::take(&mut after, object.kind(), name);
    match change.new {
        Some(Object::Organization(o)) => after.org = Some(o.clone()),
        Some(Object::Group(g)) => {
            after.groups.insert(name.to_string(), Arc::new(g.clone()));
        }
        Some(Object::Member(m)) => {
            after.members.insert(name.to_string(), Arc::new(m.clone()));
        }
        Some(Object::ApiKey(k)) => {
            after.api_keys.insert(name.to_string(), Arc::new(k.clone()));
        }
        Some(Object::AccessReview(r)) => {
            after.reviews.insert(name.to_string(), Arc::new(r.clone()));
        }
        None => {}
    }
    let before_grantees = crate::effective::resolve_grantees(&before);
    let after_grantees = match object {
        Object::Group(_) => {
            before_grantees.after_change(&before, &after, Grantee::Group(name.into()))
        }
        Object::ApiKey(_) => {
            before_grantees.after_change(&before, &after, Grantee::ApiKey(name.into()))
        }
        _ => before_grantees.clone(),
    };
    let found_before = review(&before, &before_grantees, &before.advice_settings(), now);
    let found_after = review(&after, &after_grantees, &after.advice_settings(), now);
    let concerned: BTreeSet<String> = match object {
        Object::Group(_) => [&before, &after]
            .into_iter()
            .flat_map(|s| {
                s.members
                    .values()
                    .filter(|m| crate::effective::membership_in(s, m, name).is_some())
                    .map(|m| member(&m.name))
            })
            .chain([format!("Group/{name}")])
            .collect(),
        Object::Member(_) => [member(name)].into(),
        Object::ApiKey(_) => [format!("ApiKey/{name}")].into(),
        Object::Organization(_) | Object::AccessReview(_) => BTreeSet::new(),
    };
    let concerns = |f: &Finding| {
        warned_on_admission(f)
            && match object {
                Object::Organization(_) => ORGANIZATION_WIDE.contains(&f.id),
                _ => f.objects.iter().any(|o| concerned.contains(o)),
            }
    };
    let keep =
        |fs: Vec<Finding>| -> Vec<Finding> { fs.into_iter().filter(|f| concerns(f)).collect() };
    warnings(&keep(found_before), &keep(found_after))
}

fn member(name: &str) -> String {
    format!("Member/{name}")
}

/// Groups Edit: domain-wide Edit on Organization › Groups.
fn holds_groups_edit(p: &PrivilegeSet) -> bool {
    p.get(*catalog::GROUPS)
        .is_some_and(|g| g.level >= Level::Edit)
}

fn holds_activities_view(p: &PrivilegeSet) -> bool {
    static ACTIVITIES: std::sync::LazyLock<Option<catalog::DomainId>> =
        std::sync::LazyLock::new(|| catalog::lookup(catalog::Service::Organization, "Activities"));
    ACTIVITIES
        .and_then(|d| p.get(d))
        .is_some_and(|g: GrantRef<'_>| g.level >= Level::View)
}

fn members_findings(
    state: &OrgState,
    grantees: &Grantees,
    settings: &Settings,
    now: Timestamp,
    out: &mut Vec<Finding>,
) {
    let admins_group = BuiltinGroup::Administrators.object_name();
    let admin_privileges = grantees.groups.get(admins_group);
    let (admins, _) = group_members(
        state,
        grantees,
        state.members.values().map(Arc::as_ref),
        admins_group,
        now,
    );
    let mut groups_edit = Vec::new();
    let mut activities = Vec::new();
    for m in state.members.values() {
        let eff = member_effective(state, grantees, m, now);
        let in_admins = admins.contains(&m.name);
        if holds_groups_edit(&eff.privileges) {
            groups_edit.push(member(&m.name));
        }
        if !in_admins && holds_activities_view(&eff.privileges) {
            activities.push(member(&m.name));
        }
        if !in_admins && admin_privileges.is_some_and(|a| !a.is_empty() && eff.privileges.covers(a))
        {
            out.push(Finding {
                id: "administrator-equivalent",
                severity: Severity::Warning,
                objects: vec![member(&m.name)],
                message: format!("{} holds everything Administrators holds through other groups", m.name),
                practice: "only a few select users in the Administrators group",
                source: MANAGE_ACCESS,
                fix: "grant the member only the privileges their task needs (a group without Groups Edit), or make them an administrator openly".into(),
            });
        }
        if console_access(&eff) == ConsoleAccess::MissingOrganizationView
            && !eff.privileges.is_empty()
        {
            out.push(Finding {
                id: "console-without-organization-view",
                severity: Severity::Warning,
                objects: vec![member(&m.name)],
                message: format!("{} holds console privileges but not Organization › Organization: View, so cannot open the console", m.name),
                practice: "Organization View is needed to use the console",
                source: PRIVILEGES,
                fix: "add Organization › Organization: View to one of the member's groups, or remove the console privileges".into(),
            });
        }
    }
    if groups_edit.len() > settings.groups_edit_max {
        out.push(Finding {
            id: "groups-edit-holders",
            severity: Severity::Warning,
            message: format!(
                "{} members hold Groups Edit (at most {} advised): each can grant others privileges",
                groups_edit.len(),
                settings.groups_edit_max
            ),
            objects: groups_edit,
            practice: "grant Edit on Groups to the smallest possible number of people",
            source: MANAGE_ACCESS,
            fix: "keep Groups Edit for the authority that manages access rights; give others View on Groups".into(),
        });
    }
    if admins.len() > settings.administrators_max {
        out.push(Finding {
            id: "administrators-size",
            severity: Severity::Warning,
            message: format!(
                "Administrators has {} active members (at most {} advised)",
                admins.len(),
                settings.administrators_max
            ),
            objects: admins.iter().map(|n| member(n)).collect(),
            practice: "only a few select users in the Administrators group",
            source: MANAGE_ACCESS,
            fix: "move members whose tasks allow it to a role group (for an integrator: Full access minus Groups)".into(),
        });
    }
    if !activities.is_empty() {
        out.push(Finding {
            id: "activities-view-holders",
            severity: Severity::Info,
            message: format!(
                "{} members outside Administrators hold Activities View: they see every activity of the organization, including pages they cannot open",
                activities.len()
            ),
            objects: activities,
            practice: "Activities View shows every activity of the organization",
            source: PRIVILEGES,
            fix: "grant Activities View only to those who audit the organization".into(),
        });
    }
}

fn groups_findings(state: &OrgState, grantees: &Grantees, out: &mut Vec<Finding>) {
    // The groups someone is in, by either route (`membership_in`, whatever
    // the phase), in one pass over the members rather than one per group.
    let with_sets: Vec<&GroupDef> = state
        .groups
        .values()
        .filter(|g| !g.identity_sets.is_empty())
        .map(Arc::as_ref)
        .collect();
    let mut joined: BTreeSet<&str> = BTreeSet::new();
    for m in state.members.values() {
        joined.extend(m.groups.iter().map(String::as_str));
        for g in &with_sets {
            if g.identity_sets.iter().any(|s| s.matches(m)) {
                joined.insert(&g.name);
            }
        }
    }
    for g in state.groups.values().filter(|g| g.builtin.is_none()) {
        if !joined.contains(g.name.as_str()) {
            out.push(Finding {
                id: "group-without-members",
                severity: Severity::Info,
                objects: vec![format!("Group/{}", g.name)],
                message: format!("group {} has no members", g.name),
                practice: "grant the minimum privileges a task needs",
                source: LEAST_PRIVILEGE,
                fix: "delete the group, or invite the members it was made for".into(),
            });
        }
        if let Some(original) = g.duplicate_of.as_deref().and_then(|o| state.groups.get(o))
            && grantees.groups.get(&g.name) == grantees.groups.get(&original.name)
        {
            out.push(Finding {
                id: "identical-duplicate",
                severity: Severity::Info,
                objects: vec![
                    format!("Group/{}", g.name),
                    format!("Group/{}", original.name),
                ],
                message: format!(
                    "group {} grants exactly what {} grants",
                    g.name, original.name
                ),
                practice: "grant the minimum privileges a task needs",
                source: MANAGE_ACCESS,
                fix: format!(
                    "narrow {}'s privileges to its task, or use {} itself",
                    g.name, original.name
                ),
            });
        }
    }
}

fn keys_findings(
    state: &OrgState,
    grantees: &Grantees,
    settings: &Settings,
    now: Timestamp,
    out: &mut Vec<Finding>,
) {
    for k in state.api_keys.values() {
        let standing = Standing::of(k, now);
        if !standing.is_live() {
            continue;
        }
        let template = k.template.unwrap_or(ApiKeyTemplate::Custom);
        let object = vec![format!("ApiKey/{}", k.name)];
        let cap = template.max_lifetime_days();
        let (days, _) = effective_lifetime_days(template, k.lifetime.as_deref());
        if k.lifetime.is_none() {
            out.push(Finding {
                id: "key-without-expiry",
                severity: Severity::Info,
                objects: object.clone(),
                message: format!(
                    "API key {} sets no lifetime: it lives the template's cap, {cap} days",
                    k.name
                ),
                practice: "grant the minimum privileges a task needs",
                source: PRIVILEGES,
                fix: "set spec.lifetime to how long the key's consumer needs it".into(),
            });
        } else if days * 100 >= cap * settings.key_cap_percent {
            out.push(Finding {
                id: "key-near-cap",
                severity: Severity::Info,
                objects: object.clone(),
                message: format!("API key {} lives {days} of at most {cap} days", k.name),
                practice: "grant the minimum privileges a task needs",
                source: PRIVILEGES,
                fix: "shorten spec.lifetime and rotate the key instead".into(),
            });
        }
        // A key that can be public is judged by what its template allows:
        // the Usage analytics and Search pages templates are meant to be
        // exposed, so holding what they give is no finding; holding more
        // (explicit privileges or access-list grants beyond the template) is.
        let held = grantees.api_keys.get(&k.name).cloned().unwrap_or_default();
        let allowed = template.privileges();
        if template.privacy() == Privacy::CanBePublic && !allowed.covers(&held) {
            out.push(Finding {
                id: "public-key-beyond-search",
                severity: Severity::Critical,
                objects: object,
                message: format!(
                    "API key {} can be public (template {template:?}) yet holds more than its template allows: {}",
                    k.name,
                    allowed.missing(&held)
                ),
                practice: "grant the minimum privileges a task needs",
                source: PRIVILEGES,
                fix: "keep a public key to what its template gives (executing queries, pushing analytics); use a private key for the rest".into(),
            });
        }
    }
}

/// The id of [`unused_keys`]'s finding. Asked for explicitly (`orgaccess
/// advise --unused-key-days`), so not among [`IDS`]: only the asker knows
/// whether the organization's keys are verified by the decision service,
/// which is what records their use.
pub const KEY_UNUSED: &str = "key-unused";

/// Live keys not used for `days` days: their last use (`status.lastUsedAt`,
/// in `last_used`) or, never used, their creation is older than that. A key
/// with neither (a manifest not applied) is not judged.
pub fn unused_keys(
    state: &OrgState,
    last_used: &std::collections::BTreeMap<String, Timestamp>,
    days: i64,
    now: Timestamp,
) -> Vec<Finding> {
    let since = now.saturating_sub(jiff::SignedDuration::from_hours(24 * days.max(0)));
    let Ok(since) = since else {
        return Vec::new();
    };
    let ago = |t: Timestamp| now.duration_since(t).as_hours() / 24;
    state
        .api_keys
        .values()
        .filter(|k| Standing::of(k, now).is_live())
        .filter_map(|k| {
            let message = match (last_used.get(&k.name), k.created) {
                (Some(&used), _) if used < since => format!(
                    "API key {} was last used at {used}, {} days ago",
                    k.name,
                    ago(used)
                ),
                (None, Some(created)) if created < since => format!(
                    "API key {} has not been used since it was created, {} days ago",
                    k.name,
                    ago(created)
                ),
                _ => return None,
            };
            Some(Finding {
                id: KEY_UNUSED,
                severity: Severity::Info,
                objects: vec![format!("ApiKey/{}", k.name)],
                message,
                practice: "grant the minimum privileges a task needs",
                source: PRIVILEGES,
                fix: "disable the key (spec.enabled: false) or delete it if nobody needs it; a key used only where the decision service does not verify it records no use".into(),
            })
        })
        .collect()
}

fn references_findings(state: &OrgState, out: &mut Vec<Finding>) {
    use crate::model::Kind;
    use crate::rules::Object;
    let objects = state
        .groups
        .values()
        .map(|g| (Kind::Group, &g.name, Object::Group(g)))
        .chain(
            state
                .members
                .values()
                .map(|m| (Kind::Member, &m.name, Object::Member(m))),
        )
        .chain(
            state
                .api_keys
                .values()
                .map(|k| (Kind::ApiKey, &k.name, Object::ApiKey(k))),
        );
    for (kind, name, object) in objects {
        let missing = unresolved_references(state, object, name);
        if missing.is_empty() {
            continue;
        }
        let what: Vec<String> = missing
            .iter()
            .map(|u| format!("{} ({})", u.describe(), u.field))
            .collect();
        out.push(Finding {
            id: "unresolved-reference",
            severity: Severity::Warning,
            objects: vec![format!("{kind}/{name}")],
            message: format!(
                "{kind} {name} names what does not exist: {}",
                what.join(", ")
            ),
            practice: "grant the minimum privileges a task needs",
            source: MANAGE_ACCESS,
            fix: "create the missing objects or remove the names".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Service;
    use crate::effective::resolve_grantees;
    use crate::model::{GroupDef, MemberDef};
    use crate::privilege::{AccessLevel, spec};

    fn with_members(
        groups: &[(&str, Vec<crate::privilege::PrivilegeSpec>)],
        members: &[(&str, &[&str])],
    ) -> OrgState {
        let mut s = OrgState::default();
        for (name, privileges) in groups {
            s.groups.insert(
                name.to_string(),
                Arc::new(GroupDef {
                    name: name.to_string(),
                    privileges: privileges.clone(),
                    ..GroupDef::default()
                }),
            );
        }
        for (name, gs) in members {
            s.members.insert(
                name.to_string(),
                Arc::new(MemberDef {
                    name: name.to_string(),
                    groups: gs.iter().map(|g| g.to_string()).collect(),
                    accepted: true,
                    ..MemberDef::default()
                }),
            );
        }
        s
    }

    fn ids(s: &OrgState) -> Vec<&'static str> {
        review(
            s,
            &resolve_grantees(s),
            &Settings::default(),
            Timestamp::now(),
        )
        .iter()
        .map(|f| f.id)
        .collect()
    }

    /// Seed 002 and the catalog: the Usage analytics and Search pages
    /// templates are made for public keys; a key is a finding only when it
    /// holds more than its template allows.
    #[test]
    fn a_public_template_key_is_judged_by_its_template() {
        use crate::builtin::ApiKeyTemplate::{self, *};
        use crate::model::ApiKeyDef;
        let key = |template: ApiKeyTemplate, extra: Vec<crate::privilege::PrivilegeSpec>| {
            let mut s = OrgState::default();
            s.api_keys.insert(
                "k".into(),
                Arc::new(ApiKeyDef {
                    name: "k".into(),
                    template: Some(template),
                    privileges: extra,
                    enabled: true,
                    lifetime: Some("P7D".into()),
                    ..ApiKeyDef::default()
                }),
            );
            ids(&s).contains(&"public-key-beyond-search")
        };
        for t in [AnonymousSearch, UsageAnalytics, SearchPages] {
            assert!(!key(t, vec![]), "{t:?} as its template gives it");
            assert!(
                key(
                    t,
                    vec![spec(Service::Organization, "Groups", AccessLevel::View)]
                ),
                "{t:?} with Groups View beyond its template"
            );
        }
        // Private templates are another finding's business.
        assert!(!key(
            AuthenticatedSearch,
            vec![spec(Service::Organization, "Groups", AccessLevel::View)]
        ));
    }

    #[test]
    fn keys_unused_for_the_threshold_are_found_by_last_use_or_creation() {
        use crate::model::ApiKeyDef;
        let now: Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        let days_ago = |d: i64| now - jiff::SignedDuration::from_hours(24 * d);
        let mut s = OrgState::default();
        for (name, created, enabled) in [
            ("used-lately", Some(days_ago(100)), true),
            ("used-long-ago", Some(days_ago(100)), true),
            ("never-used-old", Some(days_ago(40)), true),
            ("never-used-new", Some(days_ago(10)), true),
            ("not-applied", None, true),
            ("disabled-old", Some(days_ago(40)), false),
        ] {
            s.api_keys.insert(
                name.to_string(),
                Arc::new(ApiKeyDef {
                    name: name.to_string(),
                    created,
                    enabled,
                    lifetime: Some("P365D".into()),
                    ..ApiKeyDef::default()
                }),
            );
        }
        let last_used = [
            ("used-lately".to_string(), days_ago(2)),
            ("used-long-ago".to_string(), days_ago(31)),
        ]
        .into();
        let found = unused_keys(&s, &last_used, 30, now);
        let names: Vec<&str> = found.iter().map(|f| f.objects[0].as_str()).collect();
        assert_eq!(names, ["ApiKey/never-used-old", "ApiKey/used-long-ago"]);
        assert!(
            found
                .iter()
                .all(|f| f.id == KEY_UNUSED && f.severity == Severity::Info)
        );
        assert!(
            found[1].message.contains("31 days ago"),
            "{}",
            found[1].message
        );
        assert!(
            found[0]
                .message
                .contains("since it was created, 40 days ago")
        );
        assert!(unused_keys(&s, &last_used, 365, now).is_empty());
        assert!(!IDS.contains(&KEY_UNUSED), "asked for, not in every review");
    }

    #[test]
    fn too_many_groups_editors_is_a_finding_and_names_them() {
        let editors = vec![
            spec(Service::Organization, "Groups", AccessLevel::Edit),
            spec(Service::Organization, "Organization", AccessLevel::View),
        ];
        let s = with_members(&[("gm", editors)], &[("a", &["gm"])]);
        assert!(
            !ids(&s).contains(&"groups-edit-holders"),
            "one is the default maximum"
        );
        let s = with_members(
            &[("gm", s.groups["gm"].privileges.clone())],
            &[("a", &["gm"]), ("b", &["gm"]), ("c", &["gm"])],
        );
        let f = review(
            &s,
            &resolve_grantees(&s),
            &Settings::default(),
            Timestamp::now(),
        );
        let f = f
            .iter()
            .find(|f| f.id == "groups-edit-holders")
            .expect("three is two too many");
        assert_eq!(f.objects, ["Member/a", "Member/b", "Member/c"]);
    }

    #[test]
    fn a_member_without_organization_view_is_told_they_cannot_open_the_console() {
        let s = with_members(
            &[(
                "readers",
                vec![spec(Service::Content, "Sources", AccessLevel::View)],
            )],
            &[("r", &["readers"])],
        );
        assert!(ids(&s).contains(&"console-without-organization-view"));
    }

    #[test]
    fn an_empty_group_and_an_unresolved_invitation_are_findings() {
        let s = with_members(
            &[(
                "empty",
                vec![spec(
                    Service::Organization,
                    "Organization",
                    AccessLevel::View,
                )],
            )],
            &[("x", &["ghosts"])],
        );
        let found = ids(&s);
        assert!(found.contains(&"group-without-members"), "{found:?}");
        assert!(found.contains(&"unresolved-reference"), "{found:?}");
    }

    #[test]
    fn switched_off_findings_are_not_reported() {
        let s = with_members(&[("empty", vec![])], &[]);
        let mut settings = Settings::default();
        settings.disabled.insert("group-without-members".into());
        let found = review(&s, &resolve_grantees(&s), &settings, Timestamp::now());
        assert!(
            found.iter().all(|f| f.id != "group-without-members"),
            "{found:?}"
        );
    }

    #[test]
    fn every_finding_id_can_be_switched_off_by_the_organization() {
        use crate::model::{AdviceSpec, DisabledFinding, OrgDef};
        let spec = AdviceSpec {
            groups_edit_max_holders: Some(0),
            administrators_max_members: None,
            key_cap_percent: Some(50),
            elevated_membership_max_days: Some(14),
            disabled: vec![DisabledFinding {
                finding: "group-without-members".into(),
                reason: "groups are created before their members by the onboarding job".into(),
            }],
        };
        let settings = spec.settings();
        assert_eq!(settings.groups_edit_max, 0);
        assert_eq!(
            settings.administrators_max,
            Settings::default().administrators_max
        );
        assert_eq!(settings.key_cap_percent, 50);
        assert_eq!(settings.elevated_membership_max_days, 14);
        assert!(settings.disabled.contains("group-without-members"));
        assert_eq!(AdviceSpec::default().settings(), Settings::default());
        let state = OrgState {
            org: Some(OrgDef {
                advice: spec,
                ..OrgDef::default()
            }),
            ..OrgState::default()
        };
        assert_eq!(state.advice_settings(), settings);
        assert_eq!(OrgState::default().advice_settings(), Settings::default());
    }

    #[test]
    fn a_change_warns_about_the_objects_it_adds_to_a_finding_only() {
        let editors = vec![
            spec(Service::Organization, "Groups", AccessLevel::Edit),
            spec(Service::Organization, "Organization", AccessLevel::View),
        ];
        let at = |members: &[(&str, &[&str])]| {
            let s = with_members(&[("gm", editors.clone())], members);
            // How long the memberships last is another finding's concern.
            let settings = Settings {
                disabled: ["long-lived-elevated-membership".to_string()].into(),
                ..Settings::default()
            };
            review(&s, &resolve_grantees(&s), &settings, Timestamp::now())
        };
        let one = at(&[("a", &["gm"])]);
        let two = at(&[("a", &["gm"]), ("b", &["gm"])]);
        let three = at(&[("a", &["gm"]), ("b", &["gm"]), ("c", &["gm"])]);
        let w = warnings(&one, &two);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("advice groups-edit-holders (warning): 2 members"),
            "{w:?}"
        );
        assert_eq!(warnings(&two, &three).len(), 1, "c is new to the finding");
        assert!(
            warnings(&three, &two).is_empty(),
            "fewer holders is no news"
        );
        assert!(warnings(&two, &two).is_empty());
    }

    #[test]
    fn advice_warnings_are_bounded_and_skip_what_the_change_warnings_say() {
        let s = with_members(
            &(0..10)
                .map(|i| {
                    (
                        ["e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"][i],
                        vec![],
                    )
                })
                .collect::<Vec<_>>(),
            &[("x", &["ghosts"])],
        );
        let after = review(
            &s,
            &resolve_grantees(&s),
            &Settings::default(),
            Timestamp::now(),
        );
        assert!(after.iter().any(|f| f.id == "unresolved-reference"));
        let w = warnings(&[], &after);
        assert_eq!(w.len(), MAX_ADVICE_WARNINGS, "{w:?}");
        assert!(w.iter().all(|w| !w.contains("unresolved-reference")));
        assert!(w.last().unwrap().contains("more new findings"), "{w:?}");
        assert!(
            w.iter()
                .all(|w| w.len() <= crate::bounds::MAX_WARNING_BYTES)
        );
    }

    #[test]
    fn a_change_is_warned_about_the_findings_it_creates_for_its_object() {
        use crate::rules::{Change, Object, Operation};
        let editors = vec![
            spec(Service::Organization, "Groups", AccessLevel::Edit),
            spec(Service::Organization, "Organization", AccessLevel::View),
        ];
        let viewers = vec![spec(
            Service::Organization,
            "Organization",
            AccessLevel::View,
        )];
        let state = with_members(
            &[("gm", editors.clone()), ("plain", viewers)],
            &[("a", &["gm"]), ("b", &["plain"])],
        );
        let grantees = resolve_grantees(&state);
        let now = Timestamp::now();
        let members_of = |g: &str, limit| scan_members_at_most(&state, g, limit);
        let judge = |change: &Change| change_warnings(&state, &grantees, change, &members_of, now);

        // b joins the Groups editors: two holders, one more than advised.
        let b = state.members["b"].clone();
        let b_editor = MemberDef {
            groups: vec!["plain".into(), "gm".into()],
            ..(*b).clone()
        };
        let w = judge(&Change {
            operation: Operation::Update,
            name: "b",
            old: Some(Object::Member(&b)),
            new: Some(Object::Member(&b_editor)),
        });
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("advice groups-edit-holders (warning)"),
            "{w:?}"
        );
        // A change that adds no finding says nothing.
        assert!(
            judge(&Change {
                operation: Operation::Update,
                name: "b",
                old: Some(Object::Member(&b)),
                new: Some(Object::Member(&b)),
            })
            .is_empty()
        );

        // Giving b's group Groups Edit: the finding names b, a member of it.
        let plain = state.groups["plain"].clone();
        let plain_editing = GroupDef {
            privileges: editors.clone(),
            ..(*plain).clone()
        };
        let w = judge(&Change {
            operation: Operation::Update,
            name: "plain",
            old: Some(Object::Group(&plain)),
            new: Some(Object::Group(&plain_editing)),
        });
        assert!(w.iter().any(|w| w.contains("groups-edit-holders")), "{w:?}");

        // A group created empty is no news (its members come after it).
        let fresh = GroupDef {
            name: "fresh".into(),
            ..GroupDef::default()
        };
        assert!(
            judge(&Change {
                operation: Operation::Create,
                name: "fresh",
                old: None,
                new: Some(Object::Group(&fresh)),
            })
            .is_empty()
        );

        // The Organization lowering the threshold to none.
        use crate::model::{AdviceSpec, OrgDef};
        let org = OrgDef {
            name: "org".into(),
            ..OrgDef::default()
        };
        let strict = OrgDef {
            advice: AdviceSpec {
                groups_edit_max_holders: Some(0),
                ..AdviceSpec::default()
            },
            ..org.clone()
        };
        let w = judge(&Change {
            operation: Operation::Update,
            name: "org",
            old: Some(Object::Organization(&org)),
            new: Some(Object::Organization(&strict)),
        });
        assert!(w.iter().any(|w| w.contains("groups-edit-holders")), "{w:?}");
    }
}
