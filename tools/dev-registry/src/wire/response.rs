//! Response bodies shaped field-for-field like Consul's (`structs.CheckServiceNode`,
//! `structs.ServiceNode`, `api.AgentService`, `structs.HealthCheck`; reference §4.2, §5),
//! and the dev-mode JSON encoding: 4-space indent plus a trailing newline (§0).

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

use super::request::{ServiceAddress, Weights};
use crate::state::model::{CheckRecord, Node, Service, ServiceRecord, Status};
use crate::state::{Catalog, DATACENTER};

/// Consul release whose behaviour this stand-in follows; reported as the node's
/// `consul-version` meta because some clients gate features on it (§4.2).
pub(crate) const CONSUL_VERSION: &str = "1.20.2";

/// ID of the node's built-in health check (§4.2, Consul's `SerfCheckID`).
pub(crate) const SERF_CHECK_ID: &str = "serfHealth";

/// Name of the node's built-in health check (`SerfCheckName`).
const SERF_CHECK_NAME: &str = "Serf Health Status";

/// Output of the node's built-in health check while alive (`SerfCheckAliveOutput`).
const SERF_CHECK_OUTPUT: &str = "Agent alive and reachable";

/// Serializes `value` the way a `-dev` agent does: indented with 4 spaces, a trailing
/// newline, and `<`, `>`, `&`, U+2028, U+2029 escaped like Go's `encoding/json`.
pub(crate) fn to_dev_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    if let Err(e) = value.serialize(&mut serializer) {
        // Only non-string map keys can fail, and none of these types have them.
        tracing::error!(error = %e, "failed to encode a response");
        return b"null\n".to_vec();
    }
    let text = String::from_utf8_lossy(&out);
    // These characters can only occur inside JSON strings, so plain replacement is safe.
    let mut escaped = text
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    escaped.push('\n');
    escaped.into_bytes()
}

/// An always-empty JSON object (`{}`), for `Connect`, `Definition`, `MeshGateway`, ….
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_map(Some(0))?.end()
    }
}

/// `structs.ConnectProxyConfig` of an ordinary service: `{"Mode":"","MeshGateway":{},"Expose":{}}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EmptyProxy {
    /// Always `""`.
    mode: &'static str,
    /// Always `{}`.
    mesh_gateway: EmptyObject,
    /// Always `{}`.
    expose: EmptyObject,
}

/// The proxy object every non-mesh service carries.
const EMPTY_PROXY: EmptyProxy = EmptyProxy {
    mode: "",
    mesh_gateway: EmptyObject,
    expose: EmptyObject,
};

/// `structs.Node` (§4.2 `Node`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NodeOut {
    /// Node ID.
    #[serde(rename = "ID")]
    id: String,
    /// Node name.
    node: String,
    /// Node address.
    address: String,
    /// Datacenter.
    datacenter: &'static str,
    /// `lan`, `lan_ipv4`/`lan_ipv6`, `wan`, `wan_ipv4`/`wan_ipv6` → address string.
    tagged_addresses: BTreeMap<&'static str, String>,
    /// Node meta.
    meta: BTreeMap<&'static str, &'static str>,
    /// Create index.
    create_index: u64,
    /// Modify index.
    modify_index: u64,
}

