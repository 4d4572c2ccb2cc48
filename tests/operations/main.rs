//! The operator running as the real `orgaccess run` process, each test with an operator
//! that watches only its own namespace: restarts and Lease hand-over, readiness as kstatus and
//! Argo CD see it, metrics and logs, the decision service (HTTP, NGINX, tokens, usage, cache),
//! the CRDs' limits and the control plane itself.
//!
//! One test binary for these modules, so they share one control plane (tests/support)
//! and one build; each module is one subject. Run one with `cargo test --test operations MODULE::`.

#[path = "../generators/mod.rs"]
mod generators;
#[path = "../operator/mod.rs"]
mod operator;
#[path = "../support/mod.rs"]
mod support;

mod access_reviews;
mod clocked;
mod control_plane;
mod controller_restart;
mod crd_limits;
mod decision;
mod decision_cache;
mod decision_metrics;
mod decision_nginx;
mod decision_tokens;
mod decision_usage;
mod membership_end;
mod operability;
mod readiness;
