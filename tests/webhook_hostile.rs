//! Hostile traffic against the real webhook process (`orgaccess webhook`, as
//! the operator's identity, against the test control plane): oversized,
//! malformed and slow bodies, many connections, and the 200 × 1,000-resource
//! Group through the apiserver. Each request gets a well-formed denial (or its
//! connection is refused), a good request is still answered within the
//! deadline meanwhile, and the process's peak memory (VmHWM) stays under the
//! chart's 256 MiB limit.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, DeleteParams, PostParams};
use orgaccess::webhook::{self, Endpoint};
use orgaccess_testenv::{WEBHOOK_CLIENT_NAME, spawn_tied};
use serde_json::{Value, json};
use support::{
    ADMIN, OPERATOR_USER, admin_client, fresh_namespace, install_crds, kubectl, kubectl_stdin,
    plane,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The chart's memory limit (values.yaml resources.limits.memory).
const CHART_MEMORY_LIMIT_KIB: u64 = 256 * 1024;
/// The webhook's handling deadline (DEFAULT_DEADLINE_MS), plus transport slack.
const ANSWER_WITHIN: Duration = Duration::from_millis(4500);

struct Process {
    child: Child,
    port: u16,
    admin_port: u16,
    log: std::path::PathBuf,
    _certs: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Peak resident memory of the process so far, in KiB (VmHWM).
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts `orgaccess webhook` on a free port, serving only the apiserver's
/// client certificate, and waits until it judges.
async fn start() -> Process {
    start_with(true, &["--webhook-events", "false"]).await
}

/// Starts `orgaccess webhook` with `client_auth` (the apiserver's client
/// certificate required) or without (the chart's default), and `extra` flags.
async fn start_with(client_auth: bool, extra: &[&str]) -> Process {
    install_crds().await;
    let certs = tempfile::tempdir().unwrap();
    let serving = plane().issue_serving_cert(&["127.0.0.1"]).unwrap();
    let (cert, key) = (certs.path().join("tls.crt"), certs.path().join("tls.key"));
    std::fs::write(&cert, &serving.cert_pem).unwrap();
    std::fs::write(&key, &serving.key_pem).unwrap();
    let free = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (port, admin_port) = (free(), free());
    let log = plane()
        .work_dir()
        .join(format!("webhook-hostile-{port}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orgaccess"));
    cmd.args(["webhook", "--webhook-addr", &format!("127.0.0.1:{port}")])
        .arg("--webhook-cert-file")
        .arg(&cert)
        .arg("--webhook-key-file")
        .arg(&key)
        .args(extra)
        .args(["--admin-addr", &format!("127.0.0.1:{admin_port}")]);
    if client_auth {
        cmd.arg("--webhook-client-ca-file")
            .arg(plane().webhook_client_ca_file());
    }
    cmd.env("KUBECONFIG", plane().kubeconfig_for(OPERATOR_USER))
        .env("ORGACCESS_LOG", "info")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    let child = spawn_tied(cmd).expect("starting orgaccess webhook");
    let mut p = Process {
        child,
        port,
        admin_port,
        log,
        _certs: certs,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(p.alive(), "the webhook exited:\n{}", p.logs());
        if let Ok(answer) = post(&https(), port, good_review("ns", "probe")).await
            && !answer.to_string().contains("not synced")
        {
            return p;
        }
        assert!(Instant::now() < deadline, "never ready:\n{}", p.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An HTTPS client presenting the apiserver's client certificate.
fn https() -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap())
        .identity(support::webhook::client_identity(WEBHOOK_CLIENT_NAME))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post(client: &reqwest::Client, port: u16, body: Vec<u8>) -> reqwest::Result<Value> {
    client
        .post(format!("https://127.0.0.1:{port}/validate"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?
        .json()
        .await
}

fn review(request: Value) -> Vec<u8> {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
        .to_string()
        .into_bytes()
}

fn request(ns: &str, uid: &str, spec: Value) -> Value {
    json!({
        "uid": uid,
        "kind": {"group": "orgaccess.dev", "version": "v1alpha1", "kind": "Group"},
        "resource": {"group": "orgaccess.dev", "version": "v1alpha1", "resource": "groups"},
        "name": "g", "namespace": ns, "operation": "CREATE",
        "userInfo": {"username": "admin", "groups": ["system:masters"]},
        "object": {"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
                   "metadata": {"name": "g", "namespace": ns}, "spec": spec},
        "oldObject": null, "dryRun": true,
    })
}

/// A request the webhook admits (a trusted admin creates a valid Group).
fn good_review(ns: &str, uid: &str) -> Vec<u8> {
    review(request(
        ns,
        uid,
        json!({"privileges": [{"service": "Analytics", "domain": "Reports", "level": "View"}]}),
    ))
}

/// A well-formed denial: an AdmissionReview whose response refuses, with its uid.
fn assert_denial(what: &str, answer: &Value, uid: &str) -> String {
    assert_eq!(answer["kind"], "AdmissionReview", "{what}: {answer}");
    assert_eq!(answer["response"]["allowed"], false, "{what}: {answer}");
    assert_eq!(answer["response"]["uid"], uid, "{what}: {answer}");
    let message = answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.len() <= 17 * 1024,
        "{what}: {} bytes",
        message.len()
    );
    message
}

/// A good request, timed: answered (admitted) within the deadline.
async fn assert_still_serving(port: u16, what: &str) {
    let start = Instant::now();
    let answer = post(&https(), port, good_review("ns", "good"))
        .await
        .unwrap_or_else(|e| panic!("{what}: a good request failed: {e}"));
    assert_eq!(answer["response"]["allowed"], true, "{what}: {answer}");
    assert!(
        start.elapsed() < ANSWER_WITHIN,
        "{what}: a good request took {:?}",
        start.elapsed()
    );
}

/// A TLS connection to the webhook, trusting the control plane's CA.
async fn tls_connect(
    port: u16,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    static CLIENT: std::sync::OnceLock<orgaccess_testenv::ServingCert> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(|| plane().issue_client_cert(WEBHOOK_CLIENT_NAME).unwrap());
    use rustls::pki_types::pem::PemObject as _;
    let chain: Vec<_> =
        rustls::pki_types::CertificateDer::pem_slice_iter(client.cert_pem.as_bytes())
            .map(Result::unwrap)
            .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(plane().ca_pem().as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
}

#[tokio::test]
async fn hostile_bodies_get_denials_in_bounded_memory_and_time() {
    let mut p = start().await;
    let port = p.port;
    let client = https();
    let before = p.peak_rss_kib();

    // Malformed and oversized bodies, each answered with a denial.
    let mut zeros =
        b"{\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"zeros\",\"object\":["
            .to_vec();
    while zeros.len() < 8 * 1024 * 1024 - 16 {
        zeros.extend_from_slice(b"0,");
    }
    zeros.extend_from_slice(b"0]}}");
    let mut big_string = request("ns", "string", json!({}));
    big_string["object"]["metadata"]["annotations"] = json!({"x": "a".repeat(7 * 1024 * 1024)});
    // The most values a body may hold: a review whose object is ~740,000 empty lists.
    let mut lists = request("ns", "lists", json!({}));
    lists["object"]["spec"]["x"] = Value::Array(vec![json!([]); 740_000]);
    // (what, body, uid, allowed, words of the answer)
    let cases: Vec<(&str, Vec<u8>, &str, bool, &str)> = vec![
        (
            "not JSON",
            b"{{{{".to_vec(),
            "",
            false,
            "not an AdmissionReview",
        ),
        ("8 MiB of zeros", zeros, "zeros", false, "JSON values"),
        // Well-formed, only large: judged (and admitted: a trusted admin).
        ("a 7 MiB annotation", review(big_string), "string", true, ""),
        ("740,000 empty lists", review(lists), "lists", true, ""),
    ];
    for (what, body, uid, allowed, needle) in cases {
        let start = Instant::now();
        let answer = post(&client, port, body)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        if allowed {
            assert_eq!(answer["response"]["allowed"], true, "{what}: {answer}");
            assert_eq!(answer["response"]["uid"], uid, "{what}: {answer}");
        } else {
            let message = assert_denial(what, &answer, uid);
            assert!(message.contains(needle), "{what}: {message}");
        }
        assert!(
            start.elapsed() < ANSWER_WITHIN,
            "{what}: {:?}",
            start.elapsed()
        );
        assert_still_serving(port, what).await;
        eprintln!(
            "{what}: answered in {:?}; peak RSS {} KiB",
            start.elapsed(),
            p.peak_rss_kib()
        );
    }

    // The heaviest body, six at once: decisions run two at a time, the rest
    // wait (or are told the webhook is busy), and memory stays bounded.
    let mut lists = request("ns", "lists", json!({}));
    lists["object"]["spec"]["x"] = Value::Array(vec![json!([]); 740_000]);
    let heavy = review(lists);
    let answers =
        futures::future::join_all((0..6).map(|_| post(&client, port, heavy.clone()))).await;
    for a in answers {
        let a = a.expect("an answer");
        assert_eq!(a["response"]["uid"], "lists", "{a}");
    }
    eprintln!(
        "six heavy bodies at once: peak RSS {} KiB",
        p.peak_rss_kib()
    );
    assert_still_serving(port, "six heavy bodies").await;

    // Over the body cap: refused before it is read (a denial, or the
    // connection closed while the client still sends).
    let huge = vec![b' '; 9 * 1024 * 1024];
    match post(&client, port, huge).await {
        Ok(answer) => {
            let m = assert_denial("9 MiB", &answer, "");
            assert!(m.contains("larger than"), "{m}");
        }
        Err(e) => eprintln!("9 MiB body: connection closed ({e})"),
    }

    // Slow bodies: 40 connections that promise 1 MiB and send 10 bytes; each
    // is answered once the body timeout passes, and good requests meanwhile
    // are answered within the deadline.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut tls = tls_connect(port).await.unwrap();
        tls.write_all(
            b"POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1048576\r\n\r\n{\"apiVers",
        )
        .await
        .unwrap();
        slow.push(tls);
    }
    let start = Instant::now();
    assert_still_serving(port, "40 slow bodies").await;
    for mut tls in slow {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.contains("not received within"),
            "a slow body: {answer}"
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );

    // Many connections: past the limit (256) they are closed at once; the
    // webhook serves again when they go.
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..300 {
        match tls_connect(port).await {
            Ok(c) => open.push(c),
            Err(_) => refused += 1,
        }
    }
    // A connection past the limit may complete TCP and be closed before TLS.
    let mut closed = refused;
    for c in &mut open {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(5), c.read(&mut b)).await
        {
            closed += 1;
        }
    }
    assert!(closed >= 40, "only {closed} of 300 connections refused");
    drop(open);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_still_serving(port, "after 300 connections").await;

    // A forged review from a caller without the apiserver's certificate is
    // refused at TLS; /activity without a token is refused.
    let anonymous = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert!(
        anonymous
            .post(format!("https://127.0.0.1:{port}/validate"))
            .body(good_review("ns", "forged"))
            .send()
            .await
            .is_err(),
        "a caller without a client certificate was served"
    );
    let activity = reqwest::get(format!("http://127.0.0.1:{}/activity", p.admin_port))
        .await
        .unwrap();
    assert_eq!(activity.status(), 401);
    assert!(
        !p.logs().contains("uid=forged"),
        "the forged review was recorded"
    );

    let peak = p.peak_rss_kib();
    eprintln!("webhook peak RSS: {before} KiB at start, {peak} KiB after the hostile bodies");
    assert!(
        peak < CHART_MEMORY_LIMIT_KIB,
        "peak RSS {peak} KiB over the chart's limit\n{}",
        p.logs()
    );
    assert!(p.alive(), "the webhook died:\n{}", p.logs());
}

#[tokio::test]
async fn a_group_of_200_privileges_of_1000_resources_is_denied_in_a_few_kib() {
    let mut p = start().await;
    let client = admin_client().await;
    let ns = fresh_namespace(&client).await;
    let name = format!("orgaccess-hostile-{ns}");
    let vwc = webhook::webhook_configuration(
        &name,
        &Endpoint::Url(format!("https://127.0.0.1:{}/validate", p.port)),
        plane().ca_pem().as_bytes(),
        Some(webhook::only_namespace(&ns)),
    );
    let configs = Api::<ValidatingWebhookConfiguration>::all(client);
    configs.create(&PostParams::default(), &vwc).await.unwrap();

    // Undeclared names (there is no Organization): one violation per name
    // before the fix. Names are short so that the object fits the
    // apiserver's 3 MiB limit; the full 200 × 1,000 is tried too.
    let group = |privileges: usize, resources: usize, name_len: usize| {
        let list: Vec<Value> = (0..resources)
            .map(|i| json!({"name": format!("{i:0>name_len$x}"), "level": "View"}))
            .collect();
        // One entry per (service, domain): `spec.privileges` is a map list
        // keyed by them, so the apiserver itself refuses a repeated pair.
        let custom = [
            ("Content", "Sources"),
            ("Content", "Extensions"),
            ("Search", "QueryPipelines"),
            ("Commerce", "MerchandisingHub"),
            ("Organization", "Groups"),
            ("Organization", "ApiKeys"),
        ];
        let privileges: Vec<Value> = (0..privileges)
            .map(|i| {
                let (service, domain) = custom[i % custom.len()];
                json!({"service": service, "domain": domain, "level": "Custom", "resources": list})
            })
            .collect();
        json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
               "metadata": {"name": "big"}, "spec": {"privileges": privileges}})
        .to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    // 200 × 1,000 is over the apiserver's request limit; six Custom domains
    // of 1,000 long undeclared names each (about 1.7 MB) reach the webhook.
    for (privileges, resources, name_len) in [(1, 2, 1), (200, 1000, 1), (6, 1000, 240)] {
        let manifest = group(privileges, resources, name_len);
        loop {
            let start = Instant::now();
            let out = kubectl_stdin(
                "alice",
                &["create", "--dry-run=server", "-n", &ns, "-f", "-"],
                Some(&manifest),
            )
            .await;
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!out.status.success(), "{privileges} × {resources} admitted");
            if !stderr.contains("validate.orgaccess.dev")
                && Instant::now() < deadline
                && privileges == 1
            {
                // The apiserver has not picked the configuration up yet.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            eprintln!(
                "{privileges} × {resources} ({} bytes): {} bytes of stderr in {:?}: {}",
                manifest.len(),
                stderr.len(),
                start.elapsed(),
                &stderr[..stderr.len().min(300)]
            );
            assert!(
                stderr.contains("denied the request") || stderr.contains("too large"),
                "{stderr}"
            );
            assert!(stderr.len() < 20 * 1024, "{} bytes of denial", stderr.len());
            break;
        }
    }
    let peak = p.peak_rss_kib();
    eprintln!("webhook peak RSS after the large groups: {peak} KiB");
    assert!(peak < CHART_MEMORY_LIMIT_KIB, "peak RSS {peak} KiB");
    assert!(p.alive(), "{}", p.logs());
    let _ = configs.delete(&name, &DeleteParams::default()).await;
    let _ = ADMIN;
}

/// The chart's defaults (no client certificate required, Events on): anyone
/// who reaches the port can POST a review. A forged one claiming
/// `system:masters` is judged but leaves no Event and only records marked
/// `caller: not authenticated`; a flood of forged reviews with huge group
/// lists and ever new user names leaves the requester cache at what the
/// organization's Members name, the process under the chart's memory limit,
/// and the apiserver's own admissions pass meanwhile.
#[tokio::test]
async fn forged_reviews_leave_no_event_no_unmarked_record_and_bounded_caches() {
    let audit = tempfile::tempdir().unwrap();
    let audit_file = audit.path().join("activity.jsonl");
    let p = start_with(
        false,
        &[
            "--webhook-events",
            "true",
            "--activity-file",
            audit_file.to_str().unwrap(),
        ],
    )
    .await;
    let port = p.port;
    let client = admin_client().await;
    let ns = fresh_namespace(&client).await;
    let name = format!("orgaccess-forged-{ns}");
    let vwc = webhook::webhook_configuration(
        &name,
        &Endpoint::Url(format!("https://127.0.0.1:{port}/validate")),
        plane().ca_pem().as_bytes(),
        Some(webhook::only_namespace(&ns)),
    );
    let configs = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    configs.create(&PostParams::default(), &vwc).await.unwrap();
    let create = |who: &'static str, obj: Value| {
        let ns = ns.clone();
        async move {
            kubectl_stdin(
                who,
                &["create", "-n", &ns, "-f", "-"],
                Some(&obj.to_string()),
            )
            .await
        }
    };
    // Wait until the apiserver calls the webhook (a dry run only it refuses).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let probe = json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
            "metadata": {"name": "probe"},
            "spec": {"privileges": [{"service": "Analytics", "domain": "NoSuchDomain", "level": "View"}]}});
        let out = kubectl_stdin(
            ADMIN,
            &["create", "--dry-run=server", "-n", &ns, "-f", "-"],
            Some(&probe.to_string()),
        )
        .await;
        if String::from_utf8_lossy(&out.stderr).contains("validate.orgaccess.dev") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the apiserver never called the webhook"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The organization, through the apiserver: members named by a user and by a group.
    let org = json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Organization",
        "metadata": {"name": "acme"}, "spec": {"displayName": "Acme"}});
    support::assert_success("the Organization", &create(ADMIN, org).await);
    for (member, kind, subject) in [("alice", "User", "alice"), ("ops", "Group", "oidc:ops")] {
        let m = json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Member",
            "metadata": {"name": member},
            "spec": {"identity": {"provider": "Email", "username": format!("{member}@example.com")},
                     "groups": [], "subjects": [{"kind": kind, "name": subject}], "accepted": true}});
        support::assert_success(member, &create(ADMIN, m).await);
    }

    let anyone = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let forged = {
        let ns = ns.clone();
        move |uid: &str, user: &str, groups: Value, dry_run: bool| {
            let mut r = request(
                &ns,
                uid,
                json!({"privileges": [{"service": "Analytics", "domain": "Reports", "level": "View"}]}),
            );
            r["userInfo"] = json!({"username": user, "groups": groups});
            r["dryRun"] = json!(dry_run);
            review(r)
        }
    };
    // Until the webhook's cache holds alice: a forged review as alice maps her.
    let records = |uid_prefix: &str| -> Vec<Value> {
        std::fs::read_to_string(&audit_file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["uid"].as_str().is_some_and(|u| u.starts_with(uid_prefix)))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in 0.. {
        let uid = format!("probe-{n}");
        post(&anyone, port, forged(&uid, "alice", json!([]), true))
            .await
            .unwrap();
        if records(&uid)
            .iter()
            .any(|r| r["members"] == json!(["alice"]))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the webhook never cached alice");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The forged review of the issue: admin, system:masters, not a dry run.
    let answer = post(
        &anyone,
        port,
        forged("forged-admin", "admin", json!(["system:masters"]), false),
    )
    .await
    .unwrap();
    assert_eq!(
        answer["response"]["allowed"], true,
        "judged as usual: {answer}"
    );

    // The flood, while the apiserver admits genuine changes.
    let many: Vec<String> = (0..webhook::limits::MAX_GROUPS)
        .map(|i| format!("forged-group-{i}"))
        .collect();
    // Eight forgers at once, 150 reviews each, each a new user name.
    let flood = futures::future::join_all((0..8).map(|t| {
        let (anyone, many) = (anyone.clone(), many.clone());
        let forged = forged.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..150 {
                let body = forged(
                    &format!("flood-{t}-{i}"),
                    &format!("mallory-{t}-{i}"),
                    json!(many),
                    false,
                );
                answers.push(post(&anyone, port, body).await);
            }
            answers
        })
    }));
    let flood = tokio::spawn(flood);
    let huge: Vec<String> = (0..600_000).map(|i| format!("g{i:x}")).collect();
    let huge_body = forged("huge", "mallory", json!(huge), false);
    drop(huge);
    let huge_flood = {
        let anyone = anyone.clone();
        tokio::spawn(async move {
            futures::future::join_all((0..16).map(|_| post(&anyone, port, huge_body.clone()))).await
        })
    };
    for i in 0..5 {
        let g = json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
            "metadata": {"name": format!("genuine-{i}")},
            "spec": {"privileges": [{"service": "Analytics", "domain": "Reports", "level": "View"}]}});
        support::assert_success(
            "a genuine admission during the flood",
            &create(ADMIN, g).await,
        );
    }
    for a in flood.await.unwrap().into_iter().flat_map(Result::unwrap) {
        let a = a.expect("an answer to a forged review");
        // An unmapped requester may not create a Group.
        assert_eq!(a["response"]["allowed"], false, "{a}");
    }
    for a in huge_flood.await.unwrap() {
        let a = a.expect("an answer to a huge forged review");
        assert_eq!(a["response"]["allowed"], false, "{a}");
        let m = a["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default();
        // Read and refused before its groups are parsed, or (16 bodies of
        // 5 MiB at once, 24 MiB of budget) not read in time.
        assert!(
            m.contains("userInfo.groups lists 600000 groups") || m.contains("not received within"),
            "{m}"
        );
    }

    // The requester cache holds what the organization names: one view for
    // every identity no Member names, one for alice; not one per forger.
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", p.admin_port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
    };
    let (entries, bytes) = (
        gauge("orgaccess_requester_cache_entries"),
        gauge("orgaccess_requester_cache_bytes"),
    );
    eprintln!(
        "after 1,200 forged identities of 4,096 groups and 16 of 600,000: requester cache {entries} entries, {bytes} bytes; peak RSS {} KiB",
        p.peak_rss_kib()
    );
    assert!(entries <= 4, "{entries} requester views cached");
    assert!(bytes <= 16 * 1024, "{bytes} bytes of requester views");
    let peak = p.peak_rss_kib();
    assert!(
        peak < CHART_MEMORY_LIMIT_KIB,
        "peak RSS {peak} KiB\n{}",
        p.logs()
    );

    // No Event from any of it (Events are only for the authenticated
    // apiserver, and here the webhook cannot tell who calls).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = kubectl(
        ADMIN,
        &["get", "events.events.k8s.io", "-n", &ns, "-o", "json"],
    )
    .await;
    let events: Value = serde_json::from_slice(&events.stdout).unwrap();
    let ours: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reportingController"] == "orgaccess-webhook")
        .collect();
    assert!(
        ours.is_empty(),
        "Events published for unauthenticated callers: {ours:#?}"
    );
    // Every record is marked; the forged one says what it claimed.
    let all = records("");
    let forged = records("forged-admin");
    assert_eq!(forged.len(), 1, "{forged:#?}");
    assert_eq!(forged[0]["user"], "admin");
    eprintln!("{} records", all.len());
    assert!(all.len() > 100, "{} records", all.len());
    let unmarked: Vec<&Value> = all
        .iter()
        .filter(|r| r["caller"] != "not authenticated")
        .collect();
    assert!(unmarked.is_empty(), "unmarked records: {unmarked:#?}");
    let _ = configs.delete(&name, &DeleteParams::default()).await;
}

