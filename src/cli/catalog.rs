//! `orgaccess catalog`: every service and domain, and what each offers
//! (levels, Can Create, the resources a Custom grant names), as a table or as
//! JSON/YAML rows.

use clap::Args;
use serde::Serialize;

use super::output::{OutputFormat, Table, cell};
use super::{EXIT_OK, emit};
use crate::core::catalog::{CATALOG, Create, Domain, Evidence, ResourceKind};

#[derive(Args, Clone, Debug)]
pub struct CatalogArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// One domain, as `-o json|yaml` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub service: &'static str,
    pub domain: &'static str,
    /// The console's wording.
    pub display: &'static str,
    /// `owner/targetDomain` in the platform's API.
    pub api: &'static str,
    /// View, Edit, Allowed, Push, Custom: the levels the domain offers.
    pub levels: Vec<&'static str>,
    /// `no`, `withEdit` (Edit implies it) or `choosable` (also with View or Custom).
    pub can_create: &'static str,
    /// What a Custom grant names, when the domain offers Custom.
    pub custom_resources: Option<ResourceKind>,
    /// Where the row comes from when it is not plainly documented.
    pub note: Option<String>,
}

fn row(d: &Domain) -> Row {
    let o = d.offers;
    let levels = [
        (o.view, "View"),
        (o.edit, "Edit"),
        (o.allowed, "Allowed"),
        (o.push, "Push"),
        (o.custom.is_some(), "Custom"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    Row {
        service: d.service.as_str(),
        domain: d.name,
        display: d.display,
        api: d.api,
        levels,
        can_create: match o.create {
            Create::No => "no",
            Create::WithEdit => "withEdit",
            Create::Choosable => "choosable",
        },
        custom_resources: o.custom,
        note: match d.evidence {
            Evidence::Documented => None,
            Evidence::Noted(note) => Some(note.to_string()),
            Evidence::Inferred(why) => Some(format!("inferred: {why}")),
        },
    }
}

/// The table: LEVELS lists the levels, then Can Create as the catalog offers it.
fn human(rows: &[Row]) -> String {
    let mut t = Table::new(&["SERVICE", "DOMAIN", "LEVELS", "NOTES"]);
    for r in rows {
        let mut levels = r.levels.clone();
        match r.can_create {
            "withEdit" => levels.push("CanCreate(with Edit)"),
            "choosable" => levels.push("CanCreate"),
            _ => {}
        }
        t.row(vec![
            cell(r.service),
            cell(r.domain),
            cell(levels.join(",")),
            cell(r.note.clone().unwrap_or_default()),
        ]);
    }
    t.render(super::output::Styles::plain())
}

pub fn run(args: CatalogArgs) -> i32 {
    let rows: Vec<Row> = CATALOG.iter().map(row).collect();
    emit(&args.output.render(&rows, || human(&rows)));
    EXIT_OK
}
