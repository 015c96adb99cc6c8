//! Request bodies (`ServiceDefinition`, `CheckType`, the TTL update) and their validation.
//!
//! Field lists, snake_case aliases and validation messages follow Consul's
//! `structs.ServiceDefinition`, `structs.CheckType` and `AgentRegisterService`
//! (reference §1.2–§1.7, §3).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::decode::{DecodeError, Fields};

/// Most metadata pairs a service may carry (Consul's `metaMaxKeyPairs`, §1.2).
const META_MAX_PAIRS: usize = 64;
/// Longest metadata key (Consul's `metaKeyMaxLength`, §1.2).
const META_KEY_MAX_LEN: usize = 128;
/// Longest metadata value (Consul's `metaValueMaxLength`, §1.2).
const META_VALUE_MAX_LEN: usize = 512;
/// Metadata key prefix Consul reserves for itself (§1.2).
const META_RESERVED_PREFIX: &str = "consul-";
/// Largest DNS weight (`ValidateWeights`, §1.2).
const WEIGHT_MAX: i64 = 65_535;

/// The three check states (`structs.ValidStatus`).
pub(crate) const STATUSES: [&str; 3] = ["passing", "warning", "critical"];

/// `PUT /v1/agent/service/register` body (`structs.ServiceDefinition`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServiceDefinition {
    /// Service kind (`connect-proxy`, …); empty for ordinary services.
    pub(crate) kind: String,
    /// Instance ID; defaults to the name.
    pub(crate) id: String,
    /// Service name.
    pub(crate) name: String,
    /// Tags.
    pub(crate) tags: Vec<String>,
    /// Service address; empty means "the node's".
    pub(crate) address: String,
    /// Extra addresses by tag (`lan_ipv4`, …).
    pub(crate) tagged_addresses: BTreeMap<String, ServiceAddress>,
    /// Free-form metadata.
    pub(crate) meta: BTreeMap<String, String>,
    /// Port; 0 when not given.
    pub(crate) port: i64,
    /// Unix socket path instead of address and port.
    pub(crate) socket_path: String,
    /// The single `Check`, `None` when absent, `null` or `{}`.
    pub(crate) check: Option<CheckDefinition>,
    /// The `Checks` list.
    pub(crate) checks: Vec<CheckDefinition>,
    /// DNS weights; `None` when omitted (the agent then applies {1,1}).
    pub(crate) weights: Option<Weights>,
    /// Whether catalog tag edits may override the agent's.
    pub(crate) enable_tag_override: bool,
    /// `Locality` as given (region/zone), echoed back.
    pub(crate) locality: Option<Value>,
}

/// An address and port under `TaggedAddresses` (`structs.ServiceAddress`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ServiceAddress {
    /// Address.
    pub(crate) address: String,
    /// Port.
    pub(crate) port: i64,
}

/// DNS SRV weights (`structs.Weights`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Weights {
    /// Weight while all checks pass.
    pub(crate) passing: i64,
    /// Weight while some check warns.
    pub(crate) warning: i64,
}

impl Default for Weights {
    /// {1,1}, what the agent applies when `Weights` is omitted (§1.2).
    fn default() -> Self {
        Self {
            passing: 1,
            warning: 1,
        }
    }
}

