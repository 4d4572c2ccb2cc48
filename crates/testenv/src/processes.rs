//! The control plane's processes: etcd and kube-apiserver started, probed
//! until ready, restarted and stopped; children tied to the life of this
//! process ([`spawn_tied`]); the work dir owned by a live process.
//!
//! The credentials the processes read are made by [`crate::pki`].

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng as _;

use crate::pki::Layout;
use crate::{ADMIN, ControlPlane, Options, SERVICE_CLUSTER_IP_RANGE, TEMP_PREFIX};

/// The running processes; behind a mutex so [`ControlPlane::stop`] can take
/// `&self` (a control plane in a `static` is never dropped, so it must be
/// stoppable through a shared reference, e.g. from an `atexit` hook).
#[derive(Default)]
pub(crate) struct Processes {
    apiserver: Option<Child>,
    etcd: Option<Child>,
    /// How the apiserver was started, to start it again ([`ControlPlane::restart_apiserver`]).
    apiserver_args: Vec<String>,
}

/// Why a start attempt failed; a taken port is worth a retry.
pub(crate) enum StartError {
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

impl StartError {
    pub(crate) fn into_inner(self) -> anyhow::Error {
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

impl ControlPlane {
    /// Starts etcd then kube-apiserver and waits for `/readyz` and the
    /// `default` namespace. Writes the kubeconfigs once the URL is known.
    pub(crate) async fn start_processes(
        &mut self,
        opts: &Options,
        layout: &Layout,
    ) -> Result<(), StartError> {
        let [etcd_client, etcd_peer, free_api] = free_ports()?;
        let api_port = opts.secure_port.unwrap_or(free_api);
        self.url = format!("https://127.0.0.1:{api_port}");
        self.pki.write_kubeconfigs(layout, &self.url)?;
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
        let log = self.layout.logs.join("kube-apiserver.restarted.log");
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
        let admin = self.pki.identity(ADMIN).expect("admin identity");
        let tls = ApiTls {
            connector: tls_connector(self.pki.ca_der())?,
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
            self.check_alive(name, &self.layout.logs.join(log))
                .map_err(StartError::into_inner)?;
        }
        Ok(())
    }

    pub(crate) fn kill_processes(&self, grace: Duration) {
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
pub(crate) fn make_temp_work_dir() -> anyhow::Result<PathBuf> {
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
pub(crate) fn prepare_fixed_work_dir(dir: &Path) -> anyhow::Result<PathBuf> {
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
