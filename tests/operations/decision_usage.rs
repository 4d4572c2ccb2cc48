//! Key usage on the real control plane (docs/decision-service.md, "Key
//! usage"): `orgaccess run` with the plain gateway listener and
//! `--decision-usage-interval 10s`; a key verified 200 times in one
//! interval gets `status.lastUsedAt` in exactly one write (by field manager
//! `orgaccess-usage`), after which the controller writes nothing; a later
//! status write of the controller keeps the field; an unused key gets none;
//! the key value is in none of the operator's logs.

use crate::operator;
use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, WatchEvent, WatchParams};
use orgaccess::api::ApiKey;

use operator::{Operator, apply, apply_examples, eventually, settled};
use support::metrics::scrape;

const WAIT: Duration = Duration::from_secs(60);
const KEY: &str = "public-search";
const UNUSED: &str = "unused-key";
const INTERVAL: i64 = 10;

const UNUSED_KEY: &str = r#"
apiVersion: orgaccess.dev/v1alpha1
kind: ApiKey
metadata:
  name: unused-key
spec:
  displayName: Nobody uses this
  template: AnonymousSearch
"#;

/// One gateway request through the plain listener: the NGINX endpoint or
/// the Envoy one; its status.
async fn ask(client: &reqwest::Client, base: &str, envoy: bool, key: &str) -> u16 {
    let request = if envoy {
        client
            .get(format!("{base}/envoy/authz/page"))
            .header("X-Forwarded-For", "198.51.100.7")
    } else {
        client
            .get(format!("{base}/nginx/auth"))
            .header("X-Real-IP", "198.51.100.7")
    };
    match request.header("X-Api-Key", key).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// The modifications of one ApiKey from `resource_version` on, as watched.
fn watch_key(api: Api<ApiKey>, name: &str, resource_version: String) -> Arc<Mutex<Vec<ApiKey>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(290);
    tokio::spawn(async move {
        let mut stream = api.watch(&params, &resource_version).await.unwrap().boxed();
        while let Some(Ok(event)) = stream.next().await {
            if let WatchEvent::Modified(k) = event {
                out.lock().unwrap().push(k);
            }
        }
    });
    seen
}

/// `orgaccess_controller_status_writes_total{kind="ApiKey"}`.
fn apikey_status_writes(metrics: &str) -> String {
    metrics
        .lines()
        .find(|l| l.starts_with("orgaccess_controller_status_writes_total{kind=\"ApiKey\"}"))
        .unwrap_or_else(|| panic!("no ApiKey status writes series in:\n{metrics}"))
        .to_string()
}

fn usage_manager_owns_last_used(key: &ApiKey) -> bool {
    key.metadata.managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref() == Some("orgaccess-usage")
            && m.operation.as_deref() == Some("Apply")
            && m.subresource.as_deref() == Some("status")
            && m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.to_string().contains("f:lastUsedAt"))
    })
}

