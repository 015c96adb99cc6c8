//! Consul's JSON shapes, exactly as the agent expects and sends them.
//!
//! Consul decodes request bodies strictly since 1.7 (an unknown key is a 400), so the request types
//! name only fields Consul knows, never send `ID` inside a check, never send an empty string, and
//! write durations as Go duration strings (a bare JSON number would mean nanoseconds).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{HealthCheck, Instance, Registration};

/// Initial check status. We register only once our `/health` answers, so starting `critical`
/// (Consul's default) would only hide a healthy instance until the first probe.
const INITIAL_STATUS: &str = "passing";

/// Body of `PUT /v1/agent/service/register`.
#[derive(Debug, Serialize)]
pub(crate) struct ServiceDefinition<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Tags", skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    #[serde(rename = "Address")]
    address: &'a str,
    #[serde(rename = "Port")]
    port: u16,
    #[serde(rename = "Meta", skip_serializing_if = "BTreeMap::is_empty")]
    meta: &'a BTreeMap<String, String>,
    #[serde(rename = "Check")]
    check: CheckDefinition,
}

/// A check inside a service definition (`structs.CheckType`; it has `CheckID`, never `ID`).
#[derive(Debug, Serialize)]
pub(crate) struct CheckDefinition {
    #[serde(rename = "CheckID")]
    check_id: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "HTTP", skip_serializing_if = "Option::is_none")]
    http: Option<String>,
    #[serde(rename = "Method", skip_serializing_if = "Option::is_none")]
    method: Option<&'static str>,
    #[serde(rename = "Interval", skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(rename = "Timeout", skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    #[serde(rename = "TTL", skip_serializing_if = "Option::is_none")]
    ttl: Option<String>,
    #[serde(rename = "Status")]
    status: &'static str,
    #[serde(rename = "DeregisterCriticalServiceAfter")]
    deregister_critical_service_after: String,
}

impl<'a> ServiceDefinition<'a> {
    pub(crate) fn new(reg: &'a Registration) -> Self {
        let (http, method, interval, timeout, ttl) = match &reg.check {
            HealthCheck::Http {
                url,
                interval,
                timeout,
            } => (
                Some(url.clone()),
                Some("GET"),
                Some(go_duration(*interval)),
                Some(go_duration(*timeout)),
                None,
            ),
            HealthCheck::Ttl { ttl } => (None, None, None, None, Some(go_duration(*ttl))),
        };
        let kind = if ttl.is_some() { "heartbeat" } else { "health" };
        Self {
            id: &reg.id,
            name: &reg.name,
            tags: &reg.tags,
            address: &reg.address,
            port: reg.port,
            meta: &reg.meta,
            check: CheckDefinition {
                check_id: reg.check_id(),
                name: format!("{} {kind}", reg.name),
                http,
                method,
                interval,
                timeout,
                ttl,
                status: INITIAL_STATUS,
                deregister_critical_service_after: go_duration(reg.deregister_critical_after),
            },
        }
    }
}

/// One entry of `GET /v1/health/service/<name>` (`structs.CheckServiceNode`), the fields we use.
#[derive(Debug, Deserialize)]
pub(crate) struct ServiceEntry {
    #[serde(rename = "Node")]
    node: NodeEntry,
    #[serde(rename = "Service")]
    service: NodeService,
    #[serde(rename = "Checks", default)]
    checks: Option<Vec<CheckEntry>>,
}

#[derive(Debug, Deserialize)]
struct NodeEntry {
    #[serde(rename = "Address", default)]
    address: String,
}

#[derive(Debug, Deserialize)]
struct NodeService {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Address", default)]
    address: String,
    /// `omitempty` in current Consul: absent means 0.
    #[serde(rename = "Port", default)]
    port: u16,
    #[serde(rename = "Meta", default)]
    #[allow(dead_code)] // decoded so the shape is checked; meta-based routing may use it
    meta: Option<HashMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct CheckEntry {
    #[serde(rename = "Status")]
    status: String,
}

impl ServiceEntry {
    /// Whether every check on the entry (node checks included) passes. Consul already filters with
    /// `?passing`; checking again keeps us right behind proxies or stand-ins that ignore the flag.
    pub(crate) fn is_passing(&self) -> bool {
        self.checks
            .as_deref()
            .unwrap_or_default()
            .iter()
            .all(|c| c.status == "passing")
    }

