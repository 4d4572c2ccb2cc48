//! Escalation over two steps (docs/security.md, "Over two steps"),
//! played through the real apiserver: a tenant's admitted change followed by
//! a trusted GitOps apply — kubectl's client-side apply and server-side apply,
//! as the trusted identity `gitops` — with the webhook's mutating and
//! validating halves and the admission policy installed as the chart installs
//! them. Each path asserts what the trusted apply is told and that the
//! attacker (`bob`, who holds Groups Edit domain-wide) holds afterwards exactly
//! what he held before, computed from what the apiserver stores.

use crate::support;

use orgaccess::core::privilege::PrivilegeSet;
use orgaccess_testenv::{GITOPS_USER, TESTERS_GROUP};
use serde_json::{Value, json};
use support::org::{
    TestWebhook, assert_denied, effective_of, group, install_admission_policy, stderr,
};
use support::{ADMIN, assert_success, kubectl, kubectl_stdin};

const TESTER_GROUPS: [&str; 2] = [TESTERS_GROUP, "system:authenticated"];
const ATTACKER: &str = "bob";

fn member(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Member",
        "metadata": { "name": name }, "spec": spec,
    })
}

struct Scene {
    t: TestWebhook,
}

impl Scene {
    async fn start() -> Scene {
        let t = TestWebhook::start().await;
        install_admission_policy(&t.ns).await;
        t.seed().await;
        Scene { t }
    }

    async fn holds(&self, user: &str) -> PrivilegeSet {
        effective_of(&self.t.ns, user, &TESTER_GROUPS).await
    }

    /// `kubectl apply` (client-side) of a manifest as `who`.
    async fn apply(&self, who: &str, obj: &Value) -> std::process::Output {
        kubectl_stdin(
            who,
            &["apply", "-n", &self.t.ns, "-f", "-"],
            Some(&obj.to_string()),
        )
        .await
    }

    /// Server-side apply as `who`, with a field manager of GitOps' own.
    async fn apply_server_side(
        &self,
        who: &str,
        obj: &Value,
        extra: &[&str],
    ) -> std::process::Output {
        let mut args = vec![
            "apply",
            "--server-side",
            "--field-manager=argocd-controller",
            "-n",
            &self.t.ns,
            "-f",
            "-",
        ];
        args.extend_from_slice(extra);
        kubectl_stdin(who, &args, Some(&obj.to_string())).await
    }

