//! One HTTP or TCP probe and the Consul-style output it produces (reference §8.1–§8.2).

use std::error::Error as _;
use std::io;
use std::sync::Once;

use reqwest::header::{ACCEPT, CONNECTION, HOST, HeaderName, HeaderValue, USER_AGENT};

use super::{HttpProbe, TcpProbe};
use crate::duration::go_quote;
use crate::state::model::Status;

/// `User-Agent` of HTTP checks unless the check sets one (Consul's `UserAgent`).
const CHECK_USER_AGENT: &str = "Consul Health Check";

/// `Accept` of HTTP checks unless the check sets one (§1.3 `Header`).
const CHECK_ACCEPT: &str = "text/plain, text/*, */*";

/// Most redirects an HTTP check follows, Go's `http.Client` default.
const MAX_REDIRECTS: usize = 10;

/// A ready-to-run probe.
#[derive(Debug)]
pub(crate) enum Prober {
    /// An HTTP check with its own client (redirect and TLS settings are per check).
    Http {
        /// The definition.
        probe: HttpProbe,
        /// The client, or why it could not be built.
        client: Result<reqwest::Client, String>,
        /// Bytes of the response body kept (the last ones).
        output_cap: usize,
    },
    /// A TCP check.
    Tcp(TcpProbe),
}

impl Prober {
    /// Prepares an HTTP probe.
    pub(crate) fn http(probe: HttpProbe, output_cap: usize) -> Self {
        let client = http_client(&probe).map_err(|e| e.to_string());
        Self::Http {
            probe,
            client,
            output_cap,
        }
    }

    /// Prepares a TCP probe.
    pub(crate) fn tcp(probe: TcpProbe) -> Self {
        Self::Tcp(probe)
    }

    /// Runs the probe once.
    pub(crate) async fn run(&self) -> (Status, String) {
        match self {
            Self::Http {
                probe,
                client,
                output_cap,
            } => match client {
                Ok(client) => run_http(client, probe, *output_cap).await,
                Err(e) => (Status::Critical, e.clone()),
            },
            Self::Tcp(probe) => run_tcp(probe).await,
        }
    }
}

/// Builds the client of one HTTP check: keep-alives off, no proxy (checks target local
/// services), the check's timeout, redirect and TLS settings.
fn http_client(probe: &HttpProbe) -> reqwest::Result<reqwest::Client> {
    static CRYPTO: Once = Once::new();
    CRYPTO.call_once(|| {
        // Fails only when another provider is installed already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let redirects = if probe.disable_redirects {
        reqwest::redirect::Policy::none()
    } else {
        reqwest::redirect::Policy::limited(MAX_REDIRECTS)
    };
    reqwest::Client::builder()
        .timeout(probe.timeout)
        .pool_max_idle_per_host(0)
        .no_proxy()
        .redirect(redirects)
        .tls_danger_accept_invalid_certs(probe.tls_skip_verify)
        .build()
}

/// Runs one HTTP check: 2xx passing, 429 warning, anything else critical.
async fn run_http(
    client: &reqwest::Client,
    probe: &HttpProbe,
    output_cap: usize,
) -> (Status, String) {
    let method = match reqwest::Method::from_bytes(probe.method.as_bytes()) {
        Ok(method) => method,
        Err(e) => {
            return (
                Status::Critical,
                format!("net/http: invalid method {}: {e}", go_quote(&probe.method)),
            );
        }
    };
    let mut request = client.request(method.clone(), &probe.url);
    let mut has_agent = false;
    let mut has_accept = false;
    for (name, values) in &probe.header {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        has_agent |= name == USER_AGENT;
        has_accept |= name == ACCEPT;
        for value in values {
            if let Ok(value) = HeaderValue::from_str(value) {
                request = if name == HOST {
                    request.header(HOST, value)
                } else {
                    request.header(name.clone(), value)
                };
            }
        }
    }
    if !has_agent {
        request = request.header(USER_AGENT, CHECK_USER_AGENT);
    }
    if !has_accept {
        request = request.header(ACCEPT, CHECK_ACCEPT);
    }
    request = request.header(CONNECTION, "close");
    if !probe.body.is_empty() {
        request = request.body(probe.body.clone());
    }
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            let text = format!(
                "{} {}: {}",
                go_method(&method),
                go_quote(&probe.url),
                describe(&e, &probe.url)
            );
            return (Status::Critical, text);
        }
    };
    // Keep the *last* `output_cap` bytes, as Consul's circular buffer does.
    let mut body: Vec<u8> = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > output_cap {
                    body.drain(..body.len() - output_cap);
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "check error while reading body");
                break;
            }
        }
    }
    let code = response.status();
    let status = match code.as_u16() {
        200..=299 => Status::Passing,
        429 => Status::Warning,
        _ => Status::Critical,
    };
    let status_line = match code.canonical_reason() {
        Some(reason) => format!("{} {reason}", code.as_u16()),
        None => format!("{} status code {}", code.as_u16(), code.as_u16()),
    };
    let output = format!(
        "HTTP {method} {}: {status_line} Output: {}",
        probe.url,
        String::from_utf8_lossy(&body)
    );
    (status, output)
}

/// Runs one TCP check: a successful connect is passing.
async fn run_tcp(probe: &TcpProbe) -> (Status, String) {
    match tokio::time::timeout(
        probe.timeout,
        tokio::net::TcpStream::connect(&probe.address),
    )
    .await
    {
        Ok(Ok(stream)) => {
            drop(stream);
            (
                Status::Passing,
                format!("TCP connect {}: Success", probe.address),
            )
        }
        Ok(Err(e)) => (
            Status::Critical,
            format!("dial tcp {}: {}", probe.address, io_text(&e)),
        ),
        Err(_) => (
            Status::Critical,
            format!("dial tcp {}: i/o timeout", probe.address),
        ),
    }
}

/// Go prints the method of a failed request as `Get`, `Post`, ….
fn go_method(method: &reqwest::Method) -> String {
    let lower = method.as_str().to_ascii_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Describes a failed request in the words Go would mostly use.
fn describe(error: &reqwest::Error, url: &str) -> String {
    if error.is_timeout() {
        return "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            .to_owned();
    }
    let mut innermost = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            if error.is_connect() {
                let host_port = url::Url::parse(url)
                    .ok()
                    .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
                    .unwrap_or_else(|| url.to_owned());
                return format!("dial tcp {host_port}: {}", io_text(io));
            }
            return io_text(io);
        }
        innermost = cause.to_string();
        source = cause.source();
    }
    innermost
}

/// The Go wording of common socket errors.
fn io_text(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connect: connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "read: connection reset by peer".to_owned(),
        io::ErrorKind::TimedOut => "i/o timeout".to_owned(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_capitalised_like_go() {
        assert_eq!(go_method(&reqwest::Method::GET), "Get");
        assert_eq!(go_method(&reqwest::Method::POST), "Post");
    }
}
