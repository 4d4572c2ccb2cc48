//! The CI formats of `check`, `advise` and `diff` (`-o markdown|junit|sarif|
//! github|gitlab`, src/cli/report/) on the corpus, run as a binary: each
//! says what `-o json` says, the exit code does not depend on the format,
//! SARIF passes the official schema (tests/fixtures/sarif/) and JUnit an
//! XML parser.

use crate::runner::root;
use std::process::{Command, Stdio};

use serde_json::Value;

const FORMATS: [&str; 5] = ["markdown", "junit", "sarif", "github", "gitlab"];

/// Runs the binary from the crate root; (exit code, stdout).
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_orgaccess"))
        .args(args)
        .current_dir(root())
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8"),
    )
}

fn validator() -> jsonschema::Validator {
    let path = root().join("tests/fixtures/sarif/sarif-schema-2.1.0.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn assert_sarif(v: &jsonschema::Validator, what: &str, text: &str) -> Value {
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    let errors: Vec<String> = v
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
    doc
}

fn bad_corpus() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("tests/golden/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    files
}

#[test]
fn check_s_formats_say_what_json_says_with_the_same_exit_code() {
    let v = validator();
    let mut inputs = bad_corpus();
    inputs.push("examples".into());
    for input in &inputs {
        let (code, json) = run(&["check", input, "-o", "json"]);
        let json: Vec<Value> = serde_json::from_str(&json).unwrap();
        let denied: Vec<&Value> = json.iter().filter(|f| f["allowed"] == false).collect();
        let warnings: usize = json
            .iter()
            .map(|f| f["warnings"].as_array().unwrap().len())
            .sum();
        for format in FORMATS {
            let (c, _) = run(&["check", input, "-o", format]);
            assert_eq!(c, code, "{input} -o {format}");
        }
        // SARIF: one result per violation or problem and per warning, each at its file.
        let (_, sarif) = run(&["check", input, "-o", "sarif"]);
        let doc = assert_sarif(&v, input, &sarif);
        let results = doc["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), denied.len() + warnings, "{input}");
        let fingerprints: std::collections::BTreeSet<&str> = results
            .iter()
            .map(|r| r["partialFingerprints"]["orgaccess/v1"].as_str().unwrap())
            .collect();
        assert_eq!(
            fingerprints.len(),
            results.len(),
            "{input}: fingerprints collide"
        );
        for d in &denied {
            let rule = d["rule"].as_str().unwrap();
            let file = d["file"].as_str().unwrap();
            assert!(
                results.iter().any(|r| r["ruleId"] == rule
                    && r["level"] == "error"
                    && r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == file),
                "{input}: no SARIF result for {d}"
            );
        }
        // JUnit: a failure per denied object or invalid document.
        let (_, xml) = run(&["check", input, "-o", "junit"]);
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{input}: {e}"));
        let failures = doc
            .descendants()
            .filter(|n| n.has_tag_name("failure"))
            .count();
        let failing_docs: std::collections::BTreeSet<(String, String)> = denied
            .iter()
            .map(|d| {
                (
                    d["file"].to_string(),
                    format!("{}{}", d["name"], d["document"]),
                )
            })
            .collect();
        assert_eq!(failures, failing_docs.len(), "{input}");
        // GitHub: an error annotation per violation, at its file and line.
        let (_, gh) = run(&["check", input, "-o", "github"]);
        assert_eq!(
            gh.lines().filter(|l| l.starts_with("::error ")).count(),
            denied.len(),
            "{input}"
        );
        for d in &denied {
            let at = format!("file={},line={}", d["file"].as_str().unwrap(), d["line"]);
            assert!(gh.contains(&at), "{input}: {at} not in\n{gh}");
        }
        // GitLab: every issue located.
        let (_, gl) = run(&["check", input, "-o", "gitlab"]);
        let gl: Vec<Value> = serde_json::from_str(&gl).unwrap();
        assert_eq!(gl.len(), denied.len() + warnings);
        // Markdown: the verdict, each denied object named.
        let (_, md) = run(&["check", input, "-o", "markdown"]);
        let verdict = if code == 0 {
            "### ✅ orgaccess check"
        } else {
            "### ❌ orgaccess check"
        };
        assert!(md.starts_with(verdict), "{input}:\n{md}");
        for d in &denied {
            if let Some(name) = d["name"].as_str() {
                assert!(md.contains(name), "{input}: {name} not in\n{md}");
            }
        }
    }
}

#[test]
fn advise_s_formats_fail_at_the_threshold_and_pass_the_schema() {
    let v = validator();
    let (_, json) = run(&["advise", "-f", "examples", "-o", "json"]);
    let findings = serde_json::from_str::<Value>(&json).unwrap()["findings"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!findings.is_empty());
    for fail_on in ["info", "warning", "critical"] {
        let (code, _) = run(&["advise", "-f", "examples", "--fail-on", fail_on]);
        for format in FORMATS {
            let (c, out) = run(&[
                "advise",
                "-f",
                "examples",
                "--fail-on",
                fail_on,
                "-o",
                format,
            ]);
            assert_eq!(c, code, "--fail-on {fail_on} -o {format}");
            if format == "sarif" {
                let doc = assert_sarif(&v, "advise", &out);
                let results = doc["runs"][0]["results"].as_array().unwrap();
                assert_eq!(results.len(), findings.len());
                // Findings about objects of the manifests are placed at them.
                for r in results {
                    let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                        .as_str()
                        .unwrap();
                    assert!(uri.starts_with("examples/"), "{r}");
                }
            }
            if format == "junit" {
                let doc = roxmltree::Document::parse(&out).unwrap();
                let failures = doc
                    .descendants()
                    .filter(|n| n.has_tag_name("failure"))
                    .count();
                assert_eq!(failures > 0, code == 1, "--fail-on {fail_on}:\n{out}");
            }
        }
    }
}

#[test]
fn diff_s_sarif_passes_the_schema_and_names_a_new_administrator() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    std::fs::create_dir(&head).unwrap();
    for e in std::fs::read_dir(root().join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let text = std::fs::read_to_string(&p).unwrap().replace(
                "groups: [atlassian-administrators]",
                "groups: [atlassian-administrators, administrators]",
            );
            std::fs::write(head.join(p.file_name().unwrap()), text).unwrap();
        }
    }
    let head = head.display().to_string();
    let args = ["diff", "examples", &head, "--fail-on", "new-administrator"];
    let (code, _) = run(&args);
    assert_eq!(code, 1);
    let v = validator();
    for format in FORMATS {
        let (c, out) = run(&[&args[..], &["-o", format]].concat());
        assert_eq!(c, 1, "-o {format}");
        assert!(out.contains("ada-atlassian"), "-o {format}:\n{out}");
        if format == "sarif" {
            let doc = assert_sarif(&v, "diff", &out);
            let r = &doc["runs"][0]["results"][0];
            assert_eq!(r["ruleId"], "new-administrator");
            assert_eq!(r["level"], "error");
            assert_eq!(r["properties"]["failsRun"], true);
        }
    }
    // Without the change, nothing fails and nothing is listed.
    let (code, md) = run(&[
        "diff",
        "examples",
        "examples",
        "--fail-on",
        "new-administrator",
        "-o",
        "markdown",
    ]);
    assert_eq!(code, 0);
    assert!(
        md.starts_with("### ✅ orgaccess diff: examples → examples: no change to access"),
        "{md}"
    );
}

