//! The webhook's transport against real clients (`orgaccess webhook`, the
//! real process): HTTP/2 chosen in ALPN by curl and by the apiserver, the
//! apiserver's reviews carried over one reused connection, HTTP/2's limits
//! against a hostile client speaking raw frames (too many streams, header
//! lists over the limit, a header block that never ends) while others are
//! served, and how long a connection may wait: an idle one survives Go's
//! 90 s-style pauses (here 12 s, past the old 10 s cut), a slow head does not.

use crate::support;

use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, DeleteParams, PostParams};
use orgaccess::webhook::{self, Endpoint, connection};
use orgaccess_testenv::WEBHOOK_CLIENT_NAME;
use support::metrics::sample;
use support::process::{
    CHART_MEMORY_LIMIT_KIB, Process, assert_still_serving, good_review, start, tls_connect,
    tls_connect_alpn,
};
use support::{admin_client, fresh_namespace, kubectl_stdin, plane};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn metrics(p: &Process) -> String {
    support::metrics::scrape(([127, 0, 0, 1], p.admin_port).into()).await
}

fn count(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// curl (with nghttp2) POSTing a good review over `--http2`: the protocol
/// it used and the answer.
fn curl_h2(port: u16) -> (String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let client = plane().issue_client_cert(WEBHOOK_CLIENT_NAME).unwrap();
    let write = |name: &str, text: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (ca, cert, key) = (
        write("ca.crt", plane().ca_pem().as_bytes()),
        write("client.crt", client.cert_pem.as_bytes()),
        write("client.key", client.key_pem.as_bytes()),
    );
    let body = write("review.json", &good_review("ns", "curl"));
    let out = std::process::Command::new("curl")
        .args([
            "--http2",
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_version}",
        ])
        .arg("--cacert")
        .arg(&ca)
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .args(["-H", "content-type: application/json", "--data-binary"])
        .arg(format!("@{}", body.display()))
        .arg(format!("https://127.0.0.1:{port}/validate"))
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (answer, version) = text.rsplit_once('\n').unwrap();
    (version.to_string(), serde_json::from_str(answer).unwrap())
}

#[tokio::test]
async fn curl_and_the_apiserver_speak_h2_and_the_apiserver_reuses_its_connection() {
    let _flood = support::flood_guard().await;
    let p = start().await;

    let (version, answer) = curl_h2(p.port);
    assert_eq!(version, "2", "curl --http2 should get h2");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let m = metrics(&p).await;
    assert!(
        count(
            &m,
            r#"orgaccess_webhook_tls_handshakes_total{protocol="h2"}"#
        ) >= 1.0
    );
    assert!(
        count(
            &m,
            r#"orgaccess_webhook_http_requests_total{protocol="h2"}"#
        ) >= 1.0
    );

    // The apiserver, through a configuration for one namespace.
    let client = admin_client().await;
    let ns = fresh_namespace(&client).await;
    let name = format!("orgaccess-h2-{ns}");
    let vwc = webhook::webhook_configuration(
        &name,
        &Endpoint::Url(format!("https://127.0.0.1:{}/validate", p.port)),
        plane().ca_pem().as_bytes(),
        Some(webhook::only_namespace(&ns)),
    );
    let configs = Api::<ValidatingWebhookConfiguration>::all(client);
    configs.create(&PostParams::default(), &vwc).await.unwrap();
    let before = metrics(&p).await;
    let h2_requests = |m: &str| count(m, r#"orgaccess_webhook_http_requests_total{protocol="h2"}"#);
    let h2_handshakes = |m: &str| {
        count(
            m,
            r#"orgaccess_webhook_tls_handshakes_total{protocol="h2"}"#,
        )
    };
    let group = |i: usize| {
        format!(
            r#"{{"apiVersion":"orgaccess.dev/v1alpha1","kind":"Group","metadata":{{"name":"g{i}"}},"spec":{{"privileges":[]}}}}"#
        )
    };
    // Until the apiserver has picked the configuration up.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = kubectl_stdin(
            "alice",
            &["create", "--dry-run=server", "-n", &ns, "-f", "-"],
            Some(&group(0)),
        )
        .await;
        if h2_requests(&metrics(&p).await) > h2_requests(&before) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the apiserver never called over h2:\n{}",
            metrics(&p).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = metrics(&p).await;
    for i in 1..=20 {
        let _ = kubectl_stdin(
            "alice",
            &["create", "--dry-run=server", "-n", &ns, "-f", "-"],
            Some(&group(i)),
        )
        .await;
    }
    let after = metrics(&p).await;
    let (requests, handshakes) = (
        h2_requests(&after) - h2_requests(&first),
        h2_handshakes(&after) - h2_handshakes(&first),
    );
    eprintln!(
        "20 reviews from the apiserver: {requests} h2 requests, {handshakes} new h2 handshakes"
    );
    assert!(requests >= 20.0, "{requests} h2 requests for 20 reviews");
    // Each request served is timed, head to answer, in the server.
    let timed = |m: &str| count(m, "orgaccess_webhook_http_request_duration_seconds_count");
    assert_eq!(
        timed(&after) - timed(&first),
        requests,
        "every request served is timed"
    );
    assert!(
        handshakes <= 1.0,
        "{handshakes} handshakes for 20 sequential reviews"
    );
    assert_eq!(
        count(
            &after,
            r#"orgaccess_webhook_tls_handshakes_total{protocol="http/1.1"}"#
        ),
        count(
            &before,
            r#"orgaccess_webhook_tls_handshakes_total{protocol="http/1.1"}"#
        ),
        "the apiserver should not fall back to HTTP/1.1"
    );
    let _ = configs.delete(&name, &DeleteParams::default()).await;
}

