//! [`ApiError`]: every way a request can fail, answered as RFC 9457 problem details.

use std::io::Cursor;

use common::fault::InjectedFault;
use common::http::{PROBLEM_CONTENT_TYPE, Problem};
use rocket::http::{Header, Status};
use rocket::response::{self, Responder, Response};
use rocket::{Request, catch};

use crate::domain::InvalidId;
use crate::routes::RequestContext;

/// Why a request failed. Each variant picks the status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a path parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 404: no such user, or no route for the path.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("this route only allows {allow}")]
    MethodNotAllowed {
        /// The methods the route allows, as sent in `Allow`.
        allow: &'static str,
    },
    /// Any other error Rocket answered itself, with Rocket's status.
    #[error("{detail}")]
    Rejected {
        /// Rocket's status.
        status: Status,
        /// What went wrong, safe to show (generic for a 5xx).
        detail: String,
    },
    /// 503: a demo fault fired.
    #[error(transparent)]
    Fault(#[from] InjectedFault),
}

// === impl ApiError ===

impl ApiError {
    /// The status this error is answered with.
    pub fn status(&self) -> Status {
        match self {
            Self::BadRequest(_) => Status::BadRequest,
            Self::NotFound(_) => Status::NotFound,
            Self::MethodNotAllowed { .. } => Status::MethodNotAllowed,
            Self::Rejected { status, .. } => *status,
            Self::Fault(_) => Status::ServiceUnavailable,
        }
    }

    /// The problem details body of this error.
    pub fn problem(&self) -> Problem {
        let status = self.status().code;
        match self {
            Self::Fault(_) => {
                Problem::unavailable("this instance is failing on purpose (fault injection)")
            }
            other => Problem::new(status, other.to_string()),
        }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let body = self.problem().to_json();
        let mut response = Response::build();
        response
            .status(self.status())
            .header(Header::new("Content-Type", PROBLEM_CONTENT_TYPE))
            .sized_body(body.len(), Cursor::new(body));
        if let Self::MethodNotAllowed { allow } = self {
            response.header(Header::new("Allow", allow));
        }
        let mut response = response.finalize();
        // The response fairing stamps these too, but Rocket skips fairings when it answers a
        // request it could not parse; stamping here covers those answers as well.
        RequestContext::of(req).stamp(req, &mut response);
        Ok(response)
    }
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        Self::BadRequest(e.to_string())
    }
}

/// Replaces every error page Rocket would render (unknown path, unparsable request, failed
/// guard) with problem details of the same status.
#[catch(default)]
pub fn problem_catcher(status: Status, req: &Request<'_>) -> ApiError {
    match status {
        Status::NotFound => ApiError::NotFound(format!("no route for {}", req.uri().path())),
        status => ApiError::Rejected {
            status,
            detail: if status.code >= 500 {
                "the service failed to handle the request".to_owned()
            } else {
                status.reason_lossy().to_lowercase()
            },
        },
    }
}
