//! An API key's lifecycle as pure functions: what the key's Secret must become
//! and what the key's status says, from what was observed. No kube types and no
//! key values here: the controller observes, calls [`plan`], and applies.
//!
//! The decisions rest on the Secret, never on the key's status:
//!
//! - **Ownership.** Only the Secret the operator created for this ApiKey (the
//!   uid it recorded in `status.secretUid`, and the key's controller
//!   ownerReference; decided by the controller, `controller::apikey::claim`)
//!   is ever read or written. Anything else under the derived name is a
//!   conflict ([`SecretFacts::Foreign`]): nothing about it reaches status.
//! - **Rotation.** The Secret records, in the same write as the value, which
//!   rotation generation it holds (`orgaccess.dev/rotation-generation`). A
//!   retry, a failed status write, a crash or a leader change therefore sees
//!   the rotation done and converges to exactly one new value, the previous
//!   one kept for its whole window.
//! - **Expiry.** Counted from the ApiKey's `metadata.creationTimestamp`; the
//!   lifetime is `min(spec.lifetime, template cap)`, the cap when absent. An
//!   expired or disabled key's Secret holds no usable value.

use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};

use crate::builtin::ApiKeyTemplate;
use crate::model::ApiKeyDef;

/// The longest a rotated-out value stays valid (the platform's limit).
pub const MAX_PREVIOUS_DAYS: i64 = 30;
/// `previousKeyValidity` when the rotation does not say.
pub const DEFAULT_PREVIOUS_DAYS: i64 = 7;
/// Days before expiry when a key is reported as soon to expire, by default.
pub const DEFAULT_EXPIRY_WARNING_DAYS: i64 = 14;
/// Longest ApiKey name whose Secret name `<name>-apikey` is a valid object
/// name (253 characters).
pub const MAX_NAME_LEN: usize = 253 - SECRET_SUFFIX.len();
/// Suffix of the Secret holding a key's value.
pub const SECRET_SUFFIX: &str = "-apikey";

/// Longest search hub name a key may be bound to (`spec.searchHub`):
/// orgaccess's own bound, the platform documents none we have.
pub const MAX_SEARCH_HUB_LEN: usize = 128;
/// A search hub name as orgaccess accepts it (the CRD's CEL rule; the core's
/// [`search_hub_problem`] judges the same): letters, digits, `_`, `.`, `-`,
/// and spaces between them. It travels unchanged in an HTTP header
/// (`X-Orgaccess-Search-Hub`) and in a gateway's configuration.
pub const SEARCH_HUB_PATTERN: &str = "^[A-Za-z0-9_.-]([A-Za-z0-9 _.-]*[A-Za-z0-9_.-])?$";

/// Why `hub` cannot be a key's search hub, or `None` when it can (the same
/// verdict as the CRD's [`SEARCH_HUB_PATTERN`] and [`MAX_SEARCH_HUB_LEN`]).
pub fn search_hub_problem(hub: &str) -> Option<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if hub.is_empty() {
        return Some("the search hub is empty; name one, or leave spec.searchHub out".into());
    }
    if hub.len() > MAX_SEARCH_HUB_LEN {
        return Some(format!(
            "the search hub has {} characters; at most {MAX_SEARCH_HUB_LEN}",
            hub.len()
        ));
    }
    let inner_ok = hub.chars().all(|c| word(c) || c == ' ');
    let ends_ok = hub.starts_with(word) && hub.ends_with(word);
    (!(inner_ok && ends_ok)).then(|| {
        "a search hub name holds letters, digits, '_', '.', '-' and spaces between them \
         (it is sent to gateways in an HTTP header)"
            .into()
    })
}

/// The domain a search hub binds: Search/ExecuteQueries (the platform's
/// `search.enforcedQueryPipelineConfiguration.searchHub` forces the hub of
/// the key's queries).
pub fn execute_queries() -> crate::catalog::DomainId {
    crate::catalog::lookup(crate::catalog::Service::Search, "ExecuteQueries")
        .expect("the catalog has Search/ExecuteQueries")
}

