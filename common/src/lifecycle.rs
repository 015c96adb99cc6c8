//! Runs a service from bound listener to clean exit (DESIGN §5), whatever its framework.
//!
//! [`run`] takes a closure that starts the framework's server with a shutdown future, then:
//!
//! 1. waits until the instance's own `/health` answers 200 (never register what cannot serve);
//! 2. registers and keeps the registration alive ([`crate::registration`]);
//! 3. on the shutdown signal: deregisters first, keeps serving for a short drain delay so clients
//!    whose watchers have not yet seen the change still get answers, then fires the server's
//!    shutdown future and waits for in-flight requests, at most the grace period.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;

use crate::config::{CheckMode, ConsulAddress, ServiceConfig};
use crate::registration;
use crate::registry::{HealthCheck, Registration, Registry};
use crate::shutdown::{self, Trigger};

/// How long to wait for our own `/health` before giving up on starting. 30 s covers a slow
/// first start (a framework warming up, a database migrating) without hanging forever.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Bound on the deregistration call at shutdown: a dead registry must not hold up the exit.
pub const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(3);

/// What a service binary is, fixed at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Name others discover it by, e.g. `rating-service`.
    pub name: &'static str,
    /// Web framework, registered in `Meta`.
    pub framework: &'static str,
    /// Crate version, registered in `Meta`.
    pub version: &'static str,
    /// Port used when `--port`/`PORT` is not given.
    pub default_port: u16,
}

/// This running instance: who it is and where others reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalInstance {
    /// The service it belongs to.
    pub info: ServiceInfo,
    /// Instance ID (`SERVICE_ID`, or `<name>-<address>-<port>`).
    pub id: String,
    /// Advertised address.
    pub address: String,
    /// Bound (and advertised) port.
    pub port: u16,
    /// The socket address the listener is bound to.
    pub bound: SocketAddr,
}

impl LocalInstance {
    /// Works out the instance's identity from its configuration and bound listener.
    ///
    /// The advertised address is, in order: `SERVICE_ADDRESS`; the bind address if it is a
    /// specific one; else the local address this host uses to reach the registry (so a container
    /// advertises its own IP on the registry's network and a laptop 127.0.0.1).
    pub async fn resolve(info: ServiceInfo, config: &ServiceConfig, bound: SocketAddr) -> Self {
        let address = match &config.advertise_address {
            Some(address) => address.clone(),
            None if !bound.ip().is_unspecified() => bound.ip().to_string(),
            None => route_to(&config.consul.address).await.to_string(),
        };
        let id = config.service_id.clone().unwrap_or_else(|| {
            let raw = format!("{}-{}-{}", info.name, address, bound.port());
            raw.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        });
        Self {
            info,
            id,
            address,
            port: bound.port(),
            bound,
        }
    }

    /// `host:port` others use.
    pub fn authority(&self) -> String {
        crate::http::authority(&self.address, self.port)
    }

    /// The URL this process can reach itself at (loopback when bound to all interfaces).
    pub fn local_url(&self, path: &str) -> String {
        crate::http::local_url(self.bound, path)
    }

    /// The registry entry for this instance.
    pub fn registration(&self, config: &ServiceConfig) -> Registration {
        let t = &config.timings;
        let check = match config.check {
            CheckMode::Http => HealthCheck::Http {
                url: format!("http://{}/health", self.authority()),
                interval: t.check_interval,
                timeout: t.check_timeout,
            },
            CheckMode::Ttl => HealthCheck::Ttl { ttl: t.ttl },
        };
        Registration {
            id: self.id.clone(),
            name: self.info.name.to_owned(),
            address: self.address.clone(),
            port: self.port,
            tags: vec![self.info.framework.to_owned()],
            meta: BTreeMap::from([
                ("framework".to_owned(), self.info.framework.to_owned()),
                ("version".to_owned(), self.info.version.to_owned()),
            ]),
            check,
            deregister_critical_after: t.deregister_critical_after,
        }
    }
}

