//! The decision service's request metrics (`orgaccess_decision_*`,
//! docs/decision-service.md): requests by endpoint, result and status class,
//! latency by endpoint, refusals by reason, requests in flight.
//!
//! Every label value is one of the fixed words below: an endpoint is named by
//! the route it matched (never by the path asked), a refusal by its kind
//! (never by the key, member or namespace it was about). The handles of every
//! series a request can touch are built once, up front ([`Metrics::default`]),
//! so recording a request is a few atomic additions and one histogram
//! observation: no label is built, hashed or allocated per request.
//!
//! [`measure`] wraps each listener's router (outermost, so that refusals by
//! the token layer and by axum's extractors count too); a handler that knows
//! more than the status code says (allowed or denied, and why) tells it with
//! [`tell`], through a task-local value the measuring layer reads back.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::ENVOY_PREFIX;
use crate::core::decision::{Answer, KeyRefusal};

/// Upper bounds of the latency buckets, in seconds: 10 µs to 1 s, for
/// answers that take microseconds from the index and milliseconds when a
/// caller's token is first reviewed.
pub const BUCKETS: [f64; 15] = [
    10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3,
    250e-3, 1.0,
];

/// The endpoint a request asked, by the route it matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Check,
    CheckBatch,
    KeysVerify,
    NginxAuth,
    EnvoyAuthz,
    /// Any other path (answered 404).
    Other,
}

impl Endpoint {
    pub const ALL: [Endpoint; 6] = [
        Endpoint::Check,
        Endpoint::CheckBatch,
        Endpoint::KeysVerify,
        Endpoint::NginxAuth,
        Endpoint::EnvoyAuthz,
        Endpoint::Other,
    ];

    /// The endpoint a request path reaches on a listener that serves
    /// `/v1/...` (`all`: the HTTPS one) or only the gateway endpoints, as the
    /// routers route it (Envoy's prefix with anything under it); any other
    /// path is `Other`, never named.
    pub fn of_path(path: &str, all: bool) -> Endpoint {
        match path {
            "/v1/check" if all => Endpoint::Check,
            "/v1/check/batch" if all => Endpoint::CheckBatch,
            "/v1/keys/verify" if all => Endpoint::KeysVerify,
            "/nginx/auth" => Endpoint::NginxAuth,
            p if p
                .strip_prefix(ENVOY_PREFIX)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')) =>
            {
                Endpoint::EnvoyAuthz
            }
            _ => Endpoint::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Check => "check",
            Endpoint::CheckBatch => "check_batch",
            Endpoint::KeysVerify => "keys_verify",
            Endpoint::NginxAuth => "nginx_auth",
            Endpoint::EnvoyAuthz => "envoy_authz",
            Endpoint::Other => "other",
        }
    }

    /// Whether the endpoint answers whether a key is live (verification and
    /// the gateways), as opposed to a check.
    fn verifies_keys(self) -> bool {
        matches!(
            self,
            Endpoint::KeysVerify | Endpoint::NginxAuth | Endpoint::EnvoyAuthz
        )
    }

    /// Whether the endpoint denies with a 4xx (the gateways: their status is
    /// the answer) rather than with a 200 saying no.
    fn denies_by_status(self) -> bool {
        matches!(self, Endpoint::NginxAuth | Endpoint::EnvoyAuthz)
    }
}

/// What a request came to: the question answered yes, answered no, or not
/// answered at all (a refused caller, a bad request, a failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    Error,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Allowed, Verdict::Denied, Verdict::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::Error => "error",
        }
    }
}

/// Status classes, `1xx` to `5xx`.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The index of a status code's class in [`CLASSES`].
fn class_of(status: StatusCode) -> usize {
    (status.as_u16() / 100).clamp(1, 5) as usize - 1
}

