//! Turns a decoded registration into catalog records: ID defaults, tagged-address
//! auto-fill, check ID/name derivation and the agent's floors (reference §1.4–§1.5, §8).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::model::{CheckInfo, Service, Status};
use crate::checks::{HttpProbe, Probe, TcpProbe, Thresholds};
use crate::duration;
use crate::options::Options;
use crate::wire::request::{CheckDefinition, ServiceAddress, ServiceDefinition};

/// Default check output cap, Consul's `check_output_max_size` (§8.1, §9.1).
pub(crate) const DEFAULT_OUTPUT_CAP: usize = 4096;

/// Default per-probe timeout for HTTP and TCP checks (§1.3 `Timeout`).
const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A registration that failed after validation, inside the agent (Consul answers 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegisterError {
    /// A `lan_ipv4`/`wan_ipv4` (or v6) tagged address that is not such an address.
    #[error("Service tagged address {} must be a valid {family} address", duration::go_quote(.key))]
    InvalidTaggedAddress {
        /// The tagged-address key.
        key: String,
        /// `ipv4` or `ipv6`.
        family: &'static str,
    },
    /// Script and docker checks are refused from the HTTP API by default (§1.3).
    #[error(
        "Scripts are disabled on this agent from remote calls; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true"
    )]
    ScriptsDisabled,
    /// A check kind this stand-in does not execute.
    #[error("dev-registry does not run {0} checks; use an HTTP, TCP or TTL check")]
    Unsupported(&'static str),
}

/// A registration ready to be stored.
#[derive(Debug)]
pub(crate) struct Registration {
    /// The service instance.
    pub(crate) service: Service,
    /// Its checks, in registration order.
    pub(crate) checks: Vec<NewCheck>,
}

/// One check of a [`Registration`].
#[derive(Debug)]
pub(crate) struct NewCheck {
    /// Visible fields; `status` is the initial status.
    pub(crate) info: CheckInfo,
    /// How it runs.
    pub(crate) probe: Probe,
    /// Output cap in bytes.
    pub(crate) output_cap: usize,
    /// Reap timeout, raised to the floor.
    pub(crate) deregister_after: Option<Duration>,
}

/// Builds the records for `def`, applying Consul's defaults and floors.
///
/// `def` has passed the handler's validation (name present, checks valid, statuses valid).
pub(crate) fn prepare(
    def: &ServiceDefinition,
    options: &Options,
) -> Result<Registration, RegisterError> {
    let id = if def.id.is_empty() {
        def.name.clone()
    } else {
        def.id.clone()
    };
    let mut tagged_addresses = def.tagged_addresses.clone();
    let fill = |keys: [&str; 2], tagged: &mut std::collections::BTreeMap<_, _>| {
        for key in keys {
            tagged
                .entry(key.to_owned())
                .or_insert_with(|| ServiceAddress {
                    address: def.address.clone(),
                    port: def.port,
                });
        }
    };
    match def.address.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => fill(["lan_ipv4", "wan_ipv4"], &mut tagged_addresses),
        Ok(IpAddr::V6(_)) => fill(["lan_ipv6", "wan_ipv6"], &mut tagged_addresses),
        Err(_) => {}
    }
    for (key, family) in [
        ("lan_ipv4", "ipv4"),
        ("wan_ipv4", "ipv4"),
        ("lan_ipv6", "ipv6"),
        ("wan_ipv6", "ipv6"),
    ] {
        if let Some(tagged) = tagged_addresses.get(key) {
            let valid = if family == "ipv4" {
                tagged.address.parse::<Ipv4Addr>().is_ok()
            } else {
                tagged.address.parse::<Ipv6Addr>().is_ok()
            };
            if !valid {
                return Err(RegisterError::InvalidTaggedAddress {
                    key: key.to_owned(),
                    family,
                });
            }
        }
    }
    let service = Service {
        kind: def.kind.clone(),
        id,
        name: def.name.clone(),
        tags: def.tags.clone(),
        address: def.address.clone(),
        tagged_addresses,
        meta: def.meta.clone(),
        port: def.port,
        socket_path: def.socket_path.clone(),
        weights: def.weights.unwrap_or_default(),
        enable_tag_override: def.enable_tag_override,
        locality: def.locality.clone(),
    };
    let total = def.all_checks().count();
    let checks = def
        .all_checks()
        .enumerate()
        .map(|(position, check)| prepare_check(&service, check, position, total, options))
        .collect::<Result<_, _>>()?;
    Ok(Registration { service, checks })
}

