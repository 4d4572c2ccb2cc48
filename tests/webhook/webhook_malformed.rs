//! Malformed admission requests, POSTed straight to the webhook over TLS: each
//! is answered with HTTP 200 and an AdmissionReview denial, and the server
//! keeps serving. Also: the serving certificate is reloaded without a restart,
//! and an unreadable one fails the start.

use crate::support;

use std::sync::{Arc, Mutex};

use orgaccess::webhook::{Config, Webhook};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use support::{admin_client, fresh_namespace, plane};

/// Starts a webhook on a free port with a certificate for 127.0.0.1.
async fn start() -> support::webhook::ServedWebhook {
    support::webhook::serve_webhook(None).await
}

/// An HTTPS client presenting the apiserver's client certificate.
fn https() -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap())
        .identity(support::webhook::client_identity(
            orgaccess_testenv::WEBHOOK_CLIENT_NAME,
        ))
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

fn review(request: Value) -> Vec<u8> {
    json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request })
        .to_string()
        .into_bytes()
}

/// A well-formed request (admin creates a valid Group), to be spoiled.
fn good_request(ns: &str) -> Value {
    json!({
        "uid": "7f0b2c4e-0000-4000-8000-000000000001",
        "kind": { "group": "orgaccess.dev", "version": "v1alpha1", "kind": "Group" },
        "resource": { "group": "orgaccess.dev", "version": "v1alpha1", "resource": "groups" },
        "name": "readers",
        "namespace": ns,
        "operation": "CREATE",
        "userInfo": { "username": "admin", "groups": ["system:masters", "system:authenticated"] },
        "object": {
            "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
            "metadata": { "name": "readers", "namespace": ns },
            "spec": { "privileges": [{ "service": "Analytics", "domain": "Reports", "level": "View" }] },
        },
        "oldObject": null,
        "dryRun": false,
    })
}

fn with(mut v: Value, path: &[&str], new: Value) -> Value {
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = new;
    v
}

fn without(mut v: Value, path: &[&str]) -> Value {
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = &mut cur[*p];
    }
    cur.as_object_mut().unwrap().remove(path[path.len() - 1]);
    v
}