/// Why a request was refused: a denial's reason, or why the question was
/// not answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    // Denials of a check.
    /// The principal lacks part of what is needed.
    NotGranted,
    /// The principal holds nothing at all: unknown, pending, disabled,
    /// expired, or an identity no Member maps.
    HoldsNothing,
    // Denials of a presented key ([`KeyRefusal`]).
    UnknownKey,
    KeyDisabled,
    KeyExpired,
    /// The client address is outside the key's allow list or in its deny list.
    AddressRefused,
    /// A rotated-out value past its overlap.
    PreviousPastOverlap,
    /// A gateway request carrying no key.
    NoKey,
    // Questions not answered.
    /// Unreadable JSON, an unknown field, a bad verb, target or principal, no
    /// namespace or client address.
    BadRequest,
    /// A body over the limit, or a batch of too many checks.
    TooLarge,
    /// The caller may not ask about this namespace (or has no name).
    CallerNotAllowed,
    /// The caller's bearer token was refused by the apiserver.
    Unauthenticated,
    /// Too many unknown tokens from the caller's address.
    RateLimited,
    /// The apiserver could not review the caller's token.
    Unavailable,
    /// No such endpoint, or not with this method.
    NotFound,
    /// The service failed to answer (a stored search hub it cannot send).
    Internal,
}

impl Reason {
    pub const ALL: [Reason; 16] = [
        Reason::NotGranted,
        Reason::HoldsNothing,
        Reason::UnknownKey,
        Reason::KeyDisabled,
        Reason::KeyExpired,
        Reason::AddressRefused,
        Reason::PreviousPastOverlap,
        Reason::NoKey,
        Reason::BadRequest,
        Reason::TooLarge,
        Reason::CallerNotAllowed,
        Reason::Unauthenticated,
        Reason::RateLimited,
        Reason::Unavailable,
        Reason::NotFound,
        Reason::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotGranted => "not_granted",
            Reason::HoldsNothing => "holds_nothing",
            Reason::UnknownKey => "unknown_key",
            Reason::KeyDisabled => "key_disabled",
            Reason::KeyExpired => "key_expired",
            Reason::AddressRefused => "address_refused",
            Reason::PreviousPastOverlap => "previous_value_past_overlap",
            Reason::NoKey => "no_key",
            Reason::BadRequest => "bad_request",
            Reason::TooLarge => "too_large",
            Reason::CallerNotAllowed => "caller_not_allowed",
            Reason::Unauthenticated => "unauthenticated",
            Reason::RateLimited => "rate_limited",
            Reason::Unavailable => "unavailable",
            Reason::NotFound => "not_found",
            Reason::Internal => "internal",
        }
    }

    /// A presented key's refusal.
    pub fn of_key(why: KeyRefusal) -> Reason {
        match why {
            KeyRefusal::Unknown => Reason::UnknownKey,
            KeyRefusal::Disabled => Reason::KeyDisabled,
            KeyRefusal::Expired => Reason::KeyExpired,
            KeyRefusal::AddressRefused => Reason::AddressRefused,
            KeyRefusal::PreviousPastOverlap => Reason::PreviousPastOverlap,
        }
    }

    /// Why an error status was answered, when no handler said more: axum's
    /// extractors (400, 413, 415, 422, 404, 405), the token layer (401, 429,
    /// 503), a handler's refusal of the question (400, 403, 413).
    pub fn of_status(status: StatusCode) -> Reason {
        match status.as_u16() {
            401 => Reason::Unauthenticated,
            403 => Reason::CallerNotAllowed,
            404 | 405 => Reason::NotFound,
            413 => Reason::TooLarge,
            429 => Reason::RateLimited,
            503 => Reason::Unavailable,
            500..=599 => Reason::Internal,
            _ => Reason::BadRequest,
        }
    }

    /// Whether `endpoint` can refuse for this reason (the series created at
    /// zero up front).
    fn possible_at(self, endpoint: Endpoint) -> bool {
        match self {
            Reason::NotGranted | Reason::HoldsNothing => {
                matches!(endpoint, Endpoint::Check | Endpoint::CheckBatch)
            }
            Reason::UnknownKey
            | Reason::KeyDisabled
            | Reason::KeyExpired
            | Reason::AddressRefused
            | Reason::PreviousPastOverlap => endpoint.verifies_keys(),
            Reason::NoKey => endpoint.denies_by_status(),
            Reason::NotFound => endpoint == Endpoint::Other,
            Reason::BadRequest | Reason::TooLarge | Reason::CallerNotAllowed | Reason::Internal => {
                endpoint != Endpoint::Other
            }
            Reason::Unauthenticated | Reason::RateLimited | Reason::Unavailable => matches!(
                endpoint,
                Endpoint::Check | Endpoint::CheckBatch | Endpoint::KeysVerify
            ),
        }
    }
}

