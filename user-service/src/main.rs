//! `user-service`: runs the command line of [`user_service::cli::Cli`] (serve until SIGINT/SIGTERM, or
//! `healthcheck`).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    user_service::cli::Cli::parse().run().await
}
