//! The validating admission webhook: the admission rules (docs/rules.md) at the cluster's door.
//!
//! Every create, update and delete of an Organization, Group, Member or ApiKey
//! is sent here by the ValidatingWebhookConfiguration ([`configuration`]) and
//! judged by [`crate::core::rules::check`], the same function `orgaccess check`
//! runs offline. This module only reads the request, maps the requester, keeps
//! the organizations' state cached, records the activity and serves HTTPS.
//!
//! The TLS port serves only `POST /validate` (`AdmissionReview` v1 in and
//! out, always HTTP 200), to the apiserver alone when client certificates are
//! required ([`tls::ClientAuth`]). The admin server ([`crate::admin`], plain
//! HTTP on its own port) serves the rest:
//!
//! | path | what |
//! |---|---|
//! | `GET /healthz` | 200 while serving |
//! | `GET /readyz` | 200 once the four caches have synced, 503 before |
//! | `GET /metrics` | Prometheus text (`orgaccess_webhook_*`, and whatever else shares the registry) |
//! | `GET /activity?namespace=NS&limit=N` | the last admission decisions, JSON, oldest first; bearer token, see [`Webhook::activity_router`] |
//!
//! Run it alone with [`serve`], or inside the operator with [`Webhook::new`]
//! and [`Webhook::run`] (sharing the operator's metrics registry), with the
//! command-line flags of [`WebhookArgs`].

pub mod activity;
pub mod configuration;
pub mod limits;
pub mod metrics;
pub mod mutate;
pub mod review;
pub mod tls;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kube::Client;
use kube::runtime::events::Reporter;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use crate::index::Index;
use crate::index::watch::{Caches, Scope};
pub use activity::{Activity, ActivityLog, AuditFileConfig, Caller};
pub use configuration::{
    Endpoint, mutating_webhook_configuration, only_namespace, webhook_configuration,
};
pub use metrics::Metrics;
pub use review::{Decision, Policy};

use limits::MAX_BODY;

/// Defaults, shared by [`Config::default`] and the flags.
pub const DEFAULT_ADDR: &str = "0.0.0.0:8443";
pub const DEFAULT_CERT_FILE: &str = "/etc/orgaccess/webhook/tls.crt";
pub const DEFAULT_KEY_FILE: &str = "/etc/orgaccess/webhook/tls.key";
pub const DEFAULT_TRUSTED_GROUP: &str = "system:masters";
pub const DEFAULT_OPERATOR_USER: &str = "system:serviceaccount:orgaccess-system:orgaccess";
/// Deletes dependents whose owner is gone (e.g. objects owned by a deleted Organization).
pub const DEFAULT_GARBAGE_COLLECTOR_USER: &str =
    "system:serviceaccount:kube-system:generic-garbage-collector";
pub const DEFAULT_NAMESPACE_CONTROLLER_USER: &str =
    "system:serviceaccount:kube-system:namespace-controller";
pub const DEFAULT_ACTIVITY_CAPACITY: usize = 1000;
/// Time to answer one request, from its headers on: below the configuration's
/// `timeoutSeconds` (5 s), so the apiserver always gets an answer from us.
pub const DEFAULT_DEADLINE_MS: u64 = 4000;
/// Time to receive one request's body (a slow sender is cut off).
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 2000;
/// Open connections served at once; more are closed at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Decisions run at once (each on a blocking thread); more wait, up to the deadline.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 2;
/// The common name of the apiserver's client certificate, as Gatekeeper expects it.
pub const DEFAULT_CLIENT_NAME: &str = "kube-apiserver";
/// Request bodies held in memory at once, in bytes (read or being judged).
pub const DEFAULT_BODY_BUDGET: usize = 3 * MAX_BODY;
/// The first bytes of every body are not taken from the body budget, and a
/// body no larger than this is judged in its own lane of decision slots: a
/// small request (nearly every admission request is a few KiB) never waits
/// behind large or slow bodies. At most `max_connections` times this is held
/// outside the budget (16 MiB with the defaults).
pub const SMALL_BODY: usize = 64 * 1024;
/// A body larger than this is judged alone in the large lane (it takes every
/// slot of it): bounded memory before throughput for the rare object over 1 MiB.
pub const HEAVY_BODY: usize = 1024 * 1024;

