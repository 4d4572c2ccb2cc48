//! The webhook's handler, in process: an AdmissionReview body in, the answer
//! out, on a hand-filled index — no control plane. What it tests is the
//! wiring around the rules: who asks, as the handler maps them from the
//! index and the policy (trusted principals, unmapped identities, members
//! with their groups' privileges); the stored status `KeyLifecycle` reads;
//! the mutating half's record before the validating half; garbage. Each
//! rule's own judgement has its table of cases beside it in
//! `crates/core/src/rules/`. The apiserver tests (`tests/webhook/webhook.rs`,
//! `tests/rules/escalation.rs`) keep the rest of the wiring: TLS, the
//! configuration, kubectl's view of a denial.
//!
//! [`Org`] is the shared harness.

use crate::support;

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use orgaccess::api::{ApiKey, Group, Member, Organization};
use orgaccess::controller::builtin_group;
use orgaccess::core::builtin::BuiltinGroup;
use orgaccess::webhook::{Index, Policy, Validator};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use support::org::{four_privileges, group, member, priv_};

const NS: &str = "acme";

/// An organization in an index, judged by a validator with the default
/// policy. `olivia` is in Administrators; `gm` holds a group manager's four
/// privileges (Groups Edit among them); `viewer` holds Organization View.
struct Org {
    index: Arc<Index>,
    validator: Validator,
}

enum Verdict {
    Allowed,
    Denied(String),
}

impl Org {
    fn new() -> Org {
        let index = Arc::new(Index::new());
        let org: Organization = typed(json!({
            "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Organization",
            "metadata": {"name": "acme"}, "spec": {"displayName": "Acme"},
        }));
        index.apply(&org);
        // As once the watches have listed everything.
        index.mark_synced();
        for b in BuiltinGroup::ALL {
            let mut g = builtin_group(b);
            g.metadata.namespace = Some(NS.into());
            index.apply(&g);
        }
        let mut registry = Registry::default();
        let validator = Validator::new(Policy::default(), index.clone(), &mut registry, 100);
        let o = Org { index, validator };
        o.put(group(
            "group-managers",
            json!({"displayName": "GM", "privileges": four_privileges()}),
        ));
        o.put(group(
            "viewers",
            json!({"displayName": "V", "privileges": [priv_("Organization", "Organization", "View")]}),
        ));
        o.put(member("olivia", &["administrators"]));
        o.put(member("gm", &["group-managers"]));
        o.put(member("viewer", &["viewers"]));
        o
    }

    /// Puts an object in the index as if the watch had delivered it.
    fn put(&self, obj: Value) {
        match obj["kind"].as_str() {
            Some("Group") => self.index.apply(&typed::<Group>(obj)),
            Some("Member") => self.index.apply(&typed::<Member>(obj)),
            Some("ApiKey") => self.index.apply(&typed::<ApiKey>(obj)),
            Some("AccessReview") => self
                .index
                .apply(&typed::<orgaccess::api::AccessReview>(obj)),
            other => panic!("cannot put {other:?}"),
        };
    }

