//! The HTTP surface on poem: the router, its handlers, and the middleware every request passes.

use std::sync::Arc;

use common::fault::Faults;
use common::http::{HealthReport, INSTANCE_ID_HEADER, REQUEST_ID_HEADER, request_id_or_new};
use common::lifecycle::LocalInstance;
use poem::error::{MethodNotAllowedError, ResponseError};
use poem::http::HeaderValue;
use poem::web::{Data, Json, Path};
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};
use serde::Deserialize;
use tracing::Instrument;

use crate::domain::{Aggregate, Id, Stars, UserId};
use crate::error::ApiError;
use crate::repository::RatingRepository;

/// Largest request body accepted. A rating is under 100 bytes; 16 KiB leaves room for any honest
/// client and refuses floods before they are buffered.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Where ratings are kept.
    pub ratings: Arc<dyn RatingRepository>,
    /// Service name, for `/health`.
    pub service: &'static str,
    /// This instance's ID, for `/health` and `X-Instance-Id`.
    pub instance_id: Arc<str>,
    /// Demo faults injected into the API routes (never `/health`).
    pub faults: Faults,
}

impl AppState {
    /// State for `instance`, serving ratings from `ratings`.
    pub fn new(
        instance: &LocalInstance,
        faults: Faults,
        ratings: Arc<dyn RatingRepository>,
    ) -> Self {
        Self {
            ratings,
            service: instance.info.name,
            instance_id: instance.id.as_str().into(),
            faults,
        }
    }
}

/// The whole service as one poem endpoint: routes, state, problem details and request context.
pub fn router(state: AppState) -> impl Endpoint<Output = Response> {
    let instance_id = state.instance_id.clone();
    Route::new()
        .at("/health", allow("GET", get(health)))
        .at(
            "/ratings/:record_type/:record_id",
            allow("GET, PUT", get(get_rating).put(put_rating)),
        )
        .data(state)
        .around(move |ep, req| request_context(ep, req, instance_id.clone()))
}

/// Answers a method the route lacks with 405 problem details and an `Allow` header (poem's own
/// 405 has an empty body and no `Allow`).
fn allow(methods: &'static str, route: impl Endpoint + 'static) -> impl Endpoint {
    route.catch_error(move |_: MethodNotAllowedError| async move {
        ApiError::MethodNotAllowed { allow: methods }
    })
}

/// Runs one request inside a span carrying its request ID, turns every error (ours and poem's
/// own 404s) into problem details, and stamps `X-Instance-Id` and `X-Request-Id` on the answer.
async fn request_context<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    instance_id: Arc<str>,
) -> poem::Result<Response> {
    let incoming = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok());
    let request_id = request_id_or_new(incoming);
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
    );
    async move {
        let path = req.uri().path().to_owned();
        let mut response = match ep.call(req).await {
            Ok(output) => output.into_response(),
            Err(error) => match error.downcast::<ApiError>() {
                Ok(api) => api.as_response(),
                Err(other) => ApiError::from_poem(&other, &path).as_response(),
            },
        };
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&instance_id) {
            headers.insert(INSTANCE_ID_HEADER, value);
        }
        // request_id_or_new only yields visible ASCII, always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert(REQUEST_ID_HEADER, value);
        }
        common::http::log_served(&path, response.status().as_u16());
        Ok(response)
    }
    .instrument(span)
    .await
}

#[handler]
fn health(Data(state): Data<&AppState>) -> Json<HealthReport> {
    Json(HealthReport::passing(state.service, &state.instance_id))
}

#[handler]
async fn get_rating(
    Path((record_type, record_id)): Path<(String, String)>,
    Data(state): Data<&AppState>,
) -> Result<Json<Aggregate>, ApiError> {
    state.faults.inject().await?;
    let record_type = Id::parse("record_type", &record_type)?;
    let record_id = Id::parse("record_id", &record_id)?;
    Ok(Json(
        state.ratings.aggregate(&record_type, &record_id).await?,
    ))
}

/// Body of `PUT /ratings/{record_type}/{record_id}`.
#[derive(Debug, Deserialize)]
struct RatingBody {
    /// Who rates.
    user_id: String,
    /// 1–5; read as any integer so that out-of-range values get a precise 422.
    value: i64,
}

#[handler]
async fn put_rating(
    Path((record_type, record_id)): Path<(String, String)>,
    Data(state): Data<&AppState>,
    req: &Request,
    body: Body,
) -> Result<Json<Aggregate>, ApiError> {
    state.faults.inject().await?;
    let record_type = Id::parse("record_type", &record_type)?;
    let record_id = Id::parse("record_id", &record_id)?;
    let body: RatingBody = read_json(req, body).await?;
    let user_id = UserId::parse(&body.user_id)?;
    let value = Stars::new(body.value)?;
    let aggregate = state
        .ratings
        .put(&record_type, &record_id, &user_id, value)
        .await?;
    tracing::info!(
        record_type = record_type.as_str(),
        record_id = record_id.as_str(),
        user_id = user_id.as_str(),
        value = value.get(),
        "rating set"
    );
    Ok(Json(aggregate))
}

/// Reads a JSON body: 415 unless declared JSON, 413 past [`MAX_BODY_BYTES`], 400 when it is not
/// JSON, 422 when it is JSON of the wrong shape (missing fields, wrong types).
async fn read_json<T: serde::de::DeserializeOwned>(
    req: &Request,
    body: Body,
) -> Result<T, ApiError> {
    let content_type = req.content_type().unwrap_or_default();
    if !is_json(content_type) {
        let shown = if content_type.is_empty() {
            "no content type"
        } else {
            content_type
        };
        return Err(ApiError::UnsupportedMediaType(shown.to_owned()));
    }
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = ApiError::PayloadTooLarge {
        limit: MAX_BODY_BYTES,
    };
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large);
    }
    let bytes = body
        .into_bytes_limit(MAX_BODY_BYTES)
        .await
        .map_err(|e| match e {
            poem::error::ReadBodyError::PayloadTooLarge => too_large,
            other => ApiError::BadRequest(format!("the request body could not be read: {other}")),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        if e.is_data() {
            ApiError::Unprocessable(format!("invalid rating: {e}"))
        } else {
            ApiError::BadRequest(format!("malformed JSON: {e}"))
        }
    })
}

/// `application/json` or any `+json` type, parameters (`charset`) ignored.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_recognised() {
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json(yes), "{yes}");
        }
        for no in ["", "text/plain", "application/jsonx", "text/json+xml"] {
            assert!(!is_json(no), "{no}");
        }
    }
}
