//! Leader election by a coordination.k8s.io/v1 Lease, the way client-go's
//! `leaderelection` does it.
//!
//! All replicas serve the webhook; only the lease holder reconciles.
//!
//! - **Expiry is judged by local observation.** A candidate never compares
//!   the holder's `renewTime` with its own wall clock (the two clocks may
//!   disagree): it records, on its own monotonic clock, when it last saw the
//!   Lease change (its resourceVersion), and takes the Lease over only when
//!   a whole `leaseDurationSeconds` of its own time passed without a change.
//! - **Renewals are bounded by a deadline.** The holder renews every `retry`;
//!   when no renewal succeeded for `renew_deadline` (shorter than the lease
//!   duration), it stops leading (stops reconciling) before another replica
//!   may consider the Lease expired.
//! - **The Lease is released on shutdown**: the holder clears
//!   `holderIdentity`, so the next replica takes over at its next try instead
//!   of waiting out the lease duration.
//!
//! The decisions are pure functions of what was observed and a local
//! [`Instant`] ([`decide`], [`Observed`], [`renewal_overdue`]), unit-tested
//! below; [`Elector`] does the I/O.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

pub struct LeaderConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a Lease is valid without a renewal (written to the Lease;
    /// other replicas wait this long, on their own clock, after its last change).
    pub duration: Duration,
    /// The holder stops leading when no renewal succeeded for this long.
    pub renew_deadline: Duration,
    /// Time between two tries (to acquire, or to renew).
    pub retry: Duration,
}

impl LeaderConfig {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s between tries.
    pub fn new(namespace: String, name: String, identity: String) -> LeaderConfig {
        LeaderConfig {
            namespace,
            name,
            identity,
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// The Lease as last read: only what the decision needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseView {
    /// Changes on every write, by any replica.
    pub resource_version: String,
    /// Empty or absent when the Lease is free (released).
    pub holder: Option<String>,
    pub duration: Option<Duration>,
}

impl LeaseView {
    fn of(lease: &Lease) -> LeaseView {
        let spec = lease.spec.as_ref();
        LeaseView {
            resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
            holder: spec
                .and_then(|s| s.holder_identity.clone())
                .filter(|h| !h.is_empty()),
            duration: spec
                .and_then(|s| s.lease_duration_seconds)
                .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0))),
        }
    }
}

/// When this process last saw the Lease change, on its own monotonic clock.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    last: Option<(String, Instant)>,
}

impl Observed {
    /// Records a read of the Lease at `now`. The local clock restarts only
    /// when the Lease changed since the previous read.
    pub fn saw(&mut self, lease: &LeaseView, now: Instant) {
        match &self.last {
            Some((version, _)) if *version == lease.resource_version => {}
            _ => self.last = Some((lease.resource_version.clone(), now)),
        }
    }

    /// When the Lease last changed, as seen from here.
    pub fn changed_at(&self) -> Option<Instant> {
        self.last.as_ref().map(|(_, at)| *at)
    }
}

/// What to do with the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// There is no Lease: create it, holding it.
    Create,
    /// It is free (released) or expired: take it over.
    Take,
    /// It is ours: renew it.
    Renew,
    /// Another replica holds it and it has not expired: wait.
    Wait { holder: String },
}

/// Decides from the Lease as read (`None`: it does not exist), when this
/// process saw it last change (`changed_at`), and the local time `now`.
/// A held Lease expires when its duration (or `default_duration` when it
/// names none) passed on the local clock since it last changed; the
/// holder's `renewTime` is never compared with this clock.
pub fn decide(
    lease: Option<&LeaseView>,
    identity: &str,
    changed_at: Option<Instant>,
    now: Instant,
    default_duration: Duration,
) -> Decision {
    let Some(lease) = lease else {
        return Decision::Create;
    };
    let Some(holder) = &lease.holder else {
        return Decision::Take;
    };
    if holder == identity {
        return Decision::Renew;
    }
    let duration = lease.duration.unwrap_or(default_duration);
    let unchanged_for = changed_at.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
    if unchanged_for >= duration {
        Decision::Take
    } else {
        Decision::Wait {
            holder: holder.clone(),
        }
    }
}

