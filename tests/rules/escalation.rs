//! Every escalation path of docs/security.md ("Every path to a privilege"), played through the
//! real apiserver as the attacking identity, with the webhook and the
//! admission policy installed as the chart installs them. Each attack asserts
//! the denial *and* that the attacker's effective privileges (computed from
//! what the apiserver stores) did not change.

use crate::support;

use orgaccess::core::privilege::PrivilegeSet;
use orgaccess_testenv::TESTERS_GROUP;
use serde_json::{Value, json};
use support::org::{
    TestWebhook, assert_denied, effective_of, group, install_admission_policy, member, priv_,
};
use support::{ADMIN, assert_success};

/// Kubernetes groups of the test users, as the apiserver authenticates them.
const TESTER_GROUPS: [&str; 2] = [TESTERS_GROUP, "system:authenticated"];

/// A member as a platform team would declare it, with any identity.
fn member_with(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Member",
        "metadata": { "name": name }, "spec": spec,
    })
}

struct Org {
    t: TestWebhook,
}

impl Org {
    /// The seed (alice administrator, bob with the four privileges including
    /// Groups Edit) plus:
    /// - `platform`: Full access, brought in by identity sets (an SSO group,
    ///   an OpenID domain, a Salesforce profile), editable through its access
    ///   list by `helpers`;
    /// - `viewers` (Analytics Viewers) and `helpers` (nothing of its own);
    /// - carol: the attacker, in viewers and helpers;
    /// - dan: an SSO member of platform (Kubernetes user dave);
    /// - erin: a member with no groups;
    /// - `org-editors` with Organization Edit, and frank... (dave is dan).
    async fn start() -> Org {
        let t = TestWebhook::start().await;
        install_admission_policy(&t.ns).await;
        t.seed().await;
        let admin_creates = [
            group(
                "platform",
                json!({
                    "template": "FullAccess",
                    "identitySets": [
                        { "ssoGroup": "platform-admins" },
                        { "openIdDomain": { "provider": "Google", "domain": "corp.example" } },
                        { "salesforceProfile": "System Administrator" },
                    ],
                    "access": [{ "group": "helpers", "level": "Edit" }],
                }),
            ),
            group("viewers", json!({ "template": "AnalyticsViewers" })),
            group("helpers", json!({})),
            member("carol", &["viewers", "helpers"]),
            member_with(
                "dan",
                json!({
                    "identity": { "provider": "SingleSignOn", "username": "dan" },
                    "ssoGroups": ["platform-admins"],
                    "subjects": [{ "kind": "User", "name": "dave" }],
                    "accepted": true,
                }),
            ),
            member("erin", &[]),
        ];
        for obj in &admin_creates {
            assert_success("seeding the attack scene", &t.create(ADMIN, obj).await);
        }
        t.wait_cached("the attack scene", |s| {
            s.members.contains_key("erin") && s.groups.contains_key("platform")
        })
        .await;
        Org { t }
    }

    async fn privileges(&self, user: &str) -> PrivilegeSet {
        effective_of(&self.t.ns, user, &TESTER_GROUPS).await
    }

    /// Runs an attack as `user`: it must be denied with each needle, and the
    /// attacker must hold exactly what they held before.
    async fn refused(
        &self,
        user: &str,
        what: &str,
        attack: impl std::future::Future<Output = std::process::Output>,
        needles: &[&str],
    ) {
        let before = self.privileges(user).await;
        let out = attack.await;
        assert_denied(what, &out, needles);
        let after = self.privileges(user).await;
        assert_eq!(
            before, after,
            "{what}: {user}'s effective privileges changed"
        );
    }
}

