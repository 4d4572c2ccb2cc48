use clap::{Parser, Subcommand};

/// orgaccess: manage an organization's member access as Kubernetes resources.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the privilege catalog.
    Catalog,
    /// Print the CustomResourceDefinitions as YAML (what `crds/` holds).
    Crds,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Catalog => {
            for d in orgaccess::core::catalog::CATALOG {
                println!("{}/{}", d.service, d.name);
            }
        }
        Command::Crds => print!("{}", orgaccess::api::crds_yaml()?),
    }
    Ok(())
}
