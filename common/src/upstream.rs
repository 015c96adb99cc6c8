//! Calls another service by name: balancing, timeouts, retries on another instance, outlier ejection.
//!
//! An [`Upstream`] reads instances from a [`ServiceWatcher`] (zero registry calls per request)
//! and, for each request:
//!
//! - picks a usable instance ([`Balance`]: round-robin, or least-pending power of two choices);
//! - gives each attempt a timeout and the whole request a deadline;
//! - on a refused connection retries at once on a *different* instance (nothing was sent, so
//!   this is safe for any method); on a timeout, a broken connection or a 502/503/504 retries
//!   only idempotent requests (GET, HEAD, PUT, DELETE: our APIs make PUT idempotent);
//! - withdraws every retry from a budget (tower's `TpsBudget`: 20 % of recent requests plus
//!   10 per second, over 10 s, as Finagle and Linkerd do), so an outage does not multiply load;
//! - feeds each outcome to the instance's outlier detector ([`endpoint`]);
//! - fails fast with a typed error when no instance is usable, without waiting for a timeout.
//!
//! [`Strategy::Naive`] reproduces the seed tutorials (a registry lookup per call, the first
//! instance, no retry) so the benchmark can compare both through the same code path.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Serialize;
use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};

use crate::discovery::ServiceWatcher;
use crate::http::{REQUEST_ID_HEADER, request_id_or_new};
use crate::registry::{Instance, Registry, RegistryError};

pub mod balance;
pub mod endpoint;

pub use balance::Balance;
pub use endpoint::{Availability, EjectionPolicy, Endpoint, Outcome};

/// Resilient (the default) or the seeds' naive strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Strategy {
    /// Cached discovery, balancing, retries, budget and ejection.
    #[default]
    Resilient,
    /// Registry lookup per call, first instance, no retry: the baseline to beat.
    Naive,
}

/// Tuning of an [`Upstream`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpstreamOptions {
    /// Resilient or naive.
    pub strategy: Strategy,
    /// How instances are chosen.
    pub balance: Balance,
    /// Time allowed to open a connection. 500 ms: within a data centre or on loopback a connect
    /// takes well under a millisecond, so anything slower means the host is gone.
    pub connect_timeout: Duration,
    /// Time allowed for one attempt, answer body included. 2 s: our backends answer in
    /// milliseconds; a slower answer is better retried elsewhere.
    pub attempt_timeout: Duration,
    /// Time allowed for the whole request, retries included. 5 s.
    pub deadline: Duration,
    /// Attempts per request, the first included. 3: a retry and one more if two instances fail.
    pub max_attempts: u32,
    /// Outlier ejection.
    pub ejection: EjectionPolicy,
    /// Share of recent requests that may be retried. 0.2 (Finagle's and Linkerd's default).
    pub retry_ratio: f32,
    /// Retries always allowed per second, so a quiet client can still retry. 10.
    pub retry_min_per_sec: u32,
    /// Window the budget remembers requests for. 10 s.
    pub retry_window: Duration,
    /// Largest answer body accepted. 1 MiB; our payloads are a few hundred bytes.
    pub max_body: usize,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        Self {
            strategy: Strategy::Resilient,
            balance: Balance::RoundRobin,
            connect_timeout: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(5),
            max_attempts: 3,
            ejection: EjectionPolicy::default(),
            retry_ratio: 0.2,
            retry_min_per_sec: 10,
            retry_window: Duration::from_secs(10),
            max_body: 1024 * 1024,
        }
    }
}

/// A request to an upstream service.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// HTTP method.
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path: String,
    /// JSON body, if any.
    pub body: Option<Bytes>,
    /// Request ID to forward (generated when None).
    pub request_id: Option<String>,
}

