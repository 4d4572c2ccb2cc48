//! Prometheus metrics of the webhook (`orgaccess_webhook_*`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// Organization, Group, Member, ApiKey, or `unknown` for a malformed request.
    pub kind: &'static str,
    /// CREATE, UPDATE, DELETE, or `unknown`.
    pub operation: &'static str,
    pub allowed: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    pub decisions: Family<DecisionLabels, Counter>,
    /// Seconds from the request body to the decision (in the handler).
    pub latency: Histogram,
    pub malformed: Counter,
    pub events: Family<ResultLabel, Counter>,
    pub certificate_reloads: Family<ResultLabel, Counter>,
    /// Requests denied because no decision slot freed, or none finished, in time.
    pub busy: Counter,
    /// Connections closed at once because too many were open.
    pub connections_refused: Counter,
    /// Connections refused for lack of an accepted client certificate.
    pub unauthenticated: Counter,
    /// Connections, handshakes and requests by protocol (`connection.rs`).
    pub transport: super::connection::Transport,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            decisions: Family::default(),
            // 5 µs .. ~5 s
            latency: Histogram::new(exponential_buckets(5e-6, 2.0, 20)),
            malformed: Counter::default(),
            events: Family::default(),
            certificate_reloads: Family::default(),
            busy: Counter::default(),
            connections_refused: Counter::default(),
            unauthenticated: Counter::default(),
            transport: Default::default(),
        };
        m.create_known_series();
        let r = registry.sub_registry_with_prefix("orgaccess_webhook");
        r.register(
            "decisions",
            "Admission decisions by kind, operation and outcome",
            m.decisions.clone(),
        );
        r.register(
            "decision_duration_seconds",
            "Time to decide one admission request, in the handler",
            m.latency.clone(),
        );
        r.register(
            "malformed_requests",
            "Request bodies that were not a readable AdmissionReview for the four kinds (denied)",
            m.malformed.clone(),
        );
        r.register(
            "activity_events",
            "Kubernetes Events for admission activity, by result (published, failed, dropped)",
            m.events.clone(),
        );
        r.register(
            "certificate_reloads",
            "Serving certificate reloads, by result (ok, error)",
            m.certificate_reloads.clone(),
        );
        r.register(
            "busy_requests",
            "Requests denied because the webhook could not decide them before its deadline",
            m.busy.clone(),
        );
        r.register(
            "refused_connections",
            "Connections closed at once because the connection limit was reached",
            m.connections_refused.clone(),
        );
        r.register(
            "unauthenticated_connections",
            "TLS handshakes refused for lack of an accepted client certificate",
            m.unauthenticated.clone(),
        );
        m.transport.register(r);
        m
    }

    /// Creates every series whose label values are known, at zero, so a
    /// rate or an alert on them has data before the first event.
    fn create_known_series(&self) {
        for kind in ["Organization", "Group", "Member", "ApiKey"] {
            for operation in ["CREATE", "UPDATE", "DELETE"] {
                for allowed in [true, false] {
                    let _ = self.decisions.get_or_create_owned(&DecisionLabels {
                        kind,
                        operation,
                        allowed,
                    });
                }
            }
        }
        for result in ["published", "failed", "dropped"] {
            let _ = self.events.get_or_create_owned(&ResultLabel { result });
        }
        for result in ["ok", "error"] {
            let _ = self
                .certificate_reloads
                .get_or_create_owned(&ResultLabel { result });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_series_is_exposed_at_zero_before_any_request() {
        let mut registry = Registry::default();
        let _metrics = Metrics::new(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for series in [
            r#"orgaccess_webhook_decisions_total{kind="ApiKey",operation="DELETE",allowed="false"} 0"#,
            r#"orgaccess_webhook_decisions_total{kind="Group",operation="CREATE",allowed="true"} 0"#,
            r#"orgaccess_webhook_activity_events_total{result="failed"} 0"#,
            r#"orgaccess_webhook_certificate_reloads_total{result="error"} 0"#,
            "orgaccess_webhook_busy_requests_total 0",
            "orgaccess_webhook_malformed_requests_total 0",
            "orgaccess_webhook_connections_accepted_total 0",
            r#"orgaccess_webhook_tls_handshakes_total{protocol="h2"} 0"#,
            r#"orgaccess_webhook_http_requests_total{protocol="http/1.1"} 0"#,
            r#"orgaccess_webhook_connections_closed_total{reason="idle"} 0"#,
        ] {
            assert!(
                text.contains(&format!("{series}\n")),
                "{series} missing:\n{text}"
            );
        }
    }
}
