//! `orgaccess check` agrees with the webhook: every manifest of the
//! bad corpus (`tests/golden/bad/*.yaml`) and the clean `examples/` get the
//! same verdict, and a denial the same message, offline and through the real
//! apiserver, in one test; so do the warnings of allowed objects (the
//! `tests/golden/warn/*.yaml` corpus), which kubectl prints as `Warning:`.
//!
//! Each case gets a fresh namespace (tests/support). The corpus files name the
//! namespace `acme`; a copy with `metadata.namespace` removed is checked
//! offline with `-n <fresh namespace>`, so the messages (`<Kind> <ns>/<name>
//! denied: ...`) name the same namespace on both sides. Online, as docs/cli.md
//! says, the file's other objects are the context: they are created as the
//! trusted GitOps principal (user `gitops`, group `platform:gitops`), the
//! operator's identity seeds the built-in groups once the Organization exists
//! (those the offline check adds implicitly, or updates), and the target is
//! then created (or applied over the seeded group, an UPDATE) with kubectl as
//! the header's requester. A requester the harness has no identity for (with
//! exactly those groups) is impersonated from the admin kubeconfig
//! (`--as`/`--as-group`), with a RoleBinding so that RBAC lets it through to
//! admission. In `examples/` every object is a target, created as `gitops`.

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use orgaccess::core::builtin::BuiltinGroup;
use orgaccess::webhook::{self, Endpoint};
use orgaccess_testenv::TEST_ACCESS_ROLE;
use serde_json::{Value, json};
use support::{
    ADMIN, GITOPS_USER, OPERATOR_USER, admin_client, assert_success, fresh_namespace,
    kubectl_stdin, plane,
};

const GITOPS_GROUP: &str = "platform:gitops";
const DENIED: &str = "admission webhook \"validate.orgaccess.dev\" denied the request";
/// Namespaces of this test carry this label; its value is the run's id.
const RUN_LABEL: &str = "orgaccess.dev/agreement";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------
// The webhook, in-process (as in tests/webhook/webhook.rs)

/// One webhook for the whole test, registered for the namespaces labelled
/// `RUN_LABEL=<run>`, trusting `system:masters` and `platform:gitops`.
struct TestWebhook {
    run: String,
    served: support::webhook::ServedWebhook,
    config_name: String,
}

impl TestWebhook {
    async fn start() -> TestWebhook {
        let client = admin_client().await;
        let run = format!("{:08x}", rand::random::<u32>());

        let served = support::webhook::serve_webhook(Some(vec![
            "system:masters".into(),
            GITOPS_GROUP.into(),
        ]))
        .await;
        let port = served.port;

        let config_name = format!("orgaccess-agreement-{run}");
        let selector = LabelSelector {
            match_labels: Some([(RUN_LABEL.to_string(), run.clone())].into()),
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
        TestWebhook {
            run,
            served,
            config_name,
        }
    }

    /// A fresh namespace served by this webhook, once the apiserver calls it.
    async fn namespace(&self) -> String {
        let client = admin_client().await;
        let ns = fresh_namespace(&client).await;
        Api::<Namespace>::all(client)
            .patch(
                &ns,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "labels": { RUN_LABEL: self.run } } })),
            )
            .await
            .unwrap_or_else(|e| panic!("labelling namespace {ns}: {e}"));
        wait_until_called(&ns).await;
        ns
    }

    /// Waits until the webhook's cache of `ns` holds every object of `expected`.
    async fn wait_cached(&self, ns: &str, expected: &[(String, String)]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = &self.served.webhook.validator().index.namespace(ns).state;
            let missing: Vec<&(String, String)> = expected
                .iter()
                .filter(|(kind, name)| match kind.as_str() {
                    "Organization" => state.org.is_none(),
                    "Group" => !state.groups.contains_key(name),
                    "Member" => !state.members.contains_key(name),
                    "ApiKey" => !state.api_keys.contains_key(name),
                    _ => false,
                })
                .collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the webhook's cache of {ns} never saw {missing:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        let client = admin_client().await;
        let _ = Api::<MutatingWebhookConfiguration>::all(client.clone())
            .delete(&self.config_name, &DeleteParams::default())
            .await;
        let _ = Api::<ValidatingWebhookConfiguration>::all(client)
            .delete(&self.config_name, &DeleteParams::default())
            .await;
        let _ = self.served.shutdown().await;
    }
}

