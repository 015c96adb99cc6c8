//! Starting, restarting, shutting down and killing a registry; request counting; the UI.

use std::time::Duration;

use dev_registry::{Options, RunningRegistry};
use serde_json::{Value, json};

use crate::helpers::{client, spawn};

#[tokio::test]
async fn a_restarted_registry_on_the_same_port_starts_over() {
    let first = spawn().await;
    let addr = first.registry.addr();
    for n in 0..5 {
        first
            .register(&json!({"ID": format!("web-{n}"), "Name": "web"}))
            .await;
    }
    let (before, _) = first.get_json("/v1/health/service/web").await;
    first.registry.kill();

    let second = RunningRegistry::spawn_on(addr, Options::default())
        .await
        .unwrap();
    assert_eq!(second.addr(), addr);
    let response = client()
        .get(format!("{}/v1/health/service/web", second.url()))
        .send()
        .await
        .unwrap();
    let after = crate::helpers::consul_index(&response);
    assert_eq!(response.json::<Value>().await.unwrap(), json!([]));
    assert!(
        after < before,
        "the index went backwards: {before} -> {after}"
    );

    second.shutdown().await;
    let third = RunningRegistry::spawn_on(addr, Options::default())
        .await
        .unwrap();
    third.shutdown().await;
}

#[tokio::test]
async fn kill_fails_an_in_flight_blocking_query_with_a_transport_error() {
    let registry = spawn().await;
    let (index, _) = registry.get_json("/v1/catalog/services").await;
    let request = registry
        .client
        .get(registry.url(&format!("/v1/catalog/services?index={index}&wait=60s")));
    let task = tokio::spawn(async move {
        match request.send().await {
            Ok(response) => Err(format!("got a response: {}", response.status())),
            Err(e) => Ok(e),
        }
    });
    let task = crate::helpers::assert_pending(task, "before the kill").await;
    registry.registry.kill();
    let error = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the query was not cut")
        .unwrap()
        .unwrap();
    assert!(!error.is_status(), "{error}");
}

#[tokio::test]
async fn shutdown_answers_blocking_queries_and_frees_the_port() {
    let registry = spawn().await;
    let addr = registry.registry.addr();
    let (index, _) = registry.get_json("/v1/catalog/services").await;
    let request = registry
        .client
        .get(registry.url(&format!("/v1/catalog/services?index={index}&wait=60s")));
    let task = tokio::spawn(async move { request.send().await.map(|r| r.status()) });
    let task = crate::helpers::assert_pending(task, "before the shutdown").await;
    tokio::time::timeout(Duration::from_secs(5), registry.registry.shutdown())
        .await
        .expect("shutdown hung");
    let status = task.await.unwrap().unwrap();
    assert_eq!(status, 200);
    let rebound = tokio::net::TcpListener::bind(addr).await;
    assert!(rebound.is_ok(), "port still taken: {rebound:?}");
}

#[tokio::test]
async fn request_count_counts_api_requests() {
    let registry = spawn().await;
    assert_eq!(registry.registry.request_count(), 0);
    registry.get("/v1/status/leader").await;
    registry.get("/v1/nope").await;
    registry.put_empty("/v1/agent/service/register").await;
    assert_eq!(registry.registry.request_count(), 3);
    registry.get("/ui/api/state").await;
    assert_eq!(
        registry.registry.request_count(),
        3,
        "the status page is not counted"
    );
    assert_eq!(
        registry.registry.url(),
        format!("http://{}", registry.registry.addr())
    );
}

#[tokio::test]
async fn the_status_page_and_its_state_work_offline() {
    let registry = spawn().await;
    registry
        .register(
            &json!({"ID": "web-1", "Name": "web", "Address": "10.0.0.1", "Port": 80,
                          "Check": {"TTL": "30s", "Status": "passing"}}),
        )
        .await;
    for path in ["/ui", "/ui/"] {
        let response = registry.get(path).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains("/ui/api/state"));
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no external assets"
        );
    }
    let (_, state) = registry.get_json("/ui/api/state").await;
    assert_eq!(state["instances"][0]["id"], "web-1");
    assert_eq!(state["instances"][0]["endpoint"], "10.0.0.1:80");
    assert_eq!(state["instances"][0]["checks"][0]["status"], "passing");
    assert!(state["index"].as_u64().unwrap() >= 1);
}