/// How the webhook runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// HTTPS listen address.
    pub addr: SocketAddr,
    /// PEM serving certificate (chain) and its key; re-read when they change.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Who is trusted, and how (the same struct as the flags).
    pub policy: Policy,
    /// Decisions kept for `GET /activity`.
    pub activity_capacity: usize,
    /// Publish an Event per decision (besides the log line and the ring).
    pub events: bool,
    /// `reportingInstance` of the Events (the pod name in a cluster).
    pub instance: Option<String>,
    /// Bounds on the work of each request (see [`limits`]).
    pub deadline: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub max_in_flight: usize,
    pub body_budget: usize,
    /// Serve only clients with a certificate from this CA and name (the
    /// apiserver); anyone who completes TLS when `None`.
    pub client_auth: Option<tls::ClientAuth>,
    /// The durable record: a rotated JSON-lines file of decisions.
    pub audit_file: Option<AuditFileConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: DEFAULT_ADDR.parse().expect("valid default address"),
            cert_file: DEFAULT_CERT_FILE.into(),
            key_file: DEFAULT_KEY_FILE.into(),
            policy: Policy::default(),
            activity_capacity: DEFAULT_ACTIVITY_CAPACITY,
            events: true,
            instance: None,
            deadline: Duration::from_millis(DEFAULT_DEADLINE_MS),
            body_timeout: Duration::from_millis(DEFAULT_BODY_TIMEOUT_MS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            body_budget: DEFAULT_BODY_BUDGET,
            client_auth: None,
            audit_file: None,
        }
    }
}

