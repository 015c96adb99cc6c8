//! `spawn_app()`: the real service on port 0 with an in-memory registry (see `common::testing`)
//! and a SQLite file of its own.

use common::config::ServiceConfig;
pub(crate) use common::testing::{PATIENCE, TestService, assert_problem};
use rating_service::{INFO, StorageConfig};

/// Starts the service with test settings; returns once `/health` answers.
pub(crate) async fn spawn_app() -> TestService {
    spawn_app_with(|_| {}).await
}

/// Starts the service after `configure` adjusted its settings; returns once `/health` answers.
pub(crate) async fn spawn_app_with(configure: impl FnOnce(&mut ServiceConfig)) -> TestService {
    TestService::launch(INFO)
        .configure(configure)
        .start(|config, listener, registry, shutdown| {
            let data = tempfile::tempdir().unwrap();
            let storage = StorageConfig::sqlite(data.path().join("ratings.sqlite3"));
            async move {
                let result =
                    rating_service::run(config, storage, listener, registry, shutdown).await;
                // The database outlives the service, and goes with it.
                drop(data);
                result
            }
        })
        .await
}
