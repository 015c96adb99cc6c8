//! The HTTP surface: Consul's route table with its method rules, error mapping and the
//! headers every response carries (reference §0).
//!
//! Routing is done here rather than with axum's router so that the details clients can
//! see match Go's `ServeMux` as Consul configures it: the longest matching pattern wins,
//! prefix patterns take the rest of the *decoded* path as the ID (so `%2F` works),
//! a wrong method gets 405 with `Allow: OPTIONS,<methods>`, `OPTIONS` gets the `Allow`
//! header alone, and unknown paths get Consul's plain-text 404.

mod agent;
mod catalog;
mod health;
mod query;
mod status;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{ALLOW, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub(crate) use self::query::Query;
use crate::acl::{self, Authorizer, Denied};
use crate::state::Registry;
use crate::state::registration::RegisterError;
use crate::state::{UnknownService, UpdateError};
use crate::ui;
use crate::wire::decode::DecodeError;
use crate::wire::response::to_dev_json;

/// Largest request body read. Registrations are a few KiB; this only bounds abuse.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Content type Go's `http.DetectContentType` gives plain-text error bodies (§0).
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Body of a 404 for a path containing `/v1/` (§0 "Unknown path").
const UNKNOWN_API_PATH: &str = "Invalid URL path: not a recognized HTTP API endpoint\n";

/// Body of a 404 outside `/v1/`.
const UNKNOWN_PATH: &str =
    "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n";

/// `X-Consul-Default-ACL-Policy`, on every response (§0).
const ACL_POLICY_HEADER: HeaderName = HeaderName::from_static("x-consul-default-acl-policy");

/// The HTTP API as an axum router over `registry`.
pub(crate) fn router(registry: Registry) -> Router {
    Router::new().fallback(dispatch).with_state(registry)
}

/// An endpoint of the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `PUT /v1/agent/service/register`.
    Register,
    /// `PUT /v1/agent/service/deregister/:id`.
    Deregister,
    /// `GET /v1/agent/service/:id`.
    AgentService,
    /// `GET /v1/agent/services`.
    AgentServices,
    /// `GET /v1/agent/checks`.
    AgentChecks,
    /// `PUT /v1/agent/check/pass/:id`.
    CheckPass,
    /// `PUT /v1/agent/check/warn/:id`.
    CheckWarn,
    /// `PUT /v1/agent/check/fail/:id`.
    CheckFail,
    /// `PUT /v1/agent/check/update/:id`.
    CheckUpdate,
    /// `GET /v1/agent/self`.
    AgentSelf,
    /// `GET /v1/health/service/:name`.
    HealthService,
    /// `GET /v1/catalog/services`.
    CatalogServices,
    /// `GET /v1/catalog/service/:name`.
    CatalogService,
    /// `GET /v1/catalog/datacenters`.
    CatalogDatacenters,
    /// `GET /v1/status/leader`.
    StatusLeader,
    /// `GET /v1/status/peers`.
    StatusPeers,
}

/// One row of the route table.
#[derive(Debug)]
struct Route {
    /// Path, or path prefix when it ends with `/`.
    pattern: &'static str,
    /// `Allow` header value: `OPTIONS` plus the allowed methods.
    allow: &'static str,
    /// The handler.
    endpoint: Endpoint,
}

/// Consul's routes for the endpoints emulated here (`agent/http_register.go`).
const ROUTES: &[Route] = &[
    route(
        "/v1/agent/service/register",
        "OPTIONS,PUT",
        Endpoint::Register,
    ),
    route(
        "/v1/agent/service/deregister/",
        "OPTIONS,PUT",
        Endpoint::Deregister,
    ),
    route("/v1/agent/service/", "OPTIONS,GET", Endpoint::AgentService),
    route("/v1/agent/services", "OPTIONS,GET", Endpoint::AgentServices),
    route("/v1/agent/checks", "OPTIONS,GET", Endpoint::AgentChecks),
    route("/v1/agent/check/pass/", "OPTIONS,PUT", Endpoint::CheckPass),
    route("/v1/agent/check/warn/", "OPTIONS,PUT", Endpoint::CheckWarn),
    route("/v1/agent/check/fail/", "OPTIONS,PUT", Endpoint::CheckFail),
    route(
        "/v1/agent/check/update/",
        "OPTIONS,PUT",
        Endpoint::CheckUpdate,
    ),
    route("/v1/agent/self", "OPTIONS,GET", Endpoint::AgentSelf),
    route(
        "/v1/health/service/",
        "OPTIONS,GET",
        Endpoint::HealthService,
    ),
    route(
        "/v1/catalog/services",
        "OPTIONS,GET",
        Endpoint::CatalogServices,
    ),
    route(
        "/v1/catalog/service/",
        "OPTIONS,GET",
        Endpoint::CatalogService,
    ),
    route(
        "/v1/catalog/datacenters",
        "OPTIONS,GET",
        Endpoint::CatalogDatacenters,
    ),
    route("/v1/status/leader", "OPTIONS,GET", Endpoint::StatusLeader),
    route("/v1/status/peers", "OPTIONS,GET", Endpoint::StatusPeers),
];

