//! HTTP conventions shared by all five services: header names, request IDs, path IDs,
//! `host:port` authorities, `/health` and RFC 9457 problem details. Framework-free; each
//! service maps these onto its framework.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Header naming the instance that answered; on every response.
pub const INSTANCE_ID_HEADER: &str = "x-instance-id";

/// Header carrying the request ID: kept when the caller sends a usable one, generated otherwise,
/// echoed on the response and forwarded on every upstream call.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Media type of problem details (RFC 9457).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The path of every service's health endpoint, which the registry probes every few seconds.
pub const HEALTH_PATH: &str = "/health";

/// Logs that a request to `path` was answered with `status`, inside the request's span: at INFO,
/// but at DEBUG for [`HEALTH_PATH`], whose probes (one every 5 s per instance, from the registry)
/// would otherwise be most of the log. `RUST_LOG=debug` shows them.
pub fn log_served(path: &str, status: u16) {
    if path == HEALTH_PATH {
        tracing::debug!(status, "served");
    } else {
        tracing::info!(status, "served");
    }
}

/// Longest request ID we keep from a caller; longer ones are replaced, not truncated, so two
/// different IDs never collapse into one.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The caller's request ID if it is usable (1–128 visible ASCII characters), else a new UUID.
pub fn request_id_or_new(incoming: Option<&str>) -> String {
    match incoming {
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LEN
                && id.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            id.to_owned()
        }
        // A version-4 UUID from fastrand, not the OS generator `Uuid::new_v4` asks: a request ID
        // must be unique, not unguessable, and this saves a system call on every request.
        _ => uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
            .into_uuid()
            .to_string(),
    }
}

/// Longest identifier accepted in a path. 64 covers UUIDs (36), Consul-style names and
/// catalogue keys with room to spare, and keeps storage keys small.
pub const MAX_ID_LEN: usize = 64;

/// Whether `raw` is a usable path identifier: 1–[`MAX_ID_LEN`] characters of `A-Z a-z 0-9 _ -`.
///
/// Every service checks its path IDs with this. Restricting them to URL-safe characters means
/// they never need escaping in logs, storage keys or upstream URLs, and odd path segments (`..`,
/// `%00`, unicode) are refused before any lookup.
pub fn is_valid_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= MAX_ID_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `host:port` for a URL or a `Host` header, with brackets around an IPv6 address
/// (`[::1]:8080`); an address that already has them is left alone.
///
/// Consul and our configuration give addresses bare (`::1`, `10.0.0.5`, `rating.internal`), so
/// every place that joins one with a port goes through here.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The URL at which a process reaches its own listener bound to `bound`: loopback when it
/// listens on every interface (`0.0.0.0`, `::`), the bound address otherwise.
pub fn local_url(bound: SocketAddr, path: &str) -> String {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}{path}", SocketAddr::new(ip, bound.port()))
}

/// Body of `GET /health`: `{"status":"passing","service":…,"instance":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Always `passing` when the instance answers at all (Consul's word for healthy).
    pub status: String,
    /// Service name.
    pub service: String,
    /// Instance ID.
    pub instance: String,
}

impl HealthReport {
    /// A passing report for this instance.
    pub fn passing(service: &str, instance: &str) -> Self {
        Self {
            status: "passing".to_owned(),
            service: service.to_owned(),
            instance: instance.to_owned(),
        }
    }
}

/// An RFC 9457 problem details object, served as `application/problem+json`.
///
/// `type` is `about:blank` (the status code says it all), so `title` is the status's reason
/// phrase, as the RFC asks; `detail` explains this occurrence to a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Problem type URI.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong this time, for a human.
    pub detail: String,
}

impl Problem {
    /// A problem with the given status and detail.
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        let title = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        Self {
            kind: "about:blank".to_owned(),
            title: title.to_owned(),
            status,
            detail: detail.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, detail)
    }

    /// 404: no such resource.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, detail)
    }

    /// 422: well-formed but invalid input.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(422, detail)
    }

    /// 503: this instance (or an upstream it needs) cannot serve now.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, detail)
    }

    /// The body as JSON bytes.
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and an integer cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_urls_use_loopback_for_every_interface_and_the_address_otherwise() {
        assert_eq!(
            local_url("0.0.0.0:8082".parse().unwrap(), "/health"),
            "http://127.0.0.1:8082/health"
        );
        assert_eq!(
            local_url("[::]:8082".parse().unwrap(), "/health"),
            "http://[::1]:8082/health"
        );
        assert_eq!(
            local_url("10.1.2.3:8082".parse().unwrap(), "/health"),
            "http://10.1.2.3:8082/health"
        );
    }

    #[test]
    fn new_request_ids_are_distinct_version_4_uuids() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| request_id_or_new(None)).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            let uuid = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(uuid.get_version_num(), 4, "{id}");
        }
    }

    #[test]
    fn usable_request_ids_are_kept_and_others_replaced() {
        assert_eq!(request_id_or_new(Some("abc-123")), "abc-123");
        for bad in [None, Some(""), Some("has space"), Some("é")] {
            let id = request_id_or_new(bad);
            assert_eq!(id.len(), 36, "{bad:?} replaced by a UUID");
        }
        assert_ne!(
            request_id_or_new(Some(&"x".repeat(129))),
            "x".repeat(128),
            "never truncated"
        );
    }

    #[test]
    fn ids_are_url_safe_and_bounded() {
        for good in ["1", "tt0034583", "a_b-C9", &"x".repeat(MAX_ID_LEN)] {
            assert!(is_valid_id(good), "{good:?}");
        }
        let too_long = "x".repeat(MAX_ID_LEN + 1);
        for bad in [
            "", "..", "a.b", "a/b", "é", "%00", "\0", " ", "a b", &too_long,
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn authority_brackets_ipv6_only() {
        assert_eq!(authority("10.0.0.5", 8080), "10.0.0.5:8080");
        assert_eq!(authority("rating.internal", 80), "rating.internal:80");
        assert_eq!(authority("::1", 9082), "[::1]:9082");
        assert_eq!(authority("fd00::2:1", 1), "[fd00::2:1]:1");
        assert_eq!(authority("[::1]", 9082), "[::1]:9082", "already bracketed");
    }

    #[test]
    fn problem_serialises_as_rfc_9457() {
        let json: serde_json::Value =
            serde_json::from_str(&Problem::not_found("no user 42").to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no user 42"})
        );
    }
}
