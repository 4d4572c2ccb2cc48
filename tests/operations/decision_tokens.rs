//! The decision service's callers by service-account token
//! (`--decision-token-review`), on the test control plane: the apiserver
//! vouches for the token (TokenReview), `--decision-allow` maps its user to
//! namespaces, client certificates keep working on the same listener, and an
//! API key sent to a gateway endpoint is never taken for a caller's token;
//! the request metrics count the token layer's refusals, and no token.

use crate::support;

use std::time::Duration;

use orgaccess::index::Index;
use serde_json::json;
use support::{ADMIN, assert_success, kubectl, plane};

/// Sum of the apiserver's `apiserver_request_total` for TokenReview creates.
async fn token_reviews_served(admin: &kube::Client) -> f64 {
    let req = axum::http::Request::get("/metrics")
        .body(Vec::new())
        .unwrap();
    let text = admin.request_text(req).await.unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("apiserver_request_total{")
                && l.contains("resource=\"tokenreviews\"")
                && l.contains("verb=\"POST\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn token_for(ns: &str, sa: &str) -> String {
    assert_success(
        "create a service account",
        &kubectl(ADMIN, &["-n", ns, "create", "serviceaccount", sa]).await,
    );
    let out = kubectl(ADMIN, &["-n", ns, "create", "token", sa]).await;
    assert_success("create a token", &out).trim().to_string()
}

#[tokio::test]
async fn service_account_callers_are_named_by_the_apiserver() {
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let admin = support::admin_client().await;
    let ns = support::fresh_namespace(&admin).await;
    let checker = token_for(&ns, "checker").await;
    let stranger = token_for(&ns, "stranger").await;

    let dir = tempfile::tempdir().unwrap();
    let serving = plane().issue_serving_cert(&["127.0.0.1"]).unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, &serving.cert_pem).unwrap();
    std::fs::write(&key_file, &serving.key_pem).unwrap();
    let port = support::free_port();
    let args = orgaccess::decision::DecisionArgs {
        addr: Some(([127, 0, 0, 1], port).into()),
        cert_file: Some(cert_file),
        key_file: Some(key_file),
        client_ca_file: Some(plane().webhook_client_ca_file()),
        token_review: true,
        allow: vec![
            format!("system:serviceaccount:{ns}:checker={ns}"),
            format!("gateway={ns}"),
        ],
        ..Default::default()
    };
    let reviewer = support::client_as(orgaccess_testenv::OPERATOR_USER).await;
    let metrics = std::sync::Arc::new(orgaccess::decision::metrics::Metrics::default());
    tokio::spawn(orgaccess::decision::serve(
        args,
        std::sync::Arc::new(Index::new()),
        std::sync::Arc::default(),
        metrics.clone(),
        Some(reviewer),
        std::future::pending(),
    ));

    let root = reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap();
    let anonymous = reqwest::Client::builder()
        .add_root_certificate(root.clone())
        .build()
        .unwrap();
    let check_url = format!("https://127.0.0.1:{port}/v1/check");
    let question = json!({
        "namespace": ns,
        "principal": {"member": "nobody"},
        "verb": "view",
        "target": "Content/Sources",
    });
    let ask = |token: Option<String>| {
        let (client, url, body) = (anonymous.clone(), check_url.clone(), question.clone());
        async move {
            for _ in 0..100 {
                let mut req = client.post(&url).json(&body);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                if let Ok(r) = req.send().await {
                    return r.status().as_u16();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            0
        }
    };

    // The allowed service account gets answers; the same token again is
    // answered from the cache, without another TokenReview.
    let first = token_reviews_served(&admin).await;
    assert_eq!(ask(Some(checker.clone())).await, 200);
    let before = token_reviews_served(&admin).await;
    assert!(
        before - first >= 1.0,
        "the first question reviewed the token (and the apiserver counts reviews)"
    );
    for _ in 0..20 {
        assert_eq!(ask(Some(checker.clone())).await, 200);
    }
    assert_eq!(
        token_reviews_served(&admin).await - before,
        0.0,
        "a cached token was reviewed again"
    );
    // Another service account is who it is, and may not ask about ns.
    assert_eq!(ask(Some(stranger.clone())).await, 403);
    // A token the apiserver does not know, and no token at all.
    assert_eq!(ask(Some("not-a-token".into())).await, 401);
    assert_eq!(ask(None).await, 403);

    // A client certificate still names its caller on the same listener.
    let gateway = plane().issue_client_cert("gateway").unwrap();
    let with_cert = reqwest::Client::builder()
        .add_root_certificate(root)
        .identity(
            reqwest::Identity::from_pem(
                format!("{}{}", gateway.cert_pem, gateway.key_pem).as_bytes(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    let r = with_cert
        .post(&check_url)
        .json(&question)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // At a gateway endpoint the bearer token is an API key: never reviewed,
    // never a caller. Without a certificate the question is refused.
    let before = token_reviews_served(&admin).await;
    let r = anonymous
        .get(format!("https://127.0.0.1:{port}/nginx/auth"))
        .header("x-orgaccess-namespace", &ns)
        .header("x-forwarded-for", "192.0.2.1")
        .bearer_auth(&checker)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        token_reviews_served(&admin).await - before,
        0.0,
        "a gateway's bearer value went to TokenReview"
    );

    // The token layer's refusals are counted with the handlers' answers
    // (the measuring layer is outermost), and no token is a label.
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for (series, want) in [
        // 21 by the allowed account, 1 by certificate: a member that does not exist.
        (
            r#"orgaccess_decision_requests_total{endpoint="check",result="denied",status="2xx"}"#,
            22,
        ),
        (
            r#"orgaccess_decision_refusals_total{endpoint="check",reason="holds_nothing"}"#,
            22,
        ),
        (
            r#"orgaccess_decision_refusals_total{endpoint="check",reason="unauthenticated"}"#,
            1,
        ),
        (
            r#"orgaccess_decision_refusals_total{endpoint="check",reason="caller_not_allowed"}"#,
            2,
        ),
        (
            r#"orgaccess_decision_refusals_total{endpoint="nginx_auth",reason="caller_not_allowed"}"#,
            1,
        ),
    ] {
        assert!(
            text.contains(&format!("{series} {want}\n")),
            "{series} {want}:\n{text}"
        );
    }
    for secret in [&checker, &stranger, &ns] {
        assert!(
            !text.contains(secret.as_str()),
            "a token or namespace in the metrics"
        );
    }
}
