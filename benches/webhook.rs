//! Webhook benchmarks: the admission handler called directly (body bytes in,
//! AdmissionReview bytes out) on an organization of 1,000 groups and 5,000
//! members. Figures are recorded in docs/performance.md.
//!
//! Besides criterion's per-decision times (decisions per second = 1 / time),
//! it prints the in-handler latency distribution (p50, p99, p99.9) of each
//! request type, measured call by call. The latency the webhook adds through
//! the apiserver is measured separately (`added_latency_through_the_apiserver`
//! in tests/webhook/webhook.rs, ignored by default).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

mod org;

use criterion::{BatchSize, Criterion};
use org::{CREATED, GROUPS, Lcg, MEMBERS, NS, group, group_spec, index, privileges};
use orgaccess::webhook::{Index, Policy, Validator};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

fn review(
    user: &str,
    groups: &[&str],
    operation: &str,
    kind: &str,
    name: &str,
    object: Value,
    old: Value,
) -> Vec<u8> {
    let resource = format!("{}s", kind.to_lowercase());
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4",
            "kind": { "group": "orgaccess.dev", "version": "v1alpha1", "kind": kind },
            "resource": { "group": "orgaccess.dev", "version": "v1alpha1", "resource": resource },
            "requestKind": { "group": "orgaccess.dev", "version": "v1alpha1", "kind": kind },
            "requestResource": { "group": "orgaccess.dev", "version": "v1alpha1", "resource": resource },
            "name": name,
            "namespace": NS,
            "operation": operation,
            "userInfo": { "username": user, "uid": user, "groups": groups },
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": { "kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1" },
        }
    })
    .to_string()
    .into_bytes();
    // As the apiserver sends it: after the mutating half wrote the record.
    orgaccess::webhook::mutate::mutated_review(&Policy::default(), &body)
}

fn object(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "orgaccess.dev/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": "5a7e0a4c-6b1f-4b8e-9f0e-0d4b8c6f1a21",
            "creationTimestamp": CREATED,
            "managedFields": [{
                "manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "orgaccess.dev/v1alpha1", "time": "2026-11-24T10:00:00Z",
                "fieldsType": "FieldsV1", "fieldsV1": { "f:spec": { ".": {}, "f:privileges": {} } }
            }],
        },
        "spec": spec,
    })
}

struct Case {
    name: &'static str,
    body: Vec<u8>,
    allowed: bool,
}

fn cases(index: &Index) -> Vec<Case> {
    // user-42's groups as cached, and one more.
    let before = index.namespace(NS).state.members["user-42"].groups.clone();
    let mut after = before.clone();
    after.push("group-999".into());
    after.sort();
    after.dedup();
    let p = |s: &str, d: &str, l: &str| json!({ "service": s, "domain": d, "level": l });
    let three = json!([p("Analytics", "Reports", "View"), p("Search", "QueryPipelines", "Edit"),
                       { "service": "Content", "domain": "Sources", "level": "Custom",
                         "resources": [{ "name": "source-007", "level": "Edit" }] }]);
    let new_group = object("Group", "new-group", json!({ "privileges": three }));
    // One of user-42's groups, as cached, to be changed.
    let changed = group(&before[0], group_spec(vec![]));
    index.apply(&changed);
    let changed_old = serde_json::to_value(&changed).unwrap();
    let mut changed_new = changed_old.clone();
    changed_new["spec"]["privileges"] = three.clone();
    let m = |groups: Value| {
        object(
            "Member",
            "user-42",
            json!({
                "identity": { "provider": "Email", "username": "user-42@example.com" },
                "groups": groups,
                "subjects": [{ "kind": "User", "name": "user-42" }],
                "accepted": true,
            }),
        )
    };
    let admin_groups = ["system:authenticated"];
    vec![
        Case {
            name: "administrator creates a group (allowed)",
            body: review(
                "user-1",
                &admin_groups,
                "CREATE",
                "Group",
                "new-group",
                new_group.clone(),
                Value::Null,
            ),
            allowed: true,
        },
        Case {
            name: "member grants beyond their privileges (denied)",
            body: review(
                "user-100",
                &admin_groups,
                "CREATE",
                "Group",
                "new-group",
                new_group.clone(),
                Value::Null,
            ),
            allowed: false,
        },
        Case {
            name: "administrator adds a member to a group (allowed)",
            body: review(
                "user-2",
                &admin_groups,
                "UPDATE",
                "Member",
                "user-42",
                m(json!(after)),
                m(json!(before)),
            ),
            allowed: true,
        },
        Case {
            name: "same, the cache lagging behind (overlay copies the state)",
            body: review(
                "user-2",
                &admin_groups,
                "UPDATE",
                "Member",
                "user-42",
                m(json!(["group-1", "group-2", "group-3"])),
                m(json!(["group-1", "group-2"])),
            ),
            allowed: true,
        },
        Case {
            name: "trusted principal creates a group (allowed)",
            body: review(
                "admin",
                &["system:masters"],
                "CREATE",
                "Group",
                "new-group",
                new_group,
                Value::Null,
            ),
            allowed: true,
        },
        Case {
            name: "trusted principal changes a group with members",
            body: review(
                "admin",
                &["system:masters"],
                "UPDATE",
                "Group",
                &before[0],
                changed_new,
                changed_old,
            ),
            allowed: true,
        },
    ]
}

