//! The registration lifecycle and the discovery watcher end to end against the dev registry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::config::{CheckMode, ConsulConfig, ServiceConfig};
use common::discovery::{self, WatchOptions};
use common::lifecycle::{self, LocalInstance, ServiceInfo};
use common::registry::{ConsulRegistry, Registry};
use common::shutdown::Trigger;
use dev_registry::{Options, RunningRegistry};
use tokio::task::JoinHandle;

const INFO: ServiceInfo = ServiceInfo {
    name: "demo-service",
    framework: "axum",
    version: "0.0.0",
    default_port: 0,
};

fn options() -> Options {
    Options {
        min_check_interval: Duration::from_millis(100),
        ..Options::default()
    }
}

fn consul(registry: &RunningRegistry) -> Arc<ConsulRegistry> {
    Arc::new(ConsulRegistry::new(&ConsulConfig::new(registry.url().parse().unwrap())).unwrap())
}

/// Starts a small axum service through `lifecycle::run`, registered in `registry`.
async fn start_service(
    registry: &RunningRegistry,
    check: CheckMode,
) -> (Trigger, JoinHandle<anyhow::Result<()>>, String) {
    let mut config = ServiceConfig::new(ConsulConfig::new(registry.url().parse().unwrap()));
    config.check = check;
    config.timings.check_interval = Duration::from_millis(300);
    config.timings.ttl = Duration::from_millis(900);
    config.timings.drain_delay = Duration::ZERO;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let instance = LocalInstance::resolve(INFO, &config, listener.local_addr().unwrap()).await;
    let id = instance.id.clone();
    let stop = Trigger::new();
    let shutdown = stop.wait();
    let registry: Arc<dyn Registry> = consul(registry);
    let task = tokio::spawn(async move {
        let app = Router::new().route("/health", get(|| async { "ok" }));
        lifecycle::run(
            &instance,
            &config,
            registry,
            shutdown,
            |stopping| async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopping)
                    .await
            },
        )
        .await
    });
    (stop, task, id)
}

async fn passing_ids(registry: &RunningRegistry) -> Vec<String> {
    consul(registry)
        .healthy_instances("demo-service", None)
        .await
        .unwrap()
        .instances
        .into_iter()
        .map(|i| i.id)
        .collect()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn an_instance_is_passing_right_after_start_and_gone_after_shutdown() {
    for check in [CheckMode::Http, CheckMode::Ttl] {
        let registry = RunningRegistry::spawn(options()).await.unwrap();
        let (stop, task, id) = start_service(&registry, check).await;
        eventually("registered", async || {
            passing_ids(&registry).await == std::slice::from_ref(&id)
        })
        .await;
        // Still passing after several check intervals: the registry's probes (HTTP) or our
        // heartbeats (TTL) keep it so.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(
            passing_ids(&registry).await,
            std::slice::from_ref(&id),
            "{check:?}"
        );

        stop.fire();
        task.await.unwrap().unwrap();
        let agent = consul(&registry);
        assert!(
            !agent.is_registered(&id).await.unwrap(),
            "deregistered on shutdown"
        );
        assert!(passing_ids(&registry).await.is_empty());
        registry.shutdown().await;
    }
}

#[tokio::test]
async fn an_instance_registers_again_after_the_registry_restarts_empty() {
    for check in [CheckMode::Http, CheckMode::Ttl] {
        let registry = RunningRegistry::spawn(options()).await.unwrap();
        let addr = registry.addr();
        let (stop, task, id) = start_service(&registry, check).await;
        eventually("registered", async || {
            passing_ids(&registry).await == std::slice::from_ref(&id)
        })
        .await;

        registry.kill();
        let registry = RunningRegistry::spawn_on(addr, options()).await.unwrap();
        assert!(passing_ids(&registry).await.is_empty(), "restarted empty");
        eventually("registered again", async || {
            passing_ids(&registry).await == std::slice::from_ref(&id)
        })
        .await;

        stop.fire();
        task.await.unwrap().unwrap();
        registry.shutdown().await;
    }
}

#[tokio::test]
async fn a_service_keeps_serving_and_registers_once_the_registry_appears() {
    // Reserve a port for the registry, then start the service before the registry exists.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config =
        ServiceConfig::new(ConsulConfig::new(format!("http://{addr}").parse().unwrap()));
    config.timings.drain_delay = Duration::ZERO;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let instance = LocalInstance::resolve(INFO, &config, listener.local_addr().unwrap()).await;
    let health = instance.local_url("/health");
    let stop = Trigger::new();
    let shutdown = stop.wait();
    let agent: Arc<dyn Registry> = Arc::new(ConsulRegistry::new(&config.consul).unwrap());
    let task = tokio::spawn(async move {
        let app = Router::new().route("/health", get(|| async { "ok" }));
        lifecycle::run(&instance, &config, agent, shutdown, |stopping| async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopping)
                .await
        })
        .await
    });
    common::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    eventually("serving without a registry", async || {
        http.get(&health)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    let registry = RunningRegistry::spawn_on(addr, options()).await.unwrap();
    eventually("registered once the registry is up", async || {
        passing_ids(&registry).await.len() == 1
    })
    .await;
    stop.fire();
    task.await.unwrap().unwrap();
    registry.shutdown().await;
}

#[tokio::test]
async fn a_watcher_learns_of_a_new_instance_through_a_blocking_query_not_a_poll() {
    let registry = RunningRegistry::spawn(options()).await.unwrap();
    let watcher = discovery::watch(
        consul(&registry),
        "demo-service",
        WatchOptions {
            wait: Duration::from_secs(300),
            ..WatchOptions::default()
        },
    );
    watcher.wait_for(|s| s.refreshed_at.is_some()).await;
    // Let the watcher park in its blocking query.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = registry.request_count();

    let (stop, task, id) = start_service(&registry, CheckMode::Ttl).await;
    let snapshot = tokio::time::timeout(
        Duration::from_secs(10),
        watcher.wait_for(|s| s.instances.iter().any(|i| i.id == id)),
    )
    .await
    .expect("a 5-minute blocking query woke on the registration");
    assert!(!snapshot.is_stale());
    // The registration itself and a heartbeat or two; a polling watcher would add dozens.
    let requests = registry.request_count() - before;
    assert!(requests < 10, "{requests} registry requests");

    stop.fire();
    task.await.unwrap().unwrap();
    let gone = tokio::time::timeout(
        Duration::from_secs(10),
        watcher.wait_for(|s| s.instances.is_empty()),
    )
    .await;
    assert!(gone.is_ok(), "deregistration reached the watcher");
    registry.shutdown().await;
}
