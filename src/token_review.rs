//! Bearer tokens authenticated by the apiserver (TokenReview), for callers
//! that are not the apiserver itself: the admin port's `GET /activity` and the
//! decision service's `/v1/...` callers (service accounts).
//!
//! Verdicts are cached by the token's SHA-256 (the token itself is never
//! kept): an accepted token for [`AUTHENTICATED_TTL`], a refused one for
//! [`REJECTED_TTL`], as kube-apiserver caches its webhook token authenticator.
//! The cache is bounded, and at most [`CONCURRENT_REVIEWS`] reviews run at
//! once: a flood of made-up tokens costs the apiserver a bounded rate of
//! reviews and the flooder `503`s, and never evicts an accepted caller before
//! the refused entries are gone.
//!
//! Who gets a review, when reviews are scarce:
//!
//! - a cached verdict is answered without one (before any permit is waited for);
//! - the [`CONCURRENT_REVIEWS`] permits go to JWT-shaped tokens ([`jwt_shaped`]:
//!   service-account and OIDC tokens); any other token (a static token file's,
//!   an opaque one) waits for the single permit of its own lane, so random
//!   strings cannot hold the permits real callers need;
//! - each source address may send [`SOURCE_BURST`] reviews at once and
//!   [`SOURCE_RATE`] a second after that ([`Verdict::Limited`]: `429`), so one
//!   flooder cannot hold even the JWT lane for long.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use sha2::{Digest, Sha256};

/// Longest token reviewed (a projected service-account token is ~1 KiB).
pub const MAX_TOKEN: usize = 16 * 1024;
/// How long an accepted token is believed without asking again.
pub const AUTHENTICATED_TTL: Duration = Duration::from_secs(60);
/// How long a refused token stays refused without asking again.
pub const REJECTED_TTL: Duration = Duration::from_secs(10);
/// Verdicts kept.
pub const CAPACITY: usize = 4096;
/// Reviews of JWT-shaped tokens in flight at once; more wait up to [`REVIEW_WAIT`].
pub const CONCURRENT_REVIEWS: usize = 4;
/// Reviews of other tokens in flight at once.
pub const CONCURRENT_OTHER_REVIEWS: usize = 1;
const REVIEW_WAIT: Duration = Duration::from_secs(2);
/// Reviews one source address may send at once, before [`SOURCE_RATE`] applies.
pub const SOURCE_BURST: f64 = 20.0;
/// Reviews a second one source address may send, past its burst.
pub const SOURCE_RATE: f64 = 5.0;
/// Source addresses whose rate is tracked.
const SOURCES: usize = 4096;

/// Who a token authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

/// The answer about one token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Authenticated(Arc<Identity>),
    /// Not a valid token (or too long, or empty).
    Rejected,
    /// The apiserver could not be asked (unreachable, or too many reviews
    /// waiting): try again.
    Unavailable,
    /// This source asked about too many unseen tokens lately: try later.
    Limited,
}

/// Is this token shaped like a JWT (`header.payload.signature`, base64url,
/// the header a JSON object)? Service-account tokens and OIDC ID tokens are;
/// the shape costs a forger nothing, so it only orders who waits for a
/// review, the per-source rate does the rest.
pub fn jwt_shaped(token: &str) -> bool {
    let b64url = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(sig), None) => {
            // base64url of `{"` is `eyJ`.
            h.starts_with("eyJ") && b64url(h) && b64url(p) && b64url(sig)
        }
        _ => false,
    }
}

/// Token buckets per source address, bounded in number.
#[derive(Debug, Default)]
pub struct SourceRates {
    buckets: HashMap<std::net::IpAddr, (f64, Instant)>,
}