/// The part of `held` a search hub binds: its Search/ExecuteQueries grant
/// (empty when it has none).
pub fn queries_of(held: &crate::privilege::PrivilegeSet) -> crate::privilege::PrivilegeSet {
    let mut out = crate::privilege::PrivilegeSet::new();
    if let Some(g) = held.get(execute_queries()) {
        out.set(execute_queries(), g.clone());
    }
    out
}

/// Secret annotations written by the operator.
pub mod annotations {
    /// The rotation generation the Secret's current value belongs to.
    pub const GENERATION: &str = "orgaccess.dev/rotation-generation";
    /// When the current value replaced the previous one.
    pub const ROTATED_AT: &str = "orgaccess.dev/rotated-at";
    /// Until when `previousApiKey` stays valid.
    pub const PREVIOUS_EXPIRES: &str = "orgaccess.dev/previous-expires-at";
    /// Why the Secret holds no usable value (`Expired` or `Disabled`).
    pub const NO_VALUE: &str = "orgaccess.dev/no-value";
    /// The same, as a sentence for people.
    pub const NO_VALUE_MESSAGE: &str = "orgaccess.dev/no-value-message";
}

/// The Secret name of a key.
pub fn secret_name(key: &str) -> String {
    format!("{key}{SECRET_SUFFIX}")
}

/// What the controller knows of the ApiKey.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyFacts {
    /// `metadata.creationTimestamp`: the lifetime counts from here.
    pub created: Timestamp,
    pub enabled: bool,
    pub template: ApiKeyTemplate,
    pub lifetime: Option<String>,
    /// `spec.rotation.generation` (0 without rotation).
    pub wanted_generation: i64,
    /// `spec.rotation.previousKeyValidity`.
    pub previous_validity: Option<String>,
    /// Report "soon to expire" this many days before expiry.
    pub warning_days: i64,
    /// For a Secret written before the generation annotation existed: the
    /// generation the key's status last reported. Used only then.
    pub legacy_generation: Option<i64>,
}

/// Why a Secret holds no usable value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoValue {
    Expired,
    Disabled,
}

impl NoValue {
    pub fn as_str(self) -> &'static str {
        match self {
            NoValue::Expired => "Expired",
            NoValue::Disabled => "Disabled",
        }
    }

    pub fn parse(s: &str) -> Option<NoValue> {
        match s {
            "Expired" => Some(NoValue::Expired),
            "Disabled" => Some(NoValue::Disabled),
            _ => None,
        }
    }

    /// The sentence written next to the blanked value.
    pub fn message(self, expires: Timestamp) -> String {
        match self {
            NoValue::Expired => format!(
                "the API key expired at {expires} and cannot be revived; create a new ApiKey"
            ),
            NoValue::Disabled => "the API key is disabled (spec.enabled: false); set spec.enabled: true to get a new value".into(),
        }
    }
}

/// The Secret under the derived name, as far as the controller may look.
#[derive(Clone, Debug, PartialEq)]
pub enum SecretFacts {
    Missing,
    /// Exists but is not controlled by this ApiKey: never read further.
    Foreign,
    Owned(OwnedSecret),
}

/// An owned Secret: facts only, never values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnedSecret {
    /// `apiKey` holds a non-empty value.
    pub has_value: bool,
    /// `previousApiKey` holds a value.
    pub has_previous: bool,
    /// The generation annotation, if present and well-formed.
    pub generation: Option<i64>,
    pub rotated_at: Option<Timestamp>,
    pub previous_expires: Option<Timestamp>,
    /// The no-value annotation.
    pub no_value: Option<NoValue>,
}

