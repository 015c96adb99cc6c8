//! Responses compared field by field with the Consul samples.

use serde_json::{Value, json};

use crate::helpers::{Upstream, eventually_value, fast_options, sample, spawn, spawn_with};

/// Asserts that `actual` has exactly the keys, array lengths and JSON types of
/// `expected`, recursively, and equal values except where `ignore(path)` holds.
fn assert_shape(actual: &Value, expected: &Value, path: &str, ignore: &dyn Fn(&str) -> bool) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let mut a_keys: Vec<_> = a.keys().collect();
            let mut e_keys: Vec<_> = e.keys().collect();
            a_keys.sort();
            e_keys.sort();
            assert_eq!(a_keys, e_keys, "keys at {path}");
            for (key, e_value) in e {
                assert_shape(&a[key], e_value, &format!("{path}.{key}"), ignore);
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "length at {path}");
            for (i, (a, e)) in a.iter().zip(e).enumerate() {
                assert_shape(a, e, &format!("{path}[{i}]"), ignore);
            }
        }
        (a, e) => {
            assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(e),
                "type at {path}: {a} vs {e}"
            );
            if !ignore(path) {
                assert_eq!(a, e, "value at {path}");
            }
        }
    }
}

/// The last key of a path like `[0].Checks[1].Output`.
fn last_key(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// Sorts an array of health entries by `Service.ID`.
fn by_service_id(mut entries: Vec<Value>) -> Vec<Value> {
    entries.sort_by(|a, b| {
        a["Service"]["ID"]
            .as_str()
            .cmp(&b["Service"]["ID"].as_str())
    });
    entries
}

/// `orders-2` of the samples: no address, one unnamed HTTP check against a closed port.
fn orders_2() -> Value {
    json!({
        "ID": "orders-2",
        "Name": "orders",
        "Tags": ["v1", "http"],
        "Port": 8081,
        "Meta": { "version": "1.4.2", "protocol": "http" },
        "Check": { "HTTP": "http://127.0.0.1:1/health", "Interval": "100ms" }
    })
}

#[tokio::test]
async fn agent_services_match_the_sample_exactly() {
    let registry = spawn().await;
    let mut orders_1 = sample("register-http-check.json");
    orders_1["Check"]["HTTP"] = json!("http://127.0.0.1:1/health");
    registry.register(&orders_1).await;
    registry.register(&orders_2()).await;

    let (index, services) = registry.get_json("/v1/agent/services").await;
    assert_eq!(services, sample("agent-services.json"));
    assert_eq!(index, 0, "agent endpoints carry no X-Consul-Index");
}

#[tokio::test]
async fn health_service_matches_the_sample_field_by_field() {
    let registry = spawn_with(fast_options()).await;
    let upstream = Upstream::start(200).await;
    let mut orders_1 = sample("register-http-check.json");
    orders_1["Check"]["HTTP"] = json!(upstream.url("/health"));
    orders_1["Check"]["Interval"] = json!("100ms");
    registry.register(&orders_1).await;
    registry.register(&orders_2()).await;
    let ok = registry.wait_for_check("service:orders-1", "passing").await;
    assert_eq!(
        ok["Output"],
        format!("HTTP GET {}: 200 OK Output: hello", upstream.url("/health"))
    );
    // New checks start critical; wait for the first probe's output.
    let refused = eventually_value(|| async {
        registry
            .check("service:orders-2")
            .await
            .filter(|c| c["Output"] != "")
    })
    .await
    .unwrap();
    assert_eq!(refused["Status"], "critical");
    assert!(
        refused["Output"]
            .as_str()
            .unwrap()
            .starts_with("Get \"http://127.0.0.1:1/health\": dial tcp 127.0.0.1:1:"),
        "{refused}"
    );

    let (_, health) = registry.get_json("/v1/health/service/orders").await;
    let actual = by_service_id(health.as_array().unwrap().clone());
    let expected = by_service_id(
        sample("health-service-two-instances.json")
            .as_array()
            .unwrap()
            .clone(),
    );
    let ignore = |path: &str| {
        // Node identity and addresses, indexes, outputs and the (shortened) interval
        // differ naturally; everything else must be equal.
        path.contains("].Node.")
            || matches!(
                last_key(path),
                "CreateIndex" | "ModifyIndex" | "Output" | "Interval" | "Node"
            )
    };
    assert_shape(
        &Value::from(actual.clone()),
        &Value::from(expected),
        "",
        &ignore,
    );
    let node = &actual[0]["Node"];
    assert_eq!(node["Node"], "dev-registry");
    assert_eq!(node["Address"], "127.0.0.1");
    assert_eq!(node["TaggedAddresses"]["lan_ipv4"], "127.0.0.1");
    assert_eq!(actual[0]["Checks"][1]["Interval"], "100ms");
}

#[tokio::test]
async fn agent_checks_match_the_sample_field_by_field() {
    let registry = spawn_with(fast_options()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp = listener.local_addr().unwrap().to_string();
    let mut billing = sample("register-ttl-check.json");
    billing["Checks"][0]["TTL"] = json!("300ms");
    billing["Checks"][1]["TCP"] = json!(tcp);
    billing["Checks"][1]["Interval"] = json!("100ms");
    registry.register(&billing).await;
    let response = registry
        .put_empty("/v1/agent/check/pass/billing-7f3c-ttl?note=heartbeat%20ok")
        .await;
    assert_eq!(response.status(), 200);

    let expected = "TTL expired (last output before timeout follows): heartbeat ok";
    let expired = eventually_value(|| async {
        registry
            .check("billing-7f3c-ttl")
            .await
            .filter(|c| c["Output"] == expected)
    })
    .await
    .expect("the TTL never expired after the heartbeat");
    assert_eq!(expired["Status"], "critical");
    let connected = registry
        .wait_for_check("service:billing-7f3c:2", "passing")
        .await;
    assert_eq!(connected["Output"], format!("TCP connect {tcp}: Success"));

    let (_, checks) = registry.get_json("/v1/agent/checks").await;
    let ignore = |path: &str| {
        matches!(
            last_key(path),
            "CreateIndex" | "ModifyIndex" | "Node" | "Output"
        ) || path == ".service:billing-7f3c:2.Interval"
    };
    assert_shape(&checks, &sample("agent-checks.json"), "", &ignore);
    drop(listener);
}

#[tokio::test]
async fn catalog_service_entries_are_flat_service_nodes() {
    let registry = spawn().await;
    registry
        .register(&json!({"ID": "web-1", "Name": "web", "Address": "10.0.0.5", "Port": 80, "Tags": ["a"]}))
        .await;
    let (index, entries) = registry.get_json("/v1/catalog/service/web").await;
    assert!(index >= 1);
    let entry = &entries[0];
    let mut keys: Vec<_> = entry.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    let mut expected = vec![
        "Address",
        "CreateIndex",
        "Datacenter",
        "ID",
        "ModifyIndex",
        "Node",
        "NodeMeta",
        "ServiceAddress",
        "ServiceConnect",
        "ServiceEnableTagOverride",
        "ServiceID",
        "ServiceKind",
        "ServiceLocality",
        "ServiceMeta",
        "ServiceName",
        "ServicePort",
        "ServiceProxy",
        "ServiceSocketPath",
        "ServiceTaggedAddresses",
        "ServiceTags",
        "ServiceWeights",
        "TaggedAddresses",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(entry["ServiceID"], "web-1");
    assert_eq!(entry["ServiceAddress"], "10.0.0.5");
    assert_eq!(entry["Address"], "127.0.0.1");
    assert_eq!(entry["ServiceWeights"], json!({"Passing": 1, "Warning": 1}));
    assert_eq!(
        entry["ServiceProxy"],
        json!({"Mode": "", "MeshGateway": {}, "Expose": {}})
    );
    assert_eq!(entry["ServiceLocality"], Value::Null);
}

#[tokio::test]
async fn port_zero_is_omitted_from_health_but_not_from_agent_services() {
    let registry = spawn().await;
    registry.register(&json!({"Name": "portless"})).await;
    let (_, health) = registry.get_json("/v1/health/service/portless").await;
    assert!(health[0]["Service"].get("Port").is_none());
    assert_eq!(health[0]["Service"]["Tags"], json!([]));
    assert_eq!(
        health[0]["Checks"].as_array().unwrap().len(),
        1,
        "serfHealth only"
    );
    let (_, services) = registry.get_json("/v1/agent/services").await;
    assert_eq!(services["portless"]["Port"], 0);
    assert_eq!(services["portless"]["Meta"], json!({}));
}
