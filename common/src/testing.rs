//! Test support for every service's integration tests (cargo feature `testing`): start the real
//! service on 127.0.0.1, port 0, against an in-memory registry, talk to it, stop or kill it.
//!
//! Enabled only from `[dev-dependencies]` (`common = { workspace = true, features = ["testing"] }`),
//! so no service binary carries it. Checks of the contract that all five services share
//! (DESIGN §3) are in [`contract`].
//!
//! ```no_run
//! # async fn demo() {
//! use common::testing::TestService;
//! # const INFO: common::lifecycle::ServiceInfo = common::lifecycle::ServiceInfo {
//! #     name: "x", framework: "y", version: "0", default_port: 1 };
//! # async fn run(
//! #     _: common::config::ServiceConfig,
//! #     _: tokio::net::TcpListener,
//! #     _: std::sync::Arc<dyn common::registry::Registry>,
//! #     _: impl std::future::Future<Output = ()> + Send + 'static,
//! # ) -> anyhow::Result<()> { Ok(()) }
//! let app = TestService::launch(INFO).start(run).await;
//! assert_eq!(app.get("/health").await.status(), 200);
//! app.shutdown().await.expect("a clean stop");
//! # }
//! ```
//!
//! Each service runs on a tokio runtime of its own, as if it were its own process: the test's
//! runtime cannot starve it, and [`TestService::kill`] can end every task and socket of one
//! instance at once, the way `kill -9` does, while the others keep running.

// Helpers for tests: a broken expectation is a failed test, so they panic instead of returning
// errors, and say what they expected.
#![allow(clippy::missing_panics_doc)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::config::{ConsulConfig, ServiceConfig};
use crate::http::{INSTANCE_ID_HEADER, PROBLEM_CONTENT_TYPE};
use crate::lifecycle::{LocalInstance, ServiceInfo};
use crate::registry::{MemoryRegistry, Registry};
use crate::shutdown::{Stopping, Trigger};

pub mod contract;

/// Upper bound for anything a test waits on, so that a broken service fails the test instead of
/// hanging it. 20 s: far above any wait a healthy service needs, even on a loaded CI machine.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// How often [`eventually`] checks again. 20 ms: quick to notice, cheap to repeat.
const POLL: Duration = Duration::from_millis(20);

/// Worker threads of each service's runtime. Two, so that a handler that blocks for a moment
/// (Rocket's `block_in_place`, a slow fault delay) never stalls the rest of that instance.
const WORKERS: usize = 2;

/// Settings for tests: bind 127.0.0.1 on port 0, no drain delay, a short grace period, and a
/// Consul address that refuses connections (port 1), so nothing can need a real registry.
pub fn test_config() -> ServiceConfig {
    let mut config = ServiceConfig::new(ConsulConfig::new(
        "127.0.0.1:1".parse().expect("a valid Consul address"),
    ));
    config.bind = [127, 0, 0, 1].into();
    config.port = 0;
    config.timings.drain_delay = Duration::ZERO;
    config.timings.grace_period = Duration::from_secs(2);
    config
}

/// Polls `check` until it returns `Some`, at most [`PATIENCE`]; panics naming `what` after that.
///
/// Tests wait with this instead of sleeping: they go on as soon as the condition holds, and a
/// condition that never holds fails the test instead of hanging it.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {PATIENCE:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A service started by [`Launch::start`], running until [`shutdown`](Self::shutdown),
/// [`kill`](Self::kill) or drop.
#[derive(Debug)]
pub struct TestService {
    /// What it is: name, framework, version.
    pub info: ServiceInfo,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The port it listens on.
    pub port: u16,
    /// The instance ID it registers and stamps on every response.
    pub instance_id: String,
    /// Client for requests to it; follows no redirects, so tests see what the service answers.
    pub client: reqwest::Client,
    /// The registry it registers in.
    pub registry: Arc<MemoryRegistry>,
    /// Fires the shutdown future given to `run`.
    stop: Trigger,
    /// `run`'s task, on `runtime`.
    server: JoinHandle<anyhow::Result<()>>,
    /// The service's own runtime; `None` once it has been shut down.
    runtime: Option<Runtime>,
}

/// How to start a [`TestService`]: which registry, which settings.
#[derive(Debug)]
pub struct Launch {
    info: ServiceInfo,
    config: ServiceConfig,
    registry: Arc<MemoryRegistry>,
}

impl Launch {
    /// Registers in `registry` instead of a registry of its own (several services sharing one
    /// registry find each other).
    #[must_use]
    pub fn registry(mut self, registry: Arc<MemoryRegistry>) -> Self {
        self.registry = registry;
        self
    }

    /// Adjusts the settings after [`test_config`].
    #[must_use]
    pub fn configure(mut self, configure: impl FnOnce(&mut ServiceConfig)) -> Self {
        configure(&mut self.config);
        self
    }

