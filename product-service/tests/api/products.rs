//! `GET /products` and `GET /products/{id}`.

use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn the_catalogue_lists_the_seeded_products() {
    let app = spawn_app().await;
    let response = app.get("/products").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    let body: Vec<Value> = response.json().await.unwrap();
    let ids: Vec<_> = body.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    for product in &body {
        assert!(product["name"].is_string(), "{product}");
        assert!(product["price_cents"].is_u64(), "{product}");
        assert_eq!(product["currency"].as_str().unwrap().len(), 3, "{product}");
    }
}

#[tokio::test]
async fn a_product_is_found_by_id() {
    let app = spawn_app().await;
    let response = app.get("/products/2").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": "2", "name": "27-inch 4K monitor", "price_cents": 32900, "currency": "USD"})
    );
}

#[tokio::test]
async fn an_unknown_product_is_a_404_problem() {
    let app = spawn_app().await;
    let response = app.get("/products/999").await;
    let problem = assert_problem(&app, response, 404).await;
    assert_eq!(problem["detail"], "no product 999");
}
