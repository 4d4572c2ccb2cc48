//! `orgaccess report --html`: the access map of an organization (manifests
//! or the cluster) as one self-contained HTML page (`access_map`,
//! docs/access-map.md), on standard output or in `--output FILE`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use jiff::Timestamp;

use super::access_map::{AccessMap, html};
use super::source::{self, SourceArgs, Subject};
use super::{ClusterArgs, EXIT_OK, emit, fail};

#[derive(Args, Clone, Debug)]
pub struct ReportArgs {
    /// Write the access map as one self-contained HTML page (the only
    /// format so far; required, so that other formats can come).
    #[arg(long, required = true)]
    pub html: bool,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Where the organization was read from, as the page says it.
pub fn described(src: &SourceArgs, namespace: &str) -> String {
    if src.files.is_empty() {
        format!("Read from the cluster, namespace {namespace}")
    } else {
        let files: Vec<String> = src.files.iter().map(|p| p.display().to_string()).collect();
        format!("Read from the manifests {}", files.join(", "))
    }
}

/// Writes the page to `--output` or standard output.
pub fn write(page: &str, output: Option<&PathBuf>) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            emit(page);
            Ok(())
        }
    }
}

pub async fn run(args: ReportArgs, cluster: &ClusterArgs) -> i32 {
    let org = match source::organization(&args.source, cluster, Subject::Any).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let map = AccessMap::build(
        &org,
        &described(&args.source, &org.namespace),
        Timestamp::now(),
    );
    match write(&html::render(&map), args.output.as_ref()) {
        Ok(()) => EXIT_OK,
        Err(e) => fail(&e),
    }
}
