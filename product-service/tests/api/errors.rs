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
            "/product",
            "/products/",
            "/products/1/extra",
            "/",
        ],
        404,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let app = spawn_app().await;
    for path in ["/products", "/products/1", "/health"] {
        assert_method_not_allowed(&app, Method::POST, path, "GET").await;
    }
    assert_method_not_allowed(&app, Method::DELETE, "/products/1", "GET").await;
}

#[tokio::test]
async fn an_invalid_path_id_is_a_400_problem() {
    let app = spawn_app().await;
    let long = format!("/products/{}", "a".repeat(65));
    assert_problems(
        &app,
        &["/products/a.b", "/products/%20", "/products/%C3%A9", &long],
        400,
    )
    .await;
}

#[tokio::test]
async fn odd_path_segments_never_cause_a_server_error() {
    contract::odd_paths_never_cause_a_server_error(&spawn_app().await, "/products/1", &[]).await;
}
