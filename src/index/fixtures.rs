//! Objects and an index filled with them, for the index's unit tests.

use std::collections::BTreeSet;

use kube::Resource;

use super::Index;
use crate::api::{Group, GroupSpec, Member, Organization, OrganizationSpec};
use crate::core::model::OrgResources;

pub fn group(ns: &str, name: &str) -> Group {
    let mut g = Group::new(
        name,
        GroupSpec {
            display_name: None,
            built_in: None,
            template: None,
            privileges: vec![],
            identity_sets: vec![],
            access: vec![],
            duplicate_of: None,
            owners: Vec::new(),
            review_every: None,
        },
    );
    g.metadata.namespace = Some(ns.into());
    g
}

pub fn org(ns: &str) -> Organization {
    let mut o = Organization::new(
        "org",
        OrganizationSpec {
            display_name: "Org".into(),
            resources: OrgResources::default(),
            invitation_lifetime_days: 31,
            advice: Default::default(),
            access_reviews: Default::default(),
        },
    );
    o.metadata.namespace = Some(ns.into());
    o
}

/// An object of one of the four kinds from YAML (a fixture), in namespace `a`.
pub fn yaml<K: serde::de::DeserializeOwned + Resource>(text: &str) -> K {
    let mut obj: K = serde_saphyr::from_str(text).expect("fixture");
    obj.meta_mut().namespace = Some("a".into());
    obj
}

/// The fixture organization: a group granted by invitation, a group of
/// everyone at an SSO group, three members, and a key named by an access list.
pub fn fixture() -> (Index, Vec<Group>, Vec<Member>) {
    let index = Index::new();
    index.apply(&org("a"));
    let groups: Vec<Group> = [
        "metadata: {name: readers, generation: 1}\nspec: {privileges: [{service: Content, domain: Sources, level: View}]}",
        "metadata: {name: sso-ops, generation: 1}\nspec: {identitySets: [{ssoGroup: ops}], access: [{group: readers, level: View}]}",
        "metadata: {name: lonely, generation: 1}\nspec: {}",
    ]
    .iter()
    .map(|y| yaml(y))
    .collect();
    for g in &groups {
        index.apply(g);
    }
    let members: Vec<Member> = [
        "metadata: {name: ann, generation: 1}\nspec: {identity: {provider: Email, username: ann@x.example}, groups: [readers], accepted: true}",
        "metadata: {name: bob, generation: 1}\nspec: {identity: {provider: SingleSignOn, username: bob}, ssoGroups: [ops], accepted: true}",
        "metadata: {name: cy, generation: 1}\nspec: {identity: {provider: Email, username: cy@x.example}, accepted: true}",
    ]
    .iter()
    .map(|y| yaml(y))
    .collect();
    for m in &members {
        index.apply(m);
    }
    (index, groups, members)
}

pub fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}
