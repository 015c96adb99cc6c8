//! The upstream client against real local HTTP servers that die, refuse, answer 503 or hang.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use common::discovery::{self, ServiceWatcher, WatchOptions};
use common::registry::{HealthCheck, MemoryRegistry, Registration, Registry};
use common::upstream::{
    Balance, EjectionPolicy, Strategy, Upstream, UpstreamError, UpstreamOptions, UpstreamRequest,
};
use reqwest::Method;
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;

const OK: u8 = 0;
const UNAVAILABLE: u8 = 1;
const HANG: u8 = 2;

/// A test instance whose behaviour can be switched while it runs.
struct Backend {
    id: String,
    port: u16,
    mode: Arc<AtomicU8>,
    hits: Arc<AtomicUsize>,
    last_request_id: Arc<std::sync::Mutex<Option<String>>>,
    server: JoinHandle<()>,
}

#[derive(Clone)]
struct BackendState {
    id: String,
    mode: Arc<AtomicU8>,
    hits: Arc<AtomicUsize>,
    last_request_id: Arc<std::sync::Mutex<Option<String>>>,
}

async fn handle(State(s): State<BackendState>, headers: HeaderMap) -> (StatusCode, String) {
    s.hits.fetch_add(1, Ordering::SeqCst);
    *s.last_request_id.lock().unwrap() = headers
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    match s.mode.load(Ordering::SeqCst) {
        UNAVAILABLE => (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into()),
        HANG => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            (StatusCode::OK, "late".into())
        }
        _ => (StatusCode::OK, s.id.clone()),
    }
}

impl Backend {
    async fn start(id: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = BackendState {
            id: id.to_owned(),
            mode: Arc::default(),
            hits: Arc::default(),
            last_request_id: Arc::default(),
        };
        let app = Router::new()
            .fallback(any(handle))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            id: id.to_owned(),
            port,
            mode: state.mode,
            hits: state.hits,
            last_request_id: state.last_request_id,
            server,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops the server: its port now refuses connections (as after `kill -9`).
    fn kill(&self) {
        self.server.abort();
    }

    fn registration(&self) -> Registration {
        registration(&self.id, self.port)
    }
}

fn registration(id: &str, port: u16) -> Registration {
    Registration {
        id: id.to_owned(),
        name: "backend".into(),
        address: "127.0.0.1".into(),
        port,
        tags: vec![],
        meta: BTreeMap::new(),
        check: HealthCheck::Ttl {
            ttl: Duration::from_secs(15),
        },
        deregister_critical_after: Duration::from_secs(60),
    }
}

struct Fixture {
    registry: Arc<MemoryRegistry>,
    backends: Vec<Backend>,
    watcher: ServiceWatcher,
}

async fn fixture(ids: &[&str]) -> Fixture {
    let registry = Arc::new(MemoryRegistry::new());
    let mut backends = Vec::new();
    for id in ids {
        let backend = Backend::start(id).await;
        registry.register(&backend.registration()).await.unwrap();
        backends.push(backend);
    }
    let watcher = discovery::watch(registry.clone(), "backend", WatchOptions::default());
    let n = ids.len();
    watcher.wait_for(|s| s.instances.len() == n).await;
    Fixture {
        registry,
        backends,
        watcher,
    }
}

fn options() -> UpstreamOptions {
    UpstreamOptions {
        attempt_timeout: Duration::from_millis(300),
        deadline: Duration::from_secs(3),
        ejection: EjectionPolicy {
            consecutive_failures: 5,
            base: Duration::from_millis(300),
            max: Duration::from_secs(5),
        },
        ..UpstreamOptions::default()
    }
}

fn client(f: &Fixture, options: UpstreamOptions) -> Upstream {
    Upstream::new("backend", f.watcher.clone(), options).unwrap()
}

async fn get(upstream: &Upstream) -> Result<String, UpstreamError> {
    let response = upstream.send(UpstreamRequest::get("/thing")).await?;
    assert_eq!(response.status, 200, "body: {:?}", response.body);
    Ok(String::from_utf8(response.body.to_vec()).unwrap())
}

fn state_of(upstream: &Upstream, id: &str) -> &'static str {
    upstream
        .status()
        .instances
        .iter()
        .find(|i| i.id == id)
        .map(|i| i.state)
        .unwrap_or("absent")
}

#[tokio::test]
async fn round_robin_spreads_requests_evenly() {
    let f = fixture(&["a", "b", "c"]).await;
    let upstream = client(&f, options());
    for _ in 0..30 {
        get(&upstream).await.unwrap();
    }
    let hits: Vec<_> = f.backends.iter().map(Backend::hits).collect();
    assert_eq!(hits, [10, 10, 10]);
}

#[tokio::test]
async fn least_pending_balancing_still_reaches_every_instance() {
    let f = fixture(&["a", "b"]).await;
    let upstream = client(
        &f,
        UpstreamOptions {
            balance: Balance::LeastPending,
            ..options()
        },
    );
    for _ in 0..40 {
        get(&upstream).await.unwrap();
    }
    assert!(f.backends.iter().all(|b| b.hits() > 0));
}

