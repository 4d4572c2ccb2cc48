//! The `orgaccess` command line as a user runs it: check, explain, import/export, tools,
//! the demo script and the Helm chart.
//!
//! One test binary for these modules, so they share one control plane (tests/support)
//! and one build; each module is one subject. Run one with `cargo test --test cli MODULE::`.

#[path = "../generators/mod.rs"]
mod generators;
#[path = "../support/mod.rs"]
mod support;

mod access_map;
mod access_map_diff;
mod chart;
mod ci_recipes;
mod cli;
mod cli_tools;
mod demo;
mod diff;
mod formats;
mod import_export;
mod review;
mod runner;
mod webdriver;
