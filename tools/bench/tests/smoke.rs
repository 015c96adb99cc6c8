//! End to end, briefly: the rig starts from the real `bench` binary (every component a child
//! process), and the measurements behind the table see what they must: answers without
//! failures, the naive aggregator asking the registry twice per request, ours never, and a
//! SIGTERMed instance leaving without a failed request. Behaviour only: no figure is compared
//! with a speed, and the windows are a fraction of a real run's.

use std::time::Duration;

use bench::plan::Plan;
use bench::rig::{Rig, RigOptions};
use bench::scenarios;

fn tiny_plan() -> Plan {
    Plan {
        mode: "smoke",
        repeats: 1,
        warmup: Duration::from_millis(100),
        throughput_window: Duration::from_millis(300),
        latency_window: Duration::from_millis(300),
        registry_window: Duration::from_secs(1),
        side_load_window: Duration::from_millis(300),
        kill_repeats: 1,
        scale_repeats: 1,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rig_measures_speed_registry_calls_and_a_sigterm_end_to_end() {
    let mut rig = Rig::start(&RigOptions {
        program: env!("CARGO_BIN_EXE_bench").into(),
        service_log: "warn".into(),
        show_logs: false,
    })
    .await
    .expect("the rig starts");
    let plan = tiny_plan();

    let idle = scenarios::rss_now(&rig);
    for service in [
        "dev-registry",
        "metadata-service",
        "rating-service",
        "movie-service",
    ] {
        assert!(
            idle.get(service).is_some_and(|mb| *mb > 0.0),
            "{service}: {idle:?}"
        );
    }

    let calls = scenarios::registry_calls(&rig, &plan).await.unwrap();
    assert!(
        calls.ours_detail.requests > 0 && calls.naive_detail.requests > 0,
        "{calls:?}"
    );
    assert_eq!(
        calls.ours_detail.failed + calls.naive_detail.failed,
        0,
        "{calls:?}"
    );
    assert!(
        (1.5..=2.5).contains(&calls.naive),
        "naive looks up metadata and rating on every request: {calls:?}"
    );
    assert!(calls.ours < 0.05, "ours reads its cached lists: {calls:?}");

    let speed = scenarios::throughput(&rig, &plan).await.unwrap();
    let pair = &speed.repeats[0];
    assert!(
        speed.movie_rps > 0.0 && speed.metadata_direct_rps > 0.0,
        "{speed:?}"
    );
    assert_eq!(
        (pair.movie_failed, pair.movie_degraded, pair.direct_failed),
        (0, 0, 0),
        "{pair:?}"
    );

    let sigterm = scenarios::sigterm(&mut rig).await.unwrap();
    assert!(sigterm.requests > 0, "{sigterm:?}");
    assert_eq!((sigterm.failed, sigterm.degraded), (0, 0), "{sigterm:?}");

    rig.shutdown().await.expect("every child stops cleanly");
}
