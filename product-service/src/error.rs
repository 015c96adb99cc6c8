//! [`ApiError`]: every way a request can fail, answered as RFC 9457 problem details.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use common::fault::InjectedFault;
use common::http::{PROBLEM_CONTENT_TYPE, Problem};

use crate::domain::InvalidId;

/// Why a request failed. Each variant picks the status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a path parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 404: no such product, or no route for the path.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("this route only allows {allow}")]
    MethodNotAllowed {
        /// The methods the route allows, as sent in `Allow`.
        allow: &'static str,
    },
    /// Any other error actix answered itself, with actix's status.
    #[error("{detail}")]
    Rejected {
        /// actix's status.
        status: StatusCode,
        /// What went wrong, safe to show (generic for a 5xx).
        detail: String,
    },
    /// 503: a demo fault fired.
    #[error(transparent)]
    Fault(#[from] InjectedFault),
}

// === impl ApiError ===

impl ApiError {
    /// The problem details body of this error.
    pub fn problem(&self) -> Problem {
        let status = self.status_code().as_u16();
        match self {
            Self::Fault(_) => {
                Problem::unavailable("this instance is failing on purpose (fault injection)")
            }
            other => Problem::new(status, other.to_string()),
        }
    }

    /// Problem details for a response actix produced on its own with a plain body, keeping its
    /// status and describing it from `cause` when that is safe (never for a 5xx).
    pub fn from_status(status: StatusCode, cause: Option<&actix_web::Error>) -> Self {
        let detail = match cause {
            Some(e) if status.is_client_error() => e.to_string(),
            _ if status.is_server_error() => "the service failed to handle the request".to_owned(),
            _ => status.canonical_reason().unwrap_or("error").to_owned(),
        };
        Self::Rejected { status, detail }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Rejected { status, .. } => *status,
            Self::Fault(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(PROBLEM_CONTENT_TYPE);
        if let Self::MethodNotAllowed { allow } = self {
            response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
        }
        response.body(self.problem().to_json())
    }
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        Self::BadRequest(e.to_string())
    }
}
