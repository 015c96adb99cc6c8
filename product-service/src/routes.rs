//! The HTTP surface on actix-web: the app, its handlers, and the middleware every request passes.

use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, ResponseError, web};
use common::fault::Faults;
use common::http::{
    HealthReport, INSTANCE_ID_HEADER, PROBLEM_CONTENT_TYPE, REQUEST_ID_HEADER, request_id_or_new,
};
use common::lifecycle::LocalInstance;
use tracing::Instrument;

use crate::domain::{Product, ProductId};
use crate::error::ApiError;
use crate::repository::ProductRepository;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Where products come from.
    pub products: Arc<dyn ProductRepository>,
    /// Service name, for `/health`.
    pub service: &'static str,
    /// This instance's ID, for `/health` and `X-Instance-Id`.
    pub instance_id: Arc<str>,
    /// Demo faults injected into the API routes (never `/health`).
    pub faults: Faults,
}

impl AppState {
    /// State for `instance`, serving products from `products`.
    pub fn new(
        instance: &LocalInstance,
        faults: Faults,
        products: Arc<dyn ProductRepository>,
    ) -> Self {
        Self {
            products,
            service: instance.info.name,
            instance_id: instance.id.as_str().into(),
            faults,
        }
    }
}

/// The whole service as one actix `App`: routes, state, problem details and request context.
///
/// actix builds one `App` per worker thread, so `HttpServer::new` calls this once per worker.
pub fn router(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(state))
        // actix answers an unparsable path parameter with a plain 404; ours is a 400 problem.
        .app_data(web::PathConfig::default().error_handler(|e, _| {
            ApiError::BadRequest(format!("invalid path parameter: {e}")).into()
        }))
        .wrap(from_fn(request_context))
        .service(get_only("/health", web::get().to(health)))
        .service(get_only("/products", web::get().to(list_products)))
        .service(get_only("/products/{id}", web::get().to(get_product)))
        .default_service(web::to(not_found))
}

/// A resource serving `route` that answers other methods with 405 problem details and `Allow`
/// (actix's own 405 has an empty body and no `Allow`).
fn get_only(path: &str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow: "GET" })
        }))
}

/// Runs one request inside a span carrying its request ID, makes sure every error leaves as
/// problem details (even actix's own), and stamps `X-Instance-Id` and `X-Request-Id`.
async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let instance_id = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.instance_id.clone());
    let incoming = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok());
    let request_id = request_id_or_new(incoming);
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.path(),
        request_id = %request_id,
    );
    // Never clone the `HttpRequest` before routing: actix needs it unshared to record the
    // matched path, and panics otherwise.
    async move {
        let mut response = match next.call(req).await {
            Ok(response) => response.map_into_boxed_body(),
            // Unreachable with this app: actix turns handler, extractor and default-service
            // errors into responses before they reach us. Should a future middleware fail, its
            // error still leaves as problem details (rendered by actix, without our headers).
            Err(error) => {
                let status = error.as_response_error().status_code();
                return Err(ApiError::from_status(status, Some(&error)).into());
            }
        };
        if response.status().as_u16() >= 400 && !is_problem(&response) {
            let problem = ApiError::from_status(response.status(), response.response().error());
            response = ServiceResponse::new(response.request().clone(), problem.error_response());
        }
        let headers = response.headers_mut();
        if let Some(value) = instance_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
            headers.insert(HeaderName::from_static(INSTANCE_ID_HEADER), value);
        }
        // request_id_or_new only yields visible ASCII, always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
        }
        common::http::log_served(response.request().path(), response.status().as_u16());
        Ok(response)
    }
    .instrument(span)
    .await
}

fn is_problem(response: &ServiceResponse<BoxBody>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_CONTENT_TYPE.as_bytes())
}

async fn health(state: web::Data<AppState>) -> web::Json<HealthReport> {
    web::Json(HealthReport::passing(state.service, &state.instance_id))
}

async fn list_products(state: web::Data<AppState>) -> Result<web::Json<Vec<Product>>, ApiError> {
    state.faults.inject().await?;
    Ok(web::Json(state.products.list()))
}

async fn get_product(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<Product>, ApiError> {
    state.faults.inject().await?;
    let id = ProductId::parse(&id)?;
    state
        .products
        .find(&id)
        .map(web::Json)
        .ok_or_else(|| ApiError::NotFound(format!("no product {}", id.as_str())))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!("no route for {}", req.path())))
}
