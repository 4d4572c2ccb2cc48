//! One accepted TLS connection served, for the webhook and the decision
//! service alike ([`super::tls::serve`]): HTTP/2 when the client chose `h2` in
//! ALPN (the apiserver's webhook client does when it is offered), HTTP/1.1
//! otherwise; how long the connection may stay open without a request; and
//! what the transport did, counted ([`Transport`]).
//!
//! Time without a request, decided by [`verdict`] (a table of cases below):
//!
//! - a new connection must bring its first request within [`HEADER_TIMEOUT`],
//!   and on HTTP/1.1 a request head begun must be complete within it too
//!   (a slow sender is cut off: the slowloris bound);
//! - a connection that has served a request may then wait [`IDLE_TIMEOUT`]
//!   for the next: longer than Go's 90 s idle timeout, so the apiserver's
//!   client drops an idle connection before we do and never sends a review
//!   on one we are closing; while fewer than a quarter of the connection
//!   slots are free, only [`HEADER_TIMEOUT`], so idle peers cannot hold the
//!   slots new ones need.
//!
//! hyper's own `header_read_timeout` is not used: it also times the wait for
//! the next request on a kept-alive connection, and closed the apiserver's
//! connection after 10 s idle.
//!
//! HTTP/2 is bounded so that what a connection holds does not grow with what
//! a peer sends: at most [`MAX_CONCURRENT_STREAMS`] requests at once (more are
//! refused, `REFUSED_STREAM`), header lists of at most
//! [`MAX_HEADER_LIST_SIZE`] bytes, 16 KiB frames, flow-control windows of
//! [`WINDOW`] bytes for the connection and each stream (what the peer may send
//! before the handler reads it), and few resets tolerated
//! ([`MAX_PENDING_RESETS`], [`MAX_LOCAL_ERROR_RESETS`]: the "rapid reset"
//! and error-provoking floods end the connection). Request bodies, once
//! read, count against the webhook's body budget as on HTTP/1.1: the first
//! [`super::SMALL_BODY`] bytes of each connection's bodies in flight come
//! from its own [`BodyAllowance`], the rest from the shared budget.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, watch};

/// How long a new connection has for its first request, and an HTTP/1.1
/// request head for its last byte once its first arrived.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection that served a request may wait for the next one
/// (Go's `http.Transport` closes idle connections after 90 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// HTTP/2 requests in flight on one connection (the webhook's).
pub const MAX_CONCURRENT_STREAMS: u32 = 16;
/// Bytes of one HTTP/2 request's header list, decoded (HPACK's 32-byte
/// overhead per field included). A review's headers are a few hundred.
pub const MAX_HEADER_LIST_SIZE: u32 = 8 * 1024;
/// HTTP/2 flow-control window of a connection and of each stream: what a
/// peer may send ahead of the handler reading it.
pub const WINDOW: u32 = 64 * 1024;
/// Bytes of answers buffered per HTTP/2 stream before the peer takes them.
pub const MAX_SEND_BUF: usize = 64 * 1024;
/// Streams a peer may open and reset before they are served.
pub const MAX_PENDING_RESETS: usize = 20;
/// Streams the server may reset for a peer's protocol errors before it ends
/// the connection.
pub const MAX_LOCAL_ERROR_RESETS: usize = 64;
/// HTTP/2's smallest frame, the default.
const MAX_FRAME_SIZE: u32 = 16 * 1024;
/// HPACK's dynamic table, the default.
const HEADER_TABLE_SIZE: u32 = 4096;

/// The protocol a connection speaks, from ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    /// `h2` when the client chose it, HTTP/1.1 otherwise (no ALPN included).
    pub fn of_alpn(alpn: Option<&[u8]>) -> Protocol {
        match alpn {
            Some(b"h2") => Protocol::Http2,
            _ => Protocol::Http1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http/1.1",
            Protocol::Http2 => "h2",
        }
    }
}

/// The protocols offered in ALPN, preferred first.
pub fn alpn_protocols() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// Why the server closed a connection that had no request running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// No first request, or an HTTP/1.1 head not complete, in [`HEADER_TIMEOUT`].
    SlowHeader,
    /// No request for the idle limit after the last one.
    Idle,
}

impl Closed {
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::SlowHeader => "slow_header",
            Closed::Idle => "idle",
        }
    }
}

