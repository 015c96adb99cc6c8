//! The HTTP surface on warp: the filter tree, its handlers, and what wraps every request.

use std::convert::Infallible;
use std::sync::Arc;

use common::fault::Faults;
use common::http::{HealthReport, INSTANCE_ID_HEADER, REQUEST_ID_HEADER, request_id_or_new};
use common::lifecycle::LocalInstance;
use warp::http::HeaderMap;
use warp::http::header::{HeaderName, HeaderValue};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::domain::MovieId;
use crate::error::ApiError;
use crate::repository::MovieRepository;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Where movies come from.
    pub movies: Arc<dyn MovieRepository>,
    /// Service name, for `/health`.
    pub service: &'static str,
    /// This instance's ID, for `/health` and `X-Instance-Id`.
    pub instance_id: Arc<str>,
    /// Demo faults injected into the API routes (never `/health`).
    pub faults: Faults,
}

impl AppState {
    /// State for `instance`, serving movies from `movies`.
    pub fn new(instance: &LocalInstance, faults: Faults, movies: Arc<dyn MovieRepository>) -> Self {
        Self {
            movies,
            service: instance.info.name,
            instance_id: instance.id.as_str().into(),
            faults,
        }
    }
}

/// The whole service as one warp filter: routes, problem details and request context.
///
/// Each request runs in a `request` span. Its request ID is decided inside the span (kept from
/// the caller or generated) and recorded into it, so the ID that is logged is the one echoed.
/// The filter never rejects: every rejection leaves as problem details.
pub fn router(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let instance_id = state.instance_id.clone();

    // Path before method, so that a known path with the wrong method is a 405, not a 404.
    let health = warp::path!("health")
        .and(warp::get())
        .and(with_state(state.clone()))
        .map(health);
    let list = warp::path!("metadata")
        .and(warp::get())
        .and(with_state(state.clone()))
        .then(|state| async move { respond(list_movies(state).await) });
    let one = warp::path!("metadata" / String)
        .and(warp::get())
        .and(with_state(state))
        .then(|id, state| async move { respond(get_movie(id, state).await) });
    let routes = health
        .or(list)
        .unify()
        .or(one)
        .unify()
        .recover(|rejection: Rejection| async move {
            Ok::<_, Infallible>(ApiError::from_rejection(&rejection).into_response())
        })
        .unify();

    warp::header::headers_cloned()
        .map(request_id)
        .and(warp::path::full())
        .and(routes)
        .map(
            move |request_id: String, path: FullPath, response: Response| {
                common::http::log_served(path.as_str(), response.status().as_u16());
                stamp(response, &instance_id, &request_id)
            },
        )
        .with(warp::trace(|info| {
            tracing::info_span!(
                "request",
                method = %info.method(),
                path = %info.path(),
                request_id = tracing::field::Empty,
            )
        }))
}

fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// Keeps the caller's request ID or makes one, and records it into the request's span.
fn request_id(headers: HeaderMap) -> String {
    let incoming = headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok());
    let request_id = request_id_or_new(incoming);
    tracing::Span::current().record("request_id", tracing::field::display(&request_id));
    request_id
}

/// Adds `X-Instance-Id` and `X-Request-Id` to an answer.
fn stamp(mut response: Response, instance_id: &str, request_id: &str) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(instance_id) {
        headers.insert(HeaderName::from_static(INSTANCE_ID_HEADER), value);
    }
    // request_id_or_new only yields visible ASCII, always a valid header value.
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    response
}

fn respond<T: Reply>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(reply) => reply.into_response(),
        Err(error) => error.into_response(),
    }
}

fn health(state: AppState) -> Response {
    warp::reply::json(&HealthReport::passing(state.service, &state.instance_id)).into_response()
}

async fn list_movies(state: AppState) -> Result<impl Reply, ApiError> {
    state.faults.inject().await?;
    Ok(warp::reply::json(&state.movies.list()))
}

async fn get_movie(id: String, state: AppState) -> Result<impl Reply, ApiError> {
    state.faults.inject().await?;
    // warp hands over the raw segment, percent-escapes included; the ID check refuses them.
    let id = MovieId::parse(&id)?;
    state
        .movies
        .find(&id)
        .map(|movie| warp::reply::json(&movie))
        .ok_or_else(|| ApiError::NotFound(format!("no movie {}", id.as_str())))
}
