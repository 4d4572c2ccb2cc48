//! Crash and time: killing the operator mid-convergence and starting it again
//! reaches the same final state; invitations and keys expire. The operator
//! here runs with its clock 40 days ahead, so expiry needs no waiting.

use crate::operator;
use crate::support;

use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use orgaccess::api::{self, ApiKey, ApiKeyPhase, Group, Member, Organization};
use orgaccess::controller::fingerprint;
use orgaccess::core::effective::{MemberPhase, member_effective, resolve_grantees};
use orgaccess::core::model::MemberDef;
use serde_json::json;

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
        "apiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: short-lived}\nspec:\n  displayName: Short lived\n  template: AuthenticatedSearch\n  lifetime: P30D\n---\napiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: fifty-days}\nspec:\n  displayName: Fifty days\n  lifetime: P50D\n",
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
    // An expired key's Secret holds no usable value, and says why.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let blank = secrets.get("short-lived-apikey").await.unwrap();
    assert!(
        blank
            .data
            .unwrap_or_default()
            .values()
            .all(|v| v.0.is_empty())
    );
    assert_eq!(
        blank.metadata.annotations.unwrap()["orgaccess.dev/no-value"],
        "Expired"
    );
    // Ten days left of fifty: soon to expire (14 days by default).
    let soon = keys.get("fifty-days").await.unwrap().status.unwrap();
    assert_eq!(soon.phase, Some(ApiKeyPhase::Active));
    let cond = soon
        .conditions
        .iter()
        .find(|c| c.type_ == "ExpiringSoon")
        .unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("True", "ExpiringSoon")
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
        reasons.iter().any(|r| r == "KeyExpiringSoon"),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r == "InvitationExpired"),
        "{reasons:?}"
    );
}

async fn secret_values(secrets: &Api<Secret>, name: &str) -> (Vec<u8>, Vec<u8>, Option<String>) {
    let s = secrets.get(name).await.unwrap();
    let data = s.data.unwrap_or_default();
    let get = |k: &str| data.get(k).map(|b| b.0.clone()).unwrap_or_default();
    (
        get("apiKey"),
        get("previousApiKey"),
        s.metadata.resource_version,
    )
}

/// Issue 12, idempotent rotation: the operator's status write is refused
/// (a ValidatingAdmissionPolicy), then the operator is killed and another
/// replica takes over. The Secret, which records the generation it holds,
/// gets exactly one new value and the previous one survives throughout.
#[tokio::test]
async fn a_rotation_whose_status_write_fails_converges_to_one_new_value_across_a_crash() {
    let client = support::admin_client().await;
    operator::install_crds().await;
    let ns = support::fresh_namespace(&client).await;
    apply(
        support::ADMIN,
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: k}\nspec:\n  displayName: K\n  lifetime: P60D\n",
    )
    .await;
    let mut first = Operator::start_in("rotation-a", 0, Some(&ns));
    let keys: Api<ApiKey> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    eventually("k's value", Duration::from_secs(60), || async {
        keys.get("k").await.ok()?.status?.hash
    })
    .await;
    let (v0, _, _) = secret_values(&secrets, "k-apikey").await;

    // Refuse every status write of ApiKeys in this namespace.
    let name = format!("deny-status-{ns}");
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": ["orgaccess.dev"], "apiVersions": ["*"],
                "resources": ["apikeys/status"], "operations": ["UPDATE"]}]},
            "validations": [{"expression": "false", "message": "test: status writes refused"}],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}},
    });
    for obj in [&policy, &binding] {
        let out = support::kubectl_stdin(
            support::ADMIN,
            &["apply", "-f", "-"],
            Some(&obj.to_string()),
        )
        .await;
        support::assert_success("applying the deny policy", &out);
    }
    eventually("the deny policy", Duration::from_secs(30), || async {
        let out = support::kubectl(
            support::OPERATOR_USER,
            &[
                "patch",
                "-n",
                &ns,
                "apikey",
                "k",
                "--subresource=status",
                "--type=merge",
                "--dry-run=server",
                "-p",
                r#"{"status":{"rotatedAt":"x"}}"#,
            ],
        )
        .await;
        String::from_utf8_lossy(&out.stderr)
            .contains("test: status writes refused")
            .then_some(())
    })
    .await;

    keys.patch(
        "k",
        &PatchParams::default(),
        &Patch::Merge(
            &json!({"spec": {"rotation": {"generation": 1, "previousKeyValidity": "P10D"}}}),
        ),
    )
    .await
    .unwrap();
    eventually(
        "the rotation in the Secret",
        Duration::from_secs(60),
        || async {
            let s = secrets.get("k-apikey").await.ok()?;
            (s.metadata
                .annotations?
                .get("orgaccess.dev/rotation-generation")?
                == "1")
                .then_some(())
        },
    )
    .await;
    let (v1, prev, rv) = secret_values(&secrets, "k-apikey").await;
    assert_ne!(v1, v0);
    assert_eq!(prev, v0, "the previous value is kept");
    // The status write keeps failing and the reconcile is retried: the
    // Secret does not move.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        secret_values(&secrets, "k-apikey").await,
        (v1.clone(), v0.clone(), rv.clone())
    );
    assert!(
        first.logs().contains("test: status writes refused"),
        "the status write was not refused"
    );
    assert_ne!(
        keys.get("k")
            .await
            .unwrap()
            .status
            .unwrap()
            .rotation_generation,
        Some(1),
        "status was written despite the policy"
    );

    // Crash; another replica takes the lease (after it expires); the policy goes.
    first.kill();
    let second = Operator::start_in("rotation-b", 0, Some(&ns));
    for kind in [
        "validatingadmissionpolicybinding",
        "validatingadmissionpolicy",
    ] {
        let _ = support::kubectl(support::ADMIN, &["delete", kind, &name]).await;
    }
    let st = eventually(
        "the status after the crash",
        Duration::from_secs(90),
        || async {
            let st = keys.get("k").await.ok()?.status?;
            (st.rotation_generation == Some(1) && st.phase == Some(ApiKeyPhase::Rotating))
                .then_some(st)
        },
    )
    .await;
    assert_eq!(st.hash.as_deref(), Some(fingerprint(&v1).1.as_str()));
    assert_eq!(
        st.previous_prefix.as_deref(),
        Some(fingerprint(&v0).0.as_str())
    );
    assert_eq!(
        secret_values(&secrets, "k-apikey").await,
        (v1.clone(), v0.clone(), rv)
    );
    // No value anywhere but the Secret.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let all = serde_json::to_string(&events.list(&ListParams::default()).await.unwrap().items)
        .unwrap()
        + &serde_json::to_string(&st).unwrap()
        + &first.logs()
        + &second.logs();
    for v in [&v0, &v1] {
        assert!(
            !all.contains(String::from_utf8_lossy(v).as_ref()),
            "a key value leaked"
        );
    }
}

