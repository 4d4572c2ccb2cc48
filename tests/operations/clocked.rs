//! What the tests of access that ends on its own share
//! (`membership_end`, `access_reviews`): the operator binary (controller,
//! webhook and decision service in one process) serving a fresh namespace
//! with its clock moved ahead, its webhook registered for that namespace
//! alone, its HTTPS decision service asked by `checker`; and the questions
//! both ask of it.

use std::process::Output;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use orgaccess::api::Member;
use orgaccess::webhook::{self, Endpoint};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::operator::Operator;
use crate::support::{self, org::wait_until_called, plane};

/// The operator for one fresh namespace, its clock `offset_secs` ahead of
/// the test's, called by the apiserver for that namespace before this
/// returns.
pub struct Clocked {
    pub ns: String,
    pub operator: Operator,
    pub decision_port: u16,
    /// The webhook configurations' name (both halves), and the namespace
    /// label's value that selects them.
    config: String,
    _certs: TempDir,
}

impl Clocked {
    /// Starts the operator `name`-NAMESPACE and registers its webhook for
    /// the namespaces labelled `label=<configuration name>`.
    pub async fn start(client: &kube::Client, name: &str, offset_secs: i64, label: &str) -> Self {
        let ns = support::fresh_namespace(client).await;
        let certs = tempfile::tempdir().unwrap();
        let serving = plane().issue_serving_cert(&["127.0.0.1"]).unwrap();
        std::fs::write(certs.path().join("tls.crt"), &serving.cert_pem).unwrap();
        std::fs::write(certs.path().join("tls.key"), &serving.key_pem).unwrap();
        let (webhook_port, decision_port) = (support::free_port(), support::free_port());
        let operator = start_operator(
            &format!("{name}-{ns}"),
            offset_secs,
            &ns,
            webhook_port,
            decision_port,
            certs.path(),
        );
        let config = register(
            client,
            &format!("orgaccess-{name}-{ns}"),
            label,
            &ns,
            webhook_port,
        )
        .await;
        wait_until_called(&ns).await;
        Clocked {
            ns,
            operator,
            decision_port,
            config,
            _certs: certs,
        }
    }

    /// `/v1/check`: may member `name` do `verb` on `target`? `None` while
    /// the listener is not up.
    pub async fn check(&self, name: &str, verb: &str, target: &str) -> Option<Value> {
        rustls::crypto::ring::default_provider()
            .install_default()
            .ok();
        let root = reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(root)
            .identity(support::webhook::client_identity("checker"))
            .build()
            .unwrap();
        client
            .post(format!("https://127.0.0.1:{}/v1/check", self.decision_port))
            .json(&json!({
                "namespace": self.ns, "principal": {"member": name},
                "verb": verb, "target": target,
            }))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// Removes the webhook configurations (the operator stops when dropped).
    pub async fn unregister(&self, client: &kube::Client) {
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .delete(&self.config, &DeleteParams::default())
            .await
            .unwrap();
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .delete(&self.config, &DeleteParams::default())
            .await
            .unwrap();
    }
}

/// `orgaccess run` for `ns` with its webhook on `webhook` and its HTTPS
/// decision service on `decision` (client certificates from the control
/// plane's CA; `checker` may ask about `ns`).
fn start_operator(
    name: &str,
    offset_secs: i64,
    ns: &str,
    webhook: u16,
    decision: u16,
    certs: &std::path::Path,
) -> Operator {
    let cert = certs.join("tls.crt").display().to_string();
    let key = certs.join("tls.key").display().to_string();
    let ca = plane().webhook_client_ca_file().display().to_string();
    Operator::start_with(
        name,
        offset_secs,
        Some(ns),
        &[
            "--webhook-addr",
            &format!("127.0.0.1:{webhook}"),
            "--webhook-cert-file",
            &cert,
            "--webhook-key-file",
            &key,
            "--webhook-client-ca-file",
            &ca,
            "--decision-addr",
            &format!("127.0.0.1:{decision}"),
            "--decision-cert-file",
            &cert,
            "--decision-key-file",
            &key,
            "--decision-client-ca-file",
            &ca,
            "--decision-allow",
            &format!("checker={ns}"),
        ],
    )
}

/// Registers the webhook at `port` (both halves, named `name`) for the
/// namespaces labelled `label=name`, and labels `ns` so; returns `name`.
async fn register(client: &kube::Client, name: &str, label: &str, ns: &str, port: u16) -> String {
    let selector = LabelSelector {
        match_labels: Some([(label.to_string(), name.to_string())].into()),
        match_expressions: None,
    };
    let endpoint = Endpoint::Url(format!("https://127.0.0.1:{port}/validate"));
    let ca = plane().ca_pem().as_bytes();
    let vwc = webhook::webhook_configuration(name, &endpoint, ca, Some(selector.clone()));
    let mwc = webhook::mutating_webhook_configuration(name, &endpoint, ca, Some(selector));
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &mwc)
        .await
        .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &vwc)
        .await
        .unwrap();
    Api::<Namespace>::all(client.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { label: name } } })),
        )
        .await
        .unwrap();
    name.to_string()
}

/// `identity` patches `editors` with `patch` (merge), as a server-side dry
/// run when `dry_run` (judged, never stored).
pub async fn patch_editors(identity: &str, ns: &str, patch: &str, dry_run: bool) -> Output {
    let mut args = vec![
        "patch",
        "group",
        "editors",
        "-n",
        ns,
        "--type=merge",
        "-p",
        patch,
    ];
    if dry_run {
        args.push("--dry-run=server");
    }
    support::kubectl(identity, &args).await
}

/// alice renames `editors` (dry run): an edit of the group that grants
/// nothing, admitted only while she holds Edit on Groups.
pub async fn alice_edits_editors(ns: &str) -> Output {
    patch_editors(
        "alice",
        ns,
        r#"{"spec":{"displayName":"Editors (renamed)"}}"#,
        true,
    )
    .await
}

/// A Member's membership of `editors`, as its status reports it.
pub fn editors_of(m: &Member) -> Option<orgaccess::api::MembershipStatus> {
    m.status
        .as_ref()?
        .groups
        .iter()
        .find(|g| g.group == "editors")
        .cloned()
}

/// The messages of the Warning Events of `reason` about `object` in `ns`.
pub async fn warnings(client: &kube::Client, ns: &str, reason: &str, object: &str) -> Vec<String> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some(reason)
                && e.involved_object.name.as_deref() == Some(object)
        })
        .map(|e| e.message.unwrap_or_default())
        .collect()
}