#[tokio::test]
async fn identity_claims_cannot_be_typed_by_a_tenant() {
    let o = Org::start().await;
    let t = &o.t;
    let carol = json!([{ "kind": "User", "name": "carol" }]);
    // A groupless Member claiming an SSO group that the platform group admits.
    let sso = member_with(
        "carol-sso",
        json!({
            "identity": { "provider": "SingleSignOn", "username": "carol" },
            "ssoGroups": ["platform-admins"], "subjects": carol, "accepted": true,
        }),
    );
    o.refused(
        "carol",
        "a tenant claims an SSO group on a new member",
        t.create("carol", &sso),
        &["[IdentityClaims] spec.ssoGroups", "identity-provider sync"],
    )
    .await;
    // The same with an OpenID domain the platform group admits.
    let google = member_with(
        "carol-google",
        json!({
            "identity": { "provider": "AnyListed", "username": "carol@corp.example" },
            "subjects": carol, "accepted": true,
        }),
    );
    o.refused(
        "carol",
        "a tenant creates a member matching an OpenID-domain identity set",
        t.create("carol", &google),
        &[
            "needs Organization/Groups: Edit",
            "creating member 'carol-google'",
        ],
    )
    .await;
    // And with a Salesforce profile.
    let sf = member_with(
        "carol-sf",
        json!({
            "identity": { "provider": "Salesforce", "username": "carol@sf.example" },
            "salesforceProfile": "System Administrator", "subjects": carol,
        }),
    );
    o.refused(
        "carol",
        "a tenant claims a Salesforce profile",
        t.create("carol", &sf),
        &["[IdentityClaims] spec.salesforceProfile"],
    )
    .await;
    // erin changes her own groupless Member's identity and claims.
    o.refused(
        "erin",
        "a member moves their own identity into an OpenID domain",
        t.patch(
            "erin",
            "member",
            "erin",
            &json!({ "spec": { "identity": { "provider": "Google", "username": "erin@corp.example" } } }),
        ),
        &["changing who member 'erin' is"],
    )
    .await;
    o.refused(
        "erin",
        "a member adds an SSO group to themselves",
        t.patch(
            "erin",
            "member",
            "erin",
            &json!({ "spec": { "identity": { "provider": "SingleSignOn", "username": "erin" }, "ssoGroups": ["platform-admins"] } }),
        ),
        &["[IdentityClaims] spec.ssoGroups"],
    )
    .await;
    // The identity-provider sync (a trusted principal) writes claims.
    let synced = member_with(
        "gina",
        json!({
            "identity": { "provider": "SingleSignOn", "username": "gina" },
            "ssoGroups": ["platform-admins"], "accepted": true,
        }),
    );
    assert_success(
        "the trusted identity-provider sync writes claims",
        &t.create(support::GITOPS_USER, &synced).await,
    );
    o.t.stop().await;
}

#[tokio::test]
async fn binding_a_kubernetes_identity_is_granting() {
    let o = Org::start().await;
    let t = &o.t;
    // carol names herself a subject of dan, the SSO administrator.
    o.refused(
        "carol",
        "a tenant adds themselves to another member's subjects",
        t.patch(
            "carol",
            "member",
            "dan",
            &json!({ "spec": { "subjects": [{ "kind": "User", "name": "dave" }, { "kind": "User", "name": "carol" }] } }),
        ),
        &["changing who member 'dan' is", "[RequiredPrivileges]"],
    )
    .await;
    // bob holds Groups Edit: he may update members, but binding himself to
    // dan would hand him platform's Full access, which he does not hold.
    o.refused(
        "bob",
        "a group manager binds themselves to an administrator's member",
        t.patch(
            "bob",
            "member",
            "dan",
            &json!({ "spec": { "subjects": [{ "kind": "User", "name": "dave" }, { "kind": "User", "name": "bob" }] } }),
        ),
        &["[NoEscalation] spec.groups", "cannot make member 'dan' hold group 'platform'"],
    )
    .await;
    // A subject matching every authenticated user: refused for everyone,
    // trusted principals included, and eve (no member) holds nothing after.
    let everyone = member_with(
        "everyone",
        json!({
            "identity": { "provider": "Email", "username": "all@example.com" },
            "groups": ["viewers"], "accepted": true,
            "subjects": [{ "kind": "Group", "name": "system:authenticated" }],
        }),
    );
    o.refused(
        "erin",
        "an administrator binds a member to system:authenticated",
        t.create(ADMIN, &everyone),
        &[
            "[CatalogValidity] spec.subjects[0]",
            "every authenticated user",
        ],
    )
    .await;
    o.refused(
        "bob",
        "a member binds another to system:serviceaccounts",
        t.patch(
            "bob",
            "member",
            "erin",
            &json!({ "spec": { "subjects": [{ "kind": "Group", "name": "system:serviceaccounts" }] } }),
        ),
        &["every service account"],
    )
    .await;
    o.t.stop().await;
}

