//! The command line for GitOps pipelines and access questions (`docs/cli.md`).
//!
//! - `orgaccess catalog`: the services, domains and levels the platform offers.
//! - `orgaccess advise`: the least-privilege advisor's findings (exit 1 at `--fail-on`).
//! - `orgaccess review`: access reviews due or overdue; the AccessReview an owner records.
//! - `orgaccess check PATHS...`: validate manifests offline with the admission
//!   rules ([`crate::core::rules::check`]), the same verdict and words as the webhook.
//! - `orgaccess explain member|apikey NAME`: effective privileges with provenance.
//! - `orgaccess who-can VERB SERVICE/DOMAIN[/RESOURCE]`: members and API keys that can.
//! - `orgaccess can-i VERB SERVICE/DOMAIN[/RESOURCE] --member|--api-key|--as`: one decision, like `kubectl auth can-i`.
//! - `orgaccess diff BASE HEAD` / `--git A..B` / `--cluster`: what a change does
//!   to access (core [`crate::core::diff`]), with `--fail-on` for CI.
//! - `orgaccess duplicate group NAME`: a duplicate of a group, as a manifest.
//! - `orgaccess report --html`: the access map, one self-contained page (`docs/access-map.md`).
//! - `orgaccess import FILE` / `orgaccess export`: the platform's JSON to
//!   manifests and back (`docs/import-export.md`).
//!
//! The questions read the organization from manifests (`-f PATH`) or from the
//! cluster. Every command prints aligned, sorted tables (colour only on a
//! terminal without `NO_COLOR`) or JSON (`-o json`), and never panics on bad
//! input: it names the file and document and exits non-zero.
//!
//! Exit codes: 0 success; 1 a check found denied objects or invalid
//! documents (or a duplicate would be denied); 2 the command could not answer
//! (unreadable path, invalid manifests for a question, unknown name, cluster
//! unreachable, bad arguments).

pub mod access_map;
pub mod activity;
pub mod advise;
pub mod can_i;
pub mod catalog;
pub mod check;
pub mod cluster;
pub mod completion;
pub mod diff;
pub mod duplicate;
pub mod explain;
pub mod export;
pub mod identity;
pub mod import;
pub mod manifest;
pub mod output;
pub mod report;
pub mod review;
pub mod schema;
pub mod source;
pub mod who_can;

use std::io::Write;

/// Exit code: the command ran and found nothing wrong.
pub const EXIT_OK: i32 = 0;
/// Exit code: denied objects or invalid documents.
pub const EXIT_FINDINGS: i32 = 1;
/// Exit code: the command could not answer.
pub const EXIT_ERROR: i32 = 2;

pub use cluster::ClusterArgs;
pub use output::OutputFormat;

/// Writes to standard output; a closed pipe (`| head`) is not an error.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes to standard error.
pub fn emit_err(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// Prints an error that stops the command, and returns [`EXIT_ERROR`].
pub fn fail(e: &anyhow::Error) -> i32 {
    let style = output::Styles::stderr();
    emit_err(&format!("{}: {e:#}\n", style.error("error")));
    EXIT_ERROR
}
