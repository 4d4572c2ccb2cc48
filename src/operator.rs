//! The processes the chart deploys: `orgaccess run` (controller and webhook
//! in one process, reading one index) and `orgaccess webhook` (the webhook
//! alone). `main` parses the flags into [`RunArgs`] or [`WebhookOnlyArgs`]
//! and calls [`run`] or [`webhook_only`]; everything else is wired here.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;

use crate::admin::ReadyCheck;
use crate::controller::{self, ControllerArgs, Readiness};
use crate::decision::usage::{Usage, UsageMetrics};
use crate::index::watch::{Caches, WatchArgs};
use crate::webhook::{Webhook, WebhookArgs};

/// The flags of `orgaccess run`: one struct per component.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub watch: WatchArgs,
    /// Do not serve the admission webhook from this process.
    #[arg(long, env = "ORGACCESS_NO_WEBHOOK")]
    pub no_webhook: bool,
    #[command(flatten)]
    pub webhook: WebhookArgs,
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Boxed: the flags are many and seldom read, and `main`'s command enum
    /// should stay small.
    #[command(flatten)]
    pub decision: Box<crate::decision::DecisionArgs>,
}

/// The flags of `orgaccess webhook`.
#[derive(Clone, Debug, clap::Args)]
pub struct WebhookOnlyArgs {
    #[command(flatten)]
    pub webhook: WebhookArgs,
    #[command(flatten)]
    pub watch: WatchArgs,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// The plain-HTTP admin server's flags.
#[derive(Clone, Debug, clap::Args)]
pub struct AdminArgs {
    /// Address of the plain-HTTP admin server: /healthz, /readyz, /metrics, /activity.
    #[arg(
        long = "admin-addr",
        env = "ORGACCESS_ADMIN_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub addr: SocketAddr,
    /// Seconds to keep serving after SIGTERM before closing the listeners:
    /// a deleted pod leaves the Service's endpoints while it is told to
    /// stop, and every node's proxy takes a moment to stop routing to it.
    /// Closing at once refuses the calls still routed here (an admission
    /// refused during a rollout). The chart sets 5.
    #[arg(
        long = "shutdown-delay-seconds",
        env = "ORGACCESS_SHUTDOWN_DELAY_SECONDS",
        default_value_t = 0
    )]
    pub shutdown_delay_seconds: u64,
}

/// `shutdown`, then `seconds` more of serving (see
/// [`AdminArgs::shutdown_delay_seconds`]).
async fn after_delay(shutdown: impl Future<Output = ()> + Send + 'static, seconds: u64) {
    shutdown.await;
    if seconds > 0 {
        tracing::info!(
            seconds,
            "still serving while the cluster stops routing to this pod"
        );
        tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    }
}

/// Installs the TLS crypto provider (once per process) and connects to the
/// cluster from the environment (in-cluster or kubeconfig).
async fn connect() -> anyhow::Result<kube::Client> {
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    Ok(kube::Client::try_default().await?)
}

/// `orgaccess webhook`: serves admission until `shutdown` resolves.
pub async fn webhook_only(
    args: WebhookOnlyArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = connect().await?;
    let served = crate::webhook::serve(
        client,
        args.webhook.config(),
        args.watch.scope(),
        args.admin.addr,
        after_delay(shutdown, args.admin.shutdown_delay_seconds),
    )
    .await;
    if let Err(e) = &served {
        tracing::error!(error = %format!("{e:#}"), "the webhook stopped; exiting");
    }
    served
}

/// A shutdown signal many tasks can wait for.
#[derive(Clone)]
struct Stop {
    requested: Arc<AtomicBool>,
    rx: tokio::sync::watch::Receiver<bool>,
}

impl Stop {
    /// Fires when `signal` resolves.
    fn on(signal: impl Future<Output = ()> + Send + 'static) -> Stop {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let requested = Arc::new(AtomicBool::new(false));
        let flag = requested.clone();
        tokio::spawn(async move {
            signal.await;
            flag.store(true, Ordering::SeqCst);
            let _ = tx.send(true);
        });
        Stop { requested, rx }
    }

    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// What a listener's task ending means: an error unless shutdown was asked for.
    fn listener_ended(
        &self,
        what: &str,
        joined: Result<anyhow::Result<()>, tokio::task::JoinError>,
    ) -> anyhow::Result<()> {
        match joined {
            Ok(Err(e)) => Err(e.context(format!("the {what} stopped"))),
            Err(e) => Err(anyhow::anyhow!("the {what} task failed: {e}")),
            Ok(Ok(())) if self.requested.load(Ordering::SeqCst) => Ok(()),
            Ok(Ok(())) => Err(anyhow::anyhow!("the {what} stopped serving unexpectedly")),
        }
    }
}

