//! Service configuration: the flags and environment variables every service shares (DESIGN §4).
//!
//! [`ServiceArgs`] is what clap parses (flags with environment fallbacks); [`ServiceConfig`] is the
//! checked value the rest of the code uses. Only a service's `main.rs` parses the environment; tests
//! build a [`ServiceConfig`] directly.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use url::Url;

use crate::fault::Faults;
use crate::telemetry::LogFormat;

/// Consul's default agent address, used when `CONSUL_HTTP_ADDR` is unset.
pub const DEFAULT_CONSUL_ADDR: &str = "127.0.0.1:8500";

/// How the registry learns that an instance is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckMode {
    /// The registry probes `GET /health` itself (Consul's HTTP check).
    Http,
    /// The instance heartbeats a TTL check; the registry only waits for it.
    Ttl,
}

/// The flags and environment variables shared by all five services (DESIGN §4).
///
/// Services `#[command(flatten)]` this into their own clap parser and call
/// [`ServiceArgs::into_config`] with their default port.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// Port to listen on (0 = any free port; the bound port is what gets registered).
    /// Defaults to the service's own port.
    #[arg(long, short, env = "PORT")]
    pub port: Option<u16>,

    /// Local address to bind.
    #[arg(long, env = "BIND_ADDRESS", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub bind: IpAddr,

    /// Consul agent address: `host:port`, `http://host:port` or `https://host:port` (Consul's convention).
    #[arg(long = "consul", env = "CONSUL_HTTP_ADDR", default_value = DEFAULT_CONSUL_ADDR)]
    pub consul: ConsulAddress,

    /// Use https for a `host:port` Consul address (`CONSUL_HTTP_SSL`, Go boolean syntax).
    #[arg(long = "consul-ssl", env = "CONSUL_HTTP_SSL", value_parser = parse_go_bool, default_value = "false", action = clap::ArgAction::Set)]
    pub consul_ssl: bool,

    /// ACL token, sent as `X-Consul-Token`.
    #[arg(
        long = "consul-token",
        env = "CONSUL_HTTP_TOKEN",
        hide_env_values = true
    )]
    pub consul_token: Option<String>,

    /// Address other services and the registry use to reach this instance. Defaults to the bind
    /// address when it is a specific one, else the local address this host uses to reach the registry.
    #[arg(long = "advertise-address", env = "SERVICE_ADDRESS")]
    pub advertise_address: Option<String>,

    /// Instance ID in the registry. Defaults to `<name>-<address>-<port>`, stable across restarts
    /// so a restarted instance replaces its own stale entry.
    #[arg(long = "service-id", env = "SERVICE_ID")]
    pub service_id: Option<String>,

    /// How the registry checks this instance's health.
    #[arg(long = "check", env = "SERVICE_CHECK", value_enum, default_value_t = CheckMode::Http)]
    pub check: CheckMode,

    /// Demo fault: milliseconds added to every API request of this instance.
    #[arg(long = "fault-delay-ms", env = "FAULT_DELAY_MS", default_value_t = 0)]
    pub fault_delay_ms: u64,

    /// Demo fault: share of API requests (0.0-1.0) this instance answers with 503.
    #[arg(
        long = "fault-error-rate",
        env = "FAULT_ERROR_RATE",
        default_value_t = 0.0
    )]
    pub fault_error_rate: f64,

    /// Log output format.
    #[arg(long = "log-format", env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

impl ServiceArgs {
    /// Checks the arguments and turns them into a [`ServiceConfig`].
    ///
    /// # Errors
    ///
    /// Fails when a value is malformed (an empty service ID, for example).
    pub fn into_config(self, default_port: u16) -> Result<ServiceConfig, ConfigError> {
        let mut consul = ConsulConfig::new(self.consul);
        if self.consul_ssl {
            consul.address = consul.address.with_https();
        }
        consul.token = self.consul_token.filter(|t| !t.trim().is_empty());
        if let Some(id) = &self.service_id {
            validate_service_id(id)?;
        }
        if let Some(addr) = &self.advertise_address {
            validate_advertise_address(addr)?;
        }
        let faults =
            Faults::new(self.fault_delay_ms, self.fault_error_rate).map_err(ConfigError::Faults)?;
        Ok(ServiceConfig {
            port: self.port.unwrap_or(default_port),
            faults,
            bind: self.bind,
            consul,
            advertise_address: self.advertise_address,
            service_id: self.service_id,
            check: self.check,
            log_format: self.log_format,
            timings: Timings::default(),
        })
    }
}

/// Everything a service needs to run, checked. Built by [`ServiceArgs::into_config`] or, in tests,
/// by [`ServiceConfig::new`] and field updates.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Address to bind.
    pub bind: IpAddr,
    /// How to reach Consul.
    pub consul: ConsulConfig,
    /// Advertised address override (`SERVICE_ADDRESS`).
    pub advertise_address: Option<String>,
    /// Instance ID override (`SERVICE_ID`).
    pub service_id: Option<String>,
    /// Health check style.
    pub check: CheckMode,
    /// Log output format.
    pub log_format: LogFormat,
    /// Check, heartbeat and shutdown timings.
    pub timings: Timings,
    /// Demo faults injected into API routes (off by default).
    pub faults: Faults,
}

