//! [`Registry`] over Consul's agent and health HTTP API, with reqwest.
//!
//! Follows Consul as it behaves, not as tutorials simplify it: write endpoints answer 200 with an
//! empty body (never decoded), errors are plain text (kept verbatim in [`RegistryError::Status`]),
//! 404 on deregister means "already gone", 404 `Unknown check ID` (and the pre-1.7 500
//! `does not have associated TTL`) on a TTL update means "the agent forgot us", and every call has
//! a timeout, blocking queries one longer than `wait + wait/16` (Consul's maximum jitter).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder, Response};
use url::Url;

use super::wire::{AgentService, ServiceDefinition, ServiceEntry};
use super::{BlockingWait, HealthyInstances, Registration, Registry, RegistryError};
use crate::config::ConsulConfig;

/// Header carrying the ACL token (Consul's preferred way; `?token=` is deprecated).
const TOKEN_HEADER: &str = "X-Consul-Token";

/// Header carrying a blocking-capable endpoint's index.
const INDEX_HEADER: &str = "X-Consul-Index";

/// How much of an error body we keep: Consul's reasons are one line; a proxy's HTML page is not.
const MAX_ERROR_BODY: usize = 2048;

/// The Consul HTTP API client behind [`Registry`].
#[derive(Debug, Clone)]
pub struct ConsulRegistry {
    /// Shared connection pool.
    http: reqwest::Client,
    /// Base URL ending in `/` (may carry a path prefix).
    base: Url,
    /// ACL token, if any.
    token: Option<String>,
    /// Timeout of non-blocking calls; blocking ones add their wait to it.
    request_timeout: Duration,
}

impl ConsulRegistry {
    /// A client for the agent at `config.address`.
    ///
    /// # Errors
    ///
    /// Fails only if the TLS backend cannot be initialised.
    pub fn new(config: &ConsulConfig) -> Result<Self, RegistryError> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!(
                "service-discovery-common/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| RegistryError::Unreachable(error_chain(&e)))?;
        Ok(Self {
            http,
            base: config.address.url().clone(),
            token: config.token.clone(),
            request_timeout: config.request_timeout,
        })
    }

    /// The agent's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `base` + `v1/<segments>`, each segment percent-encoded (IDs may contain `/`).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url, timeout: Duration) -> RequestBuilder {
        let req = self.http.request(method, url).timeout(timeout);
        match &self.token {
            Some(token) => req.header(TOKEN_HEADER, token),
            None => req,
        }
    }

    /// Sends `req`; returns the response when it is a success, else a typed error.
    async fn send(
        &self,
        req: RequestBuilder,
        timeout: Duration,
    ) -> Result<Response, RegistryError> {
        let response = req.send().await.map_err(|e| transport_error(&e, timeout))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(status_error(response, timeout).await)
        }
    }
}

#[async_trait]
impl Registry for ConsulRegistry {
    #[tracing::instrument(skip_all, fields(service = %registration.name, id = %registration.id))]
    async fn register(&self, registration: &Registration) -> Result<(), RegistryError> {
        let mut url = self.url(&["agent", "service", "register"]);
        // Drop checks an older definition of this ID had: a stale critical check would keep the
        // instance out of `?passing` forever.
        url.query_pairs_mut()
            .append_pair("replace-existing-checks", "true");
        let req = self
            .request(Method::PUT, url, self.request_timeout)
            .json(&ServiceDefinition::new(registration));
        self.send(req, self.request_timeout).await.map(drop)
    }

    #[tracing::instrument(skip(self))]
    async fn deregister(&self, service_id: &str) -> Result<(), RegistryError> {
        let url = self.url(&["agent", "service", "deregister", service_id]);
        let req = self.request(Method::PUT, url, self.request_timeout);
        match self.send(req, self.request_timeout).await {
            Ok(_) => Ok(()),
            // `Unknown service ID`: already gone (reaped, or the agent restarted).
            Err(RegistryError::Status { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(skip(self, note))]
    async fn pass_ttl(&self, check_id: &str, note: &str) -> Result<(), RegistryError> {
        let mut url = self.url(&["agent", "check", "pass", check_id]);
        url.query_pairs_mut().append_pair("note", note);
        let req = self.request(Method::PUT, url, self.request_timeout);
        match self.send(req, self.request_timeout).await {
            Ok(_) => Ok(()),
            Err(RegistryError::Status { status, body })
                if status == 404
                    || (status == 500 && body.contains("does not have associated TTL")) =>
            {
                Err(RegistryError::UnknownCheck {
                    check_id: check_id.to_owned(),
                    body,
                })
            }
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn is_registered(&self, service_id: &str) -> Result<bool, RegistryError> {
        let url = self.url(&["agent", "service", service_id]);
        let req = self.request(Method::GET, url, self.request_timeout);
        match self.send(req, self.request_timeout).await {
            Ok(response) => {
                let service: AgentService = decode(response).await?;
                Ok(service.id == service_id)
            }
            Err(RegistryError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn healthy_instances(
        &self,
        service: &str,
        wait: Option<BlockingWait>,
    ) -> Result<HealthyInstances, RegistryError> {
        if service.is_empty() {
            return Err(RegistryError::Status {
                status: 400,
                body: "Missing service name".to_owned(),
            });
        }
        let mut url = self.url(&["health", "service", service]);
        let mut timeout = self.request_timeout;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("passing", "1");
            if let Some(BlockingWait { index, wait }) = wait {
                // index 0 would not block at all and turn the caller into a busy loop.
                query.append_pair("index", &index.max(1).to_string());
                // Milliseconds, rounded up, as the Go client sends them ("0" means the default 5m).
                let ms = wait.as_nanos().div_ceil(1_000_000).max(1);
                query.append_pair("wait", &format!("{ms}ms"));
                // The agent may hold us for wait + up to wait/16 of jitter.
                timeout += wait + wait / 16;
            }
        }
        let req = self.request(Method::GET, url, timeout);
        let response = self.send(req, timeout).await?;
        let index = response
            .headers()
            .get(INDEX_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| RegistryError::Decode(format!("missing or invalid {INDEX_HEADER}")))?;
        let entries: Vec<ServiceEntry> = decode(response).await?;
        let mut instances: Vec<_> = entries
            .into_iter()
            .filter(ServiceEntry::is_passing)
            .filter_map(ServiceEntry::into_instance)
            .collect();
        instances.sort();
        instances.dedup_by(|a, b| a.id == b.id);
        Ok(HealthyInstances { index, instances })
    }
}

async fn decode<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, RegistryError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| RegistryError::Unreachable(error_chain(&e)))?;
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Decode(e.to_string()))
}

fn transport_error(e: &reqwest::Error, timeout: Duration) -> RegistryError {
    if e.is_timeout() {
        RegistryError::Timeout(timeout)
    } else {
        RegistryError::Unreachable(error_chain(e))
    }
}

async fn status_error(response: Response, timeout: Duration) -> RegistryError {
    let status = response.status();
    let body = match response.text().await {
        Ok(text) => truncate(text.trim_end(), MAX_ERROR_BODY),
        Err(e) => return transport_error(&e, timeout),
    };
    let body = if body.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_owned()
    } else {
        body
    };
    RegistryError::Status {
        status: status.as_u16(),
        body,
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The error and its causes on one line: reqwest's own message ("error sending request") hides
/// the part that helps ("connection refused").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