impl UpstreamRequest {
    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            body: None,
            request_id: None,
        }
    }

    /// A PUT of `body` as JSON.
    ///
    /// # Errors
    ///
    /// When `body` cannot be serialised.
    pub fn put_json<T: Serialize>(path: impl Into<String>, body: &T) -> serde_json::Result<Self> {
        Ok(Self {
            method: Method::PUT,
            path: path.into(),
            body: Some(serde_json::to_vec(body)?.into()),
            request_id: None,
        })
    }

    /// Sets the request ID to forward.
    #[must_use]
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Whether repeating the request is harmless.
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        )
    }
}

/// An upstream's answer, body buffered.
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// The instance that answered.
    pub instance: Instance,
    /// Attempts made, the answering one included.
    pub attempts: u32,
}

impl UpstreamResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Decodes the body as JSON.
    ///
    /// # Errors
    ///
    /// When the body is not the expected JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.body)
    }
}

/// Why an upstream call produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The registry lists no healthy instance.
    #[error("no healthy instance of {service}")]
    NoInstance {
        /// Service called.
        service: String,
    },
    /// Instances exist but all are ejected: failing fast instead of waiting for a timeout.
    #[error("every instance of {service} is ejected after failures ({ejected} instance(s))")]
    AllEjected {
        /// Service called.
        service: String,
        /// How many are ejected.
        ejected: usize,
    },
    /// The last attempt timed out.
    #[error("{service} did not answer in time ({attempts} attempt(s))")]
    Timeout {
        /// Service called.
        service: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The last attempt could not connect or the connection broke.
    #[error(
        "cannot reach {service} at {instance} ({attempts} attempt(s)): {} error: {message}",
        if *.connect { "connect" } else { "connection" }
    )]
    Transport {
        /// Service called.
        service: String,
        /// `host:port` of the last instance tried.
        instance: String,
        /// Attempts made.
        attempts: u32,
        /// Whether the connection could not be opened (refused, unreachable, connect timeout):
        /// nothing was sent, so retrying elsewhere is safe for any method. False when an open
        /// connection broke, after which the request may have been processed.
        connect: bool,
        /// What went wrong, with its causes.
        message: String,
    },
    /// The answer was larger than allowed.
    #[error("answer from {service} exceeds {limit} bytes")]
    BodyTooLarge {
        /// Service called.
        service: String,
        /// The limit.
        limit: usize,
    },
    /// Naive strategy only: the per-call registry lookup failed.
    #[error("cannot look up {service}: {source}")]
    Registry {
        /// Service called.
        service: String,
        /// The registry's error.
        source: RegistryError,
    },
}

/// What the aggregator shows per upstream in `/discovery`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamStatus {
    /// Registry index of the list in use.
    pub index: u64,
    /// Milliseconds since the registry last answered (null before the first answer).
    pub age_ms: Option<u64>,
    /// Whether the list may be out of date (last query failed or held back).
    pub stale: bool,
    /// The last discovery error, if the latest query failed.
    pub error: Option<String>,
    /// The strategy in use.
    pub strategy: &'static str,
    /// Per-instance view.
    pub instances: Vec<InstanceStatus>,
}

/// One instance in [`UpstreamStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceStatus {
    /// Instance ID.
    pub id: String,
    /// `host:port`.
    pub address: String,
    /// `healthy` or `ejected`.
    pub state: &'static str,
    /// Requests in flight.
    pub in_flight: u64,
    /// Successful attempts.
    pub successes: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Milliseconds of penalty left, when ejected.
    pub ejected_for_ms: Option<u64>,
}

/// A client for one upstream service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    service: String,
    source: Source,
    http: reqwest::Client,
    options: UpstreamOptions,
    budget: TpsBudget,
    cursor: AtomicUsize,
    /// Endpoints for the instance list last seen, kept across list updates so counters and
    /// ejection state survive them.
    endpoints: RwLock<EndpointSet>,
}

#[derive(Debug)]
enum Source {
    Watcher(ServiceWatcher),
    Naive(Arc<dyn Registry>),
}

