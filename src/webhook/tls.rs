//! HTTPS for the webhook: rustls over hyper, with the serving certificate
//! re-read from its files when they change, without a restart.
//!
//! [`ReloadingCert`] checks the files' metadata (modification time, size,
//! inode) at each TLS handshake, which costs two `stat` calls, and loads the
//! pair again when it changed. A pair that does not load (half written,
//! mismatched key) is ignored and the previous one kept, so a rotation that
//! writes the certificate and the key one after the other never serves a
//! broken pair. Kubernetes Secret volumes swap a symlink, cert-manager's
//! csi-driver rewrites files: both change the metadata.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use hyper_util::service::TowerToHyperService;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::connection::{self, BodyAllowance, Builders, Peer, Protocol, Transport};
use super::metrics::{Metrics, ResultLabel};

/// How long a connection may take for its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What identifies one version of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = fs::metadata(path)?;
    Ok(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        ino: m.ino(),
    })
}

struct Loaded {
    stamps: (Stamp, Stamp),
    key: Arc<CertifiedKey>,
    /// Stamps of a pair that failed to load, so the failure is logged once.
    failed: Option<(Stamp, Stamp)>,
}

/// A certificate resolver that reloads the pair when its files change.
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: Mutex<Loaded>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// Reads a PEM certificate chain and private key into a rustls key.
pub fn load_pair(cert_file: &Path, key_file: &Path) -> anyhow::Result<CertifiedKey> {
    // PEM parsing from rustls's own pki-types (rustls-pemfile is unmaintained:
    // RUSTSEC-2025-0134).
    let certs = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("opening certificate {}", cert_file.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading certificate {}", cert_file.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", cert_file.display());
    }
    let key = match PrivateKeyDer::from_pem_file(key_file) {
        Ok(key) => key,
        Err(pem::Error::NoItemsFound) => {
            bail!("{} holds no PEM private key", key_file.display())
        }
        Err(e) => return Err(e).with_context(|| format!("reading key {}", key_file.display())),
    };
    let signing =
        any_supported_type(&key).map_err(|e| anyhow::anyhow!("key {}: {e}", key_file.display()))?;
    let pair = CertifiedKey::new(certs, signing);
    pair.keys_match().map_err(|e| {
        anyhow::anyhow!(
            "key {} does not belong to certificate {}: {e}",
            key_file.display(),
            cert_file.display()
        )
    })?;
    Ok(pair)
}

impl ReloadingCert {
    /// Loads the pair now: fails if the files are unreadable or do not match.
    pub fn new(
        cert_file: PathBuf,
        key_file: PathBuf,
        metrics: Option<Arc<Metrics>>,
    ) -> anyhow::Result<Self> {
        let stamps = (
            stamp(&cert_file).with_context(|| format!("reading {}", cert_file.display()))?,
            stamp(&key_file).with_context(|| format!("reading {}", key_file.display()))?,
        );
        let key = Arc::new(load_pair(&cert_file, &key_file)?);
        Ok(ReloadingCert {
            cert_file,
            key_file,
            current: Mutex::new(Loaded {
                stamps,
                key,
                failed: None,
            }),
            metrics,
        })
    }

    /// The pair to serve, reloaded first if the files changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let Ok(stamps) = stamp(&self.cert_file).and_then(|c| Ok((c, stamp(&self.key_file)?)))
        else {
            return cur.key.clone();
        };
        if stamps != cur.stamps && cur.failed != Some(stamps) {
            let result = match load_pair(&self.cert_file, &self.key_file) {
                Ok(pair) => {
                    tracing::info!(cert = %self.cert_file.display(), "serving certificate reloaded");
                    cur.key = Arc::new(pair);
                    cur.stamps = stamps;
                    cur.failed = None;
                    "ok"
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "serving certificate changed but does not load; keeping the previous one");
                    cur.failed = Some(stamps);
                    "error"
                }
            };
            if let Some(m) = &self.metrics {
                m.certificate_reloads
                    .get_or_create(&ResultLabel { result })
                    .inc();
            }
        }
        cur.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Who may call the webhook: clients presenting a certificate signed by the CA