/// The apiserver picks webhook configurations and namespace labels up
/// asynchronously: probe with a server-side dry run that only the webhook refuses.
async fn wait_until_called(ns: &str) {
    let probe = json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
        "metadata": { "name": "probe" },
        "spec": { "privileges": [{ "service": "Analytics", "domain": "NoSuchDomain", "level": "View" }] },
    })
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

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---------------------------------------------------------------------------
// Cases

/// Who sends the target: the header's `# requester:` line.
#[derive(Clone, Debug)]
enum Requester {
    Trusted,
    User { name: String, groups: Vec<String> },
}

impl Requester {
    fn parse(line: &str) -> Requester {
        if line.trim() == "trusted" {
            return Requester::Trusted;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let (mut name, mut groups) = (None, Vec::new());
        let mut i = 0;
        while i < words.len() {
            match (words[i], words.get(i + 1)) {
                ("--as", Some(v)) => name = Some(v.to_string()),
                ("--as-group", Some(v)) => groups.push(v.to_string()),
                _ => panic!("unsupported requester header: {line}"),
            }
            i += 2;
        }
        Requester::User {
            name: name.unwrap_or_else(|| panic!("requester without --as: {line}")),
            groups,
        }
    }

    /// `orgaccess check` flags.
    fn check_flags(&self) -> Vec<String> {
        match self {
            Requester::Trusted => Vec::new(),
            Requester::User { name, groups } => {
                let mut v = vec!["--as".to_string(), name.clone()];
                for g in groups {
                    v.extend(["--as-group".to_string(), g.clone()]);
                }
                v
            }
        }
    }

    /// The harness identity whose kubeconfig kubectl uses, and the
    /// impersonation flags to add (none when the harness has the identity
    /// with exactly these groups).
    fn kubectl_identity(&self) -> (&'static str, Vec<String>) {
        match self {
            Requester::Trusted => (GITOPS_USER, Vec::new()),
            Requester::User { name, groups } => {
                let wanted: BTreeSet<&str> = groups.iter().map(String::as_str).collect();
                if let Some(id) = plane().identity(name) {
                    let has: BTreeSet<&str> = id.groups.iter().map(String::as_str).collect();
                    if has == wanted {
                        return (id.name.as_str(), Vec::new());
                    }
                }
                (ADMIN, self.check_flags())
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Requester::Trusted => "trusted (gitops)".into(),
            Requester::User { .. } => self.check_flags().join(" "),
        }
    }
}

struct Case {
    name: String,
    /// What `orgaccess check` reads (a file or a directory).
    path: PathBuf,
    requester: Requester,
    /// `(kind, name)` of the objects whose verdicts are compared; `None`: all.
    target: Option<(String, String)>,
    /// The header says the target is an UPDATE.
    update: bool,
    /// The corpus expects a denial.
    bad: bool,
}

/// Header lines of a corpus file: `# requester:`, `# target:`, ...
fn header(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
        .map(str::to_string)
}

/// The corpus file with its `metadata.namespace` lines (the namespace of the
/// target) removed, so that `-n` and `kubectl -n` place it.
fn without_namespace(text: &str, ns: &str) -> String {
    let line = format!("  namespace: {ns}");
    let mut out: String = text
        .lines()
        .filter(|l| l.trim_end() != line)
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

/// The corpus (every `tests/golden/bad/*.yaml`, copied into `dir` without its
/// namespace) and `examples/`.
fn cases(dir: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    // Denied manifests, and manifests allowed with warnings.
    for (corpus, bad) in [("bad", true), ("warn", false)] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/golden").join(corpus))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus in tests/golden/{corpus}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let rel = file.strip_prefix(root()).unwrap().display().to_string();
            let must = |key: &str| {
                header(&text, key).unwrap_or_else(|| panic!("{rel} has no '# {key}:' line"))
            };
            let (kind, qualified) = must("target")
                .split_once(' ')
                .map(|(k, q)| (k.to_string(), q.to_string()))
                .unwrap_or_else(|| panic!("{rel}: bad '# target:' line"));
            let (file_ns, name) = qualified
                .split_once('/')
                .unwrap_or_else(|| panic!("{rel}: '# target:' needs NAMESPACE/NAME"));
            let copy = dir.join(file.file_name().unwrap());
            std::fs::write(&copy, without_namespace(&text, file_ns)).unwrap();
            cases.push(Case {
                name: rel.clone(),
                path: copy,
                requester: Requester::parse(&must("requester")),
                target: Some((kind, name.to_string())),
                update: header(&text, "operation").is_some_and(|o| o.starts_with("UPDATE")),
                bad,
            });
        }
    }
    cases.push(Case {
        name: "examples/".into(),
        path: root().join("examples"),
        requester: Requester::Trusted,
        target: None,
        update: false,
        bad: false,
    });
    cases
}

/// The objects of a case, in name and document order (as `check` reads them).
fn objects(path: &Path) -> Vec<Value> {
    let mut files = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::new();
    for f in files.drain(..) {
        let text = std::fs::read_to_string(&f).unwrap();
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for d in docs.into_iter().filter(|d| !d.is_null()) {
            assert!(
                d["metadata"]["namespace"].is_null(),
                "{}: a document still names its namespace",
                f.display()
            );
            out.push(d);
        }
    }
    out
}

fn kind_name(obj: &Value) -> (String, String) {
    (
        obj["kind"].as_str().unwrap().to_string(),
        obj["metadata"]["name"].as_str().unwrap().to_string(),
    )
}

// ---------------------------------------------------------------------------
// Verdicts

#[derive(Clone, Debug)]
enum Verdict {
    Allowed,
    /// The whole denial message.
    Denied(String),
    /// Not a verdict: the check or kubectl failed otherwise.
    Error(String),
    /// Not compared (a context object).
    NotCompared,
}

impl Verdict {
    fn word(&self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied(_) => "denied",
            Verdict::Error(_) => "ERROR",
            Verdict::NotCompared => "-",
        }
    }
}

