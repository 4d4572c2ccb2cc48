//! Hostile traffic against the real webhook process (`orgaccess webhook`, as
//! the operator's identity, against the test control plane): oversized,
//! malformed and slow bodies, many connections, and the 200 × 1,000-resource
//! Group through the apiserver. Each request gets a well-formed denial (or its
//! connection is refused), a good request is still answered within the
//! deadline meanwhile, and the process's peak memory (VmHWM) stays under the
//! chart's 256 MiB limit.

use crate::support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, DeleteParams, PostParams};
use orgaccess::webhook::{self, Endpoint};
use serde_json::{Value, json};
use support::process::{
    ANSWER_WITHIN, CHART_MEMORY_LIMIT_KIB, assert_denial, assert_still_serving, good_review, https,
    post, request, review, start, start_with, tls_connect,
};
use support::{
    ADMIN, OPERATOR_USER, admin_client, fresh_namespace, install_crds, kubectl_stdin, plane,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn hostile_bodies_get_denials_in_bounded_memory_and_time() {
    let _flood = support::flood_guard().await;
    let mut p = start().await;
    let port = p.port;
    let client = https();
    let before = p.peak_rss_kib();

    // Malformed and oversized bodies, each answered with a denial.
    let mut zeros =
        b"{\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"zeros\",\"object\":["
            .to_vec();
    while zeros.len() < 8 * 1024 * 1024 - 16 {
        zeros.extend_from_slice(b"0,");
    }
    zeros.extend_from_slice(b"0]}}");
    let mut big_string = request("ns", "string", json!({}));
    big_string["object"]["metadata"]["annotations"] = json!({"x": "a".repeat(7 * 1024 * 1024)});
    // The most values a body may hold: a review whose object is ~740,000 empty lists.
    let mut lists = request("ns", "lists", json!({}));
    lists["object"]["spec"]["x"] = Value::Array(vec![json!([]); 740_000]);
    // (what, body, uid, allowed, words of the answer)
    let cases: Vec<(&str, Vec<u8>, &str, bool, &str)> = vec![
        (
            "not JSON",
            b"{{{{".to_vec(),
            "",
            false,
            "not an AdmissionReview",
        ),
        ("8 MiB of zeros", zeros, "zeros", false, "JSON values"),
        // Well-formed, only large: judged (and admitted: a trusted admin).
        ("a 7 MiB annotation", review(big_string), "string", true, ""),
        ("740,000 empty lists", review(lists), "lists", true, ""),
    ];
    for (what, body, uid, allowed, needle) in cases {
        let start = Instant::now();
        let answer = post(&client, port, body)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        if allowed {
            assert_eq!(answer["response"]["allowed"], true, "{what}: {answer}");
            assert_eq!(answer["response"]["uid"], uid, "{what}: {answer}");
        } else {
            let message = assert_denial(what, &answer, uid);
            assert!(message.contains(needle), "{what}: {message}");
        }
        assert!(
            start.elapsed() < ANSWER_WITHIN,
            "{what}: {:?}",
            start.elapsed()
        );
        assert_still_serving(port, what).await;
        eprintln!(
            "{what}: answered in {:?}; peak RSS {} KiB",
            start.elapsed(),
            p.peak_rss_kib()
        );
    }

    // The heaviest body, six at once: decisions run two at a time, the rest
    // wait (or are told the webhook is busy), and memory stays bounded.
    let mut lists = request("ns", "lists", json!({}));
    lists["object"]["spec"]["x"] = Value::Array(vec![json!([]); 740_000]);
    let heavy = review(lists);
    let answers =
        futures::future::join_all((0..6).map(|_| post(&client, port, heavy.clone()))).await;
    for a in answers {
        let a = a.expect("an answer");
        assert_eq!(a["response"]["uid"], "lists", "{a}");
    }
    eprintln!(
        "six heavy bodies at once: peak RSS {} KiB",
        p.peak_rss_kib()
    );
    assert_still_serving(port, "six heavy bodies").await;

    // Over the body cap: refused before it is read (a denial, or the
    // connection closed while the client still sends).
    let huge = vec![b' '; 9 * 1024 * 1024];
    match post(&client, port, huge).await {
        Ok(answer) => {
            let m = assert_denial("9 MiB", &answer, "");
            assert!(m.contains("larger than"), "{m}");
        }
        Err(e) => eprintln!("9 MiB body: connection closed ({e})"),
    }

    // Slow bodies: 40 connections that promise 1 MiB and send 10 bytes; each
    // is answered once the body timeout passes, and good requests meanwhile
    // are answered within the deadline.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut tls = tls_connect(port).await.unwrap();
        tls.write_all(
            b"POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1048576\r\n\r\n{\"apiVers",
        )
        .await
        .unwrap();
        slow.push(tls);
    }
    let start = Instant::now();
    assert_still_serving(port, "40 slow bodies").await;
    for mut tls in slow {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.contains("not received within"),
            "a slow body: {answer}"
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );

    // Many connections: past the limit (256) they are closed at once; the
    // webhook serves again when they go.
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..300 {
        match tls_connect(port).await {
            Ok(c) => open.push(c),
            Err(_) => refused += 1,
        }
    }
    // A connection past the limit may complete TCP and be closed before TLS.
    let mut closed = refused;
    for c in &mut open {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(5), c.read(&mut b)).await
        {
            closed += 1;
        }
    }
    assert!(closed >= 40, "only {closed} of 300 connections refused");
    drop(open);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_still_serving(port, "after 300 connections").await;

    // A forged review from a caller without the apiserver's certificate is
    // refused at TLS; /activity without a token is refused.
    let anonymous = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert!(
        anonymous
            .post(format!("https://127.0.0.1:{port}/validate"))
            .body(good_review("ns", "forged"))
            .send()
            .await
            .is_err(),
        "a caller without a client certificate was served"
    );
    let activity = reqwest::get(format!("http://127.0.0.1:{}/activity", p.admin_port))
        .await
        .unwrap();
    assert_eq!(activity.status(), 401);
    assert!(
        !p.logs().contains("uid=forged"),
        "the forged review was recorded"
    );

    let peak = p.peak_rss_kib();
    eprintln!("webhook peak RSS: {before} KiB at start, {peak} KiB after the hostile bodies");
    assert!(
        peak < CHART_MEMORY_LIMIT_KIB,
        "peak RSS {peak} KiB over the chart's limit\n{}",
        p.logs()
    );
    assert!(p.alive(), "the webhook died:\n{}", p.logs());
}

