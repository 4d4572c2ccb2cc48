//! The control plane's credentials and the files that hold them ([`Pki`],
//! [`Layout`]): a CA, the apiserver's serving certificate, the
//! service-account key, one bearer token and one kubeconfig per identity, the
//! client certificate the apiserver presents to webhooks and the admission
//! configuration naming it.
//!
//! Everything is made in memory (`rcgen`) and written as files because the
//! apiserver reads files. Nothing here starts a process: tests and tools can
//! make certificates and kubeconfigs without a control plane
//! ([`crate::ControlPlane`] starts one with them).

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use rand::Rng as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::json;

use crate::{
    ADMIN, GITOPS_GROUP, GITOPS_USER, OPERATOR_NAMESPACE, OPERATOR_USER, TESTER_USERS,
    TESTERS_GROUP, WEBHOOK_CLIENT_NAME,
};

/// An identity known to the apiserver's static token file.
#[derive(Clone, Debug)]
pub struct Identity {
    /// User name as the apiserver sees it.
    pub name: String,
    /// Groups the apiserver attaches (besides `system:authenticated`).
    pub groups: Vec<String>,
    /// Bearer token, random per [`Pki::new`].
    pub token: String,
}

/// A PEM certificate and its private key.
#[derive(Clone, Debug)]
pub struct ServingCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where the credentials (and the control plane's data and logs) go under a
/// work dir.
#[derive(Clone, Debug)]
pub struct Layout {
    pub work: PathBuf,
    pub pki: PathBuf,
    pub logs: PathBuf,
    pub etcd_data: PathBuf,
    pub kubeconfigs: PathBuf,
    pub tokens: PathBuf,
    /// The apiserver's admission configuration and the kubeconfig it uses to
    /// call webhooks (a client certificate).
    pub admission_config: PathBuf,
    pub webhook_kubeconfig: PathBuf,
}

impl Layout {
    pub fn new(work: &Path) -> Self {
        Layout {
            work: work.to_path_buf(),
            pki: work.join("pki"),
            logs: work.join("logs"),
            etcd_data: work.join("etcd"),
            kubeconfigs: work.join("kubeconfigs"),
            tokens: work.join("tokens.csv"),
            admission_config: work.join("admission-configuration.yaml"),
            webhook_kubeconfig: work.join("kubeconfigs").join("webhook-client.kubeconfig"),
        }
    }

    /// Creates the directories.
    pub fn create_dirs(&self) -> anyhow::Result<()> {
        for dir in [&self.pki, &self.logs, &self.etcd_data, &self.kubeconfigs] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(())
    }

    /// The kubeconfig of one identity, under `kubeconfigs/`.
    pub fn kubeconfig(&self, user: &str) -> PathBuf {
        // ':' is awkward in file names (and in KUBECONFIG lists).
        let file = format!("{}.kubeconfig", user.replace(':', "_"));
        self.kubeconfigs.join(file)
    }

    /// `admin.kubeconfig` at the top of the work dir, easy to find.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.work.join("admin.kubeconfig")
    }

    /// The CA certificate (a webhook's `--webhook-client-ca-file`).
    pub fn ca_file(&self) -> PathBuf {
        self.pki.join("ca.crt")
    }
}