#[tokio::test]
async fn a_killed_instance_costs_no_failed_request_and_is_ejected() {
    let f = fixture(&["a", "b", "c"]).await;
    let upstream = client(&f, options());
    f.backends[0].kill();
    for _ in 0..30 {
        let who = get(&upstream)
            .await
            .expect("no call fails while good instances remain");
        assert_ne!(who, "a");
    }
    assert_eq!(state_of(&upstream, "a"), "ejected");
    assert_eq!(state_of(&upstream, "b"), "healthy");
}

#[tokio::test]
async fn instances_answering_503_are_retried_elsewhere_and_then_ejected() {
    let f = fixture(&["a", "b"]).await;
    let upstream = client(&f, options());
    f.backends[0].set(UNAVAILABLE);
    for _ in 0..20 {
        assert_eq!(get(&upstream).await.unwrap(), "b");
    }
    assert_eq!(state_of(&upstream, "a"), "ejected");
    assert!(
        f.backends[0].hits() <= 5,
        "ejected after 5 failures, not hit on every request"
    );
}

#[tokio::test]
async fn a_hanging_instance_times_out_and_requests_succeed_elsewhere() {
    let f = fixture(&["a", "b"]).await;
    let upstream = client(&f, options());
    f.backends[0].set(HANG);
    for _ in 0..8 {
        assert_eq!(get(&upstream).await.unwrap(), "b");
    }
    assert_eq!(state_of(&upstream, "a"), "ejected");
}

#[tokio::test]
async fn a_non_idempotent_request_is_not_retried_once_it_may_have_been_sent() {
    let f = fixture(&["a", "b"]).await;
    let upstream = client(&f, options());
    f.backends[0].set(HANG);
    // Round-robin starts at the first instance, "a".
    let request = UpstreamRequest {
        method: Method::POST,
        ..UpstreamRequest::get("/thing")
    };
    let err = upstream.send(request).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::Timeout { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(f.backends[1].hits(), 0, "not retried on b");
}

#[tokio::test]
async fn a_non_idempotent_request_is_retried_when_the_connection_was_refused() {
    let f = fixture(&["a", "b"]).await;
    let upstream = client(&f, options());
    f.backends[0].kill();
    let request = UpstreamRequest {
        method: Method::POST,
        ..UpstreamRequest::get("/thing")
    };
    let response = upstream.send(request).await.unwrap();
    assert_eq!((response.status, response.attempts), (200, 2));
}

#[tokio::test]
async fn a_connection_that_breaks_mid_request_is_not_taken_for_a_refusal() {
    // "a" accepts, reads the request and hangs up without answering, like a process that
    // crashes while handling it: the request may have been processed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _server = tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = stream.read(&mut [0u8; 4096]).await;
        }
    });
    let f = fixture(&["b"]).await;
    f.registry.register(&registration("a", port)).await.unwrap();
    f.watcher.wait_for(|s| s.instances.len() == 2).await;
    let upstream = client(&f, options());
    // Round-robin starts at the first instance, "a".
    let request = UpstreamRequest {
        method: Method::POST,
        ..UpstreamRequest::get("/thing")
    };
    let err = upstream.send(request).await.unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::Transport {
                attempts: 1,
                connect: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        f.backends[0].hits(),
        0,
        "a POST that may have run is not retried on b"
    );
}

#[tokio::test]
async fn the_retry_budget_stops_a_retry_storm_when_every_instance_fails() {
    let f = fixture(&["a", "b", "c"]).await;
    for b in &f.backends {
        b.set(UNAVAILABLE);
    }
    let upstream = client(
        &f,
        UpstreamOptions {
            // Ejection off, so only the budget limits retries.
            ejection: EjectionPolicy {
                consecutive_failures: u32::MAX,
                ..EjectionPolicy::default()
            },
            retry_min_per_sec: 1,
            retry_window: Duration::from_secs(10),
            ..options()
        },
    );
    let requests = 200;
    for _ in 0..requests {
        let response = upstream.send(UpstreamRequest::get("/thing")).await.unwrap();
        assert_eq!(response.status, 503, "the last 503 is passed on");
    }
    let attempts: usize = f.backends.iter().map(Backend::hits).sum();
    // Without a budget: 3 attempts each = 600. With it: 200 + 20% + a reserve of 10.
    assert!(attempts >= requests, "{attempts}");
    assert!(
        attempts <= requests + requests / 5 + 15,
        "{attempts} attempts for {requests} requests"
    );
}