#[tokio::test]
async fn joining_a_group_needs_all_it_grants_by_any_route() {
    let o = Org::start().await;
    let t = &o.t;
    // carol edits platform through its access list (helpers: Edit), but may
    // not join it by spec.groups ...
    o.refused(
        "carol",
        "a group editor invites themselves",
        t.patch(
            "carol",
            "member",
            "carol",
            &json!({ "spec": { "groups": ["viewers", "helpers", "platform"] } }),
        ),
        &["[NoEscalation]", "group 'platform'"],
    )
    .await;
    // ... nor by adding an identity set that matches herself.
    o.refused(
        "carol",
        "a group editor adds an identity set",
        t.patch(
            "carol",
            "group",
            "platform",
            &json!({ "spec": { "identitySets": [{ "ssoGroup": "platform-admins" }, { "ssoGroup": "carol-own" }] } }),
        ),
        &["[NoEscalation] spec.identitySets", "cannot add an identity set to group 'platform'"],
    )
    .await;
    // Access-list grants of other objects count: support may edit payments,
    // so joining support needs that too (finding 6).
    for obj in [
        group(
            "payments",
            json!({ "access": [{ "group": "support", "level": "Edit" }] }),
        ),
        group(
            "support",
            json!({ "template": "AnalyticsViewers", "access": [{ "group": "helpers", "level": "Edit" }] }),
        ),
    ] {
        assert_success("admin creates groups", &t.create(ADMIN, &obj).await);
    }
    t.wait_cached("support", |s| s.groups.contains_key("support"))
        .await;
    o.refused(
        "carol",
        "joining a group whose access-list grants one lacks",
        t.patch(
            "carol",
            "member",
            "carol",
            &json!({ "spec": { "groups": ["viewers", "helpers", "support"] } }),
        ),
        &[
            "group 'support'",
            "Organization/Groups: Custom (payments Edit)",
        ],
    )
    .await;
    // Inviting to a group that does not exist yet is refused, not skipped.
    o.refused(
        "bob",
        "pre-positioning a member in a future group",
        t.patch(
            "bob",
            "member",
            "erin",
            &json!({ "spec": { "groups": ["platform-owners"] } }),
        ),
        &["group 'platform-owners' does not exist"],
    )
    .await;
    // Squatting: ops gives `contractors` Edit; carol, who may create groups,
    // creates the (deleted) name and would inherit that grant.
    for obj in [
        group(
            "ops",
            json!({ "access": [{ "group": "contractors", "level": "Edit" }] }),
        ),
        group(
            "creators",
            json!({ "privileges": [{ "service": "Organization", "domain": "Groups", "level": "View", "canCreate": true }] }),
        ),
    ] {
        assert_success("admin creates groups", &t.create(ADMIN, &obj).await);
    }
    assert_success(
        "admin lets carol create groups",
        &t.patch(
            ADMIN,
            "member",
            "carol",
            &serde_json::from_str(r#"{"spec":{"groups":["viewers","helpers","creators"]}}"#)
                .unwrap(),
        )
        .await,
    );
    t.wait_cached("ops and creators", |s| {
        s.groups.contains_key("ops") && s.members["carol"].groups.len() == 3
    })
    .await;
    let squat = group("contractors", json!({}));
    o.refused(
        "carol",
        "creating a group under a name other access lists still name",
        t.create("carol", &squat),
        &[
            "[NoEscalation] spec.privileges",
            "Organization/Groups: Custom (ops Edit)",
        ],
    )
    .await;
    o.t.stop().await;
}

#[tokio::test]
async fn organization_level_acts_need_organization_level_rights() {
    let o = Org::start().await;
    let t = &o.t;
    assert_success(
        "admin creates org-editors",
        &t.create(
            ADMIN,
            &group(
                "org-editors",
                json!({ "privileges": [priv_("Organization", "Organization", "Edit")] }),
            ),
        )
        .await,
    );
    assert_success(
        "admin puts erin in org-editors",
        &t.patch(
            ADMIN,
            "member",
            "erin",
            &serde_json::from_str(r#"{"spec":{"groups":["org-editors"]}}"#).unwrap(),
        )
        .await,
    );
    t.wait_cached("erin in org-editors", |s| {
        s.members["erin"].groups == ["org-editors"]
    })
    .await;
    o.refused(
        "erin",
        "an Organization editor deletes the Organization",
        t.delete("erin", "organization", "acme"),
        &["deleting the Organization", "needs every privilege"],
    )
    .await;
    // Creating or deleting a member needs Groups Edit domain-wide.
    o.refused(
        "carol",
        "a member without Groups Edit deletes a member",
        t.delete("carol", "member", "erin"),
        &["deleting member 'erin'", "Organization/Groups: Edit"],
    )
    .await;
    // Metadata-only: an owner reference would make the trusted garbage
    // collector delete alice; a finalizer would keep carol mapped after removal.
    o.refused(
        "carol",
        "a dangling owner reference on an administrator's member",
        t.patch(
            "carol",
            "member",
            "alice",
            &json!({ "metadata": { "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "gone",
                "uid": "00000000-0000-0000-0000-000000000001" }] } }),
        ),
        &["metadata.ownerReferences", "garbage collector"],
    )
    .await;
    o.refused(
        "carol",
        "a finalizer on one's own member",
        t.patch(
            "carol",
            "member",
            "carol",
            &json!({ "metadata": { "finalizers": ["example.com/keep"] } }),
        ),
        &["metadata.finalizers"],
    )
    .await;
    // An administrator may delete it (documented in docs/security.md).
    assert_success(
        "an administrator deletes the Organization",
        &t.delete("alice", "organization", "acme").await,
    );
    o.t.stop().await;
}