/// A CA and the identities (with fresh random tokens) of one control plane.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_pem: String,
    identities: Vec<Identity>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("identities", &self.identities.len())
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// A new CA, and the identities: admin, the testers, gitops, the operator.
    pub fn new() -> anyhow::Result<Pki> {
        let (ca, ca_pem) = make_ca()?;
        Ok(Pki {
            ca,
            ca_pem,
            identities: make_identities(),
        })
    }

    /// PEM of the CA that signs every certificate here.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// DER of the CA certificate (to trust it in a TLS client).
    pub fn ca_der(&self) -> &rustls::pki_types::CertificateDer<'static> {
        self.ca.der()
    }

    /// Every identity: admin, the testers, gitops, the operator.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// One identity by user name.
    pub fn identity(&self, user: &str) -> Option<&Identity> {
        self.identities.iter().find(|i| i.name == user)
    }

    /// A serving certificate signed by the CA; `sans` are IP addresses or
    /// DNS names.
    pub fn issue_serving_cert(&self, sans: &[&str]) -> anyhow::Result<ServingCert> {
        issue_cert(&self.ca, sans)
    }

    /// A client certificate with common name `cn`, signed by the CA.
    pub fn issue_client_cert(&self, cn: &str) -> anyhow::Result<ServingCert> {
        issue_client_cert(&self.ca, cn)
    }

    /// A self-contained kubeconfig (CA embedded) for the apiserver at `url`,
    /// using the identity's token.
    pub fn kubeconfig(&self, url: &str, id: &Identity) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let context = format!("{}@orgaccess", id.name);
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": "orgaccess", "cluster": { "server": url, "certificate-authority-data": ca } }],
            "users": [{ "name": id.name, "user": { "token": id.token } }],
            "contexts": [{ "name": context, "context": { "cluster": "orgaccess", "user": id.name, "namespace": "default" } }],
            "current-context": context,
        });
        // JSON is valid YAML; serde_json takes care of quoting user names with ':'.
        serde_json::to_string_pretty(&config).expect("kubeconfig serializes")
    }

    /// Writes what the apiserver reads at start: the CA, its serving
    /// certificate for `127.0.0.1`/`localhost`, the service-account key
    /// pair, the token file, and the client certificate it presents to
    /// webhooks with the admission configuration naming it.
    pub fn write_apiserver_files(&self, layout: &Layout) -> anyhow::Result<()> {
        let serving = self.issue_serving_cert(&["127.0.0.1", "localhost"])?;
        write_private(&layout.ca_file(), &self.ca_pem)?;
        write_private(&layout.pki.join("apiserver.crt"), &serving.cert_pem)?;
        write_private(&layout.pki.join("apiserver.key"), &serving.key_pem)?;
        // ECDSA P-256: kube-apiserver accepts ES256 service-account keys, and
        // rcgen's ring backend cannot generate RSA keys.
        let sa_key = KeyPair::generate().context("generating the service-account key")?;
        write_private(&layout.pki.join("sa.key"), &sa_key.serialize_pem())?;
        write_private(&layout.pki.join("sa.pub"), &sa_key.public_key_pem())?;
        write_private(&layout.tokens, &token_file(&self.identities))?;

        // The apiserver presents a client certificate to every webhook (as
        // kube-apiserver does when its admission configuration names a
        // kubeconfig), so the webhook can serve only it.
        let client = self.issue_client_cert(WEBHOOK_CLIENT_NAME)?;
        let (client_crt, client_key) = (
            layout.pki.join("webhook-client.crt"),
            layout.pki.join("webhook-client.key"),
        );
        write_private(&client_crt, &client.cert_pem)?;
        write_private(&client_key, &client.key_pem)?;
        write_private(
            &layout.webhook_kubeconfig,
            &format!(
                "apiVersion: v1\nkind: Config\nusers:\n- name: \"*\"\n  user:\n    client-certificate: {}\n    client-key: {}\n",
                client_crt.display(),
                client_key.display()
            ),
        )?;
        write_private(
            &layout.admission_config,
            &format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n\
                 - name: ValidatingAdmissionWebhook\n  configuration:\n    apiVersion: apiserver.config.k8s.io/v1\n\
                 \x20   kind: WebhookAdmissionConfiguration\n    kubeConfigFile: {}\n\
                 - name: MutatingAdmissionWebhook\n  configuration:\n    apiVersion: apiserver.config.k8s.io/v1\n\
                 \x20   kind: WebhookAdmissionConfiguration\n    kubeConfigFile: {}\n",
                layout.webhook_kubeconfig.display(),
                layout.webhook_kubeconfig.display()
            ),
        )
    }

    /// Writes one kubeconfig per identity for the apiserver at `url`, and
    /// the admin's again at the top of the work dir.
    pub fn write_kubeconfigs(&self, layout: &Layout, url: &str) -> anyhow::Result<()> {
        for id in &self.identities {
            write_private(&layout.kubeconfig(&id.name), &self.kubeconfig(url, id))?;
        }
        let admin = self.identity(ADMIN).expect("admin identity");
        write_private(&layout.admin_kubeconfig(), &self.kubeconfig(url, admin))
    }
}

/// Writes a file readable only by us (keys, tokens, kubeconfigs with tokens).
pub(crate) fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

fn make_identities() -> Vec<Identity> {
    let mut rng = rand::rng();
    let mut token = || {
        let bytes: [u8; 24] = rng.random();
        hex::encode(bytes)
    };
    let mut ids = vec![Identity {
        name: ADMIN.into(),
        groups: vec!["system:masters".into()],
        token: token(),
    }];
    for user in TESTER_USERS {
        ids.push(Identity {
            name: user.into(),
            groups: vec![TESTERS_GROUP.into()],
            token: token(),
        });
    }
    ids.push(Identity {
        name: GITOPS_USER.into(),
        groups: vec![GITOPS_GROUP.into()],
        token: token(),
    });
    ids.push(Identity {
        name: OPERATOR_USER.into(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{OPERATOR_NAMESPACE}"),
        ],
        token: token(),
    });
    ids
}