    /// Binds 127.0.0.1:0, starts `run(config, listener, registry, shutdown)` on a runtime of its
    /// own and returns once `/health` answers 200.
    ///
    /// `run` is the service's `run` function, or a closure that supplies its extra parameters:
    /// `|config, listener, registry, stop| movie_service::run(config, options, listener, registry, stop)`.
    pub async fn start<F, Fut>(self, run: F) -> TestService
    where
        F: FnOnce(ServiceConfig, TcpListener, Arc<dyn Registry>, Stopping) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        crate::tls::install_crypto_provider();
        let Self {
            info,
            config,
            registry,
        } = self;
        // A std listener, so that the service's own runtime adopts it: a tokio listener belongs
        // to the runtime that created it.
        let listener = std::net::TcpListener::bind((config.bind, config.port))
            .expect("binding the test listener");
        listener
            .set_nonblocking(true)
            .expect("making the listener non-blocking");
        let bound = listener.local_addr().expect("reading the bound address");
        let instance_id = LocalInstance::resolve(info, &config, bound).await.id;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name(info.name)
            .enable_all()
            .build()
            .expect("building the service's runtime");
        let stop = Trigger::new();
        let server = runtime.spawn({
            let registry: Arc<dyn Registry> = registry.clone();
            let stopping = stop.wait();
            async move {
                let listener = TcpListener::from_std(listener)?;
                run(config, listener, registry, stopping).await
            }
        });
        let service = TestService {
            info,
            address: format!("http://{bound}"),
            port: bound.port(),
            instance_id,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                // A service that accepts but never answers fails the test instead of hanging it.
                .timeout(PATIENCE)
                .build()
                .expect("building the test client"),
            registry,
            stop,
            server,
            runtime: Some(runtime),
        };
        service.wait_until_healthy().await;
        service
    }
}

impl TestService {
    /// Starts building a test instance of the service `info` describes, with [`test_config`]
    /// and a registry of its own.
    pub fn launch(info: ServiceInfo) -> Launch {
        Launch {
            info,
            config: test_config(),
            registry: Arc::new(MemoryRegistry::new()),
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `PUT path` with a JSON body.
    pub async fn put_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {path}: {e}"))
    }

    /// Sends `GET <raw path>` over a plain socket, byte for byte (no client-side normalisation
    /// of `..` or percent-escapes), and returns the status code.
    pub async fn raw_status(&self, raw_path: &str) -> u16 {
        let host = self.address.trim_start_matches("http://");
        let head = format!("GET {raw_path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        self.raw_request(head.as_bytes()).await
    }

    /// Writes `request` as is over a plain socket and returns the status code of the answer.
    /// Write errors are ignored: a server may answer and close before reading everything.
    pub async fn raw_request(&self, request: &[u8]) -> u16 {
        let host = self.address.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).await.expect("connecting");
        let _ = stream.write_all(request).await;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(2).any(|w| w == b"\r\n") {
            let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
                .await
                .expect("no answer in time")
                .expect("reading the answer");
            assert!(n > 0, "connection closed before a status line");
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        line.split_whitespace()
            .nth(1)
            .and_then(|status| status.parse().ok())
            .unwrap_or_else(|| panic!("no status code in {line:?}"))
    }

    /// Stops the service as SIGTERM would (deregister, drain, stop) and returns what `run`
    /// returned.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop.fire();
        let result = tokio::time::timeout(PATIENCE, &mut self.server)
            .await
            .expect("the service did not stop")
            .expect("the service task panicked");
        self.end_runtime().await;
        result
    }

    /// Ends the instance the way `kill -9` does: every task of it stops and every socket it
    /// holds closes at once (connections of its clients break, new ones are refused), and
    /// nothing deregisters it.
    ///
    /// For servers that run on tokio tasks (axum, warp, poem, Rocket). actix-web runs its
    /// workers on threads of its own, which outlive the runtime.
    pub async fn kill(mut self) {
        self.end_runtime().await;
    }

    /// Shuts the runtime down and waits until its tasks (and so its sockets) are gone.
    async fn end_runtime(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Shutting a runtime down blocks, which async code must not do.
            tokio::task::spawn_blocking(move || runtime.shutdown_timeout(PATIENCE))
                .await
                .expect("shutting the service's runtime down");
        }
    }

    async fn wait_until_healthy(&self) {
        eventually(&format!("{} to answer /health", self.info.name), || async {
            let response = self.client.get(self.url("/health")).send().await.ok()?;
            (response.status() == 200).then_some(())
        })
        .await;
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Drop may run inside async code, where only a non-blocking shutdown is allowed.
            runtime.shutdown_background();
        }
    }
}

/// Asserts that `GET` of each of `paths` is answered with problem details with `status`.
pub async fn assert_problems(app: &TestService, paths: &[&str], status: u16) {
    for path in paths {
        assert_problem(app, app.get(path).await, status).await;
    }
}

/// Asserts that `method path` is answered 405 problem details whose `Allow` header is `allow`
/// (RFC 9110 requires it on every 405).
pub async fn assert_method_not_allowed(
    app: &TestService,
    method: reqwest::Method,
    path: &str,
    allow: &str,
) {
    let response = app
        .client
        .request(method.clone(), app.url(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert_eq!(
        response
            .headers()
            .get(reqwest::header::ALLOW)
            .map(|v| v.as_bytes()),
        Some(allow.as_bytes()),
        "Allow of {method} {path}"
    );
    assert_problem(app, response, 405).await;
}

/// Asserts that `response` is problem details (RFC 9457) with `status`, stamped with `app`'s
/// instance ID, and returns the body.
pub async fn assert_problem(
    app: &TestService,
    response: reqwest::Response,
    status: u16,
) -> serde_json::Value {
    assert_eq!(response.status(), status, "status of {}", response.url());
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        PROBLEM_CONTENT_TYPE,
        "content type of a {status}"
    );
    assert_eq!(
        response.headers()[INSTANCE_ID_HEADER],
        app.instance_id.as_str()
    );
    let body: serde_json::Value = response.json().await.expect("a JSON problem body");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], "about:blank", "{body}");
    assert!(body["title"].is_string(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
    body
}