/// The webhook's command-line flags, for `orgaccess webhook` and `orgaccess run`
/// (`#[command(flatten)]`).
#[derive(Clone, Debug, clap::Args)]
pub struct WebhookArgs {
    /// HTTPS listen address of the admission webhook (also /healthz, /readyz, /metrics, /activity).
    #[arg(long = "webhook-addr", env = "ORGACCESS_WEBHOOK_ADDR", default_value = DEFAULT_ADDR)]
    pub webhook_addr: SocketAddr,
    /// PEM serving certificate of the webhook; re-read when the file changes.
    #[arg(long = "webhook-cert-file", env = "ORGACCESS_WEBHOOK_CERT_FILE", default_value = DEFAULT_CERT_FILE)]
    pub webhook_cert_file: PathBuf,
    /// PEM private key of the serving certificate; re-read when the file changes.
    #[arg(long = "webhook-key-file", env = "ORGACCESS_WEBHOOK_KEY_FILE", default_value = DEFAULT_KEY_FILE)]
    pub webhook_key_file: PathBuf,
    #[command(flatten)]
    pub policy: Policy,
    /// Admission decisions kept in memory for GET /activity.
    #[arg(long = "webhook-activity-size", env = "ORGACCESS_WEBHOOK_ACTIVITY_SIZE",
          default_value_t = DEFAULT_ACTIVITY_CAPACITY)]
    pub activity_capacity: usize,
    /// Publish a Kubernetes Event for every admission decision.
    #[arg(long = "webhook-events", env = "ORGACCESS_WEBHOOK_EVENTS", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub events: bool,
    /// Identity in the Events' reportingInstance (the pod name in a cluster).
    #[arg(long = "webhook-instance", env = "POD_NAME")]
    pub instance: Option<String>,
    /// Milliseconds to answer one request; keep below the webhook configuration's timeoutSeconds.
    #[arg(long = "webhook-deadline-ms", env = "ORGACCESS_WEBHOOK_DEADLINE_MS",
          default_value_t = DEFAULT_DEADLINE_MS)]
    pub deadline_ms: u64,
    /// Milliseconds to receive one request body.
    #[arg(long = "webhook-body-timeout-ms", env = "ORGACCESS_WEBHOOK_BODY_TIMEOUT_MS",
          default_value_t = DEFAULT_BODY_TIMEOUT_MS)]
    pub body_timeout_ms: u64,
    /// Connections served at once; more are closed.
    #[arg(long = "webhook-max-connections", env = "ORGACCESS_WEBHOOK_MAX_CONNECTIONS",
          default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Admission decisions computed at once.
    #[arg(long = "webhook-max-in-flight", env = "ORGACCESS_WEBHOOK_MAX_IN_FLIGHT",
          default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Bytes of request bodies held in memory at once.
    #[arg(long = "webhook-body-budget", env = "ORGACCESS_WEBHOOK_BODY_BUDGET",
          default_value_t = DEFAULT_BODY_BUDGET)]
    pub body_budget: usize,
    /// PEM CA that signs the apiserver's client certificate for webhooks: when
    /// set, /validate serves only clients presenting a certificate from it.
    #[arg(
        long = "webhook-client-ca-file",
        env = "ORGACCESS_WEBHOOK_CLIENT_CA_FILE"
    )]
    pub client_ca_file: Option<PathBuf>,
    /// Common names accepted in client certificates (with --webhook-client-ca-file);
    /// empty: any certificate from that CA.
    #[arg(long = "webhook-client-name", env = "ORGACCESS_WEBHOOK_CLIENT_NAMES",
          value_delimiter = ',', default_value = DEFAULT_CLIENT_NAME)]
    pub client_names: Vec<String>,
    /// With --webhook-client-ca-file: also serve clients without a
    /// certificate (one presented must still verify and carry an accepted
    /// name). Their requests are judged but recorded as `caller: not
    /// authenticated` and publish no Event; the apiserver's, once its
    /// admission configuration presents the certificate, are authenticated.
    #[arg(long = "webhook-client-optional", env = "ORGACCESS_WEBHOOK_CLIENT_OPTIONAL",
          default_value_t = false, action = clap::ArgAction::Set)]
    pub client_optional: bool,
    /// Append every decision to this JSON-lines file (rotated by size): the
    /// durable record, read back with `orgaccess activity FILE`.
    #[arg(long = "activity-file", env = "ORGACCESS_ACTIVITY_FILE")]
    pub activity_file: Option<PathBuf>,
    /// Rotate the activity file at this size, in bytes.
    #[arg(long = "activity-file-max-bytes", env = "ORGACCESS_ACTIVITY_FILE_MAX_BYTES",
          default_value_t = 100 * 1024 * 1024)]
    pub activity_file_max_bytes: u64,
    /// Rotated activity files kept (`FILE.1` newest .. `FILE.N`).
    #[arg(
        long = "activity-file-keep",
        env = "ORGACCESS_ACTIVITY_FILE_KEEP",
        default_value_t = 10
    )]
    pub activity_file_keep: usize,
}

impl WebhookArgs {
    pub fn config(&self) -> Config {
        Config {
            addr: self.webhook_addr,
            cert_file: self.webhook_cert_file.clone(),
            key_file: self.webhook_key_file.clone(),
            policy: self.policy.clone(),
            activity_capacity: self.activity_capacity,
            events: self.events,
            instance: self.instance.clone(),
            deadline: Duration::from_millis(self.deadline_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms.min(self.deadline_ms)),
            max_connections: self.max_connections.max(1),
            max_in_flight: self.max_in_flight.max(1),
            body_budget: self.body_budget.max(MAX_BODY),
            client_auth: self.client_ca_file.clone().map(|ca_file| tls::ClientAuth {
                ca_file,
                optional: self.client_optional,
                names: self
                    .client_names
                    .iter()
                    .filter(|n| !n.is_empty())
                    .cloned()
                    .collect(),
            }),
            audit_file: self.activity_file.clone().map(|path| AuditFileConfig {
                path,
                max_bytes: self.activity_file_max_bytes.max(64 * 1024),
                keep: self.activity_file_keep,
            }),
        }
    }
}

