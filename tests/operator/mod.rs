//! Runs the real `orgaccess run` binary against the test control plane, as the
//! operator's identity, and helpers to wait for convergence.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use orgaccess::api::{ApiKey, Group, Member, Organization};
use orgaccess_testenv::spawn_tied;

use crate::support::{self, OPERATOR_USER};

/// Installs the CRDs and the operator's namespace (for its Lease).
pub async fn install_crds() {
    support::install_crds().await;
    let _ = support::kubectl(
        support::ADMIN,
        &["create", "namespace", support::OPERATOR_NAMESPACE],
    )
    .await;
}

/// A running operator process; killed on drop.
pub struct Operator {
    child: Child,
    pub log: PathBuf,
}

impl Operator {
    /// Starts `orgaccess run` watching every namespace, leading through a Lease
    /// in the operator namespace.
    pub fn start(name: &str, clock_offset_secs: i64) -> Operator {
        Self::start_in(name, clock_offset_secs, None)
    }

    /// Starts an operator that watches only `namespace` and keeps its Lease there.
    pub fn start_in(name: &str, clock_offset_secs: i64, namespace: Option<&str>) -> Operator {
        Self::start_with(name, clock_offset_secs, namespace, &[])
    }

    /// [`Operator::start_in`] with more arguments to `orgaccess run` (e.g.
    /// `--lease-name`); with `--webhook-addr` among them it serves the webhook too.
    pub fn start_with(
        name: &str,
        clock_offset_secs: i64,
        namespace: Option<&str>,
        extra_args: &[&str],
    ) -> Operator {
        let plane = support::plane();
        let log = plane.work_dir().join(format!("operator-{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("operator log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orgaccess"));
        cmd.arg("run");
        // The webhook only when the test gives it an address.
        if !extra_args.contains(&"--webhook-addr") {
            cmd.arg("--no-webhook");
        }
        cmd.args(["--admin-addr", "127.0.0.1:0", "--identity", name]);
        match namespace {
            Some(ns) => cmd.args(["--watch-namespace", ns, "--lease-namespace", ns]),
            None => cmd.args(["--lease-namespace", support::OPERATOR_NAMESPACE]),
        };
        cmd.args(extra_args);
        cmd.env("KUBECONFIG", plane.kubeconfig_for(OPERATOR_USER))
            .env("ORGACCESS_LOG", "info,orgaccess=debug")
            .env(
                "ORGACCESS_CLOCK_OFFSET_SECONDS",
                clock_offset_secs.to_string(),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = spawn_tied(cmd).expect("starting the operator");
        Operator { child, log }
    }

    /// The process has not exited (it was never restarted).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the operator to stop (SIGTERM, as Kubernetes does) and waits
    /// up to `timeout` for it to exit; returns whether it exited successfully.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        false
    }

    /// The admin server's address (`--admin-addr 127.0.0.1:0`), read from
    /// the log once it listens.
    pub async fn admin_addr(&self) -> std::net::SocketAddr {
        eventually(
            "the admin server to listen",
            Duration::from_secs(60),
            || async {
                let logs = without_colours(&self.logs());
                let line = logs
                    .lines()
                    .find(|l| l.contains("admin server listening"))?;
                // Plain (`addr=…`) or JSON (`"addr":"…"`) log format.
                let addr = match line.split("addr=").nth(1) {
                    Some(rest) => rest.split_whitespace().next()?,
                    None => line.split("\"addr\":\"").nth(1)?.split('"').next()?,
                };
                addr.parse().ok()
            },
        )
        .await
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what the operator said (its work dir goes
        // away with the control plane).
        if std::thread::panicking() {
            let logs = self.logs();
            let tail: Vec<&str> = logs.lines().rev().take(60).collect();
            eprintln!("--- operator log (last {} lines) ---", tail.len());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Applies manifests to a namespace as an identity.
pub async fn apply(identity: &str, ns: &str, yaml: &str) {
    let out = support::kubectl_stdin(identity, &["apply", "-n", ns, "-f", "-"], Some(yaml)).await;
    support::assert_success("kubectl apply", &out);
}

pub async fn apply_examples(ns: &str) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let out = support::kubectl(support::ADMIN, &["apply", "-n", ns, "-f", dir]).await;
    support::assert_success("applying examples", &out);
}

/// Polls until `check` returns Some, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every object of the namespace has a status for its current generation.
pub async fn converged(client: &kube::Client, ns: &str) -> bool {
    async fn all_observed<K>(api: Api<K>, observed: impl Fn(&K) -> Option<i64>) -> bool
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        match api.list(&ListParams::default()).await {
            Ok(list) => list
                .items
                .iter()
                .all(|o| observed(o).is_some() && observed(o) == o.meta().generation),
            Err(_) => false,
        }
    }
    all_observed(Api::<Organization>::namespaced(client.clone(), ns), |o| {
        o.status.as_ref()?.observed_generation
    })
    .await
        && all_observed(Api::<Group>::namespaced(client.clone(), ns), |o| {
            o.status.as_ref()?.observed_generation
        })
        .await
        && all_observed(Api::<Member>::namespaced(client.clone(), ns), |o| {
            o.status.as_ref()?.observed_generation
        })
        .await
        && all_observed(Api::<ApiKey>::namespaced(client.clone(), ns), |o| {
            o.status.as_ref()?.observed_generation
        })
        .await
}

/// resourceVersions of every orgaccess object in the namespace, by kind/name.
pub async fn resource_versions(client: &kube::Client, ns: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for plural in ["organizations", "groups", "members", "apikeys"] {
        let ar = ApiResource {
            group: "orgaccess.dev".into(),
            version: "v1alpha1".into(),
            api_version: "orgaccess.dev/v1alpha1".into(),
            kind: String::new(),
            plural: plural.into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        for o in api.list(&ListParams::default()).await.expect("list").items {
            out.push((
                format!("{plural}/{}", o.metadata.name.unwrap_or_default()),
                o.metadata.resource_version.unwrap_or_default(),
            ));
        }
    }
    out.sort();
    out
}

/// Waits until the namespace is converged and no object changes for 2 s, and
/// returns the resourceVersions then.
pub async fn settled(client: &kube::Client, ns: &str) -> Vec<(String, String)> {
    eventually("a quiet namespace", Duration::from_secs(90), || async {
        if !converged(client, ns).await {
            return None;
        }
        let before = resource_versions(client, ns).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        (before == resource_versions(client, ns).await).then_some(before)
    })
    .await
}

/// The text of a log without its ANSI colour sequences (`ESC [ ... m`).
pub fn without_colours(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
