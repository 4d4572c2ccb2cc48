//! The `orgaccess` binary: the operator (`run`, `webhook`) and the CLI.
// One audited `unsafe` (the SIGPIPE reset below); the library forbids it.
#![deny(unsafe_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use orgaccess::controller::{self, ControllerArgs, Readiness};
use orgaccess::index::watch::{Caches, WatchArgs};
use prometheus_client::registry::Registry;

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
    /// Run the operator: the controller (and health, readiness and metrics endpoints).
    Run {
        #[command(flatten)]
        controller: ControllerArgs,
        #[command(flatten)]
        watch: WatchArgs,
        /// Do not serve the admission webhook from this process.
        #[arg(long, env = "ORGACCESS_NO_WEBHOOK")]
        no_webhook: bool,
        #[command(flatten)]
        webhook: orgaccess::webhook::WebhookArgs,
        /// Address of the plain-HTTP admin server: /healthz, /readyz, /metrics, /activity.
        #[arg(long, env = "ORGACCESS_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
        admin_addr: SocketAddr,
    },
    /// Run only the admission webhook (HTTPS /validate; /healthz, /readyz, /metrics, /activity on the admin port).
    Webhook {
        #[command(flatten)]
        webhook: orgaccess::webhook::WebhookArgs,
        #[command(flatten)]
        watch: WatchArgs,
        /// Address of the plain-HTTP admin server: /healthz, /readyz, /metrics, /activity.
        #[arg(long, env = "ORGACCESS_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
        admin_addr: SocketAddr,
    },
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
    /// List admission decisions from the webhook's activity file or JSON log
    /// lines (files or stdin), as JSON, filtered (see docs/webhook.md).
    Activity(orgaccess::cli::activity::ActivityArgs),
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

/// What a listener's task ending means: an error unless shutdown was asked for.
fn listener_ended(
    what: &str,
    joined: Result<anyhow::Result<()>, tokio::task::JoinError>,
    stop_requested: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<()> {
    match joined {
        Ok(Err(e)) => Err(e.context(format!("the {what} stopped"))),
        Err(e) => Err(anyhow::anyhow!("the {what} task failed: {e}")),
        Ok(Ok(())) if stop_requested.load(std::sync::atomic::Ordering::SeqCst) => Ok(()),
        Ok(Ok(())) => Err(anyhow::anyhow!("the {what} stopped serving unexpectedly")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. } | Command::Webhook { .. }) {
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
        Command::Webhook {
            webhook,
            watch,
            admin_addr,
        } => {
            rustls::crypto::ring::default_provider()
                .install_default()
                .ok();
            let client = kube::Client::try_default().await?;
            if let Err(e) = orgaccess::webhook::serve(
                client,
                webhook.config(),
                watch.scope(),
                admin_addr,
                shutdown_signal(),
            )
            .await
            {
                tracing::error!(error = %format!("{e:#}"), "the webhook stopped; exiting");
                return Err(e);
            }
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
        Command::Duplicate(cmd) => {
            std::process::exit(orgaccess::cli::duplicate::run(cmd, &cli.cluster).await)
        }
        Command::Import(args) => {
            std::process::exit(orgaccess::cli::import::run(args, &cli.cluster))
        }
        Command::Export(args) => {
            std::process::exit(orgaccess::cli::export::run(args, &cli.cluster).await)
        }
        Command::Run {
            controller: args,
            watch,
            admin_addr,
            no_webhook,
            webhook,
        } => {
            rustls::crypto::ring::default_provider()
                .install_default()
                .ok();
            let client = kube::Client::try_default().await?;
            // One watch per kind for the whole process: the webhook and the
            // controller read the same index.
            let scope = watch.scope();
            let caches = Caches::start(&client, &scope);
            let registry = Arc::new(Mutex::new(Registry::default()));
            let readiness = Readiness::default();
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let stopped = move || {
                let mut rx = stop_rx.clone();
                async move {
                    let _ = rx.wait_for(|s| *s).await;
                }
            };
            let stop_requested = Arc::new(std::sync::atomic::AtomicBool::new(false));
            {
                let stop_requested = stop_requested.clone();
                tokio::spawn(async move {
                    shutdown_signal().await;
                    stop_requested.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = stop_tx.send(true);
                });
            }
            // Every replica serves the webhook; only the leader reconciles.
            let mut checks: Vec<orgaccess::admin::ReadyCheck> = vec![{
                let r = readiness.clone();
                Arc::new(move || r.is_ready())
            }];
            let mut activity = None;
            let mut webhook_task = if no_webhook {
                None
            } else {
                let hook = orgaccess::webhook::Webhook::with_caches(
                    client.clone(),
                    webhook.config(),
                    registry.clone(),
                    caches.clone(),
                )?;
                let h = hook.clone();
                checks.push(Arc::new(move || h.readiness()));
                activity = Some(hook.activity_router(client.clone()));
                Some(tokio::spawn(hook.run(stopped())))
            };
            let mut admin = tokio::spawn(orgaccess::admin::serve(
                admin_addr,
                registry.clone(),
                checks,
                activity,
                stopped(),
            ));
            // A listener that stops (cannot bind, fails) ends the process
            // with the reason: a replica that reports ready but serves
            // nothing would be worse.
            let webhook_abort = webhook_task.as_ref().map(|t| t.abort_handle());
            let mut webhook_ended = std::pin::pin!(async {
                match webhook_task.as_mut() {
                    Some(t) => t.await,
                    None => std::future::pending().await,
                }
            });
            let mut controller = std::pin::pin!(controller::run(
                client,
                caches,
                scope,
                args,
                registry,
                readiness,
                stopped()
            ));
            let (mut admin_done, mut webhook_done) = (false, false);
            let result = loop {
                tokio::select! {
                    r = &mut controller => break r,
                    r = &mut admin, if !admin_done => {
                        admin_done = true;
                        if let Err(e) = listener_ended("admin server", r, &stop_requested) {
                            break Err(e);
                        }
                    }
                    r = &mut webhook_ended, if !webhook_done => {
                        webhook_done = true;
                        if let Err(e) = listener_ended("webhook", r, &stop_requested) {
                            break Err(e);
                        }
                    }
                }
            };
            admin.abort();
            if let Some(task) = webhook_abort {
                task.abort();
            }
            if let Err(e) = &result {
                tracing::error!(error = %format!("{e:#}"), "exiting");
            }
            result?;
        }
    }
    Ok(())
}