/// The request handler without the server: policy, cached state, metrics and
/// activity. [`Validator::handle`] is what `POST /validate` runs (benchmarks
/// call it directly).
#[derive(Debug)]
pub struct Validator {
    pub policy: Policy,
    pub index: Arc<Index>,
    pub metrics: Arc<Metrics>,
    pub activity: ActivityLog,
}

impl Validator {
    /// A validator over `index`, recording activity in memory and in logs only.
    pub fn new(
        policy: Policy,
        index: Arc<Index>,
        registry: &mut Registry,
        activity: usize,
    ) -> Self {
        let metrics = Arc::new(Metrics::new(registry));
        Validator {
            policy,
            index,
            activity: ActivityLog::new(activity, metrics.clone()),
            metrics,
        }
    }

    /// Decides one body known to come from the apiserver (benchmarks, tests
    /// calling the handler directly) and records the decision; returns the
    /// AdmissionReview to answer with (always answered with HTTP 200).
    pub fn handle(&self, body: &[u8]) -> Vec<u8> {
        self.handle_from(body, Caller::Apiserver)
    }

    /// [`handle`](Self::handle) for a body sent by `caller`: the record says
    /// who, and only the authenticated apiserver's decisions become Events.
    pub fn handle_from(&self, body: &[u8], caller: Caller) -> Vec<u8> {
        let start = Instant::now();
        // Names a request carries are interned for this request only.
        let decision = std::panic::catch_unwind(AssertUnwindSafe(|| {
            crate::core::privilege::request_scope(|| {
                review::review(&self.policy, &self.index, body)
            })
        }))
        .unwrap_or_else(|_| {
            tracing::error!("the admission handler panicked; denying");
            review::review_failed(body)
        });
        self.finish(decision, caller, start)
    }

    /// Answers a body that could not be read (too large, cut off).
    pub fn unreadable(&self, why: String) -> Vec<u8> {
        self.finish(
            review::unreadable(why),
            Caller::NotAuthenticated,
            Instant::now(),
        )
    }

    /// Answers a body that was read but not judged (busy, out of time): a
    /// denial carrying the request's uid when it has one.
    pub fn refused(&self, body: &[u8], why: String) -> Vec<u8> {
        self.finish(
            review::refused(body, why),
            Caller::NotAuthenticated,
            Instant::now(),
        )
    }

    fn finish(&self, decision: Decision, caller: Caller, start: Instant) -> Vec<u8> {
        self.metrics.latency.observe(start.elapsed().as_secs_f64());
        self.metrics
            .decisions
            .get_or_create(&metrics::DecisionLabels {
                kind: decision.kind,
                operation: decision.operation,
                allowed: decision.allowed,
            })
            .inc();
        if decision.malformed {
            self.metrics.malformed.inc();
            tracing::warn!(target: activity::TARGET, "malformed admission request denied");
        }
        if let Some((activity, regarding)) = decision.activity {
            self.activity
                .record(Activity { caller, ..activity }, regarding);
        }
        decision.body
    }
}

struct Inner {
    config: Config,
    validator: Validator,
    registry: Arc<Mutex<Registry>>,
    certs: Arc<tls::ReloadingCert>,
    caches: Caches,
    /// Decisions running on bodies over [`SMALL_BODY`] (permits: `max_in_flight`).
    in_flight: Arc<Semaphore>,
    /// Decisions running on small bodies (permits: `max_in_flight`).
    small_in_flight: Arc<Semaphore>,
    /// Body bytes held (permits: `body_budget`).
    body_budget: Arc<Semaphore>,
}

