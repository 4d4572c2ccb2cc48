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
/// Reviews in flight at once; more wait up to [`REVIEW_WAIT`].
pub const CONCURRENT_REVIEWS: usize = 4;
const REVIEW_WAIT: Duration = Duration::from_secs(2);

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
    in_flight: tokio::sync::Semaphore,
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
        }
    }

    fn cached(&self, digest: &[u8; 32]) -> Option<Verdict> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(digest, Instant::now()).map(|who| match who {
            Some(id) => Verdict::Authenticated(id),
            None => Verdict::Rejected,
        })
    }

    /// Who `token` is, asking the apiserver only when the cache does not know.
    pub async fn review(&self, token: &str) -> Verdict {
        if token.is_empty() || token.len() > MAX_TOKEN {
            return Verdict::Rejected;
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(v) = self.cached(&digest) {
            return v;
        }
        let Ok(Ok(_permit)) = tokio::time::timeout(REVIEW_WAIT, self.in_flight.acquire()).await
        else {
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