#[derive(Debug)]
struct EndpointSet {
    from: Arc<[Instance]>,
    endpoints: Arc<[Arc<Endpoint>]>,
}

impl Upstream {
    /// A resilient client fed by `watcher`.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new(
        service: &str,
        watcher: ServiceWatcher,
        options: UpstreamOptions,
    ) -> Result<Self, reqwest::Error> {
        Self::build(service, Source::Watcher(watcher), options)
    }

    /// The naive baseline: looks `service` up in `registry` on every call.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn naive(
        service: &str,
        registry: Arc<dyn Registry>,
        options: UpstreamOptions,
    ) -> Result<Self, reqwest::Error> {
        Self::build(service, Source::Naive(registry), options)
    }

    fn build(
        service: &str,
        source: Source,
        options: UpstreamOptions,
    ) -> Result<Self, reqwest::Error> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            // Straight to the instance discovery chose: an HTTP_PROXY from the environment (Docker
            // copies the client's into containers) would put one hop in front of every instance and
            // hide which one failed from balancing and ejection.
            .no_proxy()
            .connect_timeout(options.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            // An upstream's 3xx goes back to our caller as it is: following it would send the
            // request to an address discovery did not choose, outside balancing and ejection.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let budget = TpsBudget::new(
            options
                .retry_window
                .clamp(Duration::from_secs(1), Duration::from_secs(60)),
            options.retry_min_per_sec,
            options.retry_ratio.clamp(0.0, 1000.0),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                service: service.to_owned(),
                source,
                http,
                options,
                budget,
                cursor: AtomicUsize::new(0),
                endpoints: RwLock::new(EndpointSet {
                    from: Arc::from([]),
                    endpoints: Arc::from([]),
                }),
            }),
        })
    }

    /// The service this client calls.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// Sends `request` to an instance of the service.
    ///
    /// Any HTTP answer is returned as `Ok`, including a 5xx left after retries; `Err` means no
    /// answer at all.
    ///
    /// # Errors
    ///
    /// [`UpstreamError`]: no usable instance, timeout, transport failure, oversized answer.
    #[tracing::instrument(name = "upstream", skip_all, fields(service = %self.inner.service, method = %request.method, path = %request.path))]
    pub async fn send(
        &self,
        mut request: UpstreamRequest,
    ) -> Result<UpstreamResponse, UpstreamError> {
        request.request_id = Some(request_id_or_new(request.request_id.as_deref()));
        match &self.inner.source {
            Source::Watcher(watcher) => {
                let endpoints = self.sync_endpoints(&watcher.snapshot().instances);
                self.send_resilient(&request, &endpoints).await
            }
            Source::Naive(registry) => self.send_naive(registry.as_ref(), &request).await,
        }
    }

    /// Counters and states for `/discovery`.
    pub fn status(&self) -> UpstreamStatus {
        let (index, age_ms, stale, error) = match &self.inner.source {
            Source::Watcher(watcher) => {
                let snapshot = watcher.snapshot();
                self.sync_endpoints(&snapshot.instances);
                (
                    snapshot.index,
                    snapshot.age().map(|a| a.as_millis() as u64),
                    snapshot.is_stale(),
                    snapshot.error.clone(),
                )
            }
            Source::Naive(_) => (0, None, false, None),
        };
        let now = Instant::now();
        let endpoints = self.current_endpoints();
        let instances = endpoints
            .iter()
            .map(|e| {
                let stats = e.stats(now);
                let ejected = e.availability(now) != Availability::Usable;
                InstanceStatus {
                    id: e.instance.id.clone(),
                    address: e.instance.authority(),
                    state: if ejected { "ejected" } else { "healthy" },
                    in_flight: stats.in_flight,
                    successes: stats.successes,
                    failures: stats.failures,
                    ejected_for_ms: stats
                        .ejected_for
                        .filter(|d| !d.is_zero())
                        .map(|d| d.as_millis() as u64),
                }
            })
            .collect();
        UpstreamStatus {
            index,
            age_ms,
            stale,
            error,
            strategy: match self.inner.options.strategy {
                Strategy::Resilient => "resilient",
                Strategy::Naive => "naive",
            },
            instances,
        }
    }

    fn current_endpoints(&self) -> Arc<[Arc<Endpoint>]> {
        self.inner
            .endpoints
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .endpoints
            .clone()
    }

    /// Endpoints for `instances`, reusing existing ones (and their history) by ID and address.
    fn sync_endpoints(&self, instances: &Arc<[Instance]>) -> Arc<[Arc<Endpoint>]> {
        {
            let set = self
                .inner
                .endpoints
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if Arc::ptr_eq(&set.from, instances) || set.from[..] == instances[..] {
                return set.endpoints.clone();
            }
        }
        let mut set = self
            .inner
            .endpoints
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let endpoints: Arc<[Arc<Endpoint>]> = instances
            .iter()
            .map(|instance| {
                set.endpoints
                    .iter()
                    .find(|e| e.instance == *instance)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Endpoint::new(instance.clone())))
            })
            .collect();
        set.from = instances.clone();
        set.endpoints = endpoints.clone();
        endpoints
    }

    async fn send_resilient(
        &self,
        request: &UpstreamRequest,
        endpoints: &[Arc<Endpoint>],
    ) -> Result<UpstreamResponse, UpstreamError> {
        let options = &self.inner.options;
        if endpoints.is_empty() {
            return Err(UpstreamError::NoInstance {
                service: self.inner.service.clone(),
            });
        }
        let deadline = Instant::now() + options.deadline;
        self.inner.budget.deposit();
        let mut tried: Vec<&Instance> = Vec::new();
        let mut last: Option<Result<UpstreamResponse, UpstreamError>> = None;

        for attempt in 1..=options.max_attempts.max(1) {
            let now = Instant::now();
            let remaining = deadline.saturating_duration_since(now);
            if remaining.is_zero() {
                break;
            }
            if attempt > 1 && !self.inner.budget.withdraw() {
                tracing::warn!("retry budget exhausted; not retrying");
                break;
            }
            let candidates: Vec<&Arc<Endpoint>> = endpoints
                .iter()
                .filter(|e| !tried.contains(&&e.instance))
                .filter(|e| e.availability(now) != Availability::Ejected)
                .collect();
            if candidates.is_empty() {
                break;
            }
            let endpoint =
                candidates[balance::pick(options.balance, &self.inner.cursor, &candidates)];
            tried.push(&endpoint.instance);
            let Some(in_flight) = endpoint.begin(now) else {
                continue;
            };
            let timeout = options.attempt_timeout.min(remaining);
            let result = self.attempt(endpoint, request, timeout, attempt).await;
            drop(in_flight);
            let outcome = outcome_of(&result);
            endpoint.record(outcome, Instant::now(), &options.ejection);
            let retry = match outcome {
                Outcome::Success => false,
                Outcome::Refused => true,
                Outcome::Reset | Outcome::Timeout => request.is_idempotent(),
                Outcome::ServerError => {
                    request.is_idempotent()
                        && matches!(&result, Ok(r) if matches!(r.status, 502..=504))
                }
            };
            if retry {
                tracing::debug!(instance = %endpoint.instance.authority(), ?outcome, attempt, "attempt failed; trying another instance");
            }
            last = Some(result);
            if !retry {
                break;
            }
        }
        last.unwrap_or_else(|| {
            let now = Instant::now();
            let ejected = endpoints
                .iter()
                .filter(|e| e.availability(now) == Availability::Ejected)
                .count();
            Err(UpstreamError::AllEjected {
                service: self.inner.service.clone(),
                ejected,
            })
        })
    }

    async fn send_naive(
        &self,
        registry: &dyn Registry,
        request: &UpstreamRequest,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let listed = registry
            .healthy_instances(&self.inner.service, None)
            .await
            .map_err(|source| UpstreamError::Registry {
                service: self.inner.service.clone(),
                source,
            })?;
        let instances: Arc<[Instance]> = listed.instances.into();
        let endpoints = self.sync_endpoints(&instances);
        let Some(first) = endpoints.first() else {
            return Err(UpstreamError::NoInstance {
                service: self.inner.service.clone(),
            });
        };
        // No ejection in the naive strategy: only count, for /discovery.
        let _in_flight = first.begin(Instant::now());
        let result = self
            .attempt(first, request, self.inner.options.attempt_timeout, 1)
            .await;
        first.count(outcome_of(&result) == Outcome::Success);
        result
    }

    async fn attempt(
        &self,
        endpoint: &Endpoint,
        request: &UpstreamRequest,
        timeout: Duration,
        attempts: u32,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let url = format!("http://{}{}", endpoint.instance.authority(), request.path);
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), url)
            .timeout(timeout);
        if let Some(id) = &request.request_id {
            builder = builder.header(REQUEST_ID_HEADER, id);
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body.clone());
        }
        let fail = |e: reqwest::Error| self.transport_error(&e, endpoint, attempts);
        let mut response = builder.send().await.map_err(fail)?;
        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        let limit = self.inner.options.max_body;
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if body.len() + chunk.len() > limit {
                return Err(UpstreamError::BodyTooLarge {
                    service: self.inner.service.clone(),
                    limit,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(UpstreamResponse {
            status,
            headers,
            body: body.freeze(),
            instance: endpoint.instance.clone(),
            attempts,
        })
    }

    fn transport_error(
        &self,
        e: &reqwest::Error,
        endpoint: &Endpoint,
        attempts: u32,
    ) -> UpstreamError {
        let service = self.inner.service.clone();
        if e.is_timeout() && !e.is_connect() {
            UpstreamError::Timeout { service, attempts }
        } else {
            UpstreamError::Transport {
                service,
                instance: endpoint.instance.authority(),
                attempts,
                connect: e.is_connect(),
                message: crate::registry::consul::error_chain(e),
            }
        }
    }
}

/// How an attempt's result counts for the instance's health.
fn outcome_of(result: &Result<UpstreamResponse, UpstreamError>) -> Outcome {
    match result {
        Ok(response) if response.status >= 500 => Outcome::ServerError,
        Ok(_) => Outcome::Success,
        Err(UpstreamError::Timeout { .. }) => Outcome::Timeout,
        Err(UpstreamError::Transport { connect: true, .. }) => Outcome::Refused,
        Err(UpstreamError::Transport { connect: false, .. }) => Outcome::Reset,
        // An oversized answer is the instance misbehaving.
        Err(_) => Outcome::ServerError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(connect: bool) -> Result<UpstreamResponse, UpstreamError> {
        Err(UpstreamError::Transport {
            service: "rating-service".into(),
            instance: "127.0.0.1:9".into(),
            attempts: 1,
            connect,
            message: "tcp connect error: Connection refused (os error 111)".into(),
        })
    }

    #[test]
    fn a_failed_connect_counts_as_refused_and_a_broken_connection_as_reset() {
        assert_eq!(outcome_of(&transport(true)), Outcome::Refused);
        assert_eq!(
            outcome_of(&transport(false)),
            Outcome::Reset,
            "the flag decides, not the words of the message"
        );
    }

    #[test]
    fn transport_errors_say_which_kind_they_are() {
        let text = |r: Result<UpstreamResponse, UpstreamError>| r.unwrap_err().to_string();
        assert_eq!(
            text(transport(true)),
            "cannot reach rating-service at 127.0.0.1:9 (1 attempt(s)): connect error: \
             tcp connect error: Connection refused (os error 111)"
        );
        assert!(text(transport(false)).contains("): connection error: "));
    }
}
