//! The decision service's HTTP handlers, in process, on the examples'
//! organization indexed by hand (no cluster): checks, batches, key
//! verification, the NGINX endpoint, and who may ask about what.

use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use orgaccess::api::{ApiKey, ApiKeyStatus};
use orgaccess::cli::manifest::{Object, load};
use orgaccess::core::builtin::BuiltinGroup;
use orgaccess::decision::{Callers, Gate, Reach, Service, nginx_router, router};
use orgaccess::index::Index;
use orgaccess::webhook::tls::ClientName;
use serde_json::{Value, json};
use sha2::Digest;

pub(crate) const NS: &str = "demo";
pub(crate) const KEY_VALUE: &str = "oa_test_value_public_search";
pub(crate) const OLD_VALUE: &str = "oa_test_value_rotated_out";

pub(crate) fn hex_sha256(v: &str) -> String {
    hex::encode(sha2::Sha256::digest(v.as_bytes()))
}

/// The examples as the watches index them, the `public-search` key with a
/// status as the controller writes it (a current value, and a previous one
/// whose overlap `previous_until` ends).
pub(crate) fn index(previous_until: jiff::Timestamp) -> Arc<Index> {
    index_with(previous_until, None)
}

/// [`index`], with the `public-search` key bound to `search_hub`.
fn index_with(previous_until: jiff::Timestamp, search_hub: Option<&str>) -> Arc<Index> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"));
    let loaded = load(&[dir], NS);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let index = Index::new();
    for m in loaded.manifests {
        match m.object {
            Object::Organization(mut o) => {
                o.metadata.namespace = Some(NS.into());
                index.apply(&o);
            }
            Object::Group(mut g) => {
                g.metadata.namespace = Some(NS.into());
                index.apply(&g);
            }
            Object::Member(mut x) => {
                x.metadata.namespace = Some(NS.into());
                index.apply(&x);
            }
            Object::ApiKey(mut k) => {
                k.metadata.namespace = Some(NS.into());
                if k.metadata.name.as_deref() == Some("public-search") {
                    k.spec.search_hub = search_hub.map(str::to_string);
                }
                index.apply(&with_status(k, previous_until));
            }
            Object::AccessReview(mut r) => {
                r.metadata.namespace = Some(NS.into());
                index.apply(&r);
            }
        }
    }
    for b in BuiltinGroup::ALL {
        let mut g = orgaccess::controller::builtin_group(b);
        g.metadata.namespace = Some(NS.into());
        if index
            .namespace(NS)
            .state
            .groups
            .contains_key(b.object_name())
        {
            continue;
        }
        index.apply(&g);
    }
    index.mark_synced();
    Arc::new(index)
}

fn with_status(mut k: ApiKey, previous_until: jiff::Timestamp) -> ApiKey {
    let created = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    k.metadata.creation_timestamp = Some(Time(created));
    if k.metadata.name.as_deref() == Some("public-search") {
        k.status = Some(ApiKeyStatus {
            hash: Some(hex_sha256(KEY_VALUE)),
            previous_hash: Some(hex_sha256(OLD_VALUE)),
            previous_expires_at: Some(previous_until.to_string()),
            ..ApiKeyStatus::default()
        });
    }
    k
}

pub(crate) fn in_an_hour() -> jiff::Timestamp {
    jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)
}

/// Serves `app` on a free loopback port; the base URL.
pub(crate) async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The HTTPS router as a caller whose certificate names `caller` sees it
/// (the TLS layer puts the name there).
async fn service_as(caller: &str, allow: &[&str], index: Arc<Index>) -> String {
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    let service = Service {
        index,
        gate: Gate::Certificates(Callers::parse(&allow).unwrap()),
        default_namespace: None,
        usage: Arc::default(),
        metrics: Default::default(),
    };
    serve(router(service).layer(axum::Extension(ClientName(Some(caller.into()))))).await
}

