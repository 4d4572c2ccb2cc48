//! The benchmarks' organization: 1,000 groups of 10 privileges, 5,000
//! members in 3 groups each (5 administrators), 200 declared sources, and one
//! API key (`bench-key`, template AnonymousSearch, allowed from 10.0.0.0/8,
//! value `oak_bench_value`), indexed as the watchers would index them.
//! Shared by `benches/webhook.rs` and `benches/decision_http.rs`.

#![allow(dead_code)]

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use orgaccess::api::{Group, GroupSpec, Member, MemberSpec, Organization, OrganizationSpec};
use orgaccess::core::builtin::{BuiltinGroup, GroupTemplate};
use orgaccess::core::catalog::{CATALOG, Service};
use orgaccess::core::model::{MemberIdentity, OrgResources, Provider, Subject, SubjectKind};
use orgaccess::core::privilege::{AccessLevel, PrivilegeSpec, ResourceAccess, ResourceLevel, spec};
use orgaccess::index::Index;
use serde_json::json;

pub const NS: &str = "acme";
pub const GROUPS: usize = 1000;
pub const MEMBERS: usize = 5000;
pub const GROUPS_PER_MEMBER: usize = 3;
pub const PRIVILEGES_PER_GROUP: usize = 10;
pub const ADMINS: usize = 5;

pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

pub fn sources() -> Vec<String> {
    (0..200).map(|i| format!("source-{i:03}")).collect()
}

pub fn privileges(rng: &mut Lcg) -> Vec<PrivilegeSpec> {
    let mut domains: Vec<usize> = (0..CATALOG.len()).collect();
    for i in 0..PRIVILEGES_PER_GROUP {
        let j = i + rng.next() % (domains.len() - i);
        domains.swap(i, j);
    }
    let names = sources();
    domains[..PRIVILEGES_PER_GROUP]
        .iter()
        .map(|&i| {
            let d = &CATALOG[i];
            let o = d.offers;
            if d.service == Service::Content && d.name == "Sources" {
                let mut s = spec(d.service, d.name, AccessLevel::Custom);
                let start = rng.next() % names.len();
                s.resources = (0..10)
                    .map(|k| ResourceAccess {
                        name: names[(start + k * 7) % names.len()].clone(),
                        level: if k % 3 == 0 {
                            ResourceLevel::Edit
                        } else {
                            ResourceLevel::View
                        },
                    })
                    .collect();
                return s;
            }
            let level = if o.allowed {
                AccessLevel::Allowed
            } else if o.push {
                AccessLevel::PushAndView
            } else if o.edit && rng.next().is_multiple_of(2) {
                AccessLevel::Edit
            } else {
                AccessLevel::View
            };
            spec(d.service, d.name, level)
        })
        .collect()
}

pub fn group(name: &str, spec: GroupSpec) -> Group {
    let mut g = Group::new(name, spec);
    g.metadata.namespace = Some(NS.into());
    g
}

pub fn group_spec(privileges: Vec<PrivilegeSpec>) -> GroupSpec {
    GroupSpec {
        display_name: None,
        built_in: None,
        template: None,
        privileges,
        identity_sets: vec![],
        access: vec![],
        duplicate_of: None,
        owners: vec![],
        review_every: None,
    }
}

pub fn member(i: usize, groups: Vec<String>) -> Member {
    let mut m = Member::new(
        &format!("user-{i}"),
        MemberSpec {
            identity: MemberIdentity {
                provider: Provider::Email,
                username: format!("user-{i}@example.com"),
            },
            groups,
            subjects: vec![Subject {
                kind: SubjectKind::User,
                name: format!("user-{i}"),
                namespace: None,
            }],
            accepted: true,
            sso_groups: vec![],
            salesforce_profile: None,
            until: None,
            group_until: Default::default(),
        },
    );
    m.metadata.namespace = Some(NS.into());
    m.metadata.creation_timestamp = Some(Time(CREATED.parse().unwrap()));
    m
}

pub const CREATED: &str = "2026-11-24T10:00:00Z";

/// The organization, in an index as the watchers would fill it.
pub fn index() -> Arc<Index> {
    let index = Arc::new(Index::new());
    let mut org = Organization::new(
        "acme",
        OrganizationSpec {
            display_name: "Acme".into(),
            resources: OrgResources {
                sources: sources(),
                ..OrgResources::default()
            },
            invitation_lifetime_days: 31,
            advice: Default::default(),
            access_reviews: Default::default(),
        },
    );
    org.metadata.namespace = Some(NS.into());
    index.apply(&org);
    let mut admins = group_spec(vec![]);
    admins.built_in = Some(BuiltinGroup::Administrators);
    admins.template = Some(GroupTemplate::Administrators);
    index.apply(&group("administrators", admins));
    let mut rng = Lcg(7);
    for i in 0..GROUPS {
        index.apply(&group(
            &format!("group-{i}"),
            group_spec(privileges(&mut rng)),
        ));
    }
    for i in 0..MEMBERS {
        let groups = if i < ADMINS {
            vec!["administrators".to_string()]
        } else {
            (0..GROUPS_PER_MEMBER)
                .map(|_| format!("group-{}", rng.next() % GROUPS))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        index.apply(&member(i, groups));
    }
    index.mark_synced();
    index
}

/// The bench key's value (its SHA-256 is in the key's status).
pub const KEY_VALUE: &str = "oak_bench_value";
pub const KEY_NAME: &str = "bench-key";

/// Adds the API key, with a status as the controller writes it (the digest
/// of [`KEY_VALUE`]), so the index's key table verifies it.
pub fn add_key(index: &Index) {
    use sha2::Digest;
    let key: orgaccess::api::ApiKey = serde_json::from_value(json!({
        "apiVersion": "orgaccess.dev/v1alpha1", "kind": "ApiKey",
        "metadata": {"name": KEY_NAME, "namespace": NS,
                     "creationTimestamp": Time(jiff::Timestamp::now())},
        "spec": {"displayName": "Bench", "template": "AnonymousSearch", "allowedIps": ["10.0.0.0/8"]},
        "status": {"hash": hex::encode(sha2::Sha256::digest(KEY_VALUE.as_bytes()))},
    }))
    .unwrap();
    index.apply(&key);
}
