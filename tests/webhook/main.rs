//! The admission webhook against the real apiserver: served in-process or as the real
//! `orgaccess` process, each test with its own namespace-scoped webhook configuration; hostile,
//! forged and malformed callers; the seams between admitted steps; the advisor's warnings; the
//! agreement between the webhook, `orgaccess check` and the apiserver.
//!
//! One test binary for these modules, so they share one control plane (tests/support)
//! and one build; each module is one subject. Run one with `cargo test --test webhook MODULE::`.

#[path = "../operator/mod.rs"]
mod operator;
#[path = "../support/mod.rs"]
mod support;

mod advice;
mod agreement;
mod key_seams;
mod seams;
mod webhook;
mod webhook_forged;
mod webhook_h2;
mod webhook_hostile;
mod webhook_malformed;
mod webhook_soak;
