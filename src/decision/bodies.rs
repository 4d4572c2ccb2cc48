//! The HTTPS listener's request bodies, read in full before a handler sees
//! them ([`crate::webhook::bodies`], as the webhook reads its own): at most
//! [`MAX_BODY`] bytes each, the first [`ALLOWANCE`] bytes a connection holds
//! in bodies from its own allowance (shared by its HTTP/2 streams), the rest
//! from a [`BUDGET`] every caller shares, and all of it within [`TIMEOUT`].
//! So what authenticated callers make the service hold in bodies is bounded
//! (1,024 connections × 16 KiB + 8 MiB) however many connections and streams
//! they open, and a body that stalls is answered `408` instead of holding
//! its stream. A question's body is a few hundred bytes, a full batch a few
//! KiB: inside the allowance.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::Semaphore;

use super::MAX_BODY;
use crate::webhook::bodies::{self, Refusal};
use crate::webhook::connection::BodyAllowance;

/// Bytes of bodies in flight each connection holds outside the budget.
pub const ALLOWANCE: usize = 16 * 1024;
/// Bytes of bodies in flight all connections hold past their allowances.
pub const BUDGET: usize = 8 * 1024 * 1024;
/// The longest a body may take to arrive, its wait for the budget included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The shared budget and the time allowed (one per listener).
#[derive(Clone, Debug)]
pub struct Bodies {
    budget: Arc<Semaphore>,
    timeout: Duration,
}

impl Bodies {
    pub fn new(budget: usize, timeout: Duration) -> Self {
        Bodies {
            budget: Arc::new(Semaphore::new(budget)),
            timeout,
        }
    }
}

impl Bodies {
    /// Bytes of the budget not held now (tests; what a gauge would show).
    pub fn available(&self) -> usize {
        self.budget.available_permits()
    }
}

impl Default for Bodies {
    fn default() -> Self {
        Bodies::new(BUDGET, TIMEOUT)
    }
}

/// Reads the request's body within the bounds, then hands the request on
/// with it, holding the bytes it took until the answer is made.
pub async fn bounded(State(bodies): State<Bodies>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // Every connection's requests carry its allowance (`tls::serve`); a
    // request from elsewhere (a test's router) gets one of its own.
    let allowance = parts
        .extensions
        .get::<BodyAllowance>()
        .cloned()
        .unwrap_or_else(|| BodyAllowance(Arc::new(Semaphore::new(ALLOWANCE))));
    let read = bodies::read(body, allowance, bodies.budget.clone(), MAX_BODY);
    let (bytes, held) = match tokio::time::timeout(bodies.timeout, read).await {
        Ok(Ok(read)) => read,
        Ok(Err(why)) => {
            let status = match why {
                Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                Refusal::Unreadable(_) => StatusCode::BAD_REQUEST,
                Refusal::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            };
            return refused(status, why.to_string());
        }
        Err(_) => {
            let why = format!(
                "the body was not received within {} s (bodies in flight are bounded; retry)",
                bodies.timeout.as_secs()
            );
            return refused(StatusCode::REQUEST_TIMEOUT, why);
        }
    };
    let answer = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    drop(held);
    answer
}

fn refused(status: StatusCode, why: String) -> Response {
    (status, axum::Json(json!({ "error": why }))).into_response()
}
