//! The Helm chart (charts/orgaccess) passes scripts/check-chart.sh: `helm lint`,
//! `helm template | kubectl apply --dry-run=server` on a real kube-apiserver for
//! each values variant, an install and upgrade that keeps the webhook
//! certificate, the ValidatingAdmissionPolicy denying what it must, and the
//! operator reconciling examples/ with nothing but the chart's RBAC.
//!
//! The script starts its own local control plane (KUBECONFIG is removed from
//! its environment) and builds helm from tools/helm the first time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn chart_passes_check_chart() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(root.join("scripts/check-chart.sh"))
        .current_dir(root)
        .env_remove("KUBECONFIG")
        .env("ORGACCESS_BIN", env!("CARGO_BIN_EXE_orgaccess"))
        .stdin(Stdio::null())
        .output()
        .expect("running scripts/check-chart.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/check-chart.sh failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    for expected in [
        "check-chart: OK",
        "created (server dry run)",
        "certificate kept across the upgrade",
        "denied: deleting the Administrators group",
        "no request refused",
        "ServiceMonitor rendered",
        "watchNamespace: ready with only namespaced rights, nothing refused",
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