/// (description, body, uid expected back)
fn corpus(ns: &str) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let good = good_request(ns);
    let uid = "7f0b2c4e-0000-4000-8000-000000000001";
    let mut deep = "[".repeat(100_000);
    deep.push_str(&"]".repeat(100_000));
    let spoil = |v: Value| review(v);
    vec![
        ("empty body", vec![], ""),
        ("not JSON", b"this is not json".to_vec(), ""),
        ("invalid UTF-8", vec![0xff, 0xfe, 0x00, 0x7b], ""),
        ("truncated JSON", review(good.clone())[..100].to_vec(), ""),
        ("JSON null", b"null".to_vec(), ""),
        ("JSON array", b"[1,2,3]".to_vec(), ""),
        ("empty object", b"{}".to_vec(), ""),
        (
            "no request",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            "",
        ),
        ("request is a string", review(json!("hello")), ""),
        ("deeply nested", deep.into_bytes(), ""),
        (
            "uid is a number",
            spoil(with(good.clone(), &["uid"], json!(42))),
            "",
        ),
        ("no kind", spoil(without(good.clone(), &["kind"])), uid),
        (
            "no userInfo",
            spoil(without(good.clone(), &["userInfo"])),
            uid,
        ),
        (
            "unknown operation",
            spoil(with(good.clone(), &["operation"], json!("EXPLODE"))),
            uid,
        ),
        (
            "CONNECT",
            spoil(with(good.clone(), &["operation"], json!("CONNECT"))),
            uid,
        ),
        (
            "unknown kind",
            spoil(with(
                good.clone(),
                &["kind"],
                json!({ "group": "apps", "version": "v1", "kind": "Deployment" }),
            )),
            uid,
        ),
        (
            "unknown version",
            spoil(with(good.clone(), &["kind", "version"], json!("v9"))),
            uid,
        ),
        (
            "no namespace",
            spoil(without(good.clone(), &["namespace"])),
            uid,
        ),
        (
            "subresource scale",
            spoil(with(good.clone(), &["subResource"], json!("scale"))),
            uid,
        ),
        (
            "CREATE without object",
            spoil(with(good.clone(), &["object"], Value::Null)),
            uid,
        ),
        (
            "object is a string",
            spoil(with(good.clone(), &["object"], json!("group"))),
            uid,
        ),
        (
            "object without spec",
            spoil(without(good.clone(), &["object", "spec"])),
            uid,
        ),
        (
            "privileges of the wrong type",
            spoil(with(
                good.clone(),
                &["object", "spec", "privileges"],
                json!("all of them"),
            )),
            uid,
        ),
        (
            "an unknown level",
            spoil(with(
                good.clone(),
                &["object", "spec", "privileges"],
                json!([{ "service": "Analytics", "domain": "Reports", "level": "Superuser" }]),
            )),
            uid,
        ),
        (
            "an unknown service",
            spoil(with(
                good.clone(),
                &["object", "spec", "privileges"],
                json!([{ "service": "Nope", "domain": "Reports", "level": "View" }]),
            )),
            uid,
        ),
        (
            "UPDATE without oldObject",
            spoil(with(good.clone(), &["operation"], json!("UPDATE"))),
            uid,
        ),
        (
            "DELETE without oldObject",
            spoil(with(
                with(good.clone(), &["operation"], json!("DELETE")),
                &["object"],
                Value::Null,
            )),
            uid,
        ),
        (
            "metadata of the wrong type",
            spoil(with(good.clone(), &["object", "metadata"], json!(["x"]))),
            uid,
        ),
        (
            "a Member whose spec is a Group's",
            spoil(with(good.clone(), &["kind", "kind"], json!("Member"))),
            uid,
        ),
        // A second `spec` key: a tree keeps the last one, the typed
        // size pre-check refuses the body rather than pass it on unchecked.
        ("spec given twice", spec_twice(&good), uid),
    ]
}

/// The good request with a second, over-long `spec` after the first.
fn spec_twice(good: &Value) -> Vec<u8> {
    let resources: Vec<Value> = (0..1001)
        .map(|i| json!({ "name": format!("s{i}"), "level": "View" }))
        .collect();
    let second = json!({ "privileges": [{ "service": "Content", "domain": "Sources", "level": "Custom", "resources": resources }] });
    let body = String::from_utf8(review(good.clone())).unwrap();
    let first =
        r#""spec":{"privileges":[{"domain":"Reports","level":"View","service":"Analytics"}]}"#;
    assert!(body.contains(first), "{body}");
    body.replacen(first, &format!("{first},\"spec\":{second}"), 1)
        .into_bytes()
}

