//! The request handler without the server: [`Validator::handle`] judges one
//! body ([`super::review`]), counts it and records its activity.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::registry::Registry;

use super::activity::{self, Activity, ActivityLog, Caller};
use super::{Decision, Index, Metrics, Policy, metrics, review};

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
