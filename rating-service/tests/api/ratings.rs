//! `GET` and `PUT /ratings/{record_type}/{record_id}`.

use serde_json::{Value, json};

use crate::helpers::{TestService, assert_problem, spawn_app};

async fn put(app: &TestService, path: &str, user: &str, value: i64) -> Value {
    let response = app
        .put_json(path, &json!({"user_id": user, "value": value}))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_seeded_movie_has_an_aggregate() {
    let app = spawn_app().await;
    let response = app.get("/ratings/movie/1").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/json; charset=utf-8"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["record_type"], "movie");
    assert_eq!(body["record_id"], "1");
    assert!(body["count"].as_u64().unwrap() > 0);
    let average = body["average"].as_f64().unwrap();
    assert!((1.0..=5.0).contains(&average), "{average}");
}

#[tokio::test]
async fn an_unrated_record_has_a_null_average_and_zero_count() {
    let app = spawn_app().await;
    let response = app.get("/ratings/movie/404").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"record_type": "movie", "record_id": "404", "average": null, "count": 0})
    );
}

#[tokio::test]
async fn put_sets_a_rating_and_answers_the_new_aggregate() {
    let app = spawn_app().await;
    let body = put(&app, "/ratings/movie/77", "alice", 4).await;
    assert_eq!(
        body,
        json!({"record_type": "movie", "record_id": "77", "average": 4.0, "count": 1})
    );
    let read: Value = app.get("/ratings/movie/77").await.json().await.unwrap();
    assert_eq!(read, body);
}

#[tokio::test]
async fn the_same_put_twice_is_one_rating() {
    let app = spawn_app().await;
    put(&app, "/ratings/movie/77", "alice", 4).await;
    let body = put(&app, "/ratings/movie/77", "alice", 4).await;
    assert_eq!(
        (body["count"].as_u64(), body["average"].as_f64()),
        (Some(1), Some(4.0))
    );
}

#[tokio::test]
async fn a_second_user_adds_a_rating_to_the_average() {
    let app = spawn_app().await;
    put(&app, "/ratings/movie/77", "alice", 4).await;
    let body = put(&app, "/ratings/movie/77", "bob", 5).await;
    assert_eq!(
        (body["count"].as_u64(), body["average"].as_f64()),
        (Some(2), Some(4.5))
    );
}

#[tokio::test]
async fn a_user_changing_their_value_replaces_it() {
    let app = spawn_app().await;
    put(&app, "/ratings/movie/77", "alice", 4).await;
    put(&app, "/ratings/movie/77", "bob", 5).await;
    let body = put(&app, "/ratings/movie/77", "alice", 1).await;
    assert_eq!(
        (body["count"].as_u64(), body["average"].as_f64()),
        (Some(2), Some(3.0))
    );
}

#[tokio::test]
async fn ratings_are_kept_per_record_type() {
    let app = spawn_app().await;
    put(&app, "/ratings/movie/77", "alice", 5).await;
    let other: Value = app.get("/ratings/book/77").await.json().await.unwrap();
    assert_eq!(other["count"], 0);
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    for body in ["{", "not json", "{\"user_id\": \"a\", \"value\": 3,}", ""] {
        let response = app
            .client
            .put(app.url("/ratings/movie/1"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(&app, response, 400).await;
    }
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_a_415() {
    let app = spawn_app().await;
    let valid = r#"{"user_id": "alice", "value": 3}"#;
    let plain = app
        .client
        .put(app.url("/ratings/movie/1"))
        .header("content-type", "text/plain")
        .body(valid)
        .send()
        .await
        .unwrap();
    assert_problem(&app, plain, 415).await;
    let undeclared = app
        .client
        .put(app.url("/ratings/movie/1"))
        .body(valid)
        .send()
        .await
        .unwrap();
    assert_problem(&app, undeclared, 415).await;
}

#[tokio::test]
async fn well_formed_but_invalid_ratings_are_a_422() {
    let app = spawn_app().await;
    let long_user = "u".repeat(65);
    let cases = [
        json!({"user_id": "alice", "value": 0}),
        json!({"user_id": "alice", "value": 6}),
        json!({"user_id": "alice", "value": -3}),
        json!({"user_id": "alice", "value": 3.5}),
        json!({"user_id": "alice", "value": "3"}),
        json!({"user_id": "alice", "value": null}),
        json!({"user_id": "", "value": 3}),
        json!({"user_id": "   ", "value": 3}),
        json!({"user_id": long_user, "value": 3}),
        json!({"user_id": 7, "value": 3}),
        json!({"value": 3}),
        json!({"user_id": "alice"}),
        json!([1, 2]),
        json!({}),
    ];
    for body in cases {
        let response = app.put_json("/ratings/movie/1", &body).await;
        let problem = assert_problem(&app, response, 422).await;
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{body}");
    }
    let unchanged: Value = app.get("/ratings/movie/1").await.json().await.unwrap();
    assert_eq!(unchanged["count"], 3, "nothing invalid was stored");
}

#[tokio::test]
async fn a_body_over_16_kib_is_a_413() {
    let app = spawn_app().await;
    let padding = "x".repeat(17 * 1024);
    let response = app
        .put_json(
            "/ratings/movie/1",
            &json!({"user_id": "alice", "value": 3, "padding": padding}),
        )
        .await;
    assert_problem(&app, response, 413).await;
}

#[tokio::test]
async fn a_chunked_body_over_16_kib_is_a_413() {
    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://");
    let mut request = format!(
        "PUT /ratings/movie/1 HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..20 {
        request.extend_from_slice(b"400\r\n");
        request.extend_from_slice(&[b' '; 1024]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(app.raw_request(&request).await, 413);
}
