//! The admission webhook through the real apiserver (tests/support): each test
//! runs the webhook in-process on 127.0.0.1 with a certificate signed by the
//! control plane's CA, registers a ValidatingWebhookConfiguration scoped to its
//! own namespace, seeds an organization, and acts as different identities with
//! kubectl, asserting on kubectl's exit status and stderr.

use crate::support;

use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use orgaccess::core::model::OrgState;
use serde_json::{Value, json};
use support::org::{
    NAMESPACE_CONTROLLER, TestWebhook, assert_denied, four_privileges, group,
    install_admission_policy, member, priv_, stderr,
};
use support::{
    ADMIN, GITOPS_USER, OPERATOR_USER, admin_client, assert_success, fresh_namespace, kubectl,
    kubectl_stdin, plane,
};

#[tokio::test]
async fn administrators_cannot_be_deleted_or_edited_and_only_those_holding_it_duplicate_it() {
    let t = TestWebhook::start().await;
    t.seed().await;

    let out = t.delete("alice", "group", "administrators").await;
    assert_denied(
        "an administrator deletes Administrators",
        &out,
        &[
            "Group",
            "administrators",
            "[AdministratorsProtected]",
            "cannot be deleted",
        ],
    );
    let out = t
        .patch(
            "alice",
            "group",
            "administrators",
            &json!({ "spec": { "privileges": [priv_("Analytics", "Reports", "View")] } }),
        )
        .await;
    assert_denied(
        "an administrator edits Administrators' privileges",
        &out,
        &["[AdministratorsProtected] spec.privileges", "duplicate it"],
    );

    // Seed 001: "You can however duplicate the Administrators group". Bob
    // holds the seed's four privileges: refused, with what he lacks. An
    // administrator holds every privilege it holds and duplicates it; a
    // trusted principal skips the requester rules.
    let copy = |name: &str| {
        group(
            name,
            json!({ "duplicateOf": "administrators", "template": "Administrators" }),
        )
    };
    let out = t.create("bob", &copy("administrators-copy")).await;
    assert_denied(
        "a group manager duplicates Administrators",
        &out,
        &[
            "[Duplicate] spec.duplicateOf",
            "may duplicate the Administrators group only holding every privilege it holds",
        ],
    );
    assert_success(
        "a member of Administrators duplicates it",
        &t.create("alice", &copy("administrators-copy")).await,
    );
    assert_success(
        "gitops duplicates Administrators",
        &t.create(GITOPS_USER, &copy("administrators-copy-2")).await,
    );

    // spec.builtIn belongs to the operator.
    let fake = group("more-admins", json!({ "builtIn": "Administrators" }));
    assert_denied(
        "a member creates a built-in group",
        &t.create("alice", &fake).await,
        &["only the operator creates built-in groups"],
    );
    t.stop().await;
}

#[tokio::test]
async fn the_seed_duplicate_example_holds_both_ways() {
    let t = TestWebhook::start().await;
    t.seed().await;
    // bob holds four privileges: he duplicates the group of three ...
    let three = group(
        "three-copy",
        json!({ "duplicateOf": "three", "privileges": four_privileges()[..3] }),
    );
    assert_success("bob duplicates three", &t.create("bob", &three).await);
    // ... but not the group of four, which he does not strictly out-rank.
    let four = group(
        "four-copy",
        json!({ "duplicateOf": "four", "privileges": four_privileges() }),
    );
    assert_denied(
        "bob duplicates four",
        &t.create("bob", &four).await,
        &[
            "[Duplicate]",
            "'bob' (member bob)",
            "group 'four' is not strictly covered",
            "strictly more privileges",
        ],
    );
    t.stop().await;
}