/// A check inside a service registration (`structs.CheckType`).
///
/// Durations are signed nanoseconds, as Go holds them; 0 means unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CheckDefinition {
    /// Explicit check ID; derived when empty (§1.4).
    pub(crate) check_id: String,
    /// Display name; defaulted when empty.
    pub(crate) name: String,
    /// Initial status; `critical` when empty.
    pub(crate) status: String,
    /// Free text for humans.
    pub(crate) notes: String,
    /// Script arguments (script checks, refused here).
    pub(crate) script_args: Vec<String>,
    /// URL of an HTTP check.
    pub(crate) http: String,
    /// H2PING target.
    pub(crate) h2ping: String,
    /// H2PING over TLS.
    pub(crate) h2ping_use_tls: bool,
    /// Extra HTTP request headers.
    pub(crate) header: BTreeMap<String, Vec<String>>,
    /// HTTP method; GET when empty.
    pub(crate) method: String,
    /// HTTP request body.
    pub(crate) body: String,
    /// Do not follow redirects.
    pub(crate) disable_redirects: bool,
    /// `host:port` of a TCP check.
    pub(crate) tcp: String,
    /// UDP target.
    pub(crate) udp: String,
    /// Probe period.
    pub(crate) interval: i64,
    /// Alias check target node.
    pub(crate) alias_node: String,
    /// Alias check target service.
    pub(crate) alias_service: String,
    /// Docker container for docker checks.
    pub(crate) docker_container_id: String,
    /// Shell for docker checks.
    pub(crate) shell: String,
    /// gRPC target.
    pub(crate) grpc: String,
    /// gRPC over TLS.
    pub(crate) grpc_use_tls: bool,
    /// OS service name.
    pub(crate) os_service: String,
    /// TLS server name for HTTPS checks.
    pub(crate) tls_server_name: String,
    /// Skip TLS verification for HTTPS checks.
    pub(crate) tls_skip_verify: bool,
    /// Per-probe timeout.
    pub(crate) timeout: i64,
    /// TTL of a TTL check.
    pub(crate) ttl: i64,
    /// Consecutive successes before reporting passing.
    pub(crate) success_before_passing: i64,
    /// Consecutive failures before reporting warning.
    pub(crate) failures_before_warning: i64,
    /// Consecutive failures before reporting critical.
    pub(crate) failures_before_critical: i64,
    /// Proxy HTTP target (mesh expose).
    pub(crate) proxy_http: String,
    /// Proxy gRPC target (mesh expose).
    pub(crate) proxy_grpc: String,
    /// Reap the service after this long critical.
    pub(crate) deregister_critical_service_after: i64,
    /// Per-check output cap.
    pub(crate) output_max_size: i64,
}

/// `PUT /v1/agent/check/update/:id` body (`agent.checkUpdate`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CheckUpdate {
    /// New status.
    pub(crate) status: String,
    /// New output.
    pub(crate) output: String,
}

// === impl ServiceDefinition ===

/// Keys a `ServiceDefinition` accepts: the Go fields plus the snake_case aliases
/// its `UnmarshalJSON` declares (§1.2). Enterprise-only keys are unknown in CE.
const SERVICE_FIELDS: &[&str] = &[
    "Kind",
    "ID",
    "Name",
    "Tags",
    "Address",
    "TaggedAddresses",
    "Meta",
    "Port",
    "SocketPath",
    "Check",
    "Checks",
    "Weights",
    "Token",
    "EnableTagOverride",
    "Locality",
    "Proxy",
    "Connect",
    "enable_tag_override",
    "tagged_addresses",
];