/// `const` constructor for [`Route`].
const fn route(pattern: &'static str, allow: &'static str, endpoint: Endpoint) -> Route {
    Route {
        pattern,
        allow,
        endpoint,
    }
}

/// Finds the route for a decoded path (longest pattern wins) and the path's remainder.
fn resolve(path: &str) -> Option<(&'static Route, &str)> {
    ROUTES
        .iter()
        .filter_map(|route| {
            if route.pattern.ends_with('/') {
                path.strip_prefix(route.pattern).map(|rest| (route, rest))
            } else {
                (path == route.pattern).then_some((route, ""))
            }
        })
        .max_by_key(|(route, _)| route.pattern.len())
}

/// Everything a handler needs from the request.
#[derive(Debug)]
pub(crate) struct Call {
    /// The registry.
    pub(crate) registry: Registry,
    /// Decoded query parameters.
    pub(crate) query: Query,
    /// Request headers.
    pub(crate) headers: HeaderMap,
    /// Request body (empty for reads).
    pub(crate) body: Bytes,
}

impl Call {
    /// Resolves the request's token (`?token`, `X-Consul-Token`, `Authorization`).
    ///
    /// # Errors
    ///
    /// 403 `ACL not found` for an unknown token.
    pub(crate) fn authorizer(&self) -> Result<Authorizer, Denied> {
        let token = acl::presented_token(self.query.get("token"), &self.headers);
        Authorizer::resolve(self.registry.options().token.as_deref(), token.as_deref())
    }
}

/// The single axum handler: routes, enforces methods, adds the common headers.
async fn dispatch(State(registry): State<Registry>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let raw_path = parts.uri.path().to_owned();
    // The status page polls every second; counting it would skew per-request counts.
    if !raw_path.starts_with("/ui") {
        registry.count_request();
    }
    let path = percent_decode(&raw_path);
    let response = match resolve(&path) {
        Some((route, rest)) => {
            if parts.method == Method::OPTIONS {
                allow_response(StatusCode::OK, route.allow, None)
            } else if !route.allow.split(',').any(|m| m == parts.method.as_str()) {
                let message = format!("method {} not allowed", parts.method);
                allow_response(StatusCode::METHOD_NOT_ALLOWED, route.allow, Some(message))
            } else {
                let body = if parts.method == Method::PUT {
                    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
                        Ok(body) => body,
                        Err(e) => {
                            return with_acl_policy(
                                &registry,
                                ApiError::bad_request(format!("Request decode failed: {e}"))
                                    .into_response(),
                            );
                        }
                    }
                } else {
                    Bytes::new()
                };
                let call = Call {
                    registry: registry.clone(),
                    query: Query::parse(parts.uri.query()),
                    headers: parts.headers,
                    body,
                };
                handle(route.endpoint, call, rest.to_owned())
                    .await
                    .unwrap_or_else(IntoResponse::into_response)
            }
        }
        None if path == "/" => Response::builder()
            .status(StatusCode::MOVED_PERMANENTLY)
            .header(LOCATION, "/ui/")
            .body(Body::empty())
            .unwrap_or_default(),
        None if path == "/ui" || path == "/ui/" => ui::page(),
        None if path == "/ui/api/state" => {
            let call = Call {
                registry: registry.clone(),
                query: Query::parse(parts.uri.query()),
                headers: parts.headers,
                body: Bytes::new(),
            };
            ui::state(&call).unwrap_or_else(IntoResponse::into_response)
        }
        None if path.contains("/v1/") => text(StatusCode::NOT_FOUND, UNKNOWN_API_PATH),
        None => text(StatusCode::NOT_FOUND, UNKNOWN_PATH),
    };
    with_acl_policy(&registry, response)
}

/// Adds `X-Consul-Default-ACL-Policy`: `deny` when ACLs are emulated, else `allow`.
fn with_acl_policy(registry: &Registry, mut response: Response) -> Response {
    let policy = if registry.options().token.is_some() {
        "deny"
    } else {
        "allow"
    };
    response
        .headers_mut()
        .insert(ACL_POLICY_HEADER, HeaderValue::from_static(policy));
    response
}

