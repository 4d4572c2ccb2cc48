//! The controller's metrics (`orgaccess_controller_*`), labelled by kind
//! and error class, never by object: every series exists from the first
//! scrape.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::Error;

/// The `error` label of `orgaccess_controller_reconcile_failures_total`: a
/// fixed set, so every series can exist (at zero) from the start.
pub(super) const ERROR_LABELS: [&str; 8] = [
    "conflict",
    "forbidden",
    "not_found",
    "invalid",
    "throttled",
    "server",
    "transport",
    "not_namespaced",
];

impl Error {
    pub(super) fn label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(e)) => match e.code {
                409 => "conflict",
                401 | 403 => "forbidden",
                404 | 410 => "not_found",
                429 => "throttled",
                500.. => "server",
                _ => "invalid",
            },
            Error::Kube(_) => "transport",
            Error::NotNamespaced => "not_namespaced",
        }
    }
}

/// The kinds the controller reconciles, as they label its metrics.
const KINDS: [&str; 4] = ["Organization", "Group", "Member", "ApiKey"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub kind: String,
    pub error: &'static str,
}

/// Reconcile metrics, labelled by kind (never by object: bounded cardinality).
pub struct Metrics {
    pub reconciles: Family<KindLabel, Counter>,
    pub failures: Family<ErrorLabel, Counter>,
    pub status_writes: Family<KindLabel, Counter>,
    pub duration: Family<KindLabel, Histogram, fn() -> Histogram>,
    /// Events by what became of them: published, failed or dropped.
    pub events: Family<ResultLabel, Counter>,
    /// 1 while this replica holds the Lease (or runs without election), else 0.
    pub leader: Gauge,
    /// Terms of leadership that ended without a shutdown: the Lease taken
    /// by another replica, or not renewed in time.
    pub leadership_lost: Counter,
    /// `orgaccess_advice_findings`, set by the Organization reconcile.
    pub advice: crate::metrics::AdviceMetrics,
    /// `orgaccess_access_reviews`, set by the Group reconcile.
    pub reviews: crate::metrics::ReviewMetrics,
}

fn duration_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
}

impl Metrics {
    /// The controller's metrics; the advice gauges labelled by namespace
    /// only with `namespace_labels` ([`crate::metrics::AdviceMetrics`]).
    pub fn new(registry: &mut Registry, namespace_labels: bool) -> Arc<Metrics> {
        let m = Metrics {
            reconciles: Family::default(),
            failures: Family::default(),
            status_writes: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            events: Family::default(),
            leader: Gauge::default(),
            leadership_lost: Counter::default(),
            advice: crate::metrics::AdviceMetrics::new(namespace_labels),
            reviews: crate::metrics::ReviewMetrics::new(namespace_labels),
        };
        m.advice.register(registry);
        m.reviews.register(registry);
        m.create_known_series();
        let sub = registry.sub_registry_with_prefix("orgaccess_controller");
        sub.register(
            "reconciles",
            "Reconciles run, by kind",
            m.reconciles.clone(),
        );
        sub.register(
            "reconcile_failures",
            "Reconciles that failed, by kind and error",
            m.failures.clone(),
        );
        sub.register(
            "status_writes",
            "Status writes (only when status changed), by kind",
            m.status_writes.clone(),
        );
        sub.register(
            "reconcile_duration_seconds",
            "Reconcile duration, by kind",
            m.duration.clone(),
        );
        sub.register(
            "events",
            "Events the controller published, failed to publish, or dropped because the queue was full",
            m.events.clone(),
        );
        sub.register(
            "leader",
            "1 while this replica holds the leader-election Lease and reconciles, else 0",
            m.leader.clone(),
        );
        sub.register(
            "leadership_lost",
            "Times this replica stopped leading without being asked to (the Lease taken, or not renewed within the renew deadline); it then campaigns again",
            m.leadership_lost.clone(),
        );
        Arc::new(m)
    }

    /// Every series of every kind (and every failure class) at zero, so
    /// rates and alerts have data before the first reconcile or failure.
    fn create_known_series(&self) {
        for result in ["published", "failed", "dropped"] {
            let _ = self.events.get_or_create_owned(&ResultLabel { result });
        }
        for kind in KINDS {
            let label = KindLabel { kind: kind.into() };
            let _ = self.reconciles.get_or_create_owned(&label);
            let _ = self.status_writes.get_or_create_owned(&label);
            let _ = self.duration.get_or_create_owned(&label);
            for error in ERROR_LABELS {
                let _ = self.failures.get_or_create_owned(&ErrorLabel {
                    kind: kind.into(),
                    error,
                });
            }
        }
    }

    pub(super) fn event(&self, result: &'static str) {
        self.events.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn status_write(&self, kind: &str) {
        self.status_writes
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> Error {
        Error::Kube(kube::Error::Api(Box::new(
            kube::core::Status::failure("x", "Reason").with_code(code),
        )))
    }

    /// Each failure has one label of the fixed set, so its series exists.
    #[test]
    fn errors_are_labelled_from_the_fixed_set() {
        let cases = [
            (409, "conflict"),
            (401, "forbidden"),
            (403, "forbidden"),
            (404, "not_found"),
            (410, "not_found"),
            (422, "invalid"),
            (400, "invalid"),
            (429, "throttled"),
            (500, "server"),
            (503, "server"),
        ];
        for (code, label) in cases {
            assert_eq!(api_error(code).label(), label, "{code}");
        }
        assert_eq!(Error::NotNamespaced.label(), "not_namespaced");
        let transport = Error::Kube(kube::Error::LinesCodecMaxLineLengthExceeded);
        assert_eq!(transport.label(), "transport");
        for e in [api_error(409), Error::NotNamespaced, transport] {
            assert!(ERROR_LABELS.contains(&e.label()));
        }
    }

    /// The first scrape already shows every kind's and error class's series,
    /// at zero.
    #[test]
    fn every_series_exists_before_anything_happens() {
        let mut registry = Registry::default();
        let _metrics = Metrics::new(&mut registry, false);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for kind in KINDS {
            assert!(
                text.contains(&format!(
                    "orgaccess_controller_reconciles_total{{kind=\"{kind}\"}} 0"
                )),
                "{kind}: {text}"
            );
            for error in ERROR_LABELS {
                assert!(text.contains(&format!(
                    "orgaccess_controller_reconcile_failures_total{{kind=\"{kind}\",error=\"{error}\"}} 0"
                )));
            }
        }
        for result in ["published", "failed", "dropped"] {
            assert!(text.contains(&format!(
                "orgaccess_controller_events_total{{result=\"{result}\"}} 0"
            )));
        }
        assert!(text.contains("orgaccess_controller_leader 0"));
    }
}
