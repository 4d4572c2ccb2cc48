//! The controller against the real control plane: the operator binary runs as
//! its own identity, objects are applied with kubectl, status is read back.

mod operator;
mod support;

use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use orgaccess::api::{ApiKey, ApiKeyPhase, Group, Member, Organization};
use orgaccess::controller::fingerprint;
use orgaccess::core::effective::MemberPhase;
use serde_json::json;

use operator::{
    Operator, apply, apply_examples, converged, eventually, resource_versions, settled,
};

const WAIT: Duration = Duration::from_secs(60);

/// One operator for this test binary, started after the CRDs are installed.
static OPERATOR: OnceLock<std::sync::Mutex<Operator>> = OnceLock::new();

async fn setup() -> (kube::Client, String) {
    let client = support::admin_client().await;
    if OPERATOR.get().is_none() {
        operator::install_crds().await;
        let _ = OPERATOR.set(std::sync::Mutex::new(Operator::start(
            "controller-tests",
            0,
        )));
    }
    let ns = support::fresh_namespace(&client).await;
    (client, ns)
}

async fn member(client: &kube::Client, ns: &str, name: &str) -> Member {
    Api::<Member>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .expect("member")
}

/// `service/domain: level` lines of a member's status, e.g. `Analytics/Dimensions: Edit`.
fn levels(m: &Member) -> Vec<String> {
    m.status
        .as_ref()
        .map(|s| {
            s.privileges
                .iter()
                .map(|p| {
                    format!(
                        "{}/{}: {:?}",
                        p.privilege.service, p.privilege.domain, p.privilege.level
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn converge(client: &kube::Client, ns: &str) {
    eventually("convergence", WAIT, || async {
        converged(client, ns).await.then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_seed_organization_converges_to_the_expected_privileges() {
    let (client, ns) = setup().await;
    apply_examples(&ns).await;
    // The operator seeds the six built-in groups.
    let groups: Api<Group> = Api::namespaced(client.clone(), &ns);
    eventually("built-in groups", WAIT, || async {
        let n = groups
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .iter()
            .filter(|g| g.spec.built_in.is_some())
            .count();
        (n == 6).then_some(())
    })
    .await;
    eventually("john-smith's status", WAIT, || async {
        let m = member(&client, &ns, "john-smith").await;
        levels(&m)
            .iter()
            .any(|l| l == "Analytics/Impersonate: Allowed")
            .then_some(())
    })
    .await;
    converge(&client, &ns).await;

    // Seed 002's conflict table, exactly.
    let john = member(&client, &ns, "john-smith").await;
    let got = levels(&john);
    for want in [
        "Analytics/Administrate: Allowed",
        "Analytics/DataExports: Edit",
        "Analytics/Dimensions: Edit",
        "Analytics/Impersonate: Allowed",
        "Analytics/NamedFilters: View",
    ] {
        assert!(
            got.contains(&want.to_string()),
            "john-smith lacks {want}: {got:#?}"
        );
    }
    let status = john.status.as_ref().unwrap();
    assert_eq!(status.phase, Some(MemberPhase::Active));
    let dims = status
        .privileges
        .iter()
        .find(|p| p.privilege.domain == "Dimensions")
        .unwrap();
    assert_eq!(
        dims.granted_by,
        ["limited-administrators"],
        "provenance of Dimensions: Edit"
    );
    let imp = status
        .privileges
        .iter()
        .find(|p| p.privilege.domain == "Impersonate")
        .unwrap();
    assert_eq!(imp.granted_by, ["analytics-viewers"]);

    // Seed 002's per-source administrators: Ada edits Confluence and Jira, views the rest.
    let ada = member(&client, &ns, "ada-atlassian").await;
    let sources = ada
        .status
        .as_ref()
        .unwrap()
        .privileges
        .iter()
        .find(|p| p.privilege.domain == "Sources")
        .unwrap();
    let per: Vec<String> = sources
        .privilege
        .resources
        .iter()
        .map(|r| format!("{} {:?}", r.name, r.level))
        .collect();
    assert_eq!(
        per,
        ["confluence Edit", "jira Edit", "web View", "youtube View"]
    );

    // Seed 000's integrator: Full access except Groups.
    let integrator = groups.get("sitecore-integrator").await.unwrap();
    let st = integrator.status.unwrap();
    assert!(
        st.privileges.iter().all(|p| p.domain != "Groups"),
        "integrator must have no access to Groups"
    );
    assert_eq!(
        st.privilege_count as usize,
        orgaccess::core::catalog::CATALOG.len() - 1
    );
    // Its invited member has not accepted: pending, no privileges.
    let vendor = member(&client, &ns, "vendor-dev").await;
    assert_eq!(
        vendor.status.as_ref().unwrap().phase,
        Some(MemberPhase::Pending)
    );
    assert!(vendor.status.unwrap().privileges.is_empty());

    // The organization's summary names who holds Administrators.
    let org = Api::<Organization>::namespaced(client.clone(), &ns)
        .get("acme")
        .await
        .unwrap();
    let os = org.status.unwrap();
    assert_eq!(os.administrators, ["olivia-owner"]);
    assert_eq!(
        (os.groups, os.members, os.api_keys, os.pending_members),
        (10, 4, 1, 1)
    );
}

#[tokio::test]
async fn editing_a_group_changes_its_members_and_no_one_else() {
    let (client, ns) = setup().await;
    apply_examples(&ns).await;
    converge(&client, &ns).await;
    eventually("john-smith has Dimensions Edit", WAIT, || async {
        levels(&member(&client, &ns, "john-smith").await)
            .contains(&"Analytics/Dimensions: Edit".to_string())
            .then_some(())
    })
    .await;
    let before = settled(&client, &ns).await;

    // Limited Administrators loses Administrate: only john-smith is in it.
    let groups: Api<Group> = Api::namespaced(client.clone(), &ns);
    let patch = json!({"spec": {"privileges": [
        {"service": "Analytics", "domain": "DataExports", "level": "Edit"},
        {"service": "Analytics", "domain": "Dimensions", "level": "Edit"},
        {"service": "Analytics", "domain": "NamedFilters", "level": "View"}
    ]}});
    groups
        .patch(
            "limited-administrators",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    eventually("john-smith loses Administrate", WAIT, || async {
        (!levels(&member(&client, &ns, "john-smith").await)
            .contains(&"Analytics/Administrate: Allowed".to_string()))
        .then_some(())
    })
    .await;
    converge(&client, &ns).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = resource_versions(&client, &ns).await;
    let changed: Vec<&String> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, _)| &b.0)
        .collect();
    // The group itself (spec and status), its one member, and the organization
    // summary are the only writes; no other member is touched.
    for name in &changed {
        assert!(
            ["groups/limited-administrators", "members/john-smith"].contains(&name.as_str()),
            "unexpected write to {name}; changed: {changed:?}"
        );
    }
    assert!(changed.iter().any(|n| *n == "members/john-smith"));

    // Removing john-smith from the group removes its privileges.
    let members: Api<Member> = Api::namespaced(client.clone(), &ns);
    members
        .patch(
            "john-smith",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"groups": ["analytics-viewers"]}})),
        )
        .await
        .unwrap();
    eventually("john-smith loses Dimensions Edit", WAIT, || async {
        let l = levels(&member(&client, &ns, "john-smith").await);
        (l.contains(&"Analytics/Dimensions: View".to_string())
            && !l.iter().any(|x| x.contains("DataExports: Edit")))
        .then_some(())
    })
    .await;
    // And the group's status no longer lists them.
    eventually("group member list", WAIT, || async {
        let g = groups.get("limited-administrators").await.ok()?;
        (g.status?.member_count == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn after_convergence_an_idle_period_writes_nothing() {
    let (client, ns) = setup().await;
    apply_examples(&ns).await;
    let before = settled(&client, &ns).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        before,
        resource_versions(&client, &ns).await,
        "objects were rewritten while idle"
    );
}

#[tokio::test]
async fn api_key_secret_is_created_once_and_its_value_never_leaks() {
    let (client, ns) = setup().await;
    apply_examples(&ns).await;
    let keys: Api<ApiKey> = Api::namespaced(client.clone(), &ns);
    let key = eventually("API key status", WAIT, || async {
        let k = keys.get("public-search").await.ok()?;
        k.status.as_ref()?.hash.is_some().then_some(k)
    })
    .await;
    let st = key.status.clone().unwrap();
    assert_eq!(st.phase, Some(ApiKeyPhase::Active));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = secrets.get("public-search-apikey").await.unwrap();
    let value = secret.data.as_ref().unwrap()["apiKey"].0.clone();
    let value_str = String::from_utf8(value.clone()).unwrap();
    assert!(value_str.len() > 32);
    // Status holds a prefix and the hash, never the value.
    assert_eq!(
        (st.prefix.clone().unwrap(), st.hash.clone().unwrap()),
        fingerprint(&value)
    );
    assert!(!serde_json::to_string(&key).unwrap().contains(&value_str));
    // Owned by the ApiKey (garbage collection removes it with the key).
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ApiKey", "public-search", Some(true))
    );
    // Created once: a change to the key does not replace the value.
    keys.patch(
        "public-search",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"description": "changed"}})),
    )
    .await
    .unwrap();
    converge(&client, &ns).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = secrets.get("public-search-apikey").await.unwrap();
    assert_eq!(again.metadata.uid, secret.metadata.uid);
    assert_eq!(again.data.as_ref().unwrap()["apiKey"].0, value);

    // Rotation: a new value; the previous one stays valid at most 30 days.
    let rotate = json!({"spec": {"rotation": {"generation": 1, "previousKeyValidity": "P90D"}}});
    keys.patch(
        "public-search",
        &PatchParams::default(),
        &Patch::Merge(&rotate),
    )
    .await
    .unwrap();
    let rotated = eventually("rotation", WAIT, || async {
        let k = keys.get("public-search").await.ok()?;
        (k.status.as_ref()?.phase == Some(ApiKeyPhase::Rotating)).then_some(k)
    })
    .await;
    let rs = rotated.status.unwrap();
    let secret = secrets.get("public-search-apikey").await.unwrap();
    let data = secret.data.unwrap();
    assert_eq!(
        data["previousApiKey"].0, value,
        "the previous value is kept during rotation"
    );
    assert_ne!(data["apiKey"].0, value, "rotation generates a new value");
    assert_eq!(rs.hash.unwrap(), fingerprint(&data["apiKey"].0).1);
    let until: jiff::Timestamp = rs.previous_expires_at.unwrap().parse().unwrap();
    let max = jiff::Timestamp::now()
        .saturating_add(jiff::SignedDuration::from_hours(24 * 30))
        .unwrap();
    assert!(
        until <= max,
        "previous value valid until {until}, beyond 30 days"
    );

    // Values never appear in events or in the operator's logs.
    let new_value = String::from_utf8(data["apiKey"].0.clone()).unwrap();
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let all =
        serde_json::to_string(&events.list(&ListParams::default()).await.unwrap().items).unwrap();
    assert!(
        all.contains("KeyRotated"),
        "rotation is recorded as an event"
    );
    let logs = OPERATOR.get().unwrap().lock().unwrap().logs();
    for v in [&value_str, &new_value] {
        assert!(!all.contains(v.as_str()), "a key value appears in events");
        assert!(
            !logs.contains(v.as_str()),
            "a key value appears in the operator's logs"
        );
    }
}

#[tokio::test]
async fn members_and_groups_report_missing_references_without_failing() {
    let (client, ns) = setup().await;
    apply(support::ADMIN, &ns, "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {name: o}\nspec: {displayName: O}\n").await;
    apply(
        support::ADMIN,
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata: {name: m}\nspec:\n  identity: {provider: Email, username: m@x.example}\n  groups: [nope]\n  accepted: true\n",
    )
    .await;
    let m = eventually("member status", WAIT, || async {
        let m = member(&client, &ns, "m").await;
        m.status.as_ref()?.phase?;
        Some(m)
    })
    .await;
    let refs = m
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "ResolvedRefs")
        .unwrap();
    assert_eq!(
        (refs.status.as_str(), refs.reason.as_str()),
        ("False", "GroupNotFound")
    );
    assert!(refs.message.contains("nope"));
}

/// Built-in groups are seeded once per organization: deleting one, then
/// deleting and re-creating the Organization (or resetting its status record)
/// does not bring it back (DOMAIN §2, issue 10).
#[tokio::test]
async fn deleted_builtin_groups_stay_deleted_across_organization_re_creation() {
    let (client, ns) = setup().await;
    let org = "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {name: acme}\nspec: {displayName: Acme}\n";
    apply(support::ADMIN, &ns, org).await;
    let groups: Api<Group> = Api::namespaced(client.clone(), &ns);
    let names = || async {
        let mut n: Vec<String> = groups
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|g| g.metadata.name)
            .collect();
        n.sort();
        n
    };
    eventually("the six built-in groups", WAIT, || async {
        (names().await.len() == 6).then_some(())
    })
    .await;
    groups
        .delete("analytics-viewers", &Default::default())
        .await
        .unwrap();
    let orgs: Api<Organization> = Api::namespaced(client.clone(), &ns);
    // A status writer clears the record, then the Organization is re-created.
    orgs.patch_status(
        "acme",
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": { "seededBuiltinGroups": [] } })),
    )
    .await
    .unwrap();
    orgs.delete("acme", &Default::default()).await.unwrap();
    eventually("the Organization gone", WAIT, || async {
        orgs.get_opt("acme").await.unwrap().is_none().then_some(())
    })
    .await;
    apply(support::ADMIN, &ns, org).await;
    eventually("the re-created Organization ready", WAIT, || async {
        let o = orgs.get("acme").await.ok()?;
        let ready = o
            .status?
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(())
    })
    .await;
    // One more resync window for a wrong re-seed to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now = names().await;
    assert_eq!(now.len(), 5, "groups after re-creation: {now:?}");
    assert!(!now.contains(&"analytics-viewers".to_string()), "{now:?}");
}