/// A running webhook's state: caches, handler, certificate. Cheap to clone.
#[derive(Clone)]
pub struct Webhook {
    inner: Arc<Inner>,
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
            .route("/activity", get(activity_list))
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
        tls::serve(
            listener,
            config,
            router,
            self.inner.config.max_connections,
            client_auth.map(|a| a.names.clone()).unwrap_or_default(),
            Some(self.inner.validator.metrics.clone()),
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
    let registry = Arc::new(Mutex::new(registry));
    let caches = Caches::start(&client, &scope);
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

/// `POST /validate`: the body is read within its timeout and the byte
/// budget, judged on a blocking thread when a decision slot frees, and
/// answered before the deadline, whatever happens: always an AdmissionReview.
async fn validate(
    State(webhook): State<Webhook>,
    authenticated: Option<axum::Extension<tls::Authenticated>>,
    body: Body,
) -> Response {
    // Only a connection that presented the apiserver's client certificate is
    // the apiserver; anything else is recorded as such and publishes nothing.
    let caller = match authenticated {
        Some(axum::Extension(tls::Authenticated(true))) => Caller::Apiserver,
        _ => Caller::NotAuthenticated,
    };
    admit(webhook, body, move |v, body| v.handle_from(body, caller)).await
}

/// `POST /mutate`: the record of who set each binding (`mutate.rs`), under
/// the same bounds as `/validate`. It has no side effects, whoever calls.
async fn mutate(State(webhook): State<Webhook>, body: Body) -> Response {
    admit(webhook, body, |v, body| mutate::mutate(&v.policy, body)).await
}

/// One admission body, read within its timeout and budget and answered by
/// `answer` on a blocking thread when a slot of its lane frees.
async fn admit(
    webhook: Webhook,
    body: Body,
    answer: impl FnOnce(&Validator, &[u8]) -> Vec<u8> + Send + 'static,
) -> Response {
    let inner = &webhook.inner;
    let validator = &inner.validator;
    let deadline = tokio::time::Instant::now() + inner.config.deadline;
    let read = tokio::time::timeout(
        inner.config.body_timeout,
        read_body(body, inner.body_budget.clone()),
    )
    .await;
    let (body, held) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(why)) => return json_response(validator.unreadable(why)),
        Err(_) => {
            return json_response(validator.unreadable(format!(
                "the body was not received within {} ms",
                inner.config.body_timeout.as_millis()
            )));
        }
    };
    // Large bodies (slow to judge, and cheap to forge without client
    // authentication) cannot hold the slots small ones are judged in.
    // A body over HEAVY_BODY takes every large slot: parsed, the heaviest
    // costs ~70 MB, and two at once (plus the bodies waiting) came close to
    // the chart's memory limit.
    let (lane, slots) = if body.len() <= SMALL_BODY {
        (&inner.small_in_flight, 1)
    } else if body.len() <= HEAVY_BODY {
        (&inner.in_flight, 1)
    } else {
        (&inner.in_flight, inner.config.max_in_flight.max(1) as u32)
    };
    let acquired = lane.clone().acquire_many_owned(slots);
    let slot = match tokio::time::timeout_at(deadline, acquired).await {
        Ok(Ok(slot)) => slot,
        _ => {
            webhook.inner.validator.metrics.busy.inc();
            let why = "the webhook is busy with other requests; retry".to_string();
            return json_response(validator.refused(&body, why));
        }
    };
    let task = {
        let (webhook, body) = (webhook.clone(), body.clone());
        tokio::task::spawn_blocking(move || {
            // Both are held until the decision is done, even past the deadline.
            let _held = (slot, held);
            answer(&webhook.inner.validator, &body)
        })
    };
    match tokio::time::timeout_at(deadline, task).await {
        Ok(Ok(answer)) => json_response(answer),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the admission decision task failed; denying");
            let why = "the webhook failed while judging this request (see its log); denied";
            json_response(validator.refused(&body, why.to_string()))
        }
        Err(_) => {
            webhook.inner.validator.metrics.busy.inc();
            let why = format!(
                "the webhook could not decide within {} ms; retry",
                inner.config.deadline.as_millis()
            );
            json_response(validator.refused(&body, why))
        }
    }
}