#[tokio::test]
async fn every_malformed_body_is_a_200_denial_and_the_server_keeps_serving() {
    let _flood = support::flood_guard().await;
    let r = start().await;
    let ns = fresh_namespace(&admin_client().await).await;
    let client = https();
    let url = format!("https://127.0.0.1:{}/validate", r.port);
    for (what, body, uid) in corpus(&ns) {
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: transport error {e}"));
        assert_eq!(resp.status(), 200, "{what}");
        let answer: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("{what}: answer is not JSON: {e}"));
        assert_eq!(
            answer["apiVersion"], "admission.k8s.io/v1",
            "{what}: {answer}"
        );
        assert_eq!(answer["kind"], "AdmissionReview", "{what}: {answer}");
        let response = &answer["response"];
        assert_eq!(response["allowed"], false, "{what}: {answer}");
        assert_eq!(response["uid"], uid, "{what}: {answer}");
        let message = response["status"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("orgaccess admission: malformed request, denied: "),
            "{what}: {message}"
        );
        assert_eq!(response["status"]["code"], 400, "{what}");
    }

    // Still serving, and judging well-formed requests.
    let resp = client
        .post(&url)
        .body(review(good_request(&ns)))
        .send()
        .await
        .unwrap();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert_eq!(
        answer["response"]["uid"],
        "7f0b2c4e-0000-4000-8000-000000000001"
    );
    // Health and metrics are on the admin port, not the webhook's.
    let health = client
        .get(format!("https://127.0.0.1:{}/healthz", r.port))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 404);
    let health = reqwest::get(format!("http://127.0.0.1:{}/healthz", r.admin_port))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let metrics = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/metrics", r.admin_port))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let malformed = metrics
        .lines()
        .find(|l| l.starts_with("orgaccess_webhook_malformed_requests_total "))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert_eq!(
        malformed.split(' ').nth(1),
        Some(corpus(&ns).len().to_string().as_str())
    );

    r.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_serving_certificate_is_reloaded_without_a_restart() {
    let r = start().await;
    let url = format!("https://127.0.0.1:{}/validate", r.port);
    let peer = |resp: &reqwest::Response| {
        resp.extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate())
            .map(<[u8]>::to_vec)
            .unwrap()
    };
    let der = |pem: &str| {
        use rustls::pki_types::pem::PemObject as _;
        rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .unwrap()
            .unwrap()
            .to_vec()
    };
    let first = std::fs::read_to_string(r.certs.path().join("tls.crt")).unwrap();
    let resp = https().post(&url).body("{}").send().await.unwrap();
    assert_eq!(peer(&resp), der(&first));

    // Rotate as a Secret volume does: new files moved into place.
    let next = plane().issue_serving_cert(&["127.0.0.1"]).unwrap();
    std::fs::write(r.certs.path().join("new.crt"), &next.cert_pem).unwrap();
    std::fs::write(r.certs.path().join("new.key"), &next.key_pem).unwrap();
    std::fs::rename(
        r.certs.path().join("new.key"),
        r.certs.path().join("tls.key"),
    )
    .unwrap();
    std::fs::rename(
        r.certs.path().join("new.crt"),
        r.certs.path().join("tls.crt"),
    )
    .unwrap();
    let resp = https().post(&url).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        peer(&resp),
        der(&next.cert_pem),
        "the new certificate is served"
    );

    r.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unreadable_certificate_fails_the_start() {
    let client = admin_client().await;
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        cert_file: dir.path().join("missing.crt"),
        key_file: dir.path().join("missing.key"),
        ..Config::default()
    };
    let err = Webhook::new(client, config, Arc::new(Mutex::new(Registry::default()))).unwrap_err();
    assert!(format!("{err:#}").contains("missing.crt"), "{err:#}");
}

/// Only the apiserver is served: no client certificate, or one with another
/// name (even from the same CA), and the TLS connection is refused; nothing
/// is judged, recorded or published for such a request.
#[tokio::test]
async fn only_the_apiservers_client_certificate_is_served() {
    let r = start().await;
    let client = admin_client().await;
    let ns = fresh_namespace(&client).await;
    let url = format!("https://127.0.0.1:{}/validate", r.port);
    let ca = || reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap();
    let anonymous = reqwest::Client::builder()
        .add_root_certificate(ca())
        .build()
        .unwrap();
    let impostor = reqwest::Client::builder()
        .add_root_certificate(ca())
        .identity(support::webhook::client_identity("mallory"))
        .build()
        .unwrap();
    // A forged review: claims system:masters.
    let forged = review(good_request(&ns));
    let before = r.webhook.validator().activity.list(None, usize::MAX).len();
    for (who, c) in [("no certificate", &anonymous), ("CN mallory", &impostor)] {
        let result = c.post(&url).body(forged.clone()).send().await;
        assert!(
            result.is_err(),
            "{who}: served: {:?}",
            result.map(|r| r.status())
        );
    }
    assert_eq!(
        r.webhook.validator().activity.list(None, usize::MAX).len(),
        before,
        "a refused caller left activity"
    );
    let answer: Value = https()
        .post(&url)
        .body(forged)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", r.admin_port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused = metrics
        .lines()
        .find(|l| l.starts_with("orgaccess_webhook_unauthenticated_connections_total "))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert_ne!(refused.split(' ').nth(1), Some("0"), "{refused}");
    r.shutdown().await.unwrap();
}