/// Runs the handler of `endpoint`; `rest` is the path after a prefix pattern.
async fn handle(endpoint: Endpoint, call: Call, rest: String) -> Result<Response, ApiError> {
    match endpoint {
        Endpoint::Register => agent::register(&call),
        Endpoint::Deregister => agent::deregister(&call, &rest),
        Endpoint::AgentService => agent::service(&call, &rest).await,
        Endpoint::AgentServices => agent::services(&call),
        Endpoint::AgentChecks => agent::checks(&call),
        Endpoint::CheckPass => agent::ttl(&call, &rest, crate::state::model::Status::Passing),
        Endpoint::CheckWarn => agent::ttl(&call, &rest, crate::state::model::Status::Warning),
        Endpoint::CheckFail => agent::ttl(&call, &rest, crate::state::model::Status::Critical),
        Endpoint::CheckUpdate => agent::update(&call, &rest),
        Endpoint::AgentSelf => agent::agent_self(&call),
        Endpoint::HealthService => health::service(&call, &rest).await,
        Endpoint::CatalogServices => catalog::services(&call).await,
        Endpoint::CatalogService => catalog::service(&call, &rest).await,
        Endpoint::CatalogDatacenters => Ok(json(&[crate::state::DATACENTER])),
        Endpoint::StatusLeader => Ok(status::leader(&call)),
        Endpoint::StatusPeers => Ok(status::peers(&call)),
    }
}

/// An error response: a status code and a plain-text body without a trailing newline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ApiError {
    /// HTTP status.
    status: StatusCode,
    /// Body text.
    message: String,
}

impl ApiError {
    /// 400.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 404.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 500.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: denied.to_string(),
        }
    }
}

impl From<DecodeError> for ApiError {
    fn from(error: DecodeError) -> Self {
        Self::bad_request(format!("Request decode failed: {error}"))
    }
}

impl From<UnknownService> for ApiError {
    fn from(error: UnknownService) -> Self {
        Self::not_found(error.to_string())
    }
}

impl From<UpdateError> for ApiError {
    fn from(error: UpdateError) -> Self {
        match error {
            UpdateError::UnknownCheck(_) => Self::not_found(error.to_string()),
            UpdateError::NotTtl(_) => Self::internal(error.to_string()),
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        Self::internal(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        text(self.status, &self.message)
    }
}

/// A plain-text response.
fn text(status: StatusCode, body: &str) -> Response {
    (status, [(CONTENT_TYPE, TEXT_PLAIN)], body.to_owned()).into_response()
}

/// A 200/405 carrying `Allow`, with an optional plain-text body.
fn allow_response(status: StatusCode, allow: &'static str, body: Option<String>) -> Response {
    let mut response = match body {
        Some(body) => text(status, &body),
        None => status.into_response(),
    };
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// The empty 200 of write endpoints: no body, no content type (§0).
pub(crate) fn written() -> Response {
    StatusCode::OK.into_response()
}

/// A 200 JSON response in dev-mode formatting.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "application/json")],
        to_dev_json(value),
    )
        .into_response()
}

/// A 200 JSON response with the query-meta headers of catalog and health reads (§0, §6.1).
pub(crate) fn json_with_index<T: Serialize + ?Sized>(value: &T, index: u64) -> Response {
    let mut response = json(value);
    let headers = response.headers_mut();
    headers.insert("x-consul-index", HeaderValue::from(index.max(1)));
    headers.insert("x-consul-knownleader", HeaderValue::from_static("true"));
    headers.insert("x-consul-lastcontact", HeaderValue::from_static("0"));
    headers.insert(
        "x-consul-effective-consistency",
        HeaderValue::from_static("leader"),
    );
    response
}

/// Percent-decodes a URL path the way Go fills `URL.Path` (`+` stays a plus).
pub(crate) fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_pattern_wins_and_prefixes_keep_the_rest() {
        let (route, rest) = resolve("/v1/agent/service/deregister/a/b").unwrap();
        assert_eq!(route.endpoint, Endpoint::Deregister);
        assert_eq!(rest, "a/b");
        let (route, _) = resolve("/v1/agent/service/register").unwrap();
        assert_eq!(route.endpoint, Endpoint::Register);
        let (route, rest) = resolve("/v1/agent/service/web-1").unwrap();
        assert_eq!((route.endpoint, rest), (Endpoint::AgentService, "web-1"));
        assert!(resolve("/v1/health/services").is_none());
        assert!(resolve("/v1/agent/services/x").is_none());
    }

    #[test]
    fn paths_are_percent_decoded_like_go() {
        assert_eq!(percent_decode("/a%2Fb%3a+c"), "/a/b:+c");
        assert_eq!(percent_decode("/bad%zz%"), "/bad%zz%");
    }
}
