//! An apiserver restart in the middle of convergence: the operator,
//! started once, resumes its watches and finishes the job without being
//! restarted, and a change made while the apiserver was away of the operator's
//! view reaches status too. The apiserver stays down longer than the Lease's
//! renew deadline, so the operator stops leading and has to win the Lease
//! back in the same process. Its own binary: the restart takes down the
//! control plane every test of the binary shares.

mod operator;
mod support;

use std::time::Duration;

use kube::Api;
use operator::{Operator, apply_examples, converged, eventually};
use orgaccess::api::Member;
use support::metrics::{sample, scrape};

/// Whether john-smith (in limited-administrators) reports `domain` in `service`.
async fn john_holds(members: &Api<Member>, service: &str, domain: &str) -> bool {
    let Ok(m) = members.get("john-smith").await else {
        return false;
    };
    m.status.is_some_and(|s| {
        s.privileges
            .iter()
            .any(|p| p.privilege.service.as_str() == service && p.privilege.domain == domain)
    })
}

async fn grant(ns: &str, domain: &str) {
    let patch = format!(
        r#"[{{"op": "add", "path": "/spec/privileges/-", "value": {{"service": "Search", "domain": "{domain}", "level": "View"}}}}]"#
    );
    let out = support::kubectl(
        support::ADMIN,
        &[
            "patch",
            "-n",
            ns,
            "group",
            "limited-administrators",
            "--type=json",
            "-p",
            &patch,
        ],
    )
    .await;
    support::assert_success("granting a privilege", &out);
}

#[tokio::test]
async fn the_operator_recovers_from_an_apiserver_restart_without_restarting() {
    let client = support::admin_client().await;
    operator::install_crds().await;
    let ns = support::fresh_namespace(&client).await;
    apply_examples(&ns).await;
    let mut op = Operator::start_in("apiserver-restart", 0, Some(&ns));
    eventually("the examples converge", Duration::from_secs(90), || async {
        converged(&client, &ns).await.then_some(())
    })
    .await;

    let admin = op.admin_addr().await;
    assert_eq!(
        leadership_lost(admin).await,
        Some(0.0),
        "no term lost before the restart"
    );

    // A change, and the apiserver gone before the operator can be sure to
    // have written its consequences; down longer than the renew deadline
    // (10 s), so every watch fails and the operator stops leading.
    grant(&ns, "QueryPipelines").await;
    support::plane()
        .restart_apiserver(Duration::from_secs(12))
        .await
        .expect("the apiserver comes back");

    // A change after the restart: only resumed watches can see it.
    grant(&ns, "ReplayAnyQuery").await;
    let members: Api<Member> = Api::namespaced(client.clone(), &ns);
    eventually(
        "both grants in john-smith's status",
        Duration::from_secs(120),
        || async {
            (john_holds(&members, "Search", "QueryPipelines").await
                && john_holds(&members, "Search", "ReplayAnyQuery").await)
                .then_some(())
        },
    )
    .await;
    eventually(
        "everything converged again",
        Duration::from_secs(60),
        || async { converged(&client, &ns).await.then_some(()) },
    )
    .await;
    assert!(op.is_running(), "the operator exited: {}", op.logs());
    // The path taken: the term was lost and won back in the same process.
    let lost = leadership_lost(admin).await;
    assert!(
        lost.is_some_and(|n| n >= 1.0),
        "the operator never stopped leading ({lost:?}): the outage did not test the new term"
    );
    assert_eq!(leader(admin).await, Some(1.0), "leading again");
}

async fn leadership_lost(addr: std::net::SocketAddr) -> Option<f64> {
    sample(
        &scrape(addr).await,
        "orgaccess_controller_leadership_lost_total",
    )
}

async fn leader(addr: std::net::SocketAddr) -> Option<f64> {
    sample(&scrape(addr).await, "orgaccess_controller_leader")
}
