//! What the watches count, by kind: objects skipped because they do not
//! deserialize (the index and the controllers do not see them, so the
//! cluster holds something the operator does not), and watch failures
//! (each retried with backoff; while they last, the index lags).
//!
//! Every series exists at zero from the start, one per watched kind.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// The kinds the process watches (`watch::Caches::start`).
pub const WATCHED: [&str; 5] = ["Organization", "Group", "Member", "ApiKey", "AccessReview"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// `orgaccess_watch_objects_skipped_total{kind}` and
/// `orgaccess_watch_failures_total{kind}`.
#[derive(Clone, Default)]
pub struct WatchMetrics {
    skipped: Family<KindLabel, Counter>,
    failures: Family<KindLabel, Counter>,
}

impl WatchMetrics {
    /// Registers both families, each watched kind's series at zero.
    pub fn register(&self, registry: &mut Registry) {
        for kind in WATCHED {
            let _ = self.skipped.get_or_create_owned(&KindLabel { kind });
            let _ = self.failures.get_or_create_owned(&KindLabel { kind });
        }
        registry.register(
            "orgaccess_watch_objects_skipped",
            "Objects the watches skipped because they do not deserialize as their kind (not in the index: see the warning that names each)",
            self.skipped.clone(),
        );
        registry.register(
            "orgaccess_watch_failures",
            "Watch failures, each retried with backoff (the index lags meanwhile)",
            self.failures.clone(),
        );
    }

    pub(super) fn skipped(&self, kind: &str) {
        self.skipped
            .get_or_create(&KindLabel {
                kind: watched(kind),
            })
            .inc();
    }

    pub(super) fn failed(&self, kind: &str) {
        self.failures
            .get_or_create(&KindLabel {
                kind: watched(kind),
            })
            .inc();
    }
}

/// The label for a kind: one of [`WATCHED`], so the series stay fixed.
fn watched(kind: &str) -> &'static str {
    WATCHED.into_iter().find(|k| *k == kind).unwrap_or("other")
}