fn validator(index: Arc<Index>) -> Validator {
    let mut registry = Registry::default();
    Validator::new(Policy::default(), index, &mut registry, 1000)
}

/// Call-by-call latency of each case, printed as p50/p99/p99.9 and decisions/s.
fn latency_report(v: &Validator, cases: &[Case], with: &str, n: usize) {
    println!(
        "\nin-handler latency ({GROUPS} groups, {MEMBERS} members{with}; up to {n} calls each, warm caches)"
    );
    for c in cases {
        // Warm up, and time the case: a slow one (milliseconds a call) is
        // called as often as fits in about 5 s, at least 200 times.
        let warm = Instant::now();
        for _ in 0..50 {
            black_box(v.handle(&c.body));
        }
        let per_call = warm.elapsed() / 50;
        let n = n
            .min((5.0 / per_call.as_secs_f64().max(1e-9)) as usize)
            .max(200);
        let mut times = Vec::with_capacity(n);
        let all = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            black_box(v.handle(&c.body));
            times.push(t.elapsed());
        }
        let total = all.elapsed();
        times.sort();
        let q = |f: f64| times[((n as f64 * f) as usize).min(n - 1)];
        println!(
            "  {:<52} p50 {:>7.1?}  p99 {:>7.1?}  p99.9 {:>7.1?}  {:>8.0} decisions/s  ({n} calls)",
            c.name,
            q(0.50),
            q(0.99),
            q(0.999),
            n as f64 / total.as_secs_f64()
        );
    }
    println!();
}

/// What the side-by-side admission script does to the webhook
/// (scripts/admission-bench.sh): a trusted principal creates a group, then the
/// created group reaches the index through the watch, over and over. Each
/// decision follows a change, so the namespace's caches are cold, as through
/// the apiserver; the watch's put is timed apart. Returns the created groups.
fn create_stream(
    v: &Validator,
    index: &Index,
    n: usize,
    report: bool,
) -> Vec<orgaccess::api::Group> {
    let spec = || {
        let p = |s: &str, d: &str, l: &str| json!({ "service": s, "domain": d, "level": l });
        json!({ "privileges": [p("Search", "ExecuteQueries", "Allowed")] })
    };
    let mut judged = Vec::with_capacity(n);
    let mut put = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("stream-{i}");
        let body = review(
            "admin",
            &["system:masters"],
            "CREATE",
            "Group",
            &name,
            object("Group", &name, spec()),
            Value::Null,
        );
        let t = Instant::now();
        black_box(v.handle(&body));
        judged.push(t.elapsed());
        let g: orgaccess::api::Group =
            serde_json::from_value(object("Group", &name, spec())).unwrap();
        let t = Instant::now();
        index.apply(&g);
        put.push(t.elapsed());
        created.push(g);
    }
    if report {
        for (what, times) in [
            ("judged (caches cold)", &mut judged),
            ("put by the watch", &mut put),
        ] {
            times.sort();
            let q = |f: f64| times[((n as f64 * f) as usize).min(n - 1)];
            println!(
                "  trusted create stream, {what:<28} p50 {:>7.1?}  p99 {:>7.1?}  p99.9 {:>7.1?}  ({n} creates)",
                q(0.50),
                q(0.99),
                q(0.999)
            );
        }
    }
    created
}