/// What a connection is doing, in milliseconds since it was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub in_flight: usize,
    /// Requests begun so far.
    pub served: u64,
    /// When the last request ended (when the connection began, before any).
    pub idle_since: u64,
    /// When the first byte arrived while no request ran (HTTP/1.1 only).
    pub head_since: Option<u64>,
}

/// Keep the connection (look again at `until`, ms), or close it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Keep { until: u64 },
    Close(Closed),
}

/// Whether a connection in state `s` stays open at `now` (ms), when an idle
/// one may wait `idle_limit`. A running request is bounded by the handler's
/// own deadlines, not here; a kept connection is looked at again at its
/// deadline or within [`HEADER_TIMEOUT`], whichever is sooner (the idle limit
/// may shrink meanwhile).
pub fn verdict(s: Snapshot, now: u64, idle_limit: Duration) -> Verdict {
    let header = HEADER_TIMEOUT.as_millis() as u64;
    if s.in_flight > 0 {
        return Verdict::Keep {
            until: now + header,
        };
    }
    let (since, limit, why) = match s.head_since {
        Some(t) => (t, header, Closed::SlowHeader),
        None if s.served == 0 => (s.idle_since, header, Closed::SlowHeader),
        None => (s.idle_since, idle_limit.as_millis() as u64, Closed::Idle),
    };
    let deadline = since.saturating_add(limit);
    if now >= deadline {
        Verdict::Close(why)
    } else {
        Verdict::Keep {
            until: deadline.min(now + header),
        }
    }
}

/// A connection's activity, shared by its I/O ([`Watched`]), its service
/// ([`Tracked`]) and the loop that closes it ([`drive`]).
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    served: AtomicU64,
    idle_since: AtomicU64,
    /// `head_since + 1`; 0 for none.
    head_since: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn snapshot(&self) -> Snapshot {
        let head = self.head_since.load(Ordering::Relaxed);
        Snapshot {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            served: self.served.load(Ordering::Relaxed),
            idle_since: self.idle_since.load(Ordering::Relaxed),
            head_since: head.checked_sub(1),
        }
    }

    /// Bytes arrived (HTTP/1.1): the start of a head, if no request runs.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == 0
        {
            self.head_since.store(self.now() + 1, Ordering::Relaxed);
        }
    }

    fn begin(self: &Arc<Self>) -> Running {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.served.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
        Running(self.clone())
    }
}

/// A request running; when dropped (answered or abandoned), the connection
/// may be idle again.
struct Running(Arc<Activity>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle_since.store(self.0.now(), Ordering::Relaxed);
        }
    }
}

/// The I/O of a connection, noting when bytes arrive (for HTTP/1.1 heads).
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
    heads: bool,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.heads && buf.filled().len() > before {
            this.activity.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Bytes of request bodies a connection may hold outside the shared body
/// budget (a request extension; the webhook's `admit` reads it). On HTTP/1.1
/// one body at a time has it all, as before HTTP/2; on HTTP/2 the
/// connection's streams share it, so opening streams does not multiply it.
#[derive(Clone, Debug)]
pub struct BodyAllowance(pub Arc<Semaphore>);

/// What each request of a connection carries in its extensions.
#[derive(Clone, Debug)]
pub struct Peer {
    pub name: super::tls::ClientName,
    pub authenticated: super::tls::Authenticated,
    pub addr: std::net::SocketAddr,
    pub allowance: BodyAllowance,
}

/// A connection's service: counts the request, marks the connection busy
/// until it is answered, and gives it the connection's [`Peer`] facts.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    peer: Peer,
    requests: Counter,
    seconds: Histogram,
}

impl<S, B> hyper::service::Service<hyper::Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = hyper::Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        self.requests.inc();
        let start = Instant::now();
        let seconds = self.seconds.clone();
        let running = self.activity.begin();
        let ext = request.extensions_mut();
        ext.insert(self.peer.name.clone());
        ext.insert(self.peer.authenticated);
        ext.insert(axum::extract::ConnectInfo(self.peer.addr));
        ext.insert(self.peer.allowance.clone());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            drop(running);
            seconds.observe(start.elapsed().as_secs_f64());
            answer
        })
    }
}

/// The protocol builders of one server, configured once.
#[derive(Clone, Debug)]
pub struct Builders {
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
}

