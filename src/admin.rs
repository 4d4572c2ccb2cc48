//! The admin server: `/healthz` (alive), `/readyz` (caches synced), `/metrics`
//! (OpenMetrics, or the classic Prometheus text for `Accept: text/plain`:
//! [`crate::metrics::Format`]) and, with the webhook, `/activity` (bearer token, see
//! [`crate::webhook::Webhook::activity_router`]). Plain HTTP on its own port,
//! never the webhook's.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::metrics::Format;

/// A component's readiness check.
pub type ReadyCheck = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
struct AdminState {
    registry: Arc<Mutex<Registry>>,
    readiness: Vec<ReadyCheck>,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    if s.readiness.iter().all(|ready| ready()) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet")
    }
}

/// The metrics in the format the scraper asks for (`Accept`): OpenMetrics,
/// or the classic text format for `text/plain`.
async fn metrics(State(s): State<AdminState>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    let encoded = {
        let registry = s.registry.lock().unwrap_or_else(|e| e.into_inner());
        format.encode(&registry)
    };
    match encoded {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, format.content_type())],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("encoding failed: {e}"),
        ),
    }
}

/// Serves until `shutdown` resolves. `readiness`: every component that must
/// be ready; `extra`: more routes (the webhook's authenticated `/activity`).
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Mutex<Registry>>,
    readiness: Vec<ReadyCheck>,
    extra: Option<Router>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("binding the admin server (/healthz, /readyz, /metrics) to {addr}")
    })?;
    serve_on(listener, registry, readiness, extra, shutdown).await
}

/// [`serve`] on a bound listener (e.g. port 0 in a test).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    registry: Arc<Mutex<Registry>>,
    readiness: Vec<ReadyCheck>,
    extra: Option<Router>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AdminState {
            registry,
            readiness,
        });
    let app = match extra {
        Some(extra) => app.merge(extra),
        None => app,
    };
    tracing::info!(%addr, "admin server listening (/healthz, /readyz, /metrics, /activity)");
    // The peer's address, for per-source rates (`/activity`'s token reviews).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("serving the admin server")?;
    Ok(())
}