impl SourceRates {
    /// Takes one review from `source`'s bucket; `false` when it is empty.
    pub fn take(&mut self, source: std::net::IpAddr, now: Instant) -> bool {
        if self.buckets.len() >= SOURCES && !self.buckets.contains_key(&source) {
            // Sources whose bucket has refilled are as good as new: drop them.
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * SOURCE_RATE
                    < SOURCE_BURST
            });
            if self.buckets.len() >= SOURCES {
                self.buckets.clear();
            }
        }
        let (tokens, at) = self.buckets.entry(source).or_insert((SOURCE_BURST, now));
        let refilled = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * SOURCE_RATE)
            .min(SOURCE_BURST);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            true
        } else {
            *tokens = refilled;
            false
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// Verdicts by token digest, each with its expiry.
#[derive(Debug)]
pub struct TokenCache {
    entries: HashMap<[u8; 32], (Option<Arc<Identity>>, Instant)>,
    capacity: usize,
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// The cached verdict (`Some(None)`: refused), or `None` when unknown or
    /// expired.
    pub fn get(&mut self, digest: &[u8; 32], now: Instant) -> Option<Option<Arc<Identity>>> {
        match self.entries.get(digest) {
            Some((who, until)) if *until > now => Some(who.clone()),
            Some(_) => {
                self.entries.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Remembers a verdict. When full, expired and refused entries go first;
    /// only if accepted ones alone fill it is it emptied.
    pub fn put(&mut self, digest: [u8; 32], who: Option<Arc<Identity>>, now: Instant) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&digest) {
            self.entries
                .retain(|_, (who, until)| *until > now && who.is_some());
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
        }
        let ttl = if who.is_some() {
            AUTHENTICATED_TTL
        } else {
            REJECTED_TTL
        };
        self.entries.insert(digest, (who, now + ttl));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Reviews tokens with the operator's client, through the cache.
pub struct Reviewer {
    client: kube::Client,
    audiences: Vec<String>,
    cache: Mutex<TokenCache>,
    /// Permits for JWT-shaped tokens, and for any other.
    in_flight: tokio::sync::Semaphore,
    other_in_flight: tokio::sync::Semaphore,
    sources: Mutex<SourceRates>,
}

impl std::fmt::Debug for Reviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviewer")
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl Reviewer {
    /// `audiences`: the audiences a token must be meant for (empty: the
    /// apiserver's own).
    pub fn new(client: kube::Client, audiences: Vec<String>) -> Reviewer {
        Reviewer {
            client,
            audiences,
            cache: Mutex::new(TokenCache::new(CAPACITY)),
            in_flight: tokio::sync::Semaphore::new(CONCURRENT_REVIEWS),
            other_in_flight: tokio::sync::Semaphore::new(CONCURRENT_OTHER_REVIEWS),
            sources: Mutex::default(),
        }
    }

    fn cached(&self, digest: &[u8; 32]) -> Option<Verdict> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(digest, Instant::now()).map(|who| match who {
            Some(id) => Verdict::Authenticated(id),
            None => Verdict::Rejected,
        })
    }

    /// Who `token` is, asking the apiserver only when the cache does not
    /// know (no source address: no per-source rate).
    pub async fn review(&self, token: &str) -> Verdict {
        self.review_from(token, None).await
    }

    /// [`review`](Self::review) for a caller at `source`: cached verdicts
    /// first, then a review within the source's rate, in the lane of the
    /// token's shape.
    pub async fn review_from(&self, token: &str, source: Option<std::net::IpAddr>) -> Verdict {
        if token.is_empty() || token.len() > MAX_TOKEN {
            return Verdict::Rejected;
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(v) = self.cached(&digest) {
            return v;
        }
        if let Some(source) = source {
            let allowed = self
                .sources
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(source, Instant::now());
            if !allowed {
                tracing::debug!(%source, "too many unseen tokens from this source; not reviewed");
                return Verdict::Limited;
            }
        }
        let lane = if jwt_shaped(token) {
            &self.in_flight
        } else {
            &self.other_in_flight
        };
        let Ok(Ok(_permit)) = tokio::time::timeout(REVIEW_WAIT, lane.acquire()).await else {
            return Verdict::Unavailable;
        };
        // Another request may have asked about the same token meanwhile.
        if let Some(v) = self.cached(&digest) {
            return v;
        }
        match self.ask(token).await {
            Ok(who) => {
                let who = who.map(Arc::new);
                self.cache.lock().unwrap_or_else(|e| e.into_inner()).put(
                    digest,
                    who.clone(),
                    Instant::now(),
                );
                match who {
                    Some(id) => Verdict::Authenticated(id),
                    None => Verdict::Rejected,
                }
            }
            Err(e) => {
                // The error names the request, never the token.
                tracing::warn!(error = %e, "TokenReview failed");
                Verdict::Unavailable
            }
        }
    }

    async fn ask(&self, token: &str) -> Result<Option<Identity>, kube::Error> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: (!self.audiences.is_empty()).then(|| self.audiences.clone()),
            },
            ..Default::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let Some(status) = reviewed.status.filter(|s| s.authenticated == Some(true)) else {
            return Ok(None);
        };
        let user = status.user.unwrap_or_default();
        Ok(user.username.filter(|u| !u.is_empty()).map(|u| Identity {
            user: u,
            groups: user.groups.unwrap_or_default(),
        }))
    }
}

/// The bearer token of `Authorization: Bearer <token>`, if any.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(user: &str) -> Option<Arc<Identity>> {
        Some(Arc::new(Identity {
            user: user.into(),
            groups: vec![],
        }))
    }

    fn digest(n: u32) -> [u8; 32] {
        Sha256::digest(n.to_be_bytes()).into()
    }

    #[test]
    fn verdicts_expire_accepted_later_than_refused() {
        let mut c = TokenCache::new(8);
        let t0 = Instant::now();
        c.put(digest(1), id("sa"), t0);
        c.put(digest(2), None, t0);
        assert_eq!(c.get(&digest(1), t0), Some(id("sa")));
        assert_eq!(c.get(&digest(2), t0), Some(None));
        let later = t0 + REJECTED_TTL + Duration::from_millis(1);
        assert_eq!(c.get(&digest(2), later), None, "a refusal is asked again");
        assert_eq!(c.get(&digest(1), later), Some(id("sa")));
        let much_later = t0 + AUTHENTICATED_TTL + Duration::from_millis(1);
        assert_eq!(c.get(&digest(1), much_later), None);
        assert_eq!(c.get(&digest(3), t0), None);
    }

    #[test]
    fn a_flood_of_refused_tokens_never_evicts_an_accepted_one_first() {
        let mut c = TokenCache::new(16);
        let t0 = Instant::now();
        c.put(digest(0), id("sa"), t0);
        for n in 1..10_000 {
            c.put(digest(n), None, t0);
            assert!(c.len() <= 16, "the cache is bounded");
        }
        assert_eq!(c.get(&digest(0), t0), Some(id("sa")));
    }

    #[test]
    fn accepted_tokens_alone_filling_it_empty_it() {
        let mut c = TokenCache::new(4);
        let t0 = Instant::now();
        for n in 0..4 {
            c.put(digest(n), id("sa"), t0);
        }
        c.put(digest(99), id("other"), t0);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&digest(99), t0), Some(id("other")));
    }

    #[test]
    fn jwt_shapes() {
        // (token, JWT-shaped)
        let cases = [
            ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_", true),
            ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.", false),
            ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0", false),
            ("eyJ.a.b.c", false),
            ("abc.def.ghi", false),
            ("eyJh+bGc.eyJz.sig", false),
            ("0123456789abcdef0123456789abcdef", false),
            ("", false),
        ];
        for (token, want) in cases {
            assert_eq!(jwt_shaped(token), want, "{token}");
        }
    }

    #[test]
    fn each_source_gets_a_burst_then_a_rate() {
        let mut r = SourceRates::default();
        let t0 = Instant::now();
        let a: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let b: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        let taken = (0..100).filter(|_| r.take(a, t0)).count();
        assert_eq!(taken, SOURCE_BURST as usize);
        assert!(r.take(b, t0), "another source is not limited by the first");
        assert!(!r.take(a, t0));
        let later = t0 + Duration::from_secs(1);
        let taken = (0..100).filter(|_| r.take(a, later)).count();
        assert_eq!(taken, SOURCE_RATE as usize);
        // Bounded: a flood of sources never holds more than SOURCES.
        for i in 0..(SOURCES as u32 + 10) {
            r.take(std::net::IpAddr::from(i.to_be_bytes()), later);
            assert!(r.len() <= SOURCES);
        }
    }

    #[test]
    fn bearer_reads_only_the_bearer_scheme() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Bearer tok".parse().unwrap());
        assert_eq!(bearer(&h), Some("tok"));
        h.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
