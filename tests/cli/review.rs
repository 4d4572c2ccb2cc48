//! `orgaccess review` as a binary: the reviews due or overdue over manifests
//! (standing, unconfirmed and suspended members, `--all`, `--fail-on`), the
//! AccessReview it writes for a group, and the same listing read from the
//! cluster after that review is created there (the core's answers are in
//! crates/core/src/review.rs).

use crate::runner::{Out, run};
use crate::support;

use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

fn days_ago(days: i64) -> String {
    (Timestamp::now() - SignedDuration::from_hours(24 * days)).to_string()
}

fn group(name: &str, created: Option<i64>, edit: bool) -> String {
    let created = created
        .map(|d| format!(", creationTimestamp: \"{}\"", days_ago(d)))
        .unwrap_or_default();
    let level = if edit { "Edit" } else { "View" };
    format!(
        "---\napiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {{name: {name}{created}}}\nspec:\n  owners: [olivia]\n  reviewEvery: P90D\n  privileges:\n  - {{service: Organization, domain: Groups, level: {level}}}\n  - {{service: Organization, domain: Organization, level: View}}\n"
    )
}

fn member(name: &str, groups: &str, created: Option<i64>) -> String {
    let created = created
        .map(|d| format!(", creationTimestamp: \"{}\"", days_ago(d)))
        .unwrap_or_default();
    format!(
        "---\napiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata: {{name: {name}{created}}}\nspec:\n  identity: {{provider: Email, username: {name}@example.com}}\n  accepted: true\n  groups: [{groups}]\n"
    )
}

/// An organization that suspends: `access-admins` last reviewed 120 days
/// ago (cadence 90 days: overdue, bob not confirmed), `soon` created 85
/// days ago (due in 5 days: within the notice), `readers` created 10 days
/// ago (current).
fn organization(created: bool) -> String {
    let at = |d: i64| created.then_some(d);
    let review = if created {
        format!(
            "---\napiVersion: orgaccess.dev/v1alpha1\nkind: AccessReview\nmetadata: {{name: access-admins-q2, creationTimestamp: \"{}\"}}\nspec:\n  group: access-admins\n  confirmed: [olivia]\n",
            days_ago(120)
        )
    } else {
        String::new()
    };
    [
        "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {name: acme}\nspec:\n  displayName: Acme\n  accessReviews: {whenOverdue: Suspend}\n".to_string(),
        group("access-admins", at(200), true),
        group("soon", at(85), false),
        group("readers", at(10), false),
        member("olivia", "access-admins, readers, soon", at(300)),
        member("bob", "access-admins", at(300)),
        review,
    ]
    .concat()
}

fn json(out: &Out) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout, out.stderr))
}

