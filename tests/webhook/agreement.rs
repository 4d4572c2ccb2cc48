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

use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, PostParams};
use orgaccess::core::builtin::BuiltinGroup;
use orgaccess_testenv::TEST_ACCESS_ROLE;
use serde_json::{Value, json};
use support::org::{DENIED, TestWebhook, stderr};
use support::{
    ADMIN, GITOPS_USER, OPERATOR_USER, admin_client, assert_success, kubectl_stdin, plane,
};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------
// The webhook, in-process (the shared harness, tests/support/org.rs)

/// Waits until the webhook's cache of `ns` holds every object of `expected`.
async fn wait_cached(t: &TestWebhook, ns: &str, expected: &[(String, String)]) {
    let what = format!("{expected:?}");
    t.wait_cached_in(ns, &what, |state| {
        expected.iter().all(|(kind, name)| match kind.as_str() {
            "Organization" => state.org.is_some(),
            "Group" => state.groups.contains_key(name),
            "Member" => state.members.contains_key(name),
            "ApiKey" => state.api_keys.contains_key(name),
            _ => true,
        })
    })
    .await
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
    let ns = t.another_namespace().await;
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
            wait_cached(t, &ns, std::slice::from_ref(&key)).await;
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
                wait_cached(t, &ns, &all).await;
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

// ---------------------------------------------------------------------------
// The same inputs in process: the webhook's handler on an index holding a
// case's other objects, and `check`'s library on the case's files.

/// The corpus files (`tests/golden/{bad,warn}/*.yaml`, each with its target
/// and requester) and every object of `examples/` as a target, created as the
/// trusted GitOps principal.
/// A case's name, its path, who sends its target(s), and its target (all: `None`).
type InProcessCase = (String, PathBuf, Requester, Option<(String, String)>);

fn in_process_cases() -> Vec<InProcessCase> {
    let mut out = Vec::new();
    for corpus in ["bad", "warn"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/golden").join(corpus))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let rel = file.strip_prefix(root()).unwrap().display().to_string();
            let target = header(&text, "target").unwrap();
            let (kind, qualified) = target.split_once(' ').unwrap();
            let name = qualified.split_once('/').unwrap().1;
            let requester = Requester::parse(&header(&text, "requester").unwrap());
            out.push((
                rel,
                file.clone(),
                requester,
                Some((kind.to_string(), name.to_string())),
            ));
        }
    }
    out.push((
        "examples/".into(),
        root().join("examples"),
        Requester::Trusted,
        None,
    ));
    out
}

/// Every document of a file or directory (in `check`'s order), each in `ns`
/// unless it names its own.
fn documents(path: &Path, ns: &str) -> Vec<Value> {
    let files = if path.is_dir() {
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
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        for mut d in docs.into_iter().filter(|d| !d.is_null()) {
            if d["metadata"]["namespace"].is_null() {
                d["metadata"]["namespace"] = json!(ns);
            }
            out.push(d);
        }
    }
    out
}

/// Puts an object in the index as the watch would deliver it.
fn put(index: &orgaccess::webhook::Index, obj: &Value) {
    use orgaccess::api::{ApiKey, Group, Member, Organization};
    fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> T {
        serde_json::from_value(v.clone()).unwrap()
    }
    match obj["kind"].as_str() {
        Some("Organization") => index.apply(&typed::<Organization>(obj)),
        Some("Group") => index.apply(&typed::<Group>(obj)),
        Some("Member") => index.apply(&typed::<Member>(obj)),
        Some("ApiKey") => index.apply(&typed::<ApiKey>(obj)),
        other => panic!("cannot put {other:?}"),
    };
}

/// The webhook's verdict on `target` (created, or updating `old`) by
/// `requester`, everything else of the case in its index: (allowed, denial
/// message, warnings).
fn webhook_verdict(
    others: &[Value],
    old: Option<&Value>,
    target: &Value,
    requester: &Requester,
) -> (bool, Option<String>, Vec<String>) {
    use orgaccess::cli::identity::AsArgs;
    use orgaccess::webhook::{Index, Policy, Validator};
    let index = std::sync::Arc::new(Index::new());
    for o in others {
        put(&index, o);
    }
    index.mark_synced();
    let policy = Policy {
        trusted_groups: vec!["system:masters".into(), support::org::GITOPS_GROUP.into()],
        ..Policy::default()
    };
    let (user, groups) = match requester {
        Requester::Trusted => (
            GITOPS_USER.to_string(),
            vec![support::org::GITOPS_GROUP.to_string()],
        ),
        // What the apiserver sends for `kubectl --as USER --as-group G...`:
        // the identity `check --as` judges as (cli/identity.rs).
        Requester::User { name, groups } => {
            let id = AsArgs {
                as_user: Some(name.clone()),
                as_groups: groups.clone(),
            }
            .identity()
            .unwrap();
            (id.user, id.groups)
        }
    };
    let kind = target["kind"].as_str().unwrap();
    let body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "0b8e5d3a-5a4f-4a39-9a59-2a3c2b1d0e01",
            "kind": {"group": "orgaccess.dev", "version": "v1alpha1", "kind": kind},
            "resource": {"group": "orgaccess.dev", "version": "v1alpha1",
                         "resource": format!("{}s", kind.to_lowercase())},
            "name": target["metadata"]["name"],
            "namespace": target["metadata"]["namespace"],
            "operation": if old.is_some() { "UPDATE" } else { "CREATE" },
            "userInfo": {"username": user, "groups": groups},
            "object": target,
            "oldObject": old,
        },
    });
    let mut registry = prometheus_client::registry::Registry::default();
    let validator = Validator::new(policy, index, &mut registry, 10);
    // As the apiserver does: the mutating half first, then the validating one.
    let body =
        orgaccess::webhook::mutate::mutated_review(&validator.policy, body.to_string().as_bytes());
    let answer: Value = serde_json::from_slice(&validator.handle(&body)).unwrap();
    let r = &answer["response"];
    let warnings = r["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    (
        r["allowed"] == true,
        r["status"]["message"].as_str().map(str::to_string),
        warnings,
    )
}

