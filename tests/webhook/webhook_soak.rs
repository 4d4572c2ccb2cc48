//! The soak (docs/performance.md, "Soak"): minutes of mixed hostile traffic at the real webhook
//! process (client certificates optional, as the chart installs it; Events
//! on) while a client creates and deletes Groups through the apiserver:
//! slow bodies, oversized bodies, heavy bodies, forged reviews with 4,096 and
//! 600,000 groups under ever new user names, random bearer tokens at
//! `/activity`. It reports the genuine requests' latency (the client's, and
//! the apiserver's own webhook histogram) without and during the attack, the
//! peak RSS and the requester cache; it asserts only that every genuine
//! request was admitted (with `failurePolicy: Fail`, one not answered within
//! the webhook's `timeoutSeconds` fails). Ignored: run it with
//! `bash scripts/soak.sh [SECONDS]` (docs/performance.md, "Soak").

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, DeleteParams, PostParams};
use orgaccess::api::Group;
use orgaccess::webhook::{self, Endpoint};
use serde_json::{Value, json};
use support::process::{post, request, review, start_with, tls_connect};
use support::{ADMIN, admin_client, fresh_namespace, kubectl_stdin, plane};
use tokio::io::AsyncWriteExt;

const WEBHOOK: &str = "validate.orgaccess.dev";

/// The apiserver's `apiserver_admission_webhook_admission_duration_seconds`
/// buckets for our webhook, summed over operations: `le` → count.
async fn apiserver_histogram(admin: &kube::Client) -> BTreeMap<String, f64> {
    let req = axum::http::Request::get("/metrics")
        .body(Vec::new())
        .unwrap();
    let text = admin.request_text(req).await.unwrap();
    let mut out = BTreeMap::new();
    for l in text.lines().filter(|l| {
        l.starts_with("apiserver_admission_webhook_admission_duration_seconds_bucket{")
            && l.contains(&format!("name=\"{WEBHOOK}\""))
    }) {
        let Some(le) = l.split("le=\"").nth(1).and_then(|r| r.split('"').next()) else {
            continue;
        };
        let v: f64 = l.rsplit(' ').next().unwrap().parse().unwrap();
        *out.entry(le.to_string()).or_insert(0.0) += v;
    }
    out
}

