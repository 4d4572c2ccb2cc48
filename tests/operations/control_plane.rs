//! Integration tests against the real control plane (etcd + kube-apiserver built
//! by tools/build-control-plane.sh): they check that the harness gives what the
//! operator's tests rely on (CRDs with status, server-side apply, Leases,
//! URL-configured admission webhooks over TLS, RBAC, per-identity kubectl).

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde_json::json;
use support::{
    ADMIN, GITOPS_USER, OPERATOR_USER, admin_client, assert_success, client_as, fresh_namespace,
    kubectl, kubectl_stdin, plane,
};

const WIDGET_CRD: &str = "widgets.test.orgaccess.dev";

/// The test CRD: a namespaced `Widget` with a `color` and a status subresource.
fn widget_crd() -> serde_json::Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": WIDGET_CRD },
        "spec": {
            "group": "test.orgaccess.dev",
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList" },
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": { "type": "object", "properties": {
                            "color": { "type": "string" },
                            "size": { "type": "integer" },
                        }},
                        "status": { "type": "object", "properties": {
                            "observedColor": { "type": "string" },
                            "ready": { "type": "boolean" },
                        }},
                    },
                }},
            }],
        },
    })
}

fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("test.orgaccess.dev", "v1", "Widget"),
        "widgets",
    )
}

fn widget_manifest(name: &str, color: &str) -> String {
    json!({
        "apiVersion": "test.orgaccess.dev/v1",
        "kind": "Widget",
        "metadata": { "name": name },
        "spec": { "color": color, "size": 1 },
    })
    .to_string()
}

/// Applies the test CRD with kubectl (idempotent, so tests may race on it) and
/// waits until it is Established.
async fn ensure_widget_crd() {
    let crd = widget_crd().to_string();
    // Server-side apply: concurrent applies of the same content by the same
    // manager are no-ops, where client-side apply could hit update conflicts.
    let out = kubectl_stdin(
        ADMIN,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&crd),
    )
    .await;
    assert_success("apply the widget CRD", &out);
    let out = kubectl(
        ADMIN,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            &format!("crd/{WIDGET_CRD}"),
        ],
    )
    .await;
    assert_success("wait for the widget CRD", &out);
}

fn assert_forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

fn assert_conflict<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        other => panic!("{what}: expected 409 Conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn crd_status_is_written_by_server_side_apply() {
    ensure_widget_crd().await;
    let admin = admin_client().await;
    let ns = fresh_namespace(&admin).await;
    let ar = widget_resource();
    let widgets: Api<DynamicObject> = Api::namespaced_with(admin, &ns, &ar);

    // A status sent with the object is dropped: with a status subresource the
    // main endpoint owns only spec/metadata.
    let widget = DynamicObject::new("w1", &ar).data(json!({
        "spec": { "color": "green", "size": 3 },
        "status": { "observedColor": "forged", "ready": true },
    }));
    let created = widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status ignored on create: {:?}",
        created.data
    );

    // The operator writes status through the subresource by server-side apply.
    let operator: Api<DynamicObject> =
        Api::namespaced_with(client_as(OPERATOR_USER).await, &ns, &ar);
    let status = json!({
        "apiVersion": "test.orgaccess.dev/v1",
        "kind": "Widget",
        "metadata": { "name": "w1" },
        "status": { "observedColor": "green", "ready": true },
    });
    let pp = PatchParams::apply("widget-controller").force();
    operator
        .patch_status("w1", &pp, &Patch::Apply(&status))
        .await
        .unwrap();

    let got = widgets.get("w1").await.unwrap();
    assert_eq!(
        got.data["status"],
        json!({ "observedColor": "green", "ready": true })
    );
    assert_eq!(
        got.data["spec"],
        json!({ "color": "green", "size": 3 }),
        "spec untouched"
    );
    let managers = got.metadata.managed_fields.unwrap_or_default();
    assert!(
        managers
            .iter()
            .any(|m| m.manager.as_deref() == Some("widget-controller")
                && m.operation.as_deref() == Some("Apply")
                && m.subresource.as_deref() == Some("status")),
        "widget-controller owns status by Apply: {managers:?}"
    );
}

