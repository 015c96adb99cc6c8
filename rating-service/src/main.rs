//! `rating-service`: parses flags and environment, starts logging, binds, and runs until SIGINT/SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use common::config::ServiceArgs;
use common::registry::ConsulRegistry;
use rating_service::{INFO, StorageArgs};

/// Ratings of movies (and any other record), on poem.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Flags every service shares.
    #[command(flatten)]
    args: ServiceArgs,
    /// Where ratings are kept.
    #[command(flatten)]
    storage: StorageArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli.args.into_config(INFO.default_port)?;
    let storage = cli.storage.into_config()?;
    common::telemetry::init(config.log_format)?;
    let listener = tokio::net::TcpListener::bind((config.bind, config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.bind, config.port))?;
    let registry =
        Arc::new(ConsulRegistry::new(&config.consul).context("building the consul client")?);
    rating_service::run(
        config,
        storage,
        listener,
        registry,
        common::shutdown::signal(),
    )
    .await
}
