//! `GET /users` and `GET /users/{id}`.

use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test(flavor = "multi_thread")]
async fn the_directory_lists_the_seeded_users() {
    let app = spawn_app().await;
    let response = app.get("/users").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    let body: Vec<Value> = response.json().await.unwrap();
    let ids: Vec<_> = body.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    for user in &body {
        assert!(user["name"].is_string(), "{user}");
        assert!(user["email"].as_str().unwrap().contains('@'), "{user}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_is_found_by_id() {
    let app = spawn_app().await;
    let response = app.get("/users/3").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": "3", "name": "Grace Hopper", "email": "grace@example.com"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_is_a_404_problem() {
    let app = spawn_app().await;
    let response = app.get("/users/999").await;
    let problem = assert_problem(&app, response, 404).await;
    assert_eq!(problem["detail"], "no user 999");
}