#[tokio::test]
async fn lease_is_acquired_renewed_and_not_stolen_while_valid() {
    let admin = admin_client().await;
    let ns = fresh_namespace(&admin).await;
    // Leader election is the operator's job: act as its identity.
    let leases: Api<Lease> = Api::namespaced(client_as(OPERATOR_USER).await, &ns);
    let now = || MicroTime(jiff::Timestamp::now());

    // Holder A acquires the lease by server-side apply, owning holderIdentity.
    let acquire = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": { "name": "leader" },
        "spec": {
            "holderIdentity": "holder-a",
            "leaseDurationSeconds": 30,
            "acquireTime": now(),
            "renewTime": now(),
            "leaseTransitions": 0,
        },
    });
    let a = leases
        .patch(
            "leader",
            &PatchParams::apply("holder-a"),
            &Patch::Apply(&acquire),
        )
        .await
        .unwrap();
    let spec = a.spec.clone().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("holder-a"));

    // Holder B cannot take it by apply without force: the field belongs to A.
    let steal = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": { "name": "leader" },
        "spec": { "holderIdentity": "holder-b", "renewTime": now() },
    });
    assert_conflict(
        "apply by holder-b",
        leases
            .patch(
                "leader",
                &PatchParams::apply("holder-b"),
                &Patch::Apply(&steal),
            )
            .await,
    );

    // A renews with optimistic concurrency (replace carries resourceVersion).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let stale = leases.get("leader").await.unwrap();
    let mut renew = stale.clone();
    renew.spec.as_mut().unwrap().renew_time = Some(now());
    let renewed = leases
        .replace("leader", &PostParams::default(), &renew)
        .await
        .unwrap();
    let renewed_spec = renewed.spec.clone().unwrap();
    assert_eq!(renewed_spec.holder_identity.as_deref(), Some("holder-a"));
    assert!(renewed_spec.renew_time.as_ref().unwrap().0 > spec.renew_time.as_ref().unwrap().0);
    assert_ne!(
        renewed.metadata.resource_version,
        stale.metadata.resource_version
    );

    // B, working from the copy it read before the renewal, is refused.
    let mut takeover = stale.clone();
    let takeover_spec = takeover.spec.as_mut().unwrap();
    takeover_spec.holder_identity = Some("holder-b".into());
    takeover_spec.renew_time = Some(now());
    assert_conflict(
        "replace from a stale resourceVersion",
        leases
            .replace("leader", &PostParams::default(), &takeover)
            .await,
    );

    // Reading fresh, B sees a valid lease held by A, so by the leader-election
    // rules it must wait; the lease is unchanged.
    let current = leases.get("leader").await.unwrap().spec.unwrap();
    let expires = current.renew_time.unwrap().0
        + jiff::SignedDuration::from_secs(current.lease_duration_seconds.unwrap().into());
    assert!(expires > jiff::Timestamp::now(), "lease still valid");
    assert_eq!(current.holder_identity.as_deref(), Some("holder-a"));

    // Once A releases it (holderIdentity cleared), B acquires it from the fresh copy.
    let mut release = leases.get("leader").await.unwrap();
    release.spec.as_mut().unwrap().holder_identity = None;
    let released = leases
        .replace("leader", &PostParams::default(), &release)
        .await
        .unwrap();
    let mut acquire_b = released.clone();
    let b_spec = acquire_b.spec.as_mut().unwrap();
    b_spec.holder_identity = Some("holder-b".into());
    b_spec.acquire_time = Some(now());
    b_spec.renew_time = Some(now());
    b_spec.lease_transitions = Some(1);
    let b = leases
        .replace("leader", &PostParams::default(), &acquire_b)
        .await
        .unwrap();
    let b_spec = b.spec.unwrap();
    assert_eq!(b_spec.holder_identity.as_deref(), Some("holder-b"));
    assert_eq!(b_spec.lease_transitions, Some(1));
}

