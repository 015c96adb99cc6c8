//! One error type for every handler, answered as RFC 9457 problem JSON.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::http::{PROBLEM_CONTENT_TYPE, Problem};
use serde_json::Value;

use crate::gateway::GatewayError;

/// What a handler can fail with; each variant picks the status and hides internals.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Input that is malformed or invalid (400, 413, 415, 422).
    #[error("{detail}")]
    Input {
        /// Status to answer.
        status: StatusCode,
        /// What is wrong.
        detail: String,
    },
    /// A use case failed.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// No route for this path.
    #[error("no route for {0}")]
    NoRoute(String),
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request took too long or the instance is at its concurrency limit.
    #[error("{0}")]
    Overloaded(String),
    /// A demo fault fired.
    #[error("fault injected by FAULT_ERROR_RATE")]
    Fault,
}

impl ApiError {
    /// A 400 with this detail.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::Input {
            status: StatusCode::BAD_REQUEST,
            detail: detail.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // axum picks 400 (syntax), 415 (content type), 413 (size) or 422 (shape).
        Self::Input {
            status: rejection.status(),
            detail: rejection.body_text(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

/// A problem response with the right content type.
pub fn problem(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, problem.to_json()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self {
            Self::Input { status, detail } => Problem::new(status.as_u16(), detail),
            Self::Gateway(GatewayError::NotFound { what }) => {
                Problem::not_found(format!("{what} does not exist"))
            }
            Self::Gateway(GatewayError::Unavailable { service, reason }) => {
                // The reason (addresses, transport errors) goes to the log, not to the caller.
                tracing::warn!(service, reason, "upstream unavailable");
                Problem::unavailable(format!("{service} is unavailable"))
            }
            Self::Gateway(GatewayError::Rejected {
                service,
                status,
                body,
            }) => {
                // Pass the rating service's own verdict on: its 4xx stays a 4xx, with its detail.
                let detail = match &body["detail"] {
                    Value::String(detail) => detail.clone(),
                    _ => format!("{service} refused the request"),
                };
                Problem::new(status, detail)
            }
            Self::NoRoute(path) => Problem::not_found(format!("no route for {path}")),
            Self::MethodNotAllowed => Problem::new(405, "method not allowed on this route"),
            Self::Overloaded(detail) => Problem::unavailable(detail),
            Self::Fault => Problem::unavailable("fault injected by FAULT_ERROR_RATE"),
        };
        problem(&body)
    }
}

/// `Json<T>` whose rejections become problem responses.
pub type JsonBody<T> = Result<Json<T>, JsonRejection>;
