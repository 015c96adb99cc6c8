//! `/health` and the headers every response carries.

use common::http::{INSTANCE_ID_HEADER, REQUEST_ID_HEADER};
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_reports_passing_with_service_and_instance() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[INSTANCE_ID_HEADER],
        app.instance_id.as_str()
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "passing", "service": "metadata-service", "instance": app.instance_id})
    );
}

#[tokio::test]
async fn every_response_names_the_instance_even_errors() {
    let app = spawn_app().await;
    for path in ["/health", "/metadata/1", "/metadata/a.b", "/nowhere"] {
        let response = app.get(path).await;
        assert_eq!(
            response.headers()[INSTANCE_ID_HEADER],
            app.instance_id.as_str(),
            "{path}"
        );
    }
    let response = app
        .client
        .delete(app.url("/metadata/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[INSTANCE_ID_HEADER],
        app.instance_id.as_str()
    );
}

#[tokio::test]
async fn a_callers_request_id_is_echoed() {
    let app = spawn_app().await;
    for path in ["/metadata/1", "/nowhere"] {
        let response = app
            .client
            .get(app.url(path))
            .header(REQUEST_ID_HEADER, "trace-me-42")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()[REQUEST_ID_HEADER],
            "trace-me-42",
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_missing_or_unusable_request_id_is_replaced_by_a_new_one() {
    let app = spawn_app().await;
    let first = app.get("/metadata/1").await;
    let second = app.get("/metadata/1").await;
    let (a, b) = (
        &first.headers()[REQUEST_ID_HEADER],
        &second.headers()[REQUEST_ID_HEADER],
    );
    assert!(
        !a.is_empty() && a != b,
        "each request gets its own ID: {a:?} {b:?}"
    );

    let response = app
        .client
        .get(app.url("/health"))
        .header(REQUEST_ID_HEADER, "x".repeat(500))
        .send()
        .await
        .unwrap();
    let id = response.headers()[REQUEST_ID_HEADER].to_str().unwrap();
    assert_eq!(
        id.len(),
        36,
        "a too-long ID is replaced by a UUID, got {id}"
    );
}
