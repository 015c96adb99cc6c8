//! The HTTP surface on Rocket: the rocket, its handlers, and the fairings every request passes.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::fault::Faults;
use common::http::{HealthReport, INSTANCE_ID_HEADER, REQUEST_ID_HEADER, request_id_or_new};
use common::lifecycle::LocalInstance;
use rocket::config::{LogLevel, Shutdown};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{Header, Method};
use rocket::route::{BoxFuture, Outcome};
use rocket::serde::json::Json;
use rocket::{Build, Data, Orbit, Request, Response, Rocket, Route, State, catchers, get, routes};
use tokio::sync::watch;

use crate::domain::{User, UserId};
use crate::error::{ApiError, problem_catcher};
use crate::repository::UserRepository;

/// What the handlers share (Rocket's managed state).
#[derive(Debug, Clone)]
pub struct AppState {
    /// Where users come from.
    pub users: Arc<dyn UserRepository>,
    /// Service name, for `/health`.
    pub service: &'static str,
    /// This instance's ID, for `/health` and `X-Instance-Id`.
    pub instance_id: Arc<str>,
    /// Demo faults injected into the API routes (never `/health`).
    pub faults: Faults,
}

impl AppState {
    /// State for `instance`, serving users from `users`.
    pub fn new(instance: &LocalInstance, faults: Faults, users: Arc<dyn UserRepository>) -> Self {
        Self {
            users,
            service: instance.info.name,
            instance_id: instance.id.as_str().into(),
            faults,
        }
    }
}

/// Rocket's configuration, built from values only: `rocket::custom` with it ignores
/// `Rocket.toml` and `ROCKET_*` variables, so `ServiceConfig` stays the one source of truth.
///
/// Rocket's own Ctrl-C and signal handling is off, so only our shutdown future stops it, and its
/// logger is off: the process logs through `tracing`, which also receives Rocket's `log` records.
pub fn rocket_config(address: SocketAddr, grace: Duration) -> rocket::Config {
    // Rocket counts in whole seconds; a sub-second grace must not become "no drain at all".
    let grace = u32::try_from(grace.as_secs()).unwrap_or(u32::MAX).max(1);
    rocket::Config {
        address: address.ip(),
        port: address.port(),
        log_level: LogLevel::Off,
        cli_colors: false,
        shutdown: Shutdown {
            ctrlc: false,
            #[cfg(unix)]
            signals: HashSet::new(),
            grace,
            // One more second for connections that ignore the graceful close.
            mercy: 1,
            ..Shutdown::default()
        },
        // The release profile's defaults in every build: the debug profile only adds a warning
        // that Rocket runs inside a runtime it did not create, which is exactly our design.
        ..rocket::Config::release_default()
    }
}

/// The whole service as one unlaunched rocket: routes, state, problem details, request context.
pub fn router(state: AppState, config: rocket::Config) -> Rocket<Build> {
    rocket::custom(config)
        .manage(state)
        .mount("/", routes![health, list_users, get_user])
        .mount(
            "/",
            method_not_allowed(&["/health", "/users", "/users/<_>"]),
        )
        .register("/", catchers![problem_catcher])
        .attach(RequestContextFairing)
        .attach(DrainFairing::default())
}

/// Rocket 0.5 has no 405: a path served for GET only answers other methods with 404. These
/// routes answer every other method on `paths` with 405 problem details and `Allow: GET`
/// (HEAD is served from the GET routes by Rocket itself).
fn method_not_allowed(paths: &[&str]) -> Vec<Route> {
    let others = [
        Method::Put,
        Method::Post,
        Method::Delete,
        Method::Options,
        Method::Trace,
        Method::Connect,
        Method::Patch,
    ];
    fn handler<'r>(req: &'r Request<'_>, _: Data<'r>) -> BoxFuture<'r> {
        Box::pin(async move { Outcome::from(req, ApiError::MethodNotAllowed { allow: "GET" }) })
    }
    paths
        .iter()
        .flat_map(|path| {
            others.iter().map(move |method| {
                let mut route = Route::new(*method, path, handler);
                route.name = Some("method_not_allowed".into());
                route
            })
        })
        .collect()
}

/// One request's request ID and span, computed once and cached on the request.
#[derive(Debug)]
pub struct RequestContext {
    /// Kept from the caller's `X-Request-Id` if usable, else generated.
    pub request_id: String,
    /// The `request` span the request's events are recorded in.
    pub span: tracing::Span,
}

