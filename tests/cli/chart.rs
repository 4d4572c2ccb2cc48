//! The Helm chart (charts/orgaccess) passes scripts/check-chart.sh: `helm lint`,
//! `helm template | kubectl apply --dry-run=server` on a real kube-apiserver for
//! each values variant, an install and upgrade that keeps the webhook
//! certificate, the ValidatingAdmissionPolicy denying what it must, and the
//! operator reconciling examples/ with nothing but the chart's RBAC; the
//! variants of issue 30 (decision service on, global values, pass-through
//! values, an umbrella chart with `condition: orgaccess.enabled`).
//!
//! `scripts/check-chart-upgrade.sh`: `helm upgrade` from the previous chart
//! version (CRDs in crds/, from git) to this one updates the CRDs, and
//! `helm uninstall` keeps them.
//!
//! Each script starts its own local control plane (KUBECONFIG is removed from
//! its environment) and builds helm from tools/helm the first time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs a script of scripts/ on its own control plane; returns its stdout,
/// or fails the test with both outputs.
fn run_script(script: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("bash")
        .arg(root.join("scripts").join(script))
        .current_dir(root)
        .env_remove("KUBECONFIG")
        .env("ORGACCESS_BIN", env!("CARGO_BIN_EXE_orgaccess"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running scripts/{script}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/{script} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    stdout
}

#[test]
fn chart_passes_check_chart() {
    let started = Instant::now();
    let stdout = run_script("check-chart.sh");
    for expected in [
        "check-chart: OK",
        "created (server dry run)",
        "certificate kept across the upgrade",
        "denied: deleting the Administrators group",
        "no request refused",
        "ServiceMonitor rendered",
        "status policy installed without admissionPolicy.enabled",
        "webhook.allowFrom presets rendered into the NetworkPolicy",
        "client certificate for the apiserver generated (CN kube-apiserver), asked of every caller",
        "watchNamespace: ready with only namespaced rights, nothing refused",
        "CRDs rendered as templates, kept on uninstall",
        "the CRDs belong to release orgaccess",
        "helm uninstall kept the CRDs and the objects",
        // Issue 30's chart bugs, each rendered and checked.
        "refused: webhook.port and decision.https.port are both 8443",
        "decision service on 9443, webhook on 8443",
        "refused for 1.30.9, accepted for 1.31.0",
        "NOTES.txt names Lease acme-access-orgaccess-controller",
        "global.imageRegistry and global.imagePullSecrets used",
        "pass-through keys used: commonLabels on all",
        "umbrella chart: enabled renders and passes the dry run",
        "examples/install/ accepted by the Argo CD and Flux CRDs",
    ] {
        assert!(
            stdout.contains(expected),
            "check-chart output lacks {expected:?}:\n{stdout}"
        );
    }
    eprintln!(
        "check-chart passed in {:?}",
        Duration::from_secs(started.elapsed().as_secs())
    );
}

#[test]
fn chart_upgrade_from_the_previous_version_updates_the_crds_and_uninstall_keeps_them() {
    let stdout = run_script("check-chart-upgrade.sh");
    for expected in [
        "installed; CRDs without the mark",
        "without --take-ownership: refused",
        "CRDs updated by helm upgrade",
        "a further upgrade needs no flag",
        "CRDs and the Organization kept after helm uninstall",
        "check-chart-upgrade: OK",
    ] {
        assert!(
            stdout.contains(expected),
            "check-chart-upgrade output lacks {expected:?}:\n{stdout}"
        );
    }
}

/// scripts/check-chart-pods.sh: the chart installed for real on a one-node
/// cluster whose kubelet runs its pods (scripts/node-cluster.sh): both pods
/// Running and Ready, the webhook called by the apiserver through the Service,
/// examples/ reconciled in-cluster, the Lease handed over when the leader's pod
/// goes, `helm upgrade` to another tag with no refused change, `helm uninstall`
/// keeping the CRDs. 44 s once the node binaries are cached; ignored by default
/// because their first build (tools/build-node.sh) took 28 minutes on a loaded
/// machine and it needs root: `cargo test --test cli -- --ignored chart::chart_pods`.
#[test]
#[ignore = "needs root and tools/build-node.sh's binaries (a long first build)"]
fn chart_pods_run_and_serve_on_a_kubelet() {
    let stdout = run_script("check-chart-pods.sh");
    for expected in [
        "2 pods Running and Ready",
        "denied: denied the request: Group acme/field-editors denied: [CatalogValidity]",
        "examples/ reconciled by the in-cluster operator",
        "Lease: ",
        "no change refused during the rollout",
        "CRDs and the organization kept",
        "check-chart-pods: OK",
    ] {
        assert!(
            stdout.contains(expected),
            "check-chart-pods output lacks {expected:?}:\n{stdout}"
        );
    }
}