impl ServiceConfig {
    /// A configuration for a local run: loopback, an ephemeral port, HTTP checks, default timings.
    pub fn new(consul: ConsulConfig) -> Self {
        Self {
            port: 0,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            consul,
            advertise_address: None,
            service_id: None,
            check: CheckMode::Http,
            log_format: LogFormat::Pretty,
            timings: Timings::default(),
            faults: Faults::default(),
        }
    }
}

/// Timings of the registration lifecycle. The defaults are what production wants; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// How often the registry probes `/health` in HTTP mode; also how often we confirm that the
    /// registry still knows us. 5 s: a dead instance leaves `?passing` within ~5 s even before
    /// clients eject it, at one cheap request per instance per interval.
    pub check_interval: Duration,
    /// Timeout of one registry probe of `/health`. 2 s: a healthy `/health` answers in
    /// microseconds, so 2 s only fails an instance that is really stuck.
    pub check_timeout: Duration,
    /// TTL of the heartbeat check in TTL mode. 15 s, heartbeated every 5 s (a third), so one
    /// lost or slow heartbeat never marks us critical.
    pub ttl: Duration,
    /// `DeregisterCriticalServiceAfter`: how long a critical instance (a `kill -9`ed one) stays in
    /// the catalog. 1 m is Consul's floor; smaller values are raised by the agent anyway.
    pub deregister_critical_after: Duration,
    /// After deregistering on shutdown, keep serving this long so that clients whose watchers
    /// have not yet seen the change do not hit a closed port. 500 ms covers a blocking-query
    /// wake-up (milliseconds) plus a watcher's rate limit.
    pub drain_delay: Duration,
    /// Upper bound for in-flight requests to finish after we stop accepting, before we exit anyway.
    /// 10 s, well inside Docker's default 10 s+ stop grace and Kubernetes' 30 s.
    pub grace_period: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            check_interval: Duration::from_secs(5),
            check_timeout: Duration::from_secs(2),
            ttl: Duration::from_secs(15),
            deregister_critical_after: Duration::from_secs(60),
            drain_delay: Duration::from_millis(500),
            grace_period: Duration::from_secs(10),
        }
    }
}

/// How to reach the Consul HTTP API.
#[derive(Debug, Clone)]
pub struct ConsulConfig {
    /// Base address (scheme, host, port and optional path prefix).
    pub address: ConsulAddress,
    /// ACL token sent as `X-Consul-Token`, if any.
    pub token: Option<String>,
    /// Timeout of every non-blocking call. 5 s: the agent is local or one hop away and answers
    /// writes after a synchronous catalog sync; longer means it is in trouble.
    pub request_timeout: Duration,
    /// Timeout for establishing a connection to the agent. 2 s.
    pub connect_timeout: Duration,
}

impl ConsulConfig {
    /// Default timeouts, no token.
    pub fn new(address: ConsulAddress) -> Self {
        Self {
            address,
            token: None,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// A Consul agent address in any form `CONSUL_HTTP_ADDR` accepts: `host:port`, `http://host:port`
/// or `https://host:port`, optionally followed by a path prefix (for reverse proxies).
///
/// `unix://` sockets, which the Go client also accepts, are refused with a clear error: reqwest
/// does not speak HTTP over unix sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsulAddress(Url);

impl ConsulAddress {
    /// The base URL, always ending in `/`.
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The host name or IP the address points at.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.0.port_or_known_default().unwrap_or(80)
    }

    /// The same address with `https` (what `CONSUL_HTTP_SSL=true` does).
    #[must_use]
    pub fn with_https(mut self) -> Self {
        // Switching between two special schemes cannot fail.
        let _ = self.0.set_scheme("https");
        self
    }
}

impl FromStr for ConsulAddress {
    type Err = ConfigError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ConfigError::ConsulAddress {
                value: raw.to_owned(),
                reason: "it is empty".to_owned(),
            });
        }
        let with_scheme = match raw.split_once("://") {
            Some(("http" | "https", _)) => raw.to_owned(),
            Some(("unix", _)) => {
                return Err(ConfigError::ConsulAddress {
                    value: raw.to_owned(),
                    reason: "unix sockets are not supported; use host:port".to_owned(),
                });
            }
            Some((scheme, _)) => {
                return Err(ConfigError::ConsulAddress {
                    value: raw.to_owned(),
                    reason: format!("Unknown protocol scheme: {scheme}"),
                });
            }
            None => format!("http://{raw}"),
        };
        let mut url = Url::parse(&with_scheme).map_err(|e| ConfigError::ConsulAddress {
            value: raw.to_owned(),
            reason: e.to_string(),
        })?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ConfigError::ConsulAddress {
                value: raw.to_owned(),
                reason: "it has no host".to_owned(),
            });
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::ConsulAddress {
                value: raw.to_owned(),
                reason: "it must not carry a query or fragment".to_owned(),
            });
        }
        // A base URL must end in '/' so that joining "v1/..." keeps the prefix.
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Self(url))
    }
}

