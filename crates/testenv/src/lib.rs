//! A real, local Kubernetes control plane (etcd + kube-apiserver, no kubelet, no
//! kube-controller-manager) for integration tests and local runs.
//!
//! The binaries are built from pinned Go modules by `tools/build-control-plane.sh`
//! and found in [`Options::bin_dir`]. [`ControlPlane::start`]:
//!
//! 1. makes a CA, a serving certificate for `127.0.0.1`/`localhost` and a
//!    service-account signing key (all in memory with `rcgen`, written to the
//!    work dir because the apiserver reads files: [`pki`]);
//! 2. writes a static token file with the [`identities`](ControlPlane::identities)
//!    and one kubeconfig per identity ([`pki`]);
//! 3. starts etcd and kube-apiserver on free loopback ports, both logging to
//!    files under `<work dir>/logs/` ([`processes`]);
//! 4. waits for `/readyz` and the `default` namespace;
//! 5. grants the test identities their RBAC rights (see [`TEST_ACCESS_ROLE`]).
//!
//! The credentials are usable without a control plane: [`Pki`] makes the CA,
//! certificates and kubeconfigs and [`Layout`] says where their files go,
//! and neither starts anything.
//!
//! Child processes are tied to the life of this process (see [`spawn_tied`]):
//! they die with it even if the [`ControlPlane`] is never dropped, which is the
//! normal case for a control plane shared by a test binary through a `static`.
//!
//! `kube::Client`s are never stored here: a client spawns tasks on the tokio
//! runtime that creates it, and every `#[tokio::test]` has its own runtime, so
//! callers ask for a fresh client with [`ControlPlane::client`] /
//! [`ControlPlane::client_as`] in their own runtime.

pub mod pki;
pub mod processes;

pub use pki::{Identity, Layout, Pki, ServingCert};
pub use processes::spawn_tied;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use processes::{Processes, StartError, make_temp_work_dir, prepare_fixed_work_dir};

/// The cluster-admin identity (group `system:masters`).
pub const ADMIN: &str = "admin";
/// Group of the ordinary test users; it gets [`TEST_ACCESS_ROLE`].
pub const TESTERS_GROUP: &str = "orgaccess:testers";
/// The ordinary test users, all in [`TESTERS_GROUP`].
pub const TESTER_USERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
/// A GitOps-style identity (group [`GITOPS_GROUP`]); it also gets [`TEST_ACCESS_ROLE`].
pub const GITOPS_USER: &str = "gitops";
/// Group of [`GITOPS_USER`].
pub const GITOPS_GROUP: &str = "platform:gitops";
/// Namespace of the operator's service account (created by the harness).
pub const OPERATOR_NAMESPACE: &str = "orgaccess-system";
/// Name of the operator's service account.
pub const OPERATOR_SERVICE_ACCOUNT: &str = "orgaccess";
/// The operator identity, authenticated by token as if it were its service account.
pub const OPERATOR_USER: &str = "system:serviceaccount:orgaccess-system:orgaccess";
/// Common name of the client certificate the apiserver presents to webhooks.
pub const WEBHOOK_CLIENT_NAME: &str = "kube-apiserver";
/// ClusterRole (and ClusterRoleBinding) that gives [`TESTERS_GROUP`] and
/// [`GITOPS_GROUP`] all verbs on `orgaccess.dev`, `secrets` and `events`, and
/// get/list on namespaces.
pub const TEST_ACCESS_ROLE: &str = "orgaccess:test-access";
/// ClusterRoleBinding of [`OPERATOR_USER`] to `cluster-admin` (until the operator
/// has its own least-privilege role).
pub const OPERATOR_BINDING: &str = "orgaccess:operator-cluster-admin";
/// Service CIDR given to kube-apiserver (no kube-proxy runs; it only has to be valid).
pub const SERVICE_CLUSTER_IP_RANGE: &str = "10.0.0.0/24";

/// Field manager used for the objects the harness creates.
const FIELD_MANAGER: &str = "orgaccess-controlplane";
/// The binaries [`ControlPlane`] needs in its bin dir.
const BINARIES: [&str; 3] = ["etcd", "kube-apiserver", "kubectl"];
/// Prefix of the temporary work dirs, used to find stale ones.
const TEMP_PREFIX: &str = "orgaccess-cp-";

