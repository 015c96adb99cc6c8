//! `GET /v1/status/leader` and `/v1/status/peers`: the readiness pings (reference §5.5).
//!
//! The registry is its own leader from the first request on, so the leader is never
//! `""` and reads never fail with `No cluster leader`.

use std::net::SocketAddr;

use axum::response::Response;

use super::{Call, json};

/// Port of the Raft address a dev server reports (§9.1).
const RAFT_PORT: u16 = 8300;

/// The node's Raft address, `"127.0.0.1:8300"` on a default registry.
fn raft_address(call: &Call) -> String {
    SocketAddr::new(call.registry.node().address, RAFT_PORT).to_string()
}

/// `GET /v1/status/leader`.
pub(super) fn leader(call: &Call) -> Response {
    json(&raft_address(call))
}

/// `GET /v1/status/peers`.
pub(super) fn peers(call: &Call) -> Response {
    json(&[raft_address(call)])
}
