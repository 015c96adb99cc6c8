//! Errors the framework would answer itself: unknown paths, wrong methods, odd path segments.

use common::testing::{assert_method_not_allowed, assert_problems, contract};
use reqwest::Method;

use crate::helpers::spawn_app;

#[tokio::test]
async fn an_unknown_path_is_a_404_problem() {
    let app = spawn_app().await;
    assert_problems(
        &app,
        &[
            "/nowhere",
            "/ratings",
            "/ratings/movie",
            "/ratings/movie/1/extra",
            "/",
        ],
        404,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let app = spawn_app().await;
    assert_method_not_allowed(&app, Method::DELETE, "/ratings/movie/1", "GET, PUT").await;
    assert_method_not_allowed(&app, Method::POST, "/health", "GET").await;
}

#[tokio::test]
async fn an_invalid_path_id_is_a_400_problem() {
    let app = spawn_app().await;
    let long = format!("/ratings/movie/{}", "a".repeat(65));
    assert_problems(
        &app,
        &[
            "/ratings/movie/a.b",
            "/ratings/mo%20vie/1",
            "/ratings/movie/%C3%A9",
            &long,
        ],
        400,
    )
    .await;
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
