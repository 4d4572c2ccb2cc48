//! How the webhook runs: its defaults, [`Config`], and the flags that fill it
//! ([`WebhookArgs`], flattened into `orgaccess webhook` and `orgaccess run`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::limits::MAX_BODY;
use super::{AuditFileConfig, Policy, tls};

/// Defaults, shared by [`Config::default`] and the flags.
pub const DEFAULT_ADDR: &str = "0.0.0.0:8443";
pub const DEFAULT_CERT_FILE: &str = "/etc/orgaccess/webhook/tls.crt";
pub const DEFAULT_KEY_FILE: &str = "/etc/orgaccess/webhook/tls.key";
pub const DEFAULT_TRUSTED_GROUP: &str = "system:masters";
pub const DEFAULT_OPERATOR_USER: &str = "system:serviceaccount:orgaccess-system:orgaccess";
/// Deletes dependents whose owner is gone (e.g. objects owned by a deleted Organization).
pub const DEFAULT_GARBAGE_COLLECTOR_USER: &str =
    "system:serviceaccount:kube-system:generic-garbage-collector";
pub const DEFAULT_NAMESPACE_CONTROLLER_USER: &str =
    "system:serviceaccount:kube-system:namespace-controller";
pub const DEFAULT_ACTIVITY_CAPACITY: usize = 1000;
/// Time to answer one request, from its headers on: below the configuration's
/// `timeoutSeconds` (5 s), so the apiserver always gets an answer from us.
pub const DEFAULT_DEADLINE_MS: u64 = 4000;
/// Time to receive one request's body (a slow sender is cut off).
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 2000;
/// Open connections served at once; more are closed at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Decisions run at once (each on a blocking thread); more wait, up to the deadline.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 2;
/// The common name of the apiserver's client certificate, as Gatekeeper expects it.
pub const DEFAULT_CLIENT_NAME: &str = "kube-apiserver";
/// Request bodies held in memory at once, in bytes (read or being judged).
pub const DEFAULT_BODY_BUDGET: usize = 3 * MAX_BODY;
/// The first bytes of every body are not taken from the body budget, and a
/// body no larger than this is judged in its own lane of decision slots: a
/// small request (nearly every admission request is a few KiB) never waits
/// behind large or slow bodies. At most `max_connections` times this is held
/// outside the budget (16 MiB with the defaults).
pub const SMALL_BODY: usize = 64 * 1024;
/// A body larger than this is judged alone in the large lane (it takes every
/// slot of it): bounded memory before throughput for the rare object over 1 MiB.
pub const HEAVY_BODY: usize = 1024 * 1024;

/// How the webhook runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// HTTPS listen address.
    pub addr: SocketAddr,
    /// PEM serving certificate (chain) and its key; re-read when they change.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Who is trusted, and how (the same struct as the flags).
    pub policy: Policy,
    /// Decisions kept for `GET /activity`.
    pub activity_capacity: usize,
    /// Publish an Event per decision (besides the log line and the ring).
    pub events: bool,
    /// `reportingInstance` of the Events (the pod name in a cluster).
    pub instance: Option<String>,
    /// Bounds on the work of each request (see [`limits`]).
    pub deadline: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub max_in_flight: usize,
    pub body_budget: usize,
    /// Serve only clients with a certificate from this CA and name (the
    /// apiserver); anyone who completes TLS when `None`.
    pub client_auth: Option<tls::ClientAuth>,
    /// The durable record: a rotated JSON-lines file of decisions.
    pub audit_file: Option<AuditFileConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: DEFAULT_ADDR.parse().expect("valid default address"),
            cert_file: DEFAULT_CERT_FILE.into(),
            key_file: DEFAULT_KEY_FILE.into(),
            policy: Policy::default(),
            activity_capacity: DEFAULT_ACTIVITY_CAPACITY,
            events: true,
            instance: None,
            deadline: Duration::from_millis(DEFAULT_DEADLINE_MS),
            body_timeout: Duration::from_millis(DEFAULT_BODY_TIMEOUT_MS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            body_budget: DEFAULT_BODY_BUDGET,
            client_auth: None,
            audit_file: None,
        }
    }
}

