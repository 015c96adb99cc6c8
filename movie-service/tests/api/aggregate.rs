//! The aggregator's answers, degradation and failover.

use serde_json::{Value, json};

use crate::helpers::{Stub, register, spawn_app};

#[tokio::test]
async fn a_movie_combines_metadata_and_rating() {
    let app = spawn_app().await;
    let response = app.get("/movies/1").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "1");
    assert_eq!(body["metadata"]["title"], "Film 1");
    assert_eq!(body["rating"]["average"], 4.5);
    assert_eq!(body["degraded"], json!([]));
    app.shutdown().await;
}

#[tokio::test]
async fn an_unknown_movie_is_a_404_problem() {
    let app = spawn_app().await;
    let response = app.get("/movies/999").await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 404);
    app.shutdown().await;
}

#[tokio::test]
async fn without_any_rating_instance_the_answer_is_degraded_not_failed() {
    let app = spawn_app().await;
    for stub in app.stubs_of("rating-service") {
        stub.kill();
    }
    for _ in 0..5 {
        let response = app.get("/movies/2").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["rating"], Value::Null);
        assert_eq!(body["degraded"], json!(["rating-service"]));
        assert_eq!(body["metadata"]["id"], "2");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn without_metadata_the_answer_is_a_503_naming_the_service() {
    let app = spawn_app().await;
    for stub in app.stubs_of("metadata-service") {
        stub.fail(true);
    }
    let response = app.get("/movies/1").await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("metadata-service"),
        "{body}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn killing_one_instance_of_each_backend_fails_no_request() {
    let app = spawn_app().await;
    let mut killed = Vec::new();
    for service in ["metadata-service", "rating-service"] {
        let stub = app.stubs_of(service).next().unwrap();
        stub.kill();
        killed.push(stub.id.clone());
    }
    for _ in 0..40 {
        let response = app.get("/movies/3").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["degraded"], json!([]), "{body}");
    }
    let discovery = app.discovery().await;
    for (service, id) in ["metadata-service", "rating-service"].iter().zip(&killed) {
        let instances = discovery["services"][service]["instances"]
            .as_array()
            .unwrap();
        let dead = instances.iter().find(|i| i["id"] == id.as_str()).unwrap();
        assert_eq!(dead["state"], "ejected", "{discovery}");
        let alive = instances.iter().find(|i| i["id"] != id.as_str()).unwrap();
        assert_eq!(alive["state"], "healthy");
        assert!(alive["successes"].as_u64().unwrap() >= 40);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn discovery_shows_a_new_instance_and_it_takes_traffic() {
    let app = spawn_app().await;
    let extra = Stub::start("metadata-service", "metadata-service-3").await;
    register(&app.registry, "metadata-service", &extra).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let discovery = app.discovery().await;
        let instances = discovery["services"]["metadata-service"]["instances"]
            .as_array()
            .unwrap()
            .clone();
        if instances.len() == 3 {
            let entry = instances
                .iter()
                .find(|i| i["id"] == "metadata-service-3")
                .unwrap();
            assert_eq!(entry["address"], format!("127.0.0.1:{}", extra.port));
            assert_eq!(entry["state"], "healthy");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{discovery}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for _ in 0..6 {
        assert_eq!(app.get("/movies/1").await.status(), 200);
    }
    assert_eq!(
        extra.hits(),
        2,
        "round-robin gives the new instance its turn"
    );
    let discovery = app.discovery().await;
    let entry = &discovery["services"]["metadata-service"];
    assert!(entry["index"].as_u64().unwrap() > 0);
    assert_eq!(entry["stale"], false);
    assert!(entry["age_ms"].is_u64());
    app.shutdown().await;
}

#[tokio::test]
async fn the_movie_list_carries_each_rating() {
    let app = spawn_app().await;
    let response = app.get("/movies").await;
    assert_eq!(response.status(), 200);
    let body: Vec<Value> = response.json().await.unwrap();
    assert_eq!(body.len(), 3);
    assert!(
        body.iter()
            .all(|m| m["rating"]["count"] == 2 && m["degraded"] == json!([]))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_rating_is_forwarded_and_the_rating_services_4xx_is_kept() {
    let app = spawn_app().await;
    let ok = app
        .put_json("/movies/1/rating", &json!({"user_id": "u1", "value": 4}))
        .await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["average"], 4);

    let invalid = app
        .put_json("/movies/1/rating", &json!({"user_id": "u1", "value": 9}))
        .await;
    assert_eq!(invalid.status(), 422);
    let body: Value = invalid.json().await.unwrap();
    assert_eq!(body["detail"], "value must be an integer from 1 to 5");

    let unknown = app
        .put_json("/movies/999/rating", &json!({"user_id": "u1", "value": 4}))
        .await;
    assert_eq!(unknown.status(), 404);
    app.shutdown().await;
}

#[tokio::test]
async fn users_and_products_are_reached_through_discovery() {
    let app = spawn_app().await;
    for path in ["/users/1", "/products/1"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], "1");
    }
    for path in ["/users/2", "/products/2"] {
        assert_eq!(app.get(path).await.status(), 404, "{path}");
    }
    app.shutdown().await;
}
