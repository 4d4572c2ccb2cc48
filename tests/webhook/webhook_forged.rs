//! Forged admission reviews and bearer tokens against the real webhook
//! process, as an attacker inside the cluster sends them (docs/security.md): what
//! they leave behind (Events, records, cached requester views, memory), and
//! what they cost the apiserver (TokenReviews), while genuine requests pass.

use crate::support;

use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, DeleteParams, PostParams};
use orgaccess::webhook::{self, Endpoint};
use serde_json::{Value, json};
use support::process::{
    CHART_MEMORY_LIMIT_KIB, post, request, review, start, start_with, token_reviews_served,
};
use support::{ADMIN, admin_client, fresh_namespace, kubectl, kubectl_stdin, plane};

/// The chart's defaults (no client certificate required, Events on): anyone
/// who reaches the port can POST a review. A forged one claiming
/// `system:masters` is judged but leaves no Event and only records marked
/// `caller: not authenticated`; a flood of forged reviews with huge group
/// lists and ever new user names leaves the requester cache at what the
/// organization's Members name, the process under the chart's memory limit,
/// and the apiserver's own admissions pass meanwhile.
#[tokio::test]
async fn forged_reviews_leave_no_event_no_unmarked_record_and_bounded_caches() {
    let _flood = support::flood_guard().await;
    let audit = tempfile::tempdir().unwrap();
    let audit_file = audit.path().join("activity.jsonl");
    let p = start_with(
        false,
        &[
            "--webhook-events",
            "true",
            "--activity-file",
            audit_file.to_str().unwrap(),
        ],
    )
    .await;
    let port = p.port;
    let client = admin_client().await;
    let ns = fresh_namespace(&client).await;
    let name = format!("orgaccess-forged-{ns}");
    let vwc = webhook::webhook_configuration(
        &name,
        &Endpoint::Url(format!("https://127.0.0.1:{port}/validate")),
        plane().ca_pem().as_bytes(),
        Some(webhook::only_namespace(&ns)),
    );
    let configs = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    configs.create(&PostParams::default(), &vwc).await.unwrap();
    let create = |who: &'static str, obj: Value| {
        let ns = ns.clone();
        async move {
            kubectl_stdin(
                who,
                &["create", "-n", &ns, "-f", "-"],
                Some(&obj.to_string()),
            )
            .await
        }
    };
    // Wait until the apiserver calls the webhook (a dry run only it refuses).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let probe = json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
            "metadata": {"name": "probe"},
            "spec": {"privileges": [{"service": "Analytics", "domain": "NoSuchDomain", "level": "View"}]}});
        let out = kubectl_stdin(
            ADMIN,
            &["create", "--dry-run=server", "-n", &ns, "-f", "-"],
            Some(&probe.to_string()),
        )
        .await;
        if String::from_utf8_lossy(&out.stderr).contains("validate.orgaccess.dev") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the apiserver never called the webhook"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The organization, through the apiserver: members named by a user and by a group.
    let org = json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Organization",
        "metadata": {"name": "acme"}, "spec": {"displayName": "Acme"}});
    support::assert_success("the Organization", &create(ADMIN, org).await);
    for (member, kind, subject) in [("alice", "User", "alice"), ("ops", "Group", "oidc:ops")] {
        let m = json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Member",
            "metadata": {"name": member},
            "spec": {"identity": {"provider": "Email", "username": format!("{member}@example.com")},
                     "groups": [], "subjects": [{"kind": kind, "name": subject}], "accepted": true}});
        support::assert_success(member, &create(ADMIN, m).await);
    }

    let anyone = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let forged = {
        let ns = ns.clone();
        move |uid: &str, user: &str, groups: Value, dry_run: bool| {
            let mut r = request(
                &ns,
                uid,
                json!({"privileges": [{"service": "Analytics", "domain": "Reports", "level": "View"}]}),
            );
            r["userInfo"] = json!({"username": user, "groups": groups});
            r["dryRun"] = json!(dry_run);
            review(r)
        }
    };
    // Until the webhook's cache holds alice: a forged review as alice maps her.
    let records = |uid_prefix: &str| -> Vec<Value> {
        std::fs::read_to_string(&audit_file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["uid"].as_str().is_some_and(|u| u.starts_with(uid_prefix)))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in 0.. {
        let uid = format!("probe-{n}");
        post(&anyone, port, forged(&uid, "alice", json!([]), true))
            .await
            .unwrap();
        if records(&uid)
            .iter()
            .any(|r| r["members"] == json!(["alice"]))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the webhook never cached alice");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The forged review of docs/security.md: admin, system:masters, not a dry run.
    let answer = post(
        &anyone,
        port,
        forged("forged-admin", "admin", json!(["system:masters"]), false),
    )
    .await
    .unwrap();
    assert_eq!(
        answer["response"]["allowed"], true,
        "judged as usual: {answer}"
    );

    // The flood, while the apiserver admits genuine changes.
    let many: Vec<String> = (0..webhook::limits::MAX_GROUPS)
        .map(|i| format!("forged-group-{i}"))
        .collect();
    // Eight forgers at once, 150 reviews each, each a new user name.
    let flood = futures::future::join_all((0..8).map(|t| {
        let (anyone, many) = (anyone.clone(), many.clone());
        let forged = forged.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..150 {
                let body = forged(
                    &format!("flood-{t}-{i}"),
                    &format!("mallory-{t}-{i}"),
                    json!(many),
                    false,
                );
                answers.push(post(&anyone, port, body).await);
            }
            answers
        })
    }));
    let flood = tokio::spawn(flood);
    let huge: Vec<String> = (0..600_000).map(|i| format!("g{i:x}")).collect();
    let huge_body = forged("huge", "mallory", json!(huge), false);
    drop(huge);
    let huge_flood = {
        let anyone = anyone.clone();
        tokio::spawn(async move {
            futures::future::join_all((0..16).map(|_| post(&anyone, port, huge_body.clone()))).await
        })
    };
    for i in 0..5 {
        let g = json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
            "metadata": {"name": format!("genuine-{i}")},
            "spec": {"privileges": [{"service": "Analytics", "domain": "Reports", "level": "View"}]}});
        support::assert_success(
            "a genuine admission during the flood",
            &create(ADMIN, g).await,
        );
    }
    for a in flood.await.unwrap().into_iter().flat_map(Result::unwrap) {
        let a = a.expect("an answer to a forged review");
        // An unmapped requester may not create a Group.
        assert_eq!(a["response"]["allowed"], false, "{a}");
    }
    for a in huge_flood.await.unwrap() {
        let a = a.expect("an answer to a huge forged review");
        assert_eq!(a["response"]["allowed"], false, "{a}");
        let m = a["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default();
        // Read and refused before its groups are parsed, or (16 bodies of
        // 5 MiB at once, 24 MiB of budget) not read in time, or (on a loaded
        // machine) turned away while the heavy lane is full or not judged
        // within the webhook's deadline: denied each way, with a bounded cost.
        assert!(
            m.contains("userInfo.groups lists 600000 groups")
                || m.contains("not received within")
                || m.contains("is busy with other requests")
                || m.contains("could not decide within"),
            "{m}"
        );
    }

    // The requester cache holds what the organization names: one view for
    // every identity no Member names, one for alice; not one per forger.
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", p.admin_port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
    };
    let (entries, bytes) = (
        gauge("orgaccess_requester_cache_entries"),
        gauge("orgaccess_requester_cache_bytes"),
    );
    eprintln!(
        "after 1,200 forged identities of 4,096 groups and 16 of 600,000: requester cache {entries} entries, {bytes} bytes; peak RSS {} KiB",
        p.peak_rss_kib()
    );
    assert!(entries <= 4, "{entries} requester views cached");
    assert!(bytes <= 16 * 1024, "{bytes} bytes of requester views");
    let peak = p.peak_rss_kib();
    assert!(
        peak < CHART_MEMORY_LIMIT_KIB,
        "peak RSS {peak} KiB\n{}",
        p.logs()
    );

    // No Event from any of it (Events are only for the authenticated
    // apiserver, and here the webhook cannot tell who calls).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = kubectl(
        ADMIN,
        &["get", "events.events.k8s.io", "-n", &ns, "-o", "json"],
    )
    .await;
    let events: Value = serde_json::from_slice(&events.stdout).unwrap();
    let ours: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reportingController"] == "orgaccess-webhook")
        .collect();
    assert!(
        ours.is_empty(),
        "Events published for unauthenticated callers: {ours:#?}"
    );
    // Every record is marked; the forged one says what it claimed.
    let all = records("");
    let forged = records("forged-admin");
    assert_eq!(forged.len(), 1, "{forged:#?}");
    assert_eq!(forged[0]["user"], "admin");
    eprintln!("{} records", all.len());
    assert!(all.len() > 100, "{} records", all.len());
    let unmarked: Vec<&Value> = all
        .iter()
        .filter(|r| r["caller"] != "not authenticated")
        .collect();
    assert!(unmarked.is_empty(), "unmarked records: {unmarked:#?}");
    let _ = configs.delete(&name, &DeleteParams::default()).await;
}