#[tokio::test]
async fn granting_beyond_ones_own_privileges_is_denied_with_what_is_missing() {
    let t = TestWebhook::start().await;
    t.seed().await;
    let editors = group(
        "source-editors",
        json!({ "privileges": [priv_("Content", "Sources", "Edit"), priv_("Analytics", "Reports", "View")] }),
    );
    let out = t.create("bob", &editors).await;
    assert_denied(
        "bob grants what he does not hold",
        &out,
        &[
            "[NoEscalation] spec.privileges",
            "cannot grant privileges they do not hold",
            "Content/Sources: Edit",
            "Analytics/Reports: View",
        ],
    );
    assert!(
        !stderr(&out).contains("ViewAllReports"),
        "only what is missing is listed"
    );
    assert_success(
        "alice, who holds them, grants them",
        &t.create("alice", &editors).await,
    );

    // Adding oneself to a group is granting its privileges too.
    t.wait_cached("source-editors", |s| {
        s.groups.contains_key("source-editors")
    })
    .await;
    let out = t
        .patch(
            "bob",
            "member",
            "bob",
            &json!({ "spec": { "groups": ["four", "source-editors"] } }),
        )
        .await;
    assert_denied(
        "bob adds himself to a group above him",
        &out,
        &[
            "[NoEscalation] spec.groups",
            "group 'source-editors'",
            "Content/Sources: Edit",
        ],
    );
    t.stop().await;
}

#[tokio::test]
async fn catalog_violations_are_denied_each_with_its_own_message() {
    let t = TestWebhook::start().await;
    t.seed().await;
    let cases = [
        (
            "unknown domain",
            priv_("Analytics", "Report", "View"),
            vec![
                "[CatalogValidity] spec.privileges[0]",
                "unknown domain 'Report'",
                "did you mean 'Reports'",
            ],
        ),
        (
            "level not offered",
            priv_("Analytics", "Administrate", "Edit"),
            vec![
                "Analytics/Administrate does not offer level Edit",
                "Allowed",
            ],
        ),
        (
            "Custom where the domain has none",
            json!({ "service": "Content", "domain": "Fields", "level": "Custom",
                    "resources": [{ "name": "title", "level": "View" }] }),
            vec!["Content/Fields does not offer the Custom level"],
        ),
        (
            "Custom naming an undeclared resource",
            json!({ "service": "Content", "domain": "Sources", "level": "Custom",
                    "resources": [{ "name": "sharepoint", "level": "Edit" }] }),
            vec![
                "spec.privileges[0].resources[0].name",
                "sources 'sharepoint', which the Organization does not declare",
                "declared: confluence, jira, web, youtube",
            ],
        ),
    ];
    let mut messages = Vec::new();
    for (i, (what, privilege, needles)) in cases.into_iter().enumerate() {
        // As alice, who holds every privilege: only the catalog can refuse.
        let g = group(&format!("bad-{i}"), json!({ "privileges": [privilege] }));
        let out = t.create("alice", &g).await;
        assert_denied(what, &out, &needles);
        messages.push(stderr(&out).replace(&format!("bad-{i}"), "bad"));
    }
    messages.dedup();
    assert_eq!(messages.len(), 4, "each case has its own message");
    // And a declared source is fine.
    let ok = group(
        "jira-editors",
        json!({ "privileges": [{ "service": "Content", "domain": "Sources", "level": "Custom",
                                  "resources": [{ "name": "jira", "level": "Edit" }] }] }),
    );
    assert_success("Custom on a declared source", &t.create("alice", &ok).await);
    t.stop().await;
}

#[tokio::test]
async fn a_trusted_principal_passes_the_requester_rules_but_not_the_invariants() {
    let t = TestWebhook::start().await;
    t.seed().await;
    // gitops maps to no member, yet may grant anything valid ...
    let g = group(
        "platform-managed",
        json!({ "privileges": [priv_("Content", "Sources", "Edit")] }),
    );
    assert_success("gitops creates a group", &t.create(GITOPS_USER, &g).await);
    // ... but not break AdministratorsProtected or CatalogValidity.
    assert_denied(
        "gitops deletes Administrators",
        &t.delete(GITOPS_USER, "group", "administrators").await,
        &["[AdministratorsProtected]", "cannot be deleted"],
    );
    assert_denied(
        "gitops edits Administrators",
        &t.patch(
            GITOPS_USER,
            "group",
            "administrators",
            &json!({ "spec": { "template": "Users" } }),
        )
        .await,
        &["[AdministratorsProtected] spec.privileges"],
    );
    assert_denied(
        "gitops grants an unknown domain",
        &t.create(
            GITOPS_USER,
            &group(
                "x",
                json!({ "privileges": [priv_("Search", "Nope", "View")] }),
            ),
        )
        .await,
        &["[CatalogValidity]", "unknown domain 'Nope'"],
    );
    // The cluster admin (system:masters) is trusted the same way.
    assert_denied(
        "the cluster admin deletes Administrators",
        &t.delete(ADMIN, "group", "administrators").await,
        &["[AdministratorsProtected]"],
    );
    t.stop().await;
}

