//! Running the controllers: their settings ([`ControllerArgs`]), readiness,
//! leader election with one term of leadership at a time ([`run`]), and the
//! periodic resync.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource};
use prometheus_client::registry::Registry;

use super::context::{Ctx, error_policy, observed, spawn_event_publisher};
use super::metrics::Metrics;
use super::{KEY_LABEL, RESYNC, apikey, group, leader, member, organization};
use crate::api::{ApiKey, Group, Member, Organization};
use crate::index::Stored;
use crate::index::watch::{Caches, Scope, channels};

/// Routes everything to the controllers every [`RESYNC`], from one
/// [`RESYNC`] after they start (starting routes everything once already).
async fn resync_every(caches: Caches) {
    let period = RESYNC;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        caches.resync();
    }
}

/// Controller settings.
#[derive(Clone, Debug, clap::Args)]
pub struct ControllerArgs {
    /// Objects reconciled at once, per kind.
    #[arg(long, env = "ORGACCESS_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// Take part in leader election (disable only for a single local replica).
    #[arg(long, env = "ORGACCESS_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the leader-election Lease.
    #[arg(
        long,
        env = "ORGACCESS_LEASE_NAMESPACE",
        default_value = "orgaccess-system"
    )]
    pub lease_namespace: String,
    /// Name of the leader-election Lease: one per installation (the chart
    /// uses `<release>-controller`), so two releases never share one.
    #[arg(
        long,
        env = "ORGACCESS_LEASE_NAME",
        default_value = "orgaccess-controller"
    )]
    pub lease_name: String,
    /// Identity in the Lease (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Report an API key as soon to expire (a Warning event and the
    /// `ExpiringSoon` condition) this many days before its expiry.
    #[arg(long, env = "ORGACCESS_API_KEY_EXPIRY_WARNING_DAYS", default_value_t = crate::core::apikey::DEFAULT_EXPIRY_WARNING_DAYS)]
    pub api_key_expiry_warning_days: i64,
    /// Report a membership as soon to end (a Warning event and the
    /// `MembershipEnding` condition on the Member) this many days before
    /// its end (`spec.until`, `spec.groupUntil`).
    #[arg(long, env = "ORGACCESS_MEMBERSHIP_END_WARNING_DAYS", default_value_t = crate::core::effective::DEFAULT_END_WARNING_DAYS)]
    pub membership_end_warning_days: i64,
    /// Label the least-privilege gauges (`orgaccess_advice_findings`) with
    /// each organization's namespace. Off by default: `/metrics` is served to
    /// whoever reaches the admin port, and namespaces name tenants.
    #[arg(long, env = "ORGACCESS_METRICS_NAMESPACE_LABELS", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub metrics_namespace_labels: bool,
}

/// Readiness of the controller: caches synced (and, once leading, controllers running).
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self) {
        self.0.store(true, Ordering::Relaxed)
    }
}

/// Runs the controllers until `shutdown` resolves.
///
/// With leader election, the controllers run only while this replica
/// holds the Lease. When it loses the Lease (another replica took it, or no
/// renewal succeeded within the renew deadline, e.g. while the apiserver
/// restarts) the controllers stop and the replica campaigns again, in the
/// same process: the watches and the index go on, so an apiserver outage
/// longer than the renew deadline needs no restart of the operator. A new
/// term starts as the first did, routing everything the index holds.
pub async fn run(
    client: Client,
    caches: Caches,
    scope: Scope,
    args: ControllerArgs,
    registry: Arc<Mutex<Registry>>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Every series exists from the first scrape, before anything can fail.
    let metrics = {
        let mut registry = registry.lock().unwrap_or_else(|e| e.into_inner());
        crate::metrics::register_process(&mut registry);
        Metrics::new(&mut registry, args.metrics_namespace_labels)
    };
    preflight(&client, &scope).await?;
    caches.wait_until_synced().await;
    readiness.set();
    tracing::info!("caches synced");

    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("orgaccess-{}", std::process::id()));
    let mut elector = args.leader_election.then(|| {
        leader::Elector::new(
            client.clone(),
            leader::LeaderConfig::new(
                args.lease_namespace.clone(),
                args.lease_name.clone(),
                identity.clone(),
            ),
        )
    });
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let reporter = Reporter {
        controller: "orgaccess".into(),
        instance: Some(identity),
    };
    loop {
        if let Some(elector) = elector.as_mut() {
            tokio::select! {
                () = elector.acquire() => {}
                _ = shutdown.clone() => return Ok(()),
            }
        }
        metrics.leader.set(1);
        let term = Term {
            client: &client,
            caches: &caches,
            scope: &scope,
            args: &args,
            metrics: &metrics,
            reporter: reporter.clone(),
        };
        let lost = match elector.as_mut() {
            Some(elector) => tokio::select! {
                () = term.lead(shutdown.clone()) => None,
                lost = elector.hold() => Some(lost),
            },
            None => {
                term.lead(shutdown.clone()).await;
                None
            }
        };
        caches.stop_routing();
        metrics.leader.set(0);
        match lost {
            Some(reason) => {
                metrics.leadership_lost.inc();
                tracing::warn!(%reason, "stopped leading: the controllers stopped; campaigning again");
            }
            None => {
                tracing::info!("controllers stopped");
                // Stopped on request while leading: hand the Lease over at once.
                if let Some(elector) = &elector
                    && let Err(e) = elector.release().await
                {
                    tracing::warn!(error = %e, "could not release the lease; another replica takes over when it expires");
                }
                return Ok(());
            }
        }
    }
}