struct Row {
    case: String,
    object: String,
    operation: String,
    offline: Verdict,
    online: Verdict,
    /// Why the row disagrees; empty when it agrees.
    problems: Vec<String>,
}

/// Runs `orgaccess check PATH <flags> -o json -n NS`; returns the findings.
async fn check_offline(case: &Case, ns: &str) -> Result<Vec<Value>, String> {
    let mut args = vec!["check".to_string(), case.path.display().to_string()];
    args.extend(case.requester.check_flags());
    args.extend(["-o", "json", "-n", ns].map(str::to_string));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_orgaccess"))
        .args(&args)
        .current_dir(root())
        .env("ORGACCESS_LOG", "warn")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("the binary runs");
    let code = out.status.code().unwrap_or(-1);
    if code != 0 && code != 1 {
        return Err(format!(
            "orgaccess {} exited {code}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "orgaccess {}: not JSON ({e}): {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// The offline verdict on one object, and its operation.
fn offline_verdict(findings: &[Value], ns: &str, kind: &str, name: &str) -> (Verdict, String) {
    let entries: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == kind && f["namespace"] == ns && f["name"] == name)
        .collect();
    let Some(first) = entries.first() else {
        return (
            Verdict::Error(format!("no entry for {kind} {ns}/{name}")),
            "?".into(),
        );
    };
    let operation = first["operation"].as_str().unwrap_or("?").to_string();
    if entries.iter().all(|f| f["allowed"] == true) {
        return (Verdict::Allowed, operation);
    }
    let messages: BTreeSet<&str> = entries
        .iter()
        .map(|f| f["message"].as_str().unwrap_or(""))
        .collect();
    if messages.len() != 1 || entries.iter().any(|f| f["allowed"] == true) {
        return (
            Verdict::Error(format!("inconsistent entries: {entries:#?}")),
            operation,
        );
    }
    (
        Verdict::Denied(messages.into_iter().next().unwrap().to_string()),
        operation,
    )
}

/// The warnings `check` gives an allowed object.
fn offline_warnings(findings: &[Value], ns: &str, kind: &str, name: &str) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f["kind"] == kind && f["namespace"] == ns && f["name"] == name)
        .flat_map(|f| f["warnings"].as_array().cloned().unwrap_or_default())
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect()
}

/// The admission warnings kubectl printed (`Warning: ...` on stderr).
fn online_warnings(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter_map(|l| l.strip_prefix("Warning: "))
        .map(str::to_string)
        .collect()
}

/// kubectl's result as a verdict: a denial is the webhook's.
fn online_verdict(out: &Output) -> Verdict {
    let err = stderr(out);
    if out.status.success() {
        Verdict::Allowed
    } else if err.contains(DENIED) {
        Verdict::Denied(err)
    } else {
        Verdict::Error(err)
    }
}

/// Creates `obj` in `ns` as `who`, or applies it over the existing object.
async fn send(who: &str, extra: &[String], ns: &str, obj: &Value, update: bool) -> Output {
    let mut args: Vec<&str> = extra.iter().map(String::as_str).collect();
    args.extend(if update {
        ["apply", "-n", ns, "-f", "-"]
    } else {
        ["create", "-n", ns, "-f", "-"]
    });
    kubectl_stdin(who, &args, Some(&obj.to_string())).await
}

/// The built-in groups the operator seeds that the offline check also has:
/// those the manifests do not define, and those they keep under the seeded
/// name with their `spec.builtIn` (an update of the seeded group).
fn seeded(objects: &[Value]) -> Vec<Value> {
    BuiltinGroup::ALL
        .into_iter()
        .filter(|b| {
            let defined = objects
                .iter()
                .find(|o| o["kind"] == "Group" && o["metadata"]["name"] == b.object_name());
            match defined {
                None => true,
                Some(g) => g["spec"]["builtIn"] == serde_json::to_value(b).unwrap(),
            }
        })
        .map(|b| {
            json!({
                "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
                "metadata": { "name": b.object_name() },
                "spec": {
                    "displayName": b.display_name(),
                    "builtIn": b,
                    "template": b.template(),
                },
            })
        })
        .collect()
}

/// Runs one case on both sides; returns its rows.
async fn run_case(t: &TestWebhook, case: &Case) -> Vec<Row> {
    let ns = t.namespace().await;
    let objects = objects(&case.path);
    let is_target = |o: &Value| {
        case.target
            .as_ref()
            .is_none_or(|(k, n)| kind_name(o) == (k.clone(), n.clone()))
    };
    if let Some((k, n)) = &case.target {
        assert!(
            objects
                .iter()
                .any(|o| kind_name(o) == (k.clone(), n.clone())),
            "{}: the target {k} {n} is not in the file",
            case.name
        );
    }

    // Offline, in the same namespace.
    let findings = check_offline(case, &ns).await;

    // Online: the context as gitops (and the operator's seed), then the targets.
    let (who, extra) = case.requester.kubectl_identity();
    if who == ADMIN
        && let Requester::User { name, .. } = &case.requester
    {
        let rb: RoleBinding = serde_json::from_value(json!({
                "metadata": { "name": "agreement-requester" },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TEST_ACCESS_ROLE },
                "subjects": [{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name }],
            }))
            .unwrap();
        Api::<RoleBinding>::namespaced(admin_client().await, &ns)
            .create(&PostParams::default(), &rb)
            .await
            .unwrap_or_else(|e| panic!("binding {name} in {ns}: {e}"));
    }
    let order: Vec<&Value> = objects
        .iter()
        .filter(|o| !is_target(o))
        .chain(objects.iter().filter(|o| is_target(o)))
        .collect();
    let mut existing: BTreeSet<(String, String)> = BTreeSet::new();
    let mut rows = Vec::new();
    for obj in order {
        let (kind, name) = kind_name(obj);
        let key = (kind.clone(), name.clone());
        let update = existing.contains(&key);
        let target = is_target(obj);
        let out = if target {
            send(who, &extra, &ns, obj, update).await
        } else {
            send(GITOPS_USER, &[], &ns, obj, update).await
        };
        let online = online_verdict(&out);
        if !target && !matches!(online, Verdict::Allowed) {
            // Not a comparison, but the case cannot be reproduced without it.
            rows.push(Row {
                case: case.name.clone(),
                object: format!("{kind} {ns}/{name} (context)"),
                operation: if update { "UPDATE" } else { "CREATE" }.into(),
                offline: Verdict::NotCompared,
                online,
                problems: vec![format!(
                    "the context was refused to gitops: {}",
                    stderr(&out).trim()
                )],
            });
            continue;
        }
        if matches!(online, Verdict::Allowed) {
            existing.insert(key.clone());
            t.wait_cached(&ns, std::slice::from_ref(&key)).await;
            if kind == "Organization" {
                // The operator seeds the built-in groups with the Organization.
                let seed = seeded(&objects);
                for g in &seed {
                    let gk = kind_name(g);
                    if existing.contains(&gk) {
                        continue;
                    }
                    assert_success(
                        &format!("{}: the operator seeds {}", case.name, gk.1),
                        &send(OPERATOR_USER, &[], &ns, g, false).await,
                    );
                    existing.insert(gk);
                }
                let all: Vec<(String, String)> = existing.iter().cloned().collect();
                t.wait_cached(&ns, &all).await;
            }
        }
        if !target {
            continue;
        }

        let (offline, operation) = match &findings {
            Ok(f) => offline_verdict(f, &ns, &kind, &name),
            Err(e) => (Verdict::Error(e.clone()), "?".into()),
        };
        let mut problems = Vec::new();
        let online_op = if update { "UPDATE" } else { "CREATE" };
        if operation != online_op {
            problems.push(format!(
                "offline checked a {operation}, the apiserver got a {online_op}"
            ));
        }
        if case.update && !update {
            problems.push("the header says UPDATE but the object did not exist".into());
        }
        match (&offline, &online) {
            (Verdict::Allowed, Verdict::Allowed) => {
                if case.bad {
                    problems.push("a bad manifest is allowed by both".into());
                }
                // The same warnings, from the same core::warnings.
                let offline = match &findings {
                    Ok(f) => offline_warnings(f, &ns, &kind, &name),
                    Err(_) => Vec::new(),
                };
                let online = online_warnings(&out);
                if offline != online {
                    problems.push(format!(
                        "different warnings:\n  offline: {offline:?}\n  webhook: {online:?}"
                    ));
                }
            }
            (Verdict::Denied(message), Verdict::Denied(err)) => {
                let prefix = format!("{kind} {ns}/{name} denied: ");
                if !message.starts_with(&prefix) || message.len() == prefix.len() {
                    problems.push(format!(
                        "offline message does not start {prefix:?}: {message}"
                    ));
                }
                if !err.contains(&format!("{DENIED}: {message}")) {
                    problems.push(format!(
                        "different messages:\n  offline: {message}\n  webhook: {}",
                        webhook_message(err)
                    ));
                }
            }
            (Verdict::Error(e), _) => problems.push(format!("offline error: {e}")),
            (_, Verdict::Error(e)) => problems.push(format!("kubectl error: {e}")),
            (a, b) => problems.push(format!(
                "verdicts differ:\n  offline: {a:?}\n  webhook: {}",
                match b {
                    Verdict::Denied(err) => webhook_message(err),
                    other => format!("{other:?}"),
                }
            )),
        }
        rows.push(Row {
            case: case.name.clone(),
            object: format!("{kind} {ns}/{name}"),
            operation: online_op.into(),
            offline,
            online,
            problems,
        });
    }
    rows
}

/// The webhook's message in kubectl's stderr (what follows the prefix).
fn webhook_message(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.split_once(&format!("{DENIED}: ")).map(|(_, m)| m))
        .unwrap_or(stderr)
        .to_string()
}

