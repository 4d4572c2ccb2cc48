//! A real, local Kubernetes control plane (etcd + kube-apiserver, no kubelet, no
//! kube-controller-manager) for integration tests and local runs.
//!
//! The binaries are built from pinned Go modules by `tools/build-control-plane.sh`
//! and found in [`Options::bin_dir`]. [`ControlPlane::start`]:
//!
//! 1. makes a CA, a serving certificate for `127.0.0.1`/`localhost` and a
//!    service-account signing key (all in memory with `rcgen`, written to the
//!    work dir because the apiserver reads files);
//! 2. writes a static token file with the [`identities`](ControlPlane::identities)
//!    and one kubeconfig per identity;
//! 3. starts etcd and kube-apiserver on free loopback ports, both logging to
//!    files under `<work dir>/logs/`;
//! 4. waits for `/readyz` and the `default` namespace;
//! 5. grants the test identities their RBAC rights (see [`TEST_ACCESS_ROLE`]).
//!
//! Child processes are tied to the life of this process (see [`spawn_tied`]):
//! they die with it even if the [`ControlPlane`] is never dropped, which is the
//! normal case for a control plane shared by a test binary through a `static`.
//!
//! `kube::Client`s are never stored here: a client spawns tasks on the tokio
//! runtime that creates it, and every `#[tokio::test]` has its own runtime, so
//! callers ask for a fresh client with [`ControlPlane::client`] /
//! [`ControlPlane::client_as`] in their own runtime.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use rand::Rng as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::json;

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

/// An identity known to the apiserver's static token file.
#[derive(Clone, Debug)]
pub struct Identity {
    /// User name as the apiserver sees it.
    pub name: String,
    /// Groups the apiserver attaches (besides `system:authenticated`).
    pub groups: Vec<String>,
    /// Bearer token, random per start.
    pub token: String,
}

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

/// A PEM certificate and its private key.
#[derive(Clone, Debug)]
pub struct ServingCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The running processes; behind a mutex so [`ControlPlane::stop`] can take
/// `&self` (a control plane in a `static` is never dropped, so it must be
/// stoppable through a shared reference, e.g. from an `atexit` hook).
#[derive(Default)]
struct Processes {
    apiserver: Option<Child>,
    etcd: Option<Child>,
    /// How the apiserver was started, to start it again ([`ControlPlane::restart_apiserver`]).
    apiserver_args: Vec<String>,
}

/// A running etcd + kube-apiserver. Stops on [`ControlPlane::stop`] or drop.
pub struct ControlPlane {
    bin_dir: PathBuf,
    work_dir: PathBuf,
    /// Whether stop removes `work_dir` (true for the default temporary dir).
    remove_work_dir: bool,
    url: String,
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_pem: String,
    identities: Vec<Identity>,
    processes: Mutex<Processes>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("url", &self.url)
            .field("work_dir", &self.work_dir)
            .finish_non_exhaustive()
    }
}

/// Everything written under the work dir before the processes start.
struct Layout {
    pki: PathBuf,
    logs: PathBuf,
    etcd_data: PathBuf,
    kubeconfigs: PathBuf,
    tokens: PathBuf,
    /// The apiserver's admission configuration and the kubeconfig it uses to
    /// call webhooks (a client certificate).
    admission_config: PathBuf,
    webhook_kubeconfig: PathBuf,
}

impl Layout {
    fn new(work: &Path) -> Self {
        Layout {
            pki: work.join("pki"),
            logs: work.join("logs"),
            etcd_data: work.join("etcd"),
            kubeconfigs: work.join("kubeconfigs"),
            tokens: work.join("tokens.csv"),
            admission_config: work.join("admission-configuration.yaml"),
            webhook_kubeconfig: work.join("kubeconfigs").join("webhook-client.kubeconfig"),
        }
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
        for dir in [
            &layout.pki,
            &layout.logs,
            &layout.etcd_data,
            &layout.kubeconfigs,
        ] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }

