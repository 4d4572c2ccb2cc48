//! The process's clock: now, shifted by `ORGACCESS_CLOCK_OFFSET_SECONDS`.
//!
//! Invitations expire after 31 days, keys after months, memberships at their
//! end (`spec.until`); the offset lets tests (and expiry drills) run the real
//! binary "in the future" instead of waiting. Every time-dependent answer of
//! the process reads it, so status (the controller), admission (the webhook)
//! and decisions (the decision service) agree on the instant. Unset in
//! production.

/// Now, shifted by `ORGACCESS_CLOCK_OFFSET_SECONDS` (read once).
pub fn now() -> jiff::Timestamp {
    static OFFSET: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| {
        std::env::var("ORGACCESS_CLOCK_OFFSET_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    });
    let t = jiff::Timestamp::now();
    t.saturating_add(jiff::SignedDuration::from_secs(*OFFSET))
        .unwrap_or(t)
}
