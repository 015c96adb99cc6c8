//! Shared test plumbing: a registry with an HTTP client, sample payloads, polling, and
//! a scriptable upstream HTTP server for check tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use dev_registry::{Options, RunningRegistry};
use reqwest::Response;
use serde_json::Value;
use tokio::sync::oneshot;

/// Upper bound for any "eventually" condition. Generous: CI machines are slow.
const EVENTUALLY: Duration = Duration::from_secs(15);

/// A registry under test plus a client for it.
pub(crate) struct TestRegistry {
    /// The registry.
    pub(crate) registry: RunningRegistry,
    /// A plain client (no proxy, no pooling surprises).
    pub(crate) client: reqwest::Client,
}

/// A client for talking to registries and upstreams.
pub(crate) fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Starts a registry with default options.
pub(crate) async fn spawn() -> TestRegistry {
    spawn_with(Options::default()).await
}

/// Starts a registry with `options`.
pub(crate) async fn spawn_with(options: Options) -> TestRegistry {
    TestRegistry {
        registry: RunningRegistry::spawn(options).await.unwrap(),
        client: client(),
    }
}

/// Options with timings short enough for tests.
pub(crate) fn fast_options() -> Options {
    Options {
        min_check_interval: Duration::from_millis(10),
        deregister_floor: Duration::from_millis(200),
        reap_interval: Duration::from_millis(50),
        ..Options::default()
    }
}

impl TestRegistry {
    /// Absolute URL for `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.registry.url())
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `PUT path` with a body.
    pub(crate) async fn put(&self, path: &str, body: impl Into<reqwest::Body>) -> Response {
        self.client
            .put(self.url(path))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// `PUT path` with no body.
    pub(crate) async fn put_empty(&self, path: &str) -> Response {
        self.client.put(self.url(path)).send().await.unwrap()
    }

    /// Registers `body` and asserts the 200.
    pub(crate) async fn register(&self, body: &Value) {
        let response = self
            .put("/v1/agent/service/register", body.to_string())
            .await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "register failed: {text}");
        assert_eq!(text, "");
    }

    /// `GET path`, asserting 200, returning the `X-Consul-Index` (0 if absent) and JSON.
    pub(crate) async fn get_json(&self, path: &str) -> (u64, Value) {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        let index = consul_index(&response);
        (index, response.json().await.unwrap())
    }

    /// The status of check `id` from `/v1/agent/checks`, `None` if absent.
    pub(crate) async fn check(&self, id: &str) -> Option<Value> {
        let (_, checks) = self.get_json("/v1/agent/checks").await;
        checks.get(id).cloned()
    }

    /// Polls `/v1/agent/checks` until check `id` has `status`; returns the check.
    pub(crate) async fn wait_for_check(&self, id: &str, status: &str) -> Value {
        let found =
            eventually_value(
                || async move { self.check(id).await.filter(|c| c["Status"] == status) },
            )
            .await;
        match found {
            Some(check) => check,
            None => panic!(
                "check {id} never became {status}; now: {:?}",
                self.check(id).await
            ),
        }
    }
}

/// The `X-Consul-Index` header of a response (0 if absent).
pub(crate) fn consul_index(response: &Response) -> u64 {
    response
        .headers()
        .get("x-consul-index")
        .map(|v| v.to_str().unwrap().parse().unwrap())
        .unwrap_or(0)
}

/// Reads `testdata/consul-samples/<name>`.
pub(crate) fn sample(name: &str) -> Value {
    let path = format!(
        "{}/../../testdata/consul-samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Polls `condition` every 20ms until it holds; panics with `what` after the deadline.
pub(crate) async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let found = eventually_value(|| {
        let fut = condition();
        async move { fut.await.then_some(()) }
    })
    .await;
    assert!(found.is_some(), "timed out waiting for: {what}");
}

/// Polls `probe` every 20ms until it yields a value, or gives up after the deadline.
pub(crate) async fn eventually_value<T, F, Fut>(mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that `task` is still running after `grace`: used to show that something
/// unrelated did *not* wake a blocking query. Returns the task to await later.
pub(crate) async fn assert_pending<T>(
    mut task: tokio::task::JoinHandle<T>,
    what: &str,
) -> tokio::task::JoinHandle<T> {
    /// Far longer than a wake-up takes (microseconds), far shorter than the waits used.
    const GRACE: Duration = Duration::from_millis(300);
    if tokio::time::timeout(GRACE, &mut task).await.is_ok() {
        panic!("{what}: the blocking query returned early");
    }
    task
}

/// One request an [`Upstream`] saw.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// Method.
    pub(crate) method: Method,
    /// Headers.
    pub(crate) headers: HeaderMap,
    /// Body.
    pub(crate) body: String,
}

/// State of an [`Upstream`].
#[derive(Debug, Default)]
struct UpstreamState {
    /// Status code to answer with.
    status: AtomicU16,
    /// Requests seen.
    seen: Mutex<Vec<Seen>>,
}

/// A local HTTP server whose answer can be changed, for HTTP check tests.
pub(crate) struct Upstream {
    /// Bound address.
    pub(crate) addr: SocketAddr,
    /// Shared state.
    state: Arc<UpstreamState>,
    /// Stops the server.
    stop: Option<oneshot::Sender<()>>,
    /// The server task.
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// Starts a server answering `status` with body `hello` on every path.
    pub(crate) async fn start(status: u16) -> Self {
        let state = Arc::new(UpstreamState {
            status: AtomicU16::new(status),
            seen: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .fallback(
                |State(state): State<Arc<UpstreamState>>,
                 method: Method,
                 headers: HeaderMap,
                 body: String| async move {
                    state.seen.lock().unwrap().push(Seen {
                        method,
                        headers,
                        body,
                    });
                    let code = StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap();
                    (code, "hello")
                },
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            state,
            stop: Some(stop),
            task,
        }
    }

    /// URL of `path` on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Changes the status code of subsequent answers.
    pub(crate) fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Requests seen so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Stops the server and waits until its port is closed.
    pub(crate) async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap();
    }
}
