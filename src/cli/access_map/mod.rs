//! The access map: one organization as a matrix of members and API keys ×
//! the catalog's domains, with groups, keys and the advisor's findings
//! (`orgaccess report --html`, docs/access-map.md).
//!
//! Two steps: [`AccessMap::build`] collects the facts, every one from the
//! function its question already uses (a member's and key's privileges and
//! provenance from `explain`, the keys' standing from `explain apikey`
//! (core `apikey::Standing`), groups from `explain group`, findings from
//! core `advice::review`); [`html::render`] writes the page. Nothing here
//! computes a privilege. A cell can carry a [`Mark`] (gained or lost), so a
//! comparison of two states renders through the same page.

pub mod command;
pub mod compare;
pub mod html;
pub mod palette;
pub mod sections;

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::explain::{self, ApiKeyJson, GroupJson, Row};
use super::source::Org;
use crate::core::advice::{Finding, review};
use crate::core::catalog::{self, CATALOG, DomainId};
use crate::core::effective::{MemberPhase, resolve_grantees};
use crate::core::privilege::{AccessLevel, ResourceAccess};

/// Rows of the matrix: who holds privileges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Member,
    ApiKey,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Member => "Member",
            Kind::ApiKey => "ApiKey",
        }
    }
}

/// One cell: a principal's effective level on one domain and what grants it
/// (explain's `Row`), and, in a comparison, what changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub level: AccessLevel,
    pub can_create: Option<bool>,
    pub resources: Vec<ResourceAccess>,
    pub granted_by: Vec<String>,
    pub mark: Option<Mark>,
}

impl Cell {
    /// No privilege on the domain.
    pub fn none() -> Cell {
        Cell {
            level: AccessLevel::None,
            can_create: None,
            resources: Vec::new(),
            granted_by: Vec::new(),
            mark: None,
        }
    }
}

impl From<Row> for Cell {
    fn from(r: Row) -> Cell {
        Cell {
            level: r.level,
            can_create: r.can_create,
            resources: r.resources,
            granted_by: r.granted_by,
            mark: None,
        }
    }
}

/// What a comparison says of a cell: shown as a symbol and words, never
/// only as a colour.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub change: Change,
    /// The cell as it was (`View`, `None`, `Custom (jira View)`...).
    pub before: String,
    /// What causes the change (a group, template or access-list entry).
    pub causes: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Held now and not before, or more than before.
    Gained,
    /// Held before and not now, or less than before.
    Lost,
    /// Some of both (Edit on one resource traded for another).
    Changed,
}

/// One row: a member or an API key.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub kind: Kind,
    pub name: String,
    /// The member's username, or the key's display name.
    pub identity: String,
    /// Active, Pending, Expired (members); Active, Disabled, Expired (keys).
    pub phase: String,
    /// A member's groups (active or not) or a key's template: what the filter matches.
    pub groups: Vec<String>,
    /// The non-None cells, by domain.
    pub cells: BTreeMap<DomainId, Cell>,
}

impl Principal {
    pub fn cell(&self, d: DomainId) -> Option<&Cell> {
        self.cells.get(&d)
    }
}

/// Everything the page shows.
#[derive(Debug)]
pub struct AccessMap {
    pub namespace: String,
    /// What the page is about, e.g. "manifests" or a comparison's two sides.
    pub subtitle: String,
    pub generated_at: Timestamp,
    pub members: Vec<Principal>,
    pub keys: Vec<Principal>,
    pub groups: Vec<GroupJson>,
    pub key_details: Vec<ApiKeyJson>,
    pub findings: Vec<Finding>,
    /// For a comparison: what the change does besides the cells' marks.
    pub changes: Option<compare::Changes>,
}

/// A row's cells from explain's rows (rows naming no catalog domain are
/// impossible: explain's rows come from privilege sets keyed by domain).
fn cells(rows: Vec<Row>) -> BTreeMap<DomainId, Cell> {
    rows.into_iter()
        .filter_map(|r| catalog::lookup(r.service, &r.domain).map(|d| (d, Cell::from(r))))
        .collect()
}

fn phase_text(p: MemberPhase) -> String {
    format!("{p:?}")
}

impl AccessMap {
    /// The organization's map at `now`, from the same functions as
    /// `explain member|apikey|group -o json` and `advise` (with the
    /// Organization's advisor settings, as the operator reads them).
    pub fn build(org: &Org, subtitle: &str, now: Timestamp) -> AccessMap {
        let state = &org.state;
        let grantees = resolve_grantees(state);
        let members = state
            .members
            .keys()
            .map(|name| {
                let j = explain::explain_member(org, name, &grantees, now);
                Principal {
                    kind: Kind::Member,
                    name: j.name,
                    identity: j.identity.username,
                    phase: phase_text(j.phase),
                    groups: j.groups.into_iter().map(|g| g.group).collect(),
                    cells: cells(j.privileges),
                }
            })
            .collect();
        let key_details: Vec<ApiKeyJson> = state
            .api_keys
            .keys()
            .map(|name| explain::explain_api_key(org, name, &grantees, now))
            .collect();
        let keys = key_details
            .iter()
            .map(|j| Principal {
                kind: Kind::ApiKey,
                name: j.name.clone(),
                identity: j.display_name.clone().unwrap_or_default(),
                phase: j.phase.clone(),
                groups: j.template.iter().cloned().collect(),
                cells: cells(j.privileges.clone()),
            })
            .collect();
        let groups = state
            .groups
            .keys()
            .map(|name| explain::explain_group(org, name, &grantees, now))
            .collect();
        let findings = review(state, &grantees, &state.advice_settings(), now);
        AccessMap {
            namespace: org.namespace.clone(),
            subtitle: subtitle.to_string(),
            generated_at: now,
            members,
            keys,
            groups,
            key_details,
            findings,
            changes: None,
        }
    }

    /// The matrix's columns: every domain of the catalog, in its order
    /// (service, then domain).
    pub fn columns() -> impl Iterator<Item = DomainId> {
        (0..CATALOG.len()).map(|i| i as DomainId)
    }
}
