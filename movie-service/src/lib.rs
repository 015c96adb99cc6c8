//! movie-service: the aggregator, on axum with tower and tower-http.
//!
//! It discovers metadata-service and rating-service (and user-service and product-service)
//! through `common`'s watchers, balances over their instances on the client side, retries on
//! another instance and ejects failing ones, so its callers do not notice instances dying.
//! `GET /discovery` shows what it sees.
//!
//! # Layout
//!
//! - [`cli`]: the command line, shared with `devstack`.
//! - [`gateway`]: the use cases, framework-free: which upstream to ask, what a missing answer means.
//! - [`routes`]: axum handlers.
//! - [`error`]: [`ApiError`](error::ApiError), answered as RFC 9457 problem JSON.
//! - this file: configuration, the router with its tower layers, and [`run`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{BoxError, Router};
use common::config::ServiceConfig;
use common::discovery::WatchOptions;
use common::fault::Faults;
use common::http::{HEALTH_PATH, INSTANCE_ID_HEADER, REQUEST_ID_HEADER, request_id_or_new};
use common::lifecycle::{self, LocalInstance, ServiceInfo};
use common::registry::Registry;
use common::upstream::{Balance, Strategy, UpstreamOptions};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;
use tracing::{Level, Span};

pub mod cli;
pub mod error;
pub mod gateway;
pub mod routes;

use error::ApiError;
use gateway::Gateway;

/// What this binary is.
pub const INFO: ServiceInfo = ServiceInfo {
    name: "movie-service",
    framework: "axum",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8083,
};

/// Largest request body accepted. 16 KiB: a rating is a few dozen bytes.
pub const MAX_BODY: usize = 16 * 1024;

/// Requests handled at once before new ones are shed with 503. 512 keeps memory and upstream
/// connections bounded under overload instead of queueing without limit.
pub const MAX_IN_FLIGHT: usize = 512;

/// Flags for calling upstreams (the aggregator's own, beyond the shared ones).
#[derive(Debug, Clone, clap::Args)]
pub struct UpstreamArgs {
    /// `resilient` (cached discovery, retries, ejection) or `naive` (the seeds' lookup per call,
    /// first instance, no retry; for comparison).
    #[arg(long, env = "UPSTREAM_STRATEGY", value_enum, default_value_t = Strategy::Resilient)]
    pub strategy: Strategy,
    /// `round-robin` or `least-pending` (power of two choices).
    #[arg(long, env = "UPSTREAM_BALANCE", value_enum, default_value_t = Balance::RoundRobin)]
    pub balance: Balance,
}

impl UpstreamArgs {
    /// The upstream options these flags select.
    pub fn options(&self) -> UpstreamOptions {
        UpstreamOptions {
            strategy: self.strategy,
            balance: self.balance,
            ..UpstreamOptions::default()
        }
    }
}

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Our instance ID, for `X-Instance-Id` and `/health`.
    pub instance_id: Arc<str>,
    /// Upstream clients.
    pub gateway: Arc<Gateway>,
    /// Demo faults.
    pub faults: Faults,
}

/// The request ID of the request being handled (kept from the caller or generated).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The application: routes, error mapping and tower layers.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let api = Router::new()
        .route("/movies", get(routes::movies))
        .route("/movies/{id}", get(routes::movie))
        .route("/movies/{id}/rating", put(routes::rate))
        .route("/users/{id}", get(routes::user))
        .route("/products/{id}", get(routes::product))
        .route_layer(middleware::from_fn_with_state(state.clone(), inject_faults));
    Router::new()
        .route("/health", get(routes::health))
        .route("/discovery", get(routes::discovery))
        .merge(api)
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(MAX_IN_FLIGHT)
                .timeout(request_timeout),
        )
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let request_id = req
                        .headers()
                        .get(REQUEST_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    let path = req.uri().path();
                    // Health probes get a DEBUG span, and (below) a DEBUG line.
                    if path == HEALTH_PATH {
                        tracing::debug_span!("request", method = %req.method(), path, request_id)
                    } else {
                        tracing::info_span!("request", method = %req.method(), path, request_id)
                    }
                })
                .on_response(|response: &Response, latency: Duration, span: &Span| {
                    // A probe's span is at DEBUG, or disabled (no metadata) when DEBUG is off.
                    let probe = span.metadata().is_none_or(|m| *m.level() == Level::DEBUG);
                    let status = response.status().as_u16();
                    let latency_ms = latency.as_millis();
                    if probe {
                        tracing::debug!(status, latency_ms, "served");
                    } else {
                        tracing::info!(status, latency_ms, "served");
                    }
                }),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

/// Keeps or generates `X-Request-Id`, hands it to handlers, echoes it, and stamps `X-Instance-Id`
/// on every response (errors included).
async fn request_context(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let incoming = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok());
    let id = request_id_or_new(incoming);
    // A request ID is visible ASCII by construction.
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    req.headers_mut().insert(REQUEST_ID_HEADER, value.clone());
    req.extensions_mut().insert(RequestId(id));
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID_HEADER, value);
    if let Ok(instance) = HeaderValue::from_str(&state.instance_id) {
        headers.insert(INSTANCE_ID_HEADER, instance);
    }
    response
}

async fn inject_faults(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match state.faults.inject().await {
        Ok(()) => next.run(req).await,
        Err(_) => ApiError::Fault.into_response(),
    }
}

async fn overloaded(error: BoxError) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::Overloaded("the request took too long".to_owned())
    } else {
        ApiError::Overloaded("too many requests in flight; try again".to_owned())
    }
}

/// Serves the aggregator on `listener` until `shutdown` resolves, registered in `registry`.
///
/// # Errors
///
/// When the upstream clients cannot be built or the server fails (see [`lifecycle::run`]).
pub async fn run(
    config: ServiceConfig,
    upstream: UpstreamOptions,
    listener: TcpListener,
    registry: Arc<dyn Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let instance = LocalInstance::resolve(INFO, &config, listener.local_addr()?).await;
    let gateway = Gateway::new(registry.clone(), upstream, WatchOptions::default())?;
    let state = AppState {
        instance_id: instance.id.as_str().into(),
        gateway: Arc::new(gateway),
        faults: config.faults,
    };
    let app = router(state, gateway::request_timeout(&upstream));
    lifecycle::run(
        &instance,
        &config,
        registry,
        shutdown,
        |stopping| async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopping)
                .await
        },
    )
    .await
}
