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

/// A Member's conditions are one atomic list (docs/performance.md, "what a
/// status write costs"): the operator's managedFields entry names the list,
/// not each condition's each field, and the status carries every condition.
#[tokio::test]
async fn a_member_status_write_owns_its_conditions_as_one_field() {
    let (client, ns) = setup().await;
    apply_examples(&ns).await;
    converge(&client, &ns).await;
    let john = member(&client, &ns, "john-smith").await;
    let types: Vec<&str> = john
        .status
        .as_ref()
        .expect("status")
        .conditions
        .iter()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "Ready",
            "ResolvedRefs",
            "Reconciling",
            "Stalled",
            "ConsoleAccess",
            "MembershipEnding"
        ]
    );
    let entries = john.metadata.managed_fields.as_deref().unwrap_or_default();
    let ours = entries
        .iter()
        .find(|e| {
            e.manager.as_deref() == Some("orgaccess-controller")
                && e.subresource.as_deref() == Some("status")
        })
        .unwrap_or_else(|| panic!("no status entry of the operator: {entries:#?}"));
    let fields = &ours.fields_v1.as_ref().expect("fieldsV1").0;
    assert_eq!(
        fields["f:status"]["f:conditions"],
        json!({}),
        "the conditions are owned whole: {fields}"
    );
    assert!(fields["f:status"]["f:privileges"].is_object(), "{fields}");
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
    assert_eq!(
        rs.previous_hash,
        Some(fingerprint(&value).1),
        "the previous value's digest is in status for the decision service"
    );
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

    // Each says so once as a Warning Event on the object (kubectl events).
    apply(
        support::ADMIN,
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {name: g}\nspec:\n  access:\n    - {group: auditors, level: View}\n",
    )
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let warned = |all: &[Event], kind: &str, name: &str, reason: &str| {
        all.iter()
            .filter(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some(reason)
                    && e.involved_object.kind.as_deref() == Some(kind)
                    && e.involved_object.name.as_deref() == Some(name)
            })
            .map(|e| e.message.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let all = eventually("Warning events for both", WAIT, || async {
        let all = events.list(&ListParams::default()).await.ok()?.items;
        (!warned(&all, "Member", "m", "GroupNotFound").is_empty()
            && !warned(&all, "Group", "g", "ReferenceNotFound").is_empty())
        .then_some(all)
    })
    .await;
    assert!(warned(&all, "Member", "m", "GroupNotFound")[0].contains("nope"));
    assert!(warned(&all, "Group", "g", "ReferenceNotFound")[0].contains("group auditors"));
}

/// Seed 002: Organization/Organization: View is what opening the
/// administration console needs. A member whose groups lack it gets
/// `ConsoleAccess=False` (reason `MissingOrganizationView`), stays Ready and
/// keeps its privileges; a member of Users (which grants it) gets True.
#[tokio::test]
async fn a_member_without_organization_view_cannot_open_the_console() {
    let (client, ns) = setup().await;
    apply(support::ADMIN, &ns, "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {name: o}\nspec: {displayName: O}\n").await;
    apply(
        support::ADMIN,
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {name: api-only}\nspec:\n  privileges:\n    - {service: Search, domain: ExecuteQueries, level: Allowed}\n",
    )
    .await;
    for (name, group) in [("no-console", "api-only"), ("console", "users")] {
        apply(
            support::ADMIN,
            &ns,
            &format!("apiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata: {{name: {name}}}\nspec:\n  identity: {{provider: Email, username: {name}@x.example}}\n  groups: [{group}]\n  accepted: true\n"),
        )
        .await;
    }
    let condition = |m: &Member, t: &str| {
        m.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == t).cloned())
    };
    let without = eventually("no-console's status", WAIT, || async {
        let m = member(&client, &ns, "no-console").await;
        (m.status.as_ref()?.privilege_count == 1).then_some(m)
    })
    .await;
    let c = condition(&without, "ConsoleAccess").expect("a ConsoleAccess condition");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "MissingOrganizationView")
    );
    assert!(
        c.message.contains("Organization/Organization: View"),
        "{}",
        c.message
    );
    let ready = condition(&without, "Ready").unwrap();
    assert_eq!(
        ready.status, "True",
        "lacking console access is not a failure"
    );
    let st = without.status.unwrap();
    assert_eq!(
        st.privileges[0].privilege.domain, "ExecuteQueries",
        "privileges still listed"
    );

    let with = eventually("console's status", WAIT, || async {
        let m = member(&client, &ns, "console").await;
        (m.status.as_ref()?.privilege_count > 0).then_some(m)
    })
    .await;
    let c = condition(&with, "ConsoleAccess").expect("a ConsoleAccess condition");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "OrganizationViewGranted")
    );
}

