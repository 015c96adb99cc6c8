//! Errors the framework would answer itself: unknown paths, wrong methods, odd path segments.

use common::testing::contract;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn an_unknown_path_is_a_404_problem() {
    let app = spawn_app().await;
    for path in [
        "/nowhere",
        "/ratings",
        "/ratings/movie",
        "/ratings/movie/1/extra",
        "/",
    ] {
        let response = app.get(path).await;
        assert_problem(&app, response, 404).await;
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(app.url("/ratings/movie/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "GET, PUT");
    assert_problem(&app, response, 405).await;
    let response = app.client.post(app.url("/health")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET");
    assert_problem(&app, response, 405).await;
}

#[tokio::test]
async fn an_invalid_path_id_is_a_400_problem() {
    let app = spawn_app().await;
    let long = "a".repeat(65);
    for path in [
        "/ratings/movie/a.b",
        "/ratings/mo%20vie/1",
        "/ratings/movie/%C3%A9",
        &format!("/ratings/movie/{long}"),
    ] {
        let response = app.get(path).await;
        assert_problem(&app, response, 400).await;
    }
}

#[tokio::test]
async fn odd_path_segments_never_cause_a_server_error() {
    let app = spawn_app().await;
    let huge = "a".repeat(10 * 1024);
    let extra = [
        "/ratings/../ratings/movie/1",
        "/ratings/%00/%00",
        &format!("/ratings/{huge}/1"),
    ];
    contract::odd_paths_never_cause_a_server_error(&app, "/ratings/movie/1", &extra).await;
}
