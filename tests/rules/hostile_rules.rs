//! The rules on hostile input, offline (the webhook and `orgaccess check` run
//! the same `rules::check`): the CRD's largest Group of undeclared names
//! gives a small answer, quickly, and leaves nothing in process-wide state.

use std::time::{Duration, Instant};

use orgaccess::core::catalog::Service;
use orgaccess::core::effective::resolve_grantees;
use orgaccess::core::model::{GroupDef, OrgDef, OrgResources, OrgState};
use orgaccess::core::privilege::{
    AccessLevel, ResourceAccess, ResourceId, ResourceLevel, request_scope, spec,
};
use orgaccess::core::rules::{self, Change, MAX_MESSAGE_BYTES, Object, Operation, Requester};

fn group(privileges: usize, resources: usize, prefix: &str) -> GroupDef {
    let mut s = spec(Service::Content, "Sources", AccessLevel::Custom);
    s.resources = (0..resources)
        .map(|i| ResourceAccess {
            name: format!("{prefix}-{i}"),
            level: ResourceLevel::View,
        })
        .collect();
    GroupDef {
        name: "big".into(),
        privileges: vec![s; privileges],
        ..GroupDef::default()
    }
}

fn judge(state: &OrgState, g: &GroupDef) -> (Vec<rules::Violation>, String, Duration) {
    let start = Instant::now();
    let grantees = resolve_grantees(state);
    let change = Change {
        operation: Operation::Create,
        name: "big",
        old: None,
        new: Some(Object::Group(g)),
    };
    let requester = Requester::Unmapped {
        user: "mallory".into(),
    };
    let violations = request_scope(|| rules::check(state, &grantees, &change, &requester));
    let message = rules::denial_message("Group", "acme", "big", &violations);
    (violations, message, start.elapsed())
}

#[test]
fn two_hundred_privileges_of_a_thousand_undeclared_names_give_a_small_answer() {
    let declared: Vec<String> = (0..1000).map(|i| format!("declared-source-{i}")).collect();
    let with_org = OrgState {
        org: Some(OrgDef {
            name: "acme".into(),
            display_name: "Acme".into(),
            resources: OrgResources {
                sources: declared,
                ..OrgResources::default()
            },
            invitation_lifetime_days: 31,
            ..OrgDef::default()
        }),
        ..OrgState::default()
    };
    for (what, state) in [
        ("no Organization", OrgState::default()),
        ("1,000 declared", with_org),
    ] {
        let g = group(200, 1000, "hostile-zz9");
        let (violations, message, took) = judge(&state, &g);
        assert!(
            // one per privilege (each repeats the domain), 20 names, their count, the requester
            violations.len() <= 200 + 23,
            "{what}: {} violations",
            violations.len()
        );
        assert!(
            message.len() <= MAX_MESSAGE_BYTES,
            "{what}: {} bytes",
            message.len()
        );
        assert!(message.contains("more"), "{what}: {message}");
        // The declared list is said once, at most 20 names of it.
        assert!(
            message.matches("declared:").count() <= 1,
            "{what}: {message}"
        );
        assert!(took < Duration::from_secs(10), "{what}: {took:?}");
        eprintln!(
            "{what}: {} violations, {} bytes, {took:?}",
            violations.len(),
            message.len()
        );
    }
    // Names judged in a request scope are not interned process-wide.
    assert_eq!(ResourceId::lookup("hostile-zz9-999"), None);
}