/// What a handler tells the measuring layer about its answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `None`: judged by the status code alone.
    pub verdict: Option<Verdict>,
    pub reason: Option<Reason>,
    /// A batch's answers: allowed, and denied for want of privileges or
    /// holding nothing (each denied check is one refusal).
    pub batch: [u32; 3],
}

impl Outcome {
    pub const ALLOWED: Outcome = Outcome {
        verdict: Some(Verdict::Allowed),
        reason: None,
        batch: [0; 3],
    };

    /// Denied for `reason`.
    pub fn denied(reason: Reason) -> Outcome {
        Outcome {
            verdict: Some(Verdict::Denied),
            reason: Some(reason),
            batch: [0; 3],
        }
    }

    /// A check's answer.
    pub fn answer(a: &Answer) -> Outcome {
        if a.allowed {
            Outcome::ALLOWED
        } else {
            Outcome::denied(answer_reason(a))
        }
    }

    /// A presented key's verification.
    pub fn key<T>(verified: &Result<T, KeyRefusal>) -> Outcome {
        match verified {
            Ok(_) => Outcome::ALLOWED,
            Err(why) => Outcome::denied(Reason::of_key(*why)),
        }
    }

    /// A batch's answers: denied when any answer is.
    pub fn batch(answers: &[Answer]) -> Outcome {
        let mut counts = [0u32; 3];
        for a in answers {
            let slot = match (a.allowed, answer_reason(a)) {
                (true, _) => 0,
                (false, Reason::NotGranted) => 1,
                (false, _) => 2,
            };
            counts[slot] += 1;
        }
        let denied = counts[1] + counts[2] > 0;
        Outcome {
            verdict: Some(if denied {
                Verdict::Denied
            } else {
                Verdict::Allowed
            }),
            reason: None,
            batch: counts,
        }
    }
}

/// A denied check's reason: holding nothing (the answer says why), or
/// lacking part of the need.
fn answer_reason(a: &Answer) -> Reason {
    if a.reason.is_some() {
        Reason::HoldsNothing
    } else {
        Reason::NotGranted
    }
}

tokio::task_local! {
    static OUTCOME: Cell<Outcome>;
}

/// Tells the measuring layer what the request being answered came to. Does
/// nothing outside [`measure`] (a handler called on its own).
pub fn tell(outcome: Outcome) {
    let _ = OUTCOME.try_with(|c| c.set(outcome));
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    result: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    endpoint: &'static str,
    reason: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// One endpoint's handles, built once.
#[derive(Debug)]
struct Handles {
    duration: Histogram,
    in_flight: Gauge,
    /// By verdict, then status class; `None` where no request can land
    /// (found through the family if one ever does).
    requests: [[Option<Counter>; 5]; 3],
    /// By [`Reason::ALL`] order; `None` where the endpoint cannot refuse so.
    refusals: [Option<Counter>; 16],
}

/// The decision service's metrics: the families (what the registry
/// exposes) and each endpoint's handles into them.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<EndpointLabel, Histogram, fn() -> Histogram>,
    in_flight: Family<EndpointLabel, Gauge>,
    refusals: Family<RefusalLabels, Counter>,
    handles: [Handles; 6],
    /// The HTTPS listener's connections, handshakes and requests by protocol.
    pub transport: crate::webhook::connection::Transport,
}

