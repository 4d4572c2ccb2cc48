//! The command `orgaccess report --html`: the access map of an organization
//! (manifests or the cluster) as one self-contained HTML page
//! (docs/access-map.md), on standard output or in `--html-file FILE`.
//! [`HtmlArgs`] are the same flags on `orgaccess diff`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use jiff::Timestamp;

use super::{AccessMap, html};
use crate::cli::source::{self, SourceArgs, Subject};
use crate::cli::{ClusterArgs, EXIT_OK, emit, fail};

/// `--html` and `--html-file`, for every command that writes the page.
#[derive(Args, Clone, Debug, Default)]
pub struct HtmlArgs {
    /// Write the access map as one self-contained HTML page
    /// (docs/access-map.md), to standard output or --html-file.
    #[arg(long)]
    pub html: bool,
    /// Write the page to this file instead of standard output (implies --html).
    #[arg(long, value_name = "FILE")]
    pub html_file: Option<PathBuf>,
}

impl HtmlArgs {
    /// The page is asked for.
    pub fn wanted(&self) -> bool {
        self.html || self.html_file.is_some()
    }

    /// Writes the page to `--html-file` or standard output.
    pub fn write(&self, page: &str) -> anyhow::Result<()> {
        match &self.html_file {
            Some(path) => std::fs::write(path, page)
                .with_context(|| format!("cannot write {}", path.display())),
            None => {
                emit(page);
                Ok(())
            }
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub html: HtmlArgs,
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

async fn report(args: &ReportArgs, cluster: &ClusterArgs) -> anyhow::Result<()> {
    if !args.html.wanted() {
        bail!("give --html (or --html-file FILE): the access map is an HTML page");
    }
    let org = source::organization(&args.source, cluster, Subject::Any).await?;
    let map = AccessMap::build(
        &org,
        &described(&args.source, &org.namespace),
        Timestamp::now(),
    );
    args.html.write(&html::render(&map))
}

pub async fn run(args: ReportArgs, cluster: &ClusterArgs) -> i32 {
    match report(&args, cluster).await {
        Ok(()) => EXIT_OK,
        Err(e) => fail(&e),
    }
}