fn standings(v: &Value) -> Vec<(String, String)> {
    v["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["group"].as_str().unwrap().to_string(),
                r["standing"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn lists_reviews_due_or_overdue_from_manifests() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("org.yaml"), organization(true)).unwrap();
    let path = dir.path().to_str().unwrap();
    let out = run(&["review", "-f", path, "-o", "json"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = json(&out);
    assert_eq!(
        standings(&v),
        [
            ("access-admins".to_string(), "Overdue".to_string()),
            ("soon".to_string(), "Due".to_string())
        ]
    );
    let admins = &v["reviews"][0];
    assert_eq!(admins["lastReview"], "access-admins-q2");
    assert_eq!(admins["members"], serde_json::json!(["bob", "olivia"]));
    assert_eq!(admins["unconfirmed"], serde_json::json!(["bob"]));
    assert_eq!(admins["suspended"], serde_json::json!(["bob"]));
    // `soon` is due, not overdue: nobody is suspended yet.
    assert_eq!(v["reviews"][1]["suspended"], serde_json::json!([]));

    let all = json(&run(&["review", "-f", path, "--all", "-o", "json"], None));
    assert_eq!(standings(&all).len(), 3);
    assert_eq!(standings(&all)[1], ("readers".into(), "Current".into()));

    assert_eq!(
        run(&["review", "-f", path, "--fail-on", "overdue"], None).code,
        1
    );
    assert_eq!(
        run(&["review", "-f", path, "--fail-on", "due"], None).code,
        1
    );
    let table = run(&["review", "-f", path], None);
    assert!(table.stdout.contains("access-admins"), "{}", table.stdout);
    assert!(table.stdout.contains("Overdue"), "{}", table.stdout);

    // `explain member` says why bob's membership grants nothing.
    let bob = json(&run(
        &["explain", "member", "bob", "-f", path, "-o", "json"],
        None,
    ));
    assert_eq!(bob["groups"][0]["group"], "access-admins");
    assert_eq!(bob["groups"][0]["suspended"], true, "{bob}");
    assert_eq!(bob["groups"][0]["active"], false, "{bob}");
    assert_eq!(bob["privileges"], serde_json::json!([]), "{bob}");

    // Without the record, with `Report`: the same groups, nobody suspended.
    let report = organization(true).replace("whenOverdue: Suspend", "whenOverdue: Report");
    std::fs::write(dir.path().join("org.yaml"), report).unwrap();
    let v = json(&run(&["review", "-f", path, "-o", "json"], None));
    assert_eq!(v["reviews"][0]["standing"], "Overdue");
    assert_eq!(v["reviews"][0]["suspended"], serde_json::json!([]));
    let bob = json(&run(
        &["explain", "member", "bob", "-f", path, "-o", "json"],
        None,
    ));
    assert_eq!(bob["groups"][0]["active"], true, "{bob}");
    assert_eq!(bob["groups"][0].get("suspended"), None, "{bob}");
}

#[test]
fn writes_the_review_an_owner_records() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("org.yaml"), organization(true)).unwrap();
    let path = dir.path().to_str().unwrap();
    let write = |args: &[&str]| {
        run(
            &[&["review", "access-admins", "-f", path, "-o", "json"], args].concat(),
            None,
        )
    };
    let confirmed = |out: &Out| {
        assert_eq!(out.code, 0, "{}", out.stderr);
        let v = json(out);
        assert_eq!(v["kind"], "AccessReview");
        assert_eq!(v["spec"]["group"], "access-admins");
        v["spec"]["confirmed"].clone()
    };
    assert_eq!(
        confirmed(&write(&["--confirm-all"])),
        serde_json::json!(["bob", "olivia"])
    );
    assert_eq!(
        confirmed(&write(&["--drop", "bob", "--note", "bob moved teams"])),
        serde_json::json!(["olivia"])
    );
    assert_eq!(
        confirmed(&write(&["--confirm", "olivia,bob"])),
        serde_json::json!(["bob", "olivia"])
    );
    assert_eq!(confirmed(&write(&["--confirm-none"])), Value::Null);
    // A name that is not a member, no choice, an unknown group: refused.
    let out = write(&["--confirm", "carol"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("not members of group access-admins: carol"),
        "{}",
        out.stderr
    );
    let out = write(&[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--confirm-all"), "{}", out.stderr);
    let out = run(&["review", "nope", "-f", path, "--confirm-all"], None);
    assert_eq!(out.code, 2, "{}", out.stdout);
}

/// From the cluster: the groups as created now are current; the review the
/// CLI writes, created with kubectl, is the groups' last review.
#[tokio::test]
async fn reads_groups_and_reviews_from_the_cluster() {
    use support::{ADMIN, assert_success, kubectl, kubectl_stdin, plane};
    support::install_crds().await;
    let ns = support::fresh_namespace(&support::admin_client().await).await;
    let out = kubectl_stdin(
        ADMIN,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&organization(false)),
    )
    .await;
    assert_success("apply the organization", &out);
    let kubeconfig: PathBuf = plane().kubeconfig_for(ADMIN);
    let list = || {
        let out = run(
            &["review", "-n", &ns, "--all", "-o", "json"],
            Some(&kubeconfig),
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        json(&out)
    };
    let v = list();
    assert_eq!(standings(&v).len(), 3, "{v}");
    assert!(standings(&v).iter().all(|(_, s)| s == "Current"), "{v}");
    assert_eq!(v["reviews"][0]["lastReview"], Value::Null);

    let out = run(
        &["review", "access-admins", "-n", &ns, "--drop", "bob"],
        Some(&kubeconfig),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let created = kubectl_stdin(ADMIN, &["create", "-n", &ns, "-f", "-"], Some(&out.stdout)).await;
    assert_success("create the review", &created);
    let v = list();
    let admins = &v["reviews"][0];
    assert_eq!(admins["group"], "access-admins");
    assert!(
        admins["lastReview"]
            .as_str()
            .is_some_and(|n| n.starts_with("access-admins-review-")),
        "{v}"
    );
    assert_eq!(admins["unconfirmed"], serde_json::json!(["bob"]));
    let listed = kubectl(ADMIN, &["get", "accessreviews", "-n", &ns, "-o", "name"]).await;
    assert_success("list the reviews", &listed);
}