/// in `ca_file` (for client authentication), whose subject common name is one
/// of `names` (any name from that CA when `names` is empty). The apiserver
/// presents one when its admission configuration names a kubeconfig with a
/// client certificate for the webhook (see docs/webhook.md), as Gatekeeper's
/// `--client-ca-name` / `--client-cn-name` expect.
#[derive(Clone, Debug)]
pub struct ClientAuth {
    pub ca_file: PathBuf,
    pub names: Vec<String>,
    /// Let clients without a certificate connect (they authenticate some
    /// other way, e.g. a bearer token); a certificate presented must still
    /// verify.
    pub optional: bool,
}

/// A rustls server configuration (TLS 1.2 and 1.3; `h2` and `http/1.1`
/// offered in ALPN, `h2` preferred) serving `certs`,
/// requiring a client certificate when `client_auth` is set.
pub fn server_config(
    certs: Arc<ReloadingCert>,
    client_auth: Option<&ClientAuth>,
) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match client_auth {
        None => builder.with_no_client_auth(),
        Some(auth) => {
            let mut roots = rustls::RootCertStore::empty();
            let pem = fs::read(&auth.ca_file)
                .with_context(|| format!("reading client CA {}", auth.ca_file.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert =
                    cert.with_context(|| format!("reading client CA {}", auth.ca_file.display()))?;
                roots
                    .add(cert)
                    .with_context(|| format!("client CA {}", auth.ca_file.display()))?;
            }
            if roots.is_empty() {
                bail!("{} holds no PEM certificate", auth.ca_file.display());
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if auth.optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().context("client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(certs);
    config.alpn_protocols = connection::alpn_protocols();
    Ok(config)
}

/// The subject common name of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// The verified client certificate's common name, as a request extension
/// (handlers that authorize per caller read it; `None` without one).
#[derive(Clone, Debug)]
pub struct ClientName(pub Option<String>);

/// Whether the connection presented a client certificate that verified
/// against the configured CA (and, when names are configured, carries one of
/// them), as a request extension. `false` when client certificates are not
/// required (anyone who completes TLS), or when one was optional and none was
/// presented: such a caller may be anyone who reaches the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authenticated(pub bool);

/// Whether a verified client chain is one of the allowed names (or any, for
/// none). A connection without a certificate got here only when none was
/// asked for, or one was optional ([`ClientAuth::optional`]): it is served,
/// as not [`Authenticated`].
fn allowed_client(conn: &rustls::ServerConnection, names: &[String]) -> Result<(), String> {
    if names.is_empty() {
        return Ok(());
    }
    let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) else {
        return Ok(());
    };
    match common_name(leaf.as_ref()) {
        Some(cn) if names.contains(&cn) => Ok(()),
        Some(cn) => Err(format!("client certificate CN '{cn}' is not allowed")),
        None => Err("the client certificate has no common name".into()),
    }
}

/// How one server serves its connections.
#[derive(Clone, Debug)]
pub struct Serving {
    /// Connections open at once; more are closed at once.
    pub max_connections: usize,
    /// HTTP/2 requests in flight per connection.
    pub streams: u32,
    /// Client certificate common names accepted (any, when empty).
    pub client_names: Vec<String>,
    /// Bytes of request bodies each connection may hold outside a shared
    /// budget ([`BodyAllowance`]).
    pub body_allowance: usize,
}

/// Serves `router` over TLS on `listener` until `shutdown`, then lets open
/// connections finish (up to a grace period). Each connection speaks the
/// protocol its client chose in ALPN and stays open as long as
/// [`connection`] allows; `transport` counts what happened.
pub async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: axum::Router,
    serving: Serving,
    metrics: Option<Arc<Metrics>>,
    transport: Transport,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let max_connections = serving.max_connections.max(1);
    let client_names = Arc::new(serving.client_names);
    let builders = Arc::new(Builders::new(serving.streams.max(1)));
    let allowance = serving.body_allowance;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let open = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Reap finished connection tasks as we go.
        while connections.try_join_next().is_some() {}
        // Past the limit, close at once: the peer sees a refused connection
        // rather than a server that holds more than it can serve.
        let Ok(slot) = open.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many open connections; closing");
            if let Some(m) = &metrics {
                m.connections_refused.inc();
            }
            drop(tcp);
            continue;
        };
        transport.accepted.inc();
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let stop = stop_rx.clone();
        let client_names = client_names.clone();
        let metrics = metrics.clone();
        let transport = transport.clone();
        let builders = builders.clone();
        let open = open.clone();
        connections.spawn(async move {
            let _slot = slot;
            transport.open.inc();
            let _open = OpenGuard(transport.open.clone());
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    let unauthenticated = e
                        .get_ref()
                        .and_then(|e| e.downcast_ref::<rustls::Error>())
                        .is_some_and(|e| {
                            matches!(
                                e,
                                rustls::Error::NoCertificatesPresented
                                    | rustls::Error::InvalidCertificate(_)
                            )
                        });
                    if let (true, Some(m)) = (unauthenticated, &metrics) {
                        m.unauthenticated.inc();
                    }
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let conn = tls.get_ref().1;
            if let Err(why) = allowed_client(conn, &client_names) {
                tracing::debug!(%peer, "{why}; closing");
                if let Some(m) = &metrics {
                    m.unauthenticated.inc();
                }
                return;
            }
            let protocol = Protocol::of_alpn(conn.alpn_protocol());
            transport.handshakes[protocol as usize].inc();
            let name = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|leaf| common_name(leaf.as_ref()));
            // rustls keeps peer certificates only once they verified.
            let verified = conn.peer_certificates().is_some_and(|c| !c.is_empty());
            let facts = Peer {
                name: ClientName(name),
                authenticated: Authenticated(verified),
                addr: peer,
                allowance: BodyAllowance(Arc::new(tokio::sync::Semaphore::new(allowance))),
            };
            // Slots are short when fewer than a quarter are free.
            let pressed = || open.available_permits() < max_connections.div_ceil(4);
            connection::serve(
                tls,
                protocol,
                TowerToHyperService::new(router),
                facts,
                &builders,
                &transport,
                pressed,
                stop,
            )
            .await;
        });
    }
    let _ = stop_tx.send(true);
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    Ok(())
}

