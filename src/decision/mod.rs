//! The decision service (issue 13): applications and gateways ask whether a
//! key or member may do something, answered from the shared index (no API
//! call on the request path) by the core's `decision` functions.
//!
//! Two listeners, both off unless configured:
//!
//! - `--decision-addr`: HTTPS (the webhook's reloading TLS), every endpoint.
//!   Callers present a client certificate from `--decision-client-ca-file`;
//!   its common name may ask about the namespaces `--decision-allow` maps it
//!   to (docs/decision-service.md).
//! - `--decision-nginx-addr`: plain HTTP, the gateway endpoints only (`GET
//!   /nginx/auth`, Envoy's `/envoy/authz/...`), for a gateway beside the
//!   operator or a sidecar on loopback; it may ask about
//!   `--decision-default-namespace` and `--decision-nginx-namespaces` only.

mod handlers;
pub mod usage;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};

use crate::index::Index;
use crate::webhook::tls;
use usage::Usage;

pub use handlers::{CheckRequest, PrincipalRequest, VerifyRequest};

/// Most questions in one batch.
pub const MAX_BATCH: usize = 100;
/// Largest request body.
pub const MAX_BODY: usize = 64 * 1024;

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
    /// `NAME=ns1,ns2`: the client certificate common name NAME may ask about
    /// these namespaces (`*`: every namespace). Repeatable.
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

    /// May the caller named `name` (a certificate's common name) ask about `namespace`?
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
}

/// The HTTPS listener's routes: checks, batches, key verification, and the
/// gateway endpoints.
pub fn router(service: Service) -> Router {
    Router::new()
        .route("/v1/check", post(handlers::check))
        .route("/v1/check/batch", post(handlers::check_batch))
        .route("/v1/keys/verify", post(handlers::verify))
        .merge(gateway_routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(service)
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
/// `auth_request`, Envoy `ext_authz`).
pub fn nginx_router(service: Service) -> Router {
    gateway_routes()
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(service)
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
/// keys' uses in `usage` (which [`usage::flush_every`] writes); resolves at
/// once when no listener is configured.
pub async fn serve(
    args: DecisionArgs,
    index: Arc<Index>,
    usage: Arc<Usage>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let https = async {
        match args.addr {
            Some(addr) => {
                serve_https(&args, addr, index.clone(), usage.clone(), shutdown.clone()).await
            }
            None => Ok(()),
        }
    };
    let plain = async {
        match args.nginx_addr {
            Some(addr) => {
                serve_plain(&args, addr, index.clone(), usage.clone(), shutdown.clone()).await
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
    index: Arc<Index>,
    usage: Arc<Usage>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (Some(cert), Some(key), Some(ca)) = (&args.cert_file, &args.key_file, &args.client_ca_file)
    else {
        bail!(
            "--decision-addr needs --decision-cert-file, --decision-key-file and --decision-client-ca-file"
        );
    };
    let certs = Arc::new(
        tls::ReloadingCert::new(cert.clone(), key.clone(), None)
            .context("loading the decision service's serving certificate")?,
    );
    let client_auth = tls::ClientAuth {
        ca_file: ca.clone(),
        names: Vec::new(),
    };
    let config = Arc::new(tls::server_config(certs, Some(&client_auth))?);
    let service = Service {
        index,
        gate: Gate::Certificates(Callers::parse(&args.allow)?),
        default_namespace: args.default_namespace.clone(),
        usage,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the decision service to {addr}"))?;
    tracing::info!(%addr, "decision service serving (HTTPS, client certificates)");
    tls::serve(
        listener,
        config,
        router(service),
        1024,
        Vec::new(),
        None,
        shutdown,
    )
    .await
}

async fn serve_plain(
    args: &DecisionArgs,
    addr: SocketAddr,
    index: Arc<Index>,
    usage: Arc<Usage>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = Service {
        index,
        gate: Gate::Fixed(args.nginx_reach()),
        default_namespace: args.default_namespace.clone(),
        usage,
    };
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