/// What to do to the Secret. Every write carries the generation annotation.
#[derive(Clone, Debug, PartialEq)]
pub enum SecretAction {
    Nothing,
    /// Leave the foreign Secret alone and report the conflict.
    Conflict,
    /// Create the Secret with a new value.
    Create {
        generation: i64,
    },
    /// Create the Secret without a value (an expired or disabled key).
    CreateEmpty {
        why: NoValue,
    },
    /// Move the current value to `previousApiKey` until `previous_until`,
    /// write a new one.
    Rotate {
        generation: i64,
        previous_until: Timestamp,
    },
    /// A new value, no previous one (re-enabled, or the value was removed by hand).
    Regenerate {
        generation: i64,
    },
    /// The previous value's window is over: remove it.
    DropPrevious,
    /// Remove every value and say why.
    Blank {
        why: NoValue,
    },
    /// Record the generation on a Secret that predates the annotation.
    Stamp {
        generation: i64,
    },
}

/// The key's lifecycle phase (mirrors `api::ApiKeyPhase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Active,
    Disabled,
    Expired,
    Rotating,
}

/// The decision of one reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub action: SecretAction,
    pub phase: Phase,
    /// When the key expires for good.
    pub expires: Timestamp,
    /// The lifetime applied, in days, and whether it is the template's cap
    /// because `spec.lifetime` is absent.
    pub lifetime_days: i64,
    /// Within `warning_days` of expiry (and not yet expired).
    pub expiring_soon: bool,
    /// Problems with the spec that the controller worked around (the webhook
    /// refuses them; they reach here only past it).
    pub notes: Vec<String>,
    /// After the action: the Secret's generation, rotation time and window.
    pub generation: Option<i64>,
    pub rotated_at: Option<Timestamp>,
    pub previous_expires: Option<Timestamp>,
    /// After the action, the Secret holds a usable current value.
    pub has_value: bool,
    /// After the action, the Secret holds a previous value.
    pub has_previous: bool,
    /// The next instant worth waking up for.
    pub next_deadline: Option<Timestamp>,
}

/// Parses an ISO-8601 lifetime into days (calendar units counted from the epoch
/// of a fixed date so the answer does not depend on today).
pub fn lifetime_days(lifetime: &str) -> Result<i64, String> {
    let span: Span = lifetime.parse().map_err(|e| {
        format!("lifetime '{lifetime}' is not an ISO-8601 duration such as P90D or P1Y ({e})")
    })?;
    let base = jiff::civil::date(2000, 1, 1);
    let days = span
        .total((jiff::Unit::Day, SpanRelativeTo::from(base)))
        .map_err(|e| format!("lifetime '{lifetime}' cannot be measured in days ({e})"))?;
    if days <= 0.0 {
        return Err(format!("lifetime '{lifetime}' must be positive"));
    }
    Ok(days.ceil() as i64)
}

fn days(d: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * d)
}

/// The lifetime that applies: `spec.lifetime` capped by the template, the cap
/// when absent or unreadable. Returns days and a note when something was off.
pub fn effective_lifetime_days(
    template: ApiKeyTemplate,
    lifetime: Option<&str>,
) -> (i64, Option<String>) {
    let cap = template.max_lifetime_days();
    match lifetime.map(lifetime_days) {
        None => (cap, None),
        Some(Ok(d)) if d <= cap => (d, None),
        Some(Ok(d)) => (
            cap,
            Some(format!(
                "lifetime of {d} days exceeds the {cap} days of template {template:?}; the key expires after {cap} days"
            )),
        ),
        Some(Err(e)) => (
            cap,
            Some(format!(
                "{e}; the key expires after the template's {cap} days"
            )),
        ),
    }
}