// --- admission webhook served by the test itself ----------------------------

const WEBHOOK_NAME: &str = "colors.test.orgaccess.dev";
const RED_DENIED: &str = "red widgets are not allowed here";

/// What the webhook saw: (object name, allowed).
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

async fn validate(
    State(seen): State<Seen>,
    axum::Json(review): axum::Json<AdmissionReview<DynamicObject>>,
) -> axum::Json<AdmissionReview<DynamicObject>> {
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return axum::Json(AdmissionResponse::invalid(e.to_string()).into_review()),
    };
    let color = request
        .object
        .as_ref()
        .and_then(|o| o.data["spec"]["color"].as_str().map(str::to_owned));
    let allowed = color.as_deref() != Some("red");
    seen.lock().unwrap().push((request.name.clone(), allowed));
    let response = AdmissionResponse::from(&request);
    let response = if allowed {
        response
    } else {
        response.deny(RED_DENIED)
    };
    axum::Json(response.into_review())
}

/// Serves `POST /validate` over TLS on 127.0.0.1 with a certificate from the
/// control plane's CA; returns the port. Runs on the test's runtime.
async fn serve_webhook(seen: Seen) -> u16 {
    let cert = plane()
        .issue_serving_cert(&["127.0.0.1", "localhost"])
        .unwrap();
    use rustls::pki_types::pem::PemObject as _;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let app = Router::new()
        .route("/validate", post(validate))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn url_webhook_denies_red_widgets_for_kubectl() {
    ensure_widget_crd().await;
    let admin = admin_client().await;
    let ns = fresh_namespace(&admin).await;
    let seen = Seen::default();
    let port = serve_webhook(seen.clone()).await;

    // bob (group orgaccess:testers) may manage widgets in this namespace only.
    let role: Role = serde_json::from_value(json!({
        "metadata": { "name": "widget-editor" },
        "rules": [{ "apiGroups": ["test.orgaccess.dev"], "resources": ["widgets"], "verbs": ["*"] }],
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "bob-widget-editor" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "widget-editor" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob" }],
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    // Scoped to this test's namespace, so other tests' widgets never reach it.
    let config_name = format!("widget-colors-{ns}");
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(plane().ca_pem());
    let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": { "name": config_name },
        "webhooks": [{
            "name": WEBHOOK_NAME,
            "clientConfig": { "url": format!("https://127.0.0.1:{port}/validate"), "caBundle": ca_bundle },
            "rules": [{
                "apiGroups": ["test.orgaccess.dev"], "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["widgets"], "scope": "Namespaced",
            }],
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ns } },
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10,
        }],
    }))
    .unwrap();
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    configs
        .create(&PostParams::default(), &config)
        .await
        .unwrap();

    // The apiserver picks up webhook configurations through an informer: wait
    // until a server-side dry run of a red widget is denied.
    let red = widget_manifest("red-widget", "red");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = kubectl_stdin(
            "bob",
            &["apply", "-n", &ns, "--dry-run=server", "-f", "-"],
            Some(&red),
        )
        .await;
        if String::from_utf8_lossy(&out.stderr).contains(RED_DENIED) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "webhook never took effect; last kubectl output: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let blue = widget_manifest("blue-widget", "blue");
    let out = kubectl_stdin("bob", &["apply", "-n", &ns, "-f", "-"], Some(&blue)).await;
    let stdout = assert_success("apply a blue widget", &out);
    assert!(
        stdout.contains("widget.test.orgaccess.dev/blue-widget created"),
        "{stdout}"
    );

    let out = kubectl_stdin("bob", &["apply", "-n", &ns, "-f", "-"], Some(&red)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "red widget must be refused");
    assert!(
        stderr.contains(&format!(
            "admission webhook \"{WEBHOOK_NAME}\" denied the request: {RED_DENIED}"
        )),
        "kubectl reports the webhook's message: {stderr}"
    );

    let widgets: Api<DynamicObject> = Api::namespaced_with(admin.clone(), &ns, &widget_resource());
    assert!(widgets.get_opt("blue-widget").await.unwrap().is_some());
    assert!(widgets.get_opt("red-widget").await.unwrap().is_none());
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.contains(&("blue-widget".to_string(), true)),
        "webhook allowed blue: {seen:?}"
    );
    assert!(
        seen.contains(&("red-widget".to_string(), false)),
        "webhook denied red: {seen:?}"
    );

    // Cluster-scoped: remove it so it cannot outlive its server within this run.
    configs
        .delete(&config_name, &DeleteParams::default())
        .await
        .unwrap();
}

