//! `orgaccess diff` agrees with the controller: for changes of the
//! examples a pull request would make, every member's privileges at the base
//! as the controller writes them (`desired::member`, from the base indexed as
//! the watches would index it), with the diff's changes applied, are the
//! privileges the controller writes at the head; and the causes the diff
//! names for a member's head grant are the groups its status names.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use orgaccess::cli::manifest::{Object, load};
use orgaccess::cli::source;
use orgaccess::controller::desired;
use orgaccess::core::builtin::BuiltinGroup;
use orgaccess::core::diff::{self, PrincipalKind};
use orgaccess::core::privilege::{PrivilegeSet, parse_all};
use orgaccess::index::{Index, Stored};

const NS: &str = "demo";

fn examples() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
}

/// The manifests of `dir`, indexed as the watches would (built-ins seeded),
/// with their members.
fn indexed(dir: &Path) -> (Index, Vec<orgaccess::api::Member>) {
    let loaded = load(&[dir.to_path_buf()], NS);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let index = Index::new();
    let mut members = Vec::new();
    let mut groups = Vec::new();
    for m in loaded.manifests {
        match m.object {
            Object::Organization(mut o) => {
                o.metadata.namespace = Some(NS.into());
                index.apply(&o);
            }
            Object::Group(mut g) => {
                g.metadata.namespace = Some(NS.into());
                groups.push(g.metadata.name.clone().unwrap_or_default());
                index.apply(&g);
            }
            Object::Member(mut x) => {
                x.metadata.namespace = Some(NS.into());
                index.apply(&x);
                members.push(x);
            }
            Object::ApiKey(mut k) => {
                k.metadata.namespace = Some(NS.into());
                index.apply(&k);
            }
            Object::AccessReview(mut r) => {
                r.metadata.namespace = Some(NS.into());
                index.apply(&r);
            }
        }
    }
    for b in BuiltinGroup::ALL {
        if !groups.iter().any(|g| g == b.object_name()) {
            let mut g = orgaccess::controller::builtin_group(b);
            g.metadata.namespace = Some(NS.into());
            index.apply(&g);
        }
    }
    (index, members)
}

/// The CLI's reading of the same manifests (built-ins added as it adds them).
fn state(dir: &Path) -> orgaccess::core::model::OrgState {
    let loaded = load(&[dir.to_path_buf()], NS);
    let mut orgs = source::states(&loaded.manifests, true);
    orgs.remove(NS).expect("one organization").state
}

/// A member's name, written privileges, and each privilege's `grantedBy`.
type Written = (String, PrivilegeSet, Vec<(String, Vec<String>)>);

fn written(dir: &Path, now: Timestamp) -> Vec<Written> {
    let (index, members) = indexed(dir);
    let ns = index.namespace(NS);
    members
        .iter()
        .map(|m| {
            let status = desired::member(&Stored::from(m.clone()), &ns, now).expect("indexed");
            let specs: Vec<_> = status
                .privileges
                .iter()
                .map(|p| p.privilege.clone())
                .collect();
            let by = status
                .privileges
                .iter()
                .map(|p| {
                    (
                        format!("{}/{}", p.privilege.service, p.privilege.domain),
                        p.granted_by.clone(),
                    )
                })
                .collect();
            (
                m.metadata.name.clone().unwrap(),
                parse_all(&specs).unwrap(),
                by,
            )
        })
        .collect()
}

/// The examples with `edit` applied to one file's text.
fn variant(file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(examples()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let text = if name == file { edit(&text) } else { text };
            assert!(
                name != file || text != std::fs::read_to_string(&p).unwrap(),
                "the edit of {file} changed nothing"
            );
            std::fs::write(dir.path().join(name), text).unwrap();
        }
    }
    dir
}

fn check(head: &Path) {
    let now = Timestamp::now();
    let base = written(&examples(), now);
    let after = written(head, now);
    let d = diff::diff(&state(&examples()), &state(head), now);
    let mut moved = 0;
    for (name, want, by) in &after {
        let was = base
            .iter()
            .find(|(n, ..)| n == name)
            .map(|(_, s, _)| s.clone())
            .unwrap_or_default();
        let p = d
            .principals
            .iter()
            .find(|p| p.principal.kind == PrincipalKind::Member && &p.principal.name == name);
        let changes = p.map_or(&[][..], |p| &p.changes[..]);
        moved += changes.len();
        let got = diff::apply(&was, changes);
        assert!(
            got.covers(want) && want.covers(&got),
            "{name}: the written base {was} with the diff's changes is {got}; the controller writes {want}"
        );
        for c in changes.iter().filter(|c| c.after.is_some()) {
            let key = format!("{}/{}", c.service, c.domain);
            let status_by = by
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let diff_by: Vec<String> = c
                .granted_by
                .iter()
                .map(|g| g.strip_prefix("Group ").unwrap_or(g).to_string())
                .collect();
            assert_eq!(
                diff_by, status_by,
                "{name} {key}: causes differ from the status's grantedBy"
            );
        }
    }
    assert!(moved > 0, "the variant moved nobody's privileges");
}

#[test]
fn joining_administrators_agrees_with_the_status() {
    let head = variant("20-members.yaml", |t| {
        t.replacen(
            "groups: [atlassian-administrators]",
            "groups: [atlassian-administrators, administrators]",
            1,
        )
    });
    check(head.path());
}

#[test]
fn a_group_losing_a_privilege_agrees_with_the_status() {
    let head = variant("10-groups.yaml", |t| {
        t.replacen("{name: jira, level: Edit}", "{name: jira, level: View}", 1)
    });
    check(head.path());
}

#[test]
fn a_member_leaving_and_another_accepting_agree_with_the_status() {
    let head = variant("20-members.yaml", |t| {
        t.replacen(
            "groups: [sitecore-integrator]",
            "groups: [sitecore-integrator]\n  accepted: true",
            1,
        )
        .replacen(
            "groups: [analytics-viewers, limited-administrators]",
            "groups: [analytics-viewers]",
            1,
        )
    });
    check(head.path());
}