/// `previousKeyValidity` in days: at most [`MAX_PREVIOUS_DAYS`]. An
/// unreadable value is an error (the webhook refuses it; past the webhook
/// the controller does not rotate rather than guess).
pub fn previous_validity_days(v: Option<&str>) -> Result<i64, String> {
    match v {
        None => Ok(DEFAULT_PREVIOUS_DAYS),
        Some(s) => lifetime_days(s)
            .map(|d| d.min(MAX_PREVIOUS_DAYS))
            .map_err(|e| e.replacen("lifetime", "previousKeyValidity", 1)),
    }
}

/// Where a key stands at an instant, from its spec and creation time alone
/// (no Secret): when it expires and whether it holds no value, and why. The
/// controller's [`plan`], `orgaccess explain` and `who-can` all read this,
/// so a key the status calls Expired is one no question lists as live.
#[derive(Clone, Debug, PartialEq)]
pub struct Standing {
    pub expires: Timestamp,
    /// The lifetime applied, in days (the template's cap when `spec.lifetime`
    /// is absent or above it), with a note when the spec was off.
    pub lifetime_days: i64,
    pub note: Option<String>,
    /// From when the key is reported as soon to expire.
    pub warn_from: Timestamp,
    /// Within `warning_days` of expiry (and not yet expired).
    pub expiring_soon: bool,
    /// Expired or disabled: the key holds no usable value.
    pub no_value: Option<NoValue>,
}

impl Standing {
    pub fn at(
        template: ApiKeyTemplate,
        lifetime: Option<&str>,
        enabled: bool,
        created: Timestamp,
        warning_days: i64,
        now: Timestamp,
    ) -> Standing {
        let (lifetime_days, note) = effective_lifetime_days(template, lifetime);
        let expires = created
            .saturating_add(days(lifetime_days))
            .unwrap_or(created);
        let expired = now >= expires;
        let warn_from = expires
            .saturating_sub(days(warning_days.max(0)))
            .unwrap_or(expires);
        let no_value = if expired {
            Some(NoValue::Expired)
        } else if !enabled {
            Some(NoValue::Disabled)
        } else {
            None
        };
        Standing {
            expires,
            lifetime_days,
            note,
            warn_from,
            expiring_soon: !expired && now >= warn_from,
            no_value,
        }
    }

    /// A key as the rules and questions read it. One not created yet (a
    /// manifest) counts from `now`.
    pub fn of(key: &ApiKeyDef, now: Timestamp) -> Standing {
        Standing::at(
            key.template.unwrap_or(ApiKeyTemplate::Custom),
            key.lifetime.as_deref(),
            key.enabled,
            key.created.unwrap_or(now),
            DEFAULT_EXPIRY_WARNING_DAYS,
            now,
        )
    }

    /// The phase before the Secret is looked at (Rotating is the Secret's).
    pub fn phase(&self) -> Phase {
        match self.no_value {
            Some(NoValue::Expired) => Phase::Expired,
            Some(NoValue::Disabled) => Phase::Disabled,
            None => Phase::Active,
        }
    }

    /// The key can be used: enabled and not expired.
    pub fn is_live(&self) -> bool {
        self.no_value.is_none()
    }
}

/// What a stored key's status reports, as far as enabling it again depends
/// on it (read by the webhook from the request's `oldObject`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reported {
    /// `metadata.generation` of the stored key.
    pub generation: Option<i64>,
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// `status.hash` or `status.previousHash` is set: a value is published.
    pub publishes_value: bool,
}

