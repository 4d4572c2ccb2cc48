//! `orgaccess diff` as a binary: two directories, a git range (revisions and
//! the working tree), the cluster against manifests, `--as` refusals and the
//! exit codes of `--fail-on`. The pull request of every test adds Ada to
//! Administrators (and the core's answers are in `tests/rules/diff_*.rs`).

use crate::runner::{Out, root, run_in};
use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BASE_LINE: &str = "groups: [atlassian-administrators]";
const HEAD_LINE: &str = "groups: [atlassian-administrators, administrators]";

/// The examples (top level only), with the pull request applied or not.
fn write_examples(dir: &Path, with_pr: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(root().join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let mut text = std::fs::read_to_string(&p).unwrap();
            if with_pr && p.ends_with("20-members.yaml") {
                assert!(text.contains(BASE_LINE));
                text = text.replacen(BASE_LINE, HEAD_LINE, 1);
            }
            std::fs::write(dir.join(p.file_name().unwrap()), text).unwrap();
        }
    }
}

fn json(out: &Out) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// The namespaces' notices of kind `kind`, as `Kind/name` of their principal.
fn notices(v: &Value, kind: &str) -> Vec<String> {
    v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["notices"].as_array().unwrap().clone())
        .filter(|n| n["kind"] == kind)
        .map(|n| {
            format!(
                "{}/{}",
                n["principal"]["kind"].as_str().unwrap(),
                n["principal"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn two_directories_name_the_new_administrator_and_fail_on_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, head) = (tmp.path().join("base"), tmp.path().join("head"));
    write_examples(&base, false);
    write_examples(&head, true);
    let b = base.to_str().unwrap();
    let h = head.to_str().unwrap();

    let out = run_in(root(), &["diff", b, h, "-o", "json"], None);
    assert_eq!(out.code, 0, "no --fail-on: exit 0; {}", out.stderr);
    let v = json(&out);
    assert_eq!(notices(&v, "newAdministrator"), ["member/ada-atlassian"]);
    let concerns = v["concerns"].as_array().unwrap();
    assert!(concerns.contains(&"new-administrator".into()) && concerns.contains(&"gain".into()));
    // Every change of Ada's is a gain caused by Administrators.
    let ada = &v["namespaces"][0]["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["principal"]["name"] == "ada-atlassian")
        .expect("ada's privileges moved")["changes"];
    assert!(
        ada.as_array()
            .unwrap()
            .iter()
            .all(|c| c["direction"] == "gained"
                && c["grantedBy"] == serde_json::json!(["Group administrators"]))
    );

    let out = run_in(
        root(),
        &["diff", b, h, "--fail-on", "new-administrator"],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Member/ada-atlassian becomes an administrator"),
        "{}",
        out.stdout
    );
    // Not named: exit 0. The reverse change takes access away: no gain.
    let out = run_in(root(), &["diff", b, h, "--fail-on", "key-exposure"], None);
    assert_eq!(out.code, 0);
    let out = run_in(
        root(),
        &[
            "diff",
            h,
            b,
            "--fail-on",
            "gain,new-administrator",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(
        notices(&json(&out), "noLongerAdministrator"),
        ["member/ada-atlassian"]
    );
    // The same state on both sides: nothing.
    let out = run_in(root(), &["diff", b, b, "--fail-on", "gain"], None);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("no change to access"), "{}", out.stdout);
}

#[test]
fn the_author_is_refused_what_admission_would_refuse() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, head) = (tmp.path().join("base"), tmp.path().join("head"));
    write_examples(&base, false);
    write_examples(&head, true);
    let (b, h) = (base.to_str().unwrap(), head.to_str().unwrap());
    // john (John Smith, a limited administrator) cannot make Ada an administrator.
    let out = run_in(
        root(),
        &[
            "diff",
            b,
            h,
            "--as",
            "john",
            "--fail-on",
            "escalation",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let v = json(&out);
    let refused = v["namespaces"][0]["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["name"], "ada-atlassian");
    assert_eq!(refused[0]["operation"], "UPDATE");
    assert!(
        refused[0]["rules"]
            .as_array()
            .unwrap()
            .contains(&"NoEscalation".into())
    );
    assert!(
        refused[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("20-members.yaml")
    );
    // olivia is an administrator: admitted, no escalation.
    let out = run_in(
        root(),
        &[
            "diff",
            b,
            h,
            "--as",
            "olivia",
            "--fail-on",
            "escalation",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(
        json(&out)["namespaces"][0]["refused"],
        serde_json::json!([])
    );
    // escalation without an author is a usage error.
    let out = run_in(root(), &["diff", b, h, "--fail-on", "escalation"], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--as"), "{}", out.stderr);
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=ci", "-c", "user.email=ci@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_git_range_compares_revisions_and_the_working_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    git(repo, &["init", "-q", "-b", "main"]);
    let org = repo.join("org");
    write_examples(&org, false);
    std::fs::write(repo.join("README.md"), "not a manifest\n").unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-qm", "base"]);
    git(repo, &["checkout", "-qb", "pr"]);
    write_examples(&org, true);
    git(repo, &["commit", "-qam", "make ada an administrator"]);

    let out = run_in(
        repo,
        &[
            "diff",
            "--git",
            "main..pr",
            "--fail-on",
            "new-administrator",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let v = json(&out);
    assert_eq!(notices(&v, "newAdministrator"), ["member/ada-atlassian"]);
    assert_eq!(
        (v["base"].as_str(), v["head"].as_str()),
        (Some("main"), Some("pr"))
    );
    // Limited to a path, from a subdirectory, and with --as the refusal names
    // the file as the repository has it.
    let out = run_in(
        &org,
        &[
            "diff",
            "--git",
            "main..HEAD",
            ".",
            "--as",
            "john",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = json(&out);
    assert_eq!(v["namespaces"][0]["refused"][0]["file"], "20-members.yaml");
    // The working tree as head: undo the change without committing.
    write_examples(&org, false);
    let out = run_in(repo, &["diff", "--git", "pr..", "-o", "json"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        notices(&json(&out), "noLongerAdministrator"),
        ["member/ada-atlassian"]
    );
    // A path outside the range's tree holds nothing: every namespace empty.
    // Bad ranges are clear errors.
    for (range, words) in [
        ("main", "BASE..HEAD"),
        ("nosuch..pr", "nosuch"),
        ("..pr", "base"),
    ] {
        let out = run_in(repo, &["diff", "--git", range], None);
        assert_eq!(out.code, 2, "{range}: {}", out.stdout);
        assert!(out.stderr.contains(words), "{range}: {}", out.stderr);
    }
}

#[tokio::test]
async fn the_cluster_against_manifests() {
    use support::{ADMIN, assert_success, kubectl, kubectl_stdin, plane};
    support::install_crds().await;
    let ns = support::fresh_namespace(&support::admin_client().await).await;
    // What the operator would seed (the control plane runs none).
    let mut builtins = String::new();
    for (name, builtin) in [
        ("administrators", "Administrators"),
        ("analytics-viewers", "AnalyticsViewers"),
    ] {
        builtins.push_str(&format!(
            "---\napiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {{name: {name}}}\nspec: {{builtIn: {builtin}, template: {builtin}}}\n"
        ));
    }
    let out = kubectl_stdin(ADMIN, &["apply", "-n", &ns, "-f", "-"], Some(&builtins)).await;
    assert_success("create the built-in groups", &out);
    let tmp = tempfile::tempdir().unwrap();
    let (base, head) = (tmp.path().join("base"), tmp.path().join("head"));
    write_examples(&base, false);
    write_examples(&head, true);
    let out = kubectl(ADMIN, &["apply", "-n", &ns, "-f", base.to_str().unwrap()]).await;
    assert_success("apply the examples", &out);

    let kubeconfig: PathBuf = plane().kubeconfig_for(ADMIN);
    let diff = |dir: &Path| {
        run_in(
            root(),
            &[
                "diff",
                "--cluster",
                "-n",
                &ns,
                dir.to_str().unwrap(),
                "--fail-on",
                "new-administrator,gain",
                "-o",
                "json",
            ],
            Some(&kubeconfig),
        )
    };
    // The manifests the cluster holds: no member, key or identity moves.
    let out = diff(&base);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let v = json(&out);
    assert_eq!(
        v["namespaces"][0]["principals"],
        serde_json::json!([]),
        "{}",
        out.stdout
    );
    let out = diff(&head);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        notices(&json(&out), "newAdministrator"),
        ["member/ada-atlassian"]
    );
}