/// `orgaccess run`: one watch per kind for the whole process; every replica
/// serves the webhook from that index, only the leader reconciles.
pub async fn run(
    args: RunArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = connect().await?;
    let scope = args.watch.scope();
    let caches = Caches::start(&client, &scope);
    let mut registry = Registry::default();
    caches.register_metrics(&mut registry);
    let registry = Arc::new(Mutex::new(registry));
    let readiness = Readiness::default();
    let stop = Stop::on(after_delay(shutdown, args.admin.shutdown_delay_seconds));

    let mut checks: Vec<ReadyCheck> = vec![{
        let r = readiness.clone();
        Arc::new(move || r.is_ready())
    }];
    let mut activity = None;
    let mut webhook_task = if args.no_webhook {
        None
    } else {
        let hook = Webhook::with_caches(
            client.clone(),
            args.webhook.config(),
            registry.clone(),
            caches.clone(),
        )?;
        let h = hook.clone();
        checks.push(Arc::new(move || h.readiness()));
        activity = Some(hook.activity_router(client.clone()));
        Some(tokio::spawn(hook.run(stop.stopped())))
    };
    let decision_on = args.decision.enabled();
    let usage = Arc::new(Usage::new(args.decision.usage_interval));
    // Every replica serves decisions, so every replica writes its own
    // uses (at most once per key per interval; decision/usage.rs).
    let request_metrics = Arc::new(crate::decision::metrics::Metrics::default());
    if decision_on {
        request_metrics.register(&mut registry.lock().unwrap_or_else(|e| e.into_inner()));
    }
    let usage_flusher = decision_on.then(|| {
        let metrics =
            UsageMetrics::register(&mut registry.lock().unwrap_or_else(|e| e.into_inner()));
        tokio::spawn(crate::decision::usage::flush_every(
            usage.clone(),
            caches.index.clone(),
            client.clone(),
            metrics,
            stop.stopped(),
        ))
    });
    let mut decision = tokio::spawn(crate::decision::serve(
        (*args.decision).clone(),
        caches.index.clone(),
        usage,
        request_metrics,
        Some(client.clone()),
        stop.stopped(),
    ));
    let mut admin = tokio::spawn(crate::admin::serve(
        args.admin.addr,
        registry.clone(),
        checks,
        activity,
        stop.stopped(),
    ));
    // A listener that stops (cannot bind, fails) ends the process with the
    // reason: a replica that reports ready but serves nothing would be worse.
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
        args.controller,
        registry,
        readiness,
        stop.stopped()
    ));
    let (mut admin_done, mut webhook_done, mut decision_done) = (false, false, !decision_on);
    let result = loop {
        tokio::select! {
            r = &mut controller => break r,
            r = &mut admin, if !admin_done => {
                admin_done = true;
                if let Err(e) = stop.listener_ended("admin server", r) {
                    break Err(e);
                }
            }
            r = &mut decision, if !decision_done => {
                decision_done = true;
                if let Err(e) = stop.listener_ended("decision service", r) {
                    break Err(e);
                }
            }
            r = &mut webhook_ended, if !webhook_done => {
                webhook_done = true;
                if let Err(e) = stop.listener_ended("webhook", r) {
                    break Err(e);
                }
            }
        }
    };
    admin.abort();
    decision.abort();
    if let Some(flusher) = usage_flusher {
        // Shutdown asked: it writes the last interval's uses (bounded) first.
        if stop.requested.load(Ordering::SeqCst) {
            let _ = flusher.await;
        } else {
            flusher.abort();
        }
    }
    if let Some(task) = webhook_abort {
        task.abort();
    }
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "exiting");
    }
    result
}

#[cfg(test)]
mod tests {
    use clap::Args;

    /// Flag names are unique across the flattened structs (clap checks this
    /// only when the command is built, i.e. at startup).
    #[test]
    fn flags_of_every_process_are_consistent() {
        super::RunArgs::augment_args(clap::Command::new("run")).debug_assert();
        super::WebhookOnlyArgs::augment_args(clap::Command::new("webhook")).debug_assert();
    }
}