/// Why a disabled key cannot be enabled yet, if it cannot: enabling it is
/// admitted only once the operator has reported the disabling carried out
/// (a status for the stored generation publishing no value, so the Secret
/// was blanked first). Before that, the value it had would come back —
/// the Secret still holds it, and the status still publishes its digest
/// — however short the disabled moment; after it, enabling generates a new
/// value. Binds everyone, trusted principals too: only the order of the
/// two changes is asked for, and a GitOps retry gets through.
pub fn re_enable_wait(
    name: &str,
    old_enabled: bool,
    new_enabled: bool,
    reported: &Reported,
) -> Option<String> {
    if old_enabled || !new_enabled {
        return None;
    }
    let settled = reported.generation.is_some()
        && reported.observed_generation == reported.generation
        && !reported.publishes_value;
    (!settled).then(|| {
        format!(
            "API key '{name}' is still being disabled: the operator has not yet removed its value \
             (status.observedGeneration {} of generation {}{}); enable it again once status.phase \
             is Disabled (`kubectl wait --for=jsonpath='{{.status.phase}}'=Disabled apikey/{name}`): \
             enabling it then generates a new value, so the old one never verifies again",
            reported
                .observed_generation
                .map_or("absent".to_string(), |g| g.to_string()),
            reported
                .generation
                .map_or("unknown".to_string(), |g| g.to_string()),
            if reported.publishes_value {
                ", a value still published"
            } else {
                ""
            },
        )
    })
}