impl Default for Metrics {
    /// Every series a request can reach, created at zero; registered nowhere
    /// until [`Metrics::register`].
    fn default() -> Self {
        let requests: Family<RequestLabels, Counter> = Family::default();
        let duration: Family<EndpointLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let in_flight: Family<EndpointLabel, Gauge> = Family::default();
        let refusals: Family<RefusalLabels, Counter> = Family::default();
        let handles = Endpoint::ALL.map(|endpoint| {
            let label = EndpointLabel {
                endpoint: endpoint.as_str(),
            };
            let request = |verdict: Verdict, class: usize| {
                possible(endpoint, verdict, class).then(|| {
                    requests.get_or_create_owned(&RequestLabels {
                        endpoint: endpoint.as_str(),
                        result: verdict.as_str(),
                        status: CLASSES[class],
                    })
                })
            };
            Handles {
                duration: duration.get_or_create_owned(&label),
                in_flight: in_flight.get_or_create_owned(&label),
                requests: Verdict::ALL.map(|v| std::array::from_fn(|class| request(v, class))),
                refusals: Reason::ALL.map(|reason| {
                    reason.possible_at(endpoint).then(|| {
                        refusals.get_or_create_owned(&RefusalLabels {
                            endpoint: endpoint.as_str(),
                            reason: reason.as_str(),
                        })
                    })
                }),
            }
        });
        Metrics {
            requests,
            duration,
            in_flight,
            refusals,
            handles,
            transport: Default::default(),
        }
    }
}

/// Whether a request to `endpoint` can come to `verdict` with a status of
/// class `class` (index in [`CLASSES`]): the series created at zero.
fn possible(endpoint: Endpoint, verdict: Verdict, class: usize) -> bool {
    match (verdict, CLASSES[class]) {
        (Verdict::Allowed, "2xx") => endpoint != Endpoint::Other,
        (Verdict::Denied, "2xx") => !endpoint.denies_by_status() && endpoint != Endpoint::Other,
        (Verdict::Denied, "4xx") => endpoint.denies_by_status(),
        (Verdict::Error, "4xx") => true,
        (Verdict::Error, "5xx") => endpoint != Endpoint::Other,
        _ => false,
    }
}

impl Metrics {
    /// Exposes the metrics in `registry` (`orgaccess_decision_*`).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("orgaccess_decision");
        r.register(
            "requests",
            "Decision service requests, by endpoint, result (allowed, denied, error) and status class",
            self.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from a decision request's headers to its answer, by endpoint",
            self.duration.clone(),
        );
        r.register(
            "requests_in_flight",
            "Decision service requests being answered, by endpoint",
            self.in_flight.clone(),
        );
        r.register(
            "refusals",
            "Decision service denials and refused questions, by endpoint and reason (a batch counts each denied check)",
            self.refusals.clone(),
        );
        self.transport.register(r);
    }

    /// Records one answered request.
    pub fn record(&self, endpoint: Endpoint, status: StatusCode, told: Outcome, seconds: f64) {
        let h = &self.handles[endpoint as usize];
        h.duration.observe(seconds);
        let class = class_of(status);
        let (verdict, reason) = match told.verdict {
            Some(Verdict::Allowed) if !status.is_success() => {
                (Verdict::Error, Some(Reason::of_status(status)))
            }
            Some(v) => (v, told.reason),
            None if status.is_success() => (Verdict::Allowed, None),
            None => (Verdict::Error, Some(Reason::of_status(status))),
        };
        match &h.requests[verdict as usize][class] {
            Some(c) => {
                c.inc();
            }
            None => {
                self.requests
                    .get_or_create(&RequestLabels {
                        endpoint: endpoint.as_str(),
                        result: verdict.as_str(),
                        status: CLASSES[class],
                    })
                    .inc();
            }
        }
        if let Some(reason) = reason {
            self.refuse(endpoint, reason, 1);
        }
        let [_, not_granted, holds_nothing] = told.batch;
        self.refuse(endpoint, Reason::NotGranted, not_granted);
        self.refuse(endpoint, Reason::HoldsNothing, holds_nothing);
    }

    fn refuse(&self, endpoint: Endpoint, reason: Reason, n: u32) {
        if n == 0 {
            return;
        }
        match &self.handles[endpoint as usize].refusals[reason as usize] {
            Some(c) => {
                c.inc_by(n.into());
            }
            None => {
                self.refusals
                    .get_or_create(&RefusalLabels {
                        endpoint: endpoint.as_str(),
                        reason: reason.as_str(),
                    })
                    .inc_by(n.into());
            }
        }
    }
}

