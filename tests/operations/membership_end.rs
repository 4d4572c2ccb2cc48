//! A time-bound membership ends at its instant everywhere at once, through
//! the real apiserver (docs/time-bound-membership.md): the operator binary
//! (controller, webhook and decision service in one process, its clock moved
//! 30 days ahead, as the key-expiry tests move it) serves a namespace where
//! alice's membership of `editors` ends a few seconds after the test starts.
//! Before the end: her status counts it (and warns of its end), admission
//! lets her act with its privileges, `/v1/check` says yes, and she cannot
//! extend it herself, nor keep it through a second Member of her own. After: status (Member and Group), admission and
//! `/v1/check` all say she holds nothing through it, with no object changed.

use std::process::Output;
use std::time::Duration;

use kube::api::Api;
use orgaccess::api::{Group, Member};
use serde_json::json;

use crate::clocked::{Clocked, alice_edits_editors, editors_of, warnings};
use crate::operator::{apply, eventually};
use crate::support::{self, ADMIN};

const WAIT: Duration = Duration::from_secs(60);
/// The operator's clock is this far ahead of the test's.
const OFFSET_SECS: i64 = 30 * 24 * 3600;
/// The end comes this long (of real time) after alice's Member is applied:
/// long enough to look at everything before it.
const BEFORE_END_SECS: i64 = 40;
const LABEL: &str = "orgaccess.dev/membership-end-test";

/// alice creates (dry run) a second Member acting as her, in `editors` with
/// no end: keeping by another path what her membership gives until its end.
async fn alice_keeps_editors_through_a_second_member(ns: &str) -> Output {
    let member = json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Member",
        "metadata": {"name": "alice-forever"},
        "spec": {"identity": {"provider": "Email", "username": "alice@example.com"},
                 "accepted": true, "groups": ["editors"],
                 "subjects": [{"kind": "User", "name": "alice"}]},
    })
    .to_string();
    support::kubectl_stdin(
        "alice",
        &["create", "-n", ns, "-f", "-", "--dry-run=server"],
        Some(&member),
    )
    .await
}

fn condition(m: &Member, type_: &str) -> Option<(String, String)> {
    m.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.message.clone()))
}