/// A repeated Event is counted, not repeated (events.k8s.io/v1 series, as
/// kube's and client-go's recorders do): a member's privileges moved twice
/// within minutes is one `PrivilegesChanged` Event whose series counts 2,
/// written by the apiserver as the operator patched it.
#[tokio::test]
async fn a_repeated_event_is_counted_in_its_series() {
    use k8s_openapi::api::events::v1::Event as NewEvent;
    let (client, ns) = setup().await;
    apply(support::ADMIN, &ns, "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {name: o}\nspec: {displayName: O}\n").await;
    let group = |domains: &[&str]| {
        let privileges: String = domains
            .iter()
            .map(|d| {
                let level = if ["ExpressionValidation", "ReplayAnyQuery"].contains(d) {
                    "View"
                } else {
                    "Allowed"
                };
                format!("    - {{service: Search, domain: {d}, level: {level}}}\n")
            })
            .collect();
        format!(
            "apiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {{name: g}}\nspec:\n  privileges:\n{privileges}"
        )
    };
    apply(support::ADMIN, &ns, &group(&["ExecuteQueries"])).await;
    // The group in the operator's index before the member comes (its status
    // written): the member's first status then holds the group's privilege
    // already, rather than none and an Event for the change to one, which
    // would be the series' first note.
    let groups: Api<Group> = Api::namespaced(client.clone(), &ns);
    eventually("the group's status", WAIT, || async {
        let g = groups.get("g").await.ok()?;
        g.status?.observed_generation.map(|_| ())
    })
    .await;
    apply(
        support::ADMIN,
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata: {name: m}\nspec:\n  identity: {provider: Email, username: m@x.example}\n  groups: [g]\n  accepted: true\n",
    )
    .await;
    let domains = [
        "ExecuteQueries",
        "AuthenticationEditor",
        "ExpressionValidation",
    ];
    for n in 1..=domains.len() {
        apply(support::ADMIN, &ns, &group(&domains[..n])).await;
        eventually("the member's privileges", WAIT, || async {
            let m = member(&client, &ns, "m").await;
            (m.status.as_ref()?.privilege_count == n as u32).then_some(())
        })
        .await;
    }
    let events: Api<NewEvent> = Api::namespaced(client.clone(), &ns);
    let changed = eventually("one PrivilegesChanged Event counting 2", WAIT, || async {
        let all = events.list(&ListParams::default()).await.ok()?.items;
        let changed: Vec<NewEvent> = all
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some("PrivilegesChanged")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("m")
            })
            .collect();
        changed
            .iter()
            .any(|e| e.series.as_ref().is_some_and(|s| s.count == 2))
            .then_some(changed)
    })
    .await;
    assert_eq!(changed.len(), 1, "{changed:#?}");
    let e = &changed[0];
    assert_eq!(e.type_.as_deref(), Some("Normal"));
    assert_eq!(e.action.as_deref(), Some("Reconcile"));
    assert_eq!(
        e.regarding.as_ref().and_then(|r| r.kind.as_deref()),
        Some("Member")
    );
    assert!(
        e.note.as_deref().is_some_and(|n| n.contains("2 domains")),
        "the first Event's note stays: {:?}",
        e.note
    );
    assert!(e.series.as_ref().unwrap().last_observed_time.0 >= e.event_time.as_ref().unwrap().0);

    // Deleted (by someone, or the apiserver's event TTL), the next repeat
    // starts a new Event.
    let first = e.metadata.name.clone().unwrap();
    events.delete(&first, &Default::default()).await.unwrap();
    let more = [
        "ExecuteQueries",
        "AuthenticationEditor",
        "ExpressionValidation",
        "ReplayAnyQuery",
    ];
    apply(support::ADMIN, &ns, &group(&more)).await;
    eventually("the member's privileges", WAIT, || async {
        let m = member(&client, &ns, "m").await;
        (m.status.as_ref()?.privilege_count == more.len() as u32).then_some(())
    })
    .await;
    let fresh = eventually("a new PrivilegesChanged Event", WAIT, || async {
        let all = events.list(&ListParams::default()).await.ok()?.items;
        all.into_iter().find(|e| {
            e.reason.as_deref() == Some("PrivilegesChanged")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("m")
        })
    })
    .await;
    assert_ne!(fresh.metadata.name.as_deref(), Some(first.as_str()));
    assert!(fresh.series.is_none(), "{fresh:#?}");
    assert!(
        fresh
            .note
            .as_deref()
            .is_some_and(|n| n.contains("4 domains")),
        "{:?}",
        fresh.note
    );
}

/// Built-in groups are seeded once per organization: deleting one, then
/// deleting and re-creating the Organization (or resetting its status record)
/// does not bring it back (a pending member holds nothing).
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

