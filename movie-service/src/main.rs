//! `movie-service`: runs the command line of [`movie_service::cli::Cli`] (serve until
//! SIGINT/SIGTERM, or `healthcheck`).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    movie_service::cli::Cli::parse().run().await
}
