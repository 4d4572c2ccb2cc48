//! The decision service (docs/decision-service.md): applications and gateways ask whether a
//! key or member may do something, answered from the shared index (no API
//! call on the request path) by the core's `decision` functions.
//!
//! Two listeners, both off unless configured:
//!
//! - `--decision-addr`: HTTPS (the webhook's reloading TLS), every endpoint.
//!   Callers present a client certificate from `--decision-client-ca-file`,
//!   or (with `--decision-token-review`, on `/v1/...`) a service-account
//!   token the apiserver vouches for (TokenReview, cached:
//!   [`crate::token_review`]); the certificate's common name or the token's
//!   user may ask about the namespaces `--decision-allow` maps it to
//!   (docs/decision-service.md).
//! - `--decision-nginx-addr`: plain HTTP, the gateway endpoints only (`GET
//!   /nginx/auth`, Envoy's `/envoy/authz/...`), for a gateway beside the
//!   operator or a sidecar on loopback; it may ask about
//!   `--decision-default-namespace` and `--decision-nginx-namespaces` only.

pub mod bodies;
mod handlers;
pub mod metrics;
pub mod usage;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, get, post};

use self::metrics::Metrics;
use crate::index::Index;
use crate::webhook::tls;
use usage::Usage;

pub use handlers::{CheckRequest, PrincipalRequest, VerifyRequest};

/// Most questions in one batch.
pub const MAX_BATCH: usize = 100;
/// Largest request body.
pub const MAX_BODY: usize = 64 * 1024;
/// Connections the HTTPS listener serves at once; more are closed.
pub const MAX_CONNECTIONS: usize = 1024;
/// HTTP/2 requests in flight per HTTPS connection. What their bodies hold
/// is bounded by the connection's allowance and the shared budget
/// ([`bodies`]), not by the number of streams.
pub const MAX_STREAMS: u32 = 4;

/// The decision service's flags (`orgaccess run`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DecisionArgs {
    /// Address of the HTTPS decision service (off when unset).
    #[arg(
        id = "decision_addr",
        value_name = "ADDR",
        long = "decision-addr",
        env = "ORGACCESS_DECISION_ADDR"
    )]
    pub addr: Option<SocketAddr>,
    /// Serving certificate (PEM), reloaded when it changes.
    #[arg(
        id = "decision_cert_file",
        value_name = "FILE",
        long = "decision-cert-file",
        env = "ORGACCESS_DECISION_CERT_FILE"
    )]
    pub cert_file: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(
        id = "decision_key_file",
        value_name = "FILE",
        long = "decision-key-file",
        env = "ORGACCESS_DECISION_KEY_FILE"
    )]
    pub key_file: Option<PathBuf>,
    /// CA (PEM) whose client certificates may call the HTTPS service.
    #[arg(
        id = "decision_client_ca_file",
        value_name = "FILE",
        long = "decision-client-ca-file",
        env = "ORGACCESS_DECISION_CLIENT_CA_FILE"
    )]
    pub client_ca_file: Option<PathBuf>,
    /// `NAME=ns1,ns2`: the client certificate common name, or the token's
    /// user (`system:serviceaccount:NS:SA`), NAME may ask about these
    /// namespaces (`*`: every namespace). Repeatable.
    #[arg(
        id = "decision_allow",
        value_name = "NAME=NAMESPACES",
        long = "decision-allow",
        env = "ORGACCESS_DECISION_ALLOW",
        value_delimiter = ';'
    )]
    pub allow: Vec<String>,
    /// Address of the plain-HTTP NGINX auth_request listener (off when
    /// unset; bind it to loopback or protect it with a NetworkPolicy).
    #[arg(
        id = "decision_nginx_addr",
        value_name = "ADDR",
        long = "decision-nginx-addr",
        env = "ORGACCESS_DECISION_NGINX_ADDR"
    )]
    pub nginx_addr: Option<SocketAddr>,
    /// Namespace asked about when a gateway sends no X-Orgaccess-Namespace.
    #[arg(
        id = "decision_default_namespace",
        value_name = "NAMESPACE",
        long = "decision-default-namespace",
        env = "ORGACCESS_DECISION_DEFAULT_NAMESPACE"
    )]
    pub default_namespace: Option<String>,
    /// Namespaces the NGINX listener may ask about besides the default one.
    #[arg(
        id = "decision_nginx_namespaces",
        value_name = "NAMESPACE",
        long = "decision-nginx-namespaces",
        env = "ORGACCESS_DECISION_NGINX_NAMESPACES",
        value_delimiter = ','
    )]
    pub nginx_namespaces: Vec<String>,
    /// Also accept callers of `/v1/...` on the HTTPS listener by a bearer
    /// token (a service account's), authenticated by the apiserver
    /// (TokenReview, cached for a minute). The gateway endpoints keep
    /// client certificates: their bearer token is the API key.
    #[arg(
        id = "decision_token_review",
        long = "decision-token-review",
        env = "ORGACCESS_DECISION_TOKEN_REVIEW"
    )]
    pub token_review: bool,
    /// Audiences a caller's token must be meant for (empty: the apiserver's
    /// own). Repeatable or comma-separated.
    #[arg(
        id = "decision_token_audience",
        value_name = "AUDIENCE",
        long = "decision-token-audience",
        env = "ORGACCESS_DECISION_TOKEN_AUDIENCE",
        value_delimiter = ','
    )]
    pub token_audiences: Vec<String>,
    /// How often each replica writes the keys used since its last write
    /// (`status.lastUsedAt`, truncated to this interval): `5m`, `90s`,
    /// `PT5M`; at least 10s.
    #[arg(
        id = "decision_usage_interval",
        value_name = "DURATION",
        long = "decision-usage-interval",
        env = "ORGACCESS_DECISION_USAGE_INTERVAL",
        default_value = "5m"
    )]
    pub usage_interval: usage::Interval,
}