    /// The webhook's answer to `user` doing `operation` on `new` (over `old`).
    fn judge(
        &self,
        user: &str,
        operation: &str,
        old: Option<&Value>,
        new: Option<&Value>,
    ) -> Verdict {
        let subject = new.or(old).expect("an object");
        let kind = subject["kind"].as_str().unwrap();
        let body = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "6d1c7f4e-1a0b-4c1e-9d0f-2b6a1f0e3c11",
                "kind": {"group": "orgaccess.dev", "version": "v1alpha1", "kind": kind},
                "resource": {"group": "orgaccess.dev", "version": "v1alpha1",
                             "resource": format!("{}s", kind.to_lowercase())},
                "name": subject["metadata"]["name"],
                "namespace": NS,
                "operation": operation,
                "userInfo": {"username": user, "groups": ["system:authenticated"]},
                "object": new.map(|o| namespaced(o.clone())),
                "oldObject": old.map(|o| namespaced(o.clone())),
            },
        });
        // As the apiserver does: the mutating half first (the record of who
        // set each binding), then the validating half.
        let body = orgaccess::webhook::mutate::mutated_review(
            &self.validator.policy,
            body.to_string().as_bytes(),
        );
        let answer: Value = serde_json::from_slice(&self.validator.handle(&body)).unwrap();
        let response = &answer["response"];
        if response["allowed"] == true {
            Verdict::Allowed
        } else {
            Verdict::Denied(
                response["status"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    }

    fn accepts(
        &self,
        what: &str,
        user: &str,
        operation: &str,
        old: Option<&Value>,
        new: Option<&Value>,
    ) {
        if let Verdict::Denied(message) = self.judge(user, operation, old, new) {
            panic!("{what}: refused: {message}");
        }
    }

    /// Asserts a refusal naming `rule` (as `[Rule]` in the message).
    fn rejects(
        &self,
        what: &str,
        rule: &str,
        user: &str,
        operation: &str,
        old: Option<&Value>,
        new: Option<&Value>,
    ) {
        match self.judge(user, operation, old, new) {
            Verdict::Allowed => panic!("{what}: allowed"),
            Verdict::Denied(message) => assert!(
                message.contains(&format!("[{rule}]")),
                "{what}: refused, but not by {rule}: {message}"
            ),
        }
    }
}

fn namespaced(mut obj: Value) -> Value {
    obj["metadata"]["namespace"] = NS.into();
    obj["metadata"]["uid"] =
        format!("uid-{}", obj["metadata"]["name"].as_str().unwrap_or("x")).into();
    obj["metadata"]["creationTimestamp"] = json!(Time(jiff::Timestamp::now()));
    obj
}

fn typed<T: serde::de::DeserializeOwned>(obj: Value) -> T {
    serde_json::from_value(namespaced(obj)).unwrap()
}

/// `obj` with the field at `path` (dotted) set.
fn with(mut obj: Value, path: &str, value: Value) -> Value {
    let target = path.split('.').fold(&mut obj, |o, k| &mut o[k]);
    *target = value;
    obj
}

/// Who asks, as the handler maps them: by the policy, then from the index.
mod requesters {
    use super::*;

    #[test]
    fn a_domain_the_service_does_not_have_is_refused_even_to_the_cluster_admin() {
        let o = Org::new();
        let bad = group(
            "g",
            json!({"displayName": "G", "privileges": [priv_("Content", "NoSuchDomain", "View")]}),
        );
        // `system:masters` is trusted by default, but the catalogue binds everyone.
        let body_user = "kubernetes-admin";
        let answer = o.validator.handle(
            json!({
                "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {
                    "uid": "1", "kind": {"group": "orgaccess.dev", "version": "v1alpha1", "kind": "Group"},
                    "resource": {"group": "orgaccess.dev", "version": "v1alpha1", "resource": "groups"},
                    "name": "g", "namespace": NS, "operation": "CREATE",
                    "userInfo": {"username": body_user, "groups": ["system:masters"]},
                    "object": namespaced(bad),
                },
            })
            .to_string()
            .as_bytes(),
        );
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["response"]["allowed"], false);
        assert!(
            answer["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("[CatalogValidity]")
        );
    }

    #[test]
    fn an_identity_no_member_maps_is_refused() {
        let o = Org::new();
        let g = group("g", json!({"displayName": "G"}));
        o.rejects(
            "an unmapped user",
            "UnknownRequester",
            "mallory",
            "CREATE",
            None,
            Some(&g),
        );
    }

    /// A member is judged with the privileges of its groups in the index.
    #[test]
    fn creating_a_group_needs_groups_edit_or_can_create() {
        let o = Org::new();
        let g = group(
            "g",
            json!({"displayName": "G", "privileges": [priv_("Organization", "Organization", "View")]}),
        );
        o.rejects(
            "a viewer creates a group",
            "RequiredPrivileges",
            "viewer",
            "CREATE",
            None,
            Some(&g),
        );
        o.accepts(
            "a group manager creates a group",
            "gm",
            "CREATE",
            None,
            Some(&g),
        );
    }
}

/// A disabled ApiKey is enabled again only once the operator reported its
/// disabling carried out (docs/api-keys.md): the stored
/// status must describe the stored generation and publish no value.
mod key_lifecycle {
    use super::*;

    /// The stored key: disabled at generation 2, with the status `status`.
    fn stored(status: Value) -> Value {
        json!({
            "apiVersion": "orgaccess.dev/v1alpha1", "kind": "ApiKey",
            "metadata": {"name": "k", "generation": 2},
            "spec": {"displayName": "K", "enabled": false, "lifetime": "P30D"},
            "status": status,
        })
    }

