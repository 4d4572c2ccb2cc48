//! The running webhook ([`Webhook`]): its caches, handler and certificate,
//! the HTTPS port's routes (`POST /validate`, `POST /mutate`, served by
//! [`super::admit`]) and `orgaccess webhook` alone ([`serve`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::routing::{get, post};
use kube::Client;
use kube::runtime::events::Reporter;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::admit::{mutate, validate};
use super::limits::MAX_BODY;
use super::{ActivityLog, Config, Metrics, Validator, activity_route, configuration, tls};
use crate::index::watch::{Caches, Scope};

pub(super) struct Inner {
    pub(super) config: Config,
    pub(super) validator: Validator,
    registry: Arc<Mutex<Registry>>,
    certs: Arc<tls::ReloadingCert>,
    caches: Caches,
    /// Decisions running on bodies over [`super::SMALL_BODY`] (permits: `max_in_flight`).
    pub(super) in_flight: Arc<Semaphore>,
    /// Decisions running on small bodies (permits: `max_in_flight`).
    pub(super) small_in_flight: Arc<Semaphore>,
    /// Body bytes held (permits: `body_budget`).
    pub(super) body_budget: Arc<Semaphore>,
}

/// A running webhook's state: caches, handler, certificate. Cheap to clone.
#[derive(Clone)]
pub struct Webhook {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("addr", &self.inner.config.addr)
            .field("ready", &self.readiness())
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Loads the serving certificate (failing at once if it is unreadable),
    /// registers the metrics in `registry` and starts its own watches of
    /// every namespace. Call inside a tokio runtime; serve with
    /// [`run`](Self::run).
    pub fn new(
        client: Client,
        config: Config,
        registry: Arc<Mutex<Registry>>,
    ) -> anyhow::Result<Webhook> {
        let caches = Caches::start(&client, &Scope::default());
        caches.register_metrics(&mut registry.lock().unwrap_or_else(|e| e.into_inner()));
        Self::with_caches(client, config, registry, caches)
    }

    /// Like [`new`](Self::new), reading the process's shared caches (what
    /// `orgaccess run` does: one watch per kind for the webhook and the
    /// controller).
    pub fn with_caches(
        client: Client,
        config: Config,
        registry: Arc<Mutex<Registry>>,
        caches: Caches,
    ) -> anyhow::Result<Webhook> {
        let metrics = {
            let mut r = registry.lock().unwrap_or_else(|e| e.into_inner());
            Arc::new(Metrics::new(&mut r))
        };
        let certs = Arc::new(
            tls::ReloadingCert::new(
                config.cert_file.clone(),
                config.key_file.clone(),
                Some(metrics.clone()),
            )
            .context("loading the webhook's serving certificate")?,
        );
        let activity = if config.events {
            let reporter = Reporter {
                controller: "orgaccess-webhook".into(),
                instance: config.instance.clone(),
            };
            ActivityLog::with_events(
                config.activity_capacity,
                metrics.clone(),
                client.clone(),
                reporter,
            )
        } else {
            ActivityLog::new(config.activity_capacity, metrics.clone())
        };
        let activity = match &config.audit_file {
            Some(file) => activity
                .with_file(file.clone())
                .with_context(|| format!("opening the activity file {}", file.path.display()))?,
            None => activity,
        };
        {
            // Said once, for operators reading the log (and the chart check).
            let index = caches.index.clone();
            tokio::spawn(async move {
                while !index.synced() {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                tracing::info!("webhook caches synced (the process's shared index)");
            });
        }
        Ok(Webhook {
            inner: Arc::new(Inner {
                validator: Validator {
                    policy: config.policy.clone(),
                    index: caches.index.clone(),
                    metrics,
                    activity,
                },
                registry,
                certs,
                caches,
                in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
                small_in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
                body_budget: Arc::new(Semaphore::new(config.body_budget.max(MAX_BODY))),
                config,
            }),
        })
    }

    /// Ready to judge: the four caches have synced.
    pub fn readiness(&self) -> bool {
        self.inner.caches.synced()
    }

    /// Waits until [`readiness`](Self::readiness).
    pub async fn ready(&self) {
        while !self.readiness() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The metrics registry the webhook's metrics are in.
    pub fn registry(&self) -> Arc<Mutex<Registry>> {
        self.inner.registry.clone()
    }

    /// The handler (for direct calls).
    pub fn validator(&self) -> &Validator {
        &self.inner.validator
    }

    /// The webhook port's one route: `POST /validate`. Health, readiness,
    /// metrics and activity are served by the admin server ([`crate::admin`]),
    /// never here.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route(configuration::PATH, post(validate))
            .route(configuration::MUTATE_PATH, post(mutate))
            .with_state(self.clone())
    }

    /// `GET /activity` for the admin server: callers authenticate with a
    /// bearer token (TokenReview with `client`, cached: [`crate::token_review`]); a trusted principal may list
    /// every namespace, anyone else one namespace whose organization grants
    /// them Organization/Activities: View, mapped exactly as admission maps
    /// requesters.
    pub fn activity_router(&self, client: Client) -> axum::Router {
        axum::Router::new()
            .route("/activity", get(activity_route::activity_list))
            .with_state((
                self.clone(),
                Arc::new(crate::token_review::Reviewer::new(client, Vec::new())),
            ))
    }

    /// Serves HTTPS on the configured address until `shutdown`.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.inner.config.addr)
            .await
            .with_context(|| format!("binding the webhook to {}", self.inner.config.addr))?;
        self.run_on(listener, shutdown).await
    }