/// What one term of leadership needs.
struct Term<'a> {
    client: &'a Client,
    caches: &'a Caches,
    scope: &'a Scope,
    args: &'a ControllerArgs,
    metrics: &'a Arc<Metrics>,
    reporter: Reporter,
}

impl Term<'_> {
    /// Runs the four controllers until `shutdown` resolves (or, when the
    /// caller drops this future, at once: in-flight reconciles are
    /// cancelled, as when the process ends).
    async fn lead(self, shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static) {
        let Term {
            client,
            caches,
            scope,
            args,
            metrics,
            reporter,
        } = self;
        // Leading: from now on the index routes every change here, starting
        // with everything it holds (each object is reconciled once).
        let (senders, triggers) = channels();
        caches.route_to(senders);
        let ctx = Arc::new(Ctx {
            client: client.clone(),
            caches: caches.clone(),
            metrics: metrics.clone(),
            api_key_warning_days: args.api_key_expiry_warning_days,
            membership_warning_days: args.membership_end_warning_days,
            events: spawn_event_publisher(client.clone(), reporter, metrics.clone()),
            failures: Mutex::default(),
            created_secrets: Mutex::default(),
        });
        let cfg = ControllerConfig::default()
            .concurrency(args.concurrency)
            .debounce(Duration::from_millis(200));
        // No trigger stream of their own: the index's routing is the only one.
        fn routed<K: Clone + Send + 'static>() -> futures::stream::Pending<Result<K, watcher::Error>>
        {
            futures::stream::pending()
        }
        fn drain<K: Resource, E: std::fmt::Display, T>(
            r: Result<(ObjectRef<K>, T), E>,
        ) -> impl Future<Output = ()>
        where
            K::DynamicType: Eq + std::hash::Hash,
        {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller event");
            }
            futures::future::ready(())
        }

        let orgs = Controller::for_stream(
            routed::<Stored<Organization>>(),
            caches.stores.organizations.clone(),
        )
        .with_config(cfg.clone())
        .reconcile_on(triggers.organizations)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |o, c| observed(o, c, organization::reconcile),
            error_policy,
            ctx.clone(),
        )
        .for_each(drain);
        let groups =
            Controller::for_stream(routed::<Stored<Group>>(), caches.stores.groups.clone())
                .with_config(cfg.clone())
                .reconcile_on(triggers.groups)
                .graceful_shutdown_on(shutdown.clone())
                .run(
                    |o, c| observed(o, c, group::reconcile),
                    error_policy,
                    ctx.clone(),
                )
                .for_each(drain);
        let members =
            Controller::for_stream(routed::<Stored<Member>>(), caches.stores.members.clone())
                .with_config(cfg.clone())
                .reconcile_on(triggers.members)
                .graceful_shutdown_on(shutdown.clone())
                .run(
                    |o, c| observed(o, c, member::reconcile),
                    error_policy,
                    ctx.clone(),
                )
                .for_each(drain);
        let keys =
            Controller::for_stream(routed::<Stored<ApiKey>>(), caches.stores.api_keys.clone())
                .with_config(cfg)
                .owns(
                    scope.api::<Secret>(client),
                    watcher::Config::default().labels(KEY_LABEL),
                )
                .reconcile_on(triggers.api_keys)
                .graceful_shutdown_on(shutdown.clone())
                .run(
                    |o, c| observed(o, c, apikey::reconcile),
                    error_policy,
                    ctx.clone(),
                )
                .for_each(drain);
        tokio::select! {
            _ = async { tokio::join!(orgs, groups, members, keys) } => {}
            () = resync_every(caches.clone()) => {}
        }
    }
}

/// Fails fast with an install hint when the CRDs are missing.
async fn preflight(client: &Client, scope: &Scope) -> anyhow::Result<()> {
    let api = scope.api::<Organization>(client);
    if let Err(e) = api.list(&kube::api::ListParams::default().limit(1)).await {
        anyhow::bail!(
            "cannot list organizations.orgaccess.dev ({e}); install the CRDs first: kubectl apply -f crds/"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        controller: ControllerArgs,
    }

    /// The defaults the chart and the docs (docs/operations.md) rely on,
    /// and the switches that take an explicit value.
    #[test]
    fn controller_flags_and_their_defaults() {
        let args = Cli::parse_from(["orgaccess"]).controller;
        assert_eq!(args.concurrency, 8);
        assert!(args.leader_election);
        assert_eq!(
            (args.lease_namespace.as_str(), args.lease_name.as_str()),
            ("orgaccess-system", "orgaccess-controller")
        );
        assert_eq!(
            args.api_key_expiry_warning_days,
            crate::core::apikey::DEFAULT_EXPIRY_WARNING_DAYS
        );
        assert!(!args.metrics_namespace_labels, "namespaces name tenants");

        let args = Cli::parse_from([
            "orgaccess",
            "--leader-election",
            "false",
            "--lease-name",
            "other-controller",
            "--metrics-namespace-labels",
            "true",
        ])
        .controller;
        assert!(!args.leader_election && args.metrics_namespace_labels);
        assert_eq!(args.lease_name, "other-controller");
        assert!(Cli::try_parse_from(["orgaccess", "--concurrency", "-1"]).is_err());
    }

    #[test]
    fn readiness_is_shared_by_its_clones() {
        let readiness = Readiness::default();
        let seen = readiness.clone();
        assert!(!seen.is_ready());
        readiness.set();
        assert!(seen.is_ready());
    }
}