/// The Events of a namespace, as one JSON string (to search for values).
async fn events_json(client: &kube::Client, ns: &str) -> String {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    serde_json::to_string(&events.list(&ListParams::default()).await.unwrap().items).unwrap()
}

/// Asserts that nothing derived from `value` (the value, its prefix or its
/// hash) is in `text`.
#[track_caller]
fn assert_no_trace(what: &str, text: &str, value: &[u8]) {
    let (prefix, hash) = fingerprint(value);
    let v = String::from_utf8_lossy(value);
    for (name, needle) in [("value", v.as_ref()), ("prefix", &prefix), ("hash", &hash)] {
        assert!(
            !text.contains(needle),
            "the foreign {name} appears in {what}"
        );
    }
}

/// Issue 12, ownership: a tenant's ApiKey next to an unrelated Secret under
/// the derived name never reads, reports or changes that Secret; a key
/// re-created after `--cascade=orphan` does not adopt the old value.
#[tokio::test]
async fn api_key_never_adopts_a_secret_it_does_not_control() {
    let (client, ns) = setup().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let foreign_value = b"sk_live_another_apps_secret_value_0123456789";
    let foreign: Secret = serde_json::from_value(json!({
        "metadata": {"name": "legacy-apikey"},
        "stringData": {"apiKey": String::from_utf8_lossy(foreign_value)},
    }))
    .unwrap();
    let before = secrets.create(&Default::default(), &foreign).await.unwrap();
    // alice, a tenant, creates `ApiKey legacy` and asks for a rotation too.
    apply(
        "alice",
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: legacy}\nspec:\n  displayName: Legacy\n  lifetime: P30D\n  rotation: {generation: 1}\n",
    )
    .await;
    let keys: Api<ApiKey> = Api::namespaced(client.clone(), &ns);
    let key = eventually("SecretConflict", WAIT, || async {
        let k = keys.get("legacy").await.ok()?;
        let ready = k
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")?
            .clone();
        (ready.status == "False" && ready.reason == "SecretConflict").then_some(k)
    })
    .await;
    let st = key.status.clone().unwrap();
    assert!(st.prefix.is_none() && st.hash.is_none() && st.previous_prefix.is_none());
    assert_no_trace(
        "status",
        &serde_json::to_string(&key).unwrap(),
        foreign_value,
    );
    let events = eventually("a SecretConflict event", WAIT, || async {
        let all = events_json(&client, &ns).await;
        all.contains("SecretConflict").then_some(all)
    })
    .await;
    assert!(events.contains("\"Warning\""), "{events}");
    assert_no_trace("events", &events, foreign_value);
    // Nudge a reconcile, then check the Secret is exactly as it was.
    keys.patch(
        "legacy",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"description": "nudge"}})),
    )
    .await
    .unwrap();
    eventually("observed", WAIT, || async {
        let k = keys.get("legacy").await.ok()?;
        (k.status?.observed_generation == k.metadata.generation).then_some(())
    })
    .await;
    let after = secrets.get("legacy-apikey").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(after.data, before.data);
    assert!(after.metadata.owner_references.is_none());

    // `kubectl delete apikey k --cascade=orphan`, with the garbage
    // collector's part played by hand (none runs here): the dependents lose
    // their owner reference, then the `orphan` finalizer goes.
    apply(
        "alice",
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: k}\nspec:\n  displayName: K\n  lifetime: P30D\n",
    )
    .await;
    let first = eventually("k's value", WAIT, || async {
        keys.get("k").await.ok()?.status?.hash
    })
    .await;
    let old_value = secrets.get("k-apikey").await.unwrap().data.unwrap()["apiKey"]
        .0
        .clone();
    assert_eq!(fingerprint(&old_value).1, first);
    let out = support::kubectl(
        "alice",
        &[
            "delete",
            "-n",
            &ns,
            "apikey",
            "k",
            "--cascade=orphan",
            "--wait=false",
        ],
    )
    .await;
    support::assert_success("orphaning k's Secret", &out);
    secrets
        .patch(
            "k-apikey",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"ownerReferences": null}})),
        )
        .await
        .unwrap();
    keys.patch(
        "k",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("k gone", WAIT, || async {
        keys.get_opt("k").await.ok()?.is_none().then_some(())
    })
    .await;
    let old = secrets.get("k-apikey").await.unwrap();
    apply(
        "alice",
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: k}\nspec:\n  displayName: K again\n  lifetime: P30D\n",
    )
    .await;
    let again = eventually("the new k's conflict", WAIT, || async {
        let k = keys.get("k").await.ok()?;
        k.status
            .as_ref()?
            .conditions
            .iter()
            .any(|c| c.reason == "SecretConflict")
            .then_some(k)
    })
    .await;
    assert_no_trace(
        "the new key's status",
        &serde_json::to_string(&again).unwrap(),
        &old_value,
    );
    let still = secrets.get("k-apikey").await.unwrap();
    assert_eq!(
        still.metadata.resource_version,
        old.metadata.resource_version
    );
    // Removing the orphan gives the new key a value of its own.
    secrets
        .delete("k-apikey", &Default::default())
        .await
        .unwrap();
    keys.patch(
        "k",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"description": "nudge"}})),
    )
    .await
    .unwrap();
    let fresh = eventually("the new k's own value", WAIT, || async {
        keys.get("k").await.ok()?.status?.hash
    })
    .await;
    assert_ne!(fresh, first);
    let logs = OPERATOR.get().unwrap().lock().unwrap().logs();
    assert_no_trace("the operator's logs", &logs, foreign_value);
    assert!(!logs.contains(String::from_utf8_lossy(&old_value).as_ref()));
}

