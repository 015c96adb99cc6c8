//! A single-node, in-memory stand-in for `consul agent -dev`.
//!
//! It speaks the service-discovery part of Consul's HTTP API closely enough that Consul
//! clients work against it unchanged: agent service registration with HTTP, TCP and TTL
//! checks, deregistration, TTL pass/warn/fail/update, `DeregisterCriticalServiceAfter`
//! reaping, `/v1/health/service` with `?passing`, `?tag` and blocking queries, the
//! catalog and agent read endpoints, `/v1/status/leader`, plain-text errors with
//! Consul's status codes, strict JSON decoding, and optional ACL emulation. It also
//! serves a small live status page at `/ui/`. Behaviour follows
//! `reference/consul-http-api.md`; section numbers in comments (`§6.1`) point there.
//!
//! It is for local runs and tests, not production: nothing is persisted, and a restart
//! starts over with fresh indexes, exactly like a restarted dev agent.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let registry = dev_registry::RunningRegistry::spawn(dev_registry::Options::default()).await?;
//! println!("consul at {}", registry.url());
//! registry.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`options`]: [`Options`], the configuration, with Consul's defaults.
//! - `server`: [`serve`] and [`RunningRegistry`]; a listener whose connections can be
//!   killed at once.
//! - `api`: the route table, method rules, errors and common headers, with one module
//!   per endpoint family (`agent`, `health`, `catalog`, `status`) and `query` for the
//!   shared parameters.
//! - `acl`: token lookup and the emulated authorizer.
//! - `state`: the catalog, indexes and blocking-query wake-ups; `state::registration`
//!   turns a registration into records; `state::model` holds the records.
//! - `checks`: probe loops, TTL timers, thresholds and the reaper.
//! - `wire`: strict Go-style request decoding and Consul-shaped responses.
//! - [`duration`]: Go duration parsing and formatting.
//! - [`cli`]: the binary's command line.
//! - `ui`: the status page.

pub mod cli;
pub mod duration;
pub mod options;

mod acl;
mod api;
mod checks;
mod server;
mod state;
mod ui;
mod wire;

pub use self::options::Options;
pub use self::server::{RunningRegistry, serve};