    /// Serves HTTPS on `listener` (e.g. bound to port 0 by a test) until `shutdown`.
    pub async fn run_on(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let client_auth = self.inner.config.client_auth.as_ref();
        let config = Arc::new(tls::server_config(self.inner.certs.clone(), client_auth)?);
        match client_auth {
            None => tracing::warn!(
                "the webhook serves any TLS client: set --webhook-client-ca-file to serve only the apiserver; until then its requests are recorded as not authenticated and publish no Events"
            ),
            Some(a) if a.optional => tracing::warn!(
                "the webhook also serves TLS clients without a certificate (--webhook-client-optional): their requests are recorded as not authenticated and publish no Events"
            ),
            Some(_) => {}
        }
        tracing::info!(addr = %listener.local_addr()?, "webhook serving");
        let router = self.router();
        let serving = tls::Serving {
            max_connections: self.inner.config.max_connections,
            streams: super::connection::MAX_CONCURRENT_STREAMS,
            client_names: client_auth.map(|a| a.names.clone()).unwrap_or_default(),
            body_allowance: super::SMALL_BODY,
        };
        let metrics = self.inner.validator.metrics.clone();
        let transport = metrics.transport.clone();
        tls::serve(
            listener,
            config,
            router,
            serving,
            Some(metrics),
            transport,
            shutdown,
        )
        .await
    }
}

/// Runs the webhook alone (`orgaccess webhook`): its own metrics registry,
/// HTTPS on `config.addr` and the admin server on `admin_addr`, until
/// `shutdown`; either listener failing ends both with its error.
pub async fn serve(
    client: Client,
    config: Config,
    scope: Scope,
    admin_addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut registry = Registry::default();
    crate::metrics::register_process(&mut registry);
    let caches = Caches::start(&client, &scope);
    caches.register_metrics(&mut registry);
    let registry = Arc::new(Mutex::new(registry));
    let webhook = Webhook::with_caches(client.clone(), config, registry.clone(), caches)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let ready = {
        let w = webhook.clone();
        Arc::new(move || w.readiness()) as crate::admin::ReadyCheck
    };
    let admin = crate::admin::serve(
        admin_addr,
        registry,
        vec![ready],
        Some(webhook.activity_router(client)),
        stopped(),
    );
    let serving = webhook.run(stopped());
    let mut admin = std::pin::pin!(admin);
    let mut serving = std::pin::pin!(serving);
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        r = &mut admin => return r.and(Err(anyhow::anyhow!("the admin server stopped unexpectedly"))),
        r = &mut serving => return r.and(Err(anyhow::anyhow!("the webhook stopped unexpectedly"))),
        _ = &mut shutdown => {}
    }
    let _ = stop_tx.send(true);
    let (a, w) = tokio::join!(admin, serving);
    a.and(w)
}