impl NodeOut {
    /// The node's metadata as pairs, for `?node-meta` filtering.
    pub(crate) fn meta_pairs(&self) -> Vec<(&'static str, &'static str)> {
        self.meta.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Renders the node.
    pub(crate) fn new(node: &Node) -> Self {
        let address = node.address.to_string();
        let family = if node.address.is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let tagged_addresses = BTreeMap::from([
            ("lan", address.clone()),
            (
                if family == "ipv4" {
                    "lan_ipv4"
                } else {
                    "lan_ipv6"
                },
                address.clone(),
            ),
            ("wan", address.clone()),
            (
                if family == "ipv4" {
                    "wan_ipv4"
                } else {
                    "wan_ipv6"
                },
                address.clone(),
            ),
        ]);
        Self {
            id: node.id.clone(),
            node: node.name.clone(),
            address,
            datacenter: DATACENTER,
            tagged_addresses,
            meta: BTreeMap::from([
                ("consul-network-segment", ""),
                ("consul-version", CONSUL_VERSION),
            ]),
            create_index: node.index,
            modify_index: node.index,
        }
    }
}

/// `structs.NodeService` (§4.2 `Service`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NodeServiceOut<'a> {
    /// Kind, omitted for ordinary services.
    #[serde(skip_serializing_if = "empty_str")]
    kind: &'a str,
    /// Instance ID.
    #[serde(rename = "ID")]
    id: &'a str,
    /// Service name.
    service: &'a str,
    /// Tags.
    tags: &'a [String],
    /// Address as registered.
    address: &'a str,
    /// Tagged addresses, omitted when empty.
    #[serde(skip_serializing_if = "empty_map")]
    tagged_addresses: &'a BTreeMap<String, ServiceAddress>,
    /// Meta.
    meta: &'a BTreeMap<String, String>,
    /// Port, omitted when 0.
    #[serde(skip_serializing_if = "is_zero")]
    port: i64,
    /// Socket path, omitted when empty.
    #[serde(skip_serializing_if = "empty_str")]
    socket_path: &'a str,
    /// Weights.
    weights: Weights,
    /// Tag override flag.
    enable_tag_override: bool,
    /// Locality, omitted when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    locality: Option<&'a Value>,
    /// Proxy config (empty).
    proxy: EmptyProxy,
    /// Connect config (empty).
    connect: EmptyObject,
    /// Peer name (empty).
    peer_name: &'static str,
    /// Create index.
    create_index: u64,
    /// Modify index.
    modify_index: u64,
}

impl<'a> NodeServiceOut<'a> {
    /// Renders a catalog service instance.
    pub(crate) fn new(record: &'a ServiceRecord) -> Self {
        let s = &record.service;
        Self {
            kind: &s.kind,
            id: &s.id,
            service: &s.name,
            tags: &s.tags,
            address: &s.address,
            tagged_addresses: &s.tagged_addresses,
            meta: &s.meta,
            port: s.port,
            socket_path: &s.socket_path,
            weights: s.weights,
            enable_tag_override: s.enable_tag_override,
            locality: s.locality.as_ref(),
            proxy: EMPTY_PROXY,
            connect: EmptyObject,
            peer_name: "",
            create_index: record.create_index,
            modify_index: record.modify_index,
        }
    }
}

/// `structs.HealthCheck` (§4.2 `Checks[]`, §5.4).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HealthCheckOut<'a> {
    /// Node name.
    node: &'a str,
    /// Check ID.
    #[serde(rename = "CheckID")]
    check_id: &'a str,
    /// Name.
    name: &'a str,
    /// Status.
    status: Status,
    /// Notes.
    notes: &'a str,
    /// Output.
    output: &'a str,
    /// Owning service ID (`""` for node checks).
    #[serde(rename = "ServiceID")]
    service_id: &'a str,
    /// Owning service name.
    service_name: &'a str,
    /// Owning service tags.
    service_tags: &'a [String],
    /// Type (`http`, `ttl`, `tcp`, `""`).
    #[serde(rename = "Type")]
    type_name: &'a str,
    /// Interval, `""` when none.
    interval: &'a str,
    /// Timeout, `""` when none.
    timeout: &'a str,
    /// Always 0 (no mesh expose).
    exposed_port: u16,
    /// Always `{}`.
    definition: EmptyObject,
    /// Create index.
    create_index: u64,
    /// Modify index.
    modify_index: u64,
}

impl<'a> HealthCheckOut<'a> {
    /// Renders a service check.
    pub(crate) fn new(node: &'a Node, check: &'a CheckRecord) -> Self {
        let info = &check.info;
        Self {
            node: &node.name,
            check_id: &info.id,
            name: &info.name,
            status: info.status,
            notes: &info.notes,
            output: &check.output,
            service_id: &info.service_id,
            service_name: &info.service_name,
            service_tags: &info.service_tags,
            type_name: info.type_name,
            interval: &info.interval,
            timeout: &info.timeout,
            exposed_port: 0,
            definition: EmptyObject,
            create_index: check.create_index,
            modify_index: check.modify_index,
        }
    }

