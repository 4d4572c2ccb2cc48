//! Access reviews through the real apiserver (docs/access-reviews.md): the
//! operator binary (controller, webhook and decision service in one
//! process) serves a namespace whose Organization suspends the memberships
//! an overdue review did not confirm. Its clock runs 30 days less
//! `BEFORE_OVERDUE_SECS` ahead of the test's, so a review recorded now is
//! overdue (cadence P30D, no grace) that many seconds of real time later.
//!
//! `editors` (owned by carol, who holds everything it holds through `leads`)
//! has members alice and bob; carol records a review confirming bob only.
//! Before it is overdue: alice acts with the group's privileges, the Group
//! says Due. Tenants try their steps: alice (a member with Groups Edit, no
//! owner) records a review of it, makes herself an owner and then confirms
//! herself, lengthens the cadence; dave (no Edit on it) makes himself an
//! owner; all refused but the ownership alice may give herself, which
//! gains her nothing. At the overdue instant, with no object changed,
//! alice's membership is suspended in Member and Group status, in admission
//! (her edit is refused) and in `/v1/check`; bob, confirmed, keeps it.
//! Report restores her and leaves the condition Overdue; back to Suspend
//! and a review by carol confirming her restores her.

use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use orgaccess::api::{Group, Member};
use orgaccess::core::review::Standing;
use orgaccess::webhook::{self, Endpoint};
use serde_json::{Value, json};

use crate::operator::{Operator, apply, eventually};
use crate::support::{self, ADMIN, org::wait_until_called, plane};

const WAIT: Duration = Duration::from_secs(60);
/// A review is overdue this long (of real time) after it is recorded.
const BEFORE_OVERDUE_SECS: i64 = 60;
/// The operator's clock is this far ahead of the test's.
const OFFSET_SECS: i64 = 30 * 24 * 3600 - BEFORE_OVERDUE_SECS;
const LABEL: &str = "orgaccess.dev/access-review-test";

fn operator(ns: &str, webhook: u16, decision: u16, certs: &std::path::Path) -> Operator {
    let cert = certs.join("tls.crt").display().to_string();
    let key = certs.join("tls.key").display().to_string();
    let ca = plane().webhook_client_ca_file().display().to_string();
    Operator::start_with(
        &format!("access-reviews-{ns}"),
        OFFSET_SECS,
        Some(ns),
        &[
            "--webhook-addr",
            &format!("127.0.0.1:{webhook}"),
            "--webhook-cert-file",
            &cert,
            "--webhook-key-file",
            &key,
            "--webhook-client-ca-file",
            &ca,
            "--decision-addr",
            &format!("127.0.0.1:{decision}"),
            "--decision-cert-file",
            &cert,
            "--decision-key-file",
            &key,
            "--decision-client-ca-file",
            &ca,
            "--decision-allow",
            &format!("checker={ns}"),
        ],
    )
}

/// Registers the operator's webhook (both halves) for the namespace;
/// returns the configurations' name.
async fn register(client: &kube::Client, ns: &str, port: u16) -> String {
    let name = format!("orgaccess-review-{ns}");
    let selector = LabelSelector {
        match_labels: Some([(LABEL.to_string(), name.clone())].into()),
        match_expressions: None,
    };
    let endpoint = Endpoint::Url(format!("https://127.0.0.1:{port}/validate"));
    let ca = plane().ca_pem().as_bytes();
    let vwc = webhook::webhook_configuration(&name, &endpoint, ca, Some(selector.clone()));
    let mwc = webhook::mutating_webhook_configuration(&name, &endpoint, ca, Some(selector));
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &mwc)
        .await
        .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &vwc)
        .await
        .unwrap();
    Api::<Namespace>::all(client.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { LABEL: name } } })),
        )
        .await
        .unwrap();
    name
}

/// `/v1/check`: may member `name` edit Content/Sources? `None` while the
/// listener is not up.
async fn check(port: u16, ns: &str, name: &str) -> Option<Value> {
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let root = reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .identity(support::webhook::client_identity("checker"))
        .build()
        .unwrap();
    client
        .post(format!("https://127.0.0.1:{port}/v1/check"))
        .json(&json!({
            "namespace": ns, "principal": {"member": name},
            "verb": "edit", "target": "Content/Sources",
        }))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// An AccessReview of `editors` named `name`, confirming `confirmed`.
fn review(name: &str, confirmed: &[&str]) -> String {
    json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "AccessReview",
        "metadata": {"name": name},
        "spec": {"group": "editors", "confirmed": confirmed, "note": "quarterly review"},
    })
    .to_string()
}

