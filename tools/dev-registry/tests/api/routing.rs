//! Methods, unknown paths, redirects and the headers and formatting of every response.

use crate::helpers::spawn;

#[tokio::test]
async fn wrong_methods_get_405_with_allow_and_options_gets_allow_alone() {
    let registry = spawn().await;
    let cases = [
        ("GET", "/v1/agent/service/register", "OPTIONS,PUT"),
        ("POST", "/v1/agent/service/deregister/x", "OPTIONS,PUT"),
        ("DELETE", "/v1/agent/check/fail/x", "OPTIONS,PUT"),
        ("GET", "/v1/agent/check/update/x", "OPTIONS,PUT"),
        ("PUT", "/v1/health/service/web", "OPTIONS,GET"),
        ("POST", "/v1/catalog/services", "OPTIONS,GET"),
        ("PUT", "/v1/status/leader", "OPTIONS,GET"),
        ("PUT", "/v1/agent/service/web-1", "OPTIONS,GET"),
    ];
    for (method, path, allow) in cases {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = registry
            .client
            .request(method.clone(), registry.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            response.text().await.unwrap(),
            format!("method {method} not allowed")
        );

        let response = registry
            .client
            .request(reqwest::Method::OPTIONS, registry.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["allow"], allow);
        assert_eq!(response.text().await.unwrap(), "");
    }
}

#[tokio::test]
async fn unknown_paths_get_consuls_plain_text_404() {
    let registry = spawn().await;
    let response = registry.get("/v1/agent/service").await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.text().await.unwrap(),
        "Invalid URL path: not a recognized HTTP API endpoint\n"
    );
    let response = registry.get("/health").await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("/v1/"));
}

#[tokio::test]
async fn the_root_redirects_to_the_ui() {
    let registry = spawn().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let response = client.get(registry.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 301);
    assert_eq!(response.headers()["location"], "/ui/");
}

#[tokio::test]
async fn json_is_indented_with_four_spaces_and_every_response_names_the_acl_policy() {
    let registry = spawn().await;
    let response = registry.get("/v1/catalog/services").await;
    assert_eq!(response.headers()["x-consul-default-acl-policy"], "allow");
    assert_eq!(response.headers()["x-consul-knownleader"], "true");
    assert_eq!(response.headers()["x-consul-lastcontact"], "0");
    assert_eq!(
        response.headers()["x-consul-effective-consistency"],
        "leader"
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), "{\n    \"consul\": []\n}\n");
    for path in ["/nope", "/v1/nope", "/ui/", "/v1/agent/checks"] {
        let response = registry.get(path).await;
        assert_eq!(
            response.headers()["x-consul-default-acl-policy"],
            "allow",
            "{path}"
        );
    }
}
