//! Issue 16: the tools platform teams run read orgaccess objects the same way.
//!
//! Real objects from the real control plane, reconciled by the real operator,
//! are judged by
//! - the real kstatus library (sigs.k8s.io/cli-utils, what Flux `wait: true`
//!   and kpt use) and Flux-style `healthCheckExprs` evaluated with cel-go
//!   (`tools/status`, built by `tools/build-status.sh`);
//! - the Argo CD health script `deploy/argocd/health.lua`, run by Debian's
//!   `lua5.1` (the Lua dialect Argo CD embeds);
//! - `kubectl wait --for=condition=Ready`.
//!
//! The table in docs/status.md is what these tests pin.

use crate::operator;
use crate::support;

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use operator::{Operator, apply, converged, eventually};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const DAY: i64 = 86_400;

/// Operators for this binary: one per namespace they watch (each created by
/// `namespace_with_operator`), so a second one can run with a shifted clock.
static OPERATORS: OnceLock<std::sync::Mutex<Vec<Operator>>> = OnceLock::new();

async fn namespace_with_operator(name: &str, clock_offset_secs: i64) -> (kube::Client, String) {
    let client = support::admin_client().await;
    let operators = OPERATORS.get_or_init(Default::default);
    if operators.lock().unwrap().is_empty() {
        operator::install_crds().await;
    }
    let ns = support::fresh_namespace(&client).await;
    operators
        .lock()
        .unwrap()
        .push(Operator::start_in(name, clock_offset_secs, Some(&ns)));
    (client, ns)
}

/// The status checker binary (kstatus + cel-go), built and cached once.
fn status_bin() -> String {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new("bash")
            .arg(format!("{ROOT}/tools/build-status.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running tools/build-status.sh");
        assert!(out.status.success(), "tools/build-status.sh failed");
        let dir = String::from_utf8(out.stdout).unwrap();
        format!("{}/status", dir.lines().last().unwrap().trim())
    })
    .clone()
}

/// Every orgaccess object of the namespace, as kubectl prints it (JSON List).
async fn objects(ns: &str) -> Value {
    let out = support::kubectl(
        support::ADMIN,
        &[
            "get",
            "-n",
            ns,
            "organizations,groups,members,apikeys",
            "-o",
            "json",
        ],
    )
    .await;
    serde_json::from_str(&support::assert_success("kubectl get", &out)).unwrap()
}