fn table(rows: &[Row]) -> String {
    let header = ["CASE", "OBJECT", "OP", "OFFLINE", "WEBHOOK", "AGREE"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.case.clone(),
                r.object.clone(),
                r.operation.clone(),
                r.offline.word().into(),
                r.online.word().into(),
                if r.problems.is_empty() { "yes" } else { "NO" }.into(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for c in &cells {
        for (w, s) in widths.iter_mut().zip(c) {
            *w = (*w).max(s.len());
        }
    }
    let line = |c: &[String]| {
        c.iter()
            .zip(widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(&header.map(String::from));
    out.push('\n');
    for c in &cells {
        out.push_str(&line(c));
        out.push('\n');
    }
    for r in rows.iter().filter(|r| !r.problems.is_empty()) {
        out.push_str(&format!("\n{} {}:\n", r.case, r.object));
        for p in &r.problems {
            out.push_str(&format!("- {p}\n"));
        }
    }
    out
}

#[tokio::test]
async fn check_and_the_webhook_give_the_same_verdicts_and_messages() {
    let t = TestWebhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cases = cases(dir.path());
    let mut rows = Vec::new();
    for case in &cases {
        let before = rows.len();
        rows.extend(run_case(&t, case).await);
        assert!(
            rows.len() > before,
            "{} ({}): no object compared",
            case.name,
            case.requester.describe()
        );
    }
    t.stop().await;
    let report = table(&rows);
    println!("{report}");
    assert!(
        rows.iter().all(|r| r.problems.is_empty()),
        "check and the webhook disagree:\n{report}"
    );
}