/// How to start a [`ControlPlane`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Directory with `etcd`, `kube-apiserver` and `kubectl`.
    /// Default: env `ORGACCESS_K8S_BIN`, else `<crate root>/target/k8s-bin`.
    pub bin_dir: PathBuf,
    /// Where certificates, kubeconfigs, etcd data and logs go. `None`: a fresh
    /// temporary dir, removed on [`ControlPlane::stop`]. A given dir is kept on
    /// stop (logs stay readable) but its previous state is wiped at start, so
    /// every start is a fresh cluster.
    pub work_dir: Option<PathBuf>,
    /// Fixed apiserver port; `None` picks a free one.
    pub secure_port: Option<u16>,
    /// How long to wait for etcd and for the apiserver's `/readyz`.
    pub start_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bin_dir: default_bin_dir(),
            work_dir: None,
            secure_port: None,
            start_timeout: Duration::from_secs(90),
        }
    }
}

/// `ORGACCESS_K8S_BIN` if set, else `<crate root>/target/k8s-bin` (the symlink
/// `tools/build-control-plane.sh` maintains).
pub fn default_bin_dir() -> PathBuf {
    match std::env::var_os("ORGACCESS_K8S_BIN") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => crate_root().join("target").join("k8s-bin"),
    }
}

/// The binaries missing from `bin_dir` (empty when all are there).
pub fn missing_binaries(bin_dir: &Path) -> Vec<&'static str> {
    BINARIES
        .into_iter()
        .filter(|b| !bin_dir.join(b).is_file())
        .collect()
}

/// Runs `tools/build-control-plane.sh`, streaming its progress (stderr) to our
/// stderr, and returns the bin dir it prints on its last stdout line.
pub fn build_binaries() -> anyhow::Result<PathBuf> {
    let script = crate_root().join("tools").join("build-control-plane.sh");
    if !script.is_file() {
        bail!(
            "{} not found: building the control plane needs the orgaccess source tree",
            script.display()
        );
    }
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .context("build-control-plane.sh printed no bin dir")?;
    Ok(PathBuf::from(dir.trim()))
}

