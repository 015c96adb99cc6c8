//! Errors the framework would answer itself: unknown paths, wrong methods, odd path segments.

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
    let app = spawn_app().await;
    let huge = "a".repeat(10 * 1024);
    let odd = [
        "/users/%00".to_owned(),
        "/users/..".to_owned(),
        "/users/../users/1".to_owned(),
        "/users/%2e%2e".to_owned(),
        "/users/%2F".to_owned(),
        "/users/%FF".to_owned(),
        "/users/%".to_owned(),
        "/users/%C3%A9".to_owned(),
        format!("/users/{huge}"),
        format!("/{huge}"),
        "/users/1?x=%00".to_owned(),
        "//users//1".to_owned(),
    ];
    for path in &odd {
        let status = app.raw_status(path).await;
        assert!(
            (400..500).contains(&status) || status == 200,
            "{status} for {path:.60}"
        );
    }
}
