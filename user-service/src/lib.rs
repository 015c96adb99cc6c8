//! The user service: a small directory of users, built on Rocket 0.5.
//!
//! It serves `GET /users`, `GET /users/{id}` (`{id, name, email}`) and `GET /health`,
//! registers itself in Consul through [`common::lifecycle`], and answers every error as
//! RFC 9457 problem details.
//!
//! # Layout
//!
//! - [`cli`]: the command line, shared with `devstack`.
//! - [`domain`]: the user record and its identifier.
//! - [`repository`]: the [`UserRepository`](repository::UserRepository) seam and its
//!   in-memory, seeded directory.
//! - [`error`]: [`ApiError`](error::ApiError) and the catcher, mapped to problem details.
//! - [`routes`]: the rocket, handlers and the request-context fairing.

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

pub use routes::{AppState, rocket_config, router};

/// What this service is, as registered in Consul.
pub const INFO: ServiceInfo = ServiceInfo {
    name: "user-service",
    framework: "rocket",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8001,
};

/// Serves on `listener`'s address until `shutdown` resolves, registered in `registry` meanwhile.
///
/// Rocket 0.5 cannot serve a listener it did not bind itself, so this reads the listener's
/// address, closes it, and has Rocket bind that same address and port. In the moment between,
/// another process could take the port; Rocket would then fail to bind and `run` returns the
/// error (nothing is registered, since registration waits for our own `/health`). Binding first
/// still matters: it resolves port 0 to a real port and fails early on a port in use.
///
/// # Errors
///
/// Fails if the listener's address cannot be read, Rocket cannot bind or stops on its own, or
/// the service never becomes healthy.
pub async fn run(
    config: ServiceConfig,
    listener: TcpListener,
    registry: Arc<dyn Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bound = listener.local_addr().context("reading the bound address")?;
    drop(listener);
    let instance = LocalInstance::resolve(INFO, &config, bound).await;
    let users = Arc::new(repository::MemoryUsers::seeded());
    let state = AppState::new(&instance, config.faults, users);
    let rocket = router(state, rocket_config(bound, config.timings.grace_period));
    lifecycle::run(
        &instance,
        &config,
        registry,
        shutdown,
        move |stopping| async move {
            // rocket::Error panics if dropped unread; formatting it marks it read.
            let rocket = rocket
                .ignite()
                .await
                .map_err(|e| anyhow::anyhow!("starting rocket: {e}"))?;
            let handle = rocket.shutdown();
            tokio::spawn(async move {
                stopping.await;
                handle.notify();
            });
            rocket
                .launch()
                .await
                .map_err(|e| anyhow::anyhow!("running rocket: {e}"))?;
            Ok::<(), anyhow::Error>(())
        },
    )
    .await
}
