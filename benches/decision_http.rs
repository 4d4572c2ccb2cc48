//! The decision service over HTTP, and Open Policy Agent on the same
//! questions and data: one binary, three modes, driven by
//! `scripts/decision-bench.sh` (which builds OPA, pins each server to a core
//! and reports; docs/performance.md).
//!
//! - `serve ADDR`: the decision service's router (`orgaccess::decision::router`,
//!   the HTTPS listener's routes, here over plain HTTP like OPA's) on the
//!   benchmarks' organization (`benches/org`), until killed.
//! - `export DIR`: the same organization as OPA data (`DIR/data.json`): each
//!   group's, member's and key's privileges already resolved by orgaccess, so
//!   the Rego policy (`scripts/decision-bench/policy.rego`) only looks up and
//!   compares, and the key digests by SHA-256.
//! - `load SERVER ADDR SERVER_PID SECONDS CONNECTIONS`: asks each question
//!   (a member check, a key check, a key verification, [`BATCH`] checks in
//!   one request) once and checks the answer against the core's (in process), then keeps
//!   CONNECTIONS keep-alive HTTP/1.1 connections busy with it for SECONDS
//!   (one request in flight per connection) and prints one JSON line per
//!   question: decisions/s, latency quantiles, and the server's CPU time
//!   (`/proc/PID/stat`) so decisions per CPU-second do not depend on the
//!   load generator keeping up. SERVER is `orgaccess` or `opa`.
//!
//! Without a mode (as `cargo bench` runs it) it does nothing.

mod org;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use orgaccess::core::catalog;
use orgaccess::core::decision::{Need, Principal, Verb, verify_key};
use orgaccess::core::privilege::{Abilities, Level, PrivilegeSet};
use orgaccess::decision::{Gate, Reach, Service, router};
use orgaccess::index::Index;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLIENT_IP: &str = "10.1.2.3";

/// The operator's allocator (src/main.rs), so the server measured allocates
/// as the product does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(args[1].parse().expect("ADDR")),
        Some("export") => export(std::path::Path::new(&args[1])),
        Some("load") => load(&args[1..]),
        _ => eprintln!("decision_http: run scripts/decision-bench.sh"),
    }
}

fn organization() -> Arc<Index> {
    let index = org::index();
    org::add_key(&index);
    index
}

/// The checks in one request of the batch question.
const BATCH: usize = 50;