#[tokio::test]
async fn a_used_key_gets_last_used_at_in_one_write_and_an_unused_key_none() {
    let client = support::admin_client().await;
    operator::install_crds().await;
    let ns = support::fresh_namespace(&client).await;
    let port = support::free_port();
    let addr = format!("127.0.0.1:{port}");
    let operator = Operator::start_with(
        "decision-usage",
        0,
        Some(&ns),
        &[
            "--decision-nginx-addr",
            &addr,
            "--decision-default-namespace",
            &ns,
            "--decision-usage-interval",
            "10s",
        ],
    );
    apply_examples(&ns).await;
    apply(support::ADMIN, &ns, UNUSED_KEY).await;
    let keys: Api<ApiKey> = Api::namespaced(client.clone(), &ns);
    for name in [KEY, UNUSED] {
        eventually("the keys' status hash", WAIT, || async {
            keys.get(name).await.ok()?.status?.hash.map(|_| ())
        })
        .await;
    }
    settled(&client, &ns).await;
    let value = {
        let secret = Api::<Secret>::namespaced(client.clone(), &ns)
            .get(&format!("{KEY}-apikey"))
            .await
            .unwrap();
        String::from_utf8(secret.data.unwrap()["apiKey"].0.clone()).unwrap()
    };
    let before = keys.get(KEY).await.unwrap();
    let unused_before = keys.get(UNUSED).await.unwrap();
    assert!(before.status.as_ref().unwrap().last_used_at.is_none());
    let seen = watch_key(
        keys.clone(),
        KEY,
        before.metadata.resource_version.clone().unwrap(),
    );

    // The listener is up once a request is answered at all.
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    eventually("the decision listener", WAIT, || async {
        (ask(&http, &base, false, "oa_not_a_key").await == 401).then_some(())
    })
    .await;

    // 200 verifications inside one interval (started early in it, so they
    // cannot straddle a boundary), through both gateway endpoints, and
    // refused values besides.
    eventually("the start of an interval", WAIT, || async {
        let s = jiff::Timestamp::now().as_second().rem_euclid(INTERVAL);
        (1..=3).contains(&s).then_some(())
    })
    .await;
    let started = jiff::Timestamp::now();
    for i in 0..200 {
        assert_eq!(
            ask(&http, &base, i % 2 == 1, &value).await,
            200,
            "request {i}"
        );
        if i % 20 == 0 {
            assert_eq!(ask(&http, &base, false, "oa_unknown_value").await, 401);
        }
    }
    let finished = jiff::Timestamp::now();
    let coarse = |t: jiff::Timestamp| t.as_second() - t.as_second().rem_euclid(INTERVAL);
    assert_eq!(
        coarse(started),
        coarse(finished),
        "the burst crossed an interval boundary ({started} .. {finished}): too slow a machine"
    );
    let expected = jiff::Timestamp::from_second(coarse(started))
        .unwrap()
        .to_string();

    let used = eventually("status.lastUsedAt", WAIT, || async {
        let k = keys.get(KEY).await.ok()?;
        k.status.as_ref()?.last_used_at.clone().map(|t| (t, k))
    })
    .await;
    assert_eq!(used.0, expected, "the use, truncated to the interval");
    assert!(
        usage_manager_owns_last_used(&used.1),
        "lastUsedAt written by orgaccess-usage: {:#?}",
        used.1.metadata.managed_fields
    );

    // Two more intervals without a request: nothing else is written, by the
    // flusher (idle) or by the controller (the usage write is no change to it).
    tokio::time::sleep(Duration::from_secs(2 * INTERVAL as u64 + 5)).await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.len(),
            1,
            "exactly one write of the key since the burst: {:#?}",
            seen.iter()
                .map(|k| (&k.metadata.resource_version, &k.status))
                .collect::<Vec<_>>()
        );
        let mut written = seen[0].status.clone().unwrap();
        assert_eq!(
            written.last_used_at.take().as_deref(),
            Some(expected.as_str())
        );
        assert_eq!(
            Some(written),
            before.status.clone(),
            "the write changed lastUsedAt only"
        );
    }
    // kubectl shows it (LAST USED, as an age); the unused key shows none.
    let table = support::assert_success(
        "kubectl get apikeys",
        &support::kubectl(support::ADMIN, &["get", "apikeys", "-n", &ns]).await,
    );
    let column = table
        .lines()
        .next()
        .and_then(|h| h.find("LAST USED"))
        .unwrap_or_else(|| panic!("no LAST USED column: {table}"));
    let last_used = |name: &str| {
        let row = table.lines().find(|l| l.starts_with(name)).unwrap();
        let cell = row.get(column..).unwrap_or_default();
        (!cell.starts_with(' ')).then(|| {
            cell.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
    };
    assert!(
        last_used(KEY).is_some_and(|age| age.ends_with('s')),
        "{table}"
    );
    assert_eq!(last_used(UNUSED), None, "{table}");
    // `orgaccess explain apikey` from the cluster shows the instant.
    let explain = |name: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_orgaccess"))
            .args(["explain", "apikey", name, "-n", &ns])
            .env(
                "KUBECONFIG",
                support::plane().kubeconfig_for(support::ADMIN),
            )
            .env("NO_COLOR", "1")
            .output()
            .expect("orgaccess explain apikey");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(
        explain(KEY).contains(&format!("Last used:    {expected}")),
        "{}",
        explain(KEY)
    );
    assert!(explain(UNUSED).contains("Last used:    not recorded"));
    let unused = keys.get(UNUSED).await.unwrap();
    assert_eq!(unused.status.as_ref().unwrap().last_used_at, None);
    assert_eq!(
        unused.metadata.resource_version, unused_before.metadata.resource_version,
        "the unused key was not written"
    );

    // The metric counts the one write.
    let admin = operator.admin_addr().await;
    let metrics = scrape(admin).await;
    for (result, n) in [("written", 1), ("gone", 0), ("failed", 0)] {
        let line = format!("orgaccess_decision_usage_writes_total{{result=\"{result}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    // The operator exports the request metrics of its decision listener:
    // the burst's 200 verifications, and its refused values (at least the
    // 10 in the burst), never a value.
    for line in [
        r#"orgaccess_decision_requests_total{endpoint="nginx_auth",result="allowed",status="2xx"} 100"#,
        r#"orgaccess_decision_requests_total{endpoint="envoy_authz",result="allowed",status="2xx"} 100"#,
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    let unknown = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                r#"orgaccess_decision_refusals_total{endpoint="nginx_auth",reason="unknown_key"} "#,
            )
        })
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no unknown_key refusals in:\n{metrics}"));
    assert!(unknown >= 11.0, "{unknown} unknown_key refusals");
    assert!(!metrics.contains(&value) && !metrics.contains("oa_unknown_value"));

    // A reconcile of the key now (its Secret touched) finds the status it
    // wants already written: lastUsedAt is no difference to the controller.
    let writes = apikey_status_writes(&metrics);
    let reconciles = |logs: &str| -> Vec<String> {
        operator::without_colours(logs)
            .lines()
            .filter(|l| {
                l.contains("reconciled") && l.contains(&format!("object=ApiKey/{ns}/{KEY}"))
            })
            .map(str::to_string)
            .collect()
    };
    let before_touch = reconciles(&operator.logs()).len();
    let out = support::kubectl(
        support::ADMIN,
        &[
            "annotate",
            "secret",
            &format!("{KEY}-apikey"),
            "-n",
            &ns,
            "touched=1",
        ],
    )
    .await;
    support::assert_success("kubectl annotate", &out);
    let after_touch = eventually("a reconcile of the key", WAIT, || async {
        let all = reconciles(&operator.logs());
        (all.len() > before_touch).then(|| all[before_touch..].to_vec())
    })
    .await;
    assert!(
        after_touch
            .iter()
            .all(|l| l.contains("reconciled: no change")),
        "the controller changed the key's status: {after_touch:#?}"
    );
    assert_eq!(
        apikey_status_writes(&scrape(admin).await),
        writes,
        "the controller wrote the key's status because of lastUsedAt"
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "the key was written again");

    // A spec edit makes the controller write status (a new
    // observedGeneration): its apply keeps lastUsedAt.
    let out = support::kubectl(
        support::ADMIN,
        &[
            "patch",
            "apikey",
            KEY,
            "-n",
            &ns,
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"description":"used by the storefront"}}"#,
        ],
    )
    .await;
    support::assert_success("kubectl patch", &out);
    let edited = eventually("the controller's status for the edit", WAIT, || async {
        let k = keys.get(KEY).await.ok()?;
        (k.status.as_ref()?.observed_generation == k.metadata.generation).then_some(k)
    })
    .await;
    assert_eq!(
        edited.status.unwrap().last_used_at.as_deref(),
        Some(expected.as_str()),
        "the controller's status write kept lastUsedAt"
    );

    let logs = operator.logs();
    assert!(!logs.contains(&value), "the operator logged the key value");
    assert!(
        !logs.contains("oa_unknown_value"),
        "the operator logged a presented value"
    );
}