/// Client certificates optional (`--webhook-client-optional`, what the chart
/// does by default): the apiserver, presenting its certificate, is
/// authenticated (its decisions become Events, its records say `apiserver`);
/// a forged review from a caller without a certificate is still judged, but
/// publishes nothing and is recorded as `not authenticated`; a certificate
/// with another name is refused.
#[tokio::test]
async fn optional_client_certificates_tell_the_apiserver_from_forgers() {
    let _flood = support::flood_guard().await;
    let audit = tempfile::tempdir().unwrap();
    let audit_file = audit.path().join("activity.jsonl");
    let p = start_with(
        true,
        &[
            "--webhook-events",
            "true",
            "--webhook-client-optional",
            "true",
            "--activity-file",
            audit_file.to_str().unwrap(),
        ],
    )
    .await;
    let client = admin_client().await;
    let ns = fresh_namespace(&client).await;
    let name = format!("orgaccess-optional-{ns}");
    let vwc = webhook::webhook_configuration(
        &name,
        &Endpoint::Url(format!("https://127.0.0.1:{}/validate", p.port)),
        plane().ca_pem().as_bytes(),
        Some(webhook::only_namespace(&ns)),
    );
    let configs = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    configs.create(&PostParams::default(), &vwc).await.unwrap();
    let org = json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Organization",
        "metadata": {"name": "acme"}, "spec": {"displayName": "Acme"}});
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = kubectl_stdin(
            ADMIN,
            &["create", "-n", &ns, "-f", "-"],
            Some(&org.to_string()),
        )
        .await;
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let ca = || reqwest::Certificate::from_pem(plane().ca_pem().as_bytes()).unwrap();
    let anyone = reqwest::Client::builder()
        .add_root_certificate(ca())
        .build()
        .unwrap();
    let mut forged = request(&ns, "forged-optional", json!({"privileges": []}));
    forged["dryRun"] = json!(false);
    forged["object"]["metadata"]["name"] = json!("forged");
    forged["name"] = json!("forged");
    let answer = post(&anyone, p.port, review(forged.clone())).await.unwrap();
    assert_eq!(
        answer["response"]["allowed"], true,
        "judged as usual: {answer}"
    );
    let impostor = reqwest::Client::builder()
        .add_root_certificate(ca())
        .identity(support::webhook::client_identity("mallory"))
        .build()
        .unwrap();
    assert!(
        post(&impostor, p.port, review(forged)).await.is_err(),
        "a certificate with another name was served"
    );

    // The apiserver's create of the Organization is an Event; the forged
    // Group is none.
    let deadline = Instant::now() + Duration::from_secs(20);
    let events = loop {
        let out = kubectl(
            ADMIN,
            &["get", "events.events.k8s.io", "-n", &ns, "-o", "json"],
        )
        .await;
        let events: Value = serde_json::from_slice(&out.stdout).unwrap_or(json!({}));
        let ours: Vec<Value> = events["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["reportingController"] == "orgaccess-webhook")
            .collect();
        if ours
            .iter()
            .any(|e| e["regarding"]["kind"] == "Organization")
        {
            break ours;
        }
        assert!(
            Instant::now() < deadline,
            "no Event for the apiserver's admission: {ours:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !events.iter().any(|e| e["regarding"]["name"] == "forged"),
        "an Event for the forged review: {events:#?}"
    );
    let records: Vec<Value> = std::fs::read_to_string(&audit_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let caller = |uid_is: &dyn Fn(&str) -> bool| -> Vec<String> {
        records
            .iter()
            .filter(|r| uid_is(r["uid"].as_str().unwrap_or_default()))
            .map(|r| r["caller"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(caller(&|u| u == "forged-optional"), ["not authenticated"]);
    let genuine = caller(&|u| u != "forged-optional" && !u.starts_with("probe"));
    assert!(
        !genuine.is_empty() && genuine.iter().all(|c| c == "apiserver"),
        "{genuine:?}"
    );
    let _ = configs.delete(&name, &DeleteParams::default()).await;
}

/// Random bearer tokens at `/activity` (opaque ones and JWT-shaped ones)
/// cost the apiserver a bounded number of TokenReviews (a burst, then a
/// rate per source address), and a service account's token from another
/// address is reviewed meanwhile (403: authenticated, not a member), never
/// told the webhook is unavailable.
#[tokio::test]
async fn random_bearer_tokens_cannot_hold_the_token_reviews() {
    let _flood = support::flood_guard().await;
    use orgaccess::token_review::{SOURCE_BURST, SOURCE_RATE};
    let p = start().await;
    let admin = admin_client().await;
    let ns = fresh_namespace(&admin).await;
    let out = kubectl(ADMIN, &["-n", &ns, "create", "serviceaccount", "reader"]).await;
    support::assert_success("a service account", &out);
    let out = kubectl(ADMIN, &["-n", &ns, "create", "token", "reader"]).await;
    let genuine = support::assert_success("its token", &out)
        .trim()
        .to_string();
    assert!(orgaccess::token_review::jwt_shaped(&genuine), "{genuine}");

    let url = format!("http://127.0.0.1:{}/activity?namespace={ns}", p.admin_port);
    let before = token_reviews_served(&admin).await;
    let start = Instant::now();
    let flooder = reqwest::Client::new();
    let flood = futures::future::join_all((0..300).map(|i| {
        let token = if i % 2 == 0 {
            format!("{i:032x}")
        } else {
            format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ{i}In0.c2ln{i}")
        };
        flooder.get(&url).bearer_auth(token).send()
    }));
    // Another address: 127.0.0.2 is loopback too.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let genuine_ask = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        other
            .get(&url)
            .bearer_auth(&genuine)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let (answers, genuine_status) = tokio::join!(flood, genuine_ask);
    let elapsed = start.elapsed().as_secs_f64();
    let mut statuses = std::collections::BTreeMap::new();
    for a in answers {
        *statuses.entry(a.unwrap().status().as_u16()).or_insert(0) += 1;
    }
    let reviews = token_reviews_served(&admin).await - before;
    eprintln!(
        "300 random tokens in {elapsed:.1} s: {statuses:?}; {reviews} TokenReviews; the service account: {genuine_status}"
    );
    assert_eq!(genuine_status, 403, "the service account was not reviewed");
    assert!(statuses.get(&429).is_some_and(|n| *n > 0), "{statuses:?}");
    assert!(
        statuses.keys().all(|s| [401, 429, 503].contains(s)),
        "{statuses:?}"
    );
    // The flooder's burst and rate, and the service account's one review.
    let most = SOURCE_BURST + SOURCE_RATE * (elapsed + 1.0) + 1.0;
    assert!(reviews <= most, "{reviews} TokenReviews (at most {most})");
}