/// Builds one check: derived ID and name (§1.4), initial status (§1.5), floors (§8).
fn prepare_check(
    service: &Service,
    def: &CheckDefinition,
    position: usize,
    total: usize,
    options: &Options,
) -> Result<NewCheck, RegisterError> {
    let id = match (def.check_id.is_empty(), total) {
        (false, _) => def.check_id.clone(),
        (true, 1) => format!("service:{}", service.id),
        (true, _) => format!("service:{}:{}", service.id, position + 1),
    };
    let name = if def.name.is_empty() {
        format!("Service '{}' check", service.name)
    } else {
        def.name.clone()
    };
    let type_name = def.type_name();
    let positive = |nanos: i64| u64::try_from(nanos).ok().filter(|n| *n > 0);
    let interval = positive(def.interval).map(Duration::from_nanos);
    let timeout = positive(def.timeout).map(Duration::from_nanos);
    let probe = match type_name {
        "ttl" => Probe::Ttl {
            ttl: Duration::from_nanos(positive(def.ttl).unwrap_or(1)),
        },
        "http" | "tcp" => {
            let requested = interval.unwrap_or(options.min_check_interval);
            let interval = if requested < options.min_check_interval {
                tracing::warn!(
                    check = %id,
                    interval = %duration::format(requested),
                    minimum = %duration::format(options.min_check_interval),
                    "check interval below minimum; raised"
                );
                options.min_check_interval
            } else {
                requested
            };
            let thresholds = Thresholds::new(
                def.success_before_passing,
                def.failures_before_warning,
                def.failures_before_critical,
            );
            let timeout = timeout.unwrap_or(DEFAULT_PROBE_TIMEOUT);
            if type_name == "http" {
                Probe::Http(HttpProbe {
                    url: def.http.clone(),
                    method: if def.method.is_empty() {
                        "GET".to_owned()
                    } else {
                        def.method.clone()
                    },
                    header: def.header.clone(),
                    body: def.body.clone(),
                    disable_redirects: def.disable_redirects,
                    tls_skip_verify: def.tls_skip_verify,
                    timeout,
                    interval,
                    thresholds,
                })
            } else {
                Probe::Tcp(TcpProbe {
                    address: def.tcp.clone(),
                    timeout,
                    interval,
                    thresholds,
                })
            }
        }
        "script" | "docker" => return Err(RegisterError::ScriptsDisabled),
        "" => return Err(RegisterError::Unsupported("untyped")),
        other => return Err(RegisterError::Unsupported(other)),
    };
    let output_cap = usize::try_from(def.output_max_size)
        .ok()
        .filter(|cap| *cap > 0)
        .map_or(DEFAULT_OUTPUT_CAP, |cap| cap.min(DEFAULT_OUTPUT_CAP));
    let deregister_after = positive(def.deregister_critical_service_after)
        .map(Duration::from_nanos)
        .map(|after| {
            if after < options.deregister_floor {
                tracing::warn!(
                    check = %id,
                    requested = %duration::format(after),
                    floor = %duration::format(options.deregister_floor),
                    "DeregisterCriticalServiceAfter below the floor; raised"
                );
                options.deregister_floor
            } else {
                after
            }
        });
    let display = |d: Option<Duration>| d.map(duration::format).unwrap_or_default();
    Ok(NewCheck {
        info: CheckInfo {
            id,
            name,
            notes: def.notes.clone(),
            status: Status::parse(&def.status).unwrap_or(Status::Critical),
            service_id: service.id.clone(),
            service_name: service.name.clone(),
            service_tags: service.tags.clone(),
            type_name,
            interval: display(interval),
            timeout: display(timeout),
        },
        probe,
        output_cap,
        deregister_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepare_json(json: &str) -> Result<Registration, RegisterError> {
        let def = ServiceDefinition::decode(json.as_bytes()).unwrap();
        prepare(&def, &Options::default())
    }

    #[test]
    fn check_ids_count_positions_over_the_combined_list() {
        let reg = prepare_json(
            r#"{"Name":"web","ID":"web-1","Checks":[{"CheckID":"x","TTL":"1s"},{"TTL":"1s"}]}"#,
        )
        .unwrap();
        let ids: Vec<_> = reg.checks.iter().map(|c| c.info.id.as_str()).collect();
        assert_eq!(ids, ["x", "service:web-1:2"]);

        let reg = prepare_json(r#"{"Name":"web","Check":{"TTL":"1s"}}"#).unwrap();
        assert_eq!(reg.checks[0].info.id, "service:web");
        assert_eq!(reg.checks[0].info.name, "Service 'web' check");
        assert_eq!(reg.checks[0].info.status, Status::Critical);
    }

    #[test]
    fn ipv4_addresses_get_lan_and_wan_tagged_addresses() {
        let reg = prepare_json(r#"{"Name":"web","Address":"10.0.0.1","Port":80}"#).unwrap();
        let keys: Vec<_> = reg.service.tagged_addresses.keys().cloned().collect();
        assert_eq!(keys, ["lan_ipv4", "wan_ipv4"]);
        assert_eq!(reg.service.tagged_addresses["lan_ipv4"].port, 80);
        assert!(
            prepare_json(r#"{"Name":"web","Address":"db.local"}"#)
                .unwrap()
                .service
                .tagged_addresses
                .is_empty()
        );
    }

    #[test]
    fn invalid_ipv4_tagged_address_is_an_agent_error() {
        let err = prepare_json(
            r#"{"Name":"web","TaggedAddresses":{"lan_ipv4":{"Address":"nope","Port":1}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Service tagged address "lan_ipv4" must be a valid ipv4 address"#
        );
    }

    #[test]
    fn floors_raise_short_intervals_and_reap_timeouts() {
        let reg = prepare_json(
            r#"{"Name":"web","Check":{"TCP":"x:1","Interval":"10ms","DeregisterCriticalServiceAfter":"1s"}}"#,
        )
        .unwrap();
        let check = &reg.checks[0];
        let Probe::Tcp(tcp) = &check.probe else {
            panic!("expected a TCP probe");
        };
        assert_eq!(tcp.interval, Duration::from_secs(1));
        assert_eq!(check.deregister_after, Some(Duration::from_secs(60)));
        assert_eq!(check.info.timeout, "");
    }

    #[test]
    fn script_checks_are_refused() {
        assert_eq!(
            prepare_json(r#"{"Name":"web","Check":{"Args":["true"],"Interval":"1s"}}"#)
                .unwrap_err(),
            RegisterError::ScriptsDisabled
        );
    }
}