fn api_key(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "ApiKey",
        "metadata": { "name": name }, "spec": spec,
    })
}

/// Issue 12: what an API key may be, at admission, for a tenant who holds every
/// privilege (alice, an administrator): only the catalog and the CRD refuse.
#[tokio::test]
async fn api_keys_are_refused_a_long_rotation_window_a_reserved_privilege_and_a_long_name() {
    let t = TestWebhook::start().await;
    t.seed().await;
    let key = |name: &str, extra: Value| {
        let mut spec = json!({ "displayName": "K", "lifetime": "P30D" });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        api_key(name, spec)
    };
    assert_denied(
        "a previous value valid 31 days",
        &t.create(
            "alice",
            &key(
                "k1",
                json!({ "rotation": { "generation": 1, "previousKeyValidity": "P31D" } }),
            ),
        )
        .await,
        &[
            "[CatalogValidity] spec.rotation.previousKeyValidity",
            "exceeds 30 days",
            "P30D or less",
        ],
    );
    assert_denied(
        "an unreadable previous validity",
        &t.create(
            "alice",
            &key(
                "k2",
                json!({ "rotation": { "generation": 1, "previousKeyValidity": "a week" } }),
            ),
        )
        .await,
        &[
            "[CatalogValidity] spec.rotation.previousKeyValidity",
            "'a week' is not an ISO-8601 duration",
        ],
    );
    assert_denied(
        "a Custom key with Search Impersonate",
        &t.create(
            "alice",
            &key(
                "k3",
                json!({ "privileges": [priv_("Search", "Impersonate", "Allowed")] }),
            ),
        )
        .await,
        &[
            "[CatalogValidity] spec.privileges[0]",
            "Search/Impersonate is reserved to the AuthenticatedSearch API key template",
            "Use template AuthenticatedSearch",
        ],
    );
    assert_success(
        "the Authenticated search template, which holds Search Impersonate",
        &t.create(
            "alice",
            &key("k4", json!({ "template": "AuthenticatedSearch", "rotation": { "generation": 0, "previousKeyValidity": "P30D" } })),
        )
        .await,
    );
    // The name: the CRD refuses it before the webhook (the Secret
    // `<name>-apikey` would not be a valid name).
    let long = "k".repeat(247);
    let out = t.create("alice", &key(&long, json!({}))).await;
    assert!(
        !out.status.success(),
        "a 247-character key name was admitted"
    );
    assert!(
        stderr(&out).contains("an API key name has at most 246 characters"),
        "{}",
        stderr(&out)
    );
    assert_success(
        "a 246-character key name",
        &t.create("alice", &key(&"k".repeat(246), json!({}))).await,
    );
    // Expiry cannot be undone: lifetime neither removed nor lengthened, the
    // template (which sets the cap) fixed.
    for (what, patch, needle) in [
        (
            "removing lifetime",
            json!({ "spec": { "lifetime": null } }),
            "lifetime cannot be removed or changed",
        ),
        (
            "lengthening lifetime",
            json!({ "spec": { "lifetime": "P300D" } }),
            "lifetime cannot be removed or changed",
        ),
        (
            "changing the template",
            json!({ "spec": { "template": "Custom" } }),
            "template is fixed",
        ),
        (
            "removing the rotation",
            json!({ "spec": { "rotation": null } }),
            "rotation.generation only goes up",
        ),
    ] {
        let out = t.patch("alice", "apikey", "k4", &patch).await;
        assert!(!out.status.success(), "{what} was admitted");
        assert!(stderr(&out).contains(needle), "{what}: {}", stderr(&out));
    }
    t.stop().await;
}

