//! HTTP handlers: extract, call the gateway, shape the answer.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::{Extension, Json};
use common::http::{HealthReport, MAX_ID_LEN, is_valid_id};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, JsonBody};
use crate::gateway::Movie;
use crate::{AppState, RequestId};

/// `GET /health`.
pub async fn health(State(state): State<AppState>) -> Json<HealthReport> {
    Json(HealthReport::passing(crate::INFO.name, &state.instance_id))
}

/// `GET /movies/{id}`.
pub async fn movie(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Movie>, ApiError> {
    let id = checked_id(id)?;
    Ok(Json(state.gateway.movie(&id, &request_id).await?))
}

/// `GET /movies`.
pub async fn movies(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
) -> Result<Json<Vec<Movie>>, ApiError> {
    Ok(Json(state.gateway.movies(&request_id).await?))
}

/// Body of `PUT /movies/{id}/rating`.
#[derive(Debug, Deserialize)]
pub struct RatingInput {
    /// Who rates.
    pub user_id: String,
    /// 1 to 5 (checked by rating-service, whose 4xx is passed on).
    pub value: Value,
}

/// `PUT /movies/{id}/rating`: forwarded to rating-service.
pub async fn rate(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    id: Result<Path<String>, PathRejection>,
    body: JsonBody<RatingInput>,
) -> Result<Json<Value>, ApiError> {
    let id = checked_id(id)?;
    let Json(input) = body?;
    let forwarded = json!({ "user_id": input.user_id, "value": input.value });
    Ok(Json(
        state.gateway.rate(&id, &forwarded, &request_id).await?,
    ))
}

/// `GET /users/{id}` through discovery.
pub async fn user(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = checked_id(id)?;
    Ok(Json(state.gateway.user(&id, &request_id).await?))
}

/// `GET /products/{id}` through discovery.
pub async fn product(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = checked_id(id)?;
    Ok(Json(state.gateway.product(&id, &request_id).await?))
}

/// `GET /discovery`: what the aggregator sees of each upstream.
pub async fn discovery(State(state): State<AppState>) -> Json<Value> {
    let services: Map<String, Value> = state
        .gateway
        .status()
        .into_iter()
        .map(|(name, status)| (name.to_owned(), json!(status)))
        .collect();
    Json(json!({ "services": services }))
}

/// Unknown path.
pub async fn no_route(uri: Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_owned())
}

/// Known path, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// An ID safe to put in an upstream URL: 1–64 of `[A-Za-z0-9_-]`.
fn checked_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = id?;
    if is_valid_id(&id) {
        Ok(id)
    } else {
        Err(ApiError::bad_request(format!(
            "ids are 1 to {MAX_ID_LEN} letters, digits, '-' or '_'"
        )))
    }
}
