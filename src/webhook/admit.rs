//! One admission body at the HTTPS port: read within its timeout and the
//! byte budget, judged when a slot of its lane frees (a small body in place,
//! a large one on a blocking thread), answered before the deadline whatever
//! happens (always an AdmissionReview; a small body's decision, well under a
//! millisecond, is not cut off).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::bodies;
use super::connection::BodyAllowance;
use super::limits::MAX_BODY;
use super::{Caller, HEAVY_BODY, SMALL_BODY, Validator, Webhook, mutate as mutating, tls};

/// `POST /validate`: the body is read within its timeout and the byte
/// budget, judged on a blocking thread when a decision slot frees, and
/// answered before the deadline, whatever happens: always an AdmissionReview.
pub(super) async fn validate(
    State(webhook): State<Webhook>,
    authenticated: Option<axum::Extension<tls::Authenticated>>,
    allowance: Option<axum::Extension<BodyAllowance>>,
    body: Body,
) -> Response {
    // Only a connection that presented the apiserver's client certificate is
    // the apiserver; anything else is recorded as such and publishes nothing.
    let caller = match authenticated {
        Some(axum::Extension(tls::Authenticated(true))) => Caller::Apiserver,
        _ => Caller::NotAuthenticated,
    };
    let allowance = allowance.map(|a| a.0);
    admit(webhook, allowance, body, move |v, body| {
        v.handle_from(body, caller)
    })
    .await
}

/// `POST /mutate`: the record of who set each binding (`mutate.rs`), under
/// the same bounds as `/validate`. It has no side effects, whoever calls.
pub(super) async fn mutate(
    State(webhook): State<Webhook>,
    allowance: Option<axum::Extension<BodyAllowance>>,
    body: Body,
) -> Response {
    let allowance = allowance.map(|a| a.0);
    admit(webhook, allowance, body, |v, body| {
        mutating::mutate(&v.policy, body)
    })
    .await
}

/// One admission body, read within its timeout and budget (the
/// connection's `allowance` first; a fresh one when called without a
/// connection) and answered by `answer` on a blocking thread when a slot of
/// its lane frees.
async fn admit(
    webhook: Webhook,
    allowance: Option<BodyAllowance>,
    body: Body,
    answer: impl FnOnce(&Validator, &[u8]) -> Vec<u8> + Send + 'static,
) -> Response {
    let inner = &webhook.inner;
    let validator = &inner.validator;
    let deadline = tokio::time::Instant::now() + inner.config.deadline;
    let read = tokio::time::timeout(
        inner.config.body_timeout,
        bodies::read(
            body,
            allowance.unwrap_or_else(|| BodyAllowance(Arc::new(Semaphore::new(SMALL_BODY)))),
            inner.body_budget.clone(),
            MAX_BODY,
        ),
    )
    .await;
    let (body, held) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(why)) => return json_response(validator.unreadable(why.to_string())),
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
    let (which, slots) = lane(body.len(), inner.config.max_in_flight);
    let lane = match which {
        Lane::Small => &inner.small_in_flight,
        Lane::Large => &inner.in_flight,
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
    if which == Lane::Small && in_place_allowed() {
        // A small body is judged in well under a millisecond: here, on this
        // worker (tokio hands its other tasks to another thread), so the
        // answer does not wait for a blocking-pool thread to be woken and
        // then for a worker again: two hand-offs per request, each a
        // scheduling delay on a busy node, on the apiserver's path.
        let judged = tokio::task::block_in_place(|| {
            let _held = (slot, held);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| answer(validator, &body)))
        });
        return match judged {
            Ok(answer) => json_response(answer),
            Err(_) => {
                tracing::error!("the admission decision panicked; denying");
                let why = "the webhook failed while judging this request (see its log); denied";
                json_response(validator.refused(&body, why.to_string()))
            }
        };
    }
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

/// Whether a decision may run in place (`block_in_place`): only on a
/// multi-threaded runtime (the process's; a test's single-threaded one
/// judges on the blocking pool).
fn in_place_allowed() -> bool {
    tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
}

/// The two lanes of decision slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    /// Bodies of at most [`SMALL_BODY`] bytes: nearly every request.
    Small,
    Large,
}

/// The lane a body of `len` bytes is judged in, and the slots it takes
/// there: one, or for a body over [`HEAVY_BODY`] every one of the lane's
/// `max_in_flight`.
fn lane(len: usize, max_in_flight: usize) -> (Lane, u32) {
    if len <= SMALL_BODY {
        (Lane::Small, 1)
    } else if len <= HEAVY_BODY {
        (Lane::Large, 1)
    } else {
        (Lane::Large, max_in_flight.max(1) as u32)
    }
}

fn json_response(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_have_their_lane_and_heavy_ones_take_every_large_slot() {
        let cases = [
            (0, 2, (Lane::Small, 1)),
            (SMALL_BODY, 2, (Lane::Small, 1)),
            (SMALL_BODY + 1, 2, (Lane::Large, 1)),
            (HEAVY_BODY, 2, (Lane::Large, 1)),
            (HEAVY_BODY + 1, 2, (Lane::Large, 2)),
            (HEAVY_BODY + 1, 0, (Lane::Large, 1)),
        ];
        for (len, max, want) in cases {
            assert_eq!(lane(len, max), want, "{len} bytes, {max} slots");
        }
    }
}