/// Whether the holder must stop leading: no renewal succeeded within the
/// renew deadline.
pub fn renewal_overdue(last_renewed: Instant, now: Instant, renew_deadline: Duration) -> bool {
    now.saturating_duration_since(last_renewed) >= renew_deadline
}

fn now_micro() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// One candidate in the election.
pub struct Elector {
    api: Api<Lease>,
    cfg: LeaderConfig,
    observed: Observed,
}

impl Elector {
    pub fn new(client: Client, cfg: LeaderConfig) -> Elector {
        Elector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: Observed::default(),
        }
    }

    pub fn config(&self) -> &LeaderConfig {
        &self.cfg
    }

    /// Reads the Lease once and takes, renews or leaves it. Returns whether
    /// this replica holds it afterwards. Optimistic concurrency (the
    /// resourceVersion in the replace) makes two contenders never both win.
    pub async fn try_acquire_or_renew(&mut self) -> kube::Result<bool> {
        let existing = self.api.get_opt(&self.cfg.name).await?;
        let view = existing.as_ref().map(LeaseView::of);
        if let Some(view) = &view {
            self.observed.saw(view, Instant::now());
        }
        let decision = decide(
            view.as_ref(),
            &self.cfg.identity,
            self.observed.changed_at(),
            Instant::now(),
            self.cfg.duration,
        );
        let written = match (decision, existing) {
            (Decision::Wait { holder }, _) => {
                tracing::debug!(lease = %self.cfg.name, %holder, "another replica leads; waiting");
                return Ok(false);
            }
            (Decision::Create, _) | (_, None) => {
                self.api
                    .create(&PostParams::default(), &self.new_lease())
                    .await
            }
            (decision, Some(mut lease)) => {
                self.write_holder(&mut lease, decision == Decision::Take);
                self.api
                    .replace(&self.cfg.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(lease) => {
                self.observed.saw(&LeaseView::of(&lease), Instant::now());
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn new_lease(&self) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.cfg.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.cfg.identity.clone()),
                lease_duration_seconds: Some(seconds(self.cfg.duration)),
                acquire_time: Some(now_micro()),
                renew_time: Some(now_micro()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }

    fn write_holder(&self, lease: &mut Lease, taking_over: bool) {
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if taking_over {
            spec.acquire_time = Some(now_micro());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            spec.holder_identity = Some(self.cfg.identity.clone());
        }
        spec.renew_time = Some(now_micro());
        spec.lease_duration_seconds = Some(seconds(self.cfg.duration));
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.cfg.name, identity = %self.cfg.identity, "became leader");
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "lease request failed; retrying"),
            }
            tokio::time::sleep(self.cfg.retry).await;
        }
    }

    /// Renews the Lease every `retry` and returns (the reason) when this
    /// replica must stop leading: another replica took it, or no renewal
    /// succeeded within the renew deadline. Each try is itself cut off at
    /// the deadline, so a hanging request cannot stretch it.
    pub async fn hold(&mut self) -> anyhow::Error {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.cfg.retry).await;
            let left = self
                .cfg
                .renew_deadline
                .saturating_sub(last_renewed.elapsed());
            let outcome = tokio::time::timeout(left, self.try_acquire_or_renew()).await;
            match outcome {
                Ok(Ok(true)) => {
                    last_renewed = Instant::now();
                    continue;
                }
                Ok(Ok(false)) if !self.conflicted_but_still_ours().await => {
                    return anyhow::anyhow!("lease {} was taken by another replica", self.cfg.name);
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "lease renewal failed"),
                Err(_) => tracing::warn!("lease renewal timed out"),
            }
            if renewal_overdue(last_renewed, Instant::now(), self.cfg.renew_deadline) {
                return anyhow::anyhow!(
                    "could not renew lease {} within the renew deadline ({:?}); stopped leading",
                    self.cfg.name,
                    self.cfg.renew_deadline
                );
            }
        }
    }

    /// After a refused renewal (a write conflict): whether the Lease still
    /// names this replica, so the next try may renew it.
    async fn conflicted_but_still_ours(&self) -> bool {
        match self.api.get_opt(&self.cfg.name).await {
            Ok(Some(lease)) => LeaseView::of(&lease).holder.as_deref() == Some(&self.cfg.identity),
            // Unknown: let the deadline decide.
            Err(_) => true,
            Ok(None) => false,
        }
    }

    /// Gives the Lease up (when this replica holds it): clears the holder
    /// and shortens the duration, so another replica takes over at once.
    pub async fn release(&self) -> kube::Result<()> {
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            return Ok(());
        };
        if LeaseView::of(&lease).holder.as_deref() != Some(&self.cfg.identity) {
            return Ok(());
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now_micro());
        self.api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await?;
        tracing::info!(lease = %self.cfg.name, identity = %self.cfg.identity, "released the lease");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);
    const LEASE: Duration = Duration::from_secs(15);

    fn held_by(holder: &str, version: &str) -> LeaseView {
        LeaseView {
            resource_version: version.into(),
            holder: Some(holder.into()),
            duration: Some(LEASE),
        }
    }

    #[test]
    fn a_missing_lease_is_created_and_a_released_one_taken_at_once() {
        let now = Instant::now();
        assert_eq!(decide(None, "me", None, now, LEASE), Decision::Create);
        let released = LeaseView {
            holder: None,
            ..held_by("", "7")
        };
        // Just seen change: still taken, nobody holds it.
        assert_eq!(
            decide(Some(&released), "me", Some(now), now, LEASE),
            Decision::Take
        );
    }

    #[test]
    fn our_own_lease_is_renewed() {
        let now = Instant::now();
        let lease = held_by("me", "3");
        assert_eq!(
            decide(Some(&lease), "me", Some(now), now, LEASE),
            Decision::Renew
        );
    }

    #[test]
    fn another_holders_lease_expires_only_after_its_duration_of_local_time_without_change() {
        let start = Instant::now();
        let mut observed = Observed::default();
        let lease = held_by("other", "10");
        observed.saw(&lease, start);
        let waiting = Decision::Wait {
            holder: "other".into(),
        };
        let at = |secs: u64| start + Duration::from_secs(secs);
        assert_eq!(
            decide(Some(&lease), "me", observed.changed_at(), at(14), LEASE),
            waiting
        );
        // Seeing the same version again does not restart the local clock...
        observed.saw(&lease, at(14));
        assert_eq!(
            decide(Some(&lease), "me", observed.changed_at(), at(15), LEASE),
            Decision::Take
        );
        // ...a renewal (a new version) does.
        let renewed = held_by("other", "11");
        observed.saw(&renewed, at(15));
        assert_eq!(
            decide(Some(&renewed), "me", observed.changed_at(), at(29), LEASE),
            waiting
        );
        assert_eq!(
            decide(Some(&renewed), "me", observed.changed_at(), at(30), LEASE),
            Decision::Take
        );
    }

    #[test]
    fn a_lease_first_seen_now_is_not_expired_whatever_its_renew_time_says() {
        // The holder's clock may be far behind ours: its renewTime is not
        // read. Only this process's own observation counts.
        let now = Instant::now();
        let mut observed = Observed::default();
        let lease = held_by("other", "5");
        observed.saw(&lease, now);
        assert!(matches!(
            decide(
                Some(&lease),
                "me",
                observed.changed_at(),
                now + SECOND,
                LEASE
            ),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn the_lease_names_its_duration() {
        let start = Instant::now();
        let short = LeaseView {
            duration: Some(3 * SECOND),
            ..held_by("other", "1")
        };
        assert_eq!(
            decide(Some(&short), "me", Some(start), start + 3 * SECOND, LEASE),
            Decision::Take
        );
        let unnamed = LeaseView {
            duration: None,
            ..held_by("other", "1")
        };
        assert!(matches!(
            decide(Some(&unnamed), "me", Some(start), start + 3 * SECOND, LEASE),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn the_holder_stops_leading_when_no_renewal_succeeded_within_the_deadline() {
        let renewed = Instant::now();
        let deadline = 10 * SECOND;
        assert!(!renewal_overdue(renewed, renewed + 9 * SECOND, deadline));
        assert!(renewal_overdue(renewed, renewed + 10 * SECOND, deadline));
    }
}
