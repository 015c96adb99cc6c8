//! `/v1/agent/*`: service registration and deregistration, TTL updates, and the
//! agent-local views of services and checks (reference §1–§3, §5.3–§5.4).

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::json;

use super::{ApiError, Call, json, written};
use crate::state::model::Status;
use crate::state::registration::prepare;
use crate::state::{CheckOwner, DATACENTER, UnknownService, UpdateError, blocking_wait};
use crate::wire::request::{
    CheckUpdate, STATUSES, ServiceDefinition, validate_meta, validate_weights,
};
use crate::wire::response::{AgentServiceOut, CONSUL_VERSION, HealthCheckOut, SERF_CHECK_ID};

/// `PUT /v1/agent/service/register`, validating in Consul's order (§1.7).
#[tracing::instrument(name = "register", skip_all)]
pub(super) fn register(call: &Call) -> Result<Response, ApiError> {
    let def = ServiceDefinition::decode(&call.body)?;
    if def.name.is_empty() {
        return Err(ApiError::bad_request("Missing service name"));
    }
    if is_unspecified(&def.address) {
        return Err(ApiError::bad_request("Invalid service address"));
    }
    let authorizer = call.authorizer()?;
    if let Some(weights) = &def.weights {
        validate_weights(weights)
            .map_err(|e| ApiError::bad_request(format!("Invalid Weights: {e}")))?;
    }
    validate_meta(&def.meta)
        .map_err(|e| ApiError::bad_request(format!("Invalid Service Meta: {e}")))?;
    for check in def.all_checks() {
        check
            .validate()
            .map_err(|e| ApiError::bad_request(format!("Invalid check: {e}")))?;
    }
    if def
        .all_checks()
        .any(|c| !c.status.is_empty() && !STATUSES.contains(&c.status.as_str()))
    {
        return Err(ApiError::bad_request(
            "Status for checks must 'passing', 'warning', 'critical'",
        ));
    }
    authorizer.require("service:write", &def.name)?;
    let registration = prepare(&def, call.registry.options())?;
    // On when present with an empty value or exactly `true` (§1.1).
    let replace = call.query.has("replace-existing-checks")
        && matches!(call.query.get("replace-existing-checks"), Some("" | "true"));
    call.registry.register(registration, replace);
    Ok(written())
}

/// `PUT /v1/agent/service/deregister/:id`; an unknown ID is 404 before any ACL check (§2).
pub(super) fn deregister(call: &Call, id: &str) -> Result<Response, ApiError> {
    let authorizer = call.authorizer()?;
    let name = call
        .registry
        .service_name(id)
        .ok_or_else(|| UnknownService(id.to_owned()))?;
    authorizer.require("service:write", &name)?;
    call.registry.deregister(id)?;
    Ok(written())
}

/// `GET /v1/agent/service/:id`, with `X-Consul-ContentHash` and hash-based blocking
/// (`?hash=…&wait=…`, §5.3).
pub(super) async fn service(call: &Call, id: &str) -> Result<Response, ApiError> {
    let blocking = call.query.blocking()?;
    let authorizer = call.authorizer()?;
    let registry = &call.registry;
    let render = || {
        registry.read(|catalog| {
            catalog.agent_services().get(id).map(|record| {
                let (out, hash) = AgentServiceOut::new(&record.service).with_content_hash();
                (record.service.name.clone(), json(&out), hash)
            })
        })
    };
    let not_found = || ApiError::not_found(format!("unknown service ID: {id}"));
    let (name, response, hash) = render().ok_or_else(not_found)?;
    authorizer.require("service:read", &name)?;
    let (mut response, hash) = match call.query.get("hash") {
        Some(wanted) if wanted == hash => {
            let deadline =
                tokio::time::Instant::now() + blocking_wait(blocking.wait, registry.options());
            registry
                .wait_until(Some(&name), deadline, |catalog| {
                    catalog.agent_services().get(id).is_none_or(|record| {
                        AgentServiceOut::new(&record.service).with_content_hash().1 != wanted
                    })
                })
                .await;
            let (_, response, hash) = render().ok_or_else(not_found)?;
            (response, hash)
        }
        _ => (response, hash),
    };
    if let Ok(value) = HeaderValue::from_str(&hash) {
        response.headers_mut().insert("x-consul-contenthash", value);
    }
    Ok(response)
}