/// Heavy bodies (the most values a body may hold, each slow to judge) sent
/// together, more than the decision slots can judge before the deadline:
/// a small request sent after them is judged in its own lane, not queued
/// behind them (and read outside the body budget they hold), so it is
/// admitted rather than refused as busy at the deadline.
#[tokio::test]
async fn small_requests_never_wait_behind_heavy_bodies() {
    // A short deadline, so that the heavy bodies queued ahead would take
    // longer than it on a shared lane, on any machine.
    let p = start_with(
        true,
        &["--webhook-events", "false", "--webhook-deadline-ms", "2000"],
    )
    .await;
    let client = https();
    let mut lists = request("ns", "lists", json!({}));
    lists["object"]["spec"]["x"] = Value::Array(vec![json!([]); 740_000]);
    let heavy = review(lists);
    let flood = futures::future::join_all((0..24).map(|_| post(&client, p.port, heavy.clone())));
    let small = async {
        // Once the heavy bodies are read and queued for a decision slot.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let start = Instant::now();
        let answer = post(&https(), p.port, good_review("ns", "small")).await;
        (answer, start.elapsed())
    };
    let (heavy_answers, (answer, took)) = tokio::join!(flood, small);
    let busy = heavy_answers
        .iter()
        .filter(|a| {
            a.as_ref().is_ok_and(|a| {
                a.to_string().contains("busy") || a.to_string().contains("could not decide")
            })
        })
        .count();
    eprintln!(
        "a small request among 24 heavy bodies: answered in {took:?}; {busy} heavy bodies refused busy"
    );
    let answer = answer.expect("an answer");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert_eq!(answer["response"]["uid"], "small", "{answer}");
}

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

