//! orgaccess: a Kubernetes operator for an organization's member access.
//!
//! - [`core`]: the privilege model and the rules, with no Kubernetes dependency.
//!   The webhook, the controller and the offline CLI all call it.
//! - [`api`]: the custom resources (CRD types) and their core views.
//! - [`index`]: one per-namespace index of every organization, fed by one
//!   watch per kind, read by the webhook and the controller.
//!
//! The local kube-apiserver + etcd that tests and the demo start is the
//! development crate `orgaccess-testenv`, never part of this one.

#![forbid(unsafe_code)]

/// The pure core (its own crate, `orgaccess-core`, so the compiler keeps kube out).
pub use orgaccess_core as core;

pub mod admin;
pub mod api;
pub mod cli;
pub mod clock;
pub mod controller;
pub mod decision;
pub mod events;
pub mod index;
pub mod judge;
pub mod metrics;
pub mod operator;
pub mod token_review;
pub mod webhook;