/// The seeded version of a built-in group the case keeps in Git under its
/// seeded name with its `spec.builtIn` (`check` judges it as an UPDATE of that).
fn seeded_original(obj: &Value, seeded: &[Value]) -> Option<Value> {
    (obj["kind"] == "Group")
        .then(|| {
            seeded
                .iter()
                .find(|g| g["metadata"]["name"] == obj["metadata"]["name"])
        })
        .flatten()
        .filter(|g| g["spec"]["builtIn"] == obj["spec"]["builtIn"])
        .cloned()
}

#[test]
fn check_and_the_webhook_handler_judge_the_same_inputs_alike() {
    use orgaccess::cli::check::{Inputs, findings};
    use orgaccess::cli::identity::{AsArgs, asker};
    let ns = "acme";
    let mut rows = Vec::new();
    for (case, path, requester, target) in in_process_cases() {
        let objects = documents(&path, ns);
        let has_org = objects.iter().any(|o| o["kind"] == "Organization");
        let mut seeded = if has_org {
            seeded(&objects)
        } else {
            Vec::new()
        };
        for g in &mut seeded {
            g["metadata"]["namespace"] = json!(ns);
        }

        // check, as a library, on the case's files.
        let who = match &requester {
            Requester::Trusted => AsArgs::default(),
            Requester::User { name, groups } => AsArgs {
                as_user: Some(name.clone()),
                as_groups: groups.clone(),
            },
        };
        let identity = who.identity();
        let inputs = Inputs::read(std::slice::from_ref(&path), &[], ns, true);
        let verdicts = inputs.verdicts(asker(identity.as_ref()), true);
        let offline = findings(&inputs, &verdicts);

        for (i, obj) in objects.iter().enumerate() {
            let (kind, name) = kind_name(obj);
            if target
                .as_ref()
                .is_some_and(|t| *t != (kind.clone(), name.clone()))
            {
                continue;
            }
            let old = seeded_original(obj, &seeded);
            // The index: every other object, and the seeded groups the case
            // does not define (or, for the target, the seeded original).
            let defined_by_another = |g: &Value| {
                objects
                    .iter()
                    .enumerate()
                    .any(|(j, o)| j != i && kind_name(o) == kind_name(g))
            };
            let mut others: Vec<Value> = seeded
                .iter()
                .filter(|g| !defined_by_another(g))
                .cloned()
                .collect();
            others.extend(
                objects
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, o)| o.clone()),
            );
            let online = webhook_verdict(&others, old.as_ref(), obj, &requester);

            let mine: Vec<&orgaccess::cli::check::Finding> = offline
                .iter()
                .filter(|f| {
                    f.kind.as_deref() == Some(kind.as_str())
                        && f.name.as_deref() == Some(name.as_str())
                })
                .collect();
            let offline = (
                !mine.is_empty() && mine.iter().all(|f| f.allowed),
                mine.first().and_then(|f| f.message.clone()),
                mine.iter()
                    .flat_map(|f| f.warnings.clone())
                    .collect::<Vec<_>>(),
            );
            let agree = offline == online;
            rows.push(format!(
                "{} {case}: {kind} {name}: check {} / webhook {}{}",
                if agree { "ok  " } else { "DIFF" },
                if offline.0 { "allowed" } else { "denied" },
                if online.0 { "allowed" } else { "denied" },
                if agree {
                    String::new()
                } else {
                    format!("\n    check:   {offline:?}\n    webhook: {online:?}")
                }
            ));
        }
    }
    let report = rows.join("\n");
    println!("{report}");
    assert!(rows.len() > 20, "too few cases compared:\n{report}");
    assert!(
        !report.contains("DIFF"),
        "check and the webhook disagree:\n{report}"
    );
}