pub(crate) async fn post(url: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn check_answers_with_the_granting_groups_and_what_is_missing() {
    let base = service_as("gw", &["gw=demo"], index(in_an_hour())).await;
    let (status, yes) = post(
        &format!("{base}/v1/check"),
        json!({"namespace": NS, "principal": {"member": "john-smith"},
               "verb": "view", "target": "Analytics/Reports"}),
    )
    .await;
    assert_eq!(status, 200, "{yes}");
    assert_eq!(yes["allowed"], true, "{yes}");
    assert!(!yes["grantedBy"].as_array().unwrap().is_empty(), "{yes}");

    let (_, no) = post(
        &format!("{base}/v1/check"),
        json!({"namespace": NS, "principal": {"apiKey": "public-search"},
               "verb": "edit", "target": "Organization/Groups"}),
    )
    .await;
    assert_eq!(no["allowed"], false, "{no}");
    assert!(!no["missing"].as_array().unwrap().is_empty(), "{no}");
}

#[tokio::test]
async fn names_in_questions_are_not_kept() {
    use orgaccess::core::privilege::ResourceId;
    let base = service_as("gw", &["gw=demo"], index(in_an_hour())).await;
    let name = "never-seen-source-5d1c";
    for principal in [
        json!({"member": "john-smith"}),
        json!({"apiKey": "public-search"}),
    ] {
        let (status, body) = post(
            &format!("{base}/v1/check"),
            json!({"namespace": NS, "principal": principal,
                   "verb": "view", "target": format!("Content/Sources/{name}")}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(ResourceId::lookup(name), None, "interned process-wide");
}

#[tokio::test]
async fn a_caller_asks_only_about_its_namespaces() {
    let base = service_as("gw", &["gw=other"], index(in_an_hour())).await;
    let (status, body) = post(
        &format!("{base}/v1/check"),
        json!({"namespace": NS, "principal": {"member": "john-smith"},
               "verb": "view", "target": "Analytics/Reports"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let stranger = service_as("stranger", &["gw=demo"], index(in_an_hour())).await;
    let (status, _) = post(
        &format!("{stranger}/v1/keys/verify"),
        json!({"namespace": NS, "key": KEY_VALUE, "clientIp": "10.0.0.1"}),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn bad_questions_are_refused_as_such() {
    let base = service_as("gw", &["gw=*"], index(in_an_hour())).await;
    let (status, body) = post(
        &format!("{base}/v1/check"),
        json!({"namespace": NS, "principal": {"member": "a", "apiKey": "b"},
               "verb": "view", "target": "Analytics/Reports"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = post(
        &format!("{base}/v1/check"),
        json!({"namespace": NS, "principal": {"member": "a"},
               "verb": "view", "target": "NoSuchService/Nothing"}),
    )
    .await;
    assert_eq!(status, 400);
}

/// An identity question reads only the groups Members name: thousands of
/// other groups change nothing and leave one cached view per identity a
/// Member names; past 4,096 groups the question is refused.
#[tokio::test]
async fn identity_questions_read_only_the_groups_members_name() {
    use orgaccess::webhook::limits::MAX_GROUPS;
    let index = index(in_an_hour());
    let base = service_as("gw", &["gw=demo"], index.clone()).await;
    let ask = |user: String, groups: Vec<String>| {
        let url = format!("{base}/v1/check");
        async move {
            post(
                &url,
                json!({"namespace": NS, "principal": {"user": user, "groups": groups},
                       "verb": "view", "target": "Analytics/Reports"}),
            )
            .await
        }
    };
    let junk: Vec<String> = (0..MAX_GROUPS).map(|i| format!("junk-{i}")).collect();
    let (status, plain) = ask("john".into(), vec![]).await;
    assert_eq!(status, 200, "{plain}");
    assert_eq!(plain["allowed"], true, "{plain}");
    let (status, padded) = ask("john".into(), junk.clone()).await;
    assert_eq!(status, 200, "{padded}");
    assert_eq!(padded, plain, "groups no Member names changed the answer");
    for i in 0..200 {
        let (status, a) = ask(format!("forger-{i}"), junk.clone()).await;
        assert_eq!((status, &a["allowed"]), (200, &json!(false)), "{a}");
    }
    let (entries, _) = index.namespace(NS).requester_cache();
    assert!(
        entries <= 2,
        "{entries} views cached after 200 forged identities"
    );
    let mut too_many = junk;
    too_many.push("one-more".into());
    let (status, body) = ask("john".into(), too_many).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("principal.groups lists 4097 groups"),
        "{body}"
    );
}

#[tokio::test]
async fn batches_answer_in_order_and_are_bounded() {
    let base = service_as("gw", &["gw=demo"], index(in_an_hour())).await;
    let one = |member: &str| {
        json!({"namespace": NS, "principal": {"member": member},
               "verb": "view", "target": "Analytics/Reports"})
    };
    let (status, body) = post(
        &format!("{base}/v1/check/batch"),
        json!({"checks": [one("john-smith"), one("nobody")]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answers = body["answers"].as_array().unwrap();
    assert_eq!(answers[0]["allowed"], true);
    assert_eq!(answers[1]["allowed"], false);
    assert!(answers[1]["reason"].as_str().unwrap().contains("nobody"));

    let too_many: Vec<Value> = (0..101).map(|_| one("john-smith")).collect();
    let (status, _) = post(
        &format!("{base}/v1/check/batch"),
        json!({ "checks": too_many }),
    )
    .await;
    assert_eq!(status, 413);
    let huge = "x".repeat(70 * 1024);
    let (status, _) = post(
        &format!("{base}/v1/check/batch"),
        json!({"checks": [{"namespace": huge, "principal": {"member": "a"}, "verb": "view", "target": "a/b"}]}),
    )
    .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn keys_verify_with_reasons_and_never_echo_the_value() {
    let base = service_as("gw", &["gw=demo"], index(in_an_hour())).await;
    let verify = |key: &str, ip: &str| {
        let url = format!("{base}/v1/keys/verify");
        let body = json!({"namespace": NS, "key": key, "clientIp": ip});
        async move { post(&url, body).await }
    };
    let (status, live) = verify(KEY_VALUE, "198.51.100.7").await;
    assert_eq!(status, 200);
    assert_eq!(live["valid"], true, "{live}");
    assert_eq!(live["key"]["name"], "public-search");
    assert_eq!(live["key"]["previous"], false);
    assert!(!live.to_string().contains(KEY_VALUE));

    let (_, old) = verify(OLD_VALUE, "198.51.100.7").await;
    assert_eq!(old["valid"], true, "{old}");
    assert_eq!(old["key"]["previous"], true);

    let (_, unknown) = verify("oa_not_a_key", "198.51.100.7").await;
    assert_eq!(unknown["valid"], false);
    assert_eq!(unknown["refusal"], "unknown");
    assert!(!unknown.to_string().contains("oa_not_a_key"));

    // A malformed question is refused without the value in the error.
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/keys/verify"))
        .json(&json!({"namespace": NS, "key": KEY_VALUE, "clientIp": "not-an-address"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    assert!(!r.text().await.unwrap().contains(KEY_VALUE));

    // The example denies 203.0.113.0/24.
    let (_, denied) = verify(KEY_VALUE, "203.0.113.9").await;
    assert_eq!(denied["refusal"], "addressRefused", "{denied}");
}

#[tokio::test]
async fn a_previous_value_past_its_overlap_is_refused() {
    let past = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
    let base = service_as("gw", &["gw=demo"], index(past)).await;
    let (_, old) = post(
        &format!("{base}/v1/keys/verify"),
        json!({"namespace": NS, "key": OLD_VALUE, "clientIp": "198.51.100.7"}),
    )
    .await;
    assert_eq!(old["refusal"], "previousPastOverlap", "{old}");
}

/// The plain NGINX listener for the demo namespace.
async fn nginx_endpoint(index: Arc<Index>) -> String {
    let service = Service {
        index,
        gate: Gate::Fixed(Reach::Only([NS.to_string()].into())),
        default_namespace: Some(NS.into()),
        usage: Arc::default(),
        metrics: Default::default(),
    };
    serve(nginx_router(service)).await
}

pub(crate) async fn nginx_get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn nginx_endpoint_answers_200_401_403_with_identity_headers() {
    let base = nginx_endpoint(index(in_an_hour())).await;
    let url = format!("{base}/nginx/auth");
    let ok = nginx_get(
        &url,
        &[("x-api-key", KEY_VALUE), ("x-real-ip", "198.51.100.7")],
    )
    .await;
    assert_eq!(ok.status(), 200);
    let h = ok.headers();
    assert_eq!(h["x-orgaccess-key"], "public-search");
    assert!(!h["x-orgaccess-organization"].is_empty());
    assert!(!h["x-orgaccess-privileges"].is_empty());

    let bearer = format!("Bearer {KEY_VALUE}");
    let forwarded = [
        ("authorization", bearer.as_str()),
        ("x-forwarded-for", "198.51.100.7, 10.0.0.1"),
    ];
    assert_eq!(nginx_get(&url, &forwarded).await.status(), 200);

    let unknown = [("x-api-key", "nope"), ("x-real-ip", "198.51.100.7")];
    assert_eq!(nginx_get(&url, &unknown).await.status(), 401);
    let missing = [("x-real-ip", "198.51.100.7")];
    assert_eq!(nginx_get(&url, &missing).await.status(), 401);
    let denied = [("x-api-key", KEY_VALUE), ("x-real-ip", "203.0.113.9")];
    assert_eq!(nginx_get(&url, &denied).await.status(), 403);
    let elsewhere = [
        ("x-api-key", KEY_VALUE),
        ("x-real-ip", "198.51.100.7"),
        ("x-orgaccess-namespace", "other"),
    ];
    assert_eq!(nginx_get(&url, &elsewhere).await.status(), 403);
}

/// A key bound to a search hub: the verification answer names the hub
/// (`searchHub`), and both gateway endpoints send it as
/// `X-Orgaccess-Search-Hub`; an unbound key's answer says `null`, and its
/// header is present and empty, so a gateway copying `x-orgaccess-*`
/// upstream replaces a header the client sent under that name.
#[tokio::test]
async fn a_key_s_search_hub_is_returned_for_the_gateway_to_enforce() {
    for (hub, want) in [(Some("community"), "community"), (None, "")] {
        let index = index_with(in_an_hour(), hub);
        let base = service_as("gw", &["gw=demo"], index.clone()).await;
        let (status, live) = post(
            &format!("{base}/v1/keys/verify"),
            json!({"namespace": NS, "key": KEY_VALUE, "clientIp": "198.51.100.7"}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(live["valid"], true, "{live}");
        match hub {
            Some(h) => assert_eq!(live["key"]["searchHub"], h, "{live}"),
            None => assert!(
                live["key"].get("searchHub").is_some_and(Value::is_null),
                "an unbound key's answer says so: {live}"
            ),
        }

        let plain = nginx_endpoint(index).await;
        let spoofed = [
            ("x-api-key", KEY_VALUE),
            ("x-real-ip", "198.51.100.7"),
            ("x-forwarded-for", "198.51.100.7"),
            ("x-orgaccess-search-hub", "spoofed"),
        ];
        for path in ["/nginx/auth", "/envoy/authz/search/v2"] {
            let ok = nginx_get(&format!("{plain}{path}"), &spoofed).await;
            assert_eq!(ok.status(), 200, "{path}");
            assert_eq!(ok.headers()["x-orgaccess-search-hub"], want, "{path}");
        }
        // A refused key carries no hub.
        let denied = [("x-api-key", KEY_VALUE), ("x-real-ip", "203.0.113.9")];
        let refused = nginx_get(&format!("{plain}/nginx/auth"), &denied).await;
        assert_eq!(refused.status(), 403);
        assert!(refused.headers().get("x-orgaccess-search-hub").is_none());
    }
    // A hub no header carries unchanged (stored past the CRD and admission)
    // is not dropped silently, which would leave the key unbound at the
    // gateway: the answer fails closed.
    let plain = nginx_endpoint(index_with(in_an_hour(), Some("community\nx-injected: 1"))).await;
    let asked = [("x-api-key", KEY_VALUE), ("x-real-ip", "198.51.100.7")];
    let r = nginx_get(&format!("{plain}/nginx/auth"), &asked).await;
    assert_eq!(r.status(), 500);
    assert!(r.headers().get("x-orgaccess-key").is_none());
}

/// As Envoy's `ext_authz` (HTTP service, `path_prefix: /envoy/authz`) asks:
/// the original method and path under the prefix, the allowed headers plus
/// Host, Method, Path, Content-Length (0) and Authorization, no body; the
/// client address as Envoy appends it to `X-Forwarded-For`.
#[tokio::test]
async fn envoy_endpoint_answers_as_ext_authz_expects() {
    let base = nginx_endpoint(index(in_an_hour())).await;
    let client = reqwest::Client::new();
    let ask = |method: reqwest::Method, path: &str, headers: &[(&str, &str)]| {
        let mut req = client
            .request(method, format!("{base}/envoy/authz{path}"))
            .header("content-length", "0");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        async move { req.send().await.unwrap() }
    };
    use reqwest::Method;
    let bearer = format!("Bearer {KEY_VALUE}");
    // Envoy appended the real address (198.51.100.7) after the client's claim.
    let live = [
        ("authorization", bearer.as_str()),
        ("x-forwarded-for", "203.0.113.9, 198.51.100.7"),
    ];
    for (method, path) in [
        (Method::GET, "/search?q=orgaccess"),
        (Method::POST, "/items"),
        (Method::DELETE, "/items/3"),
        (Method::GET, ""),
        (Method::GET, "/"),
    ] {
        let ok = ask(method.clone(), path, &live).await;
        assert_eq!(ok.status(), 200, "{method} {path}");
        assert_eq!(ok.headers()["x-orgaccess-key"], "public-search");
        assert!(!ok.headers()["x-orgaccess-privileges"].is_empty());
    }
    // A client claiming an allowed address first is judged by the address
    // Envoy saw (the example denies 203.0.113.0/24).
    let spoofed = [
        ("x-api-key", KEY_VALUE),
        ("x-forwarded-for", "198.51.100.7, 203.0.113.9"),
    ];
    let refused = ask(Method::GET, "/search", &spoofed).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.headers()["x-orgaccess-reason"], "address refused");
    let no_address = [("x-api-key", KEY_VALUE)];
    assert_eq!(ask(Method::GET, "/", &no_address).await.status(), 400);
    let unknown = [("x-api-key", "nope"), ("x-forwarded-for", "198.51.100.7")];
    let r = ask(Method::GET, "/search", &unknown).await;
    assert_eq!(r.status(), 401);
    assert!(!format!("{:?}", r.headers()).contains("nope"));
    let none = [("x-forwarded-for", "198.51.100.7")];
    assert_eq!(ask(Method::PUT, "/x", &none).await.status(), 401);
    let elsewhere = [
        ("x-api-key", KEY_VALUE),
        ("x-forwarded-for", "198.51.100.7"),
        ("x-orgaccess-namespace", "other"),
    ];
    assert_eq!(ask(Method::GET, "/", &elsewhere).await.status(), 403);
}

#[tokio::test]
async fn a_status_write_updates_the_key_table_and_a_disable_refuses_at_once() {
    let index = index(in_an_hour());
    let base = nginx_endpoint(index.clone()).await;
    let url = format!("{base}/nginx/auth");
    let live = [("x-api-key", KEY_VALUE), ("x-real-ip", "198.51.100.7")];
    assert_eq!(nginx_get(&url, &live).await.status(), 200);

    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"));
    let mut key = load(&[dir], NS)
        .manifests
        .into_iter()
        .find_map(|m| match m.object {
            Object::ApiKey(k) if k.metadata.name.as_deref() == Some("public-search") => Some(k),
            _ => None,
        })
        .unwrap();
    key.metadata.namespace = Some(NS.into());
    let mut key = with_status(key, in_an_hour());
    key.spec.enabled = false;
    index.apply(&key);
    assert_eq!(nginx_get(&url, &live).await.status(), 401);

    // Deleting the key forgets its digests.
    index.delete(&key);
    assert_eq!(nginx_get(&url, &live).await.status(), 401);
}

/// A CA, and PEM pairs it signs: (certificate, key).
mod pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair,
    };

    pub struct Ca(CertifiedIssuer<'static, KeyPair>);

    impl Ca {
        pub fn new() -> Ca {
            let mut params = CertificateParams::default();
            params
                .distinguished_name
                .push(DnType::CommonName, "test CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
        }

        pub fn pem(&self) -> String {
            self.0.pem()
        }

        /// A server (`sans`) or client (`cn`) certificate.
        pub fn issue(&self, cn: &str, sans: &[&str], client: bool) -> (String, String) {
            let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
            let mut params = CertificateParams::new(sans).unwrap();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![if client {
                ExtendedKeyUsagePurpose::ClientAuth
            } else {
                ExtendedKeyUsagePurpose::ServerAuth
            }];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.0).unwrap();
            (cert.pem(), key.serialize_pem())
        }
    }
}

/// The HTTPS listener end to end: the TLS layer names the caller from its
/// client certificate, and `--decision-allow` decides what it may ask.
#[tokio::test]
async fn https_callers_are_named_by_their_client_certificate() {
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new();
    let (cert, key) = ca.issue("127.0.0.1", &["127.0.0.1"], false);
    let files = ["ca.crt", "tls.crt", "tls.key"].map(|f| dir.path().join(f));
    for (path, pem) in files.iter().zip([ca.pem(), cert, key]) {
        std::fs::write(path, pem).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let args = orgaccess::decision::DecisionArgs {
        addr: Some(([127, 0, 0, 1], port).into()),
        client_ca_file: Some(files[0].clone()),
        cert_file: Some(files[1].clone()),
        key_file: Some(files[2].clone()),
        allow: vec![format!("gateway={NS}")],
        ..Default::default()
    };
    tokio::spawn(orgaccess::decision::serve(
        args,
        index(in_an_hour()),
        Arc::default(),
        Arc::default(),
        None,
        std::future::pending(),
    ));
    let client_as = |cn: &str| {
        let (c, k) = ca.issue(cn, &[], true);
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
            .identity(reqwest::Identity::from_pem(format!("{c}{k}").as_bytes()).unwrap())
            .build()
            .unwrap()
    };
    let url = format!("https://127.0.0.1:{port}/v1/keys/verify");
    let body = json!({"namespace": NS, "key": KEY_VALUE, "clientIp": "198.51.100.7"});
    let ask = |client: reqwest::Client| {
        let (url, body) = (url.clone(), body.clone());
        async move {
            for _ in 0..100 {
                if let Ok(r) = client.post(&url).json(&body).send().await {
                    return r.status().as_u16();
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            0
        }
    };
    assert_eq!(ask(client_as("gateway")).await, 200);
    assert_eq!(ask(client_as("someone-else")).await, 403);
    let anonymous = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let refused = anonymous.post(&url).json(&body).send().await;
    assert!(
        refused.is_err(),
        "a caller without a certificate got an answer"
    );
}

/// `orgaccess can-i --server` (the running service, through its HTTP API and
/// the index's cached facts) and `orgaccess can-i -f` (the core's `check`
/// over the organization's state, as the CLI computes it offline) give the
/// same answer to every example principal for every domain of the catalog
/// and a few resources, with each verb.
#[tokio::test]
async fn can_i_against_the_service_agrees_with_can_i_offline() {
    use orgaccess::cli::can_i::{ServerArgs, ask_server};
    use orgaccess::core::catalog::CATALOG;
    use orgaccess::core::decision::{Need, Principal, Verb, check};
    use orgaccess::core::effective::resolve_grantees;

    let index = index(in_an_hour());
    let base = service_as("cli", &["cli=demo"], index.clone()).await;
    let server = ServerArgs {
        server: Some(base),
        ..ServerArgs::default()
    };
    let state = index.namespace(NS).state.clone();
    let grantees = resolve_grantees(&state);
    let now = jiff::Timestamp::now();

    let members: Vec<String> = state.members.keys().cloned().collect();
    let keys: Vec<String> = state.api_keys.keys().cloned().collect();
    let devs = vec!["devs".to_string()];
    let mut principals: Vec<Principal> = members.iter().map(|m| Principal::Member(m)).collect();
    principals.extend(keys.iter().map(|k| Principal::ApiKey(k)));
    principals.push(Principal::Identity {
        user: "john",
        groups: &devs,
    });
    principals.push(Principal::Identity {
        user: "nobody",
        groups: &[],
    });
    principals.push(Principal::Member("no-such-member"));

    let mut targets: Vec<String> = CATALOG
        .iter()
        .map(|d| format!("{}/{}", d.service, d.name))
        .collect();
    targets.push("Content/Sources/jira".into());
    targets.push("Content/Sources/no-such-source".into());

    let mut asked = 0;
    let (mut yes, mut no) = (0, 0);
    for principal in &principals {
        for target in &targets {
            for verb in Verb::ALL {
                let Ok(need) = Need::parse(verb, target) else {
                    continue;
                };
                let offline = check(&state, &grantees, *principal, &need, now);
                let online = ask_server(&server, NS, principal, verb, target)
                    .await
                    .unwrap_or_else(|e| panic!("{principal:?} {verb:?} {target}: {e}"));
                assert_eq!(online, offline, "{principal:?} {} {target}", verb.as_str());
                asked += 1;
                if offline.allowed {
                    yes += 1;
                } else {
                    no += 1;
                }
            }
        }
    }
    // Both answers occur (the comparison is not of two constant answers).
    assert!(
        asked > 200 && yes > 20 && no > 20,
        "{asked} asked, {yes} yes, {no} no"
    );
}

/// Every path that verifies a value records the key's use (by name, once
/// per key); refused values, unknown values and checks by name record
/// nothing (docs/decision-service.md, "Key usage").
#[tokio::test]
async fn verified_keys_are_recorded_and_nothing_else() {
    use orgaccess::decision::usage::{Indexed, Usage};
    let usage = Arc::new(Usage::default());
    let idx = index(in_an_hour());
    let https = {
        let service = Service {
            index: idx.clone(),
            gate: Gate::Certificates(Callers::parse(&["gw=demo".into()]).unwrap()),
            default_namespace: None,
            usage: usage.clone(),
            metrics: Default::default(),
        };
        serve(router(service).layer(axum::Extension(ClientName(Some("gw".into()))))).await
    };
    let plain = serve(nginx_router(Service {
        index: idx,
        gate: Gate::Fixed(Reach::Only([NS.to_string()].into())),
        default_namespace: Some(NS.into()),
        usage: usage.clone(),
        metrics: Default::default(),
    }))
    .await;
    let pending = || usage.due(|_, _| Indexed::LastUsed(None));

    // Refused: unknown value, refused address, checks by name, a value in a
    // namespace without that key.
    let (_, unknown) = post(
        &format!("{https}/v1/keys/verify"),
        json!({"namespace": NS, "key": "oa_nobody", "clientIp": "198.51.100.7"}),
    )
    .await;
    assert_eq!(unknown["valid"], false);
    let (_, refused) = post(
        &format!("{https}/v1/keys/verify"),
        json!({"namespace": NS, "key": KEY_VALUE, "clientIp": "203.0.113.9"}),
    )
    .await;
    assert_eq!(refused["refusal"], "addressRefused");
    let (_, check) = post(
        &format!("{https}/v1/check"),
        json!({"namespace": NS, "principal": {"apiKey": "public-search"},
               "verb": "view", "target": "Analytics/Reports"}),
    )
    .await;
    assert!(check.get("allowed").is_some(), "{check}");
    for v in ["oa_nobody", "oa_other"] {
        let h = [("x-api-key", v), ("x-real-ip", "198.51.100.7")];
        assert_eq!(
            nginx_get(&format!("{plain}/nginx/auth"), &h).await.status(),
            401
        );
    }
    assert_eq!(usage.tracked(), 0, "nothing verified, nothing recorded");
    assert!(pending().is_empty());

    // Verified on each path: one slot, one write due.
    let (_, ok) = post(
        &format!("{https}/v1/keys/verify"),
        json!({"namespace": NS, "key": KEY_VALUE, "clientIp": "198.51.100.7"}),
    )
    .await;
    assert_eq!(ok["valid"], true, "{ok}");
    let h = [("x-api-key", KEY_VALUE), ("x-real-ip", "198.51.100.7")];
    assert_eq!(
        nginx_get(&format!("{plain}/nginx/auth"), &h).await.status(),
        200
    );
    let e = [
        ("x-api-key", KEY_VALUE),
        ("x-forwarded-for", "198.51.100.7"),
    ];
    assert_eq!(
        nginx_get(&format!("{plain}/envoy/authz/x"), &e)
            .await
            .status(),
        200
    );
    // The previous value, in its overlap, is a use of the same key.
    let (_, old) = post(
        &format!("{https}/v1/keys/verify"),
        json!({"namespace": NS, "key": OLD_VALUE, "clientIp": "198.51.100.7"}),
    )
    .await;
    assert_eq!(old["valid"], true, "{old}");
    assert_eq!(usage.tracked(), 1);
    let due = pending();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(
        (due[0].namespace.as_str(), due[0].name.as_str()),
        (NS, "public-search")
    );
    assert_eq!(due[0].at % 300, 0, "truncated to the interval");
    assert!(pending().is_empty(), "taken by the flush");
}

/// Bodies of questions are read within the listener's bounds: what a
/// connection holds past its allowance comes from a budget every caller
/// shares, a body that stalls is answered 408 and gives its bytes back, and
/// a caller waiting for the budget is then answered. Here every byte comes
/// from the budget (the connection's allowance is spent).
#[tokio::test]
async fn a_stalled_body_holds_only_budget_and_is_cut_off() {
    use orgaccess::decision::bodies::Bodies;
    use orgaccess::webhook::connection::BodyAllowance;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let service = Service {
        index: index(in_an_hour()),
        gate: Gate::Certificates(Callers::parse(&["gw=demo".to_string()]).unwrap()),
        default_namespace: None,
        usage: Arc::default(),
        metrics: Default::default(),
    };
    let bounds = Bodies::new(300, std::time::Duration::from_secs(1));
    let app = orgaccess::decision::https_router_with(service, None, bounds.clone())
        .layer(axum::Extension(ClientName(Some("gw".into()))))
        .layer(axum::Extension(BodyAllowance(Arc::new(
            tokio::sync::Semaphore::new(0),
        ))));
    let base = serve(app).await;
    let addr = base.trim_start_matches("http://").to_string();

    // A caller announces 1,000 bytes, sends 250 and stalls.
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&[b' '; 250]).await.unwrap();
    for _ in 0..100 {
        if bounds.available() == 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        bounds.available(),
        50,
        "the stalled body's bytes are held from the budget"
    );

    // Another caller's question needs more than is left: it waits, and is
    // answered once the stalled body is cut off (it starts well after the
    // stalled one, so its own second is not over by then).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let check = format!("{base}/v1/check");
    let waiting = tokio::spawn(async move {
        post(
            &check,
            json!({"namespace": NS, "principal": {"member": "john-smith"},
                   "verb": "view", "target": "Analytics/Reports"}),
        )
        .await
    });
    let mut answer = Vec::new();
    stalled.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("not received within 1 s"), "{answer}");
    let (status, yes) = waiting.await.unwrap();
    assert_eq!(status, 200, "{yes}");
    assert_eq!(yes["allowed"], true, "{yes}");
    assert_eq!(bounds.available(), 300, "every byte given back");

    // A body announced over the limit is refused before it is read.
    let (status, too_large) = post(
        &format!("{base}/v1/check/batch"),
        json!({"checks": [], "padding": "x".repeat(orgaccess::decision::MAX_BODY)}),
    )
    .await;
    assert_eq!(status, 413, "{too_large}");
    assert!(
        too_large["error"].as_str().unwrap().contains("larger than"),
        "{too_large}"
    );
    assert_eq!(bounds.available(), 300);
}
