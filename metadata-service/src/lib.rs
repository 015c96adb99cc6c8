//! The metadata service: titles, synopses and directors of movies, built on warp 0.4.
//!
//! It serves `GET /metadata`, `GET /metadata/{id}` (`{id, title, description, director}`) and
//! `GET /health`, registers itself in Consul through [`common::lifecycle`], and answers every
//! error as RFC 9457 problem details.
//!
//! # Layout
//!
//! - [`cli`]: the command line, shared with `devstack`.
//! - [`domain`]: the movie record and its identifier.
//! - [`repository`]: the [`MovieRepository`](repository::MovieRepository) seam and its
//!   in-memory, seeded catalogue.
//! - [`error`]: [`ApiError`](error::ApiError), mapped to problem details.
//! - [`routes`]: the warp filter tree, handlers and request context.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use common::config::ServiceConfig;
use common::lifecycle::{self, LocalInstance, ServiceInfo};
use common::registry::Registry;
use tokio::net::TcpListener;

pub mod cli;
pub mod domain;
pub mod error;
pub mod repository;
pub mod routes;

pub use routes::{AppState, router};

/// What this service is, as registered in Consul.
pub const INFO: ServiceInfo = ServiceInfo {
    name: "metadata-service",
    framework: "warp",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8081,
};

/// Serves on `listener` until `shutdown` resolves, registered in `registry` meanwhile.
///
/// # Errors
///
/// Fails if the listener's address cannot be read, the server stops on its own, or the service
/// never becomes healthy.
pub async fn run(
    config: ServiceConfig,
    listener: TcpListener,
    registry: Arc<dyn Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bound = listener.local_addr().context("reading the bound address")?;
    let instance = LocalInstance::resolve(INFO, &config, bound).await;
    let movies = Arc::new(repository::MemoryMovies::seeded());
    let app = router(AppState::new(&instance, config.faults, movies));
    // warp's graceful shutdown waits for open connections without limit; lifecycle::run bounds
    // it by the grace period and then drops the server.
    lifecycle::run(
        &instance,
        &config,
        registry,
        shutdown,
        move |stopping| async move {
            warp::serve(app)
                .incoming(listener)
                .graceful(stopping)
                .run()
                .await;
            Ok::<(), Infallible>(())
        },
    )
    .await
}
