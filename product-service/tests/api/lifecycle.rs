//! Registration in the registry while running, deregistration on shutdown.

use common::testing::contract;

use crate::helpers::spawn_app;

#[tokio::test]
async fn instance_is_registered_with_its_framework_and_gone_after_shutdown() {
    contract::registers_with_its_framework_and_deregisters_on_shutdown(spawn_app().await).await;
}