#[tokio::test]
async fn a_membership_ends_at_its_instant_in_status_admission_and_checks() {
    let client = support::admin_client().await;
    crate::operator::install_crds().await;
    let op = Clocked::start(&client, "membership-end", OFFSET_SECS, LABEL).await;
    let ns = op.ns.clone();

    let manifests = "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {name: o}\nspec: {displayName: O}\n---\n\
        apiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {name: editors}\nspec:\n  privileges:\n\
        \x20   - {service: Content, domain: Sources, level: Edit}\n\
        \x20   - {service: Organization, domain: Groups, level: Edit}\n\
        \x20   - {service: Organization, domain: Activities, level: View}\n\
        \x20   - {service: Organization, domain: Organization, level: View}\n";
    apply(ADMIN, &ns, manifests).await;
    // The end, on the operator's clock: BEFORE_END_SECS of real time from now.
    let end =
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(OFFSET_SECS + BEFORE_END_SECS);
    let end = end.round(jiff::Unit::Second).unwrap();
    apply(
        ADMIN,
        &ns,
        &format!(
            "apiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata: {{name: alice}}\nspec:\n\
             \x20 identity: {{provider: Email, username: alice@example.com}}\n  accepted: true\n\
             \x20 groups: [editors]\n  groupUntil: {{editors: \"{end}\"}}\n\
             \x20 subjects: [{{kind: User, name: alice}}]\n"
        ),
    )
    .await;
    let members: Api<Member> = Api::namespaced(client.clone(), &ns);
    let groups: Api<Group> = Api::namespaced(client.clone(), &ns);

    // Before the end: counted, and warned of (it ends within 7 days).
    let before = eventually("alice's membership counted, with its end", WAIT, || async {
        let m = members.get("alice").await.ok()?;
        let e = editors_of(&m)?;
        (e.active && e.ends_at.is_some()).then_some(m)
    })
    .await;
    let e = editors_of(&before).unwrap();
    assert_eq!(
        e.ends_at
            .as_deref()
            .map(|t| t.parse::<jiff::Timestamp>().unwrap()),
        Some(end)
    );
    assert!(!e.ended);
    let (status, message) = condition(&before, "MembershipEnding").expect("the condition");
    assert_eq!(status, "True", "{message}");
    assert!(message.contains("editors"), "{message}");
    eventually("a MembershipEnding Warning", WAIT, || async {
        let w = warnings(&client, &ns, "MembershipEnding", "alice").await;
        (!w.is_empty()).then_some(())
    })
    .await;
    let group = eventually("editors lists alice", WAIT, || async {
        let g = groups.get("editors").await.ok()?;
        g.status
            .as_ref()?
            .members
            .contains(&"alice".to_string())
            .then_some(g)
    })
    .await;
    assert!(group.status.is_some());
    let yes = eventually("/v1/check answers", WAIT, || async {
        op.check("alice", "edit", "Content/Sources").await
    })
    .await;
    assert_eq!(yes["allowed"], true, "{yes}");
    let out = alice_edits_editors(&ns).await;
    support::assert_success("alice edits a group while she holds Groups Edit", &out);
    let out = alice_keeps_editors_through_a_second_member(&ns).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "alice kept editors for good");
    assert!(
        stderr.contains("NoEscalation") && stderr.contains("membership with an end"),
        "{stderr}"
    );

    // She cannot extend her own membership, though she holds all it grants.
    let out = support::kubectl(
        "alice",
        &[
            "patch",
            "member",
            "alice",
            "-n",
            &ns,
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/spec/groupUntil"}]"#,
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "alice extended her own membership");
    assert!(
        stderr.contains("NoEscalation") && stderr.contains("own membership"),
        "{stderr}"
    );
    let kept = members.get("alice").await.unwrap();
    assert_eq!(
        kept.spec.group_until.get("editors").map(String::as_str),
        Some(end.to_string().as_str()),
        "the end is unchanged"
    );

    // The end passes: nothing is changed, and every surface says so.
    let resource_version = kept.metadata.resource_version.clone();
    let now_on_operator = || jiff::Timestamp::now() + jiff::SignedDuration::from_secs(OFFSET_SECS);
    let wait = end.duration_since(now_on_operator()).as_secs().max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let no = eventually("/v1/check refuses at the end", WAIT, || async {
        let a = op.check("alice", "edit", "Content/Sources").await?;
        (a["allowed"] == false).then_some(a)
    })
    .await;
    assert!(
        no["reason"]
            .as_str()
            .is_some_and(|r| r.contains("memberships have ended")),
        "{no}"
    );
    let out = alice_edits_editors(&ns).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("RequiredPrivileges"),
        "admission still counts the ended membership: {stderr}"
    );
    let after = eventually("alice's status: ended", WAIT, || async {
        let m = members.get("alice").await.ok()?;
        let e = editors_of(&m)?;
        (e.ended && !e.active).then_some(m)
    })
    .await;
    assert_eq!(after.status.as_ref().unwrap().privilege_count, 0);
    assert_eq!(
        after.metadata.generation, kept.metadata.generation,
        "the spec did not change"
    );
    assert!(resource_version.is_some());
    eventually("editors no longer lists alice", WAIT, || async {
        let g = groups.get("editors").await.ok()?;
        (!g.status?.members.contains(&"alice".to_string())).then_some(())
    })
    .await;
    eventually("a MembershipEnded Warning", WAIT, || async {
        let w = warnings(&client, &ns, "MembershipEnded", "alice").await;
        (!w.is_empty()).then_some(())
    })
    .await;

    op.unregister(&client).await;
}
