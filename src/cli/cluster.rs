//! The kubectl-style flags every command takes: `--kubeconfig`, `--context`
//! and `-n/--namespace`, given before or after the command (they are global),
//! and the Kubernetes client built from them.

use std::path::PathBuf;

use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// `--kubeconfig`, `--context`, `-n`: as kubectl reads them.
#[derive(Args, Clone, Debug, Default)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or
    /// the in-cluster service account).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The organization's namespace. From the cluster, default: the context's
    /// namespace. With manifests, the namespace of documents that name none
    /// (`check` and the questions: see each command).
    #[arg(short = 'n', long, global = true, value_name = "NS")]
    pub namespace: Option<String>,
}

impl ClusterArgs {
    /// A client for the chosen kubeconfig and context; without either, what
    /// kubectl would use (`$KUBECONFIG`, `~/.kube/config`, or in-cluster).
    pub async fn client(&self) -> anyhow::Result<Client> {
        rustls::crypto::ring::default_provider()
            .install_default()
            .ok();
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                    anyhow::anyhow!("cannot read the kubeconfig {}: {e}", path.display())
                })?;
                Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            (None, Some(_)) => Config::from_kubeconfig(&options).await,
            (None, None) => return Ok(Client::try_default().await?),
        }
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Client::try_from(config)?)
    }

    /// The namespace to read from the cluster: `-n`, or the context's.
    pub fn namespace_or(&self, client: &Client) -> String {
        self.namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string())
    }
}

impl ClusterArgs {
    /// Was any of the flags given?
    pub fn is_given(&self) -> bool {
        self.kubeconfig.is_some() || self.context.is_some() || self.namespace.is_some()
    }
}