/// `GET /v1/agent/services`: every local instance by ID; filtered to nothing for the
/// anonymous token, as Consul filters lists instead of refusing them.
pub(super) fn services(call: &Call) -> Result<Response, ApiError> {
    call.query.reject_filter()?;
    let authorizer = call.authorizer()?;
    Ok(call.registry.read(|catalog| {
        let services: BTreeMap<&str, AgentServiceOut<'_>> = catalog
            .agent_services()
            .iter()
            .filter(|_| authorizer.can_read())
            .map(|(id, record)| (id.as_str(), AgentServiceOut::new(&record.service)))
            .collect();
        json(&services)
    }))
}

/// `GET /v1/agent/checks`: every check by ID, `serfHealth` included (§5.4).
pub(super) fn checks(call: &Call) -> Result<Response, ApiError> {
    call.query.reject_filter()?;
    let authorizer = call.authorizer()?;
    let node = call.registry.node();
    Ok(call.registry.read(|catalog| {
        let mut checks: BTreeMap<&str, HealthCheckOut<'_>> = BTreeMap::new();
        if authorizer.can_read() {
            checks.insert(SERF_CHECK_ID, HealthCheckOut::serf(node));
            for (id, check) in catalog.checks() {
                checks.insert(id, HealthCheckOut::new(node, check));
            }
        }
        json(&checks)
    }))
}

/// `PUT /v1/agent/check/{pass,warn,fail}/:id` with the optional `?note` (§3).
pub(super) fn ttl(call: &Call, id: &str, status: Status) -> Result<Response, ApiError> {
    let note = call.query.get("note").unwrap_or_default();
    update_check(call, id, status, note)
}

/// `PUT /v1/agent/check/update/:id`: the body is checked before anything else (§3).
pub(super) fn update(call: &Call, id: &str) -> Result<Response, ApiError> {
    let update = CheckUpdate::decode(&call.body)?;
    let status = Status::parse(&update.status).ok_or_else(|| {
        ApiError::bad_request(format!("Invalid check status: '{}'", update.status))
    })?;
    update_check(call, id, status, &update.output)
}

/// The shared part of the TTL endpoints: 404 for unknown checks before ACLs, then
/// `service:write` (or `node:write` for node checks), then the update.
fn update_check(call: &Call, id: &str, status: Status, output: &str) -> Result<Response, ApiError> {
    let authorizer = call.authorizer()?;
    match call.registry.check_owner(id) {
        None => return Err(UpdateError::UnknownCheck(id.to_owned()).into()),
        Some(CheckOwner::Service(name)) => authorizer.require("service:write", &name)?,
        Some(CheckOwner::Node) => authorizer.require("node:write", &call.registry.node().name)?,
    }
    call.registry.update_ttl(id, status, output)?;
    Ok(written())
}

/// `GET /v1/agent/self`, reduced to what clients read: datacenter, node name and ID,
/// version (needs `agent:read`).
pub(super) fn agent_self(call: &Call) -> Result<Response, ApiError> {
    let node = call.registry.node();
    call.authorizer()?.require("agent:read", &node.name)?;
    Ok(json(&json!({
        "Config": {
            "Datacenter": DATACENTER,
            "NodeName": node.name,
            "NodeID": node.id,
            "Server": true,
            "Version": CONSUL_VERSION,
        },
        "Member": {
            "Name": node.name,
            "Addr": node.address.to_string(),
            "Port": 8301,
            "Status": 1,
        },
        "Meta": {},
    })))
}

/// Whether `address` is an "any" address (`0.0.0.0`, `::`, `[::]`), refused as a
/// service address (§1.2).
fn is_unspecified(address: &str) -> bool {
    address
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
}
