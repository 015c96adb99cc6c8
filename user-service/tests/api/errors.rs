//! Errors the framework would answer itself: unknown paths, wrong methods, odd path segments.

use common::testing::contract;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_path_is_a_404_problem() {
    let app = spawn_app().await;
    for path in ["/nowhere", "/user", "/users/1/2", "/users/1/extra", "/"] {
        let response = app.get(path).await;
        assert_problem(&app, response, 404).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let app = spawn_app().await;
    for path in ["/users", "/users/1", "/health"] {
        let response = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(response.headers()["allow"], "GET", "{path}");
        assert_problem(&app, response, 405).await;
    }
    let response = app.client.delete(app.url("/users/1")).send().await.unwrap();
    assert_problem(&app, response, 405).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_path_id_is_a_400_problem() {
    let app = spawn_app().await;
    let long = "a".repeat(65);
    for path in [
        "/users/a.b",
        "/users/%20",
        "/users/%C3%A9",
        &format!("/users/{long}"),
    ] {
        let response = app.get(path).await;
        assert_problem(&app, response, 400).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_path_segments_never_cause_a_server_error() {
    contract::odd_paths_never_cause_a_server_error(&spawn_app().await, "/users/1", &[]).await;
}