#[tokio::test]
async fn a_group_of_200_privileges_of_1000_resources_is_denied_in_a_few_kib() {
    let _flood = support::flood_guard().await;
    let mut p = start().await;
    let client = admin_client().await;
    let ns = fresh_namespace(&client).await;
    let name = format!("orgaccess-hostile-{ns}");
    let vwc = webhook::webhook_configuration(
        &name,
        &Endpoint::Url(format!("https://127.0.0.1:{}/validate", p.port)),
        plane().ca_pem().as_bytes(),
        Some(webhook::only_namespace(&ns)),
    );
    let configs = Api::<ValidatingWebhookConfiguration>::all(client);
    configs.create(&PostParams::default(), &vwc).await.unwrap();

    // Undeclared names (there is no Organization): one violation per name
    // before the fix. Names are short so that the object fits the
    // apiserver's 3 MiB limit; the full 200 × 1,000 is tried too.
    let group = |privileges: usize, resources: usize, name_len: usize| {
        let list: Vec<Value> = (0..resources)
            .map(|i| json!({"name": format!("{i:0>name_len$x}"), "level": "View"}))
            .collect();
        // One entry per (service, domain): `spec.privileges` is a map list
        // keyed by them, so the apiserver itself refuses a repeated pair.
        let custom = [
            ("Content", "Sources"),
            ("Content", "Extensions"),
            ("Search", "QueryPipelines"),
            ("Commerce", "MerchandisingHub"),
            ("Organization", "Groups"),
            ("Organization", "ApiKeys"),
        ];
        let privileges: Vec<Value> = (0..privileges)
            .map(|i| {
                let (service, domain) = custom[i % custom.len()];
                json!({"service": service, "domain": domain, "level": "Custom", "resources": list})
            })
            .collect();
        json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
               "metadata": {"name": "big"}, "spec": {"privileges": privileges}})
        .to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    // 200 × 1,000 is over the apiserver's request limit; six Custom domains
    // of 1,000 long undeclared names each (about 1.7 MB) reach the webhook.
    for (privileges, resources, name_len) in [(1, 2, 1), (200, 1000, 1), (6, 1000, 240)] {
        let manifest = group(privileges, resources, name_len);
        loop {
            let start = Instant::now();
            let out = kubectl_stdin(
                "alice",
                &["create", "--dry-run=server", "-n", &ns, "-f", "-"],
                Some(&manifest),
            )
            .await;
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!out.status.success(), "{privileges} × {resources} admitted");
            if !stderr.contains("validate.orgaccess.dev")
                && Instant::now() < deadline
                && privileges == 1
            {
                // The apiserver has not picked the configuration up yet.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            eprintln!(
                "{privileges} × {resources} ({} bytes): {} bytes of stderr in {:?}: {}",
                manifest.len(),
                stderr.len(),
                start.elapsed(),
                &stderr[..stderr.len().min(300)]
            );
            assert!(
                stderr.contains("denied the request") || stderr.contains("too large"),
                "{stderr}"
            );
            assert!(stderr.len() < 20 * 1024, "{} bytes of denial", stderr.len());
            break;
        }
    }
    let peak = p.peak_rss_kib();
    eprintln!("webhook peak RSS after the large groups: {peak} KiB");
    assert!(peak < CHART_MEMORY_LIMIT_KIB, "peak RSS {peak} KiB");
    assert!(p.alive(), "{}", p.logs());
    let _ = configs.delete(&name, &DeleteParams::default()).await;
    let _ = ADMIN;
}

