//! What every service binary does before its framework takes over: answer the `healthcheck`
//! subcommand, or parse the configuration, start logging, bind the port and build the Consul
//! client, then hand all of that to the service's `run`.
//!
//! It lives here, not in five `main.rs` files, so that the five binaries and `devstack` (which
//! runs any service inside its own process image) start a service in exactly one way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::config::{ServiceArgs, ServiceConfig};
use crate::lifecycle::ServiceInfo;
use crate::registry::{ConsulRegistry, Registry};

/// How long `healthcheck` waits for `/health`. Docker's own probe timeout defaults to 30 s; two
/// seconds is ample for a loopback call and keeps a wedged instance from looking alive.
pub const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Subcommands every service binary accepts besides "serve" (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Exit 0 if this service answers `GET /health` with 200 on loopback within 2 s, else 1.
    /// For container health checks: the runtime image needs no curl or wget.
    Healthcheck,
}

/// Runs `command`, or serves: configures, logs, binds and calls `serve(config, listener,
/// registry)`, returning once it does.
///
/// # Errors
///
/// A bad configuration, a port that cannot be bound, a Consul address that cannot be used, an
/// error from `serve`, or a failed health check.
pub async fn launch<S, F>(
    info: ServiceInfo,
    command: Option<Command>,
    args: ServiceArgs,
    serve: S,
) -> anyhow::Result<()>
where
    S: FnOnce(ServiceConfig, TcpListener, Arc<dyn Registry>) -> F,
    F: Future<Output = anyhow::Result<()>>,
{
    let config = args
        .into_config(info.default_port)
        .context("reading the configuration")?;
    if command == Some(Command::Healthcheck) {
        return healthcheck(&config).await;
    }
    crate::telemetry::init(config.log_format)?;
    let listener = TcpListener::bind((config.bind, config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.bind, config.port))?;
    let registry =
        Arc::new(ConsulRegistry::new(&config.consul).context("building the consul client")?);
    serve(config, listener, registry).await
}

/// `GET /health` on the port this configuration would serve, from the same host.
///
/// # Errors
///
/// The port is 0 (nothing to probe), the request fails or times out, or the answer is not 200.
pub async fn healthcheck(config: &ServiceConfig) -> anyhow::Result<()> {
    if config.port == 0 {
        bail!("healthcheck needs the service's fixed port (--port or PORT), not 0");
    }
    let url = crate::http::local_url(SocketAddr::new(config.bind, config.port), "/health");
    crate::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        // Our own loopback port: never through an HTTP_PROXY from the environment.
        .no_proxy()
        .timeout(HEALTHCHECK_TIMEOUT)
        .build()
        .context("building the HTTP client")?;
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        bail!("GET {url} answered {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsulConfig;

    fn config_for(port: u16) -> ServiceConfig {
        let mut config = ServiceConfig::new(ConsulConfig::new(
            crate::config::DEFAULT_CONSUL_ADDR.parse().unwrap(),
        ));
        config.port = port;
        config
    }

    #[tokio::test]
    async fn healthcheck_passes_on_200_and_fails_otherwise() {
        use axum::http::StatusCode;
        use axum::routing::get;

        let ok = axum::Router::new().route("/health", get(|| async { "{}" }));
        let sick = axum::Router::new().route(
            "/health",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "{}") }),
        );
        let mut ports = Vec::new();
        for app in [ok, sick] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            ports.push(listener.local_addr().unwrap().port());
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        healthcheck(&config_for(ports[0])).await.unwrap();
        let err = healthcheck(&config_for(ports[1])).await.unwrap_err();
        assert!(err.to_string().contains("503"), "{err:#}");
    }

    #[tokio::test]
    async fn healthcheck_fails_when_nothing_listens_or_port_is_zero() {
        let unused = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        assert!(healthcheck(&config_for(unused)).await.is_err());
        let err = healthcheck(&config_for(0)).await.unwrap_err();
        assert!(err.to_string().contains("fixed port"), "{err:#}");
    }
}
