//! Operability of the real operator binary: `/metrics` is complete from the
//! first scrape (every series at zero, build info, process metrics, the
//! leader gauge) in the format the scraper asks for; two replicas hand the
//! Lease over at once when the leader stops; a reconcile that changed
//! something says so at `info`, without values, in JSON lines with the
//! message at the top level.

use crate::operator;
use crate::support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use operator::{Operator, eventually};
use support::metrics::{sample, scrape_accepting as scrape};

async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases
        .get_opt(name)
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

#[tokio::test]
async fn metrics_are_complete_from_the_first_scrape_in_either_format() {
    operator::install_crds().await;
    // Its own namespace (and Lease there): other tests' operators never
    // touch what it watches.
    let ns = support::fresh_namespace(&support::admin_client().await).await;
    let op = Operator::start_in("metrics", 0, Some(&ns));
    let addr = op.admin_addr().await;

    // The first scrape, as soon as the server listens.
    let (content_type, body) = scrape(addr, None).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        sample(
            &body,
            &format!("orgaccess_build_info{{version=\"{version}\"}}")
        ),
        Some(1.0),
        "{body}"
    );
    for kind in ["Organization", "Group", "Member", "ApiKey"] {
        for error in ["conflict", "forbidden", "transport", "server"] {
            let series = format!(
                "orgaccess_controller_reconcile_failures_total{{kind=\"{kind}\",error=\"{error}\"}}"
            );
            assert_eq!(sample(&body, &series), Some(0.0), "{series} in:\n{body}");
        }
        for name in ["reconciles_total", "status_writes_total"] {
            let series = format!("orgaccess_controller_{name}{{kind=\"{kind}\"}}");
            assert!(sample(&body, &series).is_some(), "{series} in:\n{body}");
        }
    }
    // What the watches count, every watched kind at zero.
    for kind in ["Organization", "Group", "Member", "ApiKey", "AccessReview"] {
        for name in ["objects_skipped_total", "failures_total"] {
            let series = format!("orgaccess_watch_{name}{{kind=\"{kind}\"}}");
            assert_eq!(sample(&body, &series), Some(0.0), "{series} in:\n{body}");
        }
    }
    for series in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(sample(&body, series).is_some(), "{series} in:\n{body}");
    }
    assert!(
        sample(&body, "orgaccess_controller_leader").is_some(),
        "the leader gauge in:\n{body}"
    );

    // The only replica takes the Lease: the gauge says so.
    eventually("the leader gauge at 1", Duration::from_secs(60), || async {
        let (_, body) = scrape(addr, None).await;
        (sample(&body, "orgaccess_controller_leader") == Some(1.0)).then_some(())
    })
    .await;

    // A scraper asking for text/plain gets the classic format.
    let (content_type, classic) = scrape(addr, Some("text/plain")).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!classic.contains("# EOF"), "{classic}");
    assert!(
        classic.contains("# TYPE orgaccess_controller_reconciles_total counter\n"),
        "{classic}"
    );
    assert!(
        sample(&classic, "orgaccess_controller_leader") == Some(1.0),
        "{classic}"
    );
    // Prometheus's own Accept header prefers OpenMetrics.
    let (content_type, _) = scrape(
        addr,
        Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
    )
    .await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
}

#[tokio::test]
async fn the_leader_releases_the_lease_on_shutdown_and_the_next_replica_takes_over_at_once() {
    operator::install_crds().await;
    let lease = "handover-test";
    let client = support::admin_client().await;
    let ns = support::fresh_namespace(&client).await;
    let leases: Api<Lease> = Api::namespaced(client, &ns);
    let mut first = Operator::start_with("handover-first", 0, Some(&ns), &["--lease-name", lease]);
    eventually(
        "the first replica to lead",
        Duration::from_secs(60),
        || async {
            (holder(&leases, lease).await.as_deref() == Some("handover-first")).then_some(())
        },
    )
    .await;
    let second = Operator::start_with("handover-second", 0, Some(&ns), &["--lease-name", lease]);
    eventually(
        "the second replica to wait for the Lease",
        Duration::from_secs(60),
        || async {
            second
                .logs()
                .contains("another replica leads; waiting")
                .then_some(())
        },
    )
    .await;
    let second_admin = second.admin_addr().await;
    let (_, body) = scrape(second_admin, None).await;
    assert_eq!(sample(&body, "orgaccess_controller_leader"), Some(0.0));

    let stopped = Instant::now();
    assert!(
        first.terminate(Duration::from_secs(20)),
        "the first replica did not stop cleanly:\n{}",
        first.logs()
    );
    assert!(
        first.logs().contains("released the lease"),
        "{}",
        first.logs()
    );
    // Without the release the second replica would wait out the lease
    // duration (15 s) on its own clock; it tries every 2 s.
    eventually(
        "the second replica to lead",
        Duration::from_secs(30),
        || async {
            (holder(&leases, lease).await.as_deref() == Some("handover-second")).then_some(())
        },
    )
    .await;
    let took = stopped.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the second replica took over after {took:?}"
    );
    eventually(
        "the second replica's leader gauge at 1",
        Duration::from_secs(10),
        || async {
            let (_, body) = scrape(second_admin, None).await;
            (sample(&body, "orgaccess_controller_leader") == Some(1.0)).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn each_reconcile_that_changed_something_logs_one_info_line_without_values() {
    operator::install_crds().await;
    let client = support::admin_client().await;
    let ns = support::fresh_namespace(&client).await;
    let op = Operator::start_with("logs", 0, Some(&ns), &["--log-format", "json"]);
    operator::apply_examples(&ns).await;
    operator::settled(&client, &ns).await;

    // JSON lines, the message at the top level (what log pipelines read).
    let logs = op.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let reconciled = |level: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| {
                l["level"] == level
                    && l["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("reconciled"))
            })
            .collect()
    };
    let changed = reconciled("INFO");
    for object in [
        format!("Organization/{ns}/acme"),
        format!("Group/{ns}/"),
        format!("Member/{ns}/"),
        format!("ApiKey/{ns}/public-search"),
    ] {
        assert!(
            changed.iter().any(|l| l["message"] == "reconciled"
                && l["object"].as_str().is_some_and(|o| o.starts_with(&object))
                && l["changes"].as_str().is_some_and(|c| !c.is_empty())),
            "no info line for a changed {object}:\n{logs}"
        );
    }
    assert!(
        changed.iter().any(|l| l["changes"]
            .as_str()
            .is_some_and(|c| c.contains("secret created with a new key"))),
        "the key's Secret creation is not logged:\n{logs}"
    );
    // A reconcile that changed nothing is at debug only.
    assert!(
        reconciled("DEBUG")
            .iter()
            .any(|l| l["message"] == "reconciled: no change"),
        "{logs}"
    );
    assert!(
        changed.iter().all(|l| l["message"] == "reconciled"),
        "a no-op reconcile logged at info:\n{logs}"
    );
    // The key's value is never logged.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, &ns);
    let secret = secrets
        .list(&kube::api::ListParams::default().labels(orgaccess::controller::KEY_LABEL))
        .await
        .expect("listing key Secrets");
    let mut values = 0;
    for s in secret.items {
        for value in s.data.unwrap_or_default().values() {
            let value = String::from_utf8_lossy(&value.0).to_string();
            if value.len() >= 16 {
                values += 1;
                assert!(!logs.contains(&value), "a key value is in the log");
            }
        }
    }
    assert!(values > 0, "no key value to look for");
}