// --- RBAC and identities ----------------------------------------------------

#[tokio::test]
async fn rbac_grants_testers_only_what_the_harness_gives() {
    let admin = admin_client().await;
    let ns = fresh_namespace(&admin).await;
    let alice = client_as("alice").await;

    // Granted by the harness's ClusterRole: secrets (all verbs), namespaces get/list.
    let secrets: Api<Secret> = Api::namespaced(alice.clone(), &ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": "s1" }, "stringData": { "k": "v" },
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("alice creates a secret");
    assert_eq!(
        secrets.list(&Default::default()).await.unwrap().items.len(),
        1
    );
    let namespaces: Api<Namespace> = Api::all(alice.clone());
    namespaces.get(&ns).await.expect("alice reads namespaces");

    // Not granted.
    assert_forbidden(
        "alice lists nodes",
        Api::<Node>::all(alice.clone())
            .list(&Default::default())
            .await,
    );
    let cm: ConfigMap = serde_json::from_value(json!({ "metadata": { "name": "c1" } })).unwrap();
    assert_forbidden(
        "alice creates a configmap",
        Api::<ConfigMap>::namespaced(alice.clone(), &ns)
            .create(&PostParams::default(), &cm)
            .await,
    );
    assert_forbidden(
        "alice deletes a namespace",
        namespaces.delete(&ns, &DeleteParams::default()).await,
    );

    // The same through kubectl, with the apiserver's message.
    let out = kubectl("alice", &["get", "nodes"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("User \"alice\" cannot list resource \"nodes\""),
        "kubectl shows the RBAC denial: {stderr}"
    );

    // The orgaccess.dev API group is granted even before its CRDs exist
    // (asked by SelfSubjectAccessReview: kubectl's can-i needs discovery).
    for (user, verb, group, resource, expected) in [
        ("alice", "create", "orgaccess.dev", "groups", true),
        (GITOPS_USER, "delete", "orgaccess.dev", "members", true),
        (GITOPS_USER, "create", "", "configmaps", false),
        (
            "erin",
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
            false,
        ),
        (
            OPERATOR_USER,
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
            true,
        ),
    ] {
        let review: SelfSubjectAccessReview = serde_json::from_value(json!({
            "spec": { "resourceAttributes": {
                "namespace": ns, "verb": verb, "group": group, "resource": resource,
            }},
        }))
        .unwrap();
        let answer = Api::<SelfSubjectAccessReview>::all(client_as(user).await)
            .create(&PostParams::default(), &review)
            .await
            .unwrap();
        let allowed = answer.status.unwrap().allowed;
        assert_eq!(allowed, expected, "{user} may {verb} {resource}.{group}");
    }

    // kubectl's view for a built-in resource.
    let out = kubectl("bob", &["auth", "can-i", "list", "secrets", "-n", &ns]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "yes",
        "{out:?}"
    );
    let out = kubectl("bob", &["auth", "can-i", "list", "pods", "-n", &ns]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no", "{out:?}");
}

#[tokio::test]
async fn kubectl_authenticates_every_identity() {
    let plane = plane();
    // The admin kubeconfig works on its own, as printed for local use.
    let out = std::process::Command::new(plane.kubectl_path())
        .arg("--kubeconfig")
        .arg(plane.admin_kubeconfig_path())
        .args([
            "--cache-dir",
            plane.work_dir().join("kubectl-cache").to_str().unwrap(),
        ])
        .args(["get", "namespace", "default", "-o", "name"])
        .output()
        .unwrap();
    assert_eq!(
        assert_success("admin kubeconfig", &out).trim(),
        "namespace/default"
    );

    for id in plane.identities() {
        let out = kubectl(&id.name, &["auth", "whoami", "-o", "json"]).await;
        let review: serde_json::Value =
            serde_json::from_str(&assert_success("auth whoami", &out)).unwrap();
        let user = &review["status"]["userInfo"];
        assert_eq!(user["username"], id.name.as_str());
        let groups: Vec<&str> = user["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|g| g.as_str())
            .collect();
        for group in &id.groups {
            assert!(
                groups.contains(&group.as_str()),
                "{} in {group}: {groups:?}",
                id.name
            );
        }
    }
}

// --- start-up errors ----------------------------------------------------------

/// A start that fails says why, with the tail of the failing process's log,
/// and leaves nothing running: here the fixed apiserver port is already taken.
#[tokio::test]
async fn start_failure_reports_the_log_tail() {
    use orgaccess_testenv::{ControlPlane, Options};
    plane(); // the binaries are there (or this panics with the build hint)
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let opts = Options {
        secure_port: Some(taken.local_addr().unwrap().port()),
        ..Options::default()
    };
    let err = ControlPlane::start(opts)
        .await
        .expect_err("the port is taken");
    let msg = format!("{err:#}");
    assert!(msg.contains("kube-apiserver exited"), "{msg}");
    assert!(msg.contains("kube-apiserver.log"), "names the log: {msg}");
    assert!(
        msg.contains("address already in use"),
        "includes the log tail: {msg}"
    );
}

// --- measurements (not run by default) ---------------------------------------

/// Resident memory of a process in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Start-to-ready time and idle memory, reported in docs/control-plane.md:
/// `cargo test --test operations -- --ignored --nocapture control_plane::measure_start_time_and_idle_memory`.
/// Starts its own control planes (not the shared one) one after the other.
#[tokio::test]
#[ignore = "measurement, run by hand"]
async fn measure_start_time_and_idle_memory() {
    use orgaccess_testenv::{ControlPlane, Options};
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let mut times = Vec::new();
    for run in 0..runs {
        let started = Instant::now();
        // `start` returns after /readyz, the `default` namespace and the test RBAC.
        let plane = ControlPlane::start(Options::default()).await.unwrap();
        let elapsed = started.elapsed();
        times.push(elapsed);
        println!("run {run}: ready in {:.2}s", elapsed.as_secs_f64());
        if run == runs - 1 {
            tokio::time::sleep(Duration::from_secs(30)).await;
            let (api, etcd) = plane.pids();
            println!(
                "idle after 30s: kube-apiserver {} MiB, etcd {} MiB",
                rss_kib(api.unwrap()) / 1024,
                rss_kib(etcd.unwrap()) / 1024
            );
        }
        let stopping = Instant::now();
        plane.stop();
        println!(
            "run {run}: stopped in {:.2}s",
            stopping.elapsed().as_secs_f64()
        );
    }
    times.sort();
    println!(
        "start to ready over {runs} runs: median {:.2}s, min {:.2}s, max {:.2}s",
        times[runs / 2].as_secs_f64(),
        times[0].as_secs_f64(),
        times[runs - 1].as_secs_f64()
    );
}
