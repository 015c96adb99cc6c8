//! Checks the registry runs itself: HTTP, TCP, TTL expiry and reaping.

use serde_json::json;

use crate::helpers::{Upstream, eventually, eventually_value, fast_options, spawn_with};

#[tokio::test]
async fn http_check_status_follows_the_upstream() {
    let registry = spawn_with(fast_options()).await;
    let upstream = Upstream::start(200).await;
    let url = upstream.url("/health");
    registry
        .register(&json!({"Name": "web", "Check": {"HTTP": url, "Interval": "20ms"}}))
        .await;

    let check = registry.wait_for_check("service:web", "passing").await;
    assert_eq!(
        check["Output"],
        format!("HTTP GET {url}: 200 OK Output: hello")
    );
    upstream.set_status(429);
    let check = registry.wait_for_check("service:web", "warning").await;
    assert_eq!(
        check["Output"],
        format!("HTTP GET {url}: 429 Too Many Requests Output: hello")
    );
    upstream.set_status(500);
    registry.wait_for_check("service:web", "critical").await;
    upstream.set_status(204);
    registry.wait_for_check("service:web", "passing").await;

    upstream.close().await;
    registry.wait_for_check("service:web", "critical").await;
    // A probe already connected when the listener closed reads "connection reset by peer";
    // every later one is refused, and that is the output the check settles on.
    let refused = eventually_value(|| async {
        let check = registry.check("service:web").await?;
        let output = check["Output"].as_str()?.to_owned();
        (check["Status"] == "critical" && output.ends_with("connect: connection refused"))
            .then_some(output)
    })
    .await;
    let output = refused.unwrap_or_else(|| {
        panic!("the check output never read as refused");
    });
    assert!(
        output.starts_with(&format!("Get \"{url}\": dial tcp")),
        "{output}"
    );
}

#[tokio::test]
async fn http_check_sends_method_headers_and_body() {
    let registry = spawn_with(fast_options()).await;
    let upstream = Upstream::start(200).await;
    registry
        .register(&json!({"Name": "web", "Check": {
            "HTTP": upstream.url("/ping"), "Interval": "20ms", "Method": "POST",
            "Header": {"X-Probe": ["one"]}, "Body": "ping"
        }}))
        .await;
    registry.wait_for_check("service:web", "passing").await;
    let seen = upstream.seen();
    let first = &seen[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.body, "ping");
    assert_eq!(first.headers["x-probe"], "one");
    assert_eq!(first.headers["user-agent"], "Consul Health Check");
    assert_eq!(first.headers["accept"], "text/plain, text/*, */*");
    assert_eq!(first.headers["connection"], "close");
}

