//! An organization behind the in-process webhook, driven through the real
//! apiserver with kubectl as different identities: the harness shared by the
//! webhook, escalation and agreement tests. Each [`TestWebhook`] registers
//! its webhook configurations for the namespaces it labels: its own fresh
//! one, and any more a test asks for.

use std::process::Output;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use orgaccess::core::model::OrgState;
use orgaccess::webhook::{self, Endpoint};
use serde_json::{Value, json};

use super::{
    ADMIN, OPERATOR_USER, admin_client, assert_success, fresh_namespace, kubectl, kubectl_stdin,
    plane,
};

pub const GITOPS_GROUP: &str = "platform:gitops";
pub const NAMESPACE_CONTROLLER: &str = "system:serviceaccount:kube-system:namespace-controller";
pub const DENIED: &str = "admission webhook \"validate.orgaccess.dev\" denied the request";

/// A webhook serving test namespaces: the one it starts with (`ns`), and any
/// more a test asks for ([`TestWebhook::another_namespace`]).
pub struct TestWebhook {
    pub ns: String,
    pub served: super::webhook::ServedWebhook,
    config_name: String,
}

/// The label of the namespaces a [`TestWebhook`] serves; its value is the
/// webhook configurations' name.
const SERVED_LABEL: &str = "orgaccess.dev/test-webhook";

impl TestWebhook {
    /// Starts a webhook (trusting `system:masters` and `platform:gitops`),
    /// registers it for a fresh namespace and waits until the apiserver calls it.
    pub async fn start() -> TestWebhook {
        let client = admin_client().await;
        let served =
            super::webhook::serve_webhook(Some(vec!["system:masters".into(), GITOPS_GROUP.into()]))
                .await;
        let port = served.port;

        let config_name = format!("orgaccess-test-{:08x}", rand::random::<u32>());
        let selector = LabelSelector {
            match_labels: Some([(SERVED_LABEL.to_string(), config_name.clone())].into()),
            match_expressions: None,
        };
        let endpoint = Endpoint::Url(format!("https://127.0.0.1:{port}/validate"));
        let vwc = webhook::webhook_configuration(
            &config_name,
            &endpoint,
            plane().ca_pem().as_bytes(),
            Some(selector.clone()),
        );
        let mwc = webhook::mutating_webhook_configuration(
            &config_name,
            &endpoint,
            plane().ca_pem().as_bytes(),
            Some(selector),
        );
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .create(&PostParams::default(), &mwc)
            .await
            .unwrap();
        Api::<ValidatingWebhookConfiguration>::all(client)
            .create(&PostParams::default(), &vwc)
            .await
            .unwrap();
        let mut t = TestWebhook {
            ns: String::new(),
            served,
            config_name,
        };
        t.ns = t.another_namespace().await;
        t
    }

    /// A fresh namespace served by this webhook, once the apiserver calls it for it.
    pub async fn another_namespace(&self) -> String {
        let client = admin_client().await;
        let ns = fresh_namespace(&client).await;
        Api::<Namespace>::all(client)
            .patch(
                &ns,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({ "metadata": { "labels": { SERVED_LABEL: self.config_name } } }),
                ),
            )
            .await
            .unwrap_or_else(|e| panic!("labelling namespace {ns}: {e}"));
        wait_until_called(&ns).await;
        ns
    }

    pub async fn stop(self) {
        let client = admin_client().await;
        let _ = Api::<MutatingWebhookConfiguration>::all(client.clone())
            .delete(&self.config_name, &DeleteParams::default())
            .await;
        let _ = Api::<ValidatingWebhookConfiguration>::all(client)
            .delete(&self.config_name, &DeleteParams::default())
            .await;
        let _ = self.served.shutdown().await;
    }

    pub async fn create(&self, who: &str, obj: &Value) -> Output {
        self.create_opts(who, obj, &[]).await
    }

    pub async fn create_opts(&self, who: &str, obj: &Value, extra: &[&str]) -> Output {
        let mut args = vec!["create", "-n", &self.ns, "-f", "-"];
        args.extend_from_slice(extra);
        kubectl_stdin(who, &args, Some(&obj.to_string())).await
    }

    pub async fn delete(&self, who: &str, kind: &str, name: &str) -> Output {
        kubectl(who, &["delete", "-n", &self.ns, kind, name, "--wait=false"]).await
    }

    pub async fn patch(&self, who: &str, kind: &str, name: &str, patch: &Value) -> Output {
        kubectl(
            who,
            &[
                "patch",
                "-n",
                &self.ns,
                kind,
                name,
                "--type=merge",
                "-p",
                &patch.to_string(),
            ],
        )
        .await
    }

    /// Waits until the webhook's cache of this namespace satisfies `ok`.
    pub async fn wait_cached(&self, what: &str, ok: impl Fn(&OrgState) -> bool) {
        self.wait_cached_in(&self.ns, what, ok).await
    }

    /// Waits until the webhook's cache of namespace `ns` satisfies `ok`.
    pub async fn wait_cached_in(&self, ns: &str, what: &str, ok: impl Fn(&OrgState) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ok(&self.served.webhook.validator().index.namespace(ns).state) {
            assert!(
                Instant::now() < deadline,
                "webhook cache of {ns} never saw {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// An HTTPS client for the webhook's own endpoints, trusting the CA.
    pub fn https(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap(),
            )
            .build()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.served.port)
    }

    /// Seeds the organization: the Organization (with declared sources), the
    /// built-in Administrators group (created by the operator), the seed's
    /// groups of four and three privileges, and members alice (an
    /// administrator) and bob (the four privileges), each mapped to the
    /// Kubernetes user of the same name and accepted.
    pub async fn seed(&self) {
        let org = json!({
            "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Organization",
            "metadata": { "name": "acme" },
            "spec": { "displayName": "Acme", "resources": { "sources": ["confluence", "jira", "web", "youtube"] } },
        });
        assert_success("seeding the Organization", &self.create(ADMIN, &org).await);
        let admins = group(
            "administrators",
            json!({ "displayName": "Administrators", "builtIn": "Administrators", "template": "Administrators" }),
        );
        assert_success(
            "the operator seeds Administrators",
            &self.create(OPERATOR_USER, &admins).await,
        );
        assert_success(
            "seeding group four",
            &self
                .create(
                    ADMIN,
                    &group("four", json!({ "privileges": four_privileges() })),
                )
                .await,
        );
        assert_success(
            "seeding group three",
            &self
                .create(
                    ADMIN,
                    &group("three", json!({ "privileges": four_privileges()[..3] })),
                )
                .await,
        );
        assert_success(
            "seeding alice",
            &self
                .create(ADMIN, &member("alice", &["administrators"]))
                .await,
        );
        assert_success(
            "seeding bob",
            &self.create(ADMIN, &member("bob", &["four"])).await,
        );
        self.wait_cached("the seed", |s| {
            s.org.is_some() && s.groups.len() == 3 && s.members.len() == 2
        })
        .await;
    }
}