async fn create_as(identity: &str, ns: &str, manifest: &str, dry_run: bool) -> Output {
    let mut args = vec!["create", "-n", ns, "-f", "-"];
    if dry_run {
        args.push("--dry-run=server");
    }
    support::kubectl_stdin(identity, &args, Some(manifest)).await
}

async fn patch_editors(identity: &str, ns: &str, patch: &str, dry_run: bool) -> Output {
    let mut args = vec![
        "patch",
        "group",
        "editors",
        "-n",
        ns,
        "--type=merge",
        "-p",
        patch,
    ];
    if dry_run {
        args.push("--dry-run=server");
    }
    support::kubectl(identity, &args).await
}

/// alice renames `editors` (dry run): admitted only while she holds Groups
/// Edit, through `editors` itself.
async fn alice_edits_editors(ns: &str) -> Output {
    patch_editors(
        "alice",
        ns,
        r#"{"spec":{"displayName":"Editors (renamed)"}}"#,
        true,
    )
    .await
}

fn refused(what: &str, out: &Output, rule: &str, words: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: admitted");
    assert!(
        stderr.contains(rule) && stderr.contains(words),
        "{what}: {stderr}"
    );
}

fn editors_of(m: &Member) -> Option<orgaccess::api::MembershipStatus> {
    m.status
        .as_ref()?
        .groups
        .iter()
        .find(|g| g.group == "editors")
        .cloned()
}

fn reviewed(g: &Group) -> Option<(String, String)> {
    g.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "AccessReviewed")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

async fn warnings(client: &kube::Client, ns: &str, reason: &str, object: &str) -> usize {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some(reason)
                && e.involved_object.name.as_deref() == Some(object)
        })
        .count()
}

fn organization(when: &str) -> String {
    format!(
        "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {{name: o}}\n\
         spec: {{displayName: O, accessReviews: {{whenOverdue: {when}}}}}\n"
    )
}

fn member(name: &str, groups: &str) -> String {
    format!(
        "apiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata: {{name: {name}}}\nspec:\n\
         \x20 identity: {{provider: Email, username: {name}@example.com}}\n  accepted: true\n\
         \x20 groups: [{groups}]\n  subjects: [{{kind: User, name: {name}}}]\n"
    )
}

