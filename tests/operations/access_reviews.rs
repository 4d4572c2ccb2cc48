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

use kube::api::Api;
use orgaccess::api::{Group, Member};
use orgaccess::core::review::Standing;
use serde_json::json;

use crate::clocked::{Clocked, alice_edits_editors, editors_of, patch_editors, warnings};
use crate::operator::{apply, eventually};
use crate::support::{self, ADMIN};

const WAIT: Duration = Duration::from_secs(60);
/// A review is overdue this long (of real time) after it is recorded.
const BEFORE_OVERDUE_SECS: i64 = 60;
/// The operator's clock is this far ahead of the test's.
const OFFSET_SECS: i64 = 30 * 24 * 3600 - BEFORE_OVERDUE_SECS;
const LABEL: &str = "orgaccess.dev/access-review-test";

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

fn refused(what: &str, out: &Output, rule: &str, words: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: admitted");
    assert!(
        stderr.contains(rule) && stderr.contains(words),
        "{what}: {stderr}"
    );
}

fn reviewed(g: &Group) -> Option<(String, String)> {
    g.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "AccessReviewed")
        .map(|c| (c.status.clone(), c.reason.clone()))
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
    let op = Clocked::start(&client, "access-reviews", OFFSET_SECS, LABEL).await;
    let ns = op.ns.clone();

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
    let admin = op.operator.admin_addr().await;
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
        op.check("alice", "edit", "Content/Sources").await
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
        let a = op.check("alice", "edit", "Content/Sources").await?;
        (a["allowed"] == false).then_some(a)
    })
    .await;
    assert!(
        no["reason"]
            .as_str()
            .is_some_and(|r| r.contains("suspended")),
        "{no}"
    );
    let bob = op.check("bob", "edit", "Content/Sources").await.unwrap();
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
            (!warnings(&client, &ns, "AccessReviewOverdue", "editors")
                .await
                .is_empty()
                && !warnings(&client, &ns, "MembershipSuspended", "alice")
                    .await
                    .is_empty())
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
        let a = op.check("alice", "edit", "Content/Sources").await?;
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
        let a = op.check("alice", "edit", "Content/Sources").await?;
        (a["allowed"] == false).then_some(())
    })
    .await;
    let out = create_as("carol", &ns, &review("q2", &["alice", "bob"]), false).await;
    support::assert_success("carol confirms alice", &out);
    eventually("alice restored everywhere", WAIT, || async {
        let a = op.check("alice", "edit", "Content/Sources").await?;
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

    op.unregister(&client).await;
}