    /// The instance to connect to. An empty `Service.Address` means "the node's address", a rule
    /// the HTTP API leaves to clients (consul-template does the same).
    pub(crate) fn into_instance(self) -> Option<Instance> {
        let address = if self.service.address.is_empty() {
            self.node.address
        } else {
            self.service.address
        };
        (!address.is_empty() && self.service.port != 0).then_some(Instance {
            id: self.service.id,
            address,
            port: self.service.port,
        })
    }
}

/// The part of `GET /v1/agent/service/<id>` we read.
#[derive(Debug, Deserialize)]
pub(crate) struct AgentService {
    #[serde(rename = "ID")]
    pub(crate) id: String,
}

/// Formats a duration as a Go duration string Consul parses: `"10s"`, `"5m"`, `"1m30s"`, `"1500ms"`.
///
/// Whole seconds are written with `h`, `m` and `s` units (zero parts left out), anything finer
/// as `"<n>ms"`, rounded up so that a positive duration never becomes `"0ms"`.
pub(crate) fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_nanos().div_ceil(1_000_000));
    }
    let secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (value, unit) in [(h, 'h'), (m, 'm'), (s, 's')] {
        if value > 0 {
            out.push_str(&value.to_string());
            out.push(unit);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn sample(name: &str) -> Value {
        let path = format!(
            "{}/../testdata/consul-samples/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn orders_registration(check: HealthCheck) -> Registration {
        Registration {
            id: "orders-1".into(),
            name: "orders".into(),
            address: "10.0.0.11".into(),
            port: 8080,
            tags: vec!["v1".into(), "http".into()],
            meta: [("version", "1.4.2"), ("protocol", "http")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            check,
            deregister_critical_after: Duration::from_secs(300),
        }
    }

    /// Keys Consul's `CheckType` accepts, from the two register samples plus `CheckID`/`Status`.
    fn known_check_keys() -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        let http = sample("register-http-check.json");
        keys.extend(http["Check"].as_object().unwrap().keys().cloned());
        let ttl = sample("register-ttl-check.json");
        for check in ttl["Checks"].as_array().unwrap() {
            keys.extend(check.as_object().unwrap().keys().cloned());
        }
        keys
    }

    fn assert_no_empty_strings(v: &Value, path: &str) {
        match v {
            Value::String(s) => assert!(!s.is_empty(), "empty string at {path}"),
            Value::Object(m) => m
                .iter()
                .for_each(|(k, v)| assert_no_empty_strings(v, &format!("{path}.{k}"))),
            Value::Array(a) => a.iter().for_each(|v| assert_no_empty_strings(v, path)),
            _ => {}
        }
    }

    #[test]
    fn http_registration_matches_the_consul_sample_field_by_field() {
        let reg = orders_registration(HealthCheck::Http {
            url: "http://10.0.0.11:8080/health".into(),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
        });
        let body = serde_json::to_value(ServiceDefinition::new(&reg)).unwrap();
        let sample = sample("register-http-check.json");
        for key in ["ID", "Name", "Tags", "Address", "Port", "Meta"] {
            assert_eq!(body[key], sample[key], "service field {key}");
        }
        for key in [
            "HTTP",
            "Method",
            "Interval",
            "Timeout",
            "DeregisterCriticalServiceAfter",
        ] {
            assert_eq!(
                body["Check"][key], sample["Check"][key],
                "check field {key}"
            );
        }
        assert_eq!(body["Check"]["CheckID"], "service:orders-1");
        assert_eq!(body["Check"]["Status"], "passing");
        assert!(
            body["Check"].get("ID").is_none(),
            "ID inside a check is a 400"
        );
        assert!(body["Check"].get("TTL").is_none());
        let known = known_check_keys();
        for key in body["Check"].as_object().unwrap().keys() {
            assert!(known.contains(key), "Consul does not know check key {key}");
        }
        for key in body.as_object().unwrap().keys() {
            assert!(sample.get(key).is_some(), "unknown service key {key}");
        }
        assert_no_empty_strings(&body, "");
    }

    #[test]
    fn ttl_registration_matches_the_consul_sample_field_by_field() {
        let reg = orders_registration(HealthCheck::Ttl {
            ttl: Duration::from_secs(15),
        });
        let body = serde_json::to_value(ServiceDefinition::new(&reg)).unwrap();
        let sample = sample("register-ttl-check.json");
        let ttl_check = &sample["Checks"][0];
        for key in ["TTL", "Status"] {
            assert_eq!(body["Check"][key], ttl_check[key], "check field {key}");
        }
        assert_eq!(body["Check"]["DeregisterCriticalServiceAfter"], "5m");
        for key in ["HTTP", "Interval", "Timeout", "ID"] {
            assert!(body["Check"].get(key).is_none(), "{key} must be absent");
        }
        let known = known_check_keys();
        for key in body["Check"].as_object().unwrap().keys() {
            assert!(known.contains(key), "Consul does not know check key {key}");
        }
        assert_no_empty_strings(&body, "");
    }

    #[test]
    fn registration_without_tags_or_meta_omits_them_instead_of_sending_empties() {
        let mut reg = orders_registration(HealthCheck::Ttl {
            ttl: Duration::from_secs(15),
        });
        reg.tags.clear();
        reg.meta.clear();
        let body = serde_json::to_value(ServiceDefinition::new(&reg)).unwrap();
        assert!(body.get("Tags").is_none() && body.get("Meta").is_none());
    }

    #[test]
    fn health_sample_parses_with_node_address_fallback() {
        let raw = std::fs::read_to_string(format!(
            "{}/../testdata/consul-samples/health-service-two-instances.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let entries: Vec<ServiceEntry> = serde_json::from_str(&raw).unwrap();
        let passing: Vec<bool> = entries.iter().map(ServiceEntry::is_passing).collect();
        assert_eq!(passing, [true, false], "orders-2 has a critical check");
        let instances: Vec<Instance> = entries
            .into_iter()
            .filter_map(ServiceEntry::into_instance)
            .collect();
        assert_eq!(instances[0].authority(), "10.0.0.11:8080");
        assert_eq!(instances[1].id, "orders-2");
        assert_eq!(
            instances[1].authority(),
            "172.18.0.2:8081",
            "empty Service.Address falls back to Node.Address"
        );
    }

    #[test]
    fn entry_without_port_or_checks_is_handled() {
        let raw = r#"[{"Node":{"Address":"10.0.0.1"},"Service":{"ID":"a","Service":"x","Meta":null},"Checks":null},
                      {"Node":{"Address":"10.0.0.1"},"Service":{"ID":"b","Service":"x","Port":1}}]"#;
        let entries: Vec<ServiceEntry> = serde_json::from_str(raw).unwrap();
        assert!(entries.iter().all(ServiceEntry::is_passing));
        let ids: Vec<String> = entries
            .into_iter()
            .filter_map(ServiceEntry::into_instance)
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["b"], "an instance without a port cannot be called");
    }

    #[test]
    fn durations_are_go_duration_strings() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600 + 5)), "1h5s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(go_duration(Duration::from_nanos(1)), "1ms");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }
}