/// What the measuring layer of one listener reads.
#[derive(Clone)]
pub struct Listener {
    pub metrics: Arc<Metrics>,
    /// Whether the listener serves `/v1/...` (the HTTPS one) besides the
    /// gateway endpoints.
    pub all: bool,
}

/// Counts a request in flight while alive.
struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a Gauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The measuring layer (`axum::middleware::from_fn_with_state`): in flight,
/// latency, the request's result and refusal. A request whose client went
/// away before the answer leaves the in-flight count and is not recorded.
pub async fn measure(State(listener): State<Listener>, request: Request, next: Next) -> Response {
    let metrics = &listener.metrics;
    let endpoint = Endpoint::of_path(request.uri().path(), listener.all);
    let _in_flight = InFlight::enter(&metrics.handles[endpoint as usize].in_flight);
    let start = Instant::now();
    let (response, told) = OUTCOME
        .scope(Cell::new(Outcome::default()), async {
            let response = next.run(request).await;
            (response, OUTCOME.with(Cell::get))
        })
        .await;
    metrics.record(
        endpoint,
        response.status(),
        told,
        start.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Metrics) -> String {
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    /// The value of one series (its name and labels as exposed), if exposed.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    }

    fn requests(endpoint: &str, result: &str, status: &str) -> String {
        format!(
            r#"orgaccess_decision_requests_total{{endpoint="{endpoint}",result="{result}",status="{status}"}}"#
        )
    }

    fn refusals(endpoint: &str, reason: &str) -> String {
        format!(r#"orgaccess_decision_refusals_total{{endpoint="{endpoint}",reason="{reason}"}}"#)
    }

    #[test]
    fn paths_name_their_endpoint_and_nothing_else() {
        use Endpoint::*;
        // Path, on the HTTPS listener, on the plain one (gateways only).
        for (path, https, plain) in [
            ("/v1/check", Check, Other),
            ("/v1/check/batch", CheckBatch, Other),
            ("/v1/keys/verify", KeysVerify, Other),
            ("/nginx/auth", NginxAuth, NginxAuth),
            ("/envoy/authz", EnvoyAuthz, EnvoyAuthz),
            ("/envoy/authz/", EnvoyAuthz, EnvoyAuthz),
            (
                "/envoy/authz/any/path/a-client-chose",
                EnvoyAuthz,
                EnvoyAuthz,
            ),
            ("/envoy/authzed", Other, Other),
            ("/v1/check/", Other, Other),
            ("/v1/checks", Other, Other),
            ("/nginx/auth/x", Other, Other),
            ("/", Other, Other),
            ("/metrics", Other, Other),
        ] {
            assert_eq!(Endpoint::of_path(path, true), https, "{path}");
            assert_eq!(Endpoint::of_path(path, false), plain, "{path} (plain)");
        }
    }

    #[test]
    fn statuses_and_key_refusals_map_to_their_reasons() {
        for (status, reason) in [
            (400, Reason::BadRequest),
            (415, Reason::BadRequest),
            (422, Reason::BadRequest),
            (401, Reason::Unauthenticated),
            (403, Reason::CallerNotAllowed),
            (404, Reason::NotFound),
            (405, Reason::NotFound),
            (413, Reason::TooLarge),
            (429, Reason::RateLimited),
            (500, Reason::Internal),
            (502, Reason::Internal),
            (503, Reason::Unavailable),
        ] {
            assert_eq!(
                Reason::of_status(StatusCode::from_u16(status).unwrap()),
                reason,
                "{status}"
            );
        }
        for (why, reason) in [
            (KeyRefusal::Unknown, "unknown_key"),
            (KeyRefusal::Disabled, "key_disabled"),
            (KeyRefusal::Expired, "key_expired"),
            (KeyRefusal::AddressRefused, "address_refused"),
            (
                KeyRefusal::PreviousPastOverlap,
                "previous_value_past_overlap",
            ),
        ] {
            assert_eq!(Reason::of_key(why).as_str(), reason);
        }
    }

    #[test]
    fn the_enums_list_every_variant_in_index_order() {
        for (i, e) in Endpoint::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
        }
        for (i, v) in Verdict::ALL.iter().enumerate() {
            assert_eq!(*v as usize, i);
        }
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let words: std::collections::BTreeSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(words.len(), Reason::ALL.len());
    }

    #[test]
    fn the_series_a_request_can_reach_are_exposed_at_zero_and_no_other() {
        let t = text(&Metrics::default());
        for series in [
            requests("check", "allowed", "2xx"),
            requests("check", "denied", "2xx"),
            requests("check_batch", "error", "4xx"),
            requests("keys_verify", "denied", "2xx"),
            requests("nginx_auth", "denied", "4xx"),
            requests("envoy_authz", "error", "5xx"),
            requests("other", "error", "4xx"),
            refusals("check", "not_granted"),
            refusals("check_batch", "holds_nothing"),
            refusals("keys_verify", "unknown_key"),
            refusals("nginx_auth", "no_key"),
            refusals("envoy_authz", "address_refused"),
            refusals("check", "unauthenticated"),
            refusals("other", "not_found"),
            r#"orgaccess_decision_requests_in_flight{endpoint="envoy_authz"}"#.into(),
            r#"orgaccess_decision_request_duration_seconds_count{endpoint="check"}"#.into(),
        ] {
            assert_eq!(value(&t, &series), Some(0.0), "{series}:\n{t}");
        }
        for series in [
            requests("check", "allowed", "4xx"),
            requests("nginx_auth", "denied", "2xx"),
            requests("other", "allowed", "2xx"),
            refusals("check", "unknown_key"),
            refusals("keys_verify", "not_granted"),
            refusals("nginx_auth", "unauthenticated"),
            refusals("check", "no_key"),
        ] {
            assert_eq!(value(&t, &series), None, "{series} should not exist:\n{t}");
        }
        // The buckets go from 10 µs to 1 s.
        assert!(t.contains(r#"orgaccess_decision_request_duration_seconds_bucket{le="0.00001",endpoint="check"} 0"#), "{t}");
        assert!(
            t.contains(
                r#"orgaccess_decision_request_duration_seconds_bucket{le="1.0",endpoint="check"} 0"#
            ),
            "{t}"
        );
    }

    #[test]
    fn each_request_counts_once_by_what_it_came_to() {
        let ok = StatusCode::OK;
        let denied_answer = Answer {
            allowed: false,
            granted_by: Vec::new(),
            missing: Vec::new(),
            reason: Some("the key is disabled".into()),
        };
        let allowed_answer = Answer {
            allowed: true,
            ..denied_answer.clone()
        };
        let lacking = Answer {
            reason: None,
            ..denied_answer.clone()
        };
        let batch = Outcome::batch(&[
            allowed_answer.clone(),
            lacking.clone(),
            lacking.clone(),
            denied_answer.clone(),
        ]);
        assert_eq!(batch.batch, [1, 2, 1]);
        // Endpoint, status, what the handler told; result, class, reason.
        type Expected = (&'static str, &'static str, Option<&'static str>);
        let cases: Vec<(Endpoint, u16, Outcome, Expected)> = vec![
            (
                Endpoint::Check,
                200,
                Outcome::answer(&allowed_answer),
                ("allowed", "2xx", None),
            ),
            (
                Endpoint::Check,
                200,
                Outcome::answer(&lacking),
                ("denied", "2xx", Some("not_granted")),
            ),
            (
                Endpoint::Check,
                200,
                Outcome::answer(&denied_answer),
                ("denied", "2xx", Some("holds_nothing")),
            ),
            (
                Endpoint::Check,
                422,
                Outcome::default(),
                ("error", "4xx", Some("bad_request")),
            ),
            (
                Endpoint::Check,
                403,
                Outcome::default(),
                ("error", "4xx", Some("caller_not_allowed")),
            ),
            (
                Endpoint::Check,
                503,
                Outcome::default(),
                ("error", "5xx", Some("unavailable")),
            ),
            (
                Endpoint::CheckBatch,
                413,
                Outcome::default(),
                ("error", "4xx", Some("too_large")),
            ),
            (
                Endpoint::KeysVerify,
                200,
                Outcome::key::<()>(&Err(KeyRefusal::Expired)),
                ("denied", "2xx", Some("key_expired")),
            ),
            (
                Endpoint::KeysVerify,
                200,
                Outcome::key(&Ok(())),
                ("allowed", "2xx", None),
            ),
            (
                Endpoint::KeysVerify,
                401,
                Outcome::default(),
                ("error", "4xx", Some("unauthenticated")),
            ),
            (
                Endpoint::NginxAuth,
                401,
                Outcome::denied(Reason::NoKey),
                ("denied", "4xx", Some("no_key")),
            ),
            (
                Endpoint::NginxAuth,
                403,
                Outcome::key::<()>(&Err(KeyRefusal::AddressRefused)),
                ("denied", "4xx", Some("address_refused")),
            ),
            (
                Endpoint::NginxAuth,
                403,
                Outcome::default(),
                ("error", "4xx", Some("caller_not_allowed")),
            ),
            // Told allowed, answered 500: an error.
            (
                Endpoint::EnvoyAuthz,
                500,
                Outcome::ALLOWED,
                ("error", "5xx", Some("internal")),
            ),
            (
                Endpoint::EnvoyAuthz,
                200,
                Outcome::ALLOWED,
                ("allowed", "2xx", None),
            ),
            (
                Endpoint::Other,
                404,
                Outcome::default(),
                ("error", "4xx", Some("not_found")),
            ),
            // Series not made up front are still counted.
            (
                Endpoint::Other,
                200,
                Outcome::default(),
                ("allowed", "2xx", None),
            ),
            (
                Endpoint::Check,
                301,
                Outcome::default(),
                ("error", "3xx", Some("bad_request")),
            ),
        ];
        for (endpoint, status, told, (result, class, reason)) in cases {
            let m = Metrics::default();
            let status = StatusCode::from_u16(status).unwrap();
            m.record(endpoint, status, told, 0.0002);
            let t = text(&m);
            let e = endpoint.as_str();
            let case = format!("{e} {status} {told:?}");
            assert_eq!(
                value(&t, &requests(e, result, class)),
                Some(1.0),
                "{case}:\n{t}"
            );
            let total: f64 = t
                .lines()
                .filter(|l| l.starts_with("orgaccess_decision_requests_total{"))
                .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
                .sum();
            assert_eq!(total, 1.0, "{case}");
            let refused: f64 = t
                .lines()
                .filter(|l| l.starts_with("orgaccess_decision_refusals_total{"))
                .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
                .sum();
            match reason {
                Some(r) => {
                    assert_eq!(value(&t, &refusals(e, r)), Some(1.0), "{case}:\n{t}");
                    assert_eq!(refused, 1.0, "{case}");
                }
                None => assert_eq!(refused, 0.0, "{case}"),
            }
            let bucket = format!(
                r#"orgaccess_decision_request_duration_seconds_bucket{{le="0.00025",endpoint="{e}"}}"#
            );
            assert_eq!(value(&t, &bucket), Some(1.0), "{case}:\n{t}");
        }
        let m = Metrics::default();
        m.record(Endpoint::CheckBatch, ok, batch, 0.0);
        let t = text(&m);
        assert_eq!(
            value(&t, &requests("check_batch", "denied", "2xx")),
            Some(1.0)
        );
        assert_eq!(
            value(&t, &refusals("check_batch", "not_granted")),
            Some(2.0)
        );
        assert_eq!(
            value(&t, &refusals("check_batch", "holds_nothing")),
            Some(1.0)
        );
    }

    #[test]
    fn in_flight_counts_while_a_request_is_answered() {
        let m = Metrics::default();
        let gauge = &m.handles[Endpoint::NginxAuth as usize].in_flight;
        {
            let _one = InFlight::enter(gauge);
            let _two = InFlight::enter(gauge);
            assert_eq!(gauge.get(), 2);
        }
        assert_eq!(gauge.get(), 0);
    }
}
