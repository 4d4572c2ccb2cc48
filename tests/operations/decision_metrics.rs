//! The decision service's request metrics, in process: requests of every
//! kind to both listeners' routers (checks, batches, verifications, NGINX,
//! Envoy, refused questions), then `/metrics` read from the admin server as
//! a scraper reads it: the counts by endpoint, result and reason, the
//! latency histograms, nothing in flight, and no key value, key name,
//! member, namespace or path a caller sent anywhere in the text.

use std::sync::{Arc, Mutex};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use orgaccess::api::{ApiKey, ApiKeyStatus};
use orgaccess::decision::metrics::Metrics;
use orgaccess::decision::{Callers, Gate, Reach, Service, nginx_router, router};
use orgaccess::index::Index;
use orgaccess::webhook::tls::ClientName;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use super::decision::{
    KEY_VALUE, NS, OLD_VALUE, hex_sha256, in_an_hour, index, nginx_get, post, serve,
};

const LAPSED_VALUE: &str = "oa_test_value_lapsed_3f9a";
const OFF_VALUE: &str = "oa_test_value_switched_off_77c2";
const WRONG_VALUE: &str = "oa_test_value_nobody_has_this_e41b";

/// A copy of the example key under `name` with its own value: `lapsed`
/// created 100 days ago (its P90D lifetime over), `switched-off` disabled.
fn extra_key(index: &Index, name: &str, value: &str) {
    let mut k: ApiKey = serde_json::from_value(json!({
        "apiVersion": "orgaccess.dev/v1alpha1",
        "kind": "ApiKey",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"displayName": name, "template": "AnonymousSearch", "lifetime": "P90D",
                 "enabled": name != "switched-off"},
    }))
    .unwrap();
    let age = if name == "lapsed" { 100 * 24 } else { 24 };
    k.metadata.creation_timestamp = Some(Time(
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(age),
    ));
    k.status = Some(ApiKeyStatus {
        hash: Some(hex_sha256(value)),
        ..ApiKeyStatus::default()
    });
    index.apply(&k);
}

