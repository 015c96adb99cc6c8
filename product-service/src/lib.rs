//! The product service: a small catalogue of products, built on actix-web 4.
//!
//! It serves `GET /products`, `GET /products/{id}` (`{id, name, price_cents, currency}`) and
//! `GET /health`, registers itself in Consul through [`common::lifecycle`], and answers every
//! error as RFC 9457 problem details.
//!
//! # Layout
//!
//! - [`cli`]: the command line, shared with `devstack`.
//! - [`domain`]: the product record and its identifier.
//! - [`repository`]: the [`ProductRepository`](repository::ProductRepository) seam and its
//!   in-memory, seeded catalogue.
//! - [`error`]: [`ApiError`](error::ApiError), mapped to problem details.
//! - [`routes`]: the actix `App`, handlers and request-context middleware.

use std::future::Future;
use std::sync::Arc;

use actix_web::HttpServer;
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
    name: "product-service",
    framework: "actix-web",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8002,
};

/// Serves on `listener` until `shutdown` resolves, registered in `registry` meanwhile.
///
/// # Errors
///
/// Fails if the listener cannot be handed to actix, the server cannot start or stops on its
/// own, or the service never becomes healthy.
pub async fn run(
    config: ServiceConfig,
    listener: TcpListener,
    registry: Arc<dyn Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bound = listener.local_addr().context("reading the bound address")?;
    let instance = LocalInstance::resolve(INFO, &config, bound).await;
    let products = Arc::new(repository::MemoryProducts::seeded());
    let state = AppState::new(&instance, config.faults, products);
    // actix takes a std listener and makes it non-blocking itself.
    let listener = listener.into_std().context("adopting the listener")?;
    // actix counts its drain in whole seconds; never let a sub-second grace become 0 (no drain).
    let grace_secs = config.timings.grace_period.as_secs().max(1);
    lifecycle::run(&instance, &config, registry, shutdown, move |stopping| {
        // `shutdown_signal` replaces actix's own SIGINT/SIGTERM handling: only `stopping` stops it.
        // The server is built before the async block so that the `!Send` `App` factory never lives
        // across an `.await` (actix's `Server` itself is `Send`).
        let server = HttpServer::new(move || router(state.clone()))
            .listen(listener)
            .map(|server| {
                server
                    .shutdown_signal(stopping)
                    .shutdown_timeout(grace_secs)
                    .run()
            });
        async move { server?.await }
    })
    .await
}