#[tokio::test]
async fn an_ejected_instance_is_readmitted_by_a_probe_after_its_penalty() {
    let f = fixture(&["a", "b"]).await;
    let upstream = client(&f, options());
    f.backends[0].set(UNAVAILABLE);
    while state_of(&upstream, "a") != "ejected" {
        get(&upstream).await.unwrap();
    }
    f.backends[0].set(OK);
    let before = f.backends[0].hits();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while state_of(&upstream, "a") != "healthy" || f.backends[0].hits() == before {
        assert!(tokio::time::Instant::now() < deadline, "never re-admitted");
        get(&upstream).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_instance_that_leaves_the_registry_stops_receiving_and_a_new_one_is_used_at_once() {
    let f = fixture(&["a", "b"]).await;
    let upstream = client(&f, options());
    f.registry.deregister("a").await.unwrap();
    f.watcher.wait_for(|s| s.instances.len() == 1).await;
    let before = f.backends[0].hits();
    for _ in 0..10 {
        assert_eq!(get(&upstream).await.unwrap(), "b");
    }
    assert_eq!(f.backends[0].hits(), before);

    let c = Backend::start("c").await;
    f.registry.register(&c.registration()).await.unwrap();
    f.watcher.wait_for(|s| s.instances.len() == 2).await;
    get(&upstream).await.unwrap();
    get(&upstream).await.unwrap();
    assert_eq!(c.hits(), 1, "used on the very next turn");
    assert!(upstream.status().instances.iter().any(|i| i.id == "c"));
}

#[tokio::test]
async fn fails_fast_with_a_typed_error_when_no_instance_is_usable() {
    let f = fixture(&["a", "b"]).await;
    let upstream = client(&f, options());
    for b in &f.backends {
        b.kill();
    }
    let err = get(&upstream).await.unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::Transport {
                attempts: 2,
                connect: true,
                ..
            }
        ),
        "{err:?}"
    );
    // Both are ejected now: the next call does not even try to connect.
    let err = get(&upstream).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::AllEjected { ejected: 2, .. }),
        "{err:?}"
    );

    let empty = fixture(&[]).await;
    let err = get(&client(&empty, options())).await.unwrap_err();
    assert!(matches!(err, UpstreamError::NoInstance { .. }), "{err:?}");
}

#[tokio::test]
async fn the_request_id_is_forwarded() {
    let f = fixture(&["a"]).await;
    let upstream = client(&f, options());
    upstream
        .send(UpstreamRequest::get("/thing").with_request_id("req-42"))
        .await
        .unwrap();
    assert_eq!(
        f.backends[0].last_request_id.lock().unwrap().as_deref(),
        Some("req-42")
    );
    upstream.send(UpstreamRequest::get("/thing")).await.unwrap();
    let generated = f.backends[0]
        .last_request_id
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    assert_eq!(
        generated.len(),
        36,
        "a UUID is generated when none is given"
    );
}

#[tokio::test]
async fn status_counts_successes_failures_and_in_flight() {
    let f = fixture(&["a", "b"]).await;
    let upstream = client(&f, options());
    f.backends[1].set(UNAVAILABLE);
    for _ in 0..4 {
        get(&upstream).await.unwrap();
    }
    let status = upstream.status();
    assert_eq!(status.strategy, "resilient");
    assert!(status.index > 0 && !status.stale);
    let a = status.instances.iter().find(|i| i.id == "a").unwrap();
    let b = status.instances.iter().find(|i| i.id == "b").unwrap();
    assert_eq!((a.successes, a.failures, a.in_flight), (4, 0, 0));
    assert_eq!(b.successes, 0);
    assert!(
        b.failures >= 1,
        "every request that went to b failed and was retried on a"
    );
    assert_eq!(a.address, format!("127.0.0.1:{}", f.backends[0].port));
}

#[tokio::test]
async fn the_naive_strategy_asks_the_registry_each_time_and_never_retries() {
    let f = fixture(&["a", "b"]).await;
    let naive = Upstream::naive(
        "backend",
        f.registry.clone(),
        UpstreamOptions {
            strategy: Strategy::Naive,
            ..options()
        },
    )
    .unwrap();
    for _ in 0..5 {
        assert_eq!(get(&naive).await.unwrap(), "a", "always the first instance");
    }
    f.backends[0].kill();
    assert!(get(&naive).await.is_err(), "no retry on b");
    assert_eq!(f.backends[1].hits(), 0);
}

#[tokio::test]
async fn a_redirect_is_answered_as_it_is_not_followed() {
    // "elsewhere" is not registered: following a redirect there would bypass discovery.
    let elsewhere = Backend::start("elsewhere").await;
    let location = format!("http://127.0.0.1:{}/thing", elsewhere.port);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().fallback(any(move || {
        let location = location.clone();
        async move { (StatusCode::TEMPORARY_REDIRECT, [("location", location)]) }
    }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let registry = Arc::new(MemoryRegistry::new());
    registry
        .register(&registration("redirecting", port))
        .await
        .unwrap();
    let watcher = discovery::watch(registry.clone(), "backend", WatchOptions::default());
    watcher.wait_for(|s| s.instances.len() == 1).await;
    let upstream = Upstream::new("backend", watcher, options()).unwrap();

    let response = upstream.send(UpstreamRequest::get("/thing")).await.unwrap();
    assert_eq!(response.status, 307);
    assert_eq!(elsewhere.hits(), 0);
}
