//! The CRD schema bounds every string and list (`src/api.rs`, `crates/core/src/model.rs`): oversized, empty
//! or deceptive values are refused by the apiserver itself, with a message,
//! before any webhook sees them. Served dry-run through the real apiserver,
//! and every verdict compared with `orgaccess check`'s offline schema check
//! (`orgaccess::cli::schema`), which must refuse exactly the same objects.

use crate::support;

use orgaccess::cli::schema;
use orgaccess::core::model::Kind;

use support::{ADMIN, assert_success, fresh_namespace, install_crds, kubectl_stdin, plane};

/// `kubectl create --dry-run=server` of `manifest` in `ns`: (succeeded,
/// stderr). Asserts that the offline schema check agrees with the apiserver.
async fn dry_run(ns: &str, manifest: &serde_json::Value) -> (bool, String) {
    let out = kubectl_stdin(
        ADMIN,
        &["create", "--dry-run=server", "-n", ns, "-f", "-"],
        Some(&manifest.to_string()),
    )
    .await;
    let (ok, stderr) = (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    let kind = Kind::ALL
        .into_iter()
        .find(|k| manifest["kind"] == k.as_str())
        .expect("one of the kinds");
    let mut namespaced = manifest.clone();
    namespaced["metadata"]["namespace"] = ns.into();
    let offline = schema::problems(kind, &namespaced);
    assert_eq!(
        offline.is_empty(),
        ok,
        "the offline schema check disagrees with the apiserver on {manifest:.200}: offline {offline:?}, apiserver: {stderr}"
    );
    (ok, stderr)
}

fn org(display_name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Organization",
        "metadata": {"name": "acme"},
        "spec": {"displayName": display_name},
    })
}

fn member(provider: &str, username: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Member",
        "metadata": {"name": "m"},
        "spec": {"identity": {"provider": provider, "username": username}},
    })
}