/// Names and messages from a hostile manifest stay text in every format.
#[test]
fn hostile_names_stay_text_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.yaml");
    std::fs::write(
        &file,
        r#"apiVersion: orgaccess.dev/v1alpha1
kind: Member
metadata:
  name: "<script>alert(1)</script>|a`b"
  namespace: acme
spec:
  identity: {provider: Email, username: "x@e.example"}
---
apiVersion: orgaccess.dev/v1alpha1
kind: Member
metadata:
  name: "ok\r\n::error file=x::forged,|"
  namespace: acme
spec:
  identity: {provider: Email, username: "y@e.example"}
"#,
    )
    .unwrap();
    let file = file.display().to_string();
    let (code, md) = run(&["check", &file, "-o", "markdown"]);
    assert_eq!(code, 1);
    assert!(
        !md.contains("<script>") && md.contains("&lt;script&gt;"),
        "{md}"
    );
    for l in md.lines().filter(|l| l.starts_with('|')) {
        assert_eq!(l.matches('|').count(), 6, "{l}");
    }
    assert!(md.lines().all(|l| !l.starts_with("::error")), "{md}");
    let (_, xml) = run(&["check", &file, "-o", "junit"]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let names: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert!(
        names.contains(&"Member acme/<script>alert(1)</script>|a`b"),
        "{names:?}"
    );
    let (_, sarif) = run(&["check", &file, "-o", "sarif"]);
    assert_sarif(&validator(), "hostile", &sarif);
    // One annotation per problem: a name's line break forges no command.
    let (_, gh) = run(&["check", &file, "-o", "github"]);
    let commands: Vec<&str> = gh.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(commands.len(), 2, "{gh}");
    assert!(
        commands.iter().all(|l| l.starts_with("::error file=")),
        "{gh}"
    );
    let (_, gl) = run(&["check", &file, "-o", "gitlab"]);
    assert_eq!(
        serde_json::from_str::<Value>(&gl)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
