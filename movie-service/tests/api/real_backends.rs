//! The aggregator in front of the real backends: two instances each of metadata-service (warp)
//! and rating-service (poem), one each of user-service (Rocket) and product-service (actix-web),
//! all started through their `run` functions on port 0, each on a runtime of its own.
//!
//! They share one `MemoryRegistry` rather than the dev registry. The memory registry runs no
//! health checks, so an instance killed without deregistering stays listed as passing for the
//! whole test: the window between `kill -9` and the registry's check noticing, made permanent.
//! What keeps requests from failing is then only the aggregator's own retries and ejection,
//! which is what these tests are about, and no assertion depends on check timing. The dev
//! registry's part (checks, reaping, blocking queries) is tested in `common` and `dev-registry`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::registry::MemoryRegistry;
use common::shutdown::Trigger;
use common::testing::{TestService, assert_problem, eventually};
use common::upstream::UpstreamOptions;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::helpers::{discovery, instances_of, start_aggregator};

/// Starts one rating-service instance on the fleet's shared SQLite file, as replicas on one
/// machine share theirs. The only place that calls `rating_service::run`.
async fn start_rating(registry: &Arc<MemoryRegistry>, data: &tempfile::TempDir) -> TestService {
    let storage = rating_service::StorageConfig::sqlite(data.path().join("ratings.sqlite3"));
    TestService::launch(rating_service::INFO)
        .registry(registry.clone())
        .start(move |config, listener, registry, shutdown| {
            rating_service::run(config, storage, listener, registry, shutdown)
        })
        .await
}

/// Starts one metadata-service instance.
async fn start_metadata(registry: &Arc<MemoryRegistry>) -> TestService {
    TestService::launch(metadata_service::INFO)
        .registry(registry.clone())
        .start(metadata_service::run)
        .await
}

/// Every service, started for real on one registry.
struct Fleet {
    registry: Arc<MemoryRegistry>,
    metadata: Vec<TestService>,
    rating: Vec<TestService>,
    /// Kept running for `/users` and `/products`.
    _user: TestService,
    _product: TestService,
    aggregator: TestService,
    /// The rating instances' database; declared last so it is removed after they stop.
    data: tempfile::TempDir,
}

impl Fleet {
    async fn start() -> Self {
        let registry = Arc::new(MemoryRegistry::new());
        let metadata = vec![
            start_metadata(&registry).await,
            start_metadata(&registry).await,
        ];
        let data = tempfile::tempdir().unwrap();
        let rating = vec![
            start_rating(&registry, &data).await,
            start_rating(&registry, &data).await,
        ];
        let user = TestService::launch(user_service::INFO)
            .registry(registry.clone())
            .start(user_service::run)
            .await;
        let product = TestService::launch(product_service::INFO)
            .registry(registry.clone())
            .start(product_service::run)
            .await;
        let expected = [
            ("metadata-service", 2),
            ("rating-service", 2),
            ("user-service", 1),
            ("product-service", 1),
        ];
        let aggregator = start_aggregator(
            registry.clone(),
            &expected,
            UpstreamOptions::default(),
            |_| {},
        )
        .await;
        Self {
            registry,
            metadata,
            rating,
            _user: user,
            _product: product,
            data,
            aggregator,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.aggregator.get(path).await
    }

    /// Waits until `/discovery` lists `n` instances of `service`, and returns them.
    async fn wait_for_instances(&self, service: &str, n: usize) -> Vec<Value> {
        eventually(&format!("{n} instance(s) of {service}"), || async {
            let instances = instances_of(&discovery(&self.aggregator).await, service);
            (instances.len() == n).then_some(instances)
        })
        .await
    }

    /// Waits until `/discovery` shows the instance `id` of `service` and `check` accepts it.
    async fn wait_for_instance(
        &self,
        service: &str,
        id: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(&format!("{service} {id} to be {what}"), || async {
            instances_of(&discovery(&self.aggregator).await, service)
                .into_iter()
                .find(|i| i["id"] == id && check(i))
        })
        .await
    }
}

/// Requests sent by [`steady_load`] and what went wrong with any of them.
#[derive(Default)]
struct Tally {
    answered: AtomicUsize,
    problems: Mutex<Vec<String>>,
}

impl Tally {
    fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    fn problem(&self, problem: String) {
        self.problems.lock().unwrap().push(problem);
    }