/// Decides what the Secret must become and what the status says.
pub fn plan(key: &KeyFacts, secret: &SecretFacts, now: Timestamp) -> Plan {
    let standing = Standing::at(
        key.template,
        key.lifetime.as_deref(),
        key.enabled,
        key.created,
        key.warning_days,
        now,
    );
    let Standing {
        expires,
        lifetime_days: lifetime,
        note,
        warn_from,
        expiring_soon,
        no_value,
    } = standing;
    let expired = no_value == Some(NoValue::Expired);
    let notes: Vec<String> = note.into_iter().collect();

    let mut p = Plan {
        action: SecretAction::Nothing,
        phase: Phase::Active,
        expires,
        lifetime_days: lifetime,
        expiring_soon,
        notes,
        generation: None,
        rotated_at: None,
        previous_expires: None,
        has_value: false,
        has_previous: false,
        next_deadline: None,
    };

    match secret {
        SecretFacts::Foreign => p.action = SecretAction::Conflict,
        SecretFacts::Missing => match no_value {
            Some(why) => p.action = SecretAction::CreateEmpty { why },
            None => {
                p.action = SecretAction::Create {
                    generation: key.wanted_generation,
                };
                p.generation = Some(key.wanted_generation);
                p.has_value = true;
            }
        },
        SecretFacts::Owned(s) => {
            p.generation = s.generation;
            p.rotated_at = s.rotated_at;
            p.previous_expires = s.previous_expires;
            p.has_value = s.has_value;
            p.has_previous = s.has_previous;
            if let Some(why) = no_value {
                if s.has_value || s.has_previous || s.no_value != Some(why) {
                    p.action = SecretAction::Blank { why };
                }
                p.has_value = false;
                p.has_previous = false;
                p.previous_expires = None;
            } else if !s.has_value {
                // Re-enabled (or the value was removed by hand): a fresh
                // value. A disabled key's value is gone, never restored.
                let generation = s.generation.unwrap_or(0).max(key.wanted_generation);
                p.action = SecretAction::Regenerate { generation };
                p.generation = Some(generation);
                p.rotated_at = None;
                p.previous_expires = None;
                p.has_value = true;
                p.has_previous = false;
            } else if key.wanted_generation
                > s.generation
                    .or(key.legacy_generation)
                    .unwrap_or(key.wanted_generation)
            {
                match previous_validity_days(key.previous_validity.as_deref()) {
                    Ok(d) => {
                        // The previous value never outlives the key itself.
                        let until = now.saturating_add(days(d)).unwrap_or(now).min(expires);
                        p.action = SecretAction::Rotate {
                            generation: key.wanted_generation,
                            previous_until: until,
                        };
                        p.generation = Some(key.wanted_generation);
                        p.rotated_at = Some(now);
                        p.previous_expires = Some(until);
                        p.has_previous = true;
                    }
                    Err(e) => p.notes.push(format!("{e}; the key was not rotated")),
                }
            } else if s.generation.is_none() {
                let generation = key.legacy_generation.unwrap_or(key.wanted_generation);
                p.action = SecretAction::Stamp { generation };
                p.generation = Some(generation);
            } else if s.has_previous && s.previous_expires.is_none_or(|t| now >= t) {
                p.action = SecretAction::DropPrevious;
                p.has_previous = false;
                p.previous_expires = None;
            }
        }
    }

    let previous_valid = p.has_previous && p.previous_expires.is_some_and(|t| now < t);
    p.phase = match no_value {
        Some(NoValue::Expired) => Phase::Expired,
        Some(NoValue::Disabled) => Phase::Disabled,
        None if previous_valid => Phase::Rotating,
        None => Phase::Active,
    };
    if !previous_valid {
        p.previous_expires = None;
    }
    p.next_deadline = [
        (!expired).then_some(expires),
        (!expiring_soon && !expired).then_some(warn_from),
        p.previous_expires,
    ]
    .into_iter()
    .flatten()
    .filter(|t| *t > now)
    .min();
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_hub_names_are_judged_as_the_crd_pattern_says() {
        for ok in [
            "community",
            "Agent Panel",
            "a",
            "hub_1.v2-b",
            &"h".repeat(MAX_SEARCH_HUB_LEN),
        ] {
            assert_eq!(search_hub_problem(ok), None, "{ok:?}");
        }
        for bad in [
            "",
            " community",
            "community ",
            "hub\nX-Injected: 1",
            "hub\u{e9}",
            "a/b",
            "*",
            &"h".repeat(MAX_SEARCH_HUB_LEN + 1),
        ] {
            assert!(search_hub_problem(bad).is_some(), "{bad:?}");
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn key() -> KeyFacts {
        KeyFacts {
            created: t("2026-01-01T00:00:00Z"),
            enabled: true,
            template: ApiKeyTemplate::Custom,
            lifetime: Some("P90D".into()),
            wanted_generation: 0,
            previous_validity: None,
            warning_days: 14,
            legacy_generation: None,
        }
    }

    fn owned(generation: i64) -> OwnedSecret {
        OwnedSecret {
            has_value: true,
            generation: Some(generation),
            ..OwnedSecret::default()
        }
    }

    const NOW: &str = "2026-01-10T00:00:00Z";

    #[test]
    fn a_missing_secret_is_created_at_the_wanted_generation() {
        let p = plan(&key(), &SecretFacts::Missing, t(NOW));
        assert_eq!(p.action, SecretAction::Create { generation: 0 });
        assert_eq!(p.phase, Phase::Active);
        assert_eq!(p.expires, t("2026-04-01T00:00:00Z"));
    }

    #[test]
    fn a_foreign_secret_is_a_conflict_and_nothing_else() {
        let p = plan(&key(), &SecretFacts::Foreign, t(NOW));
        assert_eq!(p.action, SecretAction::Conflict);
        assert!(!p.has_value && p.generation.is_none());
    }

    #[test]
    fn rotation_is_decided_from_the_secret_so_a_retry_does_not_rotate_twice() {
        let mut k = key();
        k.wanted_generation = 1;
        k.previous_validity = Some("P10D".into());
        let first = plan(&k, &SecretFacts::Owned(owned(0)), t(NOW));
        let until = t("2026-01-20T00:00:00Z");
        assert_eq!(
            first.action,
            SecretAction::Rotate {
                generation: 1,
                previous_until: until
            }
        );
        assert_eq!(first.phase, Phase::Rotating);
        // The status write failed; the next reconcile (any replica, any time)
        // sees the Secret as the rotation left it.
        let after = OwnedSecret {
            has_value: true,
            has_previous: true,
            generation: Some(1),
            rotated_at: Some(t(NOW)),
            previous_expires: Some(until),
            no_value: None,
        };
        for later in [NOW, "2026-01-15T00:00:00Z"] {
            let retry = plan(&k, &SecretFacts::Owned(after.clone()), t(later));
            assert_eq!(retry.action, SecretAction::Nothing, "at {later}");
            assert_eq!(retry.phase, Phase::Rotating);
            assert_eq!(retry.previous_expires, Some(until));
        }
        // The window ends: the previous value goes, once.
        let end = plan(&k, &SecretFacts::Owned(after), until);
        assert_eq!(end.action, SecretAction::DropPrevious);
        assert_eq!(end.phase, Phase::Active);
    }

    #[test]
    fn the_previous_value_lives_at_most_thirty_days_and_never_past_the_key() {
        let mut k = key();
        k.wanted_generation = 1;
        k.previous_validity = Some("P90D".into());
        let p = plan(&k, &SecretFacts::Owned(owned(0)), t(NOW));
        assert!(
            matches!(p.action, SecretAction::Rotate { previous_until, .. }
            if previous_until == t("2026-02-09T00:00:00Z"))
        );
        let late = plan(&k, &SecretFacts::Owned(owned(0)), t("2026-03-25T00:00:00Z"));
        assert!(
            matches!(late.action, SecretAction::Rotate { previous_until, .. }
            if previous_until == t("2026-04-01T00:00:00Z"))
        );
    }

    #[test]
    fn an_unreadable_validity_does_not_rotate() {
        let mut k = key();
        k.wanted_generation = 1;
        k.previous_validity = Some("a week".into());
        let p = plan(&k, &SecretFacts::Owned(owned(0)), t(NOW));
        assert_eq!(p.action, SecretAction::Nothing);
        assert!(p.notes[0].contains("previousKeyValidity"), "{:?}", p.notes);
    }

    #[test]
    fn absent_lifetime_is_the_template_cap_and_expiry_counts_from_creation() {
        let mut k = key();
        k.lifetime = None;
        k.template = ApiKeyTemplate::AnonymousSearch;
        let p = plan(&k, &SecretFacts::Owned(owned(0)), t(NOW));
        assert_eq!(p.lifetime_days, 90);
        k.template = ApiKeyTemplate::Custom;
        assert_eq!(plan(&k, &SecretFacts::Missing, t(NOW)).lifetime_days, 365);
        k.lifetime = Some("P9999D".into());
        let p = plan(&k, &SecretFacts::Missing, t(NOW));
        assert_eq!(p.lifetime_days, 365);
        assert!(!p.notes.is_empty());
    }

    #[test]
    fn an_expired_key_is_blanked_once_and_stays_expired() {
        let later = t("2026-05-01T00:00:00Z");
        let p = plan(&key(), &SecretFacts::Owned(owned(0)), later);
        assert_eq!(
            p.action,
            SecretAction::Blank {
                why: NoValue::Expired
            }
        );
        assert_eq!(p.phase, Phase::Expired);
        let blank = OwnedSecret {
            generation: Some(0),
            no_value: Some(NoValue::Expired),
            ..OwnedSecret::default()
        };
        let again = plan(&key(), &SecretFacts::Owned(blank.clone()), later);
        assert_eq!(again.action, SecretAction::Nothing);
        // Re-enabling or rotating does not bring an expired key back.
        let mut k = key();
        k.wanted_generation = 5;
        assert_eq!(
            plan(&k, &SecretFacts::Owned(blank), later).action,
            SecretAction::Nothing
        );
        assert_eq!(
            plan(&key(), &SecretFacts::Missing, later).action,
            SecretAction::CreateEmpty {
                why: NoValue::Expired
            }
        );
    }

    #[test]
    fn disabling_blanks_and_re_enabling_generates_a_new_value() {
        let mut k = key();
        k.enabled = false;
        let p = plan(&k, &SecretFacts::Owned(owned(2)), t(NOW));
        assert_eq!(
            p.action,
            SecretAction::Blank {
                why: NoValue::Disabled
            }
        );
        assert_eq!(p.phase, Phase::Disabled);
        let blank = OwnedSecret {
            generation: Some(2),
            no_value: Some(NoValue::Disabled),
            ..OwnedSecret::default()
        };
        k.enabled = true;
        let p = plan(&k, &SecretFacts::Owned(blank), t(NOW));
        assert_eq!(p.action, SecretAction::Regenerate { generation: 2 });
        assert_eq!(p.phase, Phase::Active);
    }

    #[test]
    fn soon_to_expire_starts_warning_days_before_expiry() {
        let p = plan(&key(), &SecretFacts::Owned(owned(0)), t(NOW));
        assert!(!p.expiring_soon);
        assert_eq!(p.next_deadline, Some(t("2026-03-18T00:00:00Z")));
        let p = plan(
            &key(),
            &SecretFacts::Owned(owned(0)),
            t("2026-03-20T00:00:00Z"),
        );
        assert!(p.expiring_soon);
        assert_eq!(p.phase, Phase::Active);
        assert_eq!(p.next_deadline, Some(t("2026-04-01T00:00:00Z")));
        // The threshold is configurable; 0 turns the warning off.
        let mut k = key();
        k.warning_days = 0;
        let p = plan(&k, &SecretFacts::Owned(owned(0)), t("2026-03-31T23:00:00Z"));
        assert!(!p.expiring_soon);
        k.warning_days = 30;
        assert!(plan(&k, &SecretFacts::Owned(owned(0)), t("2026-03-05T00:00:00Z")).expiring_soon);
    }

    #[test]
    fn a_secret_from_before_the_annotation_is_stamped_not_rotated() {
        let mut k = key();
        k.wanted_generation = 3;
        k.legacy_generation = Some(3);
        let legacy = OwnedSecret {
            has_value: true,
            ..OwnedSecret::default()
        };
        let p = plan(&k, &SecretFacts::Owned(legacy.clone()), t(NOW));
        assert_eq!(p.action, SecretAction::Stamp { generation: 3 });
        k.wanted_generation = 4;
        let p = plan(&k, &SecretFacts::Owned(legacy), t(NOW));
        assert!(matches!(
            p.action,
            SecretAction::Rotate { generation: 4, .. }
        ));
    }

    /// Issue 27, path 3: a disabled key is enabled again only after its
    /// disabling was carried out (status of the stored generation, no value).
    #[test]
    fn a_key_is_enabled_again_only_once_its_disabling_was_carried_out() {
        let r = |generation, observed, publishes_value| Reported {
            generation,
            observed_generation: observed,
            publishes_value,
        };
        // (old enabled, new enabled, reported, admitted)
        let cases = [
            (false, true, r(Some(2), Some(2), false), true),
            (false, true, r(Some(2), Some(1), false), false),
            (false, true, r(Some(2), Some(2), true), false),
            (false, true, r(Some(2), None, false), false),
            (false, true, r(None, None, false), false),
            // A newer status than the object cannot be; it is not the stored one.
            (false, true, r(Some(2), Some(3), false), false),
            // Not a re-enable: disabling, or a disabled key edited.
            (true, false, r(Some(2), Some(1), true), true),
            (false, false, r(Some(2), Some(1), true), true),
            (true, true, r(Some(2), Some(1), true), true),
        ];
        for (old, new, reported, admitted) in cases {
            let wait = re_enable_wait("k", old, new, &reported);
            assert_eq!(
                wait.is_none(),
                admitted,
                "{old} -> {new}, {reported:?}: {wait:?}"
            );
        }
        let why = re_enable_wait("k", false, true, &r(Some(2), Some(1), true)).unwrap();
        assert!(
            why.contains("still being disabled") && why.contains("apikey/k"),
            "{why}"
        );
    }

    #[test]
    fn the_longest_name_gives_a_valid_secret_name() {
        assert_eq!(secret_name(&"k".repeat(MAX_NAME_LEN)).len(), 253);
    }
}
