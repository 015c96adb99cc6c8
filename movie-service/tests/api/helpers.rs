//! Spawns the aggregator (through `common::testing`) with a memory registry and stub backend
//! instances; `start_aggregator` also serves the tests against real backends.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use common::config::ServiceConfig;
use common::registry::{HealthCheck, MemoryRegistry, Registration, Registry as _};
use common::testing::{TestService, eventually};
use common::upstream::UpstreamOptions;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// One stub instance of a backend service.
pub(crate) struct Stub {
    pub(crate) id: String,
    pub(crate) port: u16,
    pub(crate) hits: Arc<AtomicUsize>,
    pub(crate) failing: Arc<AtomicBool>,
    pub(crate) last_request_id: Arc<std::sync::Mutex<Option<String>>>,
    server: JoinHandle<()>,
}

#[derive(Clone)]
struct StubState {
    hits: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    last_request_id: Arc<std::sync::Mutex<Option<String>>>,
}

fn problem(status: StatusCode, detail: &str) -> axum::response::Response {
    (
        status,
        [("content-type", "application/problem+json")],
        json!({"type": "about:blank", "title": "x", "status": status.as_u16(), "detail": detail})
            .to_string(),
    )
        .into_response()
}

async fn guard(s: &StubState, headers: &HeaderMap) -> Option<axum::response::Response> {
    s.hits.fetch_add(1, Ordering::SeqCst);
    *s.last_request_id.lock().unwrap() = headers
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    s.failing
        .load(Ordering::SeqCst)
        .then(|| problem(StatusCode::SERVICE_UNAVAILABLE, "stub failing"))
}

fn metadata(id: &str) -> Value {
    json!({"id": id, "title": format!("Film {id}"), "description": "d", "director": "someone"})
}