// --- raw HTTP/2 frames, for a client that breaks the rules --------------------------

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;
const REFUSED_STREAM: u32 = 7;
const ENHANCE_YOUR_CALM: u32 = 11;

/// An HPACK integer with an `n`-bit prefix under `first`.
fn hpack_int(out: &mut Vec<u8>, mut v: usize, n: u8, first: u8) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128 + 128) as u8);
        v /= 128;
    }
    out.push(v as u8);
}

/// A header block of literal fields without indexing (no Huffman).
fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0);
        hpack_int(&mut out, name.len(), 7, 0);
        out.extend_from_slice(name.as_bytes());
        hpack_int(&mut out, value.len(), 7, 0);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn request_fields(extra: &[(&str, &str)]) -> Vec<u8> {
    let mut fields = vec![
        (":method", "POST"),
        (":scheme", "https"),
        (":path", "/validate"),
        (":authority", "127.0.0.1"),
        ("content-type", "application/json"),
    ];
    fields.extend_from_slice(extra);
    header_block(&fields)
}

/// An HTTP/2 connection past its preface and settings.
async fn h2_connect(port: u16) -> Tls {
    let mut tls = tls_connect_alpn(port, &[b"h2"]).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    tls.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    // The server's settings first; acknowledge them.
    let (kind, flags, _, _) = read_frame(&mut tls).await.expect("the server's settings");
    assert_eq!((kind, flags & 1), (SETTINGS, 0));
    tls.write_all(&frame(SETTINGS, 1, 0, &[])).await.unwrap();
    tls
}

/// One frame (type, flags, stream, payload); `None` when the connection ends.
async fn read_frame(tls: &mut Tls) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    tls.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    tls.read_exact(&mut payload).await.ok()?;
    Some((head[3], head[4], stream, payload))
}

/// What the server did on a connection within `within`.
#[derive(Debug, Default)]
struct Seen {
    /// Streams answered with headers, and the first byte of their block
    /// (`0x88`: `:status 200`, HPACK's static entry 8).
    answered: Vec<(u32, u8)>,
    /// Streams reset, with their error codes.
    reset: Vec<(u32, u32)>,
    /// Bytes of answer bodies, by stream.
    data: std::collections::BTreeMap<u32, Vec<u8>>,
    goaway: Option<u32>,
    closed: bool,
}