/// `kind/name` → (kstatus, flux) from tools/status.
fn kstatus(list: &Value) -> Vec<(String, String, String)> {
    let mut child = Command::new(status_bin())
        .args(["--flux", &format!("{ROOT}/deploy/flux/kustomization.yaml")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running tools/status");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tools/status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert!(
                v.get("fluxError").is_none(),
                "a healthCheckExpr failed to evaluate: {v}"
            );
            (
                format!(
                    "{}/{}",
                    v["kind"].as_str().unwrap(),
                    v["name"].as_str().unwrap()
                ),
                v["kstatus"].as_str().unwrap().to_string(),
                v["flux"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A JSON value as a Lua table constructor (what Argo CD hands its scripts as
/// `obj`: maps and lists become tables, null becomes nil).
fn lua_literal(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(a) => format!(
            "{{{}}}",
            a.iter().map(lua_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn lua_string(s: &str) -> String {
    // Decimal escapes for every byte outside printable ASCII: valid in Lua 5.1.
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b}")),
        }
    }
    out.push('"');
    out
}

/// Runs deploy/argocd/health.lua on one object with lua5.1, as Argo CD does:
/// `obj` is a global, the script returns `{status, message}`.
fn argocd_health(obj: &Value) -> (String, String) {
    let script = std::fs::read_to_string(format!("{ROOT}/deploy/argocd/health.lua")).unwrap();
    let program = format!(
        "obj = {}\nlocal function health()\n{script}\nend\nlocal hs = health()\nio.write(hs.status, \"\\t\", hs.message or \"\")\n",
        lua_literal(obj)
    );
    let out = Command::new("lua5.1")
        .args(["-e", &program])
        .output()
        .expect("lua5.1 (apt-get install lua5.1; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "lua5.1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, message) = text.split_once('\t').unwrap();
    (status.to_string(), message.to_string())
}

/// kind/name → (kstatus, flux, argo health, argo message) for every object.
async fn readings(ns: &str) -> Vec<(String, String, String, String, String)> {
    let list = objects(ns).await;
    let ks = kstatus(&list);
    let items = list["items"].as_array().unwrap();
    assert_eq!(ks.len(), items.len());
    ks.into_iter()
        .zip(items)
        .map(|((id, k, f), obj)| {
            let (argo, message) = argocd_health(obj);
            (id, k, f, argo, message)
        })
        .collect()
}

#[track_caller]
fn expect(
    got: &[(String, String, String, String, String)],
    id: &str,
    kstatus: &str,
    argo: &str,
) -> String {
    let (_, k, f, a, message) = got
        .iter()
        .find(|r| r.0 == id)
        .unwrap_or_else(|| panic!("{id} not among {got:#?}"));
    assert_eq!(
        (k.as_str(), f.as_str(), a.as_str()),
        (kstatus, kstatus, argo),
        "{id}: (kstatus, flux healthCheckExprs, argo) disagree with docs/status.md; all: {got:#?}"
    );
    message.clone()
}

async fn wait_ready(ns: &str, what: &str) -> bool {
    support::kubectl(
        support::ADMIN,
        &[
            "wait",
            "-n",
            ns,
            "--for=condition=Ready",
            "--timeout=2s",
            what,
        ],
    )
    .await
    .status
    .success()
}

const ORG: &str = "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {name: acme}\nspec: {displayName: Acme}\n";

#[tokio::test]
async fn kstatus_flux_argocd_and_kubectl_wait_agree_on_every_state() {
    let (client, ns) = namespace_with_operator("readiness", 0).await;
    apply(support::ADMIN, &ns, ORG).await;
    // The ADMIN is trusted, like a GitOps controller: it may apply objects
    // whose references do not exist (yet).
    apply(
        support::ADMIN,
        &ns,
        r#"
apiVersion: orgaccess.dev/v1alpha1
kind: Group
metadata: {name: fine}
spec:
  privileges: [{service: Organization, domain: Groups, level: View}]
---
apiVersion: orgaccess.dev/v1alpha1
kind: Group
metadata: {name: names-a-missing-group}
spec:
  access: [{group: not-yet, level: View}]
---
apiVersion: orgaccess.dev/v1alpha1
kind: Group
metadata: {name: invalid}
spec:
  privileges: [{service: Organization, domain: NoSuchDomain, level: View}]
---
apiVersion: orgaccess.dev/v1alpha1
kind: Member
metadata: {name: active}
spec:
  identity: {provider: Email, username: a@acme.example}
  groups: [fine]
  accepted: true
---
apiVersion: orgaccess.dev/v1alpha1
kind: Member
metadata: {name: pending}
spec:
  identity: {provider: Email, username: p@acme.example}
  groups: [fine]
---
apiVersion: orgaccess.dev/v1alpha1
kind: Member
metadata: {name: in-a-missing-group}
spec:
  identity: {provider: Email, username: m@acme.example}
  groups: [not-yet]
  accepted: true
---
apiVersion: orgaccess.dev/v1alpha1
kind: ApiKey
metadata: {name: active}
spec: {displayName: Active, lifetime: P30D}
---
apiVersion: orgaccess.dev/v1alpha1
kind: ApiKey
metadata: {name: disabled}
spec: {displayName: Disabled, lifetime: P30D, enabled: false}
"#,
    )
    .await;
    // A Secret under a key's name that the key does not control.
    apply(
        support::ADMIN,
        &ns,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: conflicted-apikey}\nstringData: {apiKey: not-ours}\n---\napiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: conflicted}\nspec: {displayName: Conflicted, lifetime: P30D}\n",
    )
    .await;
    eventually("every object reconciled", WAIT, || async {
        converged(&client, &ns).await.then_some(())
    })
    .await;
    // Reconciled at the current generation, but a reference can resolve later:
    // poll until the slowest reading settles (the org counts every object).
    let got = eventually("the organization counts every object", WAIT, || async {
        let got = readings(&ns).await;
        let org = got.iter().find(|r| r.0 == "Organization/acme")?;
        (org.4.contains("3 members") && org.4.contains("3 API keys")).then_some(got)
    })
    .await;

    expect(&got, "Organization/acme", "Current", "Healthy");
    expect(&got, "Group/fine", "Current", "Healthy");
    let m = expect(
        &got,
        "Group/names-a-missing-group",
        "InProgress",
        "Progressing",
    );
    assert!(m.contains("not-yet"), "{m}");
    let m = expect(&got, "Group/invalid", "Failed", "Degraded");
    assert!(m.contains("NoSuchDomain"), "{m}");
    expect(&got, "Member/active", "Current", "Healthy");
    let m = expect(&got, "Member/pending", "Current", "Healthy");
    assert!(m.contains("invitation pending until"), "{m}");
    let m = expect(
        &got,
        "Member/in-a-missing-group",
        "InProgress",
        "Progressing",
    );
    assert!(m.contains("not-yet"), "{m}");
    expect(&got, "ApiKey/active", "Current", "Healthy");
    let m = expect(&got, "ApiKey/disabled", "Current", "Healthy");
    assert!(m.to_lowercase().contains("disabled"), "{m}");
    let m = expect(&got, "ApiKey/conflicted", "Failed", "Degraded");
    assert!(
        m.contains("not the one the operator created for this ApiKey"),
        "{m}"
    );

    // kubectl wait reads the same Ready.
    for ready in [
        "organization/acme",
        "group/fine",
        "member/pending",
        "apikey/disabled",
    ] {
        assert!(wait_ready(&ns, ready).await, "kubectl wait {ready}");
    }
    for not_ready in [
        "group/names-a-missing-group",
        "group/invalid",
        "member/in-a-missing-group",
        "apikey/conflicted",
    ] {
        assert!(
            !wait_ready(&ns, not_ready).await,
            "kubectl wait {not_ready}"
        );
    }

    // The missing group appears (a GitOps tool applied it later): both
    // referrers become Current without being touched.
    apply(
        support::ADMIN,
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {name: not-yet}\nspec: {}\n",
    )
    .await;
    eventually("references resolved", WAIT, || async {
        let got = readings(&ns).await;
        let current = |id: &str| {
            got.iter()
                .any(|r| r.0 == id && r.1 == "Current" && r.2 == "Current" && r.3 == "Healthy")
        };
        (current("Group/names-a-missing-group") && current("Member/in-a-missing-group"))
            .then_some(())
    })
    .await;
    assert!(wait_ready(&ns, "member/in-a-missing-group").await);
}

/// Before the operator has looked at an object, every reader says "not yet":
/// the CRDs default `status.observedGeneration` to 0, so kstatus does not take
/// a status-less object for Current.
#[tokio::test]
async fn an_object_the_operator_has_not_seen_is_in_progress_everywhere() {
    let client = support::admin_client().await;
    if OPERATORS.get().is_none() {
        operator::install_crds().await;
    }
    // No operator watches this namespace.
    let ns = support::fresh_namespace(&client).await;
    apply(support::ADMIN, &ns, ORG).await;
    apply(
        support::ADMIN,
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: k}\nspec: {displayName: K, lifetime: P30D}\n",
    )
    .await;
    let got = readings(&ns).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    for id in ["Organization/acme", "ApiKey/k"] {
        expect(&got, id, "InProgress", "Progressing");
    }
    assert!(!wait_ready(&ns, "apikey/k").await);
}

/// Expiry is a settled state: an expired key and an expired invitation are
/// Current/Healthy with a message saying so (operator clock 40 days ahead).
#[tokio::test]
async fn expired_keys_and_invitations_are_settled() {
    let (client, ns) = namespace_with_operator("readiness-future", 40 * DAY).await;
    apply(support::ADMIN, &ns, ORG).await;
    apply(
        support::ADMIN,
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: old}\nspec: {displayName: Old, lifetime: P30D}\n---\napiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata: {name: late}\nspec:\n  identity: {provider: Email, username: late@acme.example}\n",
    )
    .await;
    eventually("every object reconciled", WAIT, || async {
        converged(&client, &ns).await.then_some(())
    })
    .await;
    let got = readings(&ns).await;
    let m = expect(&got, "ApiKey/old", "Current", "Healthy");
    assert!(m.contains("expired"), "{m}");
    let m = expect(&got, "Member/late", "Current", "Healthy");
    assert!(m.contains("expired"), "{m}");
    assert!(wait_ready(&ns, "apikey/old").await);
}

/// deploy/argocd/argocd-cm.yaml embeds deploy/argocd/health.lua for each kind,
/// verbatim, so what the tests run is what users install.
#[test]
fn the_argocd_configmap_embeds_the_tested_script() {
    let script = std::fs::read_to_string(format!("{ROOT}/deploy/argocd/health.lua")).unwrap();
    let cm: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(format!("{ROOT}/deploy/argocd/argocd-cm.yaml")).unwrap(),
    )
    .unwrap();
    for kind in ["Organization", "Group", "Member", "ApiKey"] {
        let key = format!("resource.customizations.health.orgaccess.dev_{kind}");
        assert_eq!(
            cm["data"][&key].as_str(),
            Some(script.as_str()),
            "{key} differs from deploy/argocd/health.lua"
        );
    }
}
