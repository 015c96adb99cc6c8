//! Registration in the registry while running, deregistration on shutdown.

use std::time::Duration;

use common::registry::Registry;

use crate::helpers::{PATIENCE, spawn_app};

#[tokio::test]
async fn instance_is_registered_with_its_framework_and_gone_after_shutdown() {
    let app = spawn_app().await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let registration = loop {
        if let Some(registration) = app.registry.registration(&app.instance_id) {
            break registration;
        }
        assert!(tokio::time::Instant::now() < deadline, "never registered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(registration.name, "product-service");
    assert_eq!(registration.meta["framework"], "actix-web");
    assert_eq!(registration.address, "127.0.0.1");
    assert_eq!(
        app.address,
        format!("http://127.0.0.1:{}", registration.port)
    );

    let registry = app.registry.clone();
    let id = app.instance_id.clone();
    app.shutdown()
        .await
        .expect("run returns Ok after a graceful shutdown");
    assert!(
        !registry.is_registered(&id).await.unwrap(),
        "deregistered on shutdown"
    );
}