/// The upper bound of the bucket holding quantile `q` of the difference
/// `after - before` of two cumulative histograms.
fn bucket_quantile(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    q: f64,
) -> String {
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (bound, n - before.get(le).copied().unwrap_or(0.0))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let bound = buckets
        .iter()
        .find(|(_, n)| *n >= q * total)
        .map(|b| b.0)
        .unwrap_or(f64::INFINITY);
    format!("<= {} ms ({total} calls)", bound * 1000.0)
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Creates and deletes Groups through the apiserver until `stop`; the
/// creates' latencies, and the requests that failed.
async fn genuine(
    ns: String,
    phase: &'static str,
    stop: Arc<AtomicBool>,
) -> (Vec<Duration>, Vec<String>) {
    let api = Api::<Group>::namespaced(admin_client().await, &ns);
    let (mut took, mut failed) = (Vec::new(), Vec::new());
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("genuine-{phase}-{i}");
        let group: Group = serde_json::from_value(json!({
            "apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
            "metadata": {"name": name},
            "spec": {"privileges": [{"service": "Analytics", "domain": "Reports", "level": "View"}]}}))
        .unwrap();
        let start = Instant::now();
        match api.create(&PostParams::default(), &group).await {
            Ok(_) => took.push(start.elapsed()),
            Err(e) => failed.push(format!("create {name}: {e}")),
        }
        if let Err(e) = api.delete(&name, &DeleteParams::default()).await {
            failed.push(format!("delete {name}: {e}"));
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    took.sort();
    (took, failed)
}

#[tokio::test]
#[ignore = "a soak of minutes: bash scripts/soak.sh [SECONDS]"]
async fn soak_mixed_hostile_traffic() {
    let secs: u64 = std::env::var("ORGACCESS_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let baseline = Duration::from_secs((secs / 5).clamp(20, 120));
    let attack = Duration::from_secs(secs);
    let p = start_with(
        true,
        &[
            "--webhook-events",
            "true",
            "--webhook-client-optional",
            "true",
        ],
    )
    .await;
    let port = p.port;
    let admin = admin_client().await;
    let ns = fresh_namespace(&admin).await;
    let name = format!("orgaccess-soak-{ns}");
    let vwc = webhook::webhook_configuration(
        &name,
        &Endpoint::Url(format!("https://127.0.0.1:{port}/validate")),
        plane().ca_pem().as_bytes(),
        Some(webhook::only_namespace(&ns)),
    );
    let configs = Api::<ValidatingWebhookConfiguration>::all(admin.clone());
    configs.create(&PostParams::default(), &vwc).await.unwrap();
    let org = json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Organization",
        "metadata": {"name": "acme"}, "spec": {"displayName": "Acme"}});
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubectl_stdin(
        ADMIN,
        &["create", "-n", &ns, "-f", "-"],
        Some(&org.to_string()),
    )
    .await
    .status
    .success()
    {
        assert!(
            Instant::now() < deadline,
            "the Organization was never created"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (member, kind, subject) in [("alice", "User", "alice"), ("ops", "Group", "oidc:ops")] {
        let m = json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Member",
            "metadata": {"name": member},
            "spec": {"identity": {"provider": "Email", "username": format!("{member}@example.com")},
                     "groups": [], "subjects": [{"kind": kind, "name": subject}], "accepted": true}});
        let out = kubectl_stdin(
            ADMIN,
            &["create", "-n", &ns, "-f", "-"],
            Some(&m.to_string()),
        )
        .await;
        support::assert_success(member, &out);
    }

    // Without the attack.
    let h0 = apiserver_histogram(&admin).await;
    let stop = Arc::new(AtomicBool::new(false));
    let quiet = tokio::spawn(genuine(ns.clone(), "quiet", stop.clone()));
    tokio::time::sleep(baseline).await;
    stop.store(true, Ordering::Relaxed);
    let (quiet_took, quiet_failed) = quiet.await.unwrap();
    let h1 = apiserver_histogram(&admin).await;

    // During it.
    let stop = Arc::new(AtomicBool::new(false));
    let sent: Arc<BTreeMap<&str, AtomicU64>> = Arc::new(
        [
            "slow",
            "oversized",
            "heavy",
            "forged 4,096 groups",
            "forged 600,000 groups",
            "random tokens",
        ]
        .into_iter()
        .map(|k| (k, AtomicU64::new(0)))
        .collect(),
    );
    let count = |sent: &BTreeMap<&str, AtomicU64>, k: &str| {
        sent[k].fetch_add(1, Ordering::Relaxed);
    };
    let anyone = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut attackers = tokio::task::JoinSet::new();
    // 16 slow bodies at a time: 1 MiB promised, 1 KiB sent every 100 ms.
    for _ in 0..16 {
        let (stop, sent) = (stop.clone(), sent.clone());
        attackers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut tls) = tls_connect(port).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                count(&sent, "slow");
                let head = b"POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1048576\r\n\r\n";
                let mut ok = tls.write_all(head).await.is_ok();
                while ok && !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    ok = tls.write_all(&[b' '; 1024]).await.is_ok();
                }
            }
        });
    }
    let bodies: Vec<(&'static str, Vec<u8>, Duration)> = {
        let mut heavy = request(&ns, "heavy", json!({}));
        heavy["object"]["spec"]["x"] = Value::Array(vec![json!([]); 740_000]);
        let mut huge = request(&ns, "huge", json!({}));
        huge["userInfo"] = json!({"username": "mallory",
            "groups": (0..600_000).map(|i| format!("g{i:x}")).collect::<Vec<_>>()});
        vec![
            (
                "oversized",
                vec![b' '; 9 * 1024 * 1024],
                Duration::from_millis(500),
            ),
            ("heavy", review(heavy), Duration::from_millis(500)),
            (
                "forged 600,000 groups",
                review(huge),
                Duration::from_millis(500),
            ),
        ]
    };
    for (kind, body, pause) in bodies {
        let (stop, sent, anyone) = (stop.clone(), sent.clone(), anyone.clone());
        attackers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                count(&sent, kind);
                let _ = post(&anyone, port, body.clone()).await;
                tokio::time::sleep(pause).await;
            }
        });
    }
    let groups: Vec<String> = (0..webhook::limits::MAX_GROUPS)
        .map(|i| format!("forged-group-{i}"))
        .collect();
    for t in 0..2 {
        let (stop, sent, anyone, ns, groups) = (
            stop.clone(),
            sent.clone(),
            anyone.clone(),
            ns.clone(),
            groups.clone(),
        );
        attackers.spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut r = request(&ns, &format!("forged-{t}-{i}"), json!({"privileges": []}));
                r["userInfo"] = json!({"username": format!("mallory-{t}-{i}"), "groups": groups});
                r["dryRun"] = json!(false);
                count(&sent, "forged 4,096 groups");
                let _ = post(&anyone, port, review(r)).await;
                i += 1;
            }
        });
    }
    {
        let (stop, sent) = (stop.clone(), sent.clone());
        let url = format!("http://127.0.0.1:{}/activity?namespace={ns}", p.admin_port);
        attackers.spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                count(&sent, "random tokens");
                let _ = client
                    .get(&url)
                    .bearer_auth(format!("{i:032x}"))
                    .send()
                    .await;
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let busy = tokio::spawn(genuine(ns.clone(), "attack", stop.clone()));
    tokio::time::sleep(attack).await;
    stop.store(true, Ordering::Relaxed);
    let (busy_took, busy_failed) = busy.await.unwrap();
    let h2 = apiserver_histogram(&admin).await;
    attackers.abort_all();
    while attackers.join_next().await.is_some() {}

    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", p.admin_port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or("?")
            .to_string()
    };
    let peak = p.peak_rss_kib();
    eprintln!(
        "## soak: {} s without the attack, {secs} s during it",
        baseline.as_secs()
    );
    eprintln!("| | without the attack | during it |");
    eprintln!("|---|---|---|");
    eprintln!(
        "| genuine creates (each admitted) | {} | {} |",
        quiet_took.len(),
        busy_took.len()
    );
    for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
        eprintln!(
            "| client create latency {label} | {:?} | {:?} |",
            quantile(&quiet_took, q),
            quantile(&busy_took, q)
        );
        eprintln!(
            "| apiserver webhook latency {label} (bucket) | {} | {} |",
            bucket_quantile(&h0, &h1, q),
            bucket_quantile(&h1, &h2, q)
        );
    }
    eprintln!(
        "| slowest genuine create | {:?} | {:?} |",
        quiet_took.last().copied().unwrap_or_default(),
        busy_took.last().copied().unwrap_or_default()
    );
    for (k, n) in sent.iter() {
        eprintln!("| hostile: {k} | | {} |", n.load(Ordering::Relaxed));
    }
    eprintln!("| peak RSS (VmHWM) | | {} MiB |", peak / 1024);
    eprintln!(
        "| requester cache (entries, bytes) | | {}, {} |",
        gauge("orgaccess_requester_cache_entries"),
        gauge("orgaccess_requester_cache_bytes")
    );
    let failed: Vec<String> = quiet_failed.into_iter().chain(busy_failed).collect();
    assert!(failed.is_empty(), "genuine requests failed: {failed:#?}");
    assert!(
        !busy_took.is_empty(),
        "no genuine request during the attack"
    );
    let _ = configs.delete(&name, &DeleteParams::default()).await;
}
