//! The `dev-registry` command line: flags with environment fallbacks, turned into
//! [`Options`] and a bind address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::duration;
use crate::options::{DEFAULT_NODE_NAME, Options};

/// Consul's default HTTP port (§0).
const DEFAULT_PORT: u16 = 8500;

/// A stand-in for `consul agent -dev`: Consul's service-discovery HTTP API, in memory.
///
/// Durations use Go syntax, as Consul does: `90s`, `1m30s`, `500ms`, `2h`.
#[derive(Debug, Clone, Parser)]
#[command(name = "dev-registry", version)]
pub struct Cli {
    /// Port to listen on.
    #[arg(long, env = "DEV_REGISTRY_PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Address to listen on. `0.0.0.0` serves every interface (the node address
    /// then still reads 127.0.0.1, as with `consul agent -dev -client 0.0.0.0`).
    #[arg(long, env = "DEV_REGISTRY_BIND", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,

    /// Emulate ACLs: default policy deny, this is the only valid token.
    #[arg(long, env = "DEV_REGISTRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Node name reported in every response.
    #[arg(long, env = "DEV_REGISTRY_NODE_NAME", default_value = DEFAULT_NODE_NAME)]
    pub node_name: String,

    /// Smallest DeregisterCriticalServiceAfter (Consul: 1m, not configurable).
    #[arg(long, env = "DEV_REGISTRY_DEREGISTER_FLOOR", value_parser = parse_duration,
          default_value = "1m")]
    pub deregister_floor: Duration,

    /// How often services critical for too long are reaped (Consul: 30s).
    #[arg(long, env = "DEV_REGISTRY_REAP_INTERVAL", value_parser = parse_duration,
          default_value = "30s")]
    pub reap_interval: Duration,

    /// Smallest HTTP/TCP check interval (Consul: 1s).
    #[arg(long, env = "DEV_REGISTRY_MIN_CHECK_INTERVAL", value_parser = parse_duration,
          default_value = "1s")]
    pub min_check_interval: Duration,
}

impl Cli {
    /// The address to bind.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The registry options these flags describe.
    pub fn options(&self) -> Options {
        Options {
            node_name: self.node_name.clone(),
            token: self.token.clone(),
            deregister_floor: self.deregister_floor,
            reap_interval: self.reap_interval,
            min_check_interval: self.min_check_interval,
            ..Options::default()
        }
    }
}

/// Parses a non-negative Go duration flag.
fn parse_duration(text: &str) -> Result<Duration, duration::InvalidDuration> {
    duration::parse(text)
}

impl Cli {
    /// Serves until SIGINT or SIGTERM: what the binary does, and what `devstack` runs in a child.
    ///
    /// # Errors
    ///
    /// The address cannot be bound, or serving fails.
    pub async fn run(self) -> anyhow::Result<()> {
        tracing_subscriber::fmt()
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
            )
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            // A broken stdout drops log lines instead of panicking (see common::telemetry).
            .log_internal_errors(false)
            .init();
        let listener = tokio::net::TcpListener::bind(self.listen_addr())
            .await
            .with_context(|| format!("binding {}", self.listen_addr()))?;
        let url = format!("http://{}", listener.local_addr()?);
        tracing::info!(%url, ui = %format!("{url}/ui/"), acl = self.token.is_some(), "dev-registry listening");
        crate::serve(listener, self.options(), shutdown_signal())
            .await
            .context("serving")
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_a_dev_agent() {
        // The flag defaults are literals; they must stay equal to `Options::default()`.
        let cli = Cli::try_parse_from(["dev-registry"]).unwrap();
        assert_eq!(cli.listen_addr(), "127.0.0.1:8500".parse().unwrap());
        assert_eq!(cli.options(), Options::default());
    }

    #[test]
    fn durations_take_go_syntax() {
        let cli = Cli::try_parse_from([
            "dev-registry",
            "--deregister-floor",
            "5s",
            "--reap-interval",
            "500ms",
            "--min-check-interval",
            "100ms",
        ])
        .unwrap();
        let options = cli.options();
        assert_eq!(options.deregister_floor, Duration::from_secs(5));
        assert_eq!(options.reap_interval, Duration::from_millis(500));
        assert_eq!(options.min_check_interval, Duration::from_millis(100));
        assert!(Cli::try_parse_from(["dev-registry", "--reap-interval", "5"]).is_err());
    }
}
