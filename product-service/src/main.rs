//! `product-service`: runs the command line of [`product_service::cli::Cli`] (serve until SIGINT/SIGTERM, or
//! `healthcheck`).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    product_service::cli::Cli::parse().run().await
}
