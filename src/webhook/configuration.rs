//! The ValidatingWebhookConfiguration that sends the four kinds to the webhook.
//!
//! `deploy/webhook/validating-webhook-configuration.yaml` is this, rendered for
//! the in-cluster Service; a test keeps the two equal.

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::json;

/// Name of the configuration object and of its one webhook.
pub const CONFIGURATION_NAME: &str = "orgaccess";
pub const WEBHOOK_NAME: &str = "validate.orgaccess.dev";
/// The path the webhook serves admission reviews on.
pub const PATH: &str = "/validate";
/// The mutating webhook's name and path: it records who set each binding
/// (`orgaccess.dev/bound-by`; `webhook/mutate.rs`).
pub const MUTATING_WEBHOOK_NAME: &str = "bindings.orgaccess.dev";
pub const MUTATE_PATH: &str = "/mutate";

/// Where the apiserver reaches the webhook.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// A URL, e.g. `https://127.0.0.1:8443/validate` (tests, out-of-cluster runs).
    Url(String),
    /// An in-cluster Service (the usual case); path is [`PATH`].
    Service {
        namespace: String,
        name: String,
        port: i32,
    },
}

/// Renders the configuration: the four orgaccess.dev resources (not their
/// `/status`, so the operator's status writes never wait on the webhook),
/// CREATE/UPDATE/DELETE, fail closed, no side effects, 5 s timeout,
/// `admission.k8s.io/v1`, equivalent versions matched.
///
/// `ca_bundle_pem` is the PEM of the CA that signed the serving certificate.
/// `namespace_selector` limits it to some namespaces (tests use one per test).
pub fn webhook_configuration(
    name: &str,
    endpoint: &Endpoint,
    ca_bundle_pem: &[u8],
    namespace_selector: Option<LabelSelector>,
) -> ValidatingWebhookConfiguration {
    let client_config = client_config(endpoint, PATH, ca_bundle_pem);
    let mut webhook = json!({
        "name": WEBHOOK_NAME,
        "clientConfig": client_config,
        "rules": [{
            "apiGroups": [crate::api::GROUP],
            "apiVersions": ["*"],
            "resources": ["organizations", "groups", "members", "apikeys", "accessreviews"],
            "operations": ["CREATE", "UPDATE", "DELETE"],
            "scope": "Namespaced",
        }],
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "sideEffects": "NoneOnDryRun",
        "timeoutSeconds": 5,
        "admissionReviewVersions": ["v1"],
    });
    if let Some(selector) = namespace_selector {
        webhook["namespaceSelector"] = json!(selector);
    }
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {
            "name": name,
            "labels": { "app.kubernetes.io/name": "orgaccess", "app.kubernetes.io/component": "webhook" },
        },
        "webhooks": [webhook],
    }))
    .expect("the configuration is well-formed")
}

/// Renders the MutatingWebhookConfiguration: creates and updates of Groups,
/// Members and ApiKeys (not their `/status`) go to `/mutate`, which writes
/// the record of who set their bindings; fail closed (the validating webhook
/// refuses a missing or wrong record anyway), no side effects, re-invoked if
/// a later mutating webhook changes the object.
pub fn mutating_webhook_configuration(
    name: &str,
    endpoint: &Endpoint,
    ca_bundle_pem: &[u8],
    namespace_selector: Option<LabelSelector>,
) -> MutatingWebhookConfiguration {
    let client_config = client_config(endpoint, MUTATE_PATH, ca_bundle_pem);
    let mut webhook = json!({
        "name": MUTATING_WEBHOOK_NAME,
        "clientConfig": client_config,
        "rules": [{
            "apiGroups": [crate::api::GROUP],
            "apiVersions": ["*"],
            "resources": ["groups", "members", "apikeys"],
            "operations": ["CREATE", "UPDATE"],
            "scope": "Namespaced",
        }],
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "reinvocationPolicy": "IfNeeded",
        "timeoutSeconds": 5,
        "admissionReviewVersions": ["v1"],
    });
    if let Some(selector) = namespace_selector {
        webhook["namespaceSelector"] = json!(selector);
    }
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": name,
            "labels": { "app.kubernetes.io/name": "orgaccess", "app.kubernetes.io/component": "webhook" },
        },
        "webhooks": [webhook],
    }))
    .expect("the configuration is well-formed")
}

/// Where the apiserver sends a review: the endpoint with `path` (a URL's
/// path is replaced), and the CA of the serving certificate when given.
fn client_config(endpoint: &Endpoint, path: &str, ca_bundle_pem: &[u8]) -> serde_json::Value {
    let mut config = match endpoint {
        Endpoint::Url(url) => json!({ "url": url.replace(PATH, path) }),
        Endpoint::Service {
            namespace,
            name,
            port,
        } => json!({
            "service": { "namespace": namespace, "name": name, "port": port, "path": path }
        }),
    };
    if !ca_bundle_pem.is_empty() {
        config["caBundle"] = json!(k8s_openapi::ByteString(ca_bundle_pem.to_vec()));
    }
    config
}

/// A selector for exactly one namespace (by its `kubernetes.io/metadata.name` label).
pub fn only_namespace(namespace: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            [(
                "kubernetes.io/metadata.name".to_string(),
                namespace.to_string(),
            )]
            .into(),
        ),
        match_expressions: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_manifest_is_the_rendered_configuration() {
        let text = include_str!("../../deploy/webhook/validating-webhook-configuration.yaml");
        let file: serde_json::Value = serde_saphyr::from_str(text).expect("manifest parses");
        let rendered = serde_json::to_value(webhook_configuration(
            CONFIGURATION_NAME,
            &Endpoint::Service {
                namespace: "orgaccess-system".into(),
                name: "orgaccess-webhook".into(),
                port: 443,
            },
            b"",
            None,
        ))
        .unwrap();
        assert_eq!(file["webhooks"], rendered["webhooks"]);
        assert_eq!(file["metadata"]["name"], rendered["metadata"]["name"]);
        let text = include_str!("../../deploy/webhook/mutating-webhook-configuration.yaml");
        let file: serde_json::Value = serde_saphyr::from_str(text).expect("manifest parses");
        let rendered = serde_json::to_value(mutating_webhook_configuration(
            CONFIGURATION_NAME,
            &Endpoint::Service {
                namespace: "orgaccess-system".into(),
                name: "orgaccess-webhook".into(),
                port: 443,
            },
            b"",
            None,
        ))
        .unwrap();
        assert_eq!(file["webhooks"], rendered["webhooks"]);
        assert_eq!(file["metadata"]["name"], rendered["metadata"]["name"]);
    }

    #[test]
    fn status_subresources_are_not_matched() {
        let c = webhook_configuration(
            "x",
            &Endpoint::Url("https://127.0.0.1:1/validate".into()),
            b"pem",
            None,
        );
        let rules = c.webhooks.unwrap()[0].rules.clone().unwrap();
        assert!(
            rules[0]
                .resources
                .as_ref()
                .unwrap()
                .iter()
                .all(|r| !r.contains('/'))
        );
    }
}