/// The workspace root (where `tools/` and `target/` are): this crate lives
/// in `crates/testenv`.
fn crate_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A running etcd + kube-apiserver. Stops on [`ControlPlane::stop`] or drop.
pub struct ControlPlane {
    bin_dir: PathBuf,
    /// The work dir and where its files go.
    layout: Layout,
    /// Whether stop removes the work dir (true for the default temporary dir).
    remove_work_dir: bool,
    url: String,
    pki: Pki,
    processes: Mutex<Processes>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("url", &self.url)
            .field("work_dir", &self.layout.work)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver and waits until the apiserver is ready and
    /// the test RBAC is in place. Must be called inside a tokio runtime (it uses
    /// a `kube::Client` to poll readiness); the returned value holds no
    /// runtime-bound resources, so it can outlive that runtime.
    pub async fn start(opts: Options) -> anyhow::Result<ControlPlane> {
        let missing = missing_binaries(&opts.bin_dir);
        if !missing.is_empty() {
            bail!(
                "control plane binaries missing from {}: {}; run tools/build-control-plane.sh \
                 (or set ORGACCESS_K8S_BIN to a directory with etcd, kube-apiserver and kubectl)",
                opts.bin_dir.display(),
                missing.join(", ")
            );
        }
        // Absolute paths: the work dir ends up in kubeconfigs and printed commands.
        let bin_dir = fs::canonicalize(&opts.bin_dir)
            .with_context(|| format!("resolving {}", opts.bin_dir.display()))?;
        let (work_dir, remove_work_dir) = match &opts.work_dir {
            Some(dir) => (prepare_fixed_work_dir(dir)?, false),
            None => (make_temp_work_dir()?, true),
        };
        let layout = Layout::new(&work_dir);
        layout.create_dirs()?;
        let pki = Pki::new()?;
        pki.write_apiserver_files(&layout)?;

        let mut plane = ControlPlane {
            bin_dir,
            layout: layout.clone(),
            remove_work_dir,
            url: String::new(),
            pki,
            processes: Mutex::new(Processes::default()),
        };
        // Ports are picked by binding port 0 and releasing it, so another process
        // can grab one before etcd or the apiserver binds it: retry on a fresh set.
        let attempts = if opts.secure_port.is_some() { 1 } else { 3 };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match plane.start_processes(&opts, &layout).await {
                Ok(()) => break,
                Err(StartError::PortTaken(e)) if attempt < attempts => {
                    tracing::warn!("control plane: port taken, retrying: {e:#}");
                    plane.kill_processes(Duration::ZERO);
                    let _ = fs::remove_dir_all(&layout.etcd_data);
                    fs::create_dir_all(&layout.etcd_data)?;
                }
                Err(StartError::PortTaken(e) | StartError::Other(e)) => return Err(e),
            }
        }
        plane.bootstrap_rbac().await?;
        Ok(plane)
    }

    /// Grants the test identities their rights; done after readiness because
    /// the objects go through the API.
    async fn bootstrap_rbac(&self) -> anyhow::Result<()> {
        let client = self.try_client_as(ADMIN).await?;
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        let roles: Api<ClusterRole> = Api::all(client.clone());
        let role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": { "name": TEST_ACCESS_ROLE },
            "rules": [
                { "apiGroups": ["orgaccess.dev"], "resources": ["*"], "verbs": ["*"] },
                { "apiGroups": [""], "resources": ["secrets", "events"], "verbs": ["*"] },
                { "apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["*"] },
                { "apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"] },
            ],
        });
        roles
            .patch(TEST_ACCESS_ROLE, &pp, &Patch::Apply(role))
            .await
            .context("creating the test ClusterRole")?;
        let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
        let group = |name: &str| json!({ "kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name });
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": { "name": TEST_ACCESS_ROLE },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TEST_ACCESS_ROLE },
            "subjects": [group(TESTERS_GROUP), group(GITOPS_GROUP)],
        });
        bindings
            .patch(TEST_ACCESS_ROLE, &pp, &Patch::Apply(binding))
            .await
            .context("creating the test ClusterRoleBinding")?;
        // The operator is bound as a ServiceAccount subject, as in a real
        // cluster; RBAC matches it against the token user name.
        let operator = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": { "name": OPERATOR_BINDING },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
            "subjects": [{ "kind": "ServiceAccount", "name": OPERATOR_SERVICE_ACCOUNT, "namespace": OPERATOR_NAMESPACE }],
        });
        bindings
            .patch(OPERATOR_BINDING, &pp, &Patch::Apply(operator))
            .await
            .context("binding the operator to cluster-admin")?;
        let namespaces: Api<Namespace> = Api::all(client);
        let ns = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": OPERATOR_NAMESPACE } });
        namespaces
            .patch(OPERATOR_NAMESPACE, &pp, &Patch::Apply(ns))
            .await
            .context("creating the operator namespace")?;
        Ok(())
    }

    /// Base URL of the apiserver, `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// PEM of the CA that signed the apiserver's certificate (and
    /// [`issue_serving_cert`](Self::issue_serving_cert)'s).
    pub fn ca_pem(&self) -> &str {
        self.pki.ca_pem()
    }

    /// The work dir (certificates, kubeconfigs, etcd data, `logs/`).
    pub fn work_dir(&self) -> &Path {
        &self.layout.work
    }

    /// The dir with the etcd, kube-apiserver and kubectl binaries in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// `<work dir>/admin.kubeconfig`: `kubectl --kubeconfig <path>` acts as admin.
    pub fn admin_kubeconfig_path(&self) -> PathBuf {
        self.layout.admin_kubeconfig()
    }

    /// The kubeconfig of one identity (a token user), under `<work dir>/kubeconfigs/`.
    ///
    /// # Panics
    /// If `user` is not one of [`identities`](Self::identities).
    pub fn kubeconfig_for(&self, user: &str) -> PathBuf {
        assert!(
            self.identity(user).is_some(),
            "unknown control-plane identity {user:?}; known: {:?}",
            self.pki
                .identities()
                .iter()
                .map(|i| &i.name)
                .collect::<Vec<_>>()
        );
        self.layout.kubeconfig(user)
    }

    /// Every identity the apiserver accepts: admin, the testers, gitops, the operator.
    pub fn identities(&self) -> &[Identity] {
        self.pki.identities()
    }

    /// One identity by user name.
    pub fn identity(&self, user: &str) -> Option<&Identity> {
        self.pki.identity(user)
    }

    /// Path of the kubectl built with the control plane.
    pub fn kubectl_path(&self) -> PathBuf {
        self.bin_dir.join("kubectl")
    }

    /// A kubectl command acting as `user`, with a discovery cache inside the work
    /// dir (so runs do not fill `~/.kube/cache`). Add arguments and run it.
    pub fn kubectl_command(&self, user: &str) -> Command {
        let mut cmd = Command::new(self.kubectl_path());
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig_for(user))
            .arg("--cache-dir")
            .arg(self.layout.work.join("kubectl-cache"));
        cmd
    }

    /// A client acting as admin (`system:masters`), bound to the calling runtime.
    ///
    /// # Panics
    /// If the client cannot be built (see [`try_client_as`](Self::try_client_as)).
    pub async fn client(&self) -> kube::Client {
        self.client_as(ADMIN).await
    }

    /// A client acting as `user`, bound to the calling runtime.
    ///
    /// # Panics
    /// If `user` is unknown or the client cannot be built.
    pub async fn client_as(&self, user: &str) -> kube::Client {
        self.try_client_as(user)
            .await
            .unwrap_or_else(|e| panic!("client for {user}: {e:#}"))
    }

    /// A client acting as `user`, built from the same kubeconfig kubectl uses.
    pub async fn try_client_as(&self, user: &str) -> anyhow::Result<kube::Client> {
        let path = self.kubeconfig_for(user);
        let kubeconfig =
            Kubeconfig::read_from(&path).with_context(|| format!("reading {}", path.display()))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("loading {}", path.display()))?;
        Ok(kube::Client::try_from(config)?)
    }

    /// A serving certificate signed by the control plane's CA, e.g. for a
    /// webhook server the apiserver must trust (`caBundle` = [`ca_pem`](Self::ca_pem)).
    /// `sans` are IP addresses or DNS names.
    pub fn issue_serving_cert(&self, sans: &[&str]) -> anyhow::Result<ServingCert> {
        self.pki.issue_serving_cert(sans)
    }

    /// A client certificate with common name `cn` from the control plane's CA
    /// (the apiserver presents one for [`WEBHOOK_CLIENT_NAME`] to webhooks).
    pub fn issue_client_cert(&self, cn: &str) -> anyhow::Result<ServingCert> {
        self.pki.issue_client_cert(cn)
    }

    /// The CA that signs the apiserver's client certificate for webhooks
    /// (a webhook's `--webhook-client-ca-file`).
    pub fn webhook_client_ca_file(&self) -> PathBuf {
        self.layout.ca_file()
    }

    /// Stops kube-apiserver, then etcd (SIGTERM, then SIGKILL after a grace
    /// period), and removes a temporary work dir. Idempotent; callable through
    /// a shared reference, so a `static` control plane can be stopped at exit.
    pub fn stop(&self) {
        self.kill_processes(Duration::from_secs(10));
        if self.remove_work_dir {
            let _ = fs::remove_dir_all(&self.layout.work);
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs the control plane in the foreground for local use (`orgaccess
/// control-plane up`): builds the binaries if missing, starts with a fixed work
/// dir (default `<crate root>/target/orgaccess-dev`), prints how to use it and
/// waits for Ctrl-C or SIGTERM, then stops cleanly.
pub async fn run_foreground(mut opts: Options) -> anyhow::Result<()> {
    if !missing_binaries(&opts.bin_dir).is_empty() {
        eprintln!(
            "control plane binaries missing from {}; building them with tools/build-control-plane.sh",
            opts.bin_dir.display()
        );
        // The build runs for minutes; keep it off the async worker.
        opts.bin_dir = tokio::task::spawn_blocking(build_binaries).await??;
    }
    if opts.work_dir.is_none() {
        opts.work_dir = Some(crate_root().join("target").join("orgaccess-dev"));
    }
    let started = Instant::now();
    let plane = ControlPlane::start(opts).await?;
    let mut msg = String::new();
    let _ = writeln!(
        msg,
        "control plane ready in {:.1}s at {}",
        started.elapsed().as_secs_f64(),
        plane.url()
    );
    let _ = writeln!(
        msg,
        "\n  export KUBECONFIG={}",
        plane.admin_kubeconfig_path().display()
    );
    let _ = writeln!(msg, "  alias kubectl={}", plane.kubectl_path().display());
    let _ = writeln!(msg, "\nidentities (kubectl --kubeconfig <file>):");
    for id in plane.identities() {
        let _ = writeln!(
            msg,
            "  {:<50} groups={:<55} {}",
            id.name,
            id.groups.join(","),
            plane.kubeconfig_for(&id.name).display()
        );
    }
    let _ = writeln!(msg, "\nlogs: {}", plane.work_dir().join("logs").display());
    let _ = writeln!(msg, "Ctrl-C to stop.");
    println!("{msg}");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // SIGUSR1: restart the apiserver (5 s down), as the scale harness's
    // `--fault apiserver-restart` does mid-convergence.
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    let mut health = tokio::time::interval(Duration::from_secs(1));
    let result = loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => break r.map_err(anyhow::Error::from),
            _ = term.recv() => break Ok(()),
            _ = usr1.recv() => {
                eprintln!("SIGUSR1: restarting the apiserver (down for 5 s)");
                if let Err(e) = plane.restart_apiserver(Duration::from_secs(5)).await {
                    break Err(e.context("restarting the apiserver"));
                }
                eprintln!("apiserver restarted and ready");
            }
            _ = health.tick() => {
                if let Err(e) = plane.check_running() {
                    break Err(e.context("the control plane stopped unexpectedly"));
                }
            }
        }
    };
    eprintln!("stopping the control plane");
    // Stopping waits for the processes; do it off the async worker.
    tokio::task::spawn_blocking(move || plane.stop()).await?;
    result
}