/// Issue 16: an allowed but suspicious change comes back with admission
/// warnings, which kubectl prints as `Warning: ...` (core::warnings); the
/// kinds are in the `orgaccess` category, with -o wide columns and described
/// fields in `kubectl explain`.
#[tokio::test]
async fn suspicious_allowed_changes_come_back_as_kubectl_warnings() {
    let t = TestWebhook::start().await;
    t.seed().await;
    let warned = |what: &str, out: &std::process::Output, needle: &str| {
        assert_success(what, out);
        let err = stderr(out);
        assert!(
            err.lines()
                .any(|l| l.starts_with("Warning: ") && l.contains(needle)),
            "{what}: kubectl printed no warning with {needle:?}:\n{err}"
        );
    };
    // A tenant may not invite to a missing group (NoEscalation); a trusted
    // GitOps principal may (it applies a directory in any order), and is warned.
    warned(
        "a member invited to a group that does not exist",
        &t.create(ADMIN, &member("carol", &["four", "ghosts"])).await,
        "spec.groups[1]: group ghosts does not exist in this namespace",
    );
    warned(
        "an access list naming a missing group",
        &t.create(
            "alice",
            &group(
                "audited",
                json!({ "access": [{ "group": "auditors", "level": "View" }] }),
            ),
        )
        .await,
        "spec.access[0].group: group auditors does not exist",
    );
    warned(
        "an API key without a lifetime",
        &t.create(
            "alice",
            &api_key(
                "robot",
                json!({ "displayName": "Robot", "template": "AnonymousSearch" }),
            ),
        )
        .await,
        "spec.lifetime: not set, so the key lives the 90 days",
    );
    t.wait_cached("carol", |s| s.members.contains_key("carol"))
        .await;
    warned(
        "deleting a group members are invited to",
        &t.delete("alice", "group", "four").await,
        "members still invited to group four: bob, carol",
    );
    // A clean change has no warning.
    let out = t
        .create(
            "alice",
            &api_key(
                "robot2",
                json!({ "displayName": "Robot", "lifetime": "P30D" }),
            ),
        )
        .await;
    assert_success("a key with a lifetime", &out);
    assert!(!stderr(&out).contains("Warning:"), "{}", stderr(&out));

    // kubectl get orgaccess lists every kind; -o wide adds the Ready reason.
    let out = kubectl(ADMIN, &["get", "orgaccess", "-n", &t.ns, "-o", "wide"]).await;
    let listed = assert_success("kubectl get orgaccess", &out);
    for needle in [
        "group.orgaccess.dev/audited",
        "member.orgaccess.dev/carol",
        "apikey.orgaccess.dev/robot",
        "REASON",
    ] {
        assert!(listed.contains(needle), "no {needle} in:\n{listed}");
    }
    let out = kubectl(ADMIN, &["explain", "groups.status.memberCount"]).await;
    let explained = assert_success("kubectl explain", &out);
    assert!(
        explained.contains("Number of active members"),
        "{explained}"
    );
    t.stop().await;
}

#[tokio::test]
async fn an_unmapped_user_is_denied_with_how_to_map_it() {
    let t = TestWebhook::start().await;
    t.seed().await;
    let out = t.create("erin", &group("erins", json!({}))).await;
    assert_denied(
        "erin, who is no member",
        &out,
        &[
            "[UnknownRequester]",
            "'erin' is not a subject of any Member of this organization",
            "add {kind: User, name: erin}",
            "spec.subjects",
        ],
    );
    // Mapping erin to a member with the right group lets the same change through.
    assert_success(
        "mapping erin",
        &t.create(ADMIN, &member("erin", &["four"])).await,
    );
    t.wait_cached("erin", |s| s.members.contains_key("erin"))
        .await;
    assert_success(
        "erin, now a member",
        &t.create("erin", &group("erins", json!({}))).await,
    );
    t.stop().await;
}

#[tokio::test]
async fn administrators_goes_with_its_organization() {
    let t = TestWebhook::start().await;
    t.seed().await;
    // The namespace controller deletes only in a namespace being torn down.
    let out = kubectl(
        ADMIN,
        &[
            "delete",
            "-n",
            &t.ns,
            "group",
            "administrators",
            "--wait=false",
            &format!("--as={NAMESPACE_CONTROLLER}"),
        ],
    )
    .await;
    assert_success("the namespace controller deletes Administrators", &out);

    // Without its Organization, Administrators may go too.
    let admins = group(
        "administrators",
        json!({ "builtIn": "Administrators", "template": "Administrators" }),
    );
    t.wait_cached("administrators gone", |s| {
        !s.groups.contains_key("administrators")
    })
    .await;
    assert_success(
        "re-seeding Administrators",
        &t.create(OPERATOR_USER, &admins).await,
    );
    assert_success(
        "deleting the Organization",
        &t.delete(ADMIN, "organization", "acme").await,
    );
    t.wait_cached("the Organization gone", |s| s.org.is_none())
        .await;
    assert_success(
        "deleting Administrators after its Organization",
        &t.delete(ADMIN, "group", "administrators").await,
    );
    t.stop().await;
}