impl Builders {
    /// HTTP/1.1 with keep-alive (its head timeout is [`drive`]'s), HTTP/2
    /// bounded as the module says, at most `streams` requests at once per
    /// connection.
    pub fn new(streams: u32) -> Builders {
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1.keep_alive(true).header_read_timeout(None);
        let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_concurrent_streams(streams)
            .max_header_list_size(MAX_HEADER_LIST_SIZE)
            .header_table_size(HEADER_TABLE_SIZE)
            .max_frame_size(MAX_FRAME_SIZE)
            .initial_stream_window_size(WINDOW)
            .initial_connection_window_size(WINDOW)
            .adaptive_window(false)
            .max_send_buf_size(MAX_SEND_BUF)
            .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
            .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESETS);
        Builders { http1, http2 }
    }
}

/// How a served connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// The peer closed it, or it failed.
    Done,
    Closed(Closed),
    Shutdown,
}

/// Serves `service` on `io` in `protocol` until the peer leaves, the
/// connection has no request for too long ([`verdict`]; `pressed` says
/// whether connection slots are short), or `stop` turns true (then answers
/// what is running and closes).
#[allow(clippy::too_many_arguments)]
pub async fn serve<T, S, B>(
    io: T,
    protocol: Protocol,
    service: S,
    peer: Peer,
    builders: &Builders,
    transport: &Transport,
    pressed: impl Fn() -> bool,
    stop: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: io,
        activity: activity.clone(),
        heads: protocol == Protocol::Http1,
    });
    let service = Tracked {
        inner: service,
        activity: activity.clone(),
        peer,
        requests: transport.requests[protocol as usize].clone(),
        seconds: transport.request_seconds.clone(),
    };
    let ended = match protocol {
        Protocol::Http1 => {
            let conn = builders.http1.serve_connection(io, service);
            drive(conn, &activity, pressed, stop).await
        }
        Protocol::Http2 => {
            let conn = builders.http2.serve_connection(io, service);
            drive(conn, &activity, pressed, stop).await
        }
    };
    if let Ended::Closed(why) = ended {
        transport.closed[why as usize].inc();
    }
}

async fn drive<C>(
    conn: C,
    activity: &Activity,
    pressed: impl Fn() -> bool,
    mut stop: watch::Receiver<bool>,
) -> Ended
where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    loop {
        let now = activity.now();
        let limit = if pressed() {
            HEADER_TIMEOUT
        } else {
            IDLE_TIMEOUT
        };
        let until = match verdict(activity.snapshot(), now, limit) {
            Verdict::Keep { until } => until,
            // A peer that never finished its head: no goodbye.
            Verdict::Close(Closed::SlowHeader) => return Ended::Closed(Closed::SlowHeader),
            Verdict::Close(Closed::Idle) => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(HEADER_TIMEOUT, conn).await;
                return Ended::Closed(Closed::Idle);
            }
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return Ended::Done;
            }
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
                return Ended::Shutdown;
            }
            _ = tokio::time::sleep(Duration::from_millis(until.saturating_sub(now))) => {}
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// A server's transport metrics: connections accepted, TLS handshakes and
/// requests by protocol, connections closed for lack of a request, open
/// connections. Handles are built once; recording is an atomic addition.
#[derive(Clone, Debug)]
pub struct Transport {
    pub accepted: Counter,
    pub open: Gauge,
    /// By [`Protocol`].
    pub handshakes: [Counter; 2],
    /// By [`Protocol`].
    pub requests: [Counter; 2],
    /// By [`Closed`].
    pub closed: [Counter; 2],
    /// From a request's head to its answer (the body read, judged and the
    /// answer made; not its bytes sent).
    pub request_seconds: Histogram,
    handshakes_family: Family<ProtocolLabel, Counter>,
    requests_family: Family<ProtocolLabel, Counter>,
    closed_family: Family<ReasonLabel, Counter>,
}

impl Default for Transport {
    fn default() -> Self {
        let handshakes_family = Family::<ProtocolLabel, Counter>::default();
        let requests_family = Family::<ProtocolLabel, Counter>::default();
        let closed_family = Family::<ReasonLabel, Counter>::default();
        let by_protocol = |f: &Family<ProtocolLabel, Counter>| {
            [Protocol::Http1, Protocol::Http2].map(|p| {
                f.get_or_create_owned(&ProtocolLabel {
                    protocol: p.as_str(),
                })
            })
        };
        Transport {
            accepted: Counter::default(),
            open: Gauge::default(),
            handshakes: by_protocol(&handshakes_family),
            requests: by_protocol(&requests_family),
            closed: [Closed::SlowHeader, Closed::Idle]
                .map(|c| closed_family.get_or_create_owned(&ReasonLabel { reason: c.as_str() })),
            request_seconds: Histogram::new(exponential_buckets(25e-6, 2.0, 18)),
            handshakes_family,
            requests_family,
            closed_family,
        }
    }
}