impl fmt::Display for ConsulAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `CONSUL_HTTP_ADDR` is not an address we can use.
    #[error("invalid consul address {value:?}: {reason}")]
    ConsulAddress {
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// `SERVICE_ID` is empty or has characters that break URLs and Consul's IDs.
    #[error("invalid service id {0:?}: use 1-128 letters, digits, '-', '_', '.' or ':'")]
    ServiceId(String),
    /// `SERVICE_ADDRESS` is empty or unspecified (Consul refuses 0.0.0.0 and ::).
    #[error("invalid advertise address {0:?}: give an IP or host name others can reach")]
    AdvertiseAddress(String),
    /// `FAULT_ERROR_RATE` is out of range.
    #[error("{0}")]
    Faults(String),
}

/// Checks a service ID: non-empty, bounded, and free of characters that need escaping.
///
/// # Errors
///
/// [`ConfigError::ServiceId`] when it is not usable.
pub fn validate_service_id(id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::ServiceId(id.to_owned()))
    }
}

fn validate_advertise_address(addr: &str) -> Result<(), ConfigError> {
    let unspecified = addr.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
    if addr.trim().is_empty() || unspecified || addr.contains(['/', ' ']) {
        Err(ConfigError::AdvertiseAddress(addr.to_owned()))
    } else {
        Ok(())
    }
}

/// Parses a boolean the way Go's `strconv.ParseBool` does, which is what Consul's tools use for
/// `CONSUL_HTTP_SSL`.
fn parse_go_bool(raw: &str) -> Result<bool, String> {
    match raw {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (use true or false)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServiceArgs,
    }

    fn addr(raw: &str) -> String {
        raw.parse::<ConsulAddress>().unwrap().url().to_string()
    }

    #[test]
    fn consul_address_accepts_every_documented_form() {
        assert_eq!(addr("127.0.0.1:8500"), "http://127.0.0.1:8500/");
        assert_eq!(addr("consul:8500"), "http://consul:8500/");
        assert_eq!(addr("http://consul:8500"), "http://consul:8500/");
        assert_eq!(
            addr("https://consul.example:8501"),
            "https://consul.example:8501/"
        );
        assert_eq!(
            addr("https://proxy.example/consul"),
            "https://proxy.example/consul/"
        );
        assert_eq!(addr("[::1]:8500"), "http://[::1]:8500/");
    }

    #[test]
    fn consul_address_refuses_unknown_schemes_and_empty_values() {
        let err = "ftp://x:1"
            .parse::<ConsulAddress>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("Unknown protocol scheme: ftp"), "{err}");
        assert!("unix:///tmp/consul.sock".parse::<ConsulAddress>().is_err());
        assert!("".parse::<ConsulAddress>().is_err());
        assert!("http://".parse::<ConsulAddress>().is_err());
    }

    #[test]
    fn consul_address_reports_host_and_default_port() {
        let a: ConsulAddress = "https://consul.example".parse().unwrap();
        assert_eq!((a.host(), a.port()), ("consul.example", 443));
        assert_eq!(a.to_string(), "https://consul.example");
    }

    #[test]
    fn consul_ssl_switches_a_bare_address_to_https() {
        let cli = Cli::try_parse_from(["svc", "--consul", "c:8501", "--consul-ssl", "1"]).unwrap();
        let cfg = cli.args.into_config(9000).unwrap();
        assert_eq!(cfg.consul.address.url().as_str(), "https://c:8501/");
    }

    #[test]
    fn args_fall_back_to_the_service_default_port() {
        let cli = Cli::try_parse_from(["svc"]).unwrap();
        let cfg = cli.args.clone().into_config(8082).unwrap();
        assert_eq!(cfg.port, 8082);
        assert_eq!(cfg.check, CheckMode::Http);
        let cli = Cli::try_parse_from(["svc", "--port", "0", "--check", "ttl"]).unwrap();
        let cfg = cli.args.into_config(8082).unwrap();
        assert_eq!((cfg.port, cfg.check), (0, CheckMode::Ttl));
    }

    #[test]
    fn bad_service_id_and_advertise_address_are_refused() {
        for bad in ["", "has space", "a/b", &"x".repeat(129)] {
            assert!(validate_service_id(bad).is_err(), "{bad:?}");
        }
        validate_service_id("rating-service-10.0.0.7-8082").unwrap();
        for bad in ["0.0.0.0", "::", "", "a b"] {
            assert!(validate_advertise_address(bad).is_err(), "{bad:?}");
        }
        validate_advertise_address("rating-service").unwrap();
    }

    #[test]
    fn empty_token_counts_as_no_token() {
        let cli = Cli::try_parse_from(["svc", "--consul-token", " "]).unwrap();
        assert!(cli.args.into_config(1).unwrap().consul.token.is_none());
    }
}