impl ServiceDefinition {
    /// Decodes a registration body strictly.
    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let value = super::decode::parse_body(body)?;
        let Some(f) = Fields::new(&value, "structs.ServiceDefinition", None, SERVICE_FIELDS)?
        else {
            return Ok(Self::default());
        };
        let f = f.renamed("ServiceDefinition");
        let mut tagged_addresses = decode_tagged_addresses(&f, "TaggedAddresses")?;
        if tagged_addresses.is_empty() {
            tagged_addresses = decode_tagged_addresses(&f, "tagged_addresses")?;
        }
        let check = match f.raw("Check") {
            Some(value) => Some(CheckDefinition::decode_value(
                value,
                "ServiceDefinition.Check",
            )?)
            .filter(|c| !c.is_empty()),
            None => None,
        };
        let checks = match f.raw("Checks") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| CheckDefinition::decode_value(item, "ServiceDefinition.Checks"))
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(f.mismatch("Checks", other, "structs.CheckTypes")),
        };
        let weights = match f.raw("Weights") {
            None => None,
            Some(value) => Fields::new(
                value,
                "Weights",
                Some("ServiceDefinition.Weights"),
                &["Passing", "Warning"],
            )?
            .map(|w| -> Result<_, DecodeError> {
                Ok(Weights {
                    passing: w.int("Passing")?,
                    warning: w.int("Warning")?,
                })
            })
            .transpose()?,
        };
        let _token = f.string("Token")?;
        for opaque in ["Proxy", "Connect"] {
            if let Some(value) = f.raw(opaque)
                && !value.is_object()
            {
                return Err(f.mismatch(opaque, value, "object"));
            }
        }
        let locality = match f.raw("Locality") {
            None => None,
            Some(value) => {
                let l = Fields::new(
                    value,
                    "Locality",
                    Some("ServiceDefinition.Locality"),
                    &["Region", "Zone"],
                )?;
                if let Some(l) = &l {
                    l.string("Region")?;
                    l.string("Zone")?;
                }
                Some(value.clone())
            }
        };
        Ok(Self {
            kind: f.string("Kind")?,
            id: f.string("ID")?,
            name: f.string("Name")?,
            tags: f.strings("Tags")?,
            address: f.string("Address")?,
            tagged_addresses,
            meta: f.string_map("Meta")?.unwrap_or_default(),
            port: f.int("Port")?,
            socket_path: f.string("SocketPath")?,
            check,
            checks,
            weights,
            enable_tag_override: f.bool("EnableTagOverride")? || f.bool("enable_tag_override")?,
            locality,
        })
    }

    /// The combined check list: `Check` (if not empty) followed by `Checks` (§1.4).
    pub(crate) fn all_checks(&self) -> impl Iterator<Item = &CheckDefinition> {
        self.check.iter().chain(self.checks.iter())
    }
}

/// Decodes a `map[string]ServiceAddress` field.
fn decode_tagged_addresses(
    f: &Fields<'_>,
    name: &'static str,
) -> Result<BTreeMap<String, ServiceAddress>, DecodeError> {
    match f.raw(name) {
        None => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| {
                let field = f.path(name);
                let address =
                    match Fields::new(value, "ServiceAddress", Some(&field), &["Address", "Port"])?
                    {
                        Some(a) => ServiceAddress {
                            address: a.string("Address")?,
                            port: a.int("Port")?,
                        },
                        None => ServiceAddress::default(),
                    };
                Ok((key.clone(), address))
            })
            .collect(),
        Some(other) => Err(f.mismatch(name, other, "map[string]structs.ServiceAddress")),
    }
}

/// Validates `Weights` (`structs.ValidateWeights`); the message follows `Invalid Weights: `.
pub(crate) fn validate_weights(weights: &Weights) -> Result<(), String> {
    if weights.passing < 1 {
        return Err("Passing must be greater than 0".to_owned());
    }
    if weights.warning < 0 {
        return Err("Warning must be greater or equal than 0".to_owned());
    }
    if weights.passing > WEIGHT_MAX || weights.warning > WEIGHT_MAX {
        return Err("DNS Weight must be between 0 and 65535".to_owned());
    }
    Ok(())
}