async fn metadata_one(
    State(s): State<StubState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> axum::response::Response {
    if let Some(r) = guard(&s, &headers).await {
        return r;
    }
    if ["1", "2", "3"].contains(&id.as_str()) {
        Json(metadata(&id)).into_response()
    } else {
        problem(StatusCode::NOT_FOUND, "no such movie")
    }
}

async fn metadata_all(State(s): State<StubState>, headers: HeaderMap) -> axum::response::Response {
    if let Some(r) = guard(&s, &headers).await {
        return r;
    }
    Json(json!([metadata("1"), metadata("2"), metadata("3")])).into_response()
}

async fn rating_get(
    State(s): State<StubState>,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
) -> axum::response::Response {
    if let Some(r) = guard(&s, &headers).await {
        return r;
    }
    Json(json!({"record_type": kind, "record_id": id, "average": 4.5, "count": 2})).into_response()
}

async fn rating_put(
    State(s): State<StubState>,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> axum::response::Response {
    if let Some(r) = guard(&s, &headers).await {
        return r;
    }
    match body["value"].as_i64() {
        Some(v @ 1..=5) => {
            Json(json!({"record_type": kind, "record_id": id, "average": v, "count": 1}))
                .into_response()
        }
        _ => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "value must be an integer from 1 to 5",
        ),
    }
}

async fn entity(
    State(s): State<StubState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> axum::response::Response {
    if let Some(r) = guard(&s, &headers).await {
        return r;
    }
    if id == "1" {
        Json(json!({"id": id, "name": "one"})).into_response()
    } else {
        problem(StatusCode::NOT_FOUND, "no such thing")
    }
}

impl Stub {
    pub(crate) async fn start(service: &str, id: &str) -> Self {
        let state = StubState {
            hits: Arc::default(),
            failing: Arc::default(),
            last_request_id: Arc::default(),
        };
        let app = match service {
            "metadata-service" => Router::new()
                .route("/metadata", get(metadata_all))
                .route("/metadata/{id}", get(metadata_one)),
            "rating-service" => {
                Router::new().route("/ratings/{kind}/{id}", get(rating_get).put(rating_put))
            }
            "user-service" => Router::new().route("/users/{id}", get(entity)),
            _ => Router::new().route("/products/{id}", get(entity)),
        }
        .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            id: id.to_owned(),
            port,
            hits: state.hits,
            failing: state.failing,
            last_request_id: state.last_request_id,
            server,
        }
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops the server: connections to its port are refused, as after `kill -9`.
    pub(crate) fn kill(&self) {
        self.server.abort();
    }

    pub(crate) fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

/// The aggregator and the stub instances it calls.
pub(crate) struct TestApp {
    pub(crate) aggregator: TestService,
    pub(crate) stubs: Vec<(String, Stub)>,
}

/// The services the aggregator calls.
pub(crate) const BACKENDS: [&str; 4] = [
    "metadata-service",
    "rating-service",
    "user-service",
    "product-service",
];

pub(crate) async fn register(registry: &MemoryRegistry, service: &str, stub: &Stub) {
    registry
        .register(&Registration {
            id: stub.id.clone(),
            name: service.to_owned(),
            address: "127.0.0.1".into(),
            port: stub.port,
            tags: vec![],
            meta: Default::default(),
            check: HealthCheck::Ttl {
                ttl: Duration::from_secs(15),
            },
            deregister_critical_after: Duration::from_secs(60),
        })
        .await
        .unwrap();
}

/// The aggregator with two stub instances of each backend.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub(crate) async fn spawn_app_with(tweak: impl FnOnce(&mut ServiceConfig)) -> TestApp {
    let registry = Arc::new(MemoryRegistry::new());
    let mut stubs = Vec::new();
    for service in BACKENDS {
        for n in 1..=2 {
            let stub = Stub::start(service, &format!("{service}-{n}")).await;
            register(&registry, service, &stub).await;
            stubs.push((service.to_owned(), stub));
        }
    }
    let options = UpstreamOptions {
        attempt_timeout: Duration::from_millis(500),
        ..UpstreamOptions::default()
    };
    let expected = BACKENDS.map(|service| (service, 2));
    let aggregator = start_aggregator(registry, &expected, options, tweak).await;
    TestApp { aggregator, stubs }
}

/// Starts movie-service on `registry` and returns once it is registered and sees as many
/// instances of each backend as `expected` says.
pub(crate) async fn start_aggregator(
    registry: Arc<MemoryRegistry>,
    expected: &[(&str, usize)],
    options: UpstreamOptions,
    tweak: impl FnOnce(&mut ServiceConfig),
) -> TestService {
    let app = TestService::launch(movie_service::INFO)
        .registry(registry)
        .configure(tweak)
        .start(move |config, listener, registry, stop| {
            movie_service::run(config, options, listener, registry, stop)
        })
        .await;
    // The lifecycle registers after /health answers; the watchers fill in meanwhile.
    eventually(
        "the aggregator to register and see every backend",
        || async {
            let discovery = discovery(&app).await;
            let sees_all = expected
                .iter()
                .all(|&(s, n)| instances_of(&discovery, s).len() == n);
            (sees_all && app.registry.registration(&app.instance_id).is_some()).then_some(())
        },
    )
    .await;
    app
}

/// What the aggregator's `GET /discovery` answers.
pub(crate) async fn discovery(app: &TestService) -> Value {
    app.get("/discovery").await.json().await.unwrap()
}

/// The instances `/discovery` lists for `service` (none when it lists no such service).
pub(crate) fn instances_of(discovery: &Value, service: &str) -> Vec<Value> {
    discovery["services"][service]["instances"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

impl Deref for TestApp {
    type Target = TestService;

    fn deref(&self) -> &TestService {
        &self.aggregator
    }
}

impl TestApp {
    pub(crate) fn stubs_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Stub> + 'a {
        self.stubs
            .iter()
            .filter(move |(s, _)| s == service)
            .map(|(_, stub)| stub)
    }

    pub(crate) async fn discovery(&self) -> Value {
        discovery(&self.aggregator).await
    }

    pub(crate) async fn shutdown(self) {
        self.aggregator.shutdown().await.unwrap();
    }
}