    #[test]
    fn enabling_waits_for_the_disabling_to_be_carried_out() {
        let o = Org::new();
        let carried_out = stored(json!({"observedGeneration": 2, "phase": "Disabled"}));
        o.put(carried_out.clone());
        let enable = |old: &Value| {
            let mut new = with(old.clone(), "spec.enabled", json!(true));
            new["metadata"]["generation"] = json!(3);
            new
        };
        // The garbage collector is trusted by default: the order binds it too.
        for user in [
            "olivia",
            "system:serviceaccount:kube-system:generic-garbage-collector",
        ] {
            for (what, status) in [
                (
                    "the status still publishes the value",
                    json!({"observedGeneration": 2, "phase": "Active", "hash": "ab".repeat(32)}),
                ),
                (
                    "the status describes the generation before",
                    json!({"observedGeneration": 1, "phase": "Active"}),
                ),
                (
                    "a previous value is still published",
                    json!({"observedGeneration": 2, "previousHash": "cd".repeat(32)}),
                ),
                ("no status yet", json!(null)),
            ] {
                let old = stored(status);
                o.rejects(
                    what,
                    "KeyLifecycle",
                    user,
                    "UPDATE",
                    Some(&old),
                    Some(&enable(&old)),
                );
            }
            o.accepts(
                "enabled once the disabling was carried out",
                user,
                "UPDATE",
                Some(&carried_out),
                Some(&enable(&carried_out)),
            );
            // Disabling, and editing a disabled key, never wait.
            let published = stored(json!({"observedGeneration": 1, "hash": "ab".repeat(32)}));
            let described = with(published.clone(), "spec.description", json!("x"));
            o.accepts(
                "editing a disabled key",
                user,
                "UPDATE",
                Some(&published),
                Some(&described),
            );
            let live = with(published.clone(), "spec.enabled", json!(true));
            o.accepts("disabling", user, "UPDATE", Some(&live), Some(&published));
        }
    }
}

mod hostile {
    use super::*;

    #[test]
    fn garbage_is_answered_not_crashed_on() {
        let o = Org::new();
        for body in [&b""[..], b"{", b"null", b"{\"request\": 5}", &[0xff; 64]] {
            let answer: Value = serde_json::from_slice(&o.validator.handle(body)).unwrap();
            assert_eq!(answer["kind"], "AdmissionReview", "{body:?}");
        }
        // And it keeps serving.
        let g = group(
            "g",
            json!({"displayName": "G", "privileges": [priv_("Organization", "Organization", "View")]}),
        );
        o.accepts("after garbage", "olivia", "CREATE", None, Some(&g));
    }
}

/// AccessReviews through the handler: the kind is read, an owner records a
/// review of a group with Edit on it, anyone else is refused, and a review
/// of a group that does not exist is refused even to a trusted principal.
mod access_reviews {
    use super::*;

    fn review(group: &str, confirmed: &[&str]) -> Value {
        json!({
            "apiVersion": "orgaccess.dev/v1alpha1", "kind": "AccessReview",
            "metadata": {"name": "q1"},
            "spec": {"group": group, "confirmed": confirmed},
        })
    }

    #[test]
    fn only_an_owner_with_edit_records_a_review() {
        let o = Org::new();
        o.put(group(
            "ops",
            json!({"displayName": "Ops", "owners": ["gm", "viewer"], "reviewEvery": "P90D",
                   "privileges": [priv_("Organization", "Organization", "View")]}),
        ));
        o.put(member("ann", &["ops"]));
        let r = review("ops", &["ann"]);
        o.accepts(
            "gm, an owner with Groups Edit",
            "gm",
            "CREATE",
            None,
            Some(&r),
        );
        o.rejects(
            "viewer, an owner without Edit on ops",
            "RequiredPrivileges",
            "viewer",
            "CREATE",
            None,
            Some(&r),
        );
        o.rejects(
            "olivia, an administrator but no owner",
            "ReviewedByOwner",
            "olivia",
            "CREATE",
            None,
            Some(&r),
        );
        o.rejects(
            "a confirmed name that is no member of ops",
            "CatalogValidity",
            "gm",
            "CREATE",
            None,
            Some(&review("ops", &["olivia"])),
        );
        o.rejects(
            "a review of a group that does not exist (CatalogValidity, before any requester rule)",
            "CatalogValidity",
            "kubernetes-admin",
            "CREATE",
            None,
            Some(&review("later", &[])),
        );
        o.put(r.clone());
        o.rejects(
            "olivia deletes gm's review",
            "ReviewedByOwner",
            "olivia",
            "DELETE",
            Some(&r),
            None,
        );
        o.accepts("gm deletes it", "gm", "DELETE", Some(&r), None);
    }
}