#[tokio::test]
async fn activity_is_recorded_as_events_logs_and_a_listable_ring() {
    let t = TestWebhook::start().await;
    t.seed().await;
    assert_denied(
        "alice deletes Administrators",
        &t.delete("alice", "group", "administrators").await,
        &[],
    );
    assert_success(
        "alice creates a group",
        &t.create(
            "alice",
            &group("analysts", json!({ "template": "AnalyticsViewers" })),
        )
        .await,
    );

    // The ring, on the admin port, to those the organization lets see it.
    let admin_http = reqwest::Client::new();
    let activity = |who: Option<&str>, ns: Option<&str>| {
        let mut req = admin_http.get(format!(
            "http://127.0.0.1:{}/activity{}",
            t.served.admin_port,
            ns.map(|ns| format!("?namespace={ns}")).unwrap_or_default()
        ));
        if let Some(who) = who {
            req = req.bearer_auth(&plane().identity(who).unwrap().token);
        }
        req.send()
    };
    let status = |r: reqwest::Response| r.status().as_u16();
    // No token, or an invalid one: 401.
    assert_eq!(status(activity(None, Some(&t.ns)).await.unwrap()), 401);
    let forged = admin_http
        .get(format!("http://127.0.0.1:{}/activity", t.served.admin_port))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(status(forged), 401);
    // erin is nobody in the organization; alice may not list every namespace.
    assert_eq!(
        status(activity(Some("erin"), Some(&t.ns)).await.unwrap()),
        403
    );
    assert_eq!(status(activity(Some("alice"), None).await.unwrap()), 403);
    // A trusted principal lists every namespace.
    assert_eq!(status(activity(Some(ADMIN), None).await.unwrap()), 200);
    // alice is an administrator: Organization/Activities: View.
    let list: Vec<Value> = activity(Some("alice"), Some(&t.ns))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let denied = list
        .iter()
        .find(|a| a["user"] == "alice" && a["allowed"] == false)
        .unwrap_or_else(|| panic!("no denial of alice in {list:#?}"));
    assert_eq!(denied["operation"], "DELETE");
    assert_eq!(denied["kind"], "Group");
    assert_eq!(denied["name"], "administrators");
    assert_eq!(denied["members"], json!(["alice"]));
    assert_eq!(denied["rules"], json!(["AdministratorsProtected"]));
    // Sent on the apiserver's authenticated connection: a fact, not a claim.
    assert_eq!(denied["caller"], "apiserver");
    assert!(denied["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(
        list.iter()
            .any(|a| a["user"] == "alice" && a["allowed"] == true && a["name"] == "analysts")
    );
    assert!(
        list.iter()
            .any(|a| a["user"] == OPERATOR_USER && a["requester"] == "operator")
    );

    // Kubernetes Events regarding the objects.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = kubectl(
            ADMIN,
            &["get", "events.events.k8s.io", "-n", &t.ns, "-o", "json"],
        )
        .await;
        let events: Value = serde_json::from_slice(&out.stdout).unwrap_or(json!({}));
        let items = events["items"].as_array().cloned().unwrap_or_default();
        let found = |reason: &str, name: &str, who: &str| {
            items.iter().any(|e| {
                e["reason"] == reason
                    && e["regarding"]["name"] == name
                    && e["regarding"]["kind"] == "Group"
                    && e["reportingController"] == "orgaccess-webhook"
                    && e["note"].as_str().is_some_and(|n| n.contains(who))
            })
        };
        if found("Denied", "administrators", "alice (member alice)")
            && found("Admitted", "analysts", "alice (member alice)")
        {
            let denied = items.iter().find(|e| e["reason"] == "Denied").unwrap();
            assert_eq!(denied["type"], "Warning");
            assert_eq!(denied["action"], "Delete");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "activity events missing: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A refused create regards the Organization (the object does not exist).
    assert_denied(
        "erin creates a group",
        &t.create("erin", &group("nope", json!({}))).await,
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = kubectl(
            ADMIN,
            &["get", "events.events.k8s.io", "-n", &t.ns, "-o", "json"],
        )
        .await;
        let events: Value = serde_json::from_slice(&out.stdout).unwrap_or(json!({}));
        let ok = events["items"].as_array().is_some_and(|items| {
            items.iter().any(|e| {
                e["regarding"]["kind"] == "Organization"
                    && e["regarding"]["name"] == "acme"
                    && e["note"]
                        .as_str()
                        .is_some_and(|n| n.contains("erin") && n.contains("Group"))
            })
        });
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no event regarding the Organization: {events:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Health, readiness and metrics on the admin port; the webhook's port
    // serves only /validate (to the apiserver's client certificate).
    let admin_url = |path: &str| format!("http://127.0.0.1:{}{path}", t.served.admin_port);
    for path in ["/healthz", "/readyz"] {
        let r = admin_http.get(admin_url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    assert!(
        t.https().get(t.url("/healthz")).send().await.is_err(),
        "the webhook port served a caller without a client certificate"
    );
    let metrics = admin_http
        .get(admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "orgaccess_webhook_decisions_total{kind=\"Group\",operation=\"DELETE\",allowed=\"false\"}",
        "orgaccess_webhook_decision_duration_seconds_bucket",
        "orgaccess_webhook_activity_events_total{result=\"published\"}",
    ] {
        assert!(
            metrics.contains(needle),
            "metrics lack {needle}:\n{metrics}"
        );
    }
    t.stop().await;
}

/// The ValidatingAdmissionPolicy of deploy/webhook keeps Administrators safe
/// with no webhook at all (here: none registered for the namespace).
#[tokio::test]
async fn the_admission_policy_protects_administrators_without_the_webhook() {
    support::install_crds().await;
    let client = admin_client().await;
    let ns = fresh_namespace(&client).await;
    install_admission_policy(&ns).await;
    let name = format!("orgaccess-invariants-{ns}");

    let kc = |who: &'static str, args: Vec<String>, stdin: Option<String>| {
        let ns = ns.clone();
        async move {
            let mut a: Vec<String> = vec!["-n".into(), ns];
            a.extend(args);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            kubectl_stdin(who, &a, stdin.as_deref()).await
        }
    };
    let admins = group(
        "administrators",
        json!({ "builtIn": "Administrators", "template": "Administrators" }),
    );
    // The policy takes effect asynchronously: wait until a non-operator
    // built-in group is refused.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = kc(
            ADMIN,
            vec![
                "create".into(),
                "--dry-run=server".into(),
                "-f".into(),
                "-".into(),
            ],
            Some(admins.to_string()),
        )
        .await;
        let err = stderr(&out);
        if err.contains("only the operator creates built-in groups") {
            assert!(
                err.contains(&format!("ValidatingAdmissionPolicy '{name}'")),
                "{err}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "policy never applied: {err}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let create = |who| {
        kc(
            who,
            vec!["create".into(), "-f".into(), "-".into()],
            Some(admins.to_string()),
        )
    };
    assert_success(
        "the operator seeds Administrators",
        &create(OPERATOR_USER).await,
    );

    let del = |who: &'static str, extra: Option<String>| {
        let mut a = vec![
            "delete".into(),
            "group".into(),
            "administrators".into(),
            "--wait=false".into(),
        ];
        a.extend(extra);
        kc(who, a, None)
    };
    let out = del(ADMIN, None).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the Administrators group cannot be deleted"),
        "{}",
        stderr(&out)
    );

    let patch = |p: Value| {
        kc(
            ADMIN,
            vec![
                "patch".into(),
                "group".into(),
                "administrators".into(),
                "--type=merge".into(),
                "-p".into(),
                p.to_string(),
            ],
            None,
        )
    };
    let out =
        patch(json!({ "spec": { "privileges": [priv_("Analytics", "Reports", "View")] } })).await;
    assert!(
        stderr(&out).contains("privileges of the Administrators group cannot be edited"),
        "{}",
        stderr(&out)
    );
    let out = patch(json!({ "spec": { "template": "Users" } })).await;
    assert!(
        stderr(&out).contains("privileges of the Administrators group cannot be edited"),
        "{}",
        stderr(&out)
    );
    // Other fields of Administrators, and ordinary groups, are not the policy's business.
    assert_success(
        "renaming Administrators",
        &patch(json!({ "spec": { "displayName": "Admins" } })).await,
    );
    let plain = group(
        "plain",
        json!({ "privileges": [priv_("Analytics", "Reports", "View")] }),
    );
    assert_success(
        "an ordinary group",
        &kc(
            ADMIN,
            vec!["create".into(), "-f".into(), "-".into()],
            Some(plain.to_string()),
        )
        .await,
    );
    assert_success(
        "editing an ordinary group",
        &kc(
            ADMIN,
            vec![
                "patch".into(),
                "group".into(),
                "plain".into(),
                "--type=merge".into(),
                "-p".into(),
                json!({ "spec": { "privileges": [] } }).to_string(),
            ],
            None,
        )
        .await,
    );
    assert_success(
        "deleting an ordinary group",
        &kc(
            ADMIN,
            vec!["delete".into(), "group".into(), "plain".into()],
            None,
        )
        .await,
    );
    // The namespace controller tears the namespace down, Administrators included.
    assert_success(
        "the namespace controller deletes Administrators",
        &del(ADMIN, Some(format!("--as={NAMESPACE_CONTROLLER}"))).await,
    );
    for (kind, n) in [
        ("validatingadmissionpolicybinding", &name),
        ("validatingadmissionpolicy", &name),
    ] {
        let _ = kubectl(ADMIN, &["delete", kind, n]).await;
    }
}

/// Rule 2 in the core: Administrators may be deleted only with its Organization.
#[test]
fn administrators_may_be_deleted_only_when_the_organization_is_gone_or_going() {
    use orgaccess::core::builtin::BuiltinGroup;
    use orgaccess::core::model::{GroupDef, OrgDef};
    use orgaccess::core::rules::{Change, Object, Operation, Requester, administrators_protected};
    let admins = GroupDef {
        name: "administrators".into(),
        builtin: Some(BuiltinGroup::Administrators),
        ..GroupDef::default()
    };
    let change = Change {
        operation: Operation::Delete,
        name: "administrators",
        old: Some(Object::Group(&admins)),
        new: None,
    };
    let mut state = OrgState {
        org: Some(OrgDef::default()),
        ..OrgState::default()
    };
    assert_eq!(
        administrators_protected(&state, &change, &Requester::Trusted).len(),
        1
    );
    state.org.as_mut().unwrap().meta.deleting = true;
    assert!(administrators_protected(&state, &change, &Requester::Trusted).is_empty());
    state.org = None;
    assert!(administrators_protected(&state, &change, &Requester::Trusted).is_empty());
}

/// The latency the webhook adds through the apiserver: creates of Groups by a
/// member (alice, an administrator) into an organization of
/// `ORGACCESS_BENCH_GROUPS` groups and `ORGACCESS_BENCH_MEMBERS` members, in a
/// namespace the webhook judges and in an identical one it does not,
/// alternating, `ORGACCESS_BENCH_CREATES` of each. Prints p50/p99 of both and
/// their difference. A measurement, not a timed test: run it on purpose with
///
/// ```text
/// cargo test --release --test webhook -- --ignored --nocapture webhook::added_latency
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (docs/performance.md); run with --ignored --nocapture"]
async fn added_latency_through_the_apiserver() {
    use futures::StreamExt as _;
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (n_groups, n_members, n_creates) = (
        env("ORGACCESS_BENCH_GROUPS", 1000),
        env("ORGACCESS_BENCH_MEMBERS", 5000),
        env("ORGACCESS_BENCH_CREATES", 300),
    );
    let t = TestWebhook::start().await;
    let admin = admin_client().await;
    let plain_ns = fresh_namespace(&admin).await;
    let resource = |kind: &str, plural: &str| {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("orgaccess.dev", "v1alpha1", kind),
            plural,
        )
    };
    let (groups_r, members_r, orgs_r) = (
        resource("Group", "groups"),
        resource("Member", "members"),
        resource("Organization", "organizations"),
    );
    let p = |s: &str, d: &str, l: &str| priv_(s, d, l);
    let seed = |ns: String| {
        let admin = admin.clone();
        let (groups_r, members_r, orgs_r) = (groups_r.clone(), members_r.clone(), orgs_r.clone());
        async move {
            let api =
                |r: &ApiResource| Api::<DynamicObject>::namespaced_with(admin.clone(), &ns, r);
            let mk = |v: Value| serde_json::from_value::<DynamicObject>(v).unwrap();
            api(&orgs_r)
                .create(
                    &PostParams::default(),
                    &mk(json!({
                    "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Organization",
                    "metadata": { "name": "acme" }, "spec": { "displayName": "Acme" } })),
                )
                .await
                .unwrap();
            let mut objects: Vec<(ApiResource, Value)> = vec![];
            objects.push((
                groups_r.clone(),
                group("administrators", json!({ "template": "Administrators" })),
            ));
            let pool = [
                p("Analytics", "Reports", "View"),
                p("Analytics", "DataExports", "Edit"),
                p("Search", "QueryPipelines", "Edit"),
                p("Content", "Sources", "View"),
                p("Organization", "Activities", "View"),
                p("Analytics", "Dimensions", "Edit"),
                p("Search", "ExecuteQueries", "Allowed"),
                p("Content", "Fields", "Edit"),
            ];
            for i in 0..n_groups {
                let privileges: Vec<Value> = (0..4)
                    .map(|k| pool[(i + k * 3) % pool.len()].clone())
                    .collect();
                let mut dedup = privileges.clone();
                dedup.sort_by_key(|v| v.to_string());
                dedup.dedup();
                objects.push((
                    groups_r.clone(),
                    group(&format!("group-{i}"), json!({ "privileges": dedup })),
                ));
            }
            objects.push((members_r.clone(), member("alice", &["administrators"])));
            for i in 0..n_members {
                let gs = [
                    format!("group-{}", i % n_groups.max(1)),
                    format!("group-{}", (i * 7) % n_groups.max(1)),
                ];
                let mut m = member(&format!("user-{i}"), &[gs[0].as_str(), gs[1].as_str()]);
                m["spec"]["groups"] = json!(gs.iter().collect::<std::collections::BTreeSet<_>>());
                objects.push((members_r.clone(), m));
            }
            futures::stream::iter(objects)
                .map(|(r, v)| {
                    let api = api(&r);
                    async move { api.create(&PostParams::default(), &mk(v)).await.map(|_| ()) }
                })
                .buffer_unordered(16)
                .for_each(|r| async { r.unwrap() })
                .await;
        }
    };
    let started = Instant::now();
    tokio::join!(seed(t.ns.clone()), seed(plain_ns.clone()));
    t.wait_cached("the seed", |s| {
        s.groups.len() == n_groups + 1 && s.members.len() == n_members + 1
    })
    .await;
    eprintln!(
        "seeded two organizations of {n_groups} groups and {n_members} members in {:.1?}",
        started.elapsed()
    );

    let alice = support::client_as("alice").await;
    let create = |ns: &str, name: String| {
        let api = Api::<DynamicObject>::namespaced_with(alice.clone(), ns, &groups_r);
        let obj = serde_json::from_value::<DynamicObject>(group(
            &name,
            json!({ "privileges": [p("Analytics", "Reports", "View")] }),
        ))
        .unwrap();
        async move {
            let start = Instant::now();
            api.create(&PostParams::default(), &obj).await.unwrap();
            start.elapsed()
        }
    };
    // Warm up both paths (connections, apiserver caches).
    for i in 0..20 {
        create(&t.ns, format!("warm-{i}")).await;
        create(&plain_ns, format!("warm-{i}")).await;
    }
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for i in 0..n_creates {
        with.push(create(&t.ns, format!("bench-{i}")).await);
        without.push(create(&plain_ns, format!("bench-{i}")).await);
    }
    with.sort();
    without.sort();
    let q = |v: &[Duration], f: f64| v[((v.len() as f64 * f) as usize).min(v.len() - 1)];
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
    eprintln!("creates of a Group by a member, {n_creates} each, alternating:");
    for (what, v) in [("with the webhook", &with), ("without", &without)] {
        eprintln!(
            "  {what:<17} p50 {:>8.2?}  p99 {:>8.2?}  mean {:>8.2?}",
            q(v, 0.5),
            q(v, 0.99),
            mean(v)
        );
    }
    eprintln!(
        "  added            p50 {:>8.2?}  p99 {:>8.2?}  mean {:>8.2?}",
        q(&with, 0.5).saturating_sub(q(&without, 0.5)),
        q(&with, 0.99).saturating_sub(q(&without, 0.99)),
        mean(&with).saturating_sub(mean(&without)),
    );
    t.stop().await;
}
