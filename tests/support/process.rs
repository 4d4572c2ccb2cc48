//! The real `orgaccess webhook` process for hostile-traffic tests
//! (`tests/webhook/webhook_hostile.rs`, `tests/webhook/webhook_forged.rs`, the soak in
//! `tests/webhook/webhook_soak.rs`): started as the operator's identity against the
//! test control plane, with or without client certificates, and the HTTPS
//! clients and review bodies that POST straight to it.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orgaccess_testenv::{WEBHOOK_CLIENT_NAME, spawn_tied};
use serde_json::{Value, json};

use super::{OPERATOR_USER, install_crds, plane};

/// The chart's memory limit (values.yaml resources.limits.memory).
pub const CHART_MEMORY_LIMIT_KIB: u64 = 256 * 1024;
/// The webhook's handling deadline (DEFAULT_DEADLINE_MS), plus transport slack.
pub const ANSWER_WITHIN: Duration = Duration::from_millis(4500);

pub struct Process {
    pub child: Child,
    pub port: u16,
    pub admin_port: u16,
    pub log: std::path::PathBuf,
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
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts `orgaccess webhook` on a free port, serving only the apiserver's
/// client certificate, and waits until it judges.
pub async fn start() -> Process {
    start_with(true, &["--webhook-events", "false"]).await
}

/// Starts `orgaccess webhook` with `client_auth` (the apiserver's client
/// certificate required) or without (the chart's default), and `extra` flags.
pub async fn start_with(client_auth: bool, extra: &[&str]) -> Process {
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
pub fn https() -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap())
        .identity(super::webhook::client_identity(WEBHOOK_CLIENT_NAME))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn post(client: &reqwest::Client, port: u16, body: Vec<u8>) -> reqwest::Result<Value> {
    client
        .post(format!("https://127.0.0.1:{port}/validate"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?
        .json()
        .await
}

pub fn review(request: Value) -> Vec<u8> {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
        .to_string()
        .into_bytes()
}

pub fn request(ns: &str, uid: &str, spec: Value) -> Value {
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
pub fn good_review(ns: &str, uid: &str) -> Vec<u8> {
    review(request(
        ns,
        uid,
        json!({"privileges": [{"service": "Analytics", "domain": "Reports", "level": "View"}]}),
    ))
}

/// A well-formed denial: an AdmissionReview whose response refuses, with its uid.
pub fn assert_denial(what: &str, answer: &Value, uid: &str) -> String {
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
pub async fn assert_still_serving(port: u16, what: &str) {
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
pub async fn tls_connect(
    port: u16,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    tls_connect_alpn(port, &[]).await
}

/// [`tls_connect`], offering `alpn` (e.g. `h2`).
pub async fn tls_connect_alpn(
    port: u16,
    alpn: &[&[u8]],
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
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
}

/// Sum of the apiserver's `apiserver_request_total` for TokenReview creates.
pub async fn token_reviews_served(admin: &kube::Client) -> f64 {
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