#[tokio::test]
async fn strings_and_lists_are_bounded_by_the_schema() {
    install_crds().await;
    let client = plane().client().await;
    let ns = fresh_namespace(&client).await;

    let (ok, err) = dry_run(&ns, &org("Acme Corp")).await;
    assert!(ok, "a plain display name: {err}");
    for (what, name, needle) in [
        ("a 1 MiB display name", "x".repeat(1 << 20), "255"),
        ("an empty display name", String::new(), "at least 1"),
        (
            "a right-to-left override",
            "Acme\u{202E}srotartsinimdA".to_string(),
            "bidirectional-override",
        ),
        ("a control character", "Acme\u{7}".to_string(), "control"),
    ] {
        let (ok, err) = dry_run(&ns, &org(&name)).await;
        assert!(!ok, "{what} was admitted");
        assert!(err.contains(needle), "{what}: {err}");
    }

    for (provider, username) in [
        ("Email", "ann@acme.example"),
        ("Google", "ann@acme.example"),
        ("SingleSignOn", "ann-nameid"),
    ] {
        let (ok, err) = dry_run(&ns, &member(provider, username)).await;
        assert!(ok, "{provider} {username}: {err}");
    }
    for (provider, username, needle) in [
        ("Email", "not an email@@", "e-mail address"),
        ("Microsoft", "ann", "e-mail address"),
        ("Email", "", "at least 1"),
        ("SingleSignOn", "ann\u{202E}", "bidirectional-override"),
    ] {
        let (ok, err) = dry_run(&ns, &member(provider, username)).await;
        assert!(!ok, "{provider} {username:?} was admitted");
        assert!(err.contains(needle), "{provider} {username:?}: {err}");
    }

    // Lists: subjects, SSO groups, invited groups.
    let mut m = member("Email", "ann@acme.example");
    m["spec"]["subjects"] = (0..65)
        .map(|i| serde_json::json!({"kind": "User", "name": format!("u{i}")}))
        .collect();
    let (ok, err) = dry_run(&ns, &m).await;
    assert!(!ok && err.contains("64"), "65 subjects: {err}");
    let mut m = member("Email", "ann@acme.example");
    m["spec"]["ssoGroups"] = serde_json::json!(["x".repeat(300)]);
    let (ok, err) = dry_run(&ns, &m).await;
    assert!(
        !ok && err.contains("256"),
        "a 300-character SSO group: {err}"
    );

    // Resource names in a privilege.
    let group = serde_json::json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
        "metadata": {"name": "g"},
        "spec": {"privileges": [{"service": "Content", "domain": "Sources", "level": "Custom",
                                 "resources": [{"name": "s".repeat(300), "level": "View"}]}]},
    });
    let (ok, err) = dry_run(&ns, &group).await;
    assert!(
        !ok && err.contains("253"),
        "a 300-character resource name: {err}"
    );
    // Ranges and the CEL rules across fields (what `orgaccess check` once
    // restated by hand).
    let mut o = org("Acme Corp");
    o["spec"]["invitationLifetimeDays"] = 400.into();
    let (ok, err) = dry_run(&ns, &o).await;
    assert!(!ok && err.contains("365"), "400 days: {err}");
    let mut g = group.clone();
    g["spec"] = serde_json::json!({"identitySets": [{"ssoGroup": "a", "salesforceProfile": "Standard User"}]});
    let (ok, err) = dry_run(&ns, &g).await;
    assert!(
        !ok && err.contains("exactly one"),
        "two identity kinds: {err}"
    );
    g["spec"] = serde_json::json!({"identitySets": [{"ssoGroup": "a"}]});
    let (ok, err) = dry_run(&ns, &g).await;
    assert!(ok, "one identity kind: {err}");
    let mut m = member("Email", "ann@acme.example");
    m["spec"]["subjects"] = serde_json::json!([{"kind": "ServiceAccount", "name": "ci"}]);
    let (ok, err) = dry_run(&ns, &m).await;
    assert!(
        !ok && err.contains("namespace"),
        "a service account without namespace: {err}"
    );
    m["spec"]["subjects"] = serde_json::json!([{"kind": "User", "name": "ann", "namespace": "x"}]);
    let (ok, err) = dry_run(&ns, &m).await;
    assert!(
        !ok && err.contains("namespace"),
        "a user with a namespace: {err}"
    );

    // The IP lists' rules use the Kubernetes CEL library (isIP, isCIDR).
    let mut key = serde_json::json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "ApiKey",
        "metadata": {"name": "k"},
        "spec": {"displayName": "K", "template": "AnonymousSearch", "lifetime": "P90D",
                 "allowedIps": ["0.0.0.0/0", "192.0.2.7"]},
    });
    let (ok, err) = dry_run(&ns, &key).await;
    assert!(ok, "addresses and ranges: {err}");
    key["spec"]["deniedIps"] = serde_json::json!(["not-an-address"]);
    let (ok, err) = dry_run(&ns, &key).await;
    assert!(!ok, "a malformed address was admitted: {err}");

    // A search hub: bounded, and a CEL `matches` rule (the core's pattern),
    // judged alike offline (kube-cel) and by the apiserver.
    key["spec"]["deniedIps"] = serde_json::json!([]);
    for (hub, admitted) in [
        ("community", true),
        ("Agent Panel", true),
        ("trailing ", false),
        ("a/b", false),
        ("h\u{e9}", false),
        ("", false),
    ] {
        key["spec"]["searchHub"] = hub.into();
        let (ok, err) = dry_run(&ns, &key).await;
        assert_eq!(ok, admitted, "search hub {hub:?}: {err}");
        assert_eq!(
            orgaccess::core::apikey::search_hub_problem(hub).is_none(),
            admitted,
            "the core judges {hub:?} otherwise than the CRD"
        );
    }
    key["spec"]["searchHub"] = "h"
        .repeat(orgaccess::core::apikey::MAX_SEARCH_HUB_LEN + 1)
        .into();
    let (ok, err) = dry_run(&ns, &key).await;
    assert!(
        !ok && err.contains("searchHub"),
        "an overlong search hub: {err}"
    );

    let out = kubectl_stdin(ADMIN, &["get", "crd", "members.orgaccess.dev"], None).await;
    assert_success("the CRDs are installed", &out);
}

/// The access review fields (docs/access-reviews.md): a Group's owners and
/// cadence, the Organization's settings, an AccessReview's group, confirmed
/// members and note are bounded and shaped by the schema, and `orgaccess
/// check`'s offline reading agrees with the apiserver on each.
#[tokio::test]
async fn access_review_fields_are_bounded_by_the_schema() {
    install_crds().await;
    let client = plane().client().await;
    let ns = fresh_namespace(&client).await;
    let group = |spec: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
            "metadata": {"name": "g"}, "spec": spec,
        })
    };
    let review = |spec: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "orgaccess.dev/v1alpha1", "kind": "AccessReview",
            "metadata": {"name": "r"}, "spec": spec,
        })
    };
    let mut settings = org("Acme Corp");
    settings["spec"]["accessReviews"] =
        serde_json::json!({"whenOverdue": "Suspend", "gracePeriod": "P7D"});
    for (what, manifest) in [
        (
            "owners and a cadence",
            group(serde_json::json!({"owners": ["ann", "bob"], "reviewEvery": "P90D"})),
        ),
        (
            "a cadence in years and months",
            group(serde_json::json!({"reviewEvery": "P1Y6M"})),
        ),
        ("Suspend with a grace", settings),
        (
            "a review",
            review(serde_json::json!({"group": "g", "confirmed": ["ann"], "note": "Q1"})),
        ),
        (
            "a review confirming nobody",
            review(serde_json::json!({"group": "g"})),
        ),
    ] {
        let (ok, err) = dry_run(&ns, &manifest).await;
        assert!(ok, "{what}: {err}");
    }
    let mut bad_setting = org("Acme Corp");
    bad_setting["spec"]["accessReviews"] = serde_json::json!({"whenOverdue": "Never"});
    let mut bad_grace = org("Acme Corp");
    bad_grace["spec"]["accessReviews"] = serde_json::json!({"gracePeriod": "7 days"});
    let many = |n: usize| (0..n).map(|i| format!("m{i}")).collect::<Vec<_>>();
    for (what, manifest, needle) in [
        (
            "a cadence with hours",
            group(serde_json::json!({"reviewEvery": "P1DT1H"})),
            "review period",
        ),
        (
            "33 owners",
            group(serde_json::json!({"owners": many(33)})),
            "32",
        ),
        ("an unknown setting", bad_setting, "Never"),
        ("a grace in words", bad_grace, "review period"),
        (
            "a review of no group",
            review(serde_json::json!({"group": ""})),
            "at least 1",
        ),
        (
            "1001 confirmed members",
            review(serde_json::json!({"group": "g", "confirmed": many(1001)})),
            "1000",
        ),
        (
            "a 2000-character note",
            review(serde_json::json!({"group": "g", "note": "x".repeat(2000)})),
            "1024",
        ),
    ] {
        let (ok, err) = dry_run(&ns, &manifest).await;
        assert!(!ok, "{what} was admitted");
        assert!(err.contains(needle), "{what}: {err}");
    }
}

