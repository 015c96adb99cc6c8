//! movie-service binary: parse configuration, set up logging, serve until SIGINT/SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use common::registry::ConsulRegistry;
use movie_service::{INFO, UpstreamArgs};

/// The aggregator: discovers metadata and rating services and reaches users and products.
#[derive(Debug, Parser)]
#[command(name = "movie-service", version)]
struct Cli {
    #[command(flatten)]
    service: common::config::ServiceArgs,
    #[command(flatten)]
    upstream: UpstreamArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli.service.into_config(INFO.default_port)?;
    common::telemetry::init(config.log_format)?;
    let listener = tokio::net::TcpListener::bind((config.bind, config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.bind, config.port))?;
    let registry = Arc::new(ConsulRegistry::new(&config.consul)?);
    movie_service::run(
        config,
        cli.upstream.options(),
        listener,
        registry,
        common::shutdown::signal(),
    )
    .await
}
