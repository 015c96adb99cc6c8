//! Blocking queries: what wakes them, what does not, timeouts and stale indexes.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::helpers::{TestRegistry, assert_pending, consul_index, spawn};

/// How long a blocking query that should be woken may take at most.
const PROMPTLY: Duration = Duration::from_secs(5);

/// Starts `GET path` in the background; yields status, index and body.
fn start_get(registry: &TestRegistry, path: &str) -> JoinHandle<(u16, u64, Value)> {
    let request = registry.client.get(registry.url(path));
    tokio::spawn(async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let index = consul_index(&response);
        (status, index, response.json().await.unwrap())
    })
}

/// Awaits a woken query.
async fn finished(task: JoinHandle<(u16, u64, Value)>, what: &str) -> (u16, u64, Value) {
    tokio::time::timeout(PROMPTLY, task)
        .await
        .unwrap_or_else(|_| panic!("{what}: the blocking query was not woken"))
        .unwrap()
}

#[tokio::test]
async fn health_query_wakes_on_register_of_its_service_and_not_of_another() {
    let registry = spawn().await;
    registry
        .register(&json!({"ID": "a-1", "Name": "alpha"}))
        .await;
    let (index, _) = registry.get_json("/v1/health/service/alpha").await;

    let task = start_get(
        &registry,
        &format!("/v1/health/service/alpha?index={index}&wait=60s"),
    );
    let task = assert_pending(task, "before any change").await;
    registry
        .register(&json!({"ID": "b-1", "Name": "beta"}))
        .await;
    let task = assert_pending(task, "after registering another service").await;

    registry
        .register(&json!({"ID": "a-2", "Name": "alpha"}))
        .await;
    let (status, new_index, body) = finished(task, "registering alpha").await;
    assert_eq!(status, 200);
    assert!(new_index > index);
    assert_eq!(body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn health_query_wakes_on_deregister_and_on_a_status_change() {
    let registry = spawn().await;
    registry
        .register(&json!({"ID": "a-1", "Name": "alpha", "Check": {"TTL": "60s"}}))
        .await;
    registry
        .register(&json!({"ID": "a-2", "Name": "alpha"}))
        .await;

    let (index, _) = registry.get_json("/v1/health/service/alpha").await;
    let task = start_get(
        &registry,
        &format!("/v1/health/service/alpha?index={index}&wait=60s"),
    );
    let task = assert_pending(task, "before the TTL pass").await;
    registry.put_empty("/v1/agent/check/pass/service:a-1").await;
    let (_, after_pass, body) = finished(task, "TTL pass").await;
    assert!(after_pass > index);
    assert_eq!(body[0]["Checks"][1]["Status"], "passing");

    let task = start_get(
        &registry,
        &format!("/v1/health/service/alpha?index={after_pass}&wait=60s"),
    );
    let task = assert_pending(task, "before deregistering").await;
    registry.put_empty("/v1/agent/service/deregister/a-2").await;
    let (_, after_deregister, body) = finished(task, "deregister").await;
    assert!(after_deregister > after_pass);
    assert_eq!(body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn output_only_changes_do_not_wake_health_queries() {
    let registry = spawn().await;
    registry
        .register(&json!({"Name": "alpha", "Check": {"TTL": "60s", "Status": "passing"}}))
        .await;
    let (index, _) = registry.get_json("/v1/health/service/alpha").await;
    let task = start_get(
        &registry,
        &format!("/v1/health/service/alpha?index={index}&wait=60s"),
    );
    registry
        .put_empty("/v1/agent/check/pass/service:alpha?note=one")
        .await;
    registry
        .put_empty("/v1/agent/check/pass/service:alpha?note=two")
        .await;
    let task = assert_pending(task, "after output-only heartbeats").await;
    registry
        .put_empty("/v1/agent/check/warn/service:alpha")
        .await;
    let (_, new_index, _) = finished(task, "status change").await;
    assert!(new_index > index);
}

#[tokio::test]
async fn catalog_services_wakes_on_a_new_service_but_not_on_check_status() {
    let registry = spawn().await;
    registry
        .register(&json!({"Name": "alpha", "Check": {"TTL": "60s"}}))
        .await;
    let (index, _) = registry.get_json("/v1/catalog/services").await;
    let task = start_get(
        &registry,
        &format!("/v1/catalog/services?index={index}&wait=60s"),
    );
    registry
        .put_empty("/v1/agent/check/pass/service:alpha")
        .await;
    let task = assert_pending(task, "after a check status change").await;
    registry.register(&json!({"Name": "beta"})).await;
    let (_, new_index, body) = finished(task, "new service").await;
    assert!(new_index > index);
    assert!(body.get("beta").is_some());
}

#[tokio::test]
async fn catalog_service_query_wakes_on_its_name_only() {
    let registry = spawn().await;
    let (index, _) = registry.get_json("/v1/catalog/service/alpha").await;
    let task = start_get(
        &registry,
        &format!("/v1/catalog/service/alpha?index={index}&wait=60s"),
    );
    let task = assert_pending(task, "before any change").await;
    registry.register(&json!({"Name": "beta"})).await;
    let task = assert_pending(task, "after registering another service").await;
    registry.register(&json!({"Name": "alpha"})).await;
    let (_, _, body) = finished(task, "registering alpha").await;
    assert_eq!(body[0]["ServiceName"], "alpha");
}

#[tokio::test]
async fn a_query_times_out_after_wait_with_current_data() {
    let registry = spawn().await;
    registry.register(&json!({"Name": "alpha"})).await;
    let (index, before) = registry.get_json("/v1/health/service/alpha").await;
    let (status, after_index, after) = finished(
        start_get(
            &registry,
            &format!("/v1/health/service/alpha?index={index}&wait=200ms"),
        ),
        "wait",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(after_index, index);
    assert_eq!(after, before);
}

#[tokio::test]
async fn a_stale_index_waits_and_returns_a_lower_index() {
    let registry = spawn().await;
    registry.register(&json!({"Name": "alpha"})).await;
    let (index, _) = registry.get_json("/v1/health/service/alpha").await;
    let stale = index + 1000;
    let (status, returned, body) = finished(
        start_get(
            &registry,
            &format!("/v1/health/service/alpha?index={stale}&wait=200ms"),
        ),
        "stale",
    )
    .await;
    assert_eq!(status, 200);
    assert!(returned < stale);
    assert_eq!(body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn indexes_are_never_zero_and_never_go_backwards() {
    let registry = spawn().await;
    let mut last = 0;
    let mut observe = |index: u64| {
        assert!(index >= 1);
        assert!(index >= last, "index went from {last} to {index}");
        last = index;
    };
    observe(registry.get_json("/v1/health/service/alpha").await.0);
    observe(registry.get_json("/v1/catalog/services").await.0);
    registry
        .register(&json!({"Name": "alpha", "Check": {"TTL": "60s"}}))
        .await;
    observe(registry.get_json("/v1/health/service/alpha").await.0);
    registry
        .put_empty("/v1/agent/check/pass/service:alpha")
        .await;
    observe(registry.get_json("/v1/health/service/alpha").await.0);
    registry
        .put_empty("/v1/agent/service/deregister/alpha")
        .await;
    let (after_deregister, body) = registry.get_json("/v1/health/service/alpha").await;
    observe(after_deregister);
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn an_identical_reregistration_does_not_wake_watchers() {
    let registry = spawn().await;
    let body = json!({"Name": "alpha", "Check": {"TTL": "60s"}});
    registry.register(&body).await;
    let (index, _) = registry.get_json("/v1/health/service/alpha").await;
    let task = start_get(
        &registry,
        &format!("/v1/health/service/alpha?index={index}&wait=60s"),
    );
    registry.register(&body).await;
    let task = assert_pending(task, "after an identical re-registration").await;
    task.abort();
}

#[tokio::test]
async fn invalid_blocking_parameters_are_rejected() {
    let registry = spawn().await;
    let response = registry.get("/v1/catalog/services?index=1&wait=5").await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.text().await.unwrap(), "Invalid wait time");
    let response = registry.get("/v1/catalog/service/x?index=-1").await;
    assert_eq!(response.text().await.unwrap(), "Invalid index");
}

#[tokio::test]
async fn agent_service_hash_blocking_wakes_when_the_definition_changes() {
    let registry = spawn().await;
    registry
        .register(&json!({"ID": "web-1", "Name": "web", "Port": 80}))
        .await;
    let response = registry.get("/v1/agent/service/web-1").await;
    let hash = response.headers()["x-consul-contenthash"]
        .to_str()
        .unwrap()
        .to_owned();

    let task = start_get(
        &registry,
        &format!("/v1/agent/service/web-1?hash={hash}&wait=60s"),
    );
    let task = assert_pending(task, "before any change").await;
    registry
        .register(&json!({"ID": "web-1", "Name": "web", "Port": 80}))
        .await;
    let task = assert_pending(task, "after an identical re-registration").await;
    registry
        .register(&json!({"ID": "web-1", "Name": "web", "Port": 81}))
        .await;
    let (status, _, body) = finished(task, "changing the port").await;
    assert_eq!(status, 200);
    assert_eq!(body["Port"], 81);
    assert_ne!(body["ContentHash"], hash.as_str());
}