async fn watch(tls: &mut Tls, within: Duration, until: impl Fn(&Seen) -> bool) -> Seen {
    let mut seen = Seen::default();
    let deadline = tokio::time::Instant::now() + within;
    while !until(&seen) {
        match tokio::time::timeout_at(deadline, read_frame(tls)).await {
            Err(_) => break,
            Ok(None) => {
                seen.closed = true;
                break;
            }
            Ok(Some((kind, _, stream, payload))) => match kind {
                HEADERS => seen
                    .answered
                    .push((stream, payload.first().copied().unwrap_or(0))),
                DATA => seen.data.entry(stream).or_default().extend(payload),
                RST_STREAM => seen
                    .reset
                    .push((stream, u32::from_be_bytes(payload[..4].try_into().unwrap()))),
                GOAWAY => seen.goaway = Some(u32::from_be_bytes(payload[4..8].try_into().unwrap())),
                _ => {}
            },
        }
    }
    seen
}

#[tokio::test]
async fn a_hostile_h2_client_is_limited_while_others_are_served() {
    let _flood = support::flood_guard().await;
    let mut p = start().await;
    let port = p.port;
    let max = connection::MAX_CONCURRENT_STREAMS as usize;

    // Streams opened and never given a body, far past the limit: at most
    // the limit are taken, the rest refused, and a client that keeps
    // provoking refusals is told to go away.
    let mut flood = h2_connect(port).await;
    let mut frames = Vec::new();
    for i in 0..(max + 100) as u32 {
        frames.extend(frame(HEADERS, END_HEADERS, 2 * i + 1, &request_fields(&[])));
    }
    let _ = flood.write_all(&frames).await;
    // Meanwhile, others are served, over HTTP/1.1 and HTTP/2.
    assert_still_serving(port, "a flood of streams").await;
    let (version, answer) = curl_h2(port);
    assert_eq!(
        (version.as_str(), answer["response"]["allowed"].clone()),
        ("2", true.into())
    );
    // Until the connection ends (the streams taken are answered when their
    // bodies do not come: 2 s).
    let seen = watch(&mut flood, Duration::from_secs(8), |s| s.closed).await;
    eprintln!(
        "flood: {} answered, {} reset, goaway {:?}, closed {}",
        seen.answered.len(),
        seen.reset.len(),
        seen.goaway,
        seen.closed
    );
    assert!(seen.answered.len() <= max, "{seen:?}");
    assert!(
        seen.reset.iter().any(|(_, code)| *code == REFUSED_STREAM),
        "{seen:?}"
    );
    assert_eq!(seen.goaway, Some(ENHANCE_YOUR_CALM), "{seen:?}");

    // A header list over the limit: that stream is answered 431 without
    // reaching the handler, the connection keeps serving the next stream.
    let mut big = h2_connect(port).await;
    let over = "a".repeat(connection::MAX_HEADER_LIST_SIZE as usize + 1024);
    big.write_all(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request_fields(&[("x-big", &over)]),
    ))
    .await
    .unwrap();
    let body = good_review("ns", "after-big");
    big.write_all(&frame(HEADERS, END_HEADERS, 3, &request_fields(&[])))
        .await
        .unwrap();
    big.write_all(&frame(DATA, END_STREAM, 3, &body))
        .await
        .unwrap();
    let seen = watch(&mut big, Duration::from_secs(5), |s| {
        s.data.get(&3).is_some_and(|d| d.ends_with(b"}"))
    })
    .await;
    const STATUS_200: u8 = 0x88;
    let status = |id| {
        seen.answered
            .iter()
            .find(|(s, _)| *s == id)
            .map(|(_, b)| *b)
    };
    let refused = seen.reset.iter().any(|(s, _)| *s == 1);
    assert!(
        refused || status(1).is_some_and(|b| b != STATUS_200),
        "stream 1 not refused: {seen:?}"
    );
    assert!(!seen.data.contains_key(&1), "stream 1 was served: {seen:?}");
    assert_eq!(status(3), Some(STATUS_200), "{seen:?}");
    let answer: serde_json::Value = serde_json::from_slice(&seen.data[&3]).unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");

    // A header block that never ends (CONTINUATION upon CONTINUATION): the
    // connection is ended before it holds more than the limit.
    let mut endless = h2_connect(port).await;
    let mut frames = frame(HEADERS, 0, 1, &request_fields(&[]));
    let junk = header_block(&[("x-junk", &"b".repeat(16_000))]);
    for _ in 0..64 {
        frames.extend(frame(CONTINUATION, 0, 1, &junk));
    }
    let _ = endless.write_all(&frames).await;
    let seen = watch(&mut endless, Duration::from_secs(5), |s| {
        s.goaway.is_some() || s.closed
    })
    .await;
    assert!(seen.goaway.is_some() || seen.closed, "{seen:?}");

    assert_still_serving(port, "hostile HTTP/2 clients").await;
    let peak = p.peak_rss_kib();
    eprintln!("peak RSS after hostile HTTP/2 clients: {peak} KiB");
    assert!(peak < CHART_MEMORY_LIMIT_KIB, "peak RSS {peak} KiB");
    assert!(p.alive(), "{}", p.logs());
}

