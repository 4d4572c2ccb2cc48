//! orgaccess: a Kubernetes operator for an organization's member access.
//!
//! - [`core`]: the privilege model and the rules, with no Kubernetes dependency.
//!   The webhook, the controller and the offline CLI all call it.
//! - [`api`]: the custom resources (CRD types) and their core views.
//! - [`controlplane`]: a local kube-apiserver + etcd for tests and local runs.

pub mod admin;
pub mod api;
pub mod cli;
pub mod controller;
pub mod controlplane;
pub mod core;
pub mod webhook;