/// Issue 12, status only from the operator: with the shipped status policy
/// (deploy/webhook/status-admission-policy.yaml) bound to this namespace, a
/// tenant's status patch is refused by the apiserver and the operator's
/// status writes still go through.
#[tokio::test]
async fn status_is_written_only_by_the_operator() {
    let (client, ns) = setup().await;
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(include_str!(
        "../deploy/webhook/status-admission-policy.yaml"
    ))
    .unwrap();
    let name = format!("orgaccess-status-{ns}");
    let (mut policy, mut binding) = (docs[0].clone(), docs[1].clone());
    policy["metadata"]["name"] = json!(name);
    binding["metadata"]["name"] = json!(name);
    binding["spec"]["policyName"] = json!(name);
    binding["spec"]["matchResources"] = json!({
        "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ns } }
    });
    for obj in [&policy, &binding] {
        let out = support::kubectl_stdin(
            support::ADMIN,
            &["apply", "-f", "-"],
            Some(&obj.to_string()),
        )
        .await;
        support::assert_success("applying the status policy", &out);
    }
    apply(
        "alice",
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: k}\nspec:\n  displayName: K\n  template: AnonymousSearch\n",
    )
    .await;
    let keys: Api<ApiKey> = Api::namespaced(client.clone(), &ns);
    eventually("k's status", WAIT, || async {
        keys.get("k").await.ok()?.status?.hash
    })
    .await;
    let forged = json!({"status": {"expiresAt": "2099-01-01T00:00:00Z", "createdAt": "2099-01-01T00:00:00Z"}})
        .to_string();
    let patch_status = |who: &'static str| {
        let ns = ns.clone();
        let forged = forged.clone();
        async move {
            support::kubectl(
                who,
                &[
                    "patch",
                    "-n",
                    &ns,
                    "apikey",
                    "k",
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    &forged,
                    // Server-side dry run: judged by the admission policy,
                    // never stored, so a forgery that lands before the
                    // policy takes effect cannot linger in the status read below.
                    "--dry-run=server",
                ],
            )
            .await
        }
    };
    // The policy takes effect asynchronously.
    let err = eventually("the status policy", WAIT, || async {
        let out = patch_status("alice").await;
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (!out.status.success() && err.contains("written only by the orgaccess operator"))
            .then_some(err)
    })
    .await;
    assert!(
        err.contains(&format!("ValidatingAdmissionPolicy '{name}'")),
        "{err}"
    );
    // The other kinds too: alice has RBAC on their status, the policy refuses.
    apply(
        "alice",
        &ns,
        "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {name: o}\nspec: {displayName: O}\n",
    )
    .await;
    let out = support::kubectl(
        "alice",
        &[
            "patch",
            "-n",
            &ns,
            "organization",
            "o",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"seededBuiltinGroups":[]}}"#,
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("written only by the orgaccess operator")
    );
    // Expiry comes from metadata.creationTimestamp, never from status: the
    // operator puts it back.
    let k = keys.get("k").await.unwrap();
    let created = k.metadata.creation_timestamp.clone().unwrap().0;
    let expires: jiff::Timestamp = k.status.unwrap().expires_at.unwrap().parse().unwrap();
    assert_eq!(
        expires,
        created
            .saturating_add(jiff::SignedDuration::from_hours(24 * 90))
            .unwrap()
    );
    // The operator still writes status (a spec change is reported).
    keys.patch(
        "k",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"description": "changed"}})),
    )
    .await
    .unwrap();
    eventually("the operator's status write", WAIT, || async {
        let k = keys.get("k").await.ok()?;
        (k.status?.observed_generation == k.metadata.generation).then_some(())
    })
    .await;
    for obj in [
        ("validatingadmissionpolicybinding", &name),
        ("validatingadmissionpolicy", &name),
    ] {
        let _ = support::kubectl(support::ADMIN, &["delete", obj.0, obj.1]).await;
    }
}
