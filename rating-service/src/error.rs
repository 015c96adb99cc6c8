//! [`ApiError`]: every way a request can fail, answered as RFC 9457 problem details.

use common::fault::InjectedFault;
use common::http::{PROBLEM_CONTENT_TYPE, Problem};
use poem::error::ResponseError;
use poem::http::{StatusCode, header};
use poem::{IntoResponse, Response};

use crate::domain::{InvalidId, InvalidRating};
use crate::repository::RepositoryError;

/// Why a request failed. Each variant picks the status; [`ApiError::Internal`] hides its cause.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a path parameter or the JSON body is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 404: no route for this path.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("this route only allows {allow}")]
    MethodNotAllowed {
        /// The methods the route allows, as sent in `Allow`.
        allow: &'static str,
    },
    /// 413: the body is larger than the limit.
    #[error("the request body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 415: the body is not declared as JSON.
    #[error("the request body must be application/json, got {0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed JSON whose fields are missing, mistyped or out of range.
    #[error("{0}")]
    Unprocessable(String),
    /// Any other client error poem raised itself, with poem's status.
    #[error("the request cannot be handled: {detail}")]
    Rejected {
        /// Poem's status (always 4xx).
        status: StatusCode,
        /// Poem's description, which never holds internals for a 4xx.
        detail: String,
    },
    /// 503: a demo fault fired.
    #[error(transparent)]
    Fault(#[from] InjectedFault),
    /// 503: the database cannot be reached or is jammed; logged, its cause never shown.
    #[error(transparent)]
    StorageUnavailable(RepositoryError),
    /// 500: a bug or a storage failure; logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

// === impl ApiError ===

impl ApiError {
    /// Any error poem raised on its own (unknown route, unreadable path parameters, …), as the
    /// same problem details, keeping poem's status and hiding the text of anything 5xx.
    pub fn from_poem(error: &poem::Error, path: &str) -> Self {
        match error.status() {
            StatusCode::NOT_FOUND => Self::NotFound(format!("no route for {path}")),
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge {
                limit: crate::routes::MAX_BODY_BYTES,
            },
            status if status.is_client_error() => Self::Rejected {
                status,
                detail: error.to_string(),
            },
            _ => Self::Internal(error.to_string().into()),
        }
    }

    /// The problem details body of this error.
    pub fn problem(&self) -> Problem {
        let status = self.status().as_u16();
        match self {
            Self::Internal(_) => Problem::new(status, "the service failed to handle the request"),
            Self::Fault(_) => {
                Problem::unavailable("this instance is failing on purpose (fault injection)")
            }
            Self::StorageUnavailable(_) => {
                Problem::unavailable("the ratings database is unavailable; try again shortly")
            }
            other => Problem::new(status, other.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Rejected { status, .. } => *status,
            Self::Fault(_) | Self::StorageUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_response(&self) -> Response {
        match self {
            Self::Internal(e) => tracing::error!(error = %e, "request failed"),
            Self::StorageUnavailable(e) => tracing::warn!(error = %e, "storage unavailable"),
            _ => {}
        }
        let mut response = Response::builder()
            .status(self.status())
            .content_type(PROBLEM_CONTENT_TYPE)
            .body(self.problem().to_json());
        match self {
            Self::MethodNotAllowed { allow } => {
                response
                    .headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static(allow));
            }
            // A pool reconnects within a second of the database's return.
            Self::StorageUnavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.as_response()
    }
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        Self::BadRequest(e.to_string())
    }
}

impl From<InvalidRating> for ApiError {
    fn from(e: InvalidRating) -> Self {
        Self::Unprocessable(e.to_string())
    }
}

impl From<RepositoryError> for ApiError {
    fn from(e: RepositoryError) -> Self {
        if e.is_unavailable() {
            Self::StorageUnavailable(e)
        } else {
            Self::Internal(Box::new(e))
        }
    }
}