/// The decision service's questions, in process, on the same organization
/// (the decision service's target, docs/performance.md: p99 at most 5 µs for a key verification and a single
/// check). A key is added for the verification.
fn decision_latency(index: &Index) {
    use orgaccess::core::decision::{Need, Principal, Verb, check, verify_key};
    const N: usize = 100_000;
    org::add_key(index);
    let snap = index.namespace(NS);
    let grantees = snap.grantees();
    let table = index.key_table(NS);
    let need = Need::parse(Verb::Edit, "Content/Sources/source-007").unwrap();
    let now = jiff::Timestamp::now();
    let client: std::net::IpAddr = "10.1.2.3".parse().unwrap();
    let measure = |name: &str, f: &mut dyn FnMut()| {
        for _ in 0..10_000 {
            f();
        }
        let mut times = Vec::with_capacity(N);
        for _ in 0..N {
            let t = Instant::now();
            f();
            times.push(t.elapsed());
        }
        times.sort();
        let q = |p: f64| times[((N as f64 * p) as usize).min(N - 1)];
        println!(
            "  decision: {name:<42} p50 {:>7.2?}  p99 {:>7.2?}  p99.9 {:>7.2?}",
            q(0.50),
            q(0.99),
            q(0.999)
        );
    };
    println!("decision latency ({GROUPS} groups, {MEMBERS} members; {N} calls each)");
    measure("verify a key value", &mut || {
        black_box(
            verify_key(
                &snap.state,
                &grantees,
                &table,
                org::KEY_VALUE.as_bytes(),
                client,
                now,
            )
            .is_ok(),
        );
    });
    // As the decision service answers: the facts kept with the snapshot
    // (`Namespace::check`; the first call computes them).
    measure("check a member (3 groups)", &mut || {
        black_box(
            snap.check(Principal::Member("user-100"), &need, now)
                .allowed,
        );
    });
    measure("check an API key", &mut || {
        black_box(
            snap.check(Principal::ApiKey(org::KEY_NAME), &need, now)
                .allowed,
        );
    });
    // For reference: the core's uncached check (every fact recomputed).
    measure("check a member, uncached (core check)", &mut || {
        black_box(
            check(
                &snap.state,
                &grantees,
                Principal::Member("user-100"),
                &need,
                now,
            )
            .allowed,
        );
    });
    measure("check an API key, uncached (core check)", &mut || {
        black_box(
            check(
                &snap.state,
                &grantees,
                Principal::ApiKey(org::KEY_NAME),
                &need,
                now,
            )
            .allowed,
        );
    });
    println!();
}

