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
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
        read_body(
            body,
            allowance.unwrap_or_else(|| BodyAllowance(Arc::new(Semaphore::new(SMALL_BODY)))),
            inner.body_budget.clone(),
        ),
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

/// Reads a body of at most [`MAX_BODY`] bytes, holding a permit per byte as
/// it arrives: from the connection's `allowance` while it has some (on
/// HTTP/1.1 the first [`SMALL_BODY`] bytes of each body; on HTTP/2 the
/// connection's streams share it), then from `budget` (waiting while other
/// bodies hold it).
async fn read_body(
    body: Body,
    allowance: BodyAllowance,
    budget: Arc<Semaphore>,
) -> Result<(axum::body::Bytes, Held), String> {
    use http_body_util::BodyExt as _;
    let too_large = || format!("the body is larger than {MAX_BODY} bytes");
    if http_body::Body::size_hint(&body).lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    let mut body = body;
    let mut buf = Vec::with_capacity(http_body::Body::size_hint(&body).lower() as usize);
    let mut held = Held::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the body could not be read: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > MAX_BODY {
            return Err(too_large());
        }
        let free = allowance.0.available_permits().min(data.len());
        let free = match allowance.0.clone().try_acquire_many_owned(free as u32) {
            Ok(p) if free > 0 => {
                Held::add(&mut held.allowance, p);
                free
            }
            // None left, or another stream of the connection took it meanwhile.
            _ => 0,
        };
        let counted = data.len() - free;
        if counted > 0 {
            let more = budget
                .clone()
                .acquire_many_owned(counted as u32)
                .await
                .map_err(|_| "the webhook is shutting down".to_string())?;
            Held::add(&mut held.budget, more);
        }
        buf.extend_from_slice(&data);
    }
    Ok((buf.into(), held))
}

/// What a body read holds until its decision is done.
#[derive(Debug, Default)]
struct Held {
    allowance: Option<OwnedSemaphorePermit>,
    budget: Option<OwnedSemaphorePermit>,
}

impl Held {
    fn add(to: &mut Option<OwnedSemaphorePermit>, more: OwnedSemaphorePermit) {
        match to {
            Some(h) => h.merge(more),
            None => *to = Some(more),
        }
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

    fn budget(permits: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(permits))
    }

    fn allowance() -> BodyAllowance {
        BodyAllowance(budget(SMALL_BODY))
    }

    #[tokio::test]
    async fn a_small_body_takes_nothing_from_the_budget() {
        let body = vec![b'x'; SMALL_BODY];
        let (read, held) = read_body(Body::from(body.clone()), allowance(), budget(0))
            .await
            .unwrap();
        assert_eq!(read.as_ref(), body.as_slice());
        assert!(held.budget.is_none());
    }

    #[tokio::test]
    async fn a_larger_body_holds_what_it_takes_past_the_first_bytes() {
        let budget = budget(MAX_BODY);
        let body = vec![b'x'; SMALL_BODY + 10];
        let (_, held) = read_body(Body::from(body), allowance(), budget.clone())
            .await
            .unwrap();
        assert_eq!(held.budget.as_ref().map(|h| h.num_permits()), Some(10));
        assert_eq!(budget.available_permits(), MAX_BODY - 10);
        drop(held);
        assert_eq!(budget.available_permits(), MAX_BODY);
    }

    #[tokio::test]
    async fn bodies_of_one_connection_share_its_allowance() {
        // Two streams of one HTTP/2 connection: the second body, read while
        // the first is held, takes all of itself from the budget.
        let (budget, allowance) = (budget(MAX_BODY), allowance());
        let first = vec![b'x'; SMALL_BODY - 100];
        let (_, held1) = read_body(Body::from(first), allowance.clone(), budget.clone())
            .await
            .unwrap();
        assert_eq!(budget.available_permits(), MAX_BODY);
        let second = vec![b'y'; 1000];
        let (_, held2) = read_body(Body::from(second), allowance.clone(), budget.clone())
            .await
            .unwrap();
        assert_eq!(allowance.0.available_permits(), 0);
        assert_eq!(budget.available_permits(), MAX_BODY - 900);
        drop((held1, held2));
        assert_eq!(allowance.0.available_permits(), SMALL_BODY);
        assert_eq!(budget.available_permits(), MAX_BODY);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused() {
        let body = vec![b'x'; MAX_BODY + 1];
        let err = read_body(Body::from(body), allowance(), budget(MAX_BODY))
            .await
            .unwrap_err();
        assert!(err.contains("larger than"), "{err}");
    }
}
