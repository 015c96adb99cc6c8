//! The service registry seen by a service: register, heartbeat, deregister and list healthy instances.
//!
//! [`Registry`] is implemented by [`ConsulRegistry`] (Consul's HTTP API, used in every real run)
//! and [`MemoryRegistry`] (in-process, for unit tests and single-process use).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

pub mod consul;
pub mod memory;
mod wire;

pub use consul::ConsulRegistry;
pub use memory::MemoryRegistry;

/// Where services announce themselves and find each other.
///
/// It is a trait object (`Arc<dyn Registry>`) rather than a generic parameter because the choice is
/// made at run time (Consul in every process, memory in unit tests) and because it is held by
/// long-lived background tasks whose types should not carry it; a virtual call per registry
/// request costs nothing next to the network round trip.
#[async_trait]
pub trait Registry: Send + Sync + fmt::Debug {
    /// Registers (or replaces) an instance with its health check.
    ///
    /// # Errors
    ///
    /// Transport errors, timeouts and the registry's refusals (bad definition, ACL) as [`RegistryError`].
    async fn register(&self, registration: &Registration) -> Result<(), RegistryError>;

    /// Removes an instance. An instance the registry does not know counts as removed.
    ///
    /// # Errors
    ///
    /// Transport errors, timeouts and refusals other than "unknown service".
    async fn deregister(&self, service_id: &str) -> Result<(), RegistryError>;

    /// Marks a TTL check passing, restarting its TTL.
    ///
    /// # Errors
    ///
    /// [`RegistryError::UnknownCheck`] when the registry has forgotten the check (restarted agent,
    /// reaped service): the caller should register again.
    async fn pass_ttl(&self, check_id: &str, note: &str) -> Result<(), RegistryError>;

    /// Whether the registry still has this instance (used to notice a restarted agent in HTTP-check mode).
    ///
    /// # Errors
    ///
    /// Transport errors and timeouts.
    async fn is_registered(&self, service_id: &str) -> Result<bool, RegistryError>;

    /// The instances of `service` whose every check passes.
    ///
    /// With `wait`, this is a blocking query: it returns once the registry's index for the service
    /// passes `wait.index`, or when `wait.wait` has elapsed (with unchanged data).
    ///
    /// # Errors
    ///
    /// Transport errors, timeouts, and the registry's error answers.
    async fn healthy_instances(
        &self,
        service: &str,
        wait: Option<BlockingWait>,
    ) -> Result<HealthyInstances, RegistryError>;
}

/// One instance as we register it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Unique instance ID (`SERVICE_ID`).
    pub id: String,
    /// Service name others look up.
    pub name: String,
    /// Address others reach this instance at. Always explicit: an empty address would make
    /// clients fall back to the agent's node address, which is `127.0.0.1` in dev mode and in Docker.
    pub address: String,
    /// Port others reach this instance at.
    pub port: u16,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Metadata, e.g. `framework` and `version`.
    pub meta: BTreeMap<String, String>,
    /// How the registry decides whether the instance is healthy.
    pub check: HealthCheck,
    /// How long the check may stay critical before the registry drops the instance (≥ 1 minute,
    /// Consul's floor).
    pub deregister_critical_after: Duration,
}

impl Registration {
    /// The explicit ID of our one check. Setting it ourselves (rather than letting Consul derive
    /// `service:<id>`) keeps TTL updates addressable however the definition changes.
    pub fn check_id(&self) -> String {
        format!("service:{}", self.id)
    }
}

/// The health check registered with an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheck {
    /// The registry probes `url` every `interval`, giving up on one probe after `timeout`.
    Http {
        /// Full URL of the health endpoint.
        url: String,
        /// Probe period.
        interval: Duration,
        /// Probe timeout.
        timeout: Duration,
    },
    /// The instance must report in (see [`Registry::pass_ttl`]) at least once per `ttl`.
    Ttl {
        /// Time after the last report at which the check turns critical.
        ttl: Duration,
    },
}

/// Parameters of a blocking query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockingWait {
    /// The index from the previous answer (`X-Consul-Index`); must be ≥ 1 to block.
    pub index: u64,
    /// How long the registry may hold the request.
    pub wait: Duration,
}

/// The answer to [`Registry::healthy_instances`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthyInstances {
    /// The registry's index for this answer (`X-Consul-Index`).
    pub index: u64,
    /// The passing instances, sorted by ID (the registry's order is not stable).
    pub instances: Vec<Instance>,
}

/// One reachable instance of a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Instance {
    /// Instance ID.
    pub id: String,
    /// Host or IP to connect to.
    pub address: String,
    /// Port to connect to.
    pub port: u16,
}

impl Instance {
    /// `host:port`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        crate::http::authority(&self.address, self.port)
    }
}

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The call did not complete in time.
    #[error("registry call timed out after {0:?}")]
    Timeout(Duration),
    /// No connection, or the connection broke.
    #[error("registry unreachable: {0}")]
    Unreachable(String),
    /// The registry does not know this check: it restarted or reaped us, so register again.
    /// Consul says so with 404 `Unknown check ID` (or, before 1.7, 500 `does not have associated TTL`).
    #[error("registry does not know check {check_id:?}: {body}")]
    UnknownCheck {
        /// The check we tried to update.
        check_id: String,
        /// The registry's own words.
        body: String,
    },
    /// Any other error answer; `body` is Consul's plain-text reason, verbatim.
    #[error("registry answered {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Plain-text body, as sent.
        body: String,
    },
    /// The answer could not be understood.
    #[error("unexpected registry answer: {0}")]
    Decode(String),
}

impl RegistryError {
    /// Whether trying again later may help: timeouts, transport errors and 5xx/429 answers
    /// (`No cluster leader` right after an agent starts, rate limiting). A 400 or 403 needs an
    /// operator, not a retry.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Unreachable(_) | Self::UnknownCheck { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            Self::Decode(_) => false,
        }
    }
}
