//! `spawn_app()`: the real service on port 0 with an in-memory registry (see `common::testing`).

use common::config::ServiceConfig;
pub(crate) use common::testing::{TestService, assert_problem};
use metadata_service::INFO;

/// Starts the service with test settings; returns once `/health` answers.
pub(crate) async fn spawn_app() -> TestService {
    spawn_app_with(|_| {}).await
}

/// Starts the service after `configure` adjusted its settings; returns once `/health` answers.
pub(crate) async fn spawn_app_with(configure: impl FnOnce(&mut ServiceConfig)) -> TestService {
    TestService::launch(INFO)
        .configure(configure)
        .start(metadata_service::run)
        .await
}
