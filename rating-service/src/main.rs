//! `rating-service`: runs the command line of [`rating_service::cli::Cli`] (serve until SIGINT/SIGTERM, or
//! `healthcheck`).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rating_service::cli::Cli::parse().run().await
}