/// Reads `/metrics` from an admin server over `registry`.
async fn scrape(admin: &str, accept: Option<&str>) -> String {
    let mut req = reqwest::Client::new().get(format!("{admin}/metrics"));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The value of one series, `0` when the series is not exposed.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

fn requests(endpoint: &str, result: &str, status: &str) -> String {
    format!(
        r#"orgaccess_decision_requests_total{{endpoint="{endpoint}",result="{result}",status="{status}"}}"#
    )
}

fn refusals(endpoint: &str, reason: &str) -> String {
    format!(r#"orgaccess_decision_refusals_total{{endpoint="{endpoint}",reason="{reason}"}}"#)
}

fn sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn every_request_is_counted_by_endpoint_result_and_reason_and_no_secret_is_a_label() {
    let idx = index(in_an_hour());
    extra_key(&idx, "lapsed", LAPSED_VALUE);
    extra_key(&idx, "switched-off", OFF_VALUE);
    let metrics = Arc::new(Metrics::default());
    let registry = Arc::new(Mutex::new(Registry::default()));
    metrics.register(&mut registry.lock().unwrap());
    let admin = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(orgaccess::admin::serve_on(
            listener,
            registry,
            Vec::new(),
            None,
            std::future::pending(),
        ));
        format!("http://{addr}")
    };
    let https = serve(
        router(Service {
            index: idx.clone(),
            gate: Gate::Certificates(Callers::parse(&[format!("gw={NS}")]).unwrap()),
            default_namespace: None,
            usage: Arc::default(),
            metrics: metrics.clone(),
        })
        .layer(axum::Extension(ClientName(Some("gw".into())))),
    )
    .await;
    let plain = serve(nginx_router(Service {
        index: idx,
        gate: Gate::Fixed(Reach::Only([NS.to_string()].into())),
        default_namespace: Some(NS.into()),
        usage: Arc::default(),
        metrics: metrics.clone(),
    }))
    .await;

    // Before any request: every series at zero.
    let before = scrape(&admin, None).await;
    assert_eq!(sum(&before, "orgaccess_decision_requests_total{"), 0.0);
    assert_eq!(value(&before, &requests("check", "allowed", "2xx")), 0.0);
    assert!(
        before.contains(&requests("nginx_auth", "denied", "4xx")),
        "{before}"
    );

    // Names a caller chooses, which must never become label values.
    let stranger_member = "member-name-from-a-caller-9d2f";
    let stranger_namespace = "namespace-from-a-caller-5b1e";
    let stranger_path = "/envoy/authz/path-from-a-caller-a7c3";
    let check = |principal: Value, verb: &str, target: &str| json!({"namespace": NS, "principal": principal, "verb": verb, "target": target});
    let url = |path: &str| format!("{https}{path}");

    // /v1/check: 2 allowed, 1 lacking, 1 holding nothing, 3 refused questions.
    for _ in 0..2 {
        let (s, a) = post(
            &url("/v1/check"),
            check(json!({"member": "john-smith"}), "view", "Analytics/Reports"),
        )
        .await;
        assert_eq!((s, &a["allowed"]), (200, &json!(true)), "{a}");
    }
    let lacking = check(
        json!({"apiKey": "public-search"}),
        "edit",
        "Organization/Groups",
    );
    let (s, a) = post(&url("/v1/check"), lacking.clone()).await;
    assert_eq!((s, &a["allowed"]), (200, &json!(false)), "{a}");
    let nobody = check(
        json!({"member": stranger_member}),
        "view",
        "Analytics/Reports",
    );
    let (s, a) = post(&url("/v1/check"), nobody.clone()).await;
    assert_eq!((s, &a["allowed"]), (200, &json!(false)), "{a}");
    let (s, _) = post(
        &url("/v1/check"),
        check(json!({"member": "john-smith"}), "fly", "Analytics/Reports"),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = post(&url("/v1/check"), json!({"namespace": NS, "unknown": 1})).await;
    assert_eq!(s, 422);
    let (s, _) = post(
        &url("/v1/check"),
        json!({"namespace": stranger_namespace, "principal": {"member": "john-smith"},
               "verb": "view", "target": "Analytics/Reports"}),
    )
    .await;
    assert_eq!(s, 403);

    // /v1/check/batch: one denied batch (1 allowed, 1 lacking, 1 nothing),
    // one of 101 checks.
    let allowed = check(json!({"member": "john-smith"}), "view", "Analytics/Reports");
    let (s, b) = post(
        &url("/v1/check/batch"),
        json!({"checks": [allowed.clone(), lacking, nobody]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let too_many: Vec<Value> = (0..101).map(|_| allowed.clone()).collect();
    let (s, _) = post(&url("/v1/check/batch"), json!({ "checks": too_many })).await;
    assert_eq!(s, 413);

    // /v1/keys/verify: each refusal once, two live values.
    let verify = |key: &str, ip: &str| {
        let u = url("/v1/keys/verify");
        let body = json!({"namespace": NS, "key": key, "clientIp": ip});
        async move { post(&u, body).await }
    };
    for (key, ip, valid) in [
        (KEY_VALUE, "198.51.100.7", true),
        (OLD_VALUE, "198.51.100.7", true),
        (WRONG_VALUE, "198.51.100.7", false),
        (LAPSED_VALUE, "198.51.100.7", false),
        (OFF_VALUE, "198.51.100.7", false),
        (KEY_VALUE, "203.0.113.9", false),
    ] {
        let (s, v) = verify(key, ip).await;
        assert_eq!((s, &v["valid"]), (200, &json!(valid)), "{v}");
    }

    // NGINX on the plain listener: allowed, no key, unknown key, refused address.
    let nginx = format!("{plain}/nginx/auth");
    for (headers, status) in [
        (
            vec![("x-api-key", KEY_VALUE), ("x-real-ip", "198.51.100.7")],
            200,
        ),
        (vec![("x-real-ip", "198.51.100.7")], 401),
        (
            vec![("x-api-key", WRONG_VALUE), ("x-real-ip", "198.51.100.7")],
            401,
        ),
        (
            vec![("x-api-key", KEY_VALUE), ("x-real-ip", "203.0.113.9")],
            403,
        ),
        (vec![("x-api-key", KEY_VALUE)], 400),
        (
            vec![
                ("x-api-key", KEY_VALUE),
                ("x-real-ip", "198.51.100.7"),
                ("x-orgaccess-namespace", stranger_namespace),
            ],
            403,
        ),
    ] {
        assert_eq!(
            nginx_get(&nginx, &headers).await.status(),
            status,
            "{headers:?}"
        );
    }

    // Envoy on the HTTPS listener, under a path the client chose.
    let envoy = url(stranger_path);
    let bearer = format!("Bearer {LAPSED_VALUE}");
    for (headers, status) in [
        (
            vec![
                ("x-api-key", KEY_VALUE),
                ("x-forwarded-for", "198.51.100.7"),
                ("x-orgaccess-namespace", NS),
            ],
            200,
        ),
        (
            vec![
                ("authorization", bearer.as_str()),
                ("x-forwarded-for", "198.51.100.7"),
                ("x-orgaccess-namespace", NS),
            ],
            401,
        ),
    ] {
        assert_eq!(
            nginx_get(&envoy, &headers).await.status(),
            status,
            "{headers:?}"
        );
    }

    // No such endpoint; and one the plain listener does not serve.
    assert_eq!(nginx_get(&url("/v2/everything"), &[]).await.status(), 404);
    let r = reqwest::Client::new()
        .post(format!("{plain}/v1/check"))
        .json(&allowed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let text = scrape(&admin, None).await;
    for (series, want) in [
        (requests("check", "allowed", "2xx"), 2.0),
        (requests("check", "denied", "2xx"), 2.0),
        (requests("check", "error", "4xx"), 3.0),
        (refusals("check", "not_granted"), 1.0),
        (refusals("check", "holds_nothing"), 1.0),
        (refusals("check", "bad_request"), 2.0),
        (refusals("check", "caller_not_allowed"), 1.0),
        (requests("check_batch", "denied", "2xx"), 1.0),
        (requests("check_batch", "error", "4xx"), 1.0),
        (refusals("check_batch", "not_granted"), 1.0),
        (refusals("check_batch", "holds_nothing"), 1.0),
        (refusals("check_batch", "too_large"), 1.0),
        (requests("keys_verify", "allowed", "2xx"), 2.0),
        (requests("keys_verify", "denied", "2xx"), 4.0),
        (refusals("keys_verify", "unknown_key"), 1.0),
        (refusals("keys_verify", "key_expired"), 1.0),
        (refusals("keys_verify", "key_disabled"), 1.0),
        (refusals("keys_verify", "address_refused"), 1.0),
        (requests("nginx_auth", "allowed", "2xx"), 1.0),
        (requests("nginx_auth", "denied", "4xx"), 3.0),
        (requests("nginx_auth", "error", "4xx"), 2.0),
        (refusals("nginx_auth", "no_key"), 1.0),
        (refusals("nginx_auth", "unknown_key"), 1.0),
        (refusals("nginx_auth", "address_refused"), 1.0),
        (refusals("nginx_auth", "bad_request"), 1.0),
        (refusals("nginx_auth", "caller_not_allowed"), 1.0),
        (requests("envoy_authz", "allowed", "2xx"), 1.0),
        (requests("envoy_authz", "denied", "4xx"), 1.0),
        (refusals("envoy_authz", "key_expired"), 1.0),
        (requests("other", "error", "4xx"), 2.0),
        (refusals("other", "not_found"), 2.0),
    ] {
        assert_eq!(value(&text, &series), want, "{series}:\n{text}");
    }
    // Nothing else was counted: 7 checks, 2 batches, 6 verifications, 6
    // NGINX, 2 Envoy, 2 elsewhere.
    assert_eq!(sum(&text, "orgaccess_decision_requests_total{"), 25.0);
    assert_eq!(
        sum(&text, "orgaccess_decision_refusals_total{"),
        20.0,
        "{text}"
    );
    for (endpoint, n) in [
        ("check", 7.0),
        ("check_batch", 2.0),
        ("keys_verify", 6.0),
        ("nginx_auth", 6.0),
        ("envoy_authz", 2.0),
        ("other", 2.0),
    ] {
        let count = format!(
            r#"orgaccess_decision_request_duration_seconds_count{{endpoint="{endpoint}"}}"#
        );
        assert_eq!(value(&text, &count), n, "{count}");
        let inf = format!(
            r#"orgaccess_decision_request_duration_seconds_bucket{{le="+Inf",endpoint="{endpoint}"}}"#
        );
        assert_eq!(value(&text, &inf), n, "{inf}");
        let in_flight =
            format!(r#"orgaccess_decision_requests_in_flight{{endpoint="{endpoint}"}}"#);
        assert_eq!(value(&text, &in_flight), 0.0, "{in_flight}");
    }

    // No value, key, member, namespace or path a caller named, in either format.
    let classic = scrape(&admin, Some("text/plain")).await;
    assert!(
        classic.contains("# TYPE orgaccess_decision_requests_total counter"),
        "{classic}"
    );
    for t in [&text, &classic] {
        for secret in [
            KEY_VALUE,
            OLD_VALUE,
            WRONG_VALUE,
            LAPSED_VALUE,
            OFF_VALUE,
            "public-search",
            "lapsed",
            "switched-off",
            "john-smith",
            stranger_member,
            stranger_namespace,
            "path-from-a-caller",
            "v2/everything",
            "198.51.100",
            "203.0.113",
            NS,
        ] {
            assert!(!t.contains(secret), "{secret:?} in the metrics:\n{t}");
        }
    }
}
