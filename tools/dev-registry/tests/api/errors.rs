//! Every case of `error-examples.json`, replayed against the registry.

use dev_registry::Options;
use serde_json::{Value, json};

use crate::helpers::{TestRegistry, sample, spawn, spawn_with};

/// Cases that cannot happen here: the registry is its own leader from the first
/// request, so there is never a "no leader" window to reproduce.
const NOT_REPRODUCIBLE: [&str; 2] = [
    "health/catalog read before a leader is elected",
    "status/leader before election (NOT an error status; readiness must check the body)",
];

/// The AccessorID in the sample's permission-denied body. The sample shows a real but
/// under-privileged token; the registry's only token is a management token, so the
/// same denial is produced by sending no token, which answers as the anonymous token.
const SAMPLE_ACCESSOR: &str = "9a1c4e0e-5f7b-4b8e-9d3e-2f6a7c1b0d42";

/// AccessorID of the anonymous token.
const ANONYMOUS_ACCESSOR: &str = "00000000-0000-0000-0000-000000000002";

/// The registry's ACL token in these tests.
const TOKEN: &str = "the-only-token";

#[tokio::test]
async fn every_error_example_is_reproduced_exactly() {
    let cases = sample("error-examples.json");
    let cases = cases.as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["case"].as_str().unwrap()).collect();
    for skipped in NOT_REPRODUCIBLE {
        assert!(
            names.contains(&skipped),
            "skip list names a missing case: {skipped}"
        );
    }

    let plain = spawn().await;
    // State the stateful cases need: `service:orders-1` (an HTTP check) and
    // `billing-7f3c-ttl`. Probe targets point at a closed local port.
    let mut orders = sample("register-http-check.json");
    orders["Check"]["HTTP"] = json!("http://127.0.0.1:1/health");
    plain.register(&orders).await;
    let mut billing = sample("register-ttl-check.json");
    billing["Checks"][1]["TCP"] = json!("127.0.0.1:1");
    plain.register(&billing).await;

    let acl = spawn_with(Options {
        token: Some(TOKEN.to_owned()),
        ..Options::default()
    })
    .await;

    let mut replayed = Vec::new();
    for case in cases {
        let name = case["case"].as_str().unwrap();
        if NOT_REPRODUCIBLE.contains(&name) {
            continue;
        }
        let request = &case["request"];
        let expected = &case["response"];
        let headers = request["headers"].as_object().cloned().unwrap_or_default();
        let uses_acl = headers.contains_key("X-Consul-Token");
        let target: &TestRegistry = if uses_acl { &acl } else { &plain };
        let mut expected_body = expected["body"].as_str().unwrap().to_owned();

        let method =
            reqwest::Method::from_bytes(request["method"].as_str().unwrap().as_bytes()).unwrap();
        let mut builder = target
            .client
            .request(method, target.url(request["path"].as_str().unwrap()));
        for (header, value) in &headers {
            let value = value.as_str().unwrap();
            if value == "<secret>" {
                // See SAMPLE_ACCESSOR: no token is the anonymous token.
                expected_body = expected_body.replace(SAMPLE_ACCESSOR, ANONYMOUS_ACCESSOR);
                continue;
            }
            builder = builder.header(header, value);
        }
        if let Some(body) = request.get("body").filter(|b| !b.is_null()) {
            builder = builder.body(body.to_string());
        }
        let response = builder.send().await.unwrap();

        assert_eq!(
            response.status().as_u16(),
            expected["status"].as_u64().unwrap() as u16,
            "{name}: status"
        );
        assert_eq!(
            response.headers()["content-type"],
            expected["contentType"].as_str().unwrap(),
            "{name}: content type"
        );
        for (header, value) in expected["headers"].as_object().into_iter().flatten() {
            assert_eq!(
                response.headers()[header.as_str()],
                value.as_str().unwrap(),
                "{name}: header {header}"
            );
        }
        assert_eq!(
            response.text().await.unwrap(),
            expected_body,
            "{name}: body"
        );
        replayed.push(name);
    }
    assert_eq!(replayed.len() + NOT_REPRODUCIBLE.len(), cases.len());
}

#[tokio::test]
async fn the_leader_is_known_from_the_first_request() {
    let registry = spawn().await;
    let response = registry.get("/v1/status/leader").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let leader: Value = response.json().await.unwrap();
    assert_eq!(leader, "127.0.0.1:8300");
    let (_, peers) = registry.get_json("/v1/status/peers").await;
    assert_eq!(peers, json!(["127.0.0.1:8300"]));
}
