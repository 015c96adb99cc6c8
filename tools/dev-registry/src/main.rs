//! `dev-registry`: runs the registry until SIGINT or SIGTERM (see [`dev_registry::cli::Cli`]).

use clap::Parser as _;
use dev_registry::cli::Cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse().run().await
}
