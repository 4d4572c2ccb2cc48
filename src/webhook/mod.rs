//! The validating admission webhook: the admission rules (docs/rules.md) at the cluster's door.
//!
//! Every create, update and delete of an Organization, Group, Member or ApiKey
//! is sent here by the ValidatingWebhookConfiguration ([`configuration`]) and
//! judged by [`crate::core::rules::check`], the same function `orgaccess check`
//! runs offline. This module only reads the request, maps the requester, keeps
//! the organizations' state cached, records the activity and serves HTTPS.
//!
//! The TLS port serves only `POST /validate` (`AdmissionReview` v1 in and
//! out, always HTTP 200), to the apiserver alone when client certificates are
//! required ([`tls::ClientAuth`]). The admin server ([`crate::admin`], plain
//! HTTP on its own port) serves the rest:
//!
//! | path | what |
//! |---|---|
//! | `GET /healthz` | 200 while serving |
//! | `GET /readyz` | 200 once the four caches have synced, 503 before |
//! | `GET /metrics` | Prometheus text (`orgaccess_webhook_*`, and whatever else shares the registry) |
//! | `GET /activity?namespace=NS&limit=N` | the last admission decisions, JSON, oldest first; bearer token, see [`Webhook::activity_router`] |
//!
//! Run it alone with [`serve`], or inside the operator with [`Webhook::new`]
//! and [`Webhook::run`] (sharing the operator's metrics registry), with the
//! command-line flags of [`WebhookArgs`].

pub mod activity;
mod activity_route;
mod admit;
pub mod bodies;
mod config;
pub mod configuration;
pub mod connection;
pub mod limits;
pub mod metrics;
pub mod mutate;
pub mod review;
mod server;
pub mod tls;
mod validator;

pub use crate::index::Index;
pub use activity::{Activity, ActivityLog, AuditFileConfig, Caller};
pub use activity_route::may_view_activities;
pub use config::*;
pub use configuration::{
    Endpoint, mutating_webhook_configuration, only_namespace, webhook_configuration,
};
pub use metrics::Metrics;
pub use review::{Decision, Policy};
pub use server::{Webhook, serve};
pub use validator::Validator;
