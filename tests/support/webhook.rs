//! The orgaccess webhook served in-process for a test, over TLS on a free
//! loopback port, with a serving certificate from the control plane's CA.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orgaccess::webhook::{Config, Policy, Webhook};
use prometheus_client::registry::Registry;
use tokio::sync::oneshot;

use super::{admin_client, install_crds, plane};

pub struct ServedWebhook {
    pub webhook: Webhook,
    pub port: u16,
    /// The admin server: /healthz, /readyz, /metrics, /activity (plain HTTP).
    pub admin_port: u16,
    /// Holds `tls.crt` and `tls.key`; a test may replace them to exercise reloading.
    pub certs: tempfile::TempDir,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Installs the CRDs, starts the webhook (trusting `trusted_groups`, or the
/// defaults when `None`) and waits until its caches have synced.
pub async fn serve_webhook(trusted_groups: Option<Vec<String>>) -> ServedWebhook {
    install_crds().await;
    let client = admin_client().await;
    let certs = tempfile::tempdir().unwrap();
    let serving = plane().issue_serving_cert(&["127.0.0.1"]).unwrap();
    let (cert_file, key_file) = (certs.path().join("tls.crt"), certs.path().join("tls.key"));
    std::fs::write(&cert_file, &serving.cert_pem).unwrap();
    std::fs::write(&key_file, &serving.key_pem).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let defaults = Config::default();
    let config = Config {
        addr: listener.local_addr().unwrap(),
        cert_file,
        key_file,
        policy: Policy {
            trusted_groups: trusted_groups.unwrap_or(defaults.policy.trusted_groups.clone()),
            ..defaults.policy.clone()
        },
        // As in a cluster: only the apiserver's client certificate is served.
        client_auth: Some(orgaccess::webhook::tls::ClientAuth {
            ca_file: plane().webhook_client_ca_file(),
            names: vec![orgaccess_testenv::WEBHOOK_CLIENT_NAME.into()],
            optional: false,
        }),
        ..defaults
    };
    let registry = Arc::new(Mutex::new(Registry::default()));
    let webhook = Webhook::new(client.clone(), config, registry.clone()).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_port = admin.local_addr().unwrap().port();
    let ready = {
        let w = webhook.clone();
        Arc::new(move || w.readiness()) as orgaccess::admin::ReadyCheck
    };
    let admin_server = tokio::spawn(orgaccess::admin::serve_on(
        admin,
        registry,
        vec![ready],
        Some(webhook.activity_router(client)),
        std::future::pending(),
    ));
    let server = tokio::spawn(webhook.clone().run_on(listener, async move {
        let _ = stopped.await;
        admin_server.abort();
    }));
    tokio::time::timeout(Duration::from_secs(30), webhook.ready())
        .await
        .expect("webhook caches synced");
    ServedWebhook {
        webhook,
        port,
        admin_port,
        certs,
        stop,
        server,
    }
}

impl ServedWebhook {
    /// Stops serving and returns how the server ended.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(15), self.server).await {
            Ok(joined) => joined?,
            Err(_) => anyhow::bail!("the webhook did not stop within 15 s"),
        }
    }
}

/// The identity the apiserver presents to webhooks (a client certificate with
/// common name `kube-apiserver` from the control plane's CA), for tests that
/// POST to a webhook directly; `cn` to pose as someone else.
pub fn client_identity(cn: &str) -> reqwest::Identity {
    let cert = plane().issue_client_cert(cn).unwrap();
    reqwest::Identity::from_pem(format!("{}{}", cert.cert_pem, cert.key_pem).as_bytes()).unwrap()
}
