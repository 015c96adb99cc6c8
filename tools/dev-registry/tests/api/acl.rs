//! ACL emulation: token sources, anonymous denials, filtered reads.

use dev_registry::Options;
use serde_json::json;

use crate::helpers::{TestRegistry, spawn, spawn_with};

/// The configured token.
const TOKEN: &str = "s3cret";

/// The anonymous token's denial of `permission` on `resource`.
fn denied(permission: &str, resource: &str) -> String {
    format!(
        "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission '{permission}' on \"{resource}\""
    )
}

async fn spawn_acl() -> TestRegistry {
    spawn_with(Options {
        token: Some(TOKEN.to_owned()),
        ..Options::default()
    })
    .await
}

/// `PUT` with the token in `X-Consul-Token`.
async fn put_with_token(registry: &TestRegistry, path: &str, body: &str) -> u16 {
    let response = registry
        .client
        .put(registry.url(path))
        .header("X-Consul-Token", TOKEN)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test]
async fn the_token_is_accepted_from_query_header_or_bearer() {
    let registry = spawn_acl().await;
    let body = json!({"Name": "web"}).to_string();
    let by_query = registry
        .put(
            &format!("/v1/agent/service/register?token={TOKEN}"),
            body.clone(),
        )
        .await;
    assert_eq!(by_query.status(), 200);
    assert_eq!(
        put_with_token(&registry, "/v1/agent/service/register", &body).await,
        200
    );
    let by_bearer = registry
        .client
        .put(registry.url("/v1/agent/service/register"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(by_bearer.status(), 200);
    assert_eq!(by_bearer.headers()["x-consul-default-acl-policy"], "deny");
}

#[tokio::test]
async fn anonymous_writes_are_denied_with_the_right_permission() {
    let registry = spawn_acl().await;
    let response = registry
        .put(
            "/v1/agent/service/register",
            json!({"Name": "web", "Check": {"TTL": "30s"}}).to_string(),
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.text().await.unwrap(),
        denied("service:write", "web")
    );

    let body = json!({"ID": "web-1", "Name": "web", "Check": {"TTL": "30s"}}).to_string();
    assert_eq!(
        put_with_token(&registry, "/v1/agent/service/register", &body).await,
        200
    );
    for path in [
        "/v1/agent/check/pass/service:web-1",
        "/v1/agent/service/deregister/web-1",
    ] {
        let response = registry.put_empty(path).await;
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(
            response.text().await.unwrap(),
            denied("service:write", "web")
        );
    }
    let response = registry.put_empty("/v1/agent/check/pass/serfHealth").await;
    assert_eq!(
        response.text().await.unwrap(),
        denied("node:write", "dev-registry")
    );
    let response = registry.get("/v1/agent/service/web-1").await;
    assert_eq!(
        response.text().await.unwrap(),
        denied("service:read", "web")
    );
    let response = registry.get("/v1/agent/self").await;
    assert_eq!(
        response.text().await.unwrap(),
        denied("agent:read", "dev-registry")
    );
}

#[tokio::test]
async fn unknown_ids_are_not_found_before_any_acl_check() {
    let registry = spawn_acl().await;
    let response = registry
        .put_empty("/v1/agent/service/deregister/nope")
        .await;
    assert_eq!(response.status(), 404);
    let response = registry.put_empty("/v1/agent/check/pass/nope").await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_wrong_token_is_not_found_everywhere_but_status() {
    let registry = spawn_acl().await;
    for path in [
        "/v1/agent/services",
        "/v1/health/service/web",
        "/v1/catalog/services",
    ] {
        let response = registry
            .client
            .get(registry.url(path))
            .header("X-Consul-Token", "wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(response.text().await.unwrap(), "ACL not found");
    }
    let response = registry
        .put_empty("/v1/agent/service/deregister/nope?token=wrong")
        .await;
    assert_eq!(
        response.status(),
        403,
        "the token is resolved before the lookup"
    );
    let response = registry
        .client
        .get(registry.url("/v1/status/leader"))
        .header("X-Consul-Token", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn anonymous_reads_are_filtered_not_refused() {
    let registry = spawn_acl().await;
    let body = json!({"Name": "web", "Check": {"TTL": "30s"}}).to_string();
    assert_eq!(
        put_with_token(&registry, "/v1/agent/service/register", &body).await,
        200
    );
    let (_, services) = registry.get_json("/v1/agent/services").await;
    assert_eq!(services, json!({}));
    let (_, checks) = registry.get_json("/v1/agent/checks").await;
    assert_eq!(checks, json!({}));
    let (index, health) = registry.get_json("/v1/health/service/web").await;
    assert_eq!(health, json!([]));
    assert!(index >= 1);
    let (_, catalog) = registry.get_json("/v1/catalog/services").await;
    assert_eq!(catalog, json!({}));

    let response = registry
        .client
        .get(registry.url("/v1/health/service/web"))
        .header("X-Consul-Token", TOKEN)
        .send()
        .await
        .unwrap();
    let health: serde_json::Value = response.json().await.unwrap();
    assert_eq!(health.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn without_acls_tokens_are_ignored_and_the_policy_is_allow() {
    let registry = spawn().await;
    let response = registry
        .client
        .put(registry.url("/v1/agent/service/register"))
        .header("X-Consul-Token", "anything")
        .body(json!({"Name": "web"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-consul-default-acl-policy"], "allow");
}