/// Heavy bodies (the most values a body may hold, each slow to judge) sent
/// together, more than the decision slots can judge before the deadline:
/// a small request sent after them is judged in its own lane, not queued
/// behind them (and read outside the body budget they hold), so it is
/// admitted rather than refused as busy at the deadline.
#[tokio::test]
async fn small_requests_never_wait_behind_heavy_bodies() {
    let _flood = support::flood_guard().await;
    // A short deadline, so that the heavy bodies queued ahead would take
    // longer than it on a shared lane, on any machine.
    let p = start_with(
        true,
        &["--webhook-events", "false", "--webhook-deadline-ms", "2000"],
    )
    .await;
    let client = https();
    let mut lists = request("ns", "lists", json!({}));
    lists["object"]["spec"]["x"] = Value::Array(vec![json!([]); 740_000]);
    let heavy = review(lists);
    let flood = futures::future::join_all((0..24).map(|_| post(&client, p.port, heavy.clone())));
    let small = async {
        // Once the heavy bodies are read and queued for a decision slot.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let start = Instant::now();
        let answer = post(&https(), p.port, good_review("ns", "small")).await;
        (answer, start.elapsed())
    };
    let (heavy_answers, (answer, took)) = tokio::join!(flood, small);
    let busy = heavy_answers
        .iter()
        .filter(|a| {
            a.as_ref().is_ok_and(|a| {
                a.to_string().contains("busy") || a.to_string().contains("could not decide")
            })
        })
        .count();
    eprintln!(
        "a small request among 24 heavy bodies: answered in {took:?}; {busy} heavy bodies refused busy"
    );
    let answer = answer.expect("an answer");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert_eq!(answer["response"]["uid"], "small", "{answer}");
}

/// A listener that cannot bind ends the process with an error saying which
/// and why; it never keeps running without serving.
#[tokio::test]
async fn a_listener_that_cannot_bind_ends_the_process_with_why() {
    install_crds().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let certs = tempfile::tempdir().unwrap();
    let serving = plane().issue_serving_cert(&["127.0.0.1"]).unwrap();
    let (cert, key) = (certs.path().join("tls.crt"), certs.path().join("tls.key"));
    std::fs::write(&cert, &serving.cert_pem).unwrap();
    std::fs::write(&key, &serving.key_pem).unwrap();
    for (flag, which) in [
        ("--admin-addr", "binding the admin server"),
        ("--webhook-addr", "binding the webhook"),
    ] {
        let other = if flag == "--admin-addr" {
            "--webhook-addr"
        } else {
            "--admin-addr"
        };
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_orgaccess"))
                .args(["webhook", flag, &format!("127.0.0.1:{taken_port}")])
                .args([other, "127.0.0.1:0"])
                .arg("--webhook-cert-file")
                .arg(&cert)
                .arg("--webhook-key-file")
                .arg(&key)
                .env("KUBECONFIG", plane().kubeconfig_for(OPERATOR_USER))
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("{flag} taken: the process kept running"))
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} taken: exited successfully");
        assert!(
            stderr.contains(which) && stderr.contains(&taken_port.to_string()),
            "{flag} taken: {stderr}"
        );
    }
    drop(taken);
}