    /// Renders the node's always-passing `serfHealth` check.
    pub(crate) fn serf(node: &'a Node) -> Self {
        Self {
            node: &node.name,
            check_id: SERF_CHECK_ID,
            name: SERF_CHECK_NAME,
            status: Status::Passing,
            notes: "",
            output: SERF_CHECK_OUTPUT,
            service_id: "",
            service_name: "",
            service_tags: &[],
            type_name: "",
            interval: "",
            timeout: "",
            exposed_port: 0,
            definition: EmptyObject,
            create_index: node.index,
            modify_index: node.index,
        }
    }

    /// The check's status.
    pub(crate) fn status(&self) -> Status {
        self.status
    }
}

/// `structs.CheckServiceNode`: one entry of `/v1/health/service/:name`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CheckServiceNodeOut<'a> {
    /// The node.
    node: &'a NodeOut,
    /// The instance.
    service: NodeServiceOut<'a>,
    /// Node checks, then the instance's checks.
    checks: Vec<HealthCheckOut<'a>>,
}

impl<'a> CheckServiceNodeOut<'a> {
    /// Renders one instance with the node's and its own checks.
    pub(crate) fn new(
        node_out: &'a NodeOut,
        node: &'a Node,
        catalog: &'a Catalog,
        record: &'a ServiceRecord,
    ) -> Self {
        let checks = std::iter::once(HealthCheckOut::serf(node))
            .chain(
                catalog
                    .service_checks(&record.service.id)
                    .map(|c| HealthCheckOut::new(node, c)),
            )
            .collect();
        Self {
            node: node_out,
            service: NodeServiceOut::new(record),
            checks,
        }
    }

    /// Whether every check is exactly `passing` (§4.3).
    pub(crate) fn all_passing(&self) -> bool {
        self.checks.iter().all(|c| c.status() == Status::Passing)
    }
}

/// `structs.ServiceNode`: one entry of `/v1/catalog/service/:name` (§5.2).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ServiceNodeOut<'a> {
    /// Node ID.
    #[serde(rename = "ID")]
    id: &'a str,
    /// Node name.
    node: &'a str,
    /// Node address.
    address: &'a str,
    /// Datacenter.
    datacenter: &'static str,
    /// Node tagged addresses.
    tagged_addresses: &'a BTreeMap<&'static str, String>,
    /// Node meta.
    node_meta: &'a BTreeMap<&'static str, &'static str>,
    /// Service kind.
    service_kind: &'a str,
    /// Instance ID.
    #[serde(rename = "ServiceID")]
    service_id: &'a str,
    /// Service name.
    service_name: &'a str,
    /// Tags.
    service_tags: &'a [String],
    /// Service address as registered.
    service_address: &'a str,
    /// Service tagged addresses, omitted when empty.
    #[serde(skip_serializing_if = "empty_map")]
    service_tagged_addresses: &'a BTreeMap<String, ServiceAddress>,
    /// Weights.
    service_weights: Weights,
    /// Meta.
    service_meta: &'a BTreeMap<String, String>,
    /// Port.
    service_port: i64,
    /// Socket path.
    service_socket_path: &'a str,
    /// Tag override flag.
    service_enable_tag_override: bool,
    /// Proxy config (empty).
    service_proxy: EmptyProxy,
    /// Connect config (empty).
    service_connect: EmptyObject,
    /// Locality or `null`.
    service_locality: Option<&'a Value>,
    /// Create index.
    create_index: u64,
    /// Modify index.
    modify_index: u64,
}

impl<'a> ServiceNodeOut<'a> {
    /// Renders one instance as a flat catalog entry.
    pub(crate) fn new(node: &'a NodeOut, record: &'a ServiceRecord) -> Self {
        let s = &record.service;
        Self {
            id: &node.id,
            node: &node.node,
            address: &node.address,
            datacenter: DATACENTER,
            tagged_addresses: &node.tagged_addresses,
            node_meta: &node.meta,
            service_kind: &s.kind,
            service_id: &s.id,
            service_name: &s.name,
            service_tags: &s.tags,
            service_address: &s.address,
            service_tagged_addresses: &s.tagged_addresses,
            service_weights: s.weights,
            service_meta: &s.meta,
            service_port: s.port,
            service_socket_path: &s.socket_path,
            service_enable_tag_override: s.enable_tag_override,
            service_proxy: EMPTY_PROXY,
            service_connect: EmptyObject,
            service_locality: s.locality.as_ref(),
            create_index: record.create_index,
            modify_index: record.modify_index,
        }
    }
}

