//! `GET /metadata` and `GET /metadata/{id}`.

use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn the_catalogue_lists_five_classic_films() {
    let app = spawn_app().await;
    let response = app.get("/metadata").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    let body: Vec<Value> = response.json().await.unwrap();
    let ids: Vec<_> = body.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5"]);
    for movie in &body {
        let fields: Vec<_> = movie
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields.len(), 4, "{movie}");
        for field in ["id", "title", "description", "director"] {
            assert!(
                !movie[field].as_str().unwrap().is_empty(),
                "{field} of {movie}"
            );
        }
    }
}

#[tokio::test]
async fn a_movie_is_found_by_id() {
    let app = spawn_app().await;
    let response = app.get("/metadata/3").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "3");
    assert_eq!(body["title"], "Vertigo");
    assert_eq!(body["director"], "Alfred Hitchcock");
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("San Francisco")
    );
}

#[tokio::test]
async fn an_unknown_movie_is_a_404_problem() {
    let app = spawn_app().await;
    let response = app.get("/metadata/999").await;
    let problem = assert_problem(&app, response, 404).await;
    assert_eq!(problem["detail"], "no movie 999");
}