/// How long to keep trying to resolve the registry's name before advertising loopback. A
/// container can start before its DNS entry for the registry answers; giving up at once would
/// advertise an address no other container can reach, for the instance's whole life.
const RESOLVE_PATIENCE: Duration = Duration::from_secs(30);

/// The local IP used to reach the registry, found by "connecting" a UDP socket (no packet is
/// sent). Retries the registry's name for [`RESOLVE_PATIENCE`], then falls back to 127.0.0.1.
async fn route_to(registry: &ConsulAddress) -> IpAddr {
    let target = format!("{}:{}", registry.host(), registry.port());
    let deadline = tokio::time::Instant::now() + RESOLVE_PATIENCE;
    let remote = loop {
        let lookup =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::lookup_host(&target)).await;
        if let Some(remote) = lookup.ok().and_then(Result::ok).and_then(|mut a| a.next()) {
            break remote;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(registry = %registry, "cannot resolve the registry; advertising 127.0.0.1");
            return IpAddr::V4(Ipv4Addr::LOCALHOST);
        }
        tracing::info!(registry = %registry, "cannot resolve the registry yet; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let local_any: SocketAddr = if remote.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let routed = async {
        let socket = tokio::net::UdpSocket::bind(local_any).await?;
        socket.connect(remote).await?;
        socket.local_addr()
    };
    match routed.await {
        Ok(local) if !local.ip().is_unspecified() => local.ip(),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// Serves until `shutdown` resolves, registered in `registry` for the whole time in between.
///
/// `serve` starts the framework's server and must stop it gracefully when the future it is
/// given resolves.
///
/// # Errors
///
/// Fails if the server fails to start or stops on its own, or if `/health` never answers.
/// Deregistration failures at shutdown are logged, not returned: the process still exits 0.
pub async fn run<S, F, E>(
    instance: &LocalInstance,
    config: &ServiceConfig,
    registry: Arc<dyn Registry>,
    shutdown: impl Future<Output = ()> + Send,
    serve: S,
) -> anyhow::Result<()>
where
    S: FnOnce(shutdown::Stopping) -> F,
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<anyhow::Error> + Send + 'static,
{
    let stop = Trigger::new();
    let mut server: JoinHandle<Result<(), E>> = tokio::spawn(serve(stop.wait()));
    tracing::info!(
        service = instance.info.name,
        id = %instance.id,
        listen = %instance.bound,
        advertise = %instance.authority(),
        framework = instance.info.framework,
        "serving"
    );

    let health_url = instance.local_url("/health");
    tokio::select! {
        ready = wait_until_healthy(&health_url) => ready?,
        ended = &mut server => return server_ended(ended),
    }

    let registration = instance.registration(config);
    let keepalive = registration::keepalive_interval(&registration.check);
    let registered = registration::spawn(registry, registration, keepalive);

    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => {}
        ended = &mut server => {
            let _ = registered.deregister(DEREGISTER_TIMEOUT).await;
            return server_ended(ended);
        }
    }

    tracing::info!("shutting down: deregistering first");
    if let Err(e) = registered.deregister(DEREGISTER_TIMEOUT).await {
        tracing::warn!(error = %e, "deregistration failed; the registry's health check will drop us");
    }
    tokio::time::sleep(config.timings.drain_delay).await;
    stop.fire();
    match shutdown::with_grace(&mut server, &stop, config.timings.grace_period).await {
        Some(ended) => {
            if let Err(e) = flatten(ended) {
                tracing::warn!(error = %e, "server reported an error while stopping");
            }
        }
        None => server.abort(),
    }
    tracing::info!("stopped");
    Ok(())
}

fn flatten<E: Into<anyhow::Error>>(
    ended: Result<Result<(), E>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match ended {
        Ok(result) => result.map_err(Into::into),
        Err(e) => Err(anyhow::anyhow!("server task failed: {e}")),
    }
}

fn server_ended<E: Into<anyhow::Error>>(
    ended: Result<Result<(), E>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    flatten(ended).context("server stopped before shutdown was requested")?;
    anyhow::bail!("server stopped before shutdown was requested")
}

/// Polls `url` until it answers 200, bounded by [`STARTUP_TIMEOUT`].
async fn wait_until_healthy(url: &str) -> anyhow::Result<()> {
    crate::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        // Our own port: never through an HTTP_PROXY from the environment.
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
        .context("building the self-check client")?;
    let probe = async {
        loop {
            match client.get(url).send().await {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => tracing::debug!(status = %response.status(), "not healthy yet"),
                Err(e) => tracing::debug!(error = %e, "not answering yet"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(STARTUP_TIMEOUT, probe)
        .await
        .with_context(|| format!("{url} did not answer 200 within {STARTUP_TIMEOUT:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsulConfig;

    const INFO: ServiceInfo = ServiceInfo {
        name: "rating-service",
        framework: "poem",
        version: "0.1.0",
        default_port: 8082,
    };

    fn config() -> ServiceConfig {
        ServiceConfig::new(ConsulConfig::new("127.0.0.1:8500".parse().unwrap()))
    }

    #[tokio::test]
    async fn identity_defaults_to_name_address_port() {
        let me = LocalInstance::resolve(INFO, &config(), "127.0.0.1:9082".parse().unwrap()).await;
        assert_eq!(me.id, "rating-service-127.0.0.1-9082");
        assert_eq!(me.authority(), "127.0.0.1:9082");
    }

    #[tokio::test]
    async fn unspecified_bind_advertises_the_route_to_the_registry() {
        let me = LocalInstance::resolve(INFO, &config(), "0.0.0.0:9082".parse().unwrap()).await;
        assert_eq!(
            me.address, "127.0.0.1",
            "a loopback registry is reached over loopback"
        );
        assert_eq!(me.local_url("/health"), "http://127.0.0.1:9082/health");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unresolvable_registry_is_retried_then_loopback_is_advertised() {
        let cfg = ServiceConfig::new(ConsulConfig::new("registry.invalid:8500".parse().unwrap()));
        let started = tokio::time::Instant::now();
        let me = LocalInstance::resolve(INFO, &cfg, "0.0.0.0:9082".parse().unwrap()).await;
        assert_eq!(me.address, "127.0.0.1");
        assert!(
            started.elapsed() >= RESOLVE_PATIENCE,
            "gave up after {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn overrides_win_and_ipv6_ids_stay_url_safe() {
        let mut cfg = config();
        cfg.advertise_address = Some("::1".into());
        let me = LocalInstance::resolve(INFO, &cfg, "[::]:9082".parse().unwrap()).await;
        assert_eq!(me.id, "rating-service---1-9082");
        assert_eq!(me.authority(), "[::1]:9082");
        cfg.service_id = Some("rating-a".into());
        let me = LocalInstance::resolve(INFO, &cfg, "[::]:9082".parse().unwrap()).await;
        assert_eq!(me.id, "rating-a");
    }

    #[tokio::test]
    async fn registration_carries_framework_meta_and_the_configured_check() {
        let mut cfg = config();
        let me = LocalInstance::resolve(INFO, &cfg, "10.1.2.3:8082".parse().unwrap()).await;
        let reg = me.registration(&cfg);
        assert_eq!(reg.meta["framework"], "poem");
        assert_eq!(reg.meta["version"], "0.1.0");
        assert_eq!(
            reg.check,
            HealthCheck::Http {
                url: "http://10.1.2.3:8082/health".into(),
                interval: cfg.timings.check_interval,
                timeout: cfg.timings.check_timeout,
            }
        );
        cfg.check = CheckMode::Ttl;
        assert_eq!(
            me.registration(&cfg).check,
            HealthCheck::Ttl {
                ttl: cfg.timings.ttl
            }
        );
    }
}
