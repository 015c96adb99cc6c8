//! The rating service: users rate records (movies, by default) from 1 to 5 stars, and anyone
//! reads a record's aggregate. Built on poem 3.
//!
//! It serves `GET /ratings/{record_type}/{record_id}` (`{record_type, record_id, average,
//! count}`, `average` null when nobody rated), `PUT /ratings/{record_type}/{record_id}` with
//! `{"user_id": "...", "value": 1..=5}` (one rating per user: the same PUT twice is one rating)
//! and `GET /health`, registers itself in Consul through [`common::lifecycle`], and answers every
//! error as RFC 9457 problem details.
//!
//! Ratings live in a database that all replicas share ([`storage`]): a SQLite file by default,
//! PostgreSQL with `DATABASE_URL`. So replicas agree, and a rating acknowledged before a
//! `kill -9` is still there afterwards. While the database is down, rating routes answer 503
//! and `/health` still answers 200: the instance is fine and recovers by itself, and failing
//! every replica's check at once would only empty the catalog.
//!
//! # Layout
//!
//! - [`cli`]: the command line, shared with `devstack`.
//! - [`domain`]: identifiers, star values and the aggregate, with their validation.
//! - [`storage`]: [`StorageConfig`] (`DATABASE_URL`) and [`storage::open`], which waits for
//!   PostgreSQL at start-up.
//! - [`repository`]: the [`RatingRepository`](repository::RatingRepository) seam and its
//!   SQLite and PostgreSQL implementations, with the embedded migrations.
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
pub mod storage;

pub use routes::{AppState, router};
pub use storage::{StorageArgs, StorageConfig};

/// What this service is, as registered in Consul.
pub const INFO: ServiceInfo = ServiceInfo {
    name: "rating-service",
    framework: "poem",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8082,
};

/// Opens the ratings storage, then serves on `listener` until `shutdown` resolves, registered
/// in `registry` meanwhile.
///
/// Storage first: the schema is migrated before anything is served, and while PostgreSQL
/// cannot be reached the service waits for it (see [`storage::open`]) without serving or
/// registering, since an instance that cannot read ratings is not one to send traffic to.
/// Connections made meanwhile wait in the listen backlog. `shutdown` ends the wait too, and then
/// `run` returns `Ok`.
///
/// Tests and tools pick the database with `storage`, e.g.
/// `StorageConfig::sqlite(temp_dir.join("ratings.sqlite3"))`; replicas given the same file
/// share their ratings.
///
/// # Errors
///
/// Fails if the storage refuses us for good (bad credentials, unusable path, unknown schema),
/// the listener's address cannot be read, the server cannot start or stops on its own, or the
/// service never becomes healthy.
pub async fn run(
    config: ServiceConfig,
    storage: StorageConfig,
    listener: TcpListener,
    registry: Arc<dyn Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut shutdown = Box::pin(shutdown);
    let ratings = tokio::select! {
        opened = storage::open(&storage) => opened
            .with_context(|| format!("opening the ratings storage {}", storage.database))?,
        () = &mut shutdown => {
            tracing::info!("shutdown requested while waiting for the ratings storage");
            return Ok(());
        }
    };

    let bound = listener.local_addr().context("reading the bound address")?;
    let instance = LocalInstance::resolve(INFO, &config, bound).await;
    let app = router(AppState::new(&instance, config.faults, ratings.clone()));
    let acceptor = TcpAcceptor::from_tokio(listener).context("adopting the listener")?;
    let grace = config.timings.grace_period;
    let served = lifecycle::run(&instance, &config, registry, shutdown, move |stopping| {
        // poem bounds the drain itself: connections still open after `grace` are dropped.
        Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(app, stopping, Some(grace))
    })
    .await;
    ratings.close().await;
    served
}