    /// The record of who set the object's bindings, as stored ("" when none).
    async fn annotation(&self, kind: &str, name: &str) -> String {
        let out = kubectl(ADMIN, &["get", "-n", &self.t.ns, kind, name, "-o", "json"]).await;
        let obj: Value = serde_json::from_str(&assert_success("reading the record", &out)).unwrap();
        obj["metadata"]["annotations"]["orgaccess.dev/bound-by"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn wait_member(&self, name: &str) {
        let name = name.to_string();
        self.t
            .wait_cached("the member", move |s| s.members.contains_key(&name))
            .await;
    }
}

/// Path 1: bob creates Member dana bound to himself and granting nothing;
/// GitOps then applies its manifest for dana (administrators, accepted) that
/// does not name `subjects`. Both client-side and server-side apply keep bob's
/// subject, so the apply is refused, naming the binding and its setter; once
/// GitOps names `subjects` itself, it takes them over and the apply passes.
#[tokio::test]
async fn a_binding_placed_before_a_trusted_apply_grants_nothing() {
    let s = Scene::start().await;
    let before = s.holds(ATTACKER).await;
    let planted = member(
        "dana",
        json!({
            "identity": { "provider": "Email", "username": "dana@example.com" },
            "subjects": [{ "kind": "User", "name": ATTACKER }],
            "groups": [], "accepted": false,
        }),
    );
    assert_success(
        "bob plants dana, granting nothing",
        &s.t.create(ATTACKER, &planted).await,
    );
    let record = s.annotation("member", "dana").await;
    assert!(
        record.contains(r#""subjects":"bob""#),
        "the mutating webhook records bob as the setter of dana's subjects: {record:?}"
    );
    s.wait_member("dana").await;

    // GitOps' manifest for dana: no subjects field.
    let manifest = member(
        "dana",
        json!({
            "identity": { "provider": "Email", "username": "dana@example.com" },
            "groups": ["administrators"], "accepted": true,
        }),
    );
    let out = s.apply(GITOPS_USER, &manifest).await;
    assert_denied(
        "client-side apply through bob's subject",
        &out,
        &[
            "ForeignBindings",
            "spec.subjects set by 'bob'",
            "member dana",
        ],
    );
    // Argo CD and Flux apply server-side with force: they take over every
    // field their manifest names, and only those.
    let out = s
        .apply_server_side(GITOPS_USER, &manifest, &["--force-conflicts"])
        .await;
    assert_denied(
        "server-side apply through bob's subject",
        &out,
        &["ForeignBindings", "spec.subjects set by 'bob'"],
    );
    assert_eq!(s.holds(ATTACKER).await, before, "bob gained through dana");

    // A manifest that names subjects takes them over: dana is GitOps' own.
    let mut owned = manifest.clone();
    owned["spec"]["subjects"] = json!([{ "kind": "User", "name": "dave" }]);
    let out = s
        .apply_server_side(GITOPS_USER, &owned, &["--force-conflicts"])
        .await;
    assert_success("GitOps takes dana's subjects over", &out);
    assert_eq!(s.annotation("member", "dana").await, "");
    assert_eq!(s.holds(ATTACKER).await, before, "bob gained through dana");
    assert!(
        !s.holds("dave").await.is_empty(),
        "the subject GitOps named holds dana's privileges"
    );
}

/// The Group variant: bob adds an identity set to an empty group (it grants
/// nothing, so he may) and creates a member of his own that it matches;
/// GitOps then applies the group with a FullAccess template and no identity
/// sets in its manifest.
#[tokio::test]
async fn an_identity_set_placed_before_a_trusted_apply_grants_nothing() {
    let s = Scene::start().await;
    assert_success(
        "an empty group",
        &s.t.create(ADMIN, &group("ops", json!({}))).await,
    );
    s.t.wait_cached("ops", |st| st.groups.contains_key("ops"))
        .await;
    let before = s.holds(ATTACKER).await;
    let set = json!({ "spec": { "identitySets": [
        { "openIdDomain": { "provider": "Google", "domain": "corp.example" } }
    ] } });
    assert_success(
        "bob adds an identity set to the empty group",
        &s.t.patch(ATTACKER, "group", "ops", &set).await,
    );
    let mine = member(
        "bob-google",
        json!({
            "identity": { "provider": "Google", "username": "bob@corp.example" },
            "subjects": [{ "kind": "User", "name": ATTACKER }],
            "accepted": true,
        }),
    );
    assert_success(
        "bob's own member, matched by the set",
        &s.t.create(ATTACKER, &mine).await,
    );
    s.wait_member("bob-google").await;
    s.t.wait_cached("bob's identity set", |st| {
        st.groups
            .get("ops")
            .is_some_and(|g| !g.identity_sets.is_empty())
    })
    .await;

    let manifest = group("ops", json!({ "template": "FullAccess" }));
    for (how, out) in [
        ("client-side", s.apply(GITOPS_USER, &manifest).await),
        (
            "server-side",
            s.apply_server_side(GITOPS_USER, &manifest, &["--force-conflicts"])
                .await,
        ),
    ] {
        assert_denied(
            &format!("{how} apply of FullAccess through bob's identity set"),
            &out,
            &["ForeignBindings", "member bob-google", "set by 'bob'"],
        );
    }
    assert_eq!(s.holds(ATTACKER).await, before, "bob gained through ops");
}

/// Path 2: frank was invited to group finance, which was then deleted. bob
/// may not hand frank's dangling invitation to himself (a subject) or accept
/// it: when GitOps restores finance, bob would hold all of it.
#[tokio::test]
async fn a_dangling_invitation_cannot_be_handed_over() {
    let s = Scene::start().await;
    let finance = group(
        "finance",
        json!({ "privileges": [
            { "service": "Organization", "domain": "ApiKeys", "level": "Edit", "canCreate": true },
            { "service": "Organization", "domain": "Organization", "level": "Edit" },
        ] }),
    );
    assert_success("finance", &s.t.create(ADMIN, &finance).await);
    let frank = member(
        "frank",
        json!({
            "identity": { "provider": "Email", "username": "frank@example.com" },
            "groups": ["finance"], "accepted": false,
        }),
    );
    assert_success("frank, invited", &s.t.create(ADMIN, &frank).await);
    assert_success(
        "finance goes away",
        &s.t.delete(ADMIN, "group", "finance").await,
    );
    s.t.wait_cached("finance gone, frank there", |st| {
        !st.groups.contains_key("finance") && st.members.contains_key("frank")
    })
    .await;
    let before = s.holds(ATTACKER).await;

    let subject = json!({ "spec": { "subjects": [{ "kind": "User", "name": ATTACKER }] } });
    let out = s.t.patch(ATTACKER, "member", "frank", &subject).await;
    assert_denied(
        "bob binds himself to frank's dangling invitation",
        &out,
        &["NoEscalation", "group 'finance' does not exist"],
    );
    let accept = json!({ "spec": { "accepted": true } });
    let out = s.t.patch(ATTACKER, "member", "frank", &accept).await;
    assert_denied(
        "bob accepts frank's dangling invitation",
        &out,
        &["NoEscalation", "group 'finance' does not exist"],
    );

    // GitOps restores finance: bob holds none of it.
    assert_success(
        "GitOps restores finance",
        &s.apply(GITOPS_USER, &finance).await,
    );
    s.t.wait_cached("finance back", |st| st.groups.contains_key("finance"))
        .await;
    assert_eq!(s.holds(ATTACKER).await, before, "bob gained through frank");
}

/// The cross-object seam: bob invites his own member into a group that grants
/// nothing (he holds all of it); GitOps later raises the group. The
/// invitation counts as bob's grant, so the raise is refused until a trusted
/// principal vouches for it (drops it from the record) or takes it over.
#[tokio::test]
async fn raising_a_group_does_not_raise_a_tenants_invitation() {
    let s = Scene::start().await;
    assert_success(
        "an empty group",
        &s.t.create(ADMIN, &group("ops", json!({}))).await,
    );
    s.t.wait_cached("ops", |st| st.groups.contains_key("ops"))
        .await;
    let before = s.holds(ATTACKER).await;
    let invite = json!({ "spec": { "groups": ["four", "ops"] } });
    assert_success(
        "bob invites himself to the empty group",
        &s.t.patch(ATTACKER, "member", "bob", &invite).await,
    );
    assert!(
        s.annotation("member", "bob")
            .await
            .contains(r#""groups/ops":"bob""#)
    );
    s.t.wait_cached("bob in ops", |st| {
        st.members
            .get("bob")
            .is_some_and(|m| m.groups.iter().any(|g| g == "ops"))
    })
    .await;

    let raised = group("ops", json!({ "template": "FullAccess" }));
    let out = s.apply(GITOPS_USER, &raised).await;
    assert_denied(
        "GitOps raises ops through bob's invitation",
        &out,
        &[
            "ForeignBindings",
            "member bob",
            "invitation to group 'ops' (spec.groups) set by 'bob'",
        ],
    );
    assert_eq!(s.holds(ATTACKER).await, before, "bob gained through ops");

    // The record cannot be erased by bob: the mutating half writes it again.
    let out = kubectl(
        ATTACKER,
        &[
            "annotate",
            "-n",
            &s.t.ns,
            "member",
            "bob",
            "orgaccess.dev/bound-by-",
        ],
    )
    .await;
    let _ = out;
    assert!(
        s.annotation("member", "bob")
            .await
            .contains(r#""groups/ops":"bob""#),
        "bob erased the record of his invitation"
    );
    // ...but a trusted principal may vouch for the invitation.
    let out = kubectl(
        GITOPS_USER,
        &[
            "annotate",
            "-n",
            &s.t.ns,
            "member",
            "bob",
            "orgaccess.dev/bound-by-",
        ],
    )
    .await;
    assert_success("GitOps vouches for bob's invitation", &out);
    s.t.wait_cached("the record gone", |st| {
        st.members
            .get("bob")
            .is_some_and(|m| m.meta.bound_by.is_empty())
    })
    .await;
    let out = s.apply(GITOPS_USER, &raised).await;
    assert!(
        out.status.success(),
        "the raise after vouching: {}",
        stderr(&out)
    );
}
