//! The `orgaccess` binary: the operator (`run`, `webhook`) and the CLI.
// One audited `unsafe` (the SIGPIPE reset below); the library forbids it.
#![deny(unsafe_code)]

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// orgaccess: manage an organization's member access as Kubernetes resources.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log filter, e.g. `info` or `orgaccess=debug,kube=info`.
    #[arg(long, global = true, env = "ORGACCESS_LOG", default_value = "info")]
    log: String,
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "ORGACCESS_LOG_FORMAT",
        default_value = "plain"
    )]
    log_format: LogFormat,
    /// `--kubeconfig`, `--context`, `-n/--namespace`, as kubectl takes them.
    #[command(flatten)]
    cluster: orgaccess::cli::ClusterArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Plain,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: the controller and the admission webhook (and health,
    /// readiness and metrics endpoints).
    Run(orgaccess::operator::RunArgs),
    /// Run only the admission webhook (HTTPS /validate; /healthz, /readyz, /metrics, /activity on the admin port).
    Webhook(orgaccess::operator::WebhookOnlyArgs),
    /// Print the privilege catalog: every service, domain and what it offers.
    Catalog(orgaccess::cli::catalog::CatalogArgs),
    /// Print the CustomResourceDefinitions as YAML (what `crds/` holds).
    Crds,
    /// Check manifests offline with the admission rules (for CI): files,
    /// directories or `-` for stdin. Exits 1 on any denied object or invalid document.
    Check(orgaccess::cli::check::CheckArgs),
    /// Explain effective privileges and where each comes from.
    #[command(subcommand)]
    Explain(orgaccess::cli::explain::ExplainCommand),
    /// List the active members and enabled API keys that can do VERB on SERVICE/DOMAIN[/RESOURCE].
    WhoCan(orgaccess::cli::who_can::WhoCanArgs),
    /// May this member, API key or Kubernetes user do VERB on
    /// SERVICE/DOMAIN[/RESOURCE]? Prints yes or no (exit 0 or 1), what grants
    /// it or what is missing, like `kubectl auth can-i`.
    CanI(orgaccess::cli::can_i::CanIArgs),
    /// Review an organization against the leading practices (least privilege):
    /// findings with an id, a severity and a fix; exits 1 at --fail-on.
    Advise(orgaccess::cli::advise::AdviseArgs),
    /// List the access reviews due or overdue (owners, last review, due
    /// date, unconfirmed and suspended members), or write the AccessReview
    /// an owner records for a group (docs/access-reviews.md).
    Review(orgaccess::cli::review::ReviewArgs),
    /// Write the access map: members and API keys × the catalog's domains,
    /// with what grants each privilege, groups, keys and the advisor's
    /// findings, as one self-contained HTML page (docs/access-map.md).
    Report(orgaccess::cli::access_map::command::ReportArgs),
    /// List admission decisions from the webhook's activity file or JSON log
    /// lines (files or stdin), as JSON, filtered (see docs/webhook.md).
    Activity(orgaccess::cli::activity::ActivityArgs),
    /// What a change does to access: BASE and HEAD manifests, a git range
    /// (--git main..HEAD) or the cluster against manifests (--cluster);
    /// exits 1 at --fail-on.
    Diff(orgaccess::cli::diff::DiffArgs),
    /// Print the manifest of a duplicate of a group.
    #[command(subcommand)]
    Duplicate(orgaccess::cli::duplicate::DuplicateCommand),
    /// Write an organization in the platform's JSON (groups, members,
    /// invitations, API keys) as manifests. Exits 1 when privileges cannot be
    /// mapped (see --allow-unknown).
    Import(orgaccess::cli::import::ImportArgs),
    /// Print an organization (manifests or the cluster) in the platform's JSON.
    Export(orgaccess::cli::export::ExportArgs),
    /// Print a shell completion script (bash, zsh or fish).
    Completion(orgaccess::cli::completion::CompletionArgs),
}

fn init_logs(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.init(),
        // The message at the top level of each line (`"message": ...`), as
        // log pipelines expect, not under `fields`.
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

/// jemalloc rather than glibc's malloc: a third less resident memory for
/// the same cached objects, and less CPU (small allocations in size classes
/// without a header, less fragmentation; freed pages given back by a
/// background thread after a burst). Measured in docs/performance.md,
/// "Results: jemalloc".
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_) | Command::Webhook(_)) {
        // A command-line tool ends quietly when its reader goes away
        // (`orgaccess catalog | head`) instead of panicking on EPIPE.
        // SAFETY: restoring the default disposition of SIGPIPE before any
        // thread writes; the servers keep Rust's default (ignored).
        #[allow(unsafe_code)]
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    if matches!(cli.command, Command::Run { .. } | Command::Webhook { .. })
        && cli.cluster.is_given()
    {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--kubeconfig, --context and -n are for the CLI commands; the operator reads KUBECONFIG or its in-cluster service account, scoped by --watch-namespace",
            )
            .exit();
    }
    init_logs(&cli.log, cli.log_format);
    match cli.command {
        Command::Catalog(args) => std::process::exit(orgaccess::cli::catalog::run(args)),
        Command::Completion(args) => {
            std::process::exit(orgaccess::cli::completion::run(args, &mut Cli::command()))
        }
        Command::Crds => print!("{}", orgaccess::api::crds_yaml()?),
        Command::Run(args) => orgaccess::operator::run(args, shutdown_signal()).await?,
        Command::Webhook(args) => {
            orgaccess::operator::webhook_only(args, shutdown_signal()).await?
        }
        Command::Check(args) => std::process::exit(orgaccess::cli::check::run(args, &cli.cluster)),
        Command::Activity(args) => {
            std::process::exit(orgaccess::cli::activity::run(args, &cli.cluster))
        }
        Command::Explain(cmd) => {
            std::process::exit(orgaccess::cli::explain::run(cmd, &cli.cluster).await)
        }
        Command::WhoCan(args) => {
            std::process::exit(orgaccess::cli::who_can::run(args, &cli.cluster).await)
        }
        Command::Advise(args) => {
            std::process::exit(orgaccess::cli::advise::run(args, &cli.cluster).await)
        }
        Command::Review(args) => {
            std::process::exit(orgaccess::cli::review::run(args, &cli.cluster).await)
        }
        Command::Report(args) => {
            std::process::exit(orgaccess::cli::access_map::command::run(args, &cli.cluster).await)
        }
        Command::CanI(args) => {
            std::process::exit(orgaccess::cli::can_i::run(args, &cli.cluster).await)
        }
        Command::Diff(args) => {
            std::process::exit(orgaccess::cli::diff::run(args, &cli.cluster).await)
        }
        Command::Duplicate(cmd) => {
            std::process::exit(orgaccess::cli::duplicate::run(cmd, &cli.cluster).await)
        }
        Command::Import(args) => {
            std::process::exit(orgaccess::cli::import::run(args, &cli.cluster))
        }
        Command::Export(args) => {
            std::process::exit(orgaccess::cli::export::run(args, &cli.cluster).await)
        }
    }
    Ok(())
}
