//! The controller: reconciles the declared objects into each organization's
//! access state.
//!
//! Four `kube::runtime::Controller`s (Organization, Group, Member, ApiKey) read
//! the process's shared caches ([`crate::index`]: one watch per kind, the
//! per-namespace index and the stores). They start no watches of their own
//! (the API key controller's Secrets aside): every reconcile is asked for by
//! the index's routing, which names exactly the objects a change affects
//! ([`crate::index::route`]). Status is written by server-side apply only
//! when it changed; only the Lease holder reconciles.
//!
//! The parts: one reconciler per kind (`organization`, `group`, `member`,
//! `apikey`: observe → pure desired status → apply), status writing
//! ([`status`]), what every reconcile gets and what wraps it (`context`),
//! the metrics (`metrics`), running the controllers under leader election
//! (`run`, [`leader`]).

mod apikey;
mod context;
mod group;
pub mod leader;
mod member;
mod metrics;
mod organization;
mod run;
pub mod status;

/// The pure "desired status" step of each reconcile, for tests and tools:
/// from an object and its namespace in the shared index to its status.
pub mod desired {
    pub use super::apikey::{SecretValues, desired_status as api_key, key_facts as api_key_facts};
    pub use super::group::desired_status as group;
    pub use super::member::desired_status as member;
    pub use super::organization::{
        desired_status as organization, findings as organization_findings,
    };
}

pub use apikey::{KEY_LABEL, PREVIOUS_KEY, VALUE_KEY, fingerprint};
pub use context::Ctx;
pub use metrics::{ErrorLabel, KindLabel, Metrics, ResultLabel};
pub use organization::builtin_group;
pub use run::{ControllerArgs, Readiness, run};

use std::time::Duration;

/// The controller's clock: the process's ([`crate::clock::now`]).
pub use crate::clock::now;

/// Every object is looked at again this often even when nothing changed:
/// one pass routing everything the index holds
/// ([`crate::index::watch::Caches::resync`]), so a
/// reconcile with no deadline of its own returns `Action::await_change()`
/// and the controllers keep no timer per object (a scheduled requeue holds
/// two copies of the object's reference: about 0.6 KiB per object in the
/// scale run's heap profile, docs/performance.md). Deadlines (an invitation's expiry, an API key's
/// warning, expiry and rotation window) are still requeues, at most this far
/// out.
pub const RESYNC: Duration = Duration::from_secs(30 * 60);

/// Come back at `at` (at most [`RESYNC`] ahead, at least a second), or when
/// something changes when there is no deadline.
pub(crate) fn requeue_at(
    at: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> kube::runtime::controller::Action {
    match at {
        Some(at) => {
            let secs = at.duration_since(now).as_secs().max(1) as u64;
            kube::runtime::controller::Action::requeue(Duration::from_secs(
                secs.min(RESYNC.as_secs()),
            ))
        }
        None => kube::runtime::controller::Action::await_change(),
    }
}

/// Why a reconcile failed (labelled for the metrics by `Error::label`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("object is not namespaced")]
    NotNamespaced,
}
