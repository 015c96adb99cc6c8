//! End to end, with real processes: the dev registry, two instances each of metadata-service and
//! rating-service, and the aggregator, all started from the `devstack` binary on loopback ports.
//! Under a steady, bounded client load on the aggregator we SIGKILL an instance, SIGTERM another,
//! start a new one and restart the registry empty, and assert that no client request failed or
//! came back degraded, that the new instance gets traffic and that everything re-registers.
//!
//! Every child is killed when its `Stack` drops, so a failing assertion leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use devstack::component::Component;
use devstack::load::{Load, LoadPlan, Report};
use devstack::process::LogSink;
use devstack::stack::{InstanceRef, Launcher, Stack, free_port, successes_in};
use serde_json::Value;

/// Upper bound for any wait on the stack (polling, never a timing assertion).
const PATIENCE: Duration = Duration::from_secs(30);

/// The stack under test and its instances.
struct Fixture {
    stack: Stack,
    metadata: Vec<InstanceRef>,
    rating: Vec<InstanceRef>,
    movie: InstanceRef,
    /// The rating instances' shared SQLite file, removed with the fixture.
    _data: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        let data = tempfile::tempdir().unwrap();
        let mut launcher = Launcher::devstack(env!("CARGO_BIN_EXE_devstack"), LogSink::terminal());
        launcher.service_env.push((
            "DATABASE_URL".to_owned(),
            format!("sqlite://{}", data.path().join("ratings.sqlite3").display()),
        ));
        let registry = format!("127.0.0.1:{}", free_port().unwrap());
        let mut stack = Stack::new(launcher, registry.parse().unwrap()).unwrap();
        stack.start_registry().await.unwrap();
        let mut spawned = Vec::new();
        for component in [
            Component::Metadata,
            Component::Metadata,
            Component::Rating,
            Component::Rating,
        ] {
            spawned.push(stack.spawn(component, free_port().unwrap(), &[]).unwrap());
        }
        let movie = stack
            .spawn(
                Component::Movie,
                free_port().unwrap(),
                &[("UPSTREAM_STRATEGY", "resilient")],
            )
            .unwrap();
        stack
            .wait_all_passing(Duration::from_secs(60))
            .await
            .unwrap();
        let fixture = Fixture {
            stack,
            metadata: spawned[..2].to_vec(),
            rating: spawned[2..].to_vec(),
            movie,
            _data: data,
        };
        // Ready when the aggregator itself sees both instances of each upstream.
        fixture
            .until("the aggregator sees two of each upstream", |d| {
                healthy(d, "metadata-service") == 2 && healthy(d, "rating-service") == 2
            })
            .await;
        fixture
    }

    fn movie_url(&self) -> String {
        self.stack.instance(self.movie).url()
    }

    /// A load on `GET /movies/{id}` over every seeded movie, four workers, bounded to a minute.
    async fn load(&self) -> Load {
        let movies: Value = reqwest::get(format!("{}/movies", self.movie_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let urls: Vec<String> = movies
            .as_array()
            .unwrap()
            .iter()
            .map(|m| format!("{}/movies/{}", self.movie_url(), m["id"].as_str().unwrap()))
            .collect();
        assert!(!urls.is_empty());
        Load::start(LoadPlan {
            urls,
            concurrency: 4,
            pause: Duration::from_millis(5),
            request_timeout: Duration::from_secs(10),
            max_duration: Duration::from_secs(90),
        })
        .unwrap()
    }

    async fn discovery(&self) -> Value {
        reqwest::get(format!("{}/discovery", self.movie_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls `/discovery` until `condition` holds; panics with the last view after [`PATIENCE`].
    async fn until(&self, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let view = self.discovery().await;
            if condition(&view) {
                return view;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never: {what}; last /discovery: {view:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Healthy instances of `service` in a `/discovery` view.
fn healthy(view: &Value, service: &str) -> usize {
    instances(view, service)
        .iter()
        .filter(|i| i["state"] == "healthy")
        .count()
}

fn instances(view: &Value, service: &str) -> Vec<Value> {
    view["services"][service]["instances"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn assert_clean(report: &Report, at_least: usize) {
    assert!(
        report.samples.len() >= at_least,
        "the load sent only {} requests",
        report.samples.len()
    );
    assert!(
        report.failed().is_empty() && report.degraded().is_empty(),
        "{}",
        report.describe_failures()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_sigterm_and_a_new_instance_lose_no_request() {
    let mut f = Fixture::start().await;
    let load = f.load().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // SIGKILL: no deregistration; the aggregator must notice through failed calls alone.
    f.stack.kill(f.metadata[0]).await.unwrap();
    f.until("the killed metadata instance is ejected or gone", |d| {
        healthy(d, "metadata-service") == 1
    })
    .await;

    // SIGTERM: deregisters, drains, then stops; it must exit cleanly.
    f.stack.terminate(f.rating[0]).await.unwrap();
    f.until("the stopped rating instance left the list", |d| {
        instances(d, "rating-service").len() == 1
    })
    .await;

    // A new rating instance: discovered through the blocking query, then given traffic.
    let port = free_port().unwrap();
    let fresh = f.stack.start(Component::Rating, port, &[]).await.unwrap();
    f.until("the new rating instance serves the aggregator", |d| {
        successes_in(d, "rating-service", port).unwrap_or(0) > 0
    })
    .await;
    assert!(f.stack.is_passing(fresh).await);

    let report = load.stop().await;
    assert_clean(&report, 50);
    f.stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_restarted_empty_is_repopulated_without_a_failed_request() {
    let mut f = Fixture::start().await;
    let load = f.load().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    f.stack.kill_registry().await.unwrap();
    // Served from the last known lists while the registry is away.
    tokio::time::sleep(Duration::from_secs(2)).await;
    f.stack.start_registry().await.unwrap();

    // Every instance re-registers on its own (the new registry starts empty)…
    f.stack.wait_all_passing(PATIENCE).await.unwrap();
    // …and the aggregator's watchers pick the new registry's lists up.
    f.until("the aggregator's lists come from the new registry", |d| {
        healthy(d, "metadata-service") == 2
            && healthy(d, "rating-service") == 2
            && d["services"]["rating-service"]["error"].is_null()
            && d["services"]["metadata-service"]["error"].is_null()
    })
    .await;
    // A little more load on the repopulated registry before judging.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let report = load.stop().await;
    assert_clean(&report, 50);
    f.stack.shutdown().await.unwrap();
}
