//! scripts/release.sh: the image it builds without a Docker daemon (crane) has
//! the Dockerfile's entrypoint, user and labels, a root filesystem without a
//! shell owned by root, and the tag the chart deploys by default; the packaged
//! chart's version and appVersion are in step with the chart and Cargo.toml;
//! SHA256SUMS verifies every artifact.
//!
//! The script runs with this test build's binary (ORGACCESS_RELEASE_BIN), so no
//! release build is needed; the image is the same but for the binary.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command; returns its stdout, or fails the test with both outputs.
fn run(cmd: &mut Command) -> Vec<u8> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// One member of a tar file (`tar -xOf`).
fn tar_member(archive: &Path, member: &str) -> Vec<u8> {
    run(Command::new("tar").arg("-xOf").arg(archive).arg(member))
}

/// `key: value` of a Chart.yaml (top-level scalars only).
fn chart_field(chart_yaml: &str, key: &str) -> String {
    chart_yaml
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in Chart.yaml:\n{chart_yaml}"))
        .trim()
        .trim_matches('"')
        .to_string()
}

/// The final stage of the Dockerfile: its LABELs (with ${VERSION} replaced),
/// USER and ENTRYPOINT.
struct FinalStage {
    labels: BTreeMap<String, String>,
    user: String,
    entrypoint: Vec<String>,
}

fn dockerfile_final_stage(version: &str) -> FinalStage {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let last = text.rfind("\nFROM ").expect("a FROM");
    // Instructions, continuation lines joined.
    let joined = text[last..].replace("\\\n", " ");
    let mut stage = FinalStage {
        labels: BTreeMap::new(),
        user: String::new(),
        entrypoint: vec![],
    };
    for line in joined.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("LABEL ") {
            let mut rest = rest.trim();
            while let Some((key, after)) = rest.split_once("=\"") {
                let (value, tail) = after.split_once('"').expect("a closing quote");
                stage
                    .labels
                    .insert(key.trim().to_string(), value.replace("${VERSION}", version));
                rest = tail.trim();
            }
        } else if let Some(user) = line.strip_prefix("USER ") {
            stage.user = user.trim().to_string();
        } else if let Some(ep) = line.strip_prefix("ENTRYPOINT ") {
            stage.entrypoint = serde_json::from_str(ep).expect("ENTRYPOINT in JSON form");
        }
    }
    assert!(
        !stage.labels.is_empty() && !stage.user.is_empty() && !stage.entrypoint.is_empty(),
        "the Dockerfile's final stage lacks LABEL, USER or ENTRYPOINT"
    );
    stage
}

