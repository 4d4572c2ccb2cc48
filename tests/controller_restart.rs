//! Crash and time: killing the operator mid-convergence and starting it again
//! reaches the same final state; invitations and keys expire. The operator
//! here runs with its clock 40 days ahead, so expiry needs no waiting.

mod operator;
mod support;

use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use orgaccess::api::{self, ApiKey, ApiKeyPhase, Group, Member, Organization};
use orgaccess::core::effective::{MemberPhase, member_effective, resolve_grantees};
use orgaccess::core::model::MemberDef;

use operator::{Operator, apply, apply_examples, eventually, settled};

const FORTY_DAYS: i64 = 40 * 24 * 3600;

/// A generated organization: `groups` groups over the catalog, `members` members in 3 groups each.
fn big_org(groups: usize, members: usize) -> String {
    let domains = orgaccess::core::catalog::CATALOG;
    let mut y = String::from(
        "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {name: big}\nspec:\n  displayName: Big\n  resources: {sources: [s0, s1, s2, s3]}\n",
    );
    for g in 0..groups {
        let _ = write!(
            y,
            "---\napiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {{name: g{g}}}\nspec:\n  privileges:\n"
        );
        for k in 0..6 {
            let d = &domains[(g * 7 + k * 11) % domains.len()];
            let o = d.offers;
            let level = if o.allowed {
                "Allowed"
            } else if o.push {
                "Push"
            } else if o.edit && (g + k) % 2 == 0 {
                "Edit"
            } else {
                "View"
            };
            let _ = writeln!(
                y,
                "    - {{service: {}, domain: {}, level: {level}}}",
                d.service, d.name
            );
        }
    }
    for m in 0..members {
        let gs: Vec<String> = (0..3)
            .map(|i| format!("g{}", (m * 5 + i * 3) % groups))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let _ = write!(
            y,
            "---\napiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata: {{name: m{m}}}\nspec:\n  identity: {{provider: Email, username: m{m}@big.example}}\n  accepted: true\n  groups: [{}]\n",
            gs.join(", ")
        );
    }
    y
}

#[tokio::test]
async fn a_killed_operator_restarts_and_reaches_the_same_final_state() {
    let client = support::admin_client().await;
    operator::install_crds().await;
    let ns = support::fresh_namespace(&client).await;
    apply(support::ADMIN, &ns, &big_org(40, 300)).await;

    let mut first = Operator::start_in("restart-a", FORTY_DAYS, Some(&ns));
    // Kill it while it is converging: some members have status, not all.
    let members: Api<Member> = Api::namespaced(client.clone(), &ns);
    eventually("some member statuses", Duration::from_secs(60), || async {
        let n = members
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .iter()
            .filter(|m| m.status.is_some())
            .count();
        (n > 0).then_some(())
    })
    .await;
    first.kill();
    let partial = members
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|m| m.status.is_some())
        .count();

    let _second = Operator::start_in("restart-a", FORTY_DAYS, Some(&ns));
    settled(&client, &ns).await;

    // The final state is exactly what the engine computes from the objects.
    let orgs = Api::<Organization>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let groups = Api::<Group>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let all = members.list(&ListParams::default()).await.unwrap().items;
    let keys = Api::<ApiKey>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let state = api::org_state(&ns, &orgs, &groups, &all, &keys);
    let grantees = resolve_grantees(&state);
    let now = jiff::Timestamp::now()
        .saturating_add(jiff::SignedDuration::from_secs(FORTY_DAYS))
        .unwrap();
    assert_eq!(all.len(), 300);
    for m in &all {
        let expected = member_effective(&state, &grantees, &MemberDef::from(m), now);
        let status = m
            .status
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no status", m.metadata.name.as_deref().unwrap()));
        let got: Vec<_> = status
            .privileges
            .iter()
            .map(|p| p.privilege.clone())
            .collect();
        assert_eq!(
            got,
            expected.privileges.to_specs(),
            "member {}",
            m.metadata.name.as_deref().unwrap()
        );
        assert_eq!(status.phase, Some(MemberPhase::Active));
    }
    eprintln!("killed after {partial}/300 member statuses; converged after restart");
}

#[tokio::test]
async fn expired_invitations_hold_nothing_and_keys_expire() {
    let client = support::admin_client().await;
    operator::install_crds().await;
    let ns = support::fresh_namespace(&client).await;
    apply_examples(&ns).await;
    apply(
        support::ADMIN,
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: short-lived}\nspec:\n  displayName: Short lived\n  template: AuthenticatedSearch\n  lifetime: P30D\n",
    )
    .await;
    let _op = Operator::start_in("expiry", FORTY_DAYS, Some(&ns));
    settled(&client, &ns).await;

    // vendor-dev never accepted: 40 days on, the invitation has expired.
    let members: Api<Member> = Api::namespaced(client.clone(), &ns);
    let vendor = members.get("vendor-dev").await.unwrap().status.unwrap();
    assert_eq!(vendor.phase, Some(MemberPhase::Expired));
    assert!(vendor.privileges.is_empty());
    assert!(vendor.groups.iter().all(|g| !g.active));
    // Accepted members are unaffected by invitation expiry.
    assert_eq!(
        members
            .get("john-smith")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase,
        Some(MemberPhase::Active)
    );
    let org = Api::<Organization>::namespaced(client.clone(), &ns)
        .get("acme")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(org.expired_members, 1);

    // A 30-day key is expired; the 90-day one is not.
    let keys: Api<ApiKey> = Api::namespaced(client.clone(), &ns);
    assert_eq!(
        keys.get("short-lived").await.unwrap().status.unwrap().phase,
        Some(ApiKeyPhase::Expired)
    );
    assert_eq!(
        keys.get("public-search")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase,
        Some(ApiKeyPhase::Active)
    );
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.iter().any(|r| r == "KeyExpired"), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r == "InvitationExpired"),
        "{reasons:?}"
    );
}