/// Validates service metadata (`structs.ValidateServiceMetadata`); the message follows
/// `Invalid Service Meta: `. Go reports a random bad pair; this reports the first by key.
pub(crate) fn validate_meta(meta: &BTreeMap<String, String>) -> Result<(), String> {
    if meta.len() > META_MAX_PAIRS {
        return Err(format!(
            "Node metadata cannot contain more than {META_MAX_PAIRS} key/value pairs"
        ));
    }
    for (key, value) in meta {
        let problem = if key.is_empty() {
            Some("Key cannot be blank".to_owned())
        } else if !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            Some("Key contains invalid characters".to_owned())
        } else if key.len() > META_KEY_MAX_LEN {
            Some(format!(
                "Key is too long (limit: {META_KEY_MAX_LEN} characters)"
            ))
        } else if key.starts_with(META_RESERVED_PREFIX) {
            Some(format!(
                "Key prefix '{META_RESERVED_PREFIX}' is reserved for internal use"
            ))
        } else if value.len() > META_VALUE_MAX_LEN {
            Some(format!(
                "Value is too long (limit: {META_VALUE_MAX_LEN} characters)"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(format!(
                "Couldn't load metadata pair ('{key}', '{value}'): {problem}"
            ));
        }
    }
    Ok(())
}

// === impl CheckDefinition ===

/// Keys a `CheckType` accepts: the Go fields, the aliases declared by its
/// `UnmarshalJSON`, and the ignored `ServiceID`/`service_id` (§1.3).
const CHECK_FIELDS: &[&str] = &[
    "CheckID",
    "Name",
    "Status",
    "Notes",
    "ScriptArgs",
    "HTTP",
    "H2PING",
    "H2PingUseTLS",
    "Header",
    "Method",
    "Body",
    "DisableRedirects",
    "TCP",
    "UDP",
    "Interval",
    "AliasNode",
    "AliasService",
    "DockerContainerID",
    "Shell",
    "GRPC",
    "GRPCUseTLS",
    "OSService",
    "TLSServerName",
    "TLSSkipVerify",
    "Timeout",
    "TTL",
    "SuccessBeforePassing",
    "FailuresBeforeWarning",
    "FailuresBeforeCritical",
    "ProxyHTTP",
    "ProxyGRPC",
    "DeregisterCriticalServiceAfter",
    "OutputMaxSize",
    "args",
    "script_args",
    "deregister_critical_service_after",
    "docker_container_id",
    "tls_server_name",
    "tls_skip_verify",
    "grpc_use_tls",
    "h2ping_use_tls",
    "ServiceID",
    "service_id",
];

impl CheckDefinition {
    /// Decodes one check object (or `null`, giving the empty check).
    fn decode_value(value: &Value, field: &str) -> Result<Self, DecodeError> {
        let Some(f) = Fields::new(value, "CheckType", Some(field), CHECK_FIELDS)? else {
            return Ok(Self::default());
        };
        let _ignored = (f.string("ServiceID")?, f.string("service_id")?);
        let mut script_args = f.strings("ScriptArgs")?;
        if script_args.is_empty() {
            script_args = f.strings("args")?;
        }
        if script_args.is_empty() {
            script_args = f.strings("script_args")?;
        }
        let or_alias = |main: String, alias: &'static str| -> Result<String, DecodeError> {
            if main.is_empty() {
                f.string(alias)
            } else {
                Ok(main)
            }
        };
        let deregister = match f.raw("DeregisterCriticalServiceAfter") {
            Some(_) => f.duration("DeregisterCriticalServiceAfter")?,
            None => f.duration("deregister_critical_service_after")?,
        };
        Ok(Self {
            check_id: f.string("CheckID")?,
            name: f.string("Name")?,
            status: f.string("Status")?,
            notes: f.string("Notes")?,
            script_args,
            http: f.string("HTTP")?,
            h2ping: f.string("H2PING")?,
            h2ping_use_tls: f.bool("H2PingUseTLS")? || f.bool("h2ping_use_tls")?,
            header: f.header_map("Header")?,
            method: f.string("Method")?,
            body: f.string("Body")?,
            disable_redirects: f.bool("DisableRedirects")?,
            tcp: f.string("TCP")?,
            udp: f.string("UDP")?,
            interval: f.duration("Interval")?.unwrap_or(0),
            alias_node: f.string("AliasNode")?,
            alias_service: f.string("AliasService")?,
            docker_container_id: or_alias(f.string("DockerContainerID")?, "docker_container_id")?,
            shell: f.string("Shell")?,
            grpc: f.string("GRPC")?,
            grpc_use_tls: f.bool("GRPCUseTLS")? || f.bool("grpc_use_tls")?,
            os_service: f.string("OSService")?,
            tls_server_name: or_alias(f.string("TLSServerName")?, "tls_server_name")?,
            tls_skip_verify: f.bool("TLSSkipVerify")? || f.bool("tls_skip_verify")?,
            timeout: f.duration("Timeout")?.unwrap_or(0),
            ttl: f.duration("TTL")?.unwrap_or(0),
            success_before_passing: f.int("SuccessBeforePassing")?,
            failures_before_warning: f.int("FailuresBeforeWarning")?,
            failures_before_critical: f.int("FailuresBeforeCritical")?,
            proxy_http: f.string("ProxyHTTP")?,
            proxy_grpc: f.string("ProxyGRPC")?,
            deregister_critical_service_after: deregister.unwrap_or(0),
            output_max_size: f.int("OutputMaxSize")?,
        })
    }

    /// Whether every field is zero (`CheckType.Empty`): such a `Check` is ignored.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether this is an alias check.
    fn is_alias(&self) -> bool {
        !self.alias_node.is_empty() || !self.alias_service.is_empty()
    }

    /// Consul's check type name (`CheckType.Type`): `http`, `ttl`, `tcp`, … or `""`.
    pub(crate) fn type_name(&self) -> &'static str {
        let periodic = self.interval > 0;
        let script = !self.script_args.is_empty();
        match () {
            () if !self.grpc.is_empty() && periodic => "grpc",
            () if !self.http.is_empty() && periodic => "http",
            () if self.ttl > 0 => "ttl",
            () if !self.tcp.is_empty() && periodic => "tcp",
            () if !self.udp.is_empty() && periodic => "udp",
            () if self.is_alias() => "alias",
            () if script && !self.docker_container_id.is_empty() && periodic => "docker",
            () if script => "script",
            () if !self.h2ping.is_empty() && periodic => "h2ping",
            () if !self.os_service.is_empty() && periodic => "os_service",
            () => "",
        }
    }

    /// `CheckType.Validate`; the message follows `Invalid check: ` (§1.3).
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        let interval_check = !self.script_args.is_empty()
            || !self.http.is_empty()
            || !self.tcp.is_empty()
            || !self.udp.is_empty()
            || !self.grpc.is_empty()
            || !self.h2ping.is_empty()
            || !self.os_service.is_empty();
        if self.interval > 0 && self.ttl > 0 {
            return Err("Interval and TTL cannot both be specified");
        }
        if interval_check && self.interval <= 0 {
            return Err(
                "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks",
            );
        }
        if interval_check && self.is_alias() {
            return Err("Interval cannot be set for Alias checks");
        }
        if self.is_alias() && self.ttl > 0 {
            return Err("TTL must be not be set for Alias checks");
        }
        if !interval_check && !self.is_alias() && self.ttl <= 0 {
            return Err("TTL must be > 0 for TTL checks");
        }
        if self.output_max_size < 0 {
            return Err("MaxOutputMaxSize must be positive");
        }
        if self.failures_before_warning > self.failures_before_critical {
            return Err("FailuresBeforeWarning can't be higher than FailuresBeforeCritical");
        }
        Ok(())
    }
}

