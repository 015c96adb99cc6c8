//! `metadata-service`: runs the command line of [`metadata_service::cli::Cli`] (serve until SIGINT/SIGTERM, or
//! `healthcheck`).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    metadata_service::cli::Cli::parse().run().await
}