/// Reads a body of at most [`MAX_BODY`] bytes, taking one permit of `budget`
/// per byte past the first [`SMALL_BODY`] as it arrives (waiting while other
/// bodies hold the budget).
async fn read_body(
    body: Body,
    budget: Arc<Semaphore>,
) -> Result<(axum::body::Bytes, Option<OwnedSemaphorePermit>), String> {
    use http_body_util::BodyExt as _;
    let too_large = || format!("the body is larger than {MAX_BODY} bytes");
    if http_body::Body::size_hint(&body).lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    let mut body = body;
    let mut buf = Vec::with_capacity(http_body::Body::size_hint(&body).lower() as usize);
    let mut held: Option<OwnedSemaphorePermit> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the body could not be read: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > MAX_BODY {
            return Err(too_large());
        }
        let counted = (buf.len() + data.len()).saturating_sub(SMALL_BODY.max(buf.len()));
        if counted > 0 {
            let more = budget
                .clone()
                .acquire_many_owned(counted as u32)
                .await
                .map_err(|_| "the webhook is shutting down".to_string())?;
            match &mut held {
                Some(h) => h.merge(more),
                None => held = Some(more),
            }
        }
        buf.extend_from_slice(&data);
    }
    Ok((buf.into(), held))
}

fn json_response(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct ActivityQuery {
    namespace: Option<String>,
    limit: Option<usize>,
}

async fn activity_list(
    State((webhook, reviewer)): State<(Webhook, Arc<crate::token_review::Reviewer>)>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    headers: axum::http::HeaderMap,
    Query(q): Query<ActivityQuery>,
) -> Response {
    use crate::token_review::{Verdict, bearer};
    let Some(token) = bearer(&headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            "GET /activity needs a bearer token (Authorization: Bearer ...)",
        )
            .into_response();
    };
    let source = peer.map(|p| (p.0).0.ip());
    let (user, groups) = match reviewer.review_from(token, source).await {
        Verdict::Authenticated(who) => (who.user.clone(), who.groups.clone()),
        Verdict::Rejected => {
            return (StatusCode::UNAUTHORIZED, "the token is not valid").into_response();
        }
        Verdict::Unavailable => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "could not review the token",
            )
                .into_response();
        }
        Verdict::Limited => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "too many unknown tokens from this address; retry later",
            )
                .into_response();
        }
    };
    let validator = &webhook.inner.validator;
    let policy = &validator.policy;
    let trusted = policy.trusts(&user, &groups);
    let namespace = q.namespace.filter(|ns| !ns.is_empty());
    if !trusted {
        let Some(ns) = namespace.as_deref() else {
            return (
                StatusCode::FORBIDDEN,
                "name the organization's namespace (?namespace=NS): only trusted principals list every namespace",
            )
                .into_response();
        };
        if !may_view_activities(&validator.index, ns, &user, &groups) {
            tracing::info!(target: activity::TARGET, %user, namespace = ns, "activity listing refused");
            return (
                StatusCode::FORBIDDEN,
                format!(
                    "'{user}' does not hold Organization/Activities: View in the organization of namespace {ns}"
                ),
            )
                .into_response();
        }
    }
    let limit = q
        .limit
        .unwrap_or(100)
        .min(webhook.inner.config.activity_capacity);
    let list = validator.activity.list(namespace.as_deref(), limit);
    let list: Vec<&Activity> = list.iter().map(Arc::as_ref).collect();
    axum::Json(list).into_response()
}

/// The organization's own rule: a requester mapped (as admission maps them)
/// to members holding Organization/Activities: View or more.
pub fn may_view_activities(index: &Index, namespace: &str, user: &str, groups: &[String]) -> bool {
    use crate::core::catalog::{self, Service};
    use crate::core::privilege::Level;
    let Some(domain) = catalog::lookup(Service::Organization, "Activities") else {
        return false;
    };
    let view = index.namespace(namespace).requester(user, groups);
    !view.members.is_empty()
        && view
            .privileges
            .get(domain)
            .is_some_and(|g| g.level >= Level::View)
}
