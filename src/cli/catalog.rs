//! `orgaccess catalog`: the privilege catalog as a table.

use crate::core::catalog::{CATALOG, Create, Evidence};

/// Prints every service and domain, the levels it offers and its evidence.
pub fn print() {
    println!("{:<16} {:<28} {:<34} NOTES", "SERVICE", "DOMAIN", "LEVELS");
    for d in CATALOG {
        let o = d.offers;
        let mut levels = Vec::new();
        for (on, name) in [
            (o.view, "View"),
            (o.edit, "Edit"),
            (o.allowed, "Allowed"),
            (o.push, "Push"),
            (o.custom.is_some(), "Custom"),
        ] {
            if on {
                levels.push(name);
            }
        }
        match o.create {
            Create::No => {}
            Create::WithEdit => levels.push("CanCreate(with Edit)"),
            Create::Choosable => levels.push("CanCreate"),
        }
        let note = match d.evidence {
            Evidence::Documented => String::new(),
            Evidence::Noted(note) => note.to_string(),
            Evidence::Inferred(why) => format!("inferred: {why}"),
        };
        println!(
            "{:<16} {:<28} {:<34} {}",
            d.service.as_str(),
            d.name,
            levels.join(","),
            note
        );
    }
}