impl DecisionArgs {
    /// Whether any listener is configured.
    pub fn enabled(&self) -> bool {
        self.addr.is_some() || self.nginx_addr.is_some()
    }
}

/// Which namespaces a caller may ask about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Callers {
    by_name: BTreeMap<String, Reach>,
}

/// The namespaces one caller reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    Every,
    Only(BTreeSet<String>),
}

impl Reach {
    pub fn covers(&self, namespace: &str) -> bool {
        match self {
            Reach::Every => true,
            Reach::Only(names) => names.contains(namespace),
        }
    }
}

impl Callers {
    /// Parses `NAME=ns1,ns2` entries.
    pub fn parse(entries: &[String]) -> anyhow::Result<Callers> {
        let mut by_name = BTreeMap::new();
        for entry in entries.iter().filter(|e| !e.trim().is_empty()) {
            let Some((name, namespaces)) = entry.split_once('=') else {
                bail!("--decision-allow {entry:?}: expected NAME=namespace[,namespace...]");
            };
            let names: BTreeSet<String> = namespaces
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            let reach = if names.contains("*") {
                Reach::Every
            } else {
                Reach::Only(names)
            };
            by_name.insert(name.trim().to_string(), reach);
        }
        Ok(Callers { by_name })
    }

    /// May the caller named `name` (a certificate's common name or a token's
    /// user) ask about `namespace`?
    pub fn may_ask(&self, name: Option<&str>, namespace: &str) -> bool {
        name.and_then(|n| self.by_name.get(n))
            .is_some_and(|r| r.covers(namespace))
    }
}

/// Who may ask about what on one listener.
#[derive(Clone, Debug)]
pub enum Gate {
    /// The HTTPS listener: by the client certificate's common name.
    Certificates(Callers),
    /// The plain listener: a fixed set of namespaces, whoever connects.
    Fixed(Reach),
}

/// What every handler reads.
#[derive(Clone)]
pub struct Service {
    pub index: Arc<Index>,
    pub gate: Gate,
    pub default_namespace: Option<String>,
    /// Where verified keys' uses are recorded (`usage.rs`).
    pub usage: Arc<Usage>,
    /// The request metrics (`metrics.rs`), shared by both listeners.
    pub metrics: Arc<Metrics>,
}

/// The HTTPS listener's routes: checks, batches, key verification, and the
/// gateway endpoints, measured (`metrics.rs`).
pub fn router(service: Service) -> Router {
    https_router(service, None)
}