impl Transport {
    /// Exposes the metrics in `registry` (already prefixed with the server's name).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "connections_accepted",
            "TCP connections accepted and given a connection slot",
            self.accepted.clone(),
        );
        registry.register(
            "connections_open",
            "Connections open (TLS handshake begun or done)",
            self.open.clone(),
        );
        registry.register(
            "tls_handshakes",
            "TLS handshakes completed, by the protocol chosen in ALPN (h2, http/1.1)",
            self.handshakes_family.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests received, by protocol",
            self.requests_family.clone(),
        );
        registry.register(
            "connections_closed",
            "Connections the server closed for want of a request: slow_header (no first request or complete HTTP/1.1 head in 10 s), idle (none for the idle timeout since the last)",
            self.closed_family.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's head to its answer, in the server (the body read, the answer made)",
            self.request_seconds.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_kept_while_it_serves_and_closed_when_it_waits_too_long() {
        let idle = IDLE_TIMEOUT;
        let s = |in_flight, served, idle_since, head_since| Snapshot {
            in_flight,
            served,
            idle_since,
            head_since,
        };
        use Closed::*;
        use Verdict::*;
        // (what, state, now, idle limit, verdict)
        let cases = [
            (
                "running, however long",
                s(1, 1, 0, None),
                500_000,
                idle,
                Keep { until: 510_000 },
            ),
            (
                "new, within the header time",
                s(0, 0, 0, None),
                9_999,
                idle,
                Keep { until: 10_000 },
            ),
            (
                "new, no request in 10 s",
                s(0, 0, 0, None),
                10_000,
                idle,
                Close(SlowHeader),
            ),
            (
                "a head begun 9 s ago",
                s(0, 3, 100, Some(1_000)),
                10_000,
                idle,
                Keep { until: 11_000 },
            ),
            (
                "a head begun 10 s ago",
                s(0, 3, 100, Some(1_000)),
                11_000,
                idle,
                Close(SlowHeader),
            ),
            (
                "idle 60 s after a request",
                s(0, 1, 5_000, None),
                65_000,
                idle,
                Keep { until: 75_000 },
            ),
            (
                "idle 95 s: past Go's 90 s",
                s(0, 1, 5_000, None),
                100_000,
                idle,
                Keep { until: 110_000 },
            ),
            (
                "idle 120 s",
                s(0, 1, 5_000, None),
                125_000,
                idle,
                Close(Idle),
            ),
            (
                "idle 10 s with slots short",
                s(0, 1, 5_000, None),
                15_000,
                HEADER_TIMEOUT,
                Close(Idle),
            ),
            (
                "idle 5 s with slots short",
                s(0, 1, 5_000, None),
                10_000,
                HEADER_TIMEOUT,
                Keep { until: 15_000 },
            ),
        ];
        for (what, state, now, limit, want) in cases {
            assert_eq!(verdict(state, now, limit), want, "{what}");
        }
    }

    #[test]
    fn only_h2_chosen_in_alpn_is_served_as_http2() {
        let cases: [(Option<&[u8]>, Protocol); 4] = [
            (Some(b"h2"), Protocol::Http2),
            (Some(b"http/1.1"), Protocol::Http1),
            (None, Protocol::Http1),
            (Some(b"h2c"), Protocol::Http1),
        ];
        for (alpn, want) in cases {
            assert_eq!(Protocol::of_alpn(alpn), want, "{alpn:?}");
        }
    }

    #[tokio::test]
    async fn a_request_marks_the_connection_busy_until_it_ends() {
        let a = Arc::new(Activity::new());
        a.bytes_read();
        assert!(a.snapshot().head_since.is_some());
        let running = a.begin();
        let s = a.snapshot();
        assert_eq!((s.in_flight, s.served, s.head_since), (1, 1, None));
        // Bytes of the body while the request runs are not a new head.
        a.bytes_read();
        assert_eq!(a.snapshot().head_since, None);
        drop(running);
        assert_eq!(a.snapshot().in_flight, 0);
    }
}