#[test]
fn release_builds_the_image_of_the_dockerfile_and_the_chart_in_step() {
    let dist = tempfile::tempdir().expect("tempdir");
    let dist_path: PathBuf = dist.path().join("dist");
    run(Command::new("bash")
        .arg(root().join("scripts/release.sh"))
        .current_dir(root())
        .env("ORGACCESS_RELEASE_BIN", env!("CARGO_BIN_EXE_orgaccess"))
        .env("ORGACCESS_DIST", &dist_path));

    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let version = cargo
        .split("[workspace.package]")
        .nth(1)
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("version = ")))
        .expect("the workspace version")
        .trim_matches('"')
        .to_string();
    let chart_src = std::fs::read_to_string(root().join("charts/orgaccess/Chart.yaml")).unwrap();
    let chart_version = chart_field(&chart_src, "version");

    // The image's config is the Dockerfile's final stage.
    let image = dist_path.join(format!("orgaccess-image-{version}.tar"));
    let manifest: Value = serde_json::from_slice(&tar_member(&image, "manifest.json")).unwrap();
    let entry = &manifest[0];
    assert_eq!(
        entry["RepoTags"],
        serde_json::json!([format!("orgaccess:{version}")]),
        "the tarball's tag"
    );
    let config: Value =
        serde_json::from_slice(&tar_member(&image, entry["Config"].as_str().unwrap())).unwrap();
    let stage = dockerfile_final_stage(&version);
    let c = &config["config"];
    assert_eq!(c["User"], Value::from(stage.user.clone()), "user");
    assert_eq!(c["User"], "65532:65532", "user");
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(stage.entrypoint),
        "entrypoint"
    );
    let labels: BTreeMap<String, String> = serde_json::from_value(c["Labels"].clone()).unwrap();
    assert_eq!(labels, stage.labels, "labels");
    assert_eq!(labels["org.opencontainers.image.version"], version);
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    // The same config as the OCI layout's image, and as config.json.
    let written: Value = serde_json::from_slice(
        &std::fs::read(dist_path.join(format!("orgaccess-image-{version}.config.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(written, config);
    let layout = dist_path.join(format!("orgaccess-image-{version}.oci"));
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(1),
        "one image in the OCI layout: {index}"
    );
    assert!(layout.join("oci-layout").is_file());

    // The root filesystem: the binary, its libraries, nonroot, no shell, all root's.
    let layers = entry["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer");
    let layer = tar_member(&image, layers[0].as_str().unwrap());
    let layer_file = dist.path().join("layer.tar.gz");
    std::fs::write(&layer_file, layer).unwrap();
    let listing = String::from_utf8(run(Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(&layer_file)))
    .unwrap();
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    for wanted in [
        "./usr/local/bin/orgaccess",
        "./etc/passwd",
        "./etc/group",
        "./etc/ssl/certs/ca-certificates.crt",
        "./usr/share/doc/orgaccess/LICENSE",
        "./lib64/ld-linux-x86-64.so.2",
        "./tmp/",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing:\n{listing}");
    }
    for shell in ["./bin/sh", "./bin/bash", "./usr/bin/sh", "./bin/busybox"] {
        assert!(!names.contains(&shell), "{shell} in the image");
    }
    for line in listing.lines() {
        assert!(line.contains(" 0/0 "), "not owned by root: {line}");
    }
    let passwd = String::from_utf8(run(Command::new("tar")
        .args(["-xOzf"])
        .arg(&layer_file)
        .arg("./etc/passwd")))
    .unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");

    // The chart package: the chart's version, the binary's version as appVersion.
    let package = dist_path.join(format!("orgaccess-{chart_version}.tgz"));
    let packaged = String::from_utf8(run(Command::new("tar")
        .arg("-xOzf")
        .arg(&package)
        .arg("orgaccess/Chart.yaml")))
    .unwrap();
    assert_eq!(chart_field(&packaged, "version"), chart_version);
    assert_eq!(chart_field(&packaged, "appVersion"), version);

    // Checksums of every artifact.
    let sums = std::fs::read_to_string(dist_path.join("SHA256SUMS")).unwrap();
    for artifact in [
        format!("orgaccess-{version}-linux-amd64"),
        format!("orgaccess-image-{version}.tar"),
        format!("orgaccess-{chart_version}.tgz"),
        format!("orgaccess-crds-{version}.yaml"),
    ] {
        assert!(
            sums.lines().any(|l| l.ends_with(&format!("  {artifact}"))),
            "{artifact} not in SHA256SUMS:\n{sums}"
        );
    }
    run(Command::new("sha256sum")
        .args(["--check", "--quiet", "SHA256SUMS"])
        .current_dir(&dist_path));
}

/// scripts/check-image-runc.sh: the image (built from this test build's
/// binary) run by runc as the chart's pods run it (its args, user 65532,
/// read-only root, no capabilities, in-cluster service account), two replicas
/// against the local control plane: ready, the leader reconciles examples/,
/// killed, the other takes the Lease and reconciles, SIGTERM releases it.
#[test]
fn image_runs_under_runc_as_the_charts_pods_and_hands_over_the_lease() {
    let stdout = String::from_utf8(run(Command::new("bash")
        .arg(root().join("scripts/check-image-runc.sh"))
        .current_dir(root())
        .env_remove("KUBECONFIG")
        .env("ORGACCESS_BIN", env!("CARGO_BIN_EXE_orgaccess"))))
    .unwrap();
    for expected in [
        "both replicas ready (/readyz 200); orgaccess-runc-a holds the Lease orgaccess-controller",
        "the operator process runs as uid 65532",
        "the webhook serves the chart's certificate",
        "members and the API key Ready",
        "orgaccess-runc-b took the Lease",
        "a re-created member reconciled by the new leader",
        "stopped; the Lease released",
        "check-image-runc: OK",
    ] {
        assert!(
            stdout.contains(expected),
            "check-image-runc output lacks {expected:?}:\n{stdout}"
        );
    }
}