/// The questions: a member check, a key check, a key verification, and
/// [`BATCH`] of the two checks (alternating) in one request.
struct Question {
    name: &'static str,
    /// Decisions per request: 1, or [`BATCH`].
    per_request: usize,
    /// Path and body for orgaccess, then for OPA.
    orgaccess: (&'static str, Value),
    opa: (&'static str, Value),
    /// The field of the answer that decides (`allowed` or `valid`; of each
    /// answer of a batch) and its value as the core answers in process.
    field: &'static str,
    expected: bool,
}

/// A member and a target it holds through a per-resource Edit grant, so the
/// answer is `allowed` and names its group (the fuller path).
fn member_target(index: &Index) -> (String, String) {
    let ns = index.namespace(org::NS);
    let grantees = ns.grantees();
    let sources = catalog::lookup(catalog::Service::Content, "Sources").unwrap();
    for i in 100..org::MEMBERS {
        let member = format!("user-{i}");
        for g in &ns.state.members[&member].groups {
            if let Some(grant) = grantees.groups[g].get(sources)
                && let Some((r, _)) = grant.resources.iter().find(|(_, l)| *l == Level::Edit)
            {
                return (member, format!("Content/Sources/{}", r.name()));
            }
        }
    }
    ("user-100".into(), "Content/Sources/source-007".into())
}

fn questions(index: &Index) -> Vec<Question> {
    let ns = index.namespace(org::NS);
    let now = jiff::Timestamp::now();
    let (member, target) = member_target(index);
    let member = member.as_str();
    let member_check = json!({"namespace": org::NS, "principal": {"member": member},
                              "verb": "edit", "target": target});
    let key_check = json!({"namespace": org::NS, "principal": {"apiKey": org::KEY_NAME},
                           "verb": "allowed", "target": "Search/ExecuteQueries"});
    let verify = json!({"namespace": org::NS, "key": org::KEY_VALUE, "clientIp": CLIENT_IP});
    let ask = |p: Principal, verb: Verb, target: &str| {
        ns.check(p, &Need::parse(verb, target).unwrap(), now)
            .allowed
    };
    let verified = verify_key(
        &ns.state,
        &ns.grantees(),
        &index.key_table(org::NS),
        org::KEY_VALUE.as_bytes(),
        CLIENT_IP.parse().unwrap(),
        now,
    )
    .is_ok();
    let member_allowed = ask(Principal::Member(member), Verb::Edit, &target);
    let key_allowed = ask(
        Principal::ApiKey(org::KEY_NAME),
        Verb::Allowed,
        "Search/ExecuteQueries",
    );
    assert_eq!(
        member_allowed, key_allowed,
        "the batch's answers are all one"
    );
    let batch: Vec<Value> = (0..BATCH)
        .map(|i| {
            if i % 2 == 0 {
                member_check.clone()
            } else {
                key_check.clone()
            }
        })
        .collect();
    vec![
        Question {
            name: "check a member",
            expected: member_allowed,
            per_request: 1,
            orgaccess: ("/v1/check", member_check.clone()),
            opa: ("/v1/data/orgaccess/check", json!({ "input": member_check })),
            field: "allowed",
        },
        Question {
            name: "check an API key",
            expected: key_allowed,
            per_request: 1,
            orgaccess: ("/v1/check", key_check.clone()),
            opa: ("/v1/data/orgaccess/check", json!({ "input": key_check })),
            field: "allowed",
        },
        Question {
            name: "verify a key value",
            expected: verified,
            per_request: 1,
            orgaccess: ("/v1/keys/verify", verify.clone()),
            opa: ("/v1/data/orgaccess/verify", json!({ "input": verify })),
            field: "valid",
        },
        Question {
            name: "50 checks in one request",
            expected: member_allowed,
            per_request: BATCH,
            orgaccess: ("/v1/check/batch", json!({ "checks": batch })),
            opa: (
                "/v1/data/orgaccess/batch",
                json!({ "input": { "checks": batch } }),
            ),
            field: "allowed",
        },
    ]
}

fn serve(addr: SocketAddr) {
    let index = organization();
    let service = Service {
        index,
        gate: Gate::Fixed(Reach::Every),
        default_namespace: Some(org::NS.into()),
        usage: Default::default(),
        metrics: Default::default(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        println!("serving on {addr}");
        axum::serve(listener, router(service)).await.unwrap();
    });
}

/// A privilege set as the Rego policy reads it: by `Service/Domain`, the
/// domain-wide level (0 none, 1 view, 2 edit), the abilities, and the
/// per-resource levels.
fn privileges_json(set: &PrivilegeSet) -> Value {
    let rank = |l: Level| match l {
        Level::None => 0,
        Level::View => 1,
        Level::Edit => 2,
    };
    let mut out = serde_json::Map::new();
    for (d, g) in set.iter() {
        let dom = catalog::domain(d);
        let mut abilities = serde_json::Map::new();
        for (name, a) in [
            ("create", Abilities::CREATE),
            ("allowed", Abilities::ALLOWED),
            ("push", Abilities::PUSH),
        ] {
            if g.abilities.contains(a) {
                abilities.insert(name.into(), true.into());
            }
        }
        let resources: BTreeMap<String, u8> = g
            .resources
            .iter()
            .map(|(r, l)| (r.name().to_string(), rank(l)))
            .collect();
        out.insert(
            format!("{}/{}", dom.service.as_str(), dom.name),
            json!({"level": rank(g.level), "abilities": abilities, "resources": resources}),
        );
    }
    Value::Object(out)
}

fn export(dir: &std::path::Path) {
    use sha2::Digest;
    let index = organization();
    let ns = index.namespace(org::NS);
    let grantees = ns.grantees();
    let now = jiff::Timestamp::now();
    let groups: serde_json::Map<String, Value> = grantees
        .groups
        .iter()
        .map(|(n, p)| (n.clone(), json!({ "privileges": privileges_json(p) })))
        .collect();
    let members: serde_json::Map<String, Value> = ns
        .state
        .members
        .values()
        .map(|m| {
            (
                m.name.clone(),
                json!({"groups": m.groups, "accepted": m.accepted}),
            )
        })
        .collect();
    let keys: serde_json::Map<String, Value> = ns
        .state
        .api_keys
        .values()
        .map(|k| {
            let standing = orgaccess::core::apikey::Standing::of(k, now);
            let held = &grantees.api_keys[&k.name];
            (
                k.name.clone(),
                json!({
                    "enabled": k.enabled,
                    "expiresNs": standing.expires.as_nanosecond() as i64,
                    "allowedIps": k.allowed_ips,
                    "deniedIps": k.denied_ips,
                    "privileges": privileges_json(held),
                    "specs": held.to_specs(),
                }),
            )
        })
        .collect();
    let digest = hex::encode(sha2::Sha256::digest(org::KEY_VALUE.as_bytes()));
    let data = json!({"org": {"namespaces": {org::NS: {
        "groups": groups,
        "members": members,
        "apiKeys": keys,
        "keyDigests": {digest: org::KEY_NAME},
    }}}});
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("data.json"), data.to_string()).unwrap();
}

/// One HTTP/1.1 keep-alive connection: a request, then its response.
struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::with_capacity(8192),
        }
    }

    /// Sends `request` and reads one response; its status and body.
    async fn call(&mut self, request: &[u8]) -> (u16, Vec<u8>) {
        self.stream.write_all(request).await.unwrap();
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.read_more().await;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .unwrap()
            .to_string();
        let status: u16 = head[9..12].parse().unwrap();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        if let Some(len) = header("content-length") {
            let len: usize = len.parse().unwrap();
            while self.buf.len() < head_end + len {
                self.read_more().await;
            }
            return (status, self.buf[head_end..head_end + len].to_vec());
        }
        // Chunked: read up to the last chunk, then decode.
        while find(&self.buf[head_end..], b"0\r\n\r\n").is_none() {
            self.read_more().await;
        }
        let mut body = Vec::new();
        let mut rest = &self.buf[head_end..];
        loop {
            let line = find(rest, b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap(), 16).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[line + 2..line + 2 + size]);
            rest = &rest[line + 4 + size..];
        }
        (status, body)
    }

    async fn read_more(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn request(addr: SocketAddr, path: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn load(args: &[String]) {
    let server = args[0].as_str();
    let addr: SocketAddr = args[1].parse().expect("ADDR");
    let pid: u32 = args[2].parse().expect("SERVER_PID");
    let seconds: f64 = args[3].parse().expect("SECONDS");
    let connections: usize = args[4].parse().expect("CONNECTIONS");
    let index = organization();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for q in questions(&index) {
        let (path, body) = if server == "opa" {
            &q.opa
        } else {
            &q.orgaccess
        };
        let req = Arc::new(request(addr, path, body));
        runtime.block_on(async {
            // The answer first: the same as the core's.
            let (status, answer) = Conn::open(addr).await.call(&req).await;
            let answer: Value = serde_json::from_slice(&answer).unwrap();
            let answer = if server == "opa" {
                answer["result"].clone()
            } else {
                answer
            };
            assert_eq!(status, 200, "{server} {}: {answer}", q.name);
            let answers = match (q.per_request, server) {
                (1, _) => vec![answer.clone()],
                (_, "opa") => answer.as_array().cloned().unwrap_or_default(),
                _ => answer["answers"].as_array().cloned().unwrap_or_default(),
            };
            assert_eq!(answers.len(), q.per_request, "{server} {}: {answer}", q.name);
            for a in answers {
                assert_eq!(
                    a[q.field], q.expected,
                    "{server} {}: {answer} (the core answers {})",
                    q.name, q.expected
                );
            }
            let stop = Arc::new(AtomicBool::new(false));
            let warm = Duration::from_millis(500);
            let mut tasks = Vec::new();
            for _ in 0..connections {
                let (req, stop) = (req.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    let mut conn = Conn::open(addr).await;
                    let started = Instant::now();
                    let mut times = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let (status, _) = conn.call(&req).await;
                        assert_eq!(status, 200);
                        if started.elapsed() > warm {
                            times.push(t.elapsed());
                        }
                    }
                    times
                }));
            }
            tokio::time::sleep(warm).await;
            let cpu0 = cpu_seconds(pid);
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
            let cpu = cpu_seconds(pid) - cpu0;
            let wall = t0.elapsed().as_secs_f64();
            stop.store(true, Ordering::Relaxed);
            let mut times = Vec::new();
            for t in tasks {
                times.extend(t.await.unwrap());
            }
            times.sort();
            let n = times.len();
            let q_us = |p: f64| times[((n as f64 * p) as usize).min(n - 1)].as_secs_f64() * 1e6;
            // Latencies are per request; decisions count every check.
            let decisions = n * q.per_request;
            println!(
                "{}",
                json!({
                    "server": server,
                    "question": q.name,
                    "answer": q.expected,
                    "connections": connections,
                    "per_request": q.per_request,
                    "decisions": decisions,
                    "decisions_per_s": (decisions as f64 / wall).round(),
                    "server_cpu_s": cpu,
                    "decisions_per_cpu_s": if cpu > 0.0 { (decisions as f64 / cpu).round() } else { 0.0 },
                    "p50_us": q_us(0.50),
                    "p99_us": q_us(0.99),
                })
            );
        });
    }
}