/// Takes one from the open connections when the connection's task ends.
struct OpenGuard(prometheus_client::metrics::gauge::Gauge);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        fs::write(&c, cert.pem()).unwrap();
        fs::write(&k, key.serialize_pem()).unwrap();
        (c, k, cert.der().to_vec())
    }

    #[test]
    fn reloads_when_the_files_change_and_keeps_the_old_pair_on_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, k1, der1) = pair(dir.path(), "one");
        let (c2, k2, der2) = pair(dir.path(), "two");
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        fs::copy(&c1, &cert).unwrap();
        fs::copy(&k1, &key).unwrap();
        let r = ReloadingCert::new(cert.clone(), key.clone(), None).unwrap();
        assert_eq!(r.current().cert[0].as_ref(), der1);

        // Half a rotation: new certificate, old key. Keep serving the old pair.
        fs::rename(dir.path().join("two.crt"), &cert).unwrap();
        assert_eq!(r.current().cert[0].as_ref(), der1);
        // The key arrives: the new pair is served.
        fs::rename(&k2, &key).unwrap();
        assert_eq!(r.current().cert[0].as_ref(), der2);
        let _ = c2;

        // Garbage: keep the last good pair.
        fs::write(&cert, "not a certificate").unwrap();
        assert_eq!(r.current().cert[0].as_ref(), der2);
    }

    #[test]
    fn fails_fast_on_unreadable_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.crt");
        let err = ReloadingCert::new(missing.clone(), missing, None).unwrap_err();
        assert!(format!("{err:#}").contains("missing.crt"), "{err:#}");
    }
}
