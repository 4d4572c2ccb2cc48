//! Test harness: one real control plane (etcd + kube-apiserver) per test binary.
//!
//! Use it from an integration test with `mod support;`. The control plane starts
//! on first use and is shared by every test of the binary. Conventions (see
//! docs/control-plane.md): one [`fresh_namespace`] per test, never wait for
//! namespace deletion (there is no namespace controller), no garbage collection.
//!
//! Each `#[tokio::test]` has its own runtime, so clients are made per test with
//! [`client_as`] / [`admin_client`], never shared.
#![allow(dead_code)] // each test binary uses a different subset

pub mod metrics;
pub mod org;
pub mod process;
pub mod webhook;

use std::process::{Output, Stdio};
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use orgaccess_testenv::{ControlPlane, Options, missing_binaries};
use rand::Rng as _;
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

#[allow(unused_imports)] // re-exported for the test files that need them
pub use orgaccess_testenv::{ADMIN, GITOPS_USER, OPERATOR_NAMESPACE, OPERATOR_USER, TESTER_USERS};

/// Held by the tests that flood a webhook process (hostile, forged and
/// malformed callers; tests/webhook/): no two floods share the machine's cores
/// at once, as when each of those files was a test binary of its own. The
/// floods' assertions name the webhook's bounded denials, and a second flood
/// beside one turns a size limit's denial into a deadline's.
pub async fn flood_guard() -> tokio::sync::MutexGuard<'static, ()> {
    static FLOOD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    FLOOD.lock().await
}

/// The start result is kept, not just the plane: if the start fails, every test
/// fails at once with the same message instead of each retrying a slow start.
static PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The shared control plane, started on first call.
///
/// # Panics
/// If the binaries are missing (run `tools/build-control-plane.sh`) or the
/// control plane fails to start. In CI (env `CI` set) a missing build is a
/// failure too: integration tests must never be skipped silently.
pub fn plane() -> &'static ControlPlane {
    let result = PLANE.get_or_init(|| {
        let opts = Options::default();
        let missing = missing_binaries(&opts.bin_dir);
        if !missing.is_empty() {
            let what = format!(
                "control plane binaries missing from {} ({}): run tools/build-control-plane.sh \
                 (or set ORGACCESS_K8S_BIN)",
                opts.bin_dir.display(),
                missing.join(", ")
            );
            if std::env::var_os("CI").is_some() {
                return Err(format!(
                    "{what}. CI is set: the integration tests must run, not be skipped."
                ));
            }
            return Err(what);
        }
        // `start` is async but the caller is a test already inside its own
        // runtime, where `block_on` is not allowed; and the plane must outlive
        // that test's runtime anyway. So start it on a separate thread with a
        // throwaway runtime: the plane keeps no runtime-bound resources.
        let started = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime for the control plane start");
            rt.block_on(ControlPlane::start(opts))
        })
        .join()
        .map_err(|_| "the control plane start thread panicked".to_string())?
        .map_err(|e| format!("control plane failed to start: {e:#}"))?;
        // Statics are never dropped. The children die with us anyway
        // (PR_SET_PDEATHSIG), but stopping them at exit also removes the
        // temporary work dir (etcd data, logs).
        // SAFETY: registering a plain `extern "C" fn` with atexit(3).
        unsafe {
            libc::atexit(stop_at_exit);
        }
        Ok(started)
    });
    match result {
        Ok(plane) => plane,
        Err(e) => panic!("{e}"),
    }
}

extern "C" fn stop_at_exit() {
    if let Some(Ok(plane)) = PLANE.get() {
        plane.stop();
    }
}

/// A client acting as admin (`system:masters`), for the calling test's runtime.
pub async fn admin_client() -> kube::Client {
    plane().client().await
}

/// A client acting as `identity` (see `orgaccess_testenv` constants).
pub async fn client_as(identity: &str) -> kube::Client {
    plane().client_as(identity).await
}

/// Creates a namespace with a random name and returns the name. It is never
/// deleted: without kube-controller-manager a deleted namespace stays
/// `Terminating` for ever, so there is nothing worth waiting for.
pub async fn fresh_namespace(client: &kube::Client) -> String {
    let suffix: u32 = rand::rng().random();
    let name = format!("t-{suffix:08x}");
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "orgaccess.dev/test": "true" } }
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    name
}

/// A port nothing listens on now (the OS's choice; free until someone binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the control plane's kubectl as `identity` (its own kubeconfig).
pub async fn kubectl(identity: &str, args: &[&str]) -> Output {
    kubectl_stdin(identity, args, None).await
}

/// Like [`kubectl`], feeding `stdin` (e.g. a manifest for `apply -f -`).
/// Async so that a test serving a webhook on its own runtime keeps serving
/// while kubectl runs.
pub async fn kubectl_stdin(identity: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = tokio::process::Command::from(plane().kubectl_command(identity));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawning kubectl");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes())
            .await
            .expect("writing kubectl stdin");
        drop(pipe); // EOF
    }
    child.wait_with_output().await.expect("running kubectl")
}

/// Panics with kubectl's output unless it succeeded; returns its stdout.
pub fn assert_success(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: kubectl failed ({})\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Applies the project's CRDs (idempotent, server-side) and waits until they
/// are served. Every test binary that uses the orgaccess kinds calls it.
pub async fn install_crds() {
    let crds = include_str!("../../crds/orgaccess.yaml");
    let out = kubectl_stdin(
        ADMIN,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(crds),
    )
    .await;
    assert_success("applying the CRDs", &out);
    let out = kubectl(
        ADMIN,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/organizations.orgaccess.dev",
            "crd/groups.orgaccess.dev",
            "crd/members.orgaccess.dev",
            "crd/apikeys.orgaccess.dev",
        ],
    )
    .await;
    assert_success("waiting for the CRDs", &out);
}