#[tokio::test]
async fn http_check_output_keeps_the_last_bytes_of_the_body() {
    use axum::routing::get;
    let registry = spawn_with(fast_options()).await;
    let body = format!("{}{}", "a".repeat(5000), "z".repeat(10));
    let app = axum::Router::new().route("/big", get(move || async move { body }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/big", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    registry
        .register(&json!({"Name": "big", "Check": {"HTTP": url, "Interval": "50ms"}}))
        .await;
    let check = registry.wait_for_check("service:big", "passing").await;
    let output = check["Output"].as_str().unwrap();
    let kept = output.split_once(" Output: ").unwrap().1;
    assert_eq!(kept.len(), 4096);
    assert!(kept.ends_with("zzzzzzzzzz"));
}

#[tokio::test]
async fn tcp_check_passes_while_something_listens() {
    let registry = spawn_with(fast_options()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    registry
        .register(&json!({"Name": "db", "Check": {"TCP": addr, "Interval": "20ms"}}))
        .await;
    let check = registry.wait_for_check("service:db", "passing").await;
    assert_eq!(check["Output"], format!("TCP connect {addr}: Success"));
    assert_eq!(check["Type"], "tcp");
    drop(listener);
    let check = registry.wait_for_check("service:db", "critical").await;
    assert_eq!(
        check["Output"],
        format!("dial tcp {addr}: connect: connection refused")
    );
}

#[tokio::test]
async fn failures_below_the_critical_threshold_keep_the_previous_status() {
    let registry = spawn_with(fast_options()).await;
    let upstream = Upstream::start(200).await;
    registry
        .register(&json!({"Name": "web", "Check": {
            "HTTP": upstream.url("/"), "Interval": "20ms",
            "FailuresBeforeWarning": 1, "FailuresBeforeCritical": 1000000
        }}))
        .await;
    registry.wait_for_check("service:web", "passing").await;
    upstream.set_status(500);
    let check = registry.wait_for_check("service:web", "warning").await;
    assert!(
        check["Output"]
            .as_str()
            .unwrap()
            .contains("500 Internal Server Error")
    );
}

#[tokio::test]
async fn a_ttl_check_expires_with_its_last_output() {
    let registry = spawn_with(fast_options()).await;
    registry
        .register(&json!({"Name": "worker", "Check": {"TTL": "100ms", "Status": "passing"}}))
        .await;
    let check = registry.wait_for_check("service:worker", "critical").await;
    assert_eq!(
        check["Output"], "TTL expired",
        "registered passing, never updated"
    );

    let response = registry
        .put_empty("/v1/agent/check/pass/service:worker?note=alive")
        .await;
    assert_eq!(response.status(), 200);
    let expected = "TTL expired (last output before timeout follows): alive";
    let expired = eventually_value(|| async {
        registry
            .check("service:worker")
            .await
            .filter(|c| c["Output"] == expected)
    })
    .await;
    assert_eq!(
        expired.expect("the TTL never expired again")["Status"],
        "critical"
    );
}

#[tokio::test]
async fn a_service_critical_past_its_deadline_is_reaped_whole() {
    let registry = spawn_with(fast_options()).await;
    // Never reported critical: its clock does not start at registration (§8.4).
    registry
        .register(&json!({"ID": "idle", "Name": "idle", "Check": {
            "TTL": "1h", "DeregisterCriticalServiceAfter": "1ms"
        }}))
        .await;
    registry
        .register(&json!({"ID": "gone", "Name": "gone", "Checks": [
            {"TTL": "50ms", "DeregisterCriticalServiceAfter": "1ms"},
            {"TTL": "1h", "Status": "passing"}
        ]}))
        .await;
    eventually("the expired service is reaped", || async {
        registry
            .get_json("/v1/agent/services")
            .await
            .1
            .get("gone")
            .is_none()
    })
    .await;
    assert!(registry.check("service:gone:1").await.is_none());
    assert!(
        registry.check("service:gone:2").await.is_none(),
        "all its checks go"
    );
    let (_, health) = registry.get_json("/v1/health/service/gone").await;
    assert_eq!(health, json!([]));
    let (_, services) = registry.get_json("/v1/agent/services").await;
    assert!(
        services.get("idle").is_some(),
        "initial critical does not start the clock"
    );
}

#[tokio::test]
async fn a_passing_report_stops_the_reaper_clock() {
    let registry = spawn_with(fast_options()).await;
    registry
        .register(&json!({"ID": "flappy", "Name": "flappy", "Check": {
            "TTL": "1h", "DeregisterCriticalServiceAfter": "1ms"
        }}))
        .await;
    registry
        .register(&json!({"ID": "marker", "Name": "marker", "Check": {
            "TTL": "1h", "DeregisterCriticalServiceAfter": "1ms"
        }}))
        .await;
    registry
        .put_empty("/v1/agent/check/fail/service:flappy")
        .await;
    registry
        .put_empty("/v1/agent/check/pass/service:flappy")
        .await;
    registry
        .put_empty("/v1/agent/check/fail/service:marker")
        .await;
    eventually("the marker is reaped", || async {
        registry
            .get_json("/v1/agent/services")
            .await
            .1
            .get("marker")
            .is_none()
    })
    .await;
    let (_, services) = registry.get_json("/v1/agent/services").await;
    assert!(services.get("flappy").is_some());
}

#[tokio::test]
async fn removing_a_check_stops_its_runner() {
    let registry = spawn_with(fast_options()).await;
    let upstream = Upstream::start(200).await;
    registry
        .register(&json!({"ID": "web", "Name": "web", "Check": {"HTTP": upstream.url("/"), "Interval": "20ms"}}))
        .await;
    registry.wait_for_check("service:web", "passing").await;
    registry.put_empty("/v1/agent/service/deregister/web").await;
    let count = upstream.seen().len();
    // Ten intervals: a live runner would probe several times. One probe already on the
    // wire when the runner was aborted may still arrive.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        upstream.seen().len() <= count + 1,
        "probes continued after deregistration"
    );
}
