//! Registration in the registry while running, deregistration on shutdown.

use std::time::Duration;

use common::testing::contract;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread")]
async fn instance_is_registered_with_its_framework_and_gone_after_shutdown() {
    contract::registers_with_its_framework_and_deregisters_on_shutdown(spawn_app().await).await;
}

/// Rocket 0.5 sleeps out its whole grace period when any connection is open as it stops, even
/// an idle keep-alive one; with a grace period far beyond the test's patience, only a shutdown
/// that ends once drained can pass.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_connection_does_not_hold_up_a_graceful_shutdown() {
    let app =
        spawn_app_with(|config| config.timings.grace_period = Duration::from_secs(3600)).await;
    // The client keeps this connection open in its pool, as the aggregator's does.
    assert_eq!(app.get("/users/1").await.status(), 200);
    app.shutdown().await.expect("a clean stop");
}