/// [`router`], callers of `/v1/...` also named by their bearer token when
/// `reviewer` is given; the measuring layer outermost, so that the token
/// layer's refusals count too.
fn https_router(service: Service, reviewer: Option<Arc<crate::token_review::Reviewer>>) -> Router {
    https_router_with(service, reviewer, bodies::Bodies::default())
}

/// [`https_router`] with the bodies' bounds given (tests shrink them). The
/// bodies are read after the token layer named the caller, so a refused
/// token costs no body.
pub fn https_router_with(
    service: Service,
    reviewer: Option<Arc<crate::token_review::Reviewer>>,
    bounds: bodies::Bodies,
) -> Router {
    let metrics = service.metrics.clone();
    // The questions' bodies are read within the bounds; the gateway
    // endpoints read none.
    let app = Router::new()
        .route("/v1/check", post(handlers::check))
        .route("/v1/check/batch", post(handlers::check_batch))
        .route("/v1/keys/verify", post(handlers::verify))
        .layer(from_fn_with_state(bounds, bodies::bounded))
        .merge(gateway_routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(service);
    let app = match reviewer {
        Some(reviewer) => app.layer(from_fn_with_state(reviewer, token_caller)),
        None => app,
    };
    let listener = metrics::Listener { metrics, all: true };
    app.layer(from_fn_with_state(listener, metrics::measure))
}

/// Envoy's `ext_authz` `path_prefix`: the original request's path follows it.
pub const ENVOY_PREFIX: &str = "/envoy/authz";

/// The gateway endpoints: NGINX `auth_request`, and Envoy `ext_authz` under
/// its prefix, with any method and path (the bare prefix, with and without a
/// slash, included).
fn gateway_routes() -> Router<Service> {
    Router::new()
        .route("/nginx/auth", get(handlers::nginx_auth))
        .route(ENVOY_PREFIX, any(handlers::envoy_authz))
        .route(&format!("{ENVOY_PREFIX}/"), any(handlers::envoy_authz))
        .route(
            &format!("{ENVOY_PREFIX}/{{*path}}"),
            any(handlers::envoy_authz),
        )
}

/// The plain listener's routes: the gateway endpoints only (NGINX
/// `auth_request`, Envoy `ext_authz`), measured.
pub fn nginx_router(service: Service) -> Router {
    let metrics = service.metrics.clone();
    gateway_routes()
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(service)
        .layer(from_fn_with_state(
            metrics::Listener {
                metrics,
                all: false,
            },
            metrics::measure,
        ))
}

impl DecisionArgs {
    /// The plain listener's reach: the default namespace and the listed ones.
    fn nginx_reach(&self) -> Reach {
        let mut names: BTreeSet<String> = self.nginx_namespaces.iter().cloned().collect();
        names.extend(self.default_namespace.clone());
        Reach::Only(names)
    }
}

/// Serves the configured listeners until `shutdown`, recording verified
/// keys' uses in `usage` (which [`usage::flush_every`] writes) and each
/// request in `metrics`; resolves at once when no listener is configured.
/// `client` reviews callers' tokens (`--decision-token-review`).
pub async fn serve(
    args: DecisionArgs,
    index: Arc<Index>,
    usage: Arc<Usage>,
    metrics: Arc<Metrics>,
    client: Option<kube::Client>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let https = async {
        match args.addr {
            Some(addr) => {
                let service = Service {
                    index: index.clone(),
                    gate: Gate::Certificates(Callers::parse(&args.allow)?),
                    default_namespace: args.default_namespace.clone(),
                    usage: usage.clone(),
                    metrics: metrics.clone(),
                };
                serve_https(&args, addr, service, client, shutdown.clone()).await
            }
            None => Ok(()),
        }
    };
    let plain = async {
        match args.nginx_addr {
            Some(addr) => {
                let service = Service {
                    index: index.clone(),
                    gate: Gate::Fixed(args.nginx_reach()),
                    default_namespace: args.default_namespace.clone(),
                    usage: usage.clone(),
                    metrics: metrics.clone(),
                };
                serve_plain(addr, service, shutdown.clone()).await
            }
            None => Ok(()),
        }
    };
    let (a, b) = tokio::join!(https, plain);
    a.and(b)
}

async fn serve_https(
    args: &DecisionArgs,
    addr: SocketAddr,
    service: Service,
    client: Option<kube::Client>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (Some(cert), Some(key)) = (&args.cert_file, &args.key_file) else {
        bail!("--decision-addr needs --decision-cert-file and --decision-key-file");
    };
    if args.client_ca_file.is_none() && !args.token_review {
        bail!(
            "--decision-addr needs a way to authenticate callers: --decision-client-ca-file, --decision-token-review, or both"
        );
    }
    let reviewer = match (args.token_review, client) {
        (false, _) => None,
        (true, Some(client)) => Some(Arc::new(crate::token_review::Reviewer::new(
            client,
            args.token_audiences.clone(),
        ))),
        (true, None) => bail!("--decision-token-review needs a connection to the apiserver"),
    };
    let certs = Arc::new(
        tls::ReloadingCert::new(cert.clone(), key.clone(), None)
            .context("loading the decision service's serving certificate")?,
    );
    // With tokens accepted, a certificate is one way in, not the only one.
    let client_auth = args.client_ca_file.clone().map(|ca_file| tls::ClientAuth {
        ca_file,
        names: Vec::new(),
        optional: reviewer.is_some(),
    });
    let config = Arc::new(tls::server_config(certs, client_auth.as_ref())?);
    let transport = service.metrics.transport.clone();
    let app = https_router(service, reviewer);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the decision service to {addr}"))?;
    tracing::info!(%addr, token_review = args.token_review, "decision service serving (HTTPS)");
    let serving = tls::Serving {
        max_connections: MAX_CONNECTIONS,
        streams: MAX_STREAMS,
        client_names: Vec::new(),
        body_allowance: bodies::ALLOWANCE,
    };
    tls::serve(listener, config, app, serving, None, transport, shutdown).await
}

/// Names a `/v1/...` caller without a client certificate by its bearer token,
/// as the apiserver authenticates it: `401` for a token it refuses, `503`
/// when it cannot be asked. The gateway endpoints are left alone: there the
/// bearer token is an API key, which must never reach the apiserver.
async fn token_caller(
    axum::extract::State(reviewer): axum::extract::State<Arc<crate::token_review::Reviewer>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use crate::token_review::{Verdict, bearer};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let named = request
        .extensions()
        .get::<tls::ClientName>()
        .is_some_and(|c| c.0.is_some());
    if named || !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    let Some(token) = bearer(request.headers()) else {
        return next.run(request).await;
    };
    let source = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    match reviewer.review_from(token, source).await {
        Verdict::Authenticated(who) => {
            request
                .extensions_mut()
                .insert(tls::ClientName(Some(who.user.clone())));
            next.run(request).await
        }
        Verdict::Rejected => (StatusCode::UNAUTHORIZED, "the token is not valid").into_response(),
        Verdict::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "could not review the token",
        )
            .into_response(),
        Verdict::Limited => (
            StatusCode::TOO_MANY_REQUESTS,
            "too many unknown tokens from this address; retry later",
        )
            .into_response(),
    }
}

async fn serve_plain(
    addr: SocketAddr,
    service: Service,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the NGINX auth_request listener to {addr}"))?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the NGINX auth_request listener is plain HTTP off loopback: restrict it with a NetworkPolicy");
    }
    tracing::info!(%addr, "decision service serving /nginx/auth (plain HTTP)");
    axum::serve(listener, nginx_router(service))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the NGINX auth_request listener")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_reach_only_their_namespaces() {
        let c = Callers::parse(&["gw=team-a,team-b".into(), "admin=*".into()]).unwrap();
        assert!(c.may_ask(Some("gw"), "team-a"));
        assert!(!c.may_ask(Some("gw"), "team-c"));
        assert!(c.may_ask(Some("admin"), "anything"));
        assert!(!c.may_ask(Some("stranger"), "team-a"));
        assert!(!c.may_ask(None, "team-a"));
        assert!(Callers::parse(&["no-equals".into()]).is_err());
    }
}
