//! Headers, problem JSON for every error, input checks, faults and lifecycle.

use common::testing::contract;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn health_answers_passing_with_the_instance() {
    let app = spawn_app().await;
    contract::health_reports_passing(&app).await;
}

#[tokio::test]
async fn every_response_names_the_instance_and_carries_a_request_id() {
    let app = spawn_app().await;
    for path in ["/health", "/movies/1", "/nope", "/movies/999"] {
        let response = app.get(path).await;
        assert!(response.headers().contains_key("x-instance-id"), "{path}");
        assert_eq!(
            response.headers()["x-request-id"].to_str().unwrap().len(),
            36,
            "{path}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_callers_request_id_is_echoed_and_forwarded_upstream() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/movies/1"))
        .header("x-request-id", "trace-me-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-7");
    let forwarded: Vec<_> = app
        .stubs_of("metadata-service")
        .filter_map(|s| s.last_request_id.lock().unwrap().clone())
        .collect();
    assert_eq!(forwarded, ["trace-me-7"]);
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_problems() {
    let app = spawn_app().await;
    let response = app.get("/nope").await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let response = app
        .client
        .delete(app.url("/movies/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn odd_ids_and_bad_bodies_are_4xx_never_5xx() {
    let app = spawn_app().await;
    let long = "x".repeat(10_000);
    for path in [
        "/movies/%00",
        "/movies/..%2F..",
        "/movies/%C3%A9",
        &format!("/movies/{long}"),
        "/users/a%20b",
    ] {
        let status = app.get(path).await.status();
        assert!(status.is_client_error(), "{path}: {status}");
    }
    let url = app.url("/movies/1/rating");
    let cases = [
        ("application/json", "{not json".to_owned(), 400),
        ("text/plain", "{}".to_owned(), 415),
        ("application/json", r#"{"value": 3}"#.to_owned(), 422),
        (
            "application/json",
            format!(r#"{{"user_id": "{}", "value": 3}}"#, "u".repeat(20_000)),
            413,
        ),
    ];
    for (content_type, body, expected) in cases {
        let response = app
            .client
            .put(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{content_type}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn an_injected_fault_is_a_503_on_the_api_but_not_on_health() {
    let app = spawn_app_with(|c| c.faults = common::fault::Faults::new(0, 1.0).unwrap()).await;
    let response = app.get("/movies/1").await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(app.get("/health").await.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn it_registers_with_its_framework_and_deregisters_on_shutdown() {
    let app = spawn_app().await;
    contract::registers_with_its_framework_and_deregisters_on_shutdown(app.aggregator).await;
}
