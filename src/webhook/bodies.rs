//! Request bodies read before they are answered, bounded three ways: at
//! most a maximum size each; the bytes a connection holds in bodies come
//! first from its own allowance ([`BodyAllowance`], shared by an HTTP/2
//! connection's streams) and then from a budget every connection shares, so
//! what all callers hold together is bounded however many connections and
//! streams they open; and the caller times the read. Used by the webhook's
//! `/validate` and `/mutate` and by the decision service's HTTPS listener.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connection::BodyAllowance;

/// Reads a body of at most `max` bytes, holding a permit per byte as it
/// arrives: from the connection's `allowance` while it has some (on
/// HTTP/1.1 the first bytes of each body; on HTTP/2 the connection's
/// streams share it), then from `budget` (waiting while other bodies hold
/// it). The caller bounds the wait with a timeout.
pub async fn read(
    body: Body,
    allowance: BodyAllowance,
    budget: Arc<Semaphore>,
    max: usize,
) -> Result<(Bytes, Held), Refusal> {
    use http_body_util::BodyExt as _;
    let too_large = || Refusal::TooLarge(max);
    if http_body::Body::size_hint(&body).lower() > max as u64 {
        return Err(too_large());
    }
    let mut body = body;
    let mut buf = Vec::with_capacity(http_body::Body::size_hint(&body).lower() as usize);
    let mut held = Held::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Refusal::Unreadable(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > max {
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
                .map_err(|_| Refusal::ShuttingDown)?;
            Held::add(&mut held.budget, more);
        }
        buf.extend_from_slice(&data);
    }
    Ok((buf.into(), held))
}

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over the maximum, in bytes.
    TooLarge(usize),
    /// The connection failed or the peer reset the stream.
    Unreadable(String),
    /// The budget was closed: the server is stopping.
    ShuttingDown,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooLarge(max) => write!(f, "the body is larger than {max} bytes"),
            Refusal::Unreadable(e) => write!(f, "the body could not be read: {e}"),
            Refusal::ShuttingDown => f.write_str("the server is shutting down"),
        }
    }
}

/// What a body read holds until its answer is done.
#[derive(Debug, Default)]
pub struct Held {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::SMALL_BODY;
    use crate::webhook::limits::MAX_BODY;

    fn budget(permits: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(permits))
    }

    fn allowance() -> BodyAllowance {
        BodyAllowance(budget(SMALL_BODY))
    }

    #[tokio::test]
    async fn a_small_body_takes_nothing_from_the_budget() {
        let body = vec![b'x'; SMALL_BODY];
        let (read, held) = read(Body::from(body.clone()), allowance(), budget(0), MAX_BODY)
            .await
            .unwrap();
        assert_eq!(read.as_ref(), body.as_slice());
        assert!(held.budget.is_none());
    }

    #[tokio::test]
    async fn a_larger_body_holds_what_it_takes_past_the_first_bytes() {
        let budget = budget(MAX_BODY);
        let body = vec![b'x'; SMALL_BODY + 10];
        let (_, held) = read(Body::from(body), allowance(), budget.clone(), MAX_BODY)
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
        let (_, held1) = read(
            Body::from(first),
            allowance.clone(),
            budget.clone(),
            MAX_BODY,
        )
        .await
        .unwrap();
        assert_eq!(budget.available_permits(), MAX_BODY);
        let second = vec![b'y'; 1000];
        let (_, held2) = read(
            Body::from(second),
            allowance.clone(),
            budget.clone(),
            MAX_BODY,
        )
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
        let err = read(Body::from(body), allowance(), budget(MAX_BODY), MAX_BODY)
            .await
            .unwrap_err();
        assert_eq!(err, Refusal::TooLarge(MAX_BODY));
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