/// `api.AgentService`: entries of `/v1/agent/services` and `/v1/agent/service/:id` (§5.3).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AgentServiceOut<'a> {
    /// Kind, omitted for ordinary services.
    #[serde(skip_serializing_if = "empty_str")]
    kind: &'a str,
    /// Instance ID.
    #[serde(rename = "ID")]
    id: &'a str,
    /// Service name.
    service: &'a str,
    /// Tags.
    tags: &'a [String],
    /// Meta.
    meta: &'a BTreeMap<String, String>,
    /// Port (always present here).
    port: i64,
    /// Address as registered.
    address: &'a str,
    /// Socket path, omitted when empty.
    #[serde(skip_serializing_if = "empty_str")]
    socket_path: &'a str,
    /// Tagged addresses, omitted when empty.
    #[serde(skip_serializing_if = "empty_map")]
    tagged_addresses: &'a BTreeMap<String, ServiceAddress>,
    /// Weights.
    weights: Weights,
    /// Tag override flag.
    enable_tag_override: bool,
    /// Content hash, only on `/v1/agent/service/:id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_hash: Option<String>,
    /// Datacenter.
    datacenter: &'static str,
    /// Locality, omitted when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    locality: Option<&'a Value>,
}

impl<'a> AgentServiceOut<'a> {
    /// Renders an agent service.
    pub(crate) fn new(service: &'a Service) -> Self {
        Self {
            kind: &service.kind,
            id: &service.id,
            service: &service.name,
            tags: &service.tags,
            meta: &service.meta,
            port: service.port,
            address: &service.address,
            socket_path: &service.socket_path,
            tagged_addresses: &service.tagged_addresses,
            weights: service.weights,
            enable_tag_override: service.enable_tag_override,
            content_hash: None,
            datacenter: DATACENTER,
            locality: service.locality.as_ref(),
        }
    }

    /// Adds the `ContentHash` (an FNV-1a hash of the rendered service): it changes
    /// whenever anything in the definition does, which is all clients rely on (§5.3).
    pub(crate) fn with_content_hash(mut self) -> (Self, String) {
        let hash = fnv1a(&to_dev_json(&self));
        let hash = format!("{hash:016x}");
        self.content_hash = Some(hash.clone());
        (self, hash)
    }
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    /// FNV-1a 64-bit offset basis.
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    /// FNV-1a 64-bit prime.
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// Serde helper: skip an empty string.
#[allow(clippy::ref_option_ref, clippy::trivially_copy_pass_by_ref)]
fn empty_str(value: &&str) -> bool {
    value.is_empty()
}

/// Serde helper: skip an empty map.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn empty_map<K, V>(value: &&BTreeMap<K, V>) -> bool {
    value.is_empty()
}

/// Serde helper: skip a zero port.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(value: &i64) -> bool {
    *value == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_json_is_indented_with_four_spaces_and_ends_with_a_newline() {
        let out = String::from_utf8(to_dev_json(&serde_json::json!({"a": [1], "b": {}}))).unwrap();
        assert_eq!(
            out,
            "{\n    \"a\": [\n        1\n    ],\n    \"b\": {}\n}\n"
        );
    }

    #[test]
    fn dev_json_escapes_html_characters_like_go() {
        let out = String::from_utf8(to_dev_json("<a&b>")).unwrap();
        assert_eq!(out, "\"\\u003ca\\u0026b\\u003e\"\n");
    }

    #[test]
    fn empty_proxy_has_consuls_shape() {
        assert_eq!(
            serde_json::to_string(&EMPTY_PROXY).unwrap(),
            r#"{"Mode":"","MeshGateway":{},"Expose":{}}"#
        );
    }
}
