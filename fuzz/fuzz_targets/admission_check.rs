//! The admission path as the webhook runs it, for the fuzz target
//! (`fuzz/fuzz_targets/admission.rs`, run by `scripts/fuzz.sh`) and for the
//! ordinary test that replays the corpus (`tests/webhook/fuzz_corpus.rs`):
//! body bytes in (`Validator::handle`: the bounds of webhook::limits, the
//! AdmissionReview decoder, the requester mapping, every rule, the denial
//! message), answer out, after the mutating half (`webhook::mutate`) wrote the
//! record of who set each binding. Checks beyond "no panic, no hang": each
//! answer is an AdmissionReview with a bounded message.

use std::sync::Arc;

use orgaccess::api::{ApiKey, Group, Member, Organization};
use orgaccess::webhook::{Index, Policy, Validator, mutate};
use serde_json::json;

/// The validator over the seeded organization `acme`: three groups, two
/// members and an API key.
pub fn validator() -> Validator {
    let index = Arc::new(Index::new());
    let meta =
        |name: &str| json!({"name": name, "namespace": "acme", "uid": format!("uid-{name}")});
    let org: Organization = serde_json::from_value(json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Organization", "metadata": meta("acme"),
        "spec": {"displayName": "Acme", "resources": {"sources": ["web", "docs", "crm"]}}
    }))
    .unwrap();
    index.apply(&org);
    for (name, spec) in [
        (
            "administrators",
            json!({"builtIn": "Administrators", "template": "Administrators"}),
        ),
        (
            "editors",
            json!({"privileges": [
            {"service": "Organization", "domain": "Groups", "level": "Edit"},
            {"service": "Content", "domain": "Sources", "level": "Custom",
             "resources": [{"name": "web", "level": "Edit"}, {"name": "docs", "level": "View"}]}]}),
        ),
        (
            "viewers",
            json!({"template": "AnalyticsViewers",
            "access": [{"group": "editors", "level": "Edit"}],
            "identitySets": [{"ssoGroup": "staff"}]}),
        ),
    ] {
        let g: Group = serde_json::from_value(json!({
            "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group", "metadata": meta(name), "spec": spec
        }))
        .unwrap();
        index.apply(&g);
    }
    for (name, user, groups) in [
        ("alice", "alice", ["administrators"]),
        ("bob", "bob", ["editors"]),
    ] {
        let mut m = meta(name);
        m["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        let m: Member = serde_json::from_value(json!({
            "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Member", "metadata": m,
            "spec": {"identity": {"provider": "Email", "username": format!("{user}@acme.example")},
                     "groups": groups, "accepted": true,
                     "subjects": [{"kind": "User", "name": user}]}
        }))
        .unwrap();
        index.apply(&m);
    }
    let k: ApiKey = serde_json::from_value(json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "ApiKey", "metadata": meta("ci"),
        "spec": {"displayName": "CI", "privileges": [{"service": "Search", "domain": "ExecuteQueries", "level": "Allowed"}]}
    }))
    .unwrap();
    index.apply(&k);
    index.mark_synced();
    let mut registry = prometheus_client::registry::Registry::default();
    Validator::new(Policy::default(), index, &mut registry, 16)
}

/// Judges `data` as both halves of the webhook would, and checks the answers.
pub fn check(validator: &Validator, data: &[u8]) {
    // The mutating half (the record of who set each binding): always an
    // AdmissionReview, whatever the body.
    let mutated = mutate::mutate(&validator.policy, data);
    let review: serde_json::Value = serde_json::from_slice(&mutated).expect("the answer is JSON");
    assert_eq!(review["kind"], "AdmissionReview");
    assert!(review["response"]["allowed"].is_boolean(), "{review}");
    // Then the validating half, on the body as the apiserver would send it.
    let data = &mutate::mutated_review(&validator.policy, data);
    let answer = validator.handle(data);
    let review: serde_json::Value = serde_json::from_slice(&answer).expect("the answer is JSON");
    assert_eq!(review["kind"], "AdmissionReview");
    let response = &review["response"];
    assert!(response["allowed"].is_boolean(), "{review}");
    if let Some(m) = response["status"]["message"].as_str() {
        assert!(m.len() <= 17 * 1024, "message of {} bytes", m.len());
    }
}