fn main() {
    let index = index();
    let v = validator(index.clone());
    let cases = cases(&index);
    for c in &cases {
        let answer: Value = serde_json::from_slice(&v.handle(&c.body)).unwrap();
        assert_eq!(
            answer["response"]["allowed"], c.allowed,
            "{}: {answer}",
            c.name
        );
    }
    // `WEBHOOK_BENCH_PROFILE=<part of a case's name>`: that case alone,
    // called for about 10 s, for a profiler attached to this process
    // ("create stream": the trusted create stream, 2,000 creates a round).
    if std::env::var("WEBHOOK_BENCH_PROFILE").as_deref() == Ok("create stream") {
        for g in create_stream(&v, &index, 2000, true) {
            index.delete(&g);
        }
        let start = Instant::now();
        let mut rounds = 0u64;
        while start.elapsed().as_secs() < 10 {
            for g in create_stream(&v, &index, 2000, false) {
                index.delete(&g);
            }
            rounds += 1;
        }
        println!("create stream: {rounds} rounds of 2,000 creates in 10 s");
        return;
    }
    if let Ok(wanted) = std::env::var("WEBHOOK_BENCH_PROFILE") {
        let c = cases
            .iter()
            .find(|c| c.name.contains(&wanted))
            .unwrap_or_else(|| panic!("no case named like '{wanted}'"));
        let start = Instant::now();
        let mut calls = 0u64;
        while start.elapsed().as_secs() < 10 {
            black_box(v.handle(&c.body));
            calls += 1;
        }
        println!("{}: {calls} calls in 10 s", c.name);
        return;
    }
    decision_latency(&index);
    latency_report(&v, &cases, "", 20_000);
    for g in create_stream(&v, &index, 2000, true) {
        index.delete(&g);
    }
    println!();
    // Once a tenant's binding is recorded (the mutating half's annotation,
    // here on one group), ForeignBindings judges every change.
    let mut recorded = group("recorded", group_spec(vec![]));
    recorded.metadata.annotations = Some(
        [(
            orgaccess::core::bindings::ANNOTATION.to_string(),
            r#"{"spec.privileges":"tenant"}"#.to_string(),
        )]
        .into(),
    );
    index.apply(&recorded);
    latency_report(&v, &cases, ", a recorded binding", 20_000);
    index.delete(&recorded);

    let mut criterion = Criterion::default().configure_from_args();
    for c in &cases {
        criterion.bench_function(&format!("webhook: {}", c.name), |b| {
            b.iter(|| black_box(v.handle(&c.body)))
        });
    }
    // The first decision after the namespace changed recomputes the grantees'
    // privileges and the requester's view (a create stream into a big org).
    let mut rng = Lcg(99);
    criterion.bench_function(
        "webhook: first decision after a change (cold caches)",
        |b| {
            b.iter_batched(
                || {
                    index.apply(&group("touched", group_spec(privileges(&mut rng))));
                },
                |()| black_box(v.handle(&cases[0].body)),
                BatchSize::PerIteration,
            )
        },
    );
    watch_reads(&mut criterion);
    criterion.final_summary();
}

/// A watch event of a created Group, as the apiserver streams it (with the
/// creating client's managed fields), read by kube's `DeserializeGuard` and
/// by the index's [`orgaccess::index::Guarded`]: what each watch pays per
/// event before the index sees it.
fn watch_reads(criterion: &mut Criterion) {
    use kube::core::{DeserializeGuard, WatchEvent};
    use orgaccess::api::Group;
    use orgaccess::index::Guarded;

    let mut g =
        serde_json::to_value(group("created", group_spec(privileges(&mut Lcg(7))))).unwrap();
    g["metadata"]["uid"] = json!("5f0c1f8e-4a59-4f7e-a8a5-0f7b3d6c2e11");
    g["metadata"]["resourceVersion"] = json!("120345");
    g["metadata"]["generation"] = json!(1);
    g["metadata"]["creationTimestamp"] = json!("2026-12-07T20:39:03Z");
    g["metadata"]["managedFields"] = json!([{
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "orgaccess.dev/v1alpha1",
        "time": "2026-12-07T20:39:03Z", "fieldsType": "FieldsV1",
        "fieldsV1": { "f:spec": { ".": {}, "f:privileges": {} } }
    }]);
    // As the apiserver writes it: the type first (json! would sort the keys).
    let line = format!(r#"{{"type":"ADDED","object":{g}}}"#);
    let read = |e: &WatchEvent<Guarded<Group>>| matches!(e, WatchEvent::Added(Guarded(Ok(_))));
    assert!(read(&serde_json::from_str(&line).unwrap()));
    criterion.bench_function("watch: read a Group event (kube's DeserializeGuard)", |b| {
        b.iter(|| {
            black_box(serde_json::from_str::<WatchEvent<DeserializeGuard<Group>>>(&line).unwrap())
        })
    });
    criterion.bench_function("watch: read a Group event (Guarded)", |b| {
        b.iter(|| black_box(serde_json::from_str::<WatchEvent<Guarded<Group>>>(&line).unwrap()))
    });
    // The object before the type: serde buffers it, the guard reads a tree.
    let buffered = serde_json::to_string(&json!({ "type": "ADDED", "object": g })).unwrap();
    criterion.bench_function("watch: read a Group event, object first (Guarded)", |b| {
        b.iter(|| black_box(serde_json::from_str::<WatchEvent<Guarded<Group>>>(&buffered).unwrap()))
    });
}