/// Random bearer tokens at `/activity` (opaque ones and JWT-shaped ones)
/// cost the apiserver a bounded number of TokenReviews (a burst, then a
/// rate per source address), and a service account's token from another
/// address is reviewed meanwhile (403: authenticated, not a member), never
/// told the webhook is unavailable.
#[tokio::test]
async fn random_bearer_tokens_cannot_hold_the_token_reviews() {
    use orgaccess::token_review::{SOURCE_BURST, SOURCE_RATE};
    let p = start().await;
    let admin = admin_client().await;
    let ns = fresh_namespace(&admin).await;
    let out = kubectl(ADMIN, &["-n", &ns, "create", "serviceaccount", "reader"]).await;
    support::assert_success("a service account", &out);
    let out = kubectl(ADMIN, &["-n", &ns, "create", "token", "reader"]).await;
    let genuine = support::assert_success("its token", &out)
        .trim()
        .to_string();
    assert!(orgaccess::token_review::jwt_shaped(&genuine), "{genuine}");

    let url = format!("http://127.0.0.1:{}/activity?namespace={ns}", p.admin_port);
    let before = token_reviews_served(&admin).await;
    let start = Instant::now();
    let flooder = reqwest::Client::new();
    let flood = futures::future::join_all((0..300).map(|i| {
        let token = if i % 2 == 0 {
            format!("{i:032x}")
        } else {
            format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ{i}In0.c2ln{i}")
        };
        flooder.get(&url).bearer_auth(token).send()
    }));
    // Another address: 127.0.0.2 is loopback too.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let genuine_ask = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        other
            .get(&url)
            .bearer_auth(&genuine)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let (answers, genuine_status) = tokio::join!(flood, genuine_ask);
    let elapsed = start.elapsed().as_secs_f64();
    let mut statuses = std::collections::BTreeMap::new();
    for a in answers {
        *statuses.entry(a.unwrap().status().as_u16()).or_insert(0) += 1;
    }
    let reviews = token_reviews_served(&admin).await - before;
    eprintln!(
        "300 random tokens in {elapsed:.1} s: {statuses:?}; {reviews} TokenReviews; the service account: {genuine_status}"
    );
    assert_eq!(genuine_status, 403, "the service account was not reviewed");
    assert!(statuses.get(&429).is_some_and(|n| *n > 0), "{statuses:?}");
    assert!(
        statuses.keys().all(|s| [401, 429, 503].contains(s)),
        "{statuses:?}"
    );
    // The flooder's burst and rate, and the service account's one review.
    let most = SOURCE_BURST + SOURCE_RATE * (elapsed + 1.0) + 1.0;
    assert!(reviews <= most, "{reviews} TokenReviews (at most {most})");
}