/// The apiserver picks webhook configurations and namespace labels up
/// asynchronously: probe with a server-side dry run that only the webhook refuses.
pub async fn wait_until_called(ns: &str) {
    let probe = group(
        "probe",
        json!({ "privileges": [priv_("Analytics", "NoSuchDomain", "View")] }),
    )
    .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = kubectl_stdin(
            ADMIN,
            &["create", "-n", ns, "-f", "-", "--dry-run=server"],
            Some(&probe),
        )
        .await;
        if stderr(&out).contains(DENIED) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the apiserver never called the webhook for {ns}: {}",
            stderr(&out)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that kubectl failed because the webhook denied, with each needle in stderr.
#[track_caller]
pub fn assert_denied(what: &str, out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "{what}: expected a denial, kubectl succeeded"
    );
    assert!(
        err.contains(DENIED),
        "{what}: not denied by the webhook:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "{what}: stderr lacks {n:?}:\n{err}");
    }
}

pub fn priv_(service: &str, domain: &str, level: &str) -> Value {
    json!({ "service": service, "domain": domain, "level": level })
}

/// Four privileges, Groups Edit among them: a group manager's.
pub fn four_privileges() -> Vec<Value> {
    vec![
        priv_("Analytics", "ViewAllReports", "Allowed"),
        priv_("Organization", "Activities", "View"),
        priv_("Organization", "Groups", "Edit"),
        priv_("Organization", "Organization", "View"),
    ]
}

pub fn group(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
        "metadata": { "name": name }, "spec": spec,
    })
}

pub fn member(user: &str, groups: &[&str]) -> Value {
    json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Member",
        "metadata": { "name": user },
        "spec": {
            "identity": { "provider": "Email", "username": format!("{user}@example.com") },
            "groups": groups,
            "subjects": [{ "kind": "User", "name": user }],
            "accepted": true,
        },
    })
}

/// Installs the admission policy (the Administrators invariants the chart
/// installs beside the webhook), bound to one namespace.
pub async fn install_admission_policy(ns: &str) {
    let name = format!("orgaccess-invariants-{ns}");
    let mut policy: Value = serde_saphyr::from_str(include_str!(
        "../../deploy/webhook/validating-admission-policy.yaml"
    ))
    .unwrap();
    policy["metadata"]["name"] = json!(name);
    let mut binding: Value = serde_saphyr::from_str(include_str!(
        "../../deploy/webhook/validating-admission-policy-binding.yaml"
    ))
    .unwrap();
    binding["metadata"]["name"] = json!(name);
    binding["spec"]["policyName"] = json!(name);
    binding["spec"]["matchResources"] = json!({
        "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ns } }
    });
    for obj in [&policy, &binding] {
        let out = kubectl_stdin(ADMIN, &["apply", "-f", "-"], Some(&obj.to_string())).await;
        assert_success("applying the admission policy", &out);
    }
}

/// The effective privileges of a Kubernetes identity in a namespace, computed
/// from what the apiserver stores now (not from the webhook's cache), with the
/// same core functions admission and status use.
pub async fn effective_of(
    ns: &str,
    user: &str,
    groups: &[&str],
) -> orgaccess::core::privilege::PrivilegeSet {
    use orgaccess::api::{ApiKey, Group, Member, Organization, org_state};
    use orgaccess::core::effective::{requester_view, resolve_grantees};
    let client = admin_client().await;
    let lp = kube::api::ListParams::default();
    let orgs = Api::<Organization>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .unwrap();
    let groups_ = Api::<Group>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .unwrap();
    let members = Api::<Member>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .unwrap();
    let keys = Api::<ApiKey>::namespaced(client, ns)
        .list(&lp)
        .await
        .unwrap();
    let state = org_state(ns, &orgs.items, &groups_.items, &members.items, &keys.items);
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    requester_view(
        &state,
        &resolve_grantees(&state),
        user,
        &groups,
        jiff::Timestamp::now(),
    )
    .privileges
}
