//! Demo faults: API routes fail with 503 problem details, `/health` never does.

use serde_json::json;

use crate::helpers::{assert_problem, spawn_app_with};

#[tokio::test]
async fn error_rate_one_fails_api_routes_but_not_health() {
    let app = spawn_app_with(|config| config.faults.error_rate = 1.0).await;
    let response = app.get("/ratings/movie/1").await;
    assert_problem(&app, response, 503).await;
    let response = app
        .put_json("/ratings/movie/1", &json!({"user_id": "dave", "value": 3}))
        .await;
    assert_problem(&app, response, 503).await;
    assert_eq!(app.get("/health").await.status(), 200);
}