#[tokio::test]
async fn an_overdue_review_suspends_unconfirmed_members_everywhere_at_once() {
    let client = support::admin_client().await;
    crate::operator::install_crds().await;
    let ns = support::fresh_namespace(&client).await;
    let certs = tempfile::tempdir().unwrap();
    let serving = plane().issue_serving_cert(&["127.0.0.1"]).unwrap();
    std::fs::write(certs.path().join("tls.crt"), &serving.cert_pem).unwrap();
    std::fs::write(certs.path().join("tls.key"), &serving.key_pem).unwrap();
    let (webhook_port, decision_port) = (support::free_port(), support::free_port());
    let op = operator(&ns, webhook_port, decision_port, certs.path());
    let config = register(&client, &ns, webhook_port).await;
    wait_until_called(&ns).await;

    // What editors holds, leads holds too (with Edit on every group).
    let privileges = "  privileges:\n\
        \x20   - {service: Content, domain: Sources, level: Edit}\n\
        \x20   - {service: Organization, domain: Groups, level: Edit}\n\
        \x20   - {service: Organization, domain: Activities, level: View}\n\
        \x20   - {service: Organization, domain: Organization, level: View}\n";
    apply(ADMIN, &ns, &organization("Suspend")).await;
    apply(
        ADMIN,
        &ns,
        &format!(
            "apiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {{name: editors}}\nspec:\n\
             \x20 owners: [carol]\n  reviewEvery: P30D\n{privileges}---\n\
             apiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {{name: leads}}\nspec:\n{privileges}---\n\
             apiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {{name: viewers}}\nspec:\n  privileges:\n\
             \x20   - {{service: Organization, domain: Organization, level: View}}\n"
        ),
    )
    .await;
    for (name, groups) in [
        ("alice", "editors"),
        ("bob", "editors"),
        ("carol", "leads"),
        ("dave", "viewers"),
    ] {
        apply(ADMIN, &ns, &member(name, groups)).await;
    }
    let members: Api<Member> = Api::namespaced(client.clone(), &ns);
    let groups: Api<Group> = Api::namespaced(client.clone(), &ns);
    eventually("alice and bob in editors", WAIT, || async {
        let g = groups.get("editors").await.ok()?;
        let m = &g.status?.members;
        (m.contains(&"alice".into()) && m.contains(&"bob".into())).then_some(())
    })
    .await;

    // carol, an owner, records the review: bob confirmed, alice not.
    let out = create_as("carol", &ns, &review("q1", &["bob"]), false).await;
    support::assert_success("carol records a review", &out);
    let recorded = jiff::Timestamp::now();
    let g = eventually("editors reports its review", WAIT, || async {
        let g = groups.get("editors").await.ok()?;
        (g.status.as_ref()?.last_review.as_ref()?.name == "q1").then_some(g)
    })
    .await;
    let status = g.status.clone().unwrap();
    assert_eq!(status.review_standing, Some(Standing::Due));
    let admin = op.admin_addr().await;
    let gauge = |standing: &'static str| async move {
        let body = support::metrics::scrape(admin).await;
        support::metrics::sample(
            &body,
            &format!("orgaccess_access_reviews{{standing=\"{standing}\"}}"),
        )
    };
    eventually("the gauge counts editors as due", WAIT, || async {
        (gauge("due").await == Some(1.0) && gauge("overdue").await == Some(0.0)).then_some(())
    })
    .await;
    assert_eq!(reviewed(&g), Some(("False".into(), "Due".into())));
    assert!(status.next_review_due.is_some());
    assert!(status.members.contains(&"alice".to_string()));

    // Before it is overdue: alice acts with the group's privileges.
    let yes = eventually("/v1/check answers", WAIT, || async {
        check(decision_port, &ns, "alice").await
    })
    .await;
    assert_eq!(yes["allowed"], true, "{yes}");
    support::assert_success(
        "alice edits a group with editors' Groups Edit",
        &alice_edits_editors(&ns).await,
    );

    // The tenants' steps.
    refused(
        "alice, no owner, records a review of her own group",
        &create_as("alice", &ns, &review("mine", &["alice", "bob"]), false).await,
        "ReviewedByOwner",
        "not an owner",
    );
    refused(
        "dave, who cannot edit editors, makes himself an owner",
        &patch_editors(
            "dave",
            &ns,
            r#"{"spec":{"owners":["carol","dave"]}}"#,
            false,
        )
        .await,
        "RequiredPrivileges",
        "editors",
    );
    refused(
        "alice lengthens the cadence of her own group",
        &patch_editors("alice", &ns, r#"{"spec":{"reviewEvery":"P365D"}}"#, false).await,
        "NoEscalation",
        "own membership",
    );
    // alice edits editors (Groups Edit): she may make herself an owner, and
    // gains nothing by it: she cannot confirm herself.
    support::assert_success(
        "alice makes herself an owner",
        &patch_editors(
            "alice",
            &ns,
            r#"{"spec":{"owners":["carol","alice"]}}"#,
            false,
        )
        .await,
    );
    eventually("the webhook sees alice as an owner", WAIT, || async {
        let out = create_as("alice", &ns, &review("mine", &["alice", "bob"]), true).await;
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (!stderr.contains("ReviewedByOwner")).then_some(())
    })
    .await;
    refused(
        "alice, now an owner, confirms herself",
        &create_as("alice", &ns, &review("mine", &["alice", "bob"]), false).await,
        "NoEscalation",
        "own membership",
    );
    let alice_before = members.get("alice").await.unwrap();

    // The overdue instant passes: nothing changes but the clock.
    let overdue = recorded + jiff::SignedDuration::from_secs(BEFORE_OVERDUE_SECS + 1);
    let wait = overdue
        .duration_since(jiff::Timestamp::now())
        .as_secs()
        .max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let no = eventually("/v1/check refuses alice once overdue", WAIT, || async {
        let a = check(decision_port, &ns, "alice").await?;
        (a["allowed"] == false).then_some(a)
    })
    .await;
    assert!(
        no["reason"]
            .as_str()
            .is_some_and(|r| r.contains("suspended")),
        "{no}"
    );
    let bob = check(decision_port, &ns, "bob").await.unwrap();
    assert_eq!(bob["allowed"], true, "bob was confirmed: {bob}");
    refused(
        "alice edits a group once her membership is suspended",
        &alice_edits_editors(&ns).await,
        "RequiredPrivileges",
        "Groups",
    );
    let alice = eventually("alice's status: suspended", WAIT, || async {
        let m = members.get("alice").await.ok()?;
        let e = editors_of(&m)?;
        (e.suspended && !e.active).then_some(m)
    })
    .await;
    let s = alice.status.as_ref().unwrap();
    assert_eq!((s.privilege_count, s.suspended_memberships), (0, 1));
    assert_eq!(
        alice.metadata.generation, alice_before.metadata.generation,
        "the Member did not change"
    );
    let g = eventually("editors: overdue, without alice", WAIT, || async {
        let g = groups.get("editors").await.ok()?;
        let s = g.status.as_ref()?;
        (s.review_standing == Some(Standing::Overdue) && !s.members.contains(&"alice".into()))
            .then_some(g)
    })
    .await;
    let s = g.status.as_ref().unwrap();
    assert!(s.members.contains(&"bob".to_string()), "{:?}", s.members);
    assert_eq!(s.suspended_members, 1);
    assert_eq!(reviewed(&g), Some(("False".into(), "Overdue".into())));
    let bob = members.get("bob").await.unwrap();
    assert!(editors_of(&bob).is_some_and(|e| e.active && !e.suspended));
    eventually(
        "Warnings: the review overdue, alice suspended",
        WAIT,
        || async {
            (warnings(&client, &ns, "AccessReviewOverdue", "editors").await > 0
                && warnings(&client, &ns, "MembershipSuspended", "alice").await > 0)
                .then_some(())
        },
    )
    .await;
    eventually("the gauge counts editors as overdue", WAIT, || async {
        (gauge("overdue").await == Some(1.0) && gauge("due").await == Some(0.0)).then_some(())
    })
    .await;

    // Report only: the condition stays, alice counts again.
    apply(ADMIN, &ns, &organization("Report")).await;
    eventually("with Report, alice counts again", WAIT, || async {
        let a = check(decision_port, &ns, "alice").await?;
        let g = groups.get("editors").await.ok()?;
        let s = g.status.as_ref()?;
        (a["allowed"] == true
            && s.members.contains(&"alice".into())
            && s.review_standing == Some(Standing::Overdue))
        .then_some(())
    })
    .await;
    assert_eq!(
        reviewed(&groups.get("editors").await.unwrap()),
        Some(("False".into(), "Overdue".into()))
    );

    // Suspend again, and carol's review confirming alice restores her.
    apply(ADMIN, &ns, &organization("Suspend")).await;
    eventually("suspended again", WAIT, || async {
        let a = check(decision_port, &ns, "alice").await?;
        (a["allowed"] == false).then_some(())
    })
    .await;
    let out = create_as("carol", &ns, &review("q2", &["alice", "bob"]), false).await;
    support::assert_success("carol confirms alice", &out);
    eventually("alice restored everywhere", WAIT, || async {
        let a = check(decision_port, &ns, "alice").await?;
        let m = members.get("alice").await.ok()?;
        let e = editors_of(&m)?;
        (a["allowed"] == true && e.active && !e.suspended).then_some(())
    })
    .await;
    support::assert_success("alice edits a group again", &alice_edits_editors(&ns).await);
    // A review is a record: its spec does not change.
    let out = support::kubectl(
        "carol",
        &[
            "patch",
            "accessreview",
            "q2",
            "-n",
            &ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"confirmed":["alice"]}}"#,
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("record"),
        "a review's spec changed: {stderr}"
    );

    for api in [
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .delete(&config, &DeleteParams::default())
            .await
            .map(|_| ()),
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .delete(&config, &DeleteParams::default())
            .await
            .map(|_| ()),
    ] {
        api.unwrap();
    }
}