    /// Waits until `n` more requests than now have been answered.
    async fn wait_for(&self, n: usize) {
        let target = self.answered() + n;
        eventually(&format!("{target} answered requests"), || async {
            (self.answered() >= target).then_some(())
        })
        .await;
    }
}

/// Clients that ask the aggregator for every movie, one by one and as a list, until `stop`
/// fires; any answer that is not a full 200 (metadata and rating) is a problem.
fn steady_load(
    aggregator: &TestService,
    clients: usize,
    tally: &Arc<Tally>,
    stop: &Trigger,
) -> Vec<JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let (client, tally, stop) = (aggregator.client.clone(), tally.clone(), stop.clone());
            let base = aggregator.address.clone();
            tokio::spawn(async move {
                let paths = ["/movies/1", "/movies/2", "/movies/3", "/movies"];
                for path in paths.iter().cycle() {
                    if stop.fired() {
                        return;
                    }
                    let outcome = match client.get(format!("{base}{path}")).send().await {
                        Ok(response) => {
                            let status = response.status();
                            let body: Value = response.json().await.unwrap_or_default();
                            let movies = body.as_array().cloned().unwrap_or_else(|| vec![body]);
                            let whole = movies.iter().all(|m| {
                                m["degraded"] == json!([]) && m["rating"]["count"].is_u64()
                            });
                            (status == 200 && whole)
                                .then_some(())
                                .ok_or_else(|| format!("{path}: {status} {movies:?}"))
                        }
                        Err(e) => Err(format!("{path}: {e}")),
                    };
                    if let Err(problem) = outcome {
                        tally.problem(problem);
                    }
                    tally.answered.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_stopped_or_killed_under_steady_load_cost_no_request() {
    let mut fleet = Fleet::start().await;
    let tally = Arc::new(Tally::default());
    let stop = Trigger::new();
    let load = steady_load(&fleet.aggregator, 3, &tally, &stop);
    tally.wait_for(20).await;

    // A clean stop (SIGTERM): deregisters, drains, goes.
    let stopped = fleet.metadata.remove(0);
    let stopped_id = stopped.instance_id.clone();
    stopped.shutdown().await.expect("a clean stop");
    tally.wait_for(50).await;

    // kill -9: every socket closes at once, nothing deregisters.
    let killed = fleet.rating.remove(0);
    let (killed_id, killed_port) = (killed.instance_id.clone(), killed.port);
    killed.kill().await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", killed_port))
            .await
            .is_err(),
        "nothing listens on a killed instance's port"
    );
    tally.wait_for(100).await;

    let ejected = fleet
        .wait_for_instance("rating-service", &killed_id, "ejected", |i| {
            i["state"] == "ejected"
        })
        .await;
    assert!(ejected["failures"].as_u64().unwrap() >= 1, "{ejected}");
    assert!(
        fleet.registry.registration(&killed_id).is_some(),
        "a killed instance stays registered; only the aggregator knows it is gone"
    );
    let left = fleet.wait_for_instances("metadata-service", 1).await;
    assert_ne!(left[0]["id"], stopped_id.as_str(), "the stopped one left");
    tally.wait_for(50).await;

    stop.fire();
    for client in load {
        client.await.unwrap();
    }
    let problems = tally.problems.lock().unwrap();
    assert!(
        problems.is_empty(),
        "{} of {} requests failed or were degraded: {:#?}",
        problems.len(),
        tally.answered(),
        &problems[..problems.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_instance_shows_in_discovery_and_then_takes_traffic() {
    let fleet = Fleet::start().await;
    let extra = start_rating(&fleet.registry, &fleet.data).await;
    let listed = fleet
        .wait_for_instance("rating-service", &extra.instance_id, "listed", |_| true)
        .await;
    assert_eq!(listed["address"], format!("127.0.0.1:{}", extra.port));
    assert_eq!(listed["state"], "healthy");
    fleet.wait_for_instances("rating-service", 3).await;

    // Round-robin over three instances: its turn comes within three requests.
    for _ in 0..3 {
        assert_eq!(fleet.get("/movies/1").await.status(), 200);
    }
    let used = fleet
        .wait_for_instance("rating-service", &extra.instance_id, "used", |i| {
            i["successes"].as_u64() > Some(0)
        })
        .await;
    assert_eq!(used["failures"], 0, "{used}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_ratings_movies_are_degraded_and_without_metadata_they_fail_naming_it() {
    let mut fleet = Fleet::start().await;
    let whole: Value = fleet.get("/movies/1").await.json().await.unwrap();
    assert_eq!(whole["metadata"]["title"], "Casablanca", "{whole}");
    assert_eq!(whole["rating"]["count"], 3, "{whole}");
    assert_eq!(whole["degraded"], json!([]));
    let unknown = fleet.get("/movies/999").await;
    assert_problem(&fleet.aggregator, unknown, 404).await;
    for path in ["/users/1", "/products/1"] {
        let response = fleet.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.json::<Value>().await.unwrap()["id"], "1");
    }

    // One rating instance killed, the other stopped cleanly: none left.
    fleet.rating.remove(0).kill().await;
    fleet.rating.remove(0).shutdown().await.unwrap();
    for _ in 0..4 {
        let response = fleet.get("/movies/2").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["rating"], Value::Null, "{body}");
        assert_eq!(body["degraded"], json!(["rating-service"]));
        assert_eq!(body["metadata"]["id"], "2");
    }

    // The same for metadata: the answer is a 503 that names the service.
    fleet.metadata.remove(0).kill().await;
    fleet.metadata.remove(0).shutdown().await.unwrap();
    for path in ["/movies/1", "/movies"] {
        let response = fleet.get(path).await;
        let problem = assert_problem(&fleet.aggregator, response, 503).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("metadata-service"),
            "{problem}"
        );
    }
}