/// The `--token-auth-file` CSV: `token,user,uid,"group1,group2"`.
fn token_file(ids: &[Identity]) -> String {
    let mut out = String::new();
    for id in ids {
        let _ = writeln!(
            out,
            "{},{},{},\"{}\"",
            id.token,
            id.name,
            id.name,
            id.groups.join(",")
        );
    }
    out
}

fn make_ca() -> anyhow::Result<(CertifiedIssuer<'static, KeyPair>, String)> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "orgaccess control plane CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let ca = CertifiedIssuer::self_signed(params, key)?;
    let pem = ca.pem();
    Ok((ca, pem))
}

/// A client certificate (ClientAuth) with common name `cn`, signed by `ca`.
fn issue_client_cert(
    ca: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
) -> anyhow::Result<ServingCert> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    Ok(ServingCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn issue_cert(
    ca: &CertifiedIssuer<'static, KeyPair>,
    sans: &[&str],
) -> anyhow::Result<ServingCert> {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans.clone())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        sans.first().cloned().unwrap_or_default(),
    );
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    Ok(ServingCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_quotes_groups() {
        let ids = vec![Identity {
            name: OPERATOR_USER.into(),
            groups: vec!["a".into(), "b:c".into()],
            token: "t".into(),
        }];
        assert_eq!(
            token_file(&ids),
            format!("t,{OPERATOR_USER},{OPERATOR_USER},\"a,b:c\"\n")
        );
    }

    #[test]
    fn identities_cover_the_brief() {
        let ids = make_identities();
        let names: Vec<&str> = ids.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "admin",
                "alice",
                "bob",
                "carol",
                "dave",
                "erin",
                "gitops",
                OPERATOR_USER
            ]
        );
        let tokens: std::collections::HashSet<&str> =
            ids.iter().map(|i| i.token.as_str()).collect();
        assert_eq!(tokens.len(), ids.len(), "tokens are unique");
    }

    /// Certificates and kubeconfigs without a control plane: the files are
    /// written (private), the serving certificate verifies against the CA
    /// for its addresses only, and kube reads every kubeconfig.
    #[tokio::test]
    async fn credentials_are_usable_without_starting_anything() {
        use rustls::client::danger::ServerCertVerifier as _;
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

        let work = tempfile::tempdir().unwrap();
        let layout = Layout::new(work.path());
        layout.create_dirs().unwrap();
        let pki = Pki::new().unwrap();
        pki.write_apiserver_files(&layout).unwrap();
        pki.write_kubeconfigs(&layout, "https://127.0.0.1:6443")
            .unwrap();
        for file in [
            layout.ca_file(),
            layout.pki.join("apiserver.key"),
            layout.tokens.clone(),
            layout.admin_kubeconfig(),
        ] {
            let mode = fs::metadata(&file).unwrap().permissions();
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
                0o600,
                "{}",
                file.display()
            );
        }

        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(layout.ca_file()).unwrap())
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
        let serving = CertificateDer::from_pem_file(layout.pki.join("apiserver.crt")).unwrap();
        let verify = |name: &str| {
            verifier.verify_server_cert(
                &serving,
                &[],
                &ServerName::try_from(name.to_string()).unwrap(),
                &[],
                UnixTime::now(),
            )
        };
        assert!(verify("127.0.0.1").is_ok() && verify("localhost").is_ok());
        assert!(verify("example.com").is_err(), "only its own names");

        for id in pki.identities() {
            let path = layout.kubeconfig(&id.name);
            let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
            let config = kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .unwrap();
            assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
            assert_eq!(config.default_namespace, "default");
            assert!(config.root_cert.is_some_and(|c| c.len() == 1));
        }
        let tokens = fs::read_to_string(&layout.tokens).unwrap();
        assert_eq!(tokens, token_file(pki.identities()));
    }

    #[test]
    fn serving_cert_is_signed_by_the_ca() {
        let (ca, ca_pem) = make_ca().unwrap();
        let cert = issue_cert(&ca, &["127.0.0.1", "localhost"]).unwrap();
        assert!(ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.key_pem.contains("PRIVATE KEY"));
    }
}
