//! The records the catalog holds: the node, service instances and their checks.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::checks::{Probe, Runner};
use crate::wire::request::{ServiceAddress, Weights};

/// Health of a check, and of everything derived from checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Healthy.
    Passing,
    /// Degraded; excluded by `?passing`.
    Warning,
    /// Unhealthy.
    Critical,
}

impl Status {
    /// Parses `passing` / `warning` / `critical` (exact, lower case, like Consul).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "passing" => Some(Self::Passing),
            "warning" => Some(Self::Warning),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }

    /// The wire spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Passing => "passing",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The single node this registry pretends to be.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Node ID, a random UUID per process.
    pub(crate) id: String,
    /// Node name (`Options::node_name`).
    pub(crate) name: String,
    /// Advertised address: the bind address, or 127.0.0.1 when bound to all interfaces.
    pub(crate) address: IpAddr,
    /// Raft index at which the node was registered.
    pub(crate) index: u64,
}

/// One registered service instance, as the catalog shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Service {
    /// Kind (`""` for ordinary services).
    pub(crate) kind: String,
    /// Instance ID, unique on this node.
    pub(crate) id: String,
    /// Service name.
    pub(crate) name: String,
    /// Tags.
    pub(crate) tags: Vec<String>,
    /// Address as registered (may be empty).
    pub(crate) address: String,
    /// Tagged addresses, auto-filled for IP addresses.
    pub(crate) tagged_addresses: BTreeMap<String, ServiceAddress>,
    /// Metadata.
    pub(crate) meta: BTreeMap<String, String>,
    /// Port (0 when none).
    pub(crate) port: i64,
    /// Unix socket path.
    pub(crate) socket_path: String,
    /// DNS weights.
    pub(crate) weights: Weights,
    /// Tag override flag.
    pub(crate) enable_tag_override: bool,
    /// Locality object as registered.
    pub(crate) locality: Option<Value>,
}

/// A service plus its Raft indexes.
#[derive(Debug, Clone)]
pub(crate) struct ServiceRecord {
    /// The definition.
    pub(crate) service: Service,
    /// Index at which the instance first appeared.
    pub(crate) create_index: u64,
    /// Index of the last change to the definition.
    pub(crate) modify_index: u64,
}

/// The part of a check that clients see and that changes its `ModifyIndex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckInfo {
    /// Check ID.
    pub(crate) id: String,
    /// Display name.
    pub(crate) name: String,
    /// Notes.
    pub(crate) notes: String,
    /// Current status.
    pub(crate) status: Status,
    /// Owning service ID.
    pub(crate) service_id: String,
    /// Owning service name.
    pub(crate) service_name: String,
    /// Owning service tags at registration.
    pub(crate) service_tags: Vec<String>,
    /// Consul type name (`http`, `tcp`, `ttl`).
    pub(crate) type_name: &'static str,
    /// `Interval` as registered, Go-formatted; `""` when none.
    pub(crate) interval: String,
    /// `Timeout` as registered, Go-formatted; `""` when none.
    pub(crate) timeout: String,
}

/// A check with its output, indexes and runtime state.
#[derive(Debug)]
pub(crate) struct CheckRecord {
    /// The visible definition and status.
    pub(crate) info: CheckInfo,
    /// Latest output (live; changes alone do not bump indexes, reference §8.5).
    pub(crate) output: String,
    /// Index at which the check first appeared.
    pub(crate) create_index: u64,
    /// Index of the last visible change.
    pub(crate) modify_index: u64,
    /// How the check gets its status.
    pub(crate) probe: Probe,
    /// Largest output kept, in bytes.
    pub(crate) output_cap: usize,
    /// Reap the service after this long critical (already raised to the floor).
    pub(crate) deregister_after: Option<Duration>,
    /// When the check was first *reported* critical (reference §8.4).
    pub(crate) critical_since: Option<Instant>,
    /// TTL bookkeeping, for TTL checks.
    pub(crate) ttl: Option<TtlState>,
    /// The task running this check (probe loop or TTL timer); dropping it stops it.
    pub(crate) runner: Option<Runner>,
}

/// What a TTL check remembers between heartbeats.
#[derive(Debug, Clone)]
pub(crate) struct TtlState {
    /// The TTL.
    pub(crate) ttl: Duration,
    /// When the check expires; `None` once expired until the next update.
    pub(crate) deadline: Option<Instant>,
    /// Output of the last update, quoted in the expiry message.
    pub(crate) last_output: String,
}
