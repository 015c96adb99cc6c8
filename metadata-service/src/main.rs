//! `metadata-service`: parses flags and environment, starts logging, binds, and runs until SIGINT/SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use common::config::ServiceArgs;
use common::registry::ConsulRegistry;
use metadata_service::INFO;

/// Movie metadata, on warp.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Flags every service shares.
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Cli::parse().args.into_config(INFO.default_port)?;
    common::telemetry::init(config.log_format)?;
    let listener = tokio::net::TcpListener::bind((config.bind, config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.bind, config.port))?;
    let registry =
        Arc::new(ConsulRegistry::new(&config.consul).context("building the consul client")?);
    metadata_service::run(config, listener, registry, common::shutdown::signal()).await
}