/// `spec.privileges` is a map list keyed by service and domain (docs/api-changes.md), so
/// server-side apply merges it entry by entry: two field managers each own
/// their privileges of one group, and neither's apply removes the other's.
/// A second entry for the same service and domain is refused by the apiserver.
#[tokio::test]
async fn two_field_managers_own_different_privileges_of_one_group() {
    use kube::api::{Api, Patch, PatchParams};
    use orgaccess::api::Group;
    use serde_json::json;

    install_crds().await;
    let client = plane().client().await;
    let ns = fresh_namespace(&client).await;
    let groups: Api<Group> = Api::namespaced(client, &ns);
    let apply = |manager: &'static str, privileges: serde_json::Value| {
        let groups = groups.clone();
        async move {
            let patch = json!({
                "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
                "metadata": {"name": "shared"},
                "spec": {"privileges": privileges},
            });
            groups
                .patch(
                    "shared",
                    &PatchParams::apply(manager),
                    &Patch::Apply(&patch),
                )
                .await
                .unwrap_or_else(|e| panic!("{manager} applies: {e}"))
        }
    };
    let held = |g: &Group| -> Vec<String> {
        g.spec
            .privileges
            .iter()
            .map(|p| format!("{}/{}: {:?}", p.service, p.domain, p.level))
            .collect()
    };

    apply(
        "analytics-team",
        json!([{"service": "Analytics", "domain": "Reports", "level": "View"}]),
    )
    .await;
    let g = apply(
        "search-team",
        json!([{"service": "Search", "domain": "ExecuteQueries", "level": "Allowed"}]),
    )
    .await;
    assert_eq!(
        held(&g),
        ["Analytics/Reports: View", "Search/ExecuteQueries: Allowed"]
    );
    // Each manager changes and drops only its own entries.
    let g = apply(
        "analytics-team",
        json!([{"service": "Analytics", "domain": "Reports", "level": "Edit"}]),
    )
    .await;
    assert_eq!(
        held(&g),
        ["Analytics/Reports: Edit", "Search/ExecuteQueries: Allowed"]
    );
    let g = apply("analytics-team", json!([])).await;
    assert_eq!(held(&g), ["Search/ExecuteQueries: Allowed"]);

    let twice = serde_json::json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
        "metadata": {"name": "twice"},
        "spec": {"privileges": [
            {"service": "Analytics", "domain": "Reports", "level": "View"},
            {"service": "Analytics", "domain": "Reports", "level": "Edit"},
        ]},
    });
    let (ok, err) = dry_run(&ns, &twice).await;
    assert!(!ok, "a duplicate (service, domain) entry was accepted");
    // The apiserver names the repeated entry and its key (e.g.
    // `spec.privileges[1]: Duplicate value: map[string]interface {}{"domain":"Reports", "service":"Analytics"}`);
    // `orgaccess check` says the same facts.
    let offline = schema::problems(Kind::Group, &twice);
    assert_eq!(offline.len(), 1, "{offline:?}");
    let facts = [
        "spec.privileges[1]",
        "Duplicate value",
        "\"domain\":\"Reports\"",
        "\"service\":\"Analytics\"",
    ];
    for fact in facts {
        assert!(
            err.contains(fact),
            "the apiserver no longer says {fact}: {err}"
        );
        let said = format!("{}: {}", offline[0].field, offline[0].message);
        assert!(said.contains(fact), "check does not say {fact}: {said}");
    }
}