// === impl CheckUpdate ===

impl CheckUpdate {
    /// Decodes a TTL update body strictly.
    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let value = super::decode::parse_body(body)?;
        let Some(f) = Fields::new(&value, "agent.checkUpdate", None, &["Status", "Output"])? else {
            return Ok(Self::default());
        };
        let f = f.renamed("checkUpdate");
        Ok(Self {
            status: f.string("Status")?,
            output: f.string("Output")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: &str) -> Result<ServiceDefinition, String> {
        ServiceDefinition::decode(json.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn decodes_lowercase_and_snake_case_keys_like_go() {
        let def = decode(
            r#"{"name":"web","id":"web-1","port":80,"enabletagoverride":true,
                "tagged_addresses":{"lan":{"address":"10.0.0.1","port":80}},
                "checks":[{"http":"http://x/","interval":"10s","tls_skip_verify":true,
                           "deregister_critical_service_after":"90s"}]}"#,
        )
        .unwrap();
        assert_eq!(def.name, "web");
        assert_eq!(def.id, "web-1");
        assert!(def.enable_tag_override);
        assert_eq!(def.tagged_addresses["lan"].address, "10.0.0.1");
        let check = &def.checks[0];
        assert!(check.tls_skip_verify);
        assert_eq!(check.interval, 10_000_000_000);
        assert_eq!(check.deregister_critical_service_after, 90_000_000_000);
        assert_eq!(check.type_name(), "http");
    }

    #[test]
    fn null_and_empty_check_objects_are_ignored() {
        assert_eq!(decode(r#"{"Name":"a","Check":null}"#).unwrap().check, None);
        assert_eq!(decode(r#"{"Name":"a","Check":{}}"#).unwrap().check, None);
        assert_eq!(
            decode(r#"{"Name":"a","Checks":null}"#).unwrap().checks,
            vec![]
        );
        assert_eq!(
            decode(r#"{"Name":"a","Check":{"ServiceID":"x"}}"#)
                .unwrap()
                .check,
            None
        );
    }

    #[test]
    fn unknown_fields_in_nested_objects_are_rejected() {
        assert_eq!(
            decode(r#"{"Name":"a","Check":{"ID":"x","TTL":"1s"}}"#).unwrap_err(),
            r#"json: unknown field "ID""#
        );
        assert_eq!(
            decode(r#"{"Name":"a","Weights":{"Passing":1,"Critical":1}}"#).unwrap_err(),
            r#"json: unknown field "Critical""#
        );
        assert_eq!(
            decode(r#"{"Name":"a","Namespace":"x"}"#).unwrap_err(),
            r#"json: unknown field "Namespace""#
        );
    }

    #[test]
    fn check_validation_messages_follow_consul() {
        let check = |json: &str| {
            decode(&format!(r#"{{"Name":"a","Check":{json}}}"#))
                .unwrap()
                .check
                .unwrap()
                .validate()
        };
        assert_eq!(
            check(r#"{"TTL":"1s","Interval":"1s","HTTP":"http://x"}"#),
            Err("Interval and TTL cannot both be specified")
        );
        assert_eq!(
            check(r#"{"TCP":"x:1"}"#),
            Err("Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks")
        );
        assert_eq!(
            check(r#"{"Name":"n"}"#),
            Err("TTL must be > 0 for TTL checks")
        );
        assert_eq!(
            check(r#"{"TTL":"1s","OutputMaxSize":-1}"#),
            Err("MaxOutputMaxSize must be positive")
        );
        assert_eq!(
            check(r#"{"TTL":"1s","FailuresBeforeWarning":2,"FailuresBeforeCritical":1}"#),
            Err("FailuresBeforeWarning can't be higher than FailuresBeforeCritical")
        );
        assert_eq!(
            check(r#"{"AliasService":"x","TTL":"1s"}"#),
            Err("TTL must be not be set for Alias checks")
        );
        assert_eq!(check(r#"{"TTL":"1s"}"#), Ok(()));
    }

    #[test]
    fn meta_and_weights_validation_messages_follow_consul() {
        let meta = BTreeMap::from([("bad key".to_owned(), "v".to_owned())]);
        assert_eq!(
            validate_meta(&meta).unwrap_err(),
            "Couldn't load metadata pair ('bad key', 'v'): Key contains invalid characters"
        );
        let meta = BTreeMap::from([("consul-x".to_owned(), "v".to_owned())]);
        assert!(
            validate_meta(&meta)
                .unwrap_err()
                .ends_with("is reserved for internal use")
        );
        assert_eq!(
            validate_weights(&Weights {
                passing: 0,
                warning: 1
            })
            .unwrap_err(),
            "Passing must be greater than 0"
        );
    }

    #[test]
    fn check_update_is_strict() {
        assert_eq!(
            CheckUpdate::decode(br#"{"Status":"passing","Output":"ok"}"#).unwrap(),
            CheckUpdate {
                status: "passing".into(),
                output: "ok".into()
            }
        );
        assert_eq!(
            CheckUpdate::decode(br#"{"Status":"passing","Note":"x"}"#)
                .unwrap_err()
                .to_string(),
            r#"json: unknown field "Note""#
        );
    }
}