        let (ca, ca_pem) = make_ca()?;
        let serving = issue_cert(&ca, &["127.0.0.1", "localhost"])?;
        write_private(&layout.pki.join("ca.crt"), &ca_pem)?;
        write_private(&layout.pki.join("apiserver.crt"), &serving.cert_pem)?;
        write_private(&layout.pki.join("apiserver.key"), &serving.key_pem)?;
        // ECDSA P-256: kube-apiserver accepts ES256 service-account keys, and
        // rcgen's ring backend cannot generate RSA keys.
        let sa_key = KeyPair::generate().context("generating the service-account key")?;
        write_private(&layout.pki.join("sa.key"), &sa_key.serialize_pem())?;
        write_private(&layout.pki.join("sa.pub"), &sa_key.public_key_pem())?;

        let identities = make_identities();
        write_private(&layout.tokens, &token_file(&identities))?;

        // The apiserver presents a client certificate to every webhook (as
        // kube-apiserver does when its admission configuration names a
        // kubeconfig), so the webhook can serve only it.
        let client = issue_client_cert(&ca, WEBHOOK_CLIENT_NAME)?;
        let (client_crt, client_key) = (
            layout.pki.join("webhook-client.crt"),
            layout.pki.join("webhook-client.key"),
        );
        write_private(&client_crt, &client.cert_pem)?;
        write_private(&client_key, &client.key_pem)?;
        write_private(
            &layout.webhook_kubeconfig,
            &format!(
                "apiVersion: v1\nkind: Config\nusers:\n- name: \"*\"\n  user:\n    client-certificate: {}\n    client-key: {}\n",
                client_crt.display(),
                client_key.display()
            ),
        )?;
        write_private(
            &layout.admission_config,
            &format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n\
                 - name: ValidatingAdmissionWebhook\n  configuration:\n    apiVersion: apiserver.config.k8s.io/v1\n\
                 \x20   kind: WebhookAdmissionConfiguration\n    kubeConfigFile: {}\n\
                 - name: MutatingAdmissionWebhook\n  configuration:\n    apiVersion: apiserver.config.k8s.io/v1\n\
                 \x20   kind: WebhookAdmissionConfiguration\n    kubeConfigFile: {}\n",
                layout.webhook_kubeconfig.display(),
                layout.webhook_kubeconfig.display()
            ),
        )?;

        let mut plane = ControlPlane {
            bin_dir,
            work_dir,
            remove_work_dir,
            url: String::new(),
            ca,
            ca_pem,
            identities,
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

    /// Starts etcd then kube-apiserver and waits for `/readyz` and the
    /// `default` namespace. Writes the kubeconfigs once the URL is known.
    async fn start_processes(&mut self, opts: &Options, layout: &Layout) -> Result<(), StartError> {
        let [etcd_client, etcd_peer, free_api] = free_ports()?;
        let api_port = opts.secure_port.unwrap_or(free_api);
        self.url = format!("https://127.0.0.1:{api_port}");
        self.write_kubeconfigs(layout)?;
        let deadline = Instant::now() + opts.start_timeout;

        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        let mut etcd = Command::new(self.bin_dir.join("etcd"));
        etcd.args([
            "--name=orgaccess".to_string(),
            format!("--data-dir={}", layout.etcd_data.display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=orgaccess={peer_url}"),
            // Test data is disposable: skip fsync (the main cost of etcd writes).
            "--unsafe-no-fsync=true".to_string(),
            // kube-apiserver needs progress notifications for consistent watch
            // caches (RequestWatchProgress); 5s is what kubeadm sets.
            "--watch-progress-notify-interval=5s".to_string(),
        ]);
        let etcd_log = layout.logs.join("etcd.log");
        let child = spawn_logged(etcd, &etcd_log).context("starting etcd")?;
        self.processes.lock().unwrap().etcd = Some(child);
        self.wait_etcd_healthy(etcd_client, &etcd_log, deadline)
            .await?;

        let pki = &layout.pki;
        let mut api = Command::new(self.bin_dir.join("kube-apiserver"));
        api.args([
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", pki.display()),
            format!("--tls-cert-file={}", pki.join("apiserver.crt").display()),
            format!(
                "--tls-private-key-file={}",
                pki.join("apiserver.key").display()
            ),
            format!("--token-auth-file={}", layout.tokens.display()),
            format!(
                "--admission-control-config-file={}",
                layout.admission_config.display()
            ),
            "--authorization-mode=RBAC".to_string(),
            format!(
                "--service-account-key-file={}",
                pki.join("sa.pub").display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                pki.join("sa.key").display()
            ),
            format!("--service-account-issuer={}", self.url),
            // No kube-controller-manager creates `default` service accounts, so
            // the ServiceAccount admission plugin would reject every pod.
            "--disable-admission-plugins=ServiceAccount".to_string(),
            format!("--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"),
            "--allow-privileged=true".to_string(),
        ]);
        let args: Vec<String> = api
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let api_log = layout.logs.join("kube-apiserver.log");
        let child = spawn_logged(api, &api_log).context("starting kube-apiserver")?;
        {
            let mut procs = self.processes.lock().unwrap();
            procs.apiserver = Some(child);
            procs.apiserver_args = args;
        }
        self.wait_ready(api_port, &api_log, deadline).await
    }

    /// Kills the apiserver (SIGKILL: a crash, not a drain), keeps it down for
    /// `down`, starts it again with the same flags on the same port and waits
    /// until it is ready. etcd and its data stay: clients see the outage a
    /// real apiserver restart causes (refused connections, then watches that
    /// must resume or relist).
    pub async fn restart_apiserver(&self, down: Duration) -> anyhow::Result<()> {
        let args = {
            let mut procs = self.processes.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(child) = procs.apiserver.take() {
                terminate(child, Duration::ZERO);
            }
            procs.apiserver_args.clone()
        };
        tokio::time::sleep(down).await;
        let port: u16 = self
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .context("the apiserver URL has a port")?;
        let log = self
            .work_dir
            .join("logs")
            .join("kube-apiserver.restarted.log");
        let mut api = Command::new(self.bin_dir.join("kube-apiserver"));
        api.args(&args);
        let child = spawn_logged(api, &log).context("restarting kube-apiserver")?;
        self.processes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .apiserver = Some(child);
        self.wait_ready(port, &log, Instant::now() + Duration::from_secs(60))
            .await
            .map_err(StartError::into_inner)
    }

    /// Waits until etcd answers `GET /health` with `"health":"true"`: it
    /// accepts connections before it has elected itself leader and can serve.
    async fn wait_etcd_healthy(
        &self,
        port: u16,
        log: &Path,
        deadline: Instant,
    ) -> Result<(), StartError> {
        loop {
            self.check_alive("etcd", log)?;
            let probe =
                tokio::time::timeout(Duration::from_secs(1), http_get(port, "/health", None));
            if let Ok(Ok((200, body))) = probe.await
                && body.contains(r#""health":"true""#)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StartError::Other(anyhow::anyhow!(
                    "etcd on 127.0.0.1:{port} not healthy in time; last lines of {}:\n{}",
                    log.display(),
                    log_tail(log, 40)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/readyz` (TLS verified with our CA, as admin) and then waits for
    /// the `default` namespace, which the apiserver creates right after startup.
    ///
    /// Plain HTTPS requests rather than a `kube::Client`: kube logs every non-2xx
    /// answer at ERROR level, and a starting apiserver answers 500 many times.
    async fn wait_ready(&self, port: u16, log: &Path, deadline: Instant) -> Result<(), StartError> {
        let admin = self.identity(ADMIN).expect("admin identity");
        let tls = ApiTls {
            connector: tls_connector(self.ca.der())?,
            token: admin.token.clone(),
        };
        let mut last: String;
        loop {
            self.check_alive("kube-apiserver", log)?;
            let probe = http_get(port, "/readyz?verbose", Some(&tls));
            match tokio::time::timeout(Duration::from_secs(5), probe).await {
                Ok(Ok((200, _))) => break,
                Ok(Ok((status, body))) => last = format!("{status}: {body}"),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "timed out".into(),
            }
            if Instant::now() > deadline {
                return Err(StartError::Other(anyhow::anyhow!(
                    "kube-apiserver at {} not ready in time (last /readyz: {last}); last lines of {}:\n{}",
                    self.url,
                    log.display(),
                    log_tail(log, 40)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        loop {
            let probe = http_get(port, "/api/v1/namespaces/default", Some(&tls));
            if let Ok(Ok((200, _))) = tokio::time::timeout(Duration::from_secs(5), probe).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StartError::Other(anyhow::anyhow!(
                    "namespace `default` did not appear in time; last lines of {}:\n{}",
                    log.display(),
                    log_tail(log, 40)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fails if a process exited; "address already in use" becomes
    /// [`StartError::PortTaken`] so that `start` retries on other ports.
    fn check_alive(&self, name: &str, log: &Path) -> Result<(), StartError> {
        let mut procs = self.processes.lock().unwrap();
        let child = match name {
            "etcd" => procs.etcd.as_mut(),
            _ => procs.apiserver.as_mut(),
        };
        let Some(child) = child else { return Ok(()) };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                let tail = log_tail(log, 40);
                let err = anyhow::anyhow!(
                    "{name} exited ({status}) during startup; last lines of {}:\n{tail}",
                    log.display()
                );
                if tail.contains("address already in use") {
                    Err(StartError::PortTaken(err))
                } else {
                    Err(StartError::Other(err))
                }
            }
            Err(e) => Err(StartError::Other(e.into())),
        }
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

    fn write_kubeconfigs(&self, layout: &Layout) -> anyhow::Result<()> {
        for id in &self.identities {
            let text = self.kubeconfig_text(id);
            write_private(&self.kubeconfig_for(&id.name), &text)?;
        }
        debug_assert!(self.kubeconfig_for(ADMIN).starts_with(&layout.kubeconfigs));
        // The admin's is also at the top of the work dir, easy to find.
        let admin = self.identity(ADMIN).expect("admin identity");
        write_private(&self.admin_kubeconfig_path(), &self.kubeconfig_text(admin))
    }

    /// A self-contained kubeconfig (CA embedded) using the identity's token.
    fn kubeconfig_text(&self, id: &Identity) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let context = format!("{}@orgaccess", id.name);
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": "orgaccess", "cluster": { "server": self.url, "certificate-authority-data": ca } }],
            "users": [{ "name": id.name, "user": { "token": id.token } }],
            "contexts": [{ "name": context, "context": { "cluster": "orgaccess", "user": id.name, "namespace": "default" } }],
            "current-context": context,
        });
        // JSON is valid YAML; serde_json takes care of quoting user names with ':'.
        serde_json::to_string_pretty(&config).expect("kubeconfig serializes")
    }

    /// Base URL of the apiserver, `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// PEM of the CA that signed the apiserver's certificate (and
    /// [`issue_serving_cert`](Self::issue_serving_cert)'s).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The work dir (certificates, kubeconfigs, etcd data, `logs/`).
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The dir with the etcd, kube-apiserver and kubectl binaries in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// `<work dir>/admin.kubeconfig`: `kubectl --kubeconfig <path>` acts as admin.
    pub fn admin_kubeconfig_path(&self) -> PathBuf {
        self.work_dir.join("admin.kubeconfig")
    }

    /// The kubeconfig of one identity (a token user), under `<work dir>/kubeconfigs/`.
    ///
    /// # Panics
    /// If `user` is not one of [`identities`](Self::identities).
    pub fn kubeconfig_for(&self, user: &str) -> PathBuf {
        assert!(
            self.identity(user).is_some(),
            "unknown control-plane identity {user:?}; known: {:?}",
            self.identities.iter().map(|i| &i.name).collect::<Vec<_>>()
        );
        // ':' is awkward in file names (and in KUBECONFIG lists).
        let file = format!("{}.kubeconfig", user.replace(':', "_"));
        self.work_dir.join("kubeconfigs").join(file)
    }

    /// Every identity the apiserver accepts: admin, the testers, gitops, the operator.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// One identity by user name.
    pub fn identity(&self, user: &str) -> Option<&Identity> {
        self.identities.iter().find(|i| i.name == user)
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
            .arg(self.work_dir.join("kubectl-cache"));
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
        issue_cert(&self.ca, sans)
    }

    /// A client certificate with common name `cn` from the control plane's CA
    /// (the apiserver presents one for [`WEBHOOK_CLIENT_NAME`] to webhooks).
    pub fn issue_client_cert(&self, cn: &str) -> anyhow::Result<ServingCert> {
        issue_client_cert(&self.ca, cn)
    }

    /// The CA that signs the apiserver's client certificate for webhooks
    /// (a webhook's `--webhook-client-ca-file`).
    pub fn webhook_client_ca_file(&self) -> PathBuf {
        self.work_dir.join("pki").join("ca.crt")
    }

    /// Process ids of (kube-apiserver, etcd) while they run, e.g. to read their RSS.
    pub fn pids(&self) -> (Option<u32>, Option<u32>) {
        let procs = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        (
            procs.apiserver.as_ref().map(Child::id),
            procs.etcd.as_ref().map(Child::id),
        )
    }

    /// Checks that etcd and kube-apiserver still run; an error carries the log tail.
    pub fn check_running(&self) -> anyhow::Result<()> {
        for (name, log) in [
            ("etcd", "etcd.log"),
            ("kube-apiserver", "kube-apiserver.log"),
        ] {
            self.check_alive(name, &self.work_dir.join("logs").join(log))
                .map_err(StartError::into_inner)?;
        }
        Ok(())
    }

    /// Stops kube-apiserver, then etcd (SIGTERM, then SIGKILL after a grace
    /// period), and removes a temporary work dir. Idempotent; callable through
    /// a shared reference, so a `static` control plane can be stopped at exit.
    pub fn stop(&self) {
        self.kill_processes(Duration::from_secs(10));
        if self.remove_work_dir {
            let _ = fs::remove_dir_all(&self.work_dir);
        }
    }

    fn kill_processes(&self, grace: Duration) {
        // A poisoned lock only means a panic elsewhere; the children still must go.
        let mut procs = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        // The apiserver first: it would otherwise log etcd connection errors.
        if let Some(child) = procs.apiserver.take() {
            terminate(child, grace);
        }
        if let Some(child) = procs.etcd.take() {
            terminate(child, grace);
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why a start attempt failed; a taken port is worth a retry.
enum StartError {
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

impl StartError {
    fn into_inner(self) -> anyhow::Error {
        match self {
            StartError::PortTaken(e) | StartError::Other(e) => e,
        }
    }
}

impl From<anyhow::Error> for StartError {
    fn from(e: anyhow::Error) -> Self {
        StartError::Other(e)
    }
}

impl From<io::Error> for StartError {
    fn from(e: io::Error) -> Self {
        StartError::Other(e.into())
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

// ---------------------------------------------------------------------------
// Processes

/// Spawns `cmd` so that the child cannot outlive this process.
///
/// The child gets `PR_SET_PDEATHSIG = SIGKILL`. That signal fires when the
/// *thread* that forked the child exits, not the process, so every child is
/// forked by one dedicated thread that lives as long as the process. The child
/// also gets its own process group, so a terminal's Ctrl-C reaches only us and
/// we stop the apiserver and etcd in order.
pub fn spawn_tied(mut cmd: Command) -> io::Result<Child> {
    type Request = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("orgaccess-cp-spawner".into())
            // The sender lives in a static, so this loop ends only with the process.
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the control-plane spawner thread");
        Mutex::new(tx)
    });

    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: runs between fork and exec; prctl, getppid and _exit are
        // async-signal-safe and nothing here allocates.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    let (tx, rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, tx))
        .map_err(|_| io::Error::other("control-plane spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("control-plane spawner thread is gone"))?
}

/// Spawns `cmd` with stdout and stderr appended to `log` (truncated first).
fn spawn_logged(mut cmd: Command, log: &Path) -> anyhow::Result<Child> {
    let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    Ok(spawn_tied(cmd)?)
}

/// SIGTERM, wait up to `grace`, then SIGKILL; always reaps the child.
fn terminate(mut child: Child, grace: Duration) {
    if !grace.is_zero() {
        // SAFETY: plain kill(2) on our own, not yet reaped, child.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// TLS settings and bearer token for [`http_get`] to the apiserver.
struct ApiTls {
    connector: tokio_rustls::TlsConnector,
    token: String,
}

/// A TLS connector that trusts only our CA.
fn tls_connector(
    ca: &rustls::pki_types::CertificateDer<'static>,
) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone())?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
}

/// One HTTP/1.0 `GET` to `127.0.0.1:<port>` (over TLS with a bearer token
/// when `tls` is given); returns the status code and the body. Hand-written
/// because the library has no HTTP client besides kube's, and this needs no
/// more: HTTP/1.0 means no keep-alive and no chunking, the server closes.
async fn http_get(port: u16, path: &str, tls: Option<&ApiTls>) -> io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let tcp = tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    let mut response = Vec::new();
    match tls {
        None => {
            request.push_str("\r\n");
            let mut stream = tcp;
            stream.write_all(request.as_bytes()).await?;
            stream.read_to_end(&mut response).await?;
        }
        Some(tls) => {
            request.push_str(&format!("Authorization: Bearer {}\r\n\r\n", tls.token));
            let name = rustls::pki_types::ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
            let mut stream = tls.connector.connect(name, tcp).await?;
            stream.write_all(request.as_bytes()).await?;
            stream.read_to_end(&mut response).await?;
        }
    }
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    // "HTTP/1.x 200 OK"
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad HTTP response: {head:?}")))?;
    Ok((status, body.to_string()))
}

/// Three distinct free loopback ports (all bound at once, so they differ).
fn free_ports() -> io::Result<[u16; 3]> {
    let listeners = [
        TcpListener::bind("127.0.0.1:0")?,
        TcpListener::bind("127.0.0.1:0")?,
        TcpListener::bind("127.0.0.1:0")?,
    ];
    let mut ports = [0; 3];
    for (port, l) in ports.iter_mut().zip(&listeners) {
        *port = l.local_addr()?.port();
    }
    Ok(ports)
}

/// The last `lines` lines of a log file (reads at most the last 64 KiB).
fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return format!("(cannot open {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    if all.is_empty() {
        return "(empty)".into();
    }
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------
// Work dir

/// Process-lock file in a work dir: holds the owner's pid.
const OWNER_FILE: &str = "owner.pid";

fn pid_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks existence and permission.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

fn read_owner(dir: &Path) -> Option<libc::pid_t> {
    fs::read_to_string(dir.join(OWNER_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A fresh temporary work dir. Also removes stale ones whose owner process is
/// gone (a test binary's static control plane is never dropped; its children
/// die with it but the dir stays behind).
fn make_temp_work_dir() -> anyhow::Result<PathBuf> {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let path = entry.path();
            let is_ours = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
            if is_ours && read_owner(&path).is_some_and(|pid| !pid_alive(pid)) {
                let _ = fs::remove_dir_all(&path);
            }
        }
    }
    let suffix: u64 = rand::rng().random();
    let dir = tmp.join(format!("{TEMP_PREFIX}{}-{suffix:016x}", std::process::id()));
    fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(dir.join(OWNER_FILE), std::process::id().to_string())?;
    Ok(dir)
}

/// Takes a fixed work dir: refuses if another live process runs a control
/// plane there, then wipes what a previous run left (only our own entries, so
/// a mistaken `--work-dir .` cannot delete unrelated files).
fn prepare_fixed_work_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = fs::canonicalize(dir)?;
    if let Some(pid) = read_owner(&dir)
        && pid != std::process::id() as libc::pid_t
        && pid_alive(pid)
    {
        bail!(
            "a control plane (pid {pid}) is already running in {}; stop it first",
            dir.display()
        );
    }
    for sub in ["pki", "logs", "etcd", "kubeconfigs", "kubectl-cache"] {
        let _ = fs::remove_dir_all(dir.join(sub));
    }
    for file in ["tokens.csv", "admin.kubeconfig"] {
        let _ = fs::remove_file(dir.join(file));
    }
    fs::write(dir.join(OWNER_FILE), std::process::id().to_string())?;
    Ok(dir)
}

/// Writes a file readable only by us (keys, tokens, kubeconfigs with tokens).
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Identities and certificates

fn make_identities() -> Vec<Identity> {
    let mut rng = rand::rng();
    let mut token = || {
        let bytes: [u8; 24] = rng.random();
        hex::encode(bytes)
    };
    let mut ids = vec![Identity {
        name: ADMIN.into(),
        groups: vec!["system:masters".into()],
        token: token(),
    }];
    for user in TESTER_USERS {
        ids.push(Identity {
            name: user.into(),
            groups: vec![TESTERS_GROUP.into()],
            token: token(),
        });
    }
    ids.push(Identity {
        name: GITOPS_USER.into(),
        groups: vec![GITOPS_GROUP.into()],
        token: token(),
    });
    ids.push(Identity {
        name: OPERATOR_USER.into(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{OPERATOR_NAMESPACE}"),
        ],
        token: token(),
    });
    ids
}

/// The `--token-auth-file` CSV: `token,user,uid,"group1,group2"`.
fn token_file(ids: &[Identity]) -> String {
    let mut out = String::new();
    for id in ids {
        let _ = writeln!(
            out,
            "{},{},{},\"{}\"",
            id.token,
            id.name,
            id.name,
            id.groups.join(",")
        );
    }
    out
}

fn make_ca() -> anyhow::Result<(CertifiedIssuer<'static, KeyPair>, String)> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "orgaccess control plane CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let ca = CertifiedIssuer::self_signed(params, key)?;
    let pem = ca.pem();
    Ok((ca, pem))
}

/// A client certificate (ClientAuth) with common name `cn`, signed by `ca`.
fn issue_client_cert(
    ca: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
) -> anyhow::Result<ServingCert> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    Ok(ServingCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn issue_cert(
    ca: &CertifiedIssuer<'static, KeyPair>,
    sans: &[&str],
) -> anyhow::Result<ServingCert> {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans.clone())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        sans.first().cloned().unwrap_or_default(),
    );
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    Ok(ServingCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_quotes_groups() {
        let ids = vec![Identity {
            name: OPERATOR_USER.into(),
            groups: vec!["a".into(), "b:c".into()],
            token: "t".into(),
        }];
        assert_eq!(
            token_file(&ids),
            format!("t,{OPERATOR_USER},{OPERATOR_USER},\"a,b:c\"\n")
        );
    }

    #[test]
    fn identities_cover_the_brief() {
        let ids = make_identities();
        let names: Vec<&str> = ids.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "admin",
                "alice",
                "bob",
                "carol",
                "dave",
                "erin",
                "gitops",
                OPERATOR_USER
            ]
        );
        let tokens: std::collections::HashSet<&str> =
            ids.iter().map(|i| i.token.as_str()).collect();
        assert_eq!(tokens.len(), ids.len(), "tokens are unique");
    }

    #[test]
    fn serving_cert_is_signed_by_the_ca() {
        let (ca, ca_pem) = make_ca().unwrap();
        let cert = issue_cert(&ca, &["127.0.0.1", "localhost"]).unwrap();
        assert!(ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.key_pem.contains("PRIVATE KEY"));
    }
}