/// Issue 12: disabling a key removes its value; enabling it again gives a new
/// one (never the old); once expired, nothing brings a value back.
#[tokio::test]
async fn disabled_and_expired_keys_hold_no_usable_value() {
    let client = support::admin_client().await;
    operator::install_crds().await;
    let ns = support::fresh_namespace(&client).await;
    apply(
        support::ADMIN,
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: k}\nspec:\n  displayName: K\n  lifetime: P30D\n",
    )
    .await;
    let mut now = Operator::start_in("lifecycle-now", 0, Some(&ns));
    let keys: Api<ApiKey> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    eventually("k's value", Duration::from_secs(60), || async {
        keys.get("k").await.ok()?.status?.hash
    })
    .await;
    let (v0, _, _) = secret_values(&secrets, "k-apikey").await;
    let set_enabled = |on: bool| {
        let keys = keys.clone();
        async move {
            keys.patch(
                "k",
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"enabled": on}})),
            )
            .await
            .unwrap();
        }
    };
    set_enabled(false).await;
    let st = eventually("disabled", Duration::from_secs(60), || async {
        let st = keys.get("k").await.ok()?.status?;
        (st.phase == Some(ApiKeyPhase::Disabled) && st.hash.is_none()).then_some(st)
    })
    .await;
    assert!(st.prefix.is_none());
    let s = secrets.get("k-apikey").await.unwrap();
    assert!(s.data.unwrap_or_default().values().all(|v| v.0.is_empty()));
    assert_eq!(
        s.metadata.annotations.unwrap()["orgaccess.dev/no-value"],
        "Disabled"
    );
    set_enabled(true).await;
    let hash = eventually("enabled again", Duration::from_secs(60), || async {
        let st = keys.get("k").await.ok()?.status?;
        (st.phase == Some(ApiKeyPhase::Active)).then_some(st.hash?)
    })
    .await;
    let (v1, prev, _) = secret_values(&secrets, "k-apikey").await;
    assert_ne!(v1, v0, "re-enabling gives a new value");
    assert!(prev.is_empty());
    assert_eq!(hash, fingerprint(&v1).1);
    now.kill();

    // 40 days on, the 30-day key has expired: its value goes, for good.
    let later = Operator::start_in("lifecycle-later", FORTY_DAYS, Some(&ns));
    eventually("expired", Duration::from_secs(90), || async {
        let st = keys.get("k").await.ok()?.status?;
        (st.phase == Some(ApiKeyPhase::Expired) && st.hash.is_none()).then_some(())
    })
    .await;
    let s = secrets.get("k-apikey").await.unwrap();
    assert!(s.data.unwrap_or_default().values().all(|v| v.0.is_empty()));
    let notes = s.metadata.annotations.unwrap();
    assert_eq!(notes["orgaccess.dev/no-value"], "Expired");
    assert!(notes["orgaccess.dev/no-value-message"].contains("create a new ApiKey"));
    // Rotating or toggling does not revive it.
    keys.patch(
        "k",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"enabled": false, "rotation": {"generation": 3}}})),
    )
    .await
    .unwrap();
    set_enabled(true).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = keys.get("k").await.unwrap().status.unwrap();
    assert_eq!(st.phase, Some(ApiKeyPhase::Expired));
    assert!(st.hash.is_none());
    let (v, p, _) = secret_values(&secrets, "k-apikey").await;
    assert!(v.is_empty() && p.is_empty());
    let logs = later.logs();
    for v in [&v0, &v1] {
        assert!(!logs.contains(String::from_utf8_lossy(v).as_ref()));
    }
}
