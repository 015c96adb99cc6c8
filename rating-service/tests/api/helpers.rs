//! `spawn_app()`: the real service on port 0 with an in-memory registry and a fresh SQLite file,
//! and ways to talk to it.

use std::sync::Arc;
use std::time::Duration;

use common::config::{ConsulConfig, ServiceConfig};
use common::http::{INSTANCE_ID_HEADER, PROBLEM_CONTENT_TYPE};
use common::lifecycle::LocalInstance;
use common::registry::MemoryRegistry;
use rating_service::{INFO, StorageConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Upper bound for anything a test waits on, so a broken service fails the test instead of hanging it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// A running service.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub(crate) address: String,
    /// The instance ID it registers and stamps on responses.
    pub(crate) instance_id: String,
    /// Client for requests to it.
    pub(crate) client: reqwest::Client,
    /// The registry it registers in.
    pub(crate) registry: Arc<MemoryRegistry>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
    /// Holds the database file; deleted when the app is dropped.
    _data: tempfile::TempDir,
}

/// Starts the service with default test settings.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the service after `configure` adjusted its configuration; returns once `/health` answers.
pub(crate) async fn spawn_app_with(configure: impl FnOnce(&mut ServiceConfig)) -> TestApp {
    common::tls::install_crypto_provider();
    // Port 1 refuses connections: nothing here may need a real Consul.
    let mut config = ServiceConfig::new(ConsulConfig::new("127.0.0.1:1".parse().unwrap()));
    config.bind = [127, 0, 0, 1].into();
    config.port = 0;
    config.timings.drain_delay = Duration::ZERO;
    config.timings.grace_period = Duration::from_secs(2);
    configure(&mut config);

    let listener = TcpListener::bind((config.bind, config.port)).await.unwrap();
    let bound = listener.local_addr().unwrap();
    let instance_id = LocalInstance::resolve(INFO, &config, bound).await.id;
    let registry = Arc::new(MemoryRegistry::new());
    let data = tempfile::tempdir().unwrap();
    let storage = StorageConfig::sqlite(data.path().join("ratings.sqlite3"));
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(rating_service::run(
        config,
        storage,
        listener,
        registry.clone(),
        async {
            let _ = rx.await;
        },
    ));

    let app = TestApp {
        address: format!("http://{bound}"),
        instance_id,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        registry,
        shutdown: Some(tx),
        server,
        _data: data,
    };
    app.wait_until_healthy().await;
    app
}

impl TestApp {
    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `PUT path` with a JSON body.
    pub(crate) async fn put_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The absolute URL of `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Sends `GET <raw path>` over a plain socket, byte for byte (no client-side normalisation
    /// of `..` or percent-escapes), and returns the status code.
    pub(crate) async fn raw_status(&self, raw_path: &str) -> u16 {
        let host = self.address.trim_start_matches("http://");
        let head = format!("GET {raw_path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        self.raw_request(head.as_bytes()).await
    }

    /// Writes `request` as is over a plain socket and returns the status code of the answer.
    /// Write errors are ignored: a server may answer and close before reading everything.
    pub(crate) async fn raw_request(&self, request: &[u8]) -> u16 {
        let host = self.address.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).await.unwrap();
        let _ = stream.write_all(request).await;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(2).any(|w| w == b"\r\n") {
            let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection closed before a status line");
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Fires the shutdown signal and returns what `run` returned.
    pub(crate) async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.server)
            .await
            .expect("the service did not stop")
            .expect("the service task panicked")
    }

    async fn wait_until_healthy(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(response) = self.client.get(self.url("/health")).send().await
                && response.status() == 200
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/health never answered 200"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Asserts that `response` is problem details with `status`, stamped with the instance ID,
/// and returns the body.
pub(crate) async fn assert_problem(
    app: &TestApp,
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
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], "about:blank");
    assert!(body["title"].is_string(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
    body
}