/// One HTTP/1.1 POST of a good review on an open connection; its status line.
async fn h1_post(tls: &mut Tls, uid: &str) -> String {
    let body = good_review("ns", uid);
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tls.read(&mut chunk).await.expect("reading the answer");
        assert!(n > 0, "the webhook closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            if buf.len() >= end + 4 + len {
                return text.lines().next().unwrap().to_string();
            }
        }
    }
}

#[tokio::test]
async fn an_idle_connection_outlives_the_head_timeout_and_a_slow_head_does_not() {
    let p = start().await;
    let port = p.port;
    // HTTP/1.1 and HTTP/2 connections that served a request, then wait.
    let mut h1 = tls_connect(port).await.unwrap();
    assert_eq!(h1_post(&mut h1, "first").await, "HTTP/1.1 200 OK");
    let mut h2 = h2_connect(port).await;
    let body = good_review("ns", "h2-first");
    h2.write_all(&frame(HEADERS, END_HEADERS, 1, &request_fields(&[])))
        .await
        .unwrap();
    h2.write_all(&frame(DATA, END_STREAM, 1, &body))
        .await
        .unwrap();
    let seen = watch(&mut h2, Duration::from_secs(5), |s| {
        s.data.get(&1).is_some_and(|d| d.ends_with(b"}"))
    })
    .await;
    assert!(seen.data.contains_key(&1), "{seen:?}");
    // A head begun and never finished, and a connection that never asks.
    let mut slow = tls_connect(port).await.unwrap();
    slow.write_all(b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let silent = tls_connect(port).await.unwrap();

    let started = Instant::now();
    let ended = |mut tls: Tls| async move {
        let mut b = [0u8; 64];
        let r = tokio::time::timeout(Duration::from_secs(20), tls.read(&mut b)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "still open after 20 s: {r:?}"
        );
        started.elapsed()
    };
    let (slow_ended, silent_ended) = tokio::join!(ended(slow), ended(silent));
    eprintln!("slow head closed after {slow_ended:?}, silent connection after {silent_ended:?}");
    assert!(slow_ended >= Duration::from_secs(9), "{slow_ended:?}");
    assert!(silent_ended >= Duration::from_secs(9), "{silent_ended:?}");
    // Past the head timeout (the old cut for idle connections too).
    tokio::time::sleep(Duration::from_secs(12).saturating_sub(started.elapsed())).await;
    assert_eq!(h1_post(&mut h1, "second").await, "HTTP/1.1 200 OK");
    let body = good_review("ns", "h2-second");
    h2.write_all(&frame(HEADERS, END_HEADERS, 3, &request_fields(&[])))
        .await
        .unwrap();
    h2.write_all(&frame(DATA, END_STREAM, 3, &body))
        .await
        .unwrap();
    let seen = watch(&mut h2, Duration::from_secs(5), |s| {
        s.data.get(&3).is_some_and(|d| d.ends_with(b"}"))
    })
    .await;
    let answer: serde_json::Value = serde_json::from_slice(&seen.data[&3]).unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let m = metrics(&p).await;
    assert_eq!(
        count(
            &m,
            r#"orgaccess_webhook_connections_closed_total{reason="slow_header"}"#
        ),
        2.0,
        "{m}"
    );
    assert_eq!(
        count(
            &m,
            r#"orgaccess_webhook_connections_closed_total{reason="idle"}"#
        ),
        0.0,
        "{m}"
    );
}
