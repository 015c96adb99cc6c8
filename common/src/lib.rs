//! The discovery layer every service in this workspace shares.
//!
//! Services register themselves in Consul with a health check, keep the registration alive,
//! deregister on shutdown, and find each other through watchers that keep the healthy instance
//! list of each upstream fresh with blocking queries, so that no request waits on the registry.
//!
//! # Layout
//!
//! - [`config`]: flags and environment variables shared by all services (DESIGN §4).
//! - [`registry`]: the [`Registry`](registry::Registry) trait, with
//!   [`ConsulRegistry`](registry::ConsulRegistry) (Consul's HTTP API) and
//!   [`MemoryRegistry`](registry::MemoryRegistry) (in-process).
//! - [`registration`]: keeps one instance registered: backoff, heartbeats, re-registration.
//! - [`discovery`]: keeps one service's healthy instances fresh with blocking queries.
//! - [`upstream`]: calls other services by name: balancing, timeouts, retries, outlier ejection.
//! - [`launch`]: what every service binary does first: `healthcheck`, or configure, bind, connect.
//! - [`lifecycle`]: runs a service from bound listener to clean exit, whatever its framework.
//! - [`http`]: header names, request IDs, path IDs, `host:port`, `/health` body and RFC 9457
//!   problem details.
//! - [`fault`]: opt-in delay and error injection for demos.
//! - [`shutdown`]: the SIGINT/SIGTERM future and a grace-period bound.
//! - [`telemetry`]: `tracing` setup (`RUST_LOG`, `LOG_FORMAT`).
//! - [`tls`]: crypto provider selection for reqwest's rustls.
//! - `testing` (feature `testing`, tests only): start a real service on port 0 and check the
//!   contract every service shares.

pub mod config;
pub mod discovery;
pub mod fault;
pub mod http;
pub mod launch;
pub mod lifecycle;
pub mod registration;
pub mod registry;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod upstream;
