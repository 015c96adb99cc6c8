//! Checks of the contract all five services share (DESIGN §3, §5), one function per test.
//!
//! Each service's tests call these with its own paths, so that the five test suites check the
//! same things the same way and differ only in the routes they name:
//!
//! ```ignore
//! #[tokio::test]
//! async fn health_reports_passing_with_service_and_instance() {
//!     common::testing::contract::health_reports_passing(&spawn_app().await).await;
//! }
//! ```

use serde_json::json;

use super::{TestService, eventually};
use crate::http::{INSTANCE_ID_HEADER, REQUEST_ID_HEADER};
use crate::registry::Registry as _;

/// `GET /health` answers 200 `{"status":"passing","service":…,"instance":…}`, stamped with
/// the instance ID.
pub async fn health_reports_passing(app: &TestService) {
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[INSTANCE_ID_HEADER],
        app.instance_id.as_str()
    );
    let body: serde_json::Value = response.json().await.expect("a JSON health report");
    assert_eq!(
        body,
        json!({"status": "passing", "service": app.info.name, "instance": app.instance_id})
    );
}

/// Every response names the instance, errors included: `/health`, `found` (a resource that
/// exists), `invalid` (a malformed ID), an unknown path, and `DELETE found` (a wrong method).
pub async fn every_response_names_the_instance(app: &TestService, found: &str, invalid: &str) {
    for path in ["/health", found, invalid, "/nowhere"] {
        let response = app.get(path).await;
        assert_eq!(
            response.headers()[INSTANCE_ID_HEADER],
            app.instance_id.as_str(),
            "{path}"
        );
    }
    let response = app
        .client
        .delete(app.url(found))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(
        response.headers()[INSTANCE_ID_HEADER],
        app.instance_id.as_str(),
        "DELETE {found}"
    );
}

/// A caller's `X-Request-Id` comes back on the answer, on success (`found`) and on error.
pub async fn a_callers_request_id_is_echoed(app: &TestService, found: &str) {
    for path in [found, "/nowhere"] {
        let response = app
            .client
            .get(app.url(path))
            .header(REQUEST_ID_HEADER, "trace-me-42")
            .send()
            .await
            .expect("GET");
        assert_eq!(
            response.headers()[REQUEST_ID_HEADER],
            "trace-me-42",
            "{path}"
        );
    }
}

/// Without a request ID, each request gets a new one; an unusable one (too long) is replaced by
/// a UUID, not truncated.
pub async fn a_missing_or_unusable_request_id_is_replaced(app: &TestService, found: &str) {
    let first = app.get(found).await;
    let second = app.get(found).await;
    let (a, b) = (
        &first.headers()[REQUEST_ID_HEADER],
        &second.headers()[REQUEST_ID_HEADER],
    );
    assert!(
        !a.is_empty() && a != b,
        "each request gets its own ID: {a:?} {b:?}"
    );

    let response = app
        .client
        .get(app.url("/health"))
        .header(REQUEST_ID_HEADER, "x".repeat(500))
        .send()
        .await
        .expect("GET /health");
    let id = response.headers()[REQUEST_ID_HEADER]
        .to_str()
        .expect("a visible ASCII request ID");
    assert_eq!(
        id.len(),
        36,
        "a too-long ID is replaced by a UUID, got {id}"
    );
}

/// While running, the instance is registered under its name with its framework in `Meta` and
/// its real address; after a graceful shutdown it is deregistered and `run` returned `Ok`.
pub async fn registers_with_its_framework_and_deregisters_on_shutdown(app: TestService) {
    let registration = eventually("the instance to register", || async {
        app.registry.registration(&app.instance_id)
    })
    .await;
    assert_eq!(registration.name, app.info.name);
    assert_eq!(registration.meta["framework"], app.info.framework);
    assert_eq!(registration.meta["version"], app.info.version);
    assert_eq!(
        (registration.address.as_str(), registration.port),
        ("127.0.0.1", app.port)
    );

    let registry = app.registry.clone();
    let id = app.instance_id.clone();
    app.shutdown()
        .await
        .expect("run returns Ok after a graceful shutdown");
    assert!(
        !registry
            .is_registered(&id)
            .await
            .expect("the memory registry answers"),
        "deregistered on shutdown"
    );
}

/// Odd path segments around `item` (a resource path such as `/users/1`) and any `extra` paths,
/// sent byte for byte, are answered 200 or 4xx: never a server error.
pub async fn odd_paths_never_cause_a_server_error(app: &TestService, item: &str, extra: &[&str]) {
    let collection = item.rsplit_once('/').map_or("", |(parent, _)| parent);
    let huge = "a".repeat(10 * 1024);
    let odd = [
        format!("{collection}/%00"),
        format!("{collection}/.."),
        format!("{collection}/..{item}"),
        format!("{collection}/%2e%2e"),
        format!("{collection}/%2F"),
        format!("{collection}/%FF"),
        format!("{collection}/%"),
        format!("{collection}/%C3%A9"),
        format!("{collection}/{huge}"),
        format!("/{huge}"),
        format!("{item}?x=%00"),
        item.replace('/', "//"),
    ];
    let paths = odd.iter().map(String::as_str).chain(extra.iter().copied());
    for path in paths {
        let status = app.raw_status(path).await;
        assert!(
            (400..500).contains(&status) || status == 200,
            "{status} for {path:.60}"
        );
    }
}
