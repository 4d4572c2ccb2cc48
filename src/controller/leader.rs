//! Leader election by a coordination.k8s.io/v1 Lease.
//!
//! All replicas serve the webhook; only the lease holder reconciles. The holder
//! renews every `renew` and gives up (the process exits and restarts) when it
//! cannot renew before the lease would expire, so two replicas never reconcile
//! at once for longer than a lease duration.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

pub struct LeaderConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub duration: Duration,
    pub renew: Duration,
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

fn expired(spec: &LeaseSpec) -> bool {
    let (Some(renewed), Some(secs)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return true;
    };
    let until = renewed
        .0
        .saturating_add(jiff::SignedDuration::from_secs(i64::from(secs)))
        .unwrap_or(renewed.0);
    jiff::Timestamp::now() > until
}

/// Tries once to take or renew the lease. Optimistic concurrency (the
/// resourceVersion in the replace) makes two contenders never both win.
pub async fn try_acquire(api: &Api<Lease>, cfg: &LeaderConfig) -> kube::Result<bool> {
    let secs = cfg.duration.as_secs() as i32;
    let existing = api.get_opt(&cfg.name).await?;
    let Some(mut lease) = existing else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(cfg.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(cfg.identity.clone()),
                lease_duration_seconds: Some(secs),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let mine = spec.holder_identity.as_deref() == Some(cfg.identity.as_str());
    if !mine && !expired(spec) {
        return Ok(false);
    }
    if !mine {
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        spec.holder_identity = Some(cfg.identity.clone());
    }
    spec.renew_time = Some(now());
    spec.lease_duration_seconds = Some(secs);
    match api.replace(&cfg.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits until this replica holds the lease.
pub async fn acquire(client: Client, cfg: &LeaderConfig) -> anyhow::Result<()> {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    loop {
        match try_acquire(&api, cfg).await {
            Ok(true) => {
                tracing::info!(lease = %cfg.name, identity = %cfg.identity, "became leader");
                return Ok(());
            }
            Ok(false) => tracing::debug!(lease = %cfg.name, "another replica leads; waiting"),
            Err(e) => tracing::warn!(error = %e, "lease request failed; retrying"),
        }
        tokio::time::sleep(cfg.renew).await;
    }
}

/// Renews the lease until it can no longer be held; returns when leadership is lost.
pub async fn hold(client: Client, cfg: &LeaderConfig) -> anyhow::Error {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(cfg.renew).await;
        match try_acquire(&api, cfg).await {
            Ok(true) => last_renewal = tokio::time::Instant::now(),
            Ok(false) => return anyhow::anyhow!("lease {} was taken by another replica", cfg.name),
            Err(e) => {
                tracing::warn!(error = %e, "lease renewal failed");
                if last_renewal.elapsed() >= cfg.duration {
                    return anyhow::anyhow!(
                        "could not renew lease {} within its duration: {e}",
                        cfg.name
                    );
                }
            }
        }
    }
}