/// The webhook's command-line flags, for `orgaccess webhook` and `orgaccess run`
/// (`#[command(flatten)]`).
#[derive(Clone, Debug, clap::Args)]
pub struct WebhookArgs {
    /// HTTPS listen address of the admission webhook (also /healthz, /readyz, /metrics, /activity).
    #[arg(long = "webhook-addr", env = "ORGACCESS_WEBHOOK_ADDR", default_value = DEFAULT_ADDR)]
    pub webhook_addr: SocketAddr,
    /// PEM serving certificate of the webhook; re-read when the file changes.
    #[arg(long = "webhook-cert-file", env = "ORGACCESS_WEBHOOK_CERT_FILE", default_value = DEFAULT_CERT_FILE)]
    pub webhook_cert_file: PathBuf,
    /// PEM private key of the serving certificate; re-read when the file changes.
    #[arg(long = "webhook-key-file", env = "ORGACCESS_WEBHOOK_KEY_FILE", default_value = DEFAULT_KEY_FILE)]
    pub webhook_key_file: PathBuf,
    #[command(flatten)]
    pub policy: Policy,
    /// Admission decisions kept in memory for GET /activity.
    #[arg(long = "webhook-activity-size", env = "ORGACCESS_WEBHOOK_ACTIVITY_SIZE",
          default_value_t = DEFAULT_ACTIVITY_CAPACITY)]
    pub activity_capacity: usize,
    /// Publish a Kubernetes Event for every admission decision.
    #[arg(long = "webhook-events", env = "ORGACCESS_WEBHOOK_EVENTS", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub events: bool,
    /// Identity in the Events' reportingInstance (the pod name in a cluster).
    #[arg(long = "webhook-instance", env = "POD_NAME")]
    pub instance: Option<String>,
    /// Milliseconds to answer one request; keep below the webhook configuration's timeoutSeconds.
    #[arg(long = "webhook-deadline-ms", env = "ORGACCESS_WEBHOOK_DEADLINE_MS",
          default_value_t = DEFAULT_DEADLINE_MS)]
    pub deadline_ms: u64,
    /// Milliseconds to receive one request body.
    #[arg(long = "webhook-body-timeout-ms", env = "ORGACCESS_WEBHOOK_BODY_TIMEOUT_MS",
          default_value_t = DEFAULT_BODY_TIMEOUT_MS)]
    pub body_timeout_ms: u64,
    /// Connections served at once; more are closed.
    #[arg(long = "webhook-max-connections", env = "ORGACCESS_WEBHOOK_MAX_CONNECTIONS",
          default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Admission decisions computed at once.
    #[arg(long = "webhook-max-in-flight", env = "ORGACCESS_WEBHOOK_MAX_IN_FLIGHT",
          default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Bytes of request bodies held in memory at once.
    #[arg(long = "webhook-body-budget", env = "ORGACCESS_WEBHOOK_BODY_BUDGET",
          default_value_t = DEFAULT_BODY_BUDGET)]
    pub body_budget: usize,
    /// PEM CA that signs the apiserver's client certificate for webhooks: when
    /// set, /validate serves only clients presenting a certificate from it.
    #[arg(
        long = "webhook-client-ca-file",
        env = "ORGACCESS_WEBHOOK_CLIENT_CA_FILE"
    )]
    pub client_ca_file: Option<PathBuf>,
    /// Common names accepted in client certificates (with --webhook-client-ca-file);
    /// empty: any certificate from that CA.
    #[arg(long = "webhook-client-name", env = "ORGACCESS_WEBHOOK_CLIENT_NAMES",
          value_delimiter = ',', default_value = DEFAULT_CLIENT_NAME)]
    pub client_names: Vec<String>,
    /// With --webhook-client-ca-file: also serve clients without a
    /// certificate (one presented must still verify and carry an accepted
    /// name). Their requests are judged but recorded as `caller: not
    /// authenticated` and publish no Event; the apiserver's, once its
    /// admission configuration presents the certificate, are authenticated.
    #[arg(long = "webhook-client-optional", env = "ORGACCESS_WEBHOOK_CLIENT_OPTIONAL",
          default_value_t = false, action = clap::ArgAction::Set)]
    pub client_optional: bool,
    /// Append every decision to this JSON-lines file (rotated by size): the
    /// durable record, read back with `orgaccess activity FILE`.
    #[arg(long = "activity-file", env = "ORGACCESS_ACTIVITY_FILE")]
    pub activity_file: Option<PathBuf>,
    /// Rotate the activity file at this size, in bytes.
    #[arg(long = "activity-file-max-bytes", env = "ORGACCESS_ACTIVITY_FILE_MAX_BYTES",
          default_value_t = 100 * 1024 * 1024)]
    pub activity_file_max_bytes: u64,
    /// Rotated activity files kept (`FILE.1` newest .. `FILE.N`).
    #[arg(
        long = "activity-file-keep",
        env = "ORGACCESS_ACTIVITY_FILE_KEEP",
        default_value_t = 10
    )]
    pub activity_file_keep: usize,
}