/// A listener that cannot bind ends the process with an error saying which
/// and why; it never keeps running without serving.
#[tokio::test]
async fn a_listener_that_cannot_bind_ends_the_process_with_why() {
    install_crds().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let certs = tempfile::tempdir().unwrap();
    let serving = plane().issue_serving_cert(&["127.0.0.1"]).unwrap();
    let (cert, key) = (certs.path().join("tls.crt"), certs.path().join("tls.key"));
    std::fs::write(&cert, &serving.cert_pem).unwrap();
    std::fs::write(&key, &serving.key_pem).unwrap();
    for (flag, which) in [
        ("--admin-addr", "binding the admin server"),
        ("--webhook-addr", "binding the webhook"),
    ] {
        let other = if flag == "--admin-addr" {
            "--webhook-addr"
        } else {
            "--admin-addr"
        };
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_orgaccess"))
                .args(["webhook", flag, &format!("127.0.0.1:{taken_port}")])
                .args([other, "127.0.0.1:0"])
                .arg("--webhook-cert-file")
                .arg(&cert)
                .arg("--webhook-key-file")
                .arg(&key)
                .env("KUBECONFIG", plane().kubeconfig_for(OPERATOR_USER))
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("{flag} taken: the process kept running"))
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} taken: exited successfully");
        assert!(
            stderr.contains(which) && stderr.contains(&taken_port.to_string()),
            "{flag} taken: {stderr}"
        );
    }
    drop(taken);
}