impl RequestContext {
    /// The context of `req`, created on first use.
    pub fn of<'r>(req: &'r Request<'_>) -> &'r Self {
        req.local_cache(|| {
            let request_id = request_id_or_new(req.headers().get_one(REQUEST_ID_HEADER));
            let span = tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = %request_id,
            );
            Self { request_id, span }
        })
    }

    /// Adds `X-Instance-Id` and `X-Request-Id` to a response to `req`.
    pub fn stamp(&self, req: &Request<'_>, response: &mut Response<'_>) {
        if let Some(state) = req.rocket().state::<AppState>() {
            response.set_header(Header::new(
                INSTANCE_ID_HEADER,
                state.instance_id.to_string(),
            ));
        }
        response.set_header(Header::new(REQUEST_ID_HEADER, self.request_id.clone()));
    }
}

/// Gives every request its [`RequestContext`], stamps the answer and logs it in the span.
///
/// Rocket has no "around" middleware: the span cannot wrap the handler's future, so events are
/// attached to it explicitly (`parent: &span`) here and in [`ApiError`]'s responder.
#[derive(Debug)]
struct RequestContextFairing;

#[rocket::async_trait]
impl Fairing for RequestContextFairing {
    fn info(&self) -> Info {
        Info {
            name: "request context",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        RequestContext::of(req);
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, response: &mut Response<'r>) {
        let context = RequestContext::of(req);
        context.stamp(req, response);
        context.span.in_scope(|| {
            common::http::log_served(req.uri().path().as_str(), response.status().code)
        });
    }
}

/// After the last request in flight, time for idle keep-alive connections to close before
/// Rocket looks. They close as soon as their task runs after the shutdown trip, well within a
/// millisecond; 100 ms covers a busy machine. Should one still be open, Rocket waits out its
/// grace period as before: slower, never wrong.
const SETTLE: Duration = Duration::from_millis(100);

/// Lets Rocket finish a graceful shutdown as soon as it has drained.
///
/// Rocket 0.5 looks once, right after its shutdown fairings, for connections still open, and if
/// it finds one, even an idle keep-alive connection closing that very moment, it sleeps out its
/// whole grace period (`Rocket::http_server` in rocket/src/server.rs). Every client with a
/// connection pool (the aggregator, the registry's HTTP check) keeps one open, so every Ctrl-C
/// took the full grace period (10 s), and `docker stop`, which kills after 10 s, could kill us
/// first.
/// This fairing counts the requests in flight and, on shutdown, waits until none is, and a
/// [`SETTLE`] more, before Rocket looks; never longer than the grace period.
#[derive(Debug, Default)]
struct DrainFairing {
    /// Requests in flight.
    in_flight: Arc<watch::Sender<usize>>,
}

/// Counts one request in flight until the request is dropped, after its answer was handed over.
#[derive(Debug)]
struct InFlight(Arc<watch::Sender<usize>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[rocket::async_trait]
impl Fairing for DrainFairing {
    fn info(&self) -> Info {
        Info {
            name: "drain",
            kind: Kind::Request | Kind::Shutdown,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        req.local_cache(|| {
            self.in_flight.send_modify(|n| *n += 1);
            InFlight(self.in_flight.clone())
        });
    }

    async fn on_shutdown(&self, rocket: &Rocket<Orbit>) {
        let grace = Duration::from_secs(rocket.config().shutdown.grace.into());
        let mut in_flight = self.in_flight.subscribe();
        let drained = async {
            // The sender lives in `self`, so waiting cannot fail.
            let _ = in_flight.wait_for(|n| *n == 0).await;
            tokio::time::sleep(SETTLE).await;
        };
        if tokio::time::timeout(grace, drained).await.is_err() {
            tracing::warn!("requests still in flight after the grace period");
        }
    }
}

#[get("/health")]
fn health(state: &State<AppState>) -> Json<HealthReport> {
    Json(HealthReport::passing(state.service, &state.instance_id))
}

#[get("/users")]
async fn list_users(state: &State<AppState>) -> Result<Json<Vec<User>>, ApiError> {
    state.faults.inject().await?;
    Ok(Json(state.users.list()))
}

#[get("/users/<id>")]
async fn get_user(id: &str, state: &State<AppState>) -> Result<Json<User>, ApiError> {
    state.faults.inject().await?;
    let id = UserId::parse(id)?;
    state
        .users
        .find(&id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no user {}", id.as_str())))
}
