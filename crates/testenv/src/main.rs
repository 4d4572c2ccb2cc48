//! `control-plane up`: a local etcd + kube-apiserver for development, the one
//! `scripts/demo.sh` and `scripts/check-chart.sh` start. Not part of the
//! deployed `orgaccess` binary.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "A local kube-apiserver + etcd for orgaccess development")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build (once) and start a local control plane; runs until interrupted.
    Up {
        /// Where certificates, kubeconfigs, data and logs go (wiped at start).
        #[arg(long, default_value = "target/orgaccess-dev")]
        work_dir: std::path::PathBuf,
        /// Fixed apiserver port (default: a free one).
        #[arg(long)]
        port: Option<u16>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ORGACCESS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Up { work_dir, port } => {
            let opts = orgaccess_testenv::Options {
                work_dir: Some(std::path::absolute(work_dir)?),
                secure_port: port,
                ..Default::default()
            };
            orgaccess_testenv::run_foreground(opts).await
        }
    }
}
