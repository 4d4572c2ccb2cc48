//! The CI recipes (docs/ci-recipes.md, files in docs/ci-recipes/) run on
//! synthetic pull requests by scripts/check-ci-recipes.sh: the commands are
//! read here from the recipe files with a YAML parser (the GitHub Actions
//! steps whose id starts with `orgaccess-`, the GitLab job's script, and
//! their environment), so what the documentation says is what runs. Then
//! what the recipes wrote is read back: the SARIF validated against the
//! official SARIF 2.1.0 schema, the JUnit XML parsed, the comment's size.
//! No cluster: git, the binary and the examples.

use crate::runner::root;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `KEY='value'` lines of a YAML map of literal values; values that are CI
/// expressions (`${{ ... }}`) cannot be run here and are left out.
fn env_lines(map: &Value) -> String {
    let mut out = String::new();
    for (k, v) in map.as_object().into_iter().flatten() {
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !v.contains("${{") {
            let _ = writeln!(out, "{k}='{}'", v.replace('\'', r"'\''"));
        }
    }
    out
}

/// Writes the recipes' commands to `dir` in the files the script runs.
fn extract(dir: &Path) -> Vec<String> {
    let gh = yaml("docs/ci-recipes/github-actions.yml");
    std::fs::write(dir.join("github-env.sh"), env_lines(&gh["env"])).unwrap();
    let jobs = gh["jobs"].as_object().expect("jobs");
    let mut ids = Vec::new();
    for job in jobs.values() {
        for step in job["steps"].as_array().expect("steps") {
            let Some(id) = step["id"]
                .as_str()
                .filter(|id| id.starts_with("orgaccess-"))
            else {
                continue;
            };
            let run = step["run"].as_str().expect("a run step");
            assert!(!run.contains("${{"), "step {id} runs a CI expression");
            let mut script = env_lines(&step["env"])
                .lines()
                .map(|l| format!("export {l}\n"))
                .collect::<String>();
            script.push_str(run);
            let file = format!("github-{:02}-{id}.sh", ids.len() + 1);
            std::fs::write(dir.join(file), script).unwrap();
            ids.push(id.to_string());
        }
    }
    let gl = yaml("docs/ci-recipes/gitlab-ci.yml");
    let job = &gl["orgaccess"];
    std::fs::write(dir.join("gitlab-env.sh"), env_lines(&job["variables"])).unwrap();
    let script: Vec<&str> = job["script"]
        .as_array()
        .expect("script")
        .iter()
        .map(|l| l.as_str().expect("a script line"))
        .collect();
    std::fs::write(dir.join("gitlab.sh"), script.join("\n") + "\n").unwrap();
    ids
}

fn sarif_validator() -> jsonschema::Validator {
    let path = root().join("tests/fixtures/sarif/sarif-schema-2.1.0.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_recipes_flag_a_new_administrator_on_a_synthetic_pull_request() {
    let steps = tempfile::tempdir().unwrap();
    let ids = extract(steps.path());
    assert_eq!(ids, ["orgaccess-check", "orgaccess-diff"]);
    let work = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(root().join("scripts/check-ci-recipes.sh"))
        .current_dir(root())
        .env("ORGACCESS_BIN", env!("CARGO_BIN_EXE_orgaccess"))
        .env("RECIPE_STEPS", steps.path())
        .env("CI_RECIPES_WORK", work.path())
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("check-ci-recipes: OK"),
        "scripts/check-ci-recipes.sh failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let at = |pr: &str, system: &str, file: &str| -> PathBuf {
        work.path().join(pr).join(system).join(file)
    };
    let v = sarif_validator();
    for (pr, file) in [
        ("admin", "orgaccess-diff.sarif"),
        ("admin", "orgaccess-check.sarif"),
        ("viewer", "orgaccess-diff.sarif"),
        ("viewer", "orgaccess-check.sarif"),
    ] {
        let doc: Value = serde_json::from_str(&read(&at(pr, "github", file))).unwrap();
        let errors: Vec<String> = v
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{pr}/{file}: {errors:#?}");
    }
    // The diff's SARIF: the new administrator, an error at her manifest's line.
    let doc: Value =
        serde_json::from_str(&read(&at("admin", "github", "orgaccess-diff.sarif"))).unwrap();
    let results = doc["runs"][0]["results"].as_array().unwrap();
    let admin = results
        .iter()
        .find(|r| r["ruleId"] == "new-administrator")
        .expect("a new-administrator result");
    assert_eq!(admin["level"], "error");
    assert!(
        admin["message"]["text"]
            .as_str()
            .unwrap()
            .contains("Member/ada-atlassian")
    );
    let loc = &admin["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "org/20-members.yaml");
    let line = loc["region"]["startLine"].as_u64().unwrap() as usize;
    let manifest = read(&at("admin", "github", "org/20-members.yaml"));
    assert_eq!(
        manifest.lines().nth(line - 1),
        Some("apiVersion: orgaccess.dev/v1alpha1"),
        "line {line} starts her document"
    );
    assert!(
        manifest
            .lines()
            .skip(line)
            .take(3)
            .any(|l| l.contains("name: ada-atlassian"))
    );

    // The comment is within GitHub's limit; the JUnit report parses.
    let md = read(&at("admin", "github", "orgaccess-diff.md"));
    assert!(md.len() <= 60_000);
    let xml = read(&at("admin", "gitlab", "orgaccess-check.xml"));
    let junit = roxmltree::Document::parse(&xml).expect("JUnit XML parses");
    assert_eq!(junit.root_element().attribute("failures"), Some("0"));
    let codequality: Value = serde_json::from_str(&read(&at(
        "admin",
        "gitlab",
        "orgaccess-diff-codequality.json",
    )))
    .unwrap();
    assert!(
        codequality
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["check_name"] == "new-administrator"
                && i["location"]["path"] == "org/20-members.yaml")
    );
}
