//! The database going away and coming back, with the service running in-process: 503 problems
//! during an outage, recovery without a restart, and waiting for PostgreSQL at start-up without
//! serving or registering.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::config::{ConsulConfig, ServiceConfig};
use common::http::{INSTANCE_ID_HEADER, PROBLEM_CONTENT_TYPE};
use common::lifecycle::LocalInstance;
use common::registry::MemoryRegistry;
use rating_service::{INFO, StorageConfig};
use serde_json::{Value, json};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::databases::PgSchema;
use crate::helpers::PATIENCE;

/// The service running in-process on port 0 with `storage`, registered in a memory registry.
struct Service {
    url: String,
    instance_id: String,
    registry: Arc<MemoryRegistry>,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Service {
    /// Starts the service; does not wait for it to be ready.
    async fn start(storage: StorageConfig) -> Self {
        common::tls::install_crypto_provider();
        let mut config = ServiceConfig::new(ConsulConfig::new("127.0.0.1:1".parse().unwrap()));
        config.timings.drain_delay = Duration::ZERO;
        config.timings.grace_period = Duration::from_secs(2);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bound = listener.local_addr().unwrap();
        let instance_id = LocalInstance::resolve(INFO, &config, bound).await.id;
        let registry = Arc::new(MemoryRegistry::new());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(rating_service::run(
            config,
            storage,
            listener,
            registry.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            url: format!("http://{bound}"),
            instance_id,
            registry,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task,
        }
    }

    /// Waits until the service has registered (which it does once `/health` answers).
    async fn wait_registered(&self) {
        eventually("the service registers", || async {
            self.registry.registration(&self.instance_id).is_some()
        })
        .await;
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        request.send().await.unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.send(self.client.get(format!("{}{path}", self.url)))
            .await
    }

    async fn put(&self, path: &str, user: &str, value: u8) -> reqwest::Response {
        let request = self
            .client
            .put(format!("{}{path}", self.url))
            .json(&json!({"user_id": user, "value": value}));
        self.send(request).await
    }

    /// Fires the shutdown signal and returns what `run` returned.
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the service stops")
            .expect("the service task did not panic")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `check` until it holds, failing the test after [`PATIENCE`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts a 503 problem from the storage, stamped with the instance ID.
async fn assert_storage_unavailable(service: &Service, response: reqwest::Response) {
    assert_eq!(response.status(), 503);
    let headers = response.headers();
    assert_eq!(headers[reqwest::header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
    assert_eq!(headers[reqwest::header::RETRY_AFTER], "1");
    assert_eq!(headers[INSTANCE_ID_HEADER], service.instance_id.as_str());
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 503);
    assert_eq!(problem["title"], "Service Unavailable");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("database"), "{detail}");
}

/// A TCP proxy in front of a database that can be switched off: while down it accepts each
/// connection and closes it at once (counting the attempt), and switching it down also cuts
/// the connections it is carrying. A stand-in for a database host going away, with the
/// database itself untouched.
struct Proxy {
    addr: SocketAddr,
    up: Arc<watch::Sender<bool>>,
    attempts: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `target`, initially down (`None`: down for good).
    async fn start(target: Option<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(watch::Sender::new(false));
        let attempts = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (up, attempts) = (up.clone(), attempts.clone());
            async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    attempts.fetch_add(1, Ordering::SeqCst);
                    let mut state = up.subscribe();
                    let Some(target) = target.filter(|_| *state.borrow_and_update()) else {
                        continue; // down: dropping `inbound` closes it
                    };
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = state.wait_for(|up| !up) => {}
                        }
                    });
                }
            }
        });
        Self {
            addr,
            up,
            attempts,
            task,
        }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    /// Waits until at least `n` connections were attempted since the proxy started.
    async fn wait_for_attempts(&self, n: usize) {
        eventually(&format!("{n} connection attempts"), || async {
            self.attempts.load(Ordering::SeqCst) >= n
        })
        .await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn a_locked_sqlite_database_gives_503_problems_and_writes_resume_once_it_is_free() {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("ratings.sqlite3");
    let mut storage = StorageConfig::sqlite(&path);
    storage.timings.statement_timeout = Duration::from_millis(200);
    let service = Service::start(storage).await;
    service.wait_registered().await;
    assert_eq!(
        service.put("/ratings/movie/42", "alice", 4).await.status(),
        200
    );

    // Another process holds the write lock, as a stuck writer would.
    let mut other = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let response = service.put("/ratings/movie/42", "bob", 2).await;
    assert_storage_unavailable(&service, response).await;
    assert_eq!(service.get("/health").await.status(), 200, "still alive");
    let read: Value = service.get("/ratings/movie/42").await.json().await.unwrap();
    assert_eq!(read["count"], 1, "reads go on, without the refused write");

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let response = service.put("/ratings/movie/42", "bob", 2).await;
    assert_eq!(response.status(), 200);
    let written: Value = response.json().await.unwrap();
    assert_eq!(
        (written["count"].as_u64(), written["average"].as_f64()),
        (Some(2), Some(3.0))
    );
    service.stop().await.unwrap();
}

#[tokio::test]
async fn while_postgres_cannot_be_reached_the_service_waits_unregistered_and_stops_on_request() {
    // Nothing behind the proxy: every connection attempt is closed at once.
    let proxy = Proxy::start(None).await;
    let options = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(proxy.addr.port())
        .username("ratings")
        .password("ratings")
        .database("ratings");
    let service = Service::start(StorageConfig::postgres(options)).await;

    proxy.wait_for_attempts(3).await;
    assert!(
        service
            .registry
            .registration(&service.instance_id)
            .is_none(),
        "an instance without its database is not registered"
    );
    assert!(!service.task.is_finished(), "it waits instead of exiting");
    service
        .stop()
        .await
        .expect("stopping while waiting is a clean exit");
}

#[tokio::test]
async fn the_service_waits_for_postgres_then_serves_and_recovers_after_an_outage() {
    let Some(schema) = PgSchema::create("outage").await else {
        return;
    };
    let target = tokio::net::lookup_host((schema.options.get_host(), schema.options.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(Some(target)).await;
    let options = schema
        .options
        .clone()
        .host("127.0.0.1")
        .port(proxy.addr.port());
    let service = Service::start(StorageConfig::postgres(options)).await;

    // PostgreSQL "still starting": the service waits without registering.
    proxy.wait_for_attempts(2).await;
    assert!(
        service
            .registry
            .registration(&service.instance_id)
            .is_none()
    );
    proxy.set_up(true);
    service.wait_registered().await;
    let response = service.put("/ratings/movie/42", "alice", 4).await;
    assert_eq!(response.status(), 200);
    let written: Value = response.json().await.unwrap();

    // The database host goes away: requests fail fast with 503, the instance stays up.
    proxy.set_up(false);
    let response = service.get("/ratings/movie/42").await;
    assert_storage_unavailable(&service, response).await;
    let response = service.put("/ratings/movie/42", "bob", 2).await;
    assert_storage_unavailable(&service, response).await;
    assert_eq!(service.get("/health").await.status(), 200);

    // It comes back: the pool reconnects on its own, and nothing written was lost.
    proxy.set_up(true);
    eventually("reads succeed again", || async {
        service.get("/ratings/movie/42").await.status() == 200
    })
    .await;
    let read: Value = service.get("/ratings/movie/42").await.json().await.unwrap();
    assert_eq!(read, written);

    service.stop().await.unwrap();
    schema.drop().await;
}
