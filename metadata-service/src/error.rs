//! [`ApiError`]: every way a request can fail, answered as RFC 9457 problem details.

use common::fault::InjectedFault;
use common::http::{PROBLEM_CONTENT_TYPE, Problem};
use warp::Reply;
use warp::http::StatusCode;
use warp::http::header::{self, HeaderValue};
use warp::reject::{self, Rejection};
use warp::reply::Response;

use crate::domain::InvalidId;

/// Why a request failed. Each variant picks the status; [`ApiError::Internal`] hides its cause.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a path parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 404: no such movie, or no route for the path.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("this route only allows {allow}")]
    MethodNotAllowed {
        /// The methods the route allows, as sent in `Allow`.
        allow: &'static str,
    },
    /// Any other client error warp raised itself, with warp's status.
    #[error("{detail}")]
    Rejected {
        /// warp's status (4xx).
        status: StatusCode,
        /// warp's description of the rejection.
        detail: String,
    },
    /// 503: a demo fault fired.
    #[error(transparent)]
    Fault(#[from] InjectedFault),
    /// 500: a rejection nobody handled (a bug); logged, never shown.
    #[error("internal error")]
    Internal(String),
}

// === impl ApiError ===

impl ApiError {
    /// A warp rejection (no route matched, or a filter refused the request) as problem details.
    ///
    /// Every route here is GET-only, so a method rejection always means `Allow: GET`.
    pub fn from_rejection(rejection: &Rejection) -> Self {
        fn known<T: std::fmt::Display + 'static>(
            r: &Rejection,
            status: StatusCode,
        ) -> Option<ApiError> {
            r.find::<T>().map(|e| ApiError::Rejected {
                status,
                detail: e.to_string(),
            })
        }
        if rejection.find::<reject::MethodNotAllowed>().is_some() {
            return Self::MethodNotAllowed { allow: "GET" };
        }
        known::<reject::InvalidHeader>(rejection, StatusCode::BAD_REQUEST)
            .or_else(|| known::<reject::MissingHeader>(rejection, StatusCode::BAD_REQUEST))
            .or_else(|| known::<reject::InvalidQuery>(rejection, StatusCode::BAD_REQUEST))
            .or_else(|| known::<reject::LengthRequired>(rejection, StatusCode::LENGTH_REQUIRED))
            .or_else(|| known::<reject::PayloadTooLarge>(rejection, StatusCode::PAYLOAD_TOO_LARGE))
            .or_else(|| {
                known::<reject::UnsupportedMediaType>(rejection, StatusCode::UNSUPPORTED_MEDIA_TYPE)
            })
            .unwrap_or_else(|| {
                if rejection.is_not_found() {
                    Self::NotFound("no route for this path".to_owned())
                } else {
                    Self::Internal(format!("unhandled rejection: {rejection:?}"))
                }
            })
    }

    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Rejected { status, .. } => *status,
            Self::Fault(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
            other => Problem::new(status, other.to_string()),
        }
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %cause, "request failed");
        }
        let body = warp::reply::with_header(
            self.problem().to_json(),
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        let mut response = warp::reply::with_status(body, self.status()).into_response();
        if let Self::MethodNotAllowed { allow } = self {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        Self::BadRequest(e.to_string())
    }
}