impl WebhookArgs {
    pub fn config(&self) -> Config {
        Config {
            addr: self.webhook_addr,
            cert_file: self.webhook_cert_file.clone(),
            key_file: self.webhook_key_file.clone(),
            policy: self.policy.clone(),
            activity_capacity: self.activity_capacity,
            events: self.events,
            instance: self.instance.clone(),
            deadline: Duration::from_millis(self.deadline_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms.min(self.deadline_ms)),
            max_connections: self.max_connections.max(1),
            max_in_flight: self.max_in_flight.max(1),
            body_budget: self.body_budget.max(MAX_BODY),
            client_auth: self.client_ca_file.clone().map(|ca_file| tls::ClientAuth {
                ca_file,
                optional: self.client_optional,
                names: self
                    .client_names
                    .iter()
                    .filter(|n| !n.is_empty())
                    .cloned()
                    .collect(),
            }),
            audit_file: self.activity_file.clone().map(|path| AuditFileConfig {
                path,
                max_bytes: self.activity_file_max_bytes.max(64 * 1024),
                keep: self.activity_file_keep,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        webhook: WebhookArgs,
    }

    fn config(args: &[&str]) -> Config {
        Cli::try_parse_from(["orgaccess"].iter().chain(args))
            .unwrap()
            .webhook
            .config()
    }

    #[test]
    fn the_flags_default_to_the_defaults() {
        let (flags, defaults) = (config(&[]), Config::default());
        assert_eq!(flags.addr, defaults.addr);
        assert_eq!(flags.deadline, defaults.deadline);
        assert_eq!(flags.body_timeout, defaults.body_timeout);
        assert_eq!(flags.max_in_flight, defaults.max_in_flight);
        assert_eq!(flags.body_budget, defaults.body_budget);
        assert!(flags.client_auth.is_none() && flags.audit_file.is_none());
    }

    #[test]
    fn bounds_are_kept_whatever_the_flags_say() {
        let c = config(&[
            "--webhook-deadline-ms=100",
            "--webhook-body-timeout-ms=5000",
            "--webhook-max-connections=0",
            "--webhook-max-in-flight=0",
            "--webhook-body-budget=1",
            "--activity-file=/tmp/a.jsonl",
            "--activity-file-max-bytes=1",
        ]);
        // The body arrives within the deadline; at least one of everything.
        assert_eq!(c.body_timeout, Duration::from_millis(100));
        assert_eq!((c.max_connections, c.max_in_flight), (1, 1));
        assert_eq!(c.body_budget, MAX_BODY);
        assert_eq!(c.audit_file.map(|f| f.max_bytes), Some(64 * 1024));
    }

    #[test]
    fn client_names_drop_empty_entries() {
        let c = config(&[
            "--webhook-client-ca-file=/ca.pem",
            "--webhook-client-name=a,,b",
        ]);
        let auth = c.client_auth.unwrap();
        assert_eq!(auth.names, ["a", "b"]);
        assert!(!auth.optional);
        let c = config(&["--webhook-client-ca-file=/ca.pem", "--webhook-client-name="]);
        assert!(c.client_auth.unwrap().names.is_empty());
    }
}
