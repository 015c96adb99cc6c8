//! The rating service: users rate records (movies, by default) from 1 to 5 stars, and anyone
//! reads a record's aggregate. Built on poem 3.
//!
//! It serves `GET /ratings/{record_type}/{record_id}` (`{record_type, record_id, average,
//! count}`, `average` null when nobody rated), `PUT /ratings/{record_type}/{record_id}` with
//! `{"user_id": "...", "value": 1..=5}` (one rating per user: the same PUT twice is one rating)
//! and `GET /health`, registers itself in Consul through [`common::lifecycle`], and answers every
//! error as RFC 9457 problem details.
//!
//! # Layout
//!
//! - [`cli`]: the command line, shared with `devstack`.
//! - [`domain`]: identifiers, star values and the aggregate, with their validation.
//! - [`repository`]: the [`RatingRepository`](repository::RatingRepository) seam and its
//!   in-memory, seeded implementation.
//! - [`error`]: [`ApiError`](error::ApiError), mapped to problem details.
//! - [`routes`]: the poem router, handlers and request-context middleware.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use common::config::ServiceConfig;
use common::lifecycle::{self, LocalInstance, ServiceInfo};
use common::registry::Registry;
use poem::Server;
use poem::listener::TcpAcceptor;
use tokio::net::TcpListener;

pub mod cli;
pub mod domain;
pub mod error;
pub mod repository;
pub mod routes;

pub use routes::{AppState, router};

/// What this service is, as registered in Consul.
pub const INFO: ServiceInfo = ServiceInfo {
    name: "rating-service",
    framework: "poem",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8082,
};

/// Serves on `listener` until `shutdown` resolves, registered in `registry` meanwhile.
///
/// Ratings live in memory, seeded with demo ratings of movies 1–3.
///
/// # Errors
///
/// Fails if the listener's address cannot be read, the server cannot start or stops on its
/// own, or the service never becomes healthy.
pub async fn run(
    config: ServiceConfig,
    listener: TcpListener,
    registry: Arc<dyn Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bound = listener.local_addr().context("reading the bound address")?;
    let instance = LocalInstance::resolve(INFO, &config, bound).await;
    let ratings = Arc::new(repository::MemoryRatings::seeded());
    let app = router(AppState::new(&instance, config.faults, ratings));
    let acceptor = TcpAcceptor::from_tokio(listener).context("adopting the listener")?;
    let grace = config.timings.grace_period;
    lifecycle::run(&instance, &config, registry, shutdown, move |stopping| {
        // poem bounds the drain itself: connections still open after `grace` are dropped.
        Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(app, stopping, Some(grace))
    })
    .await
}
