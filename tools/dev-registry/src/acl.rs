//! ACL emulation: Consul's token lookup order and a two-level authorizer.
//!
//! With a token configured the registry behaves like an agent whose ACL default policy
//! is `deny` and that knows exactly one token, a management token (reference §7).
//! Requests without a token act as the anonymous token, which may do nothing; a token
//! that is not the configured one is rejected with `ACL not found`.

use axum::http::HeaderMap;

use crate::duration::go_quote;

/// AccessorID of Consul's built-in anonymous token (§7.2).
pub(crate) const ANONYMOUS_ACCESSOR: &str = "00000000-0000-0000-0000-000000000002";

/// A request refused by ACLs (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Denied {
    /// The presented token does not exist.
    #[error("ACL not found")]
    TokenNotFound,
    /// The anonymous token lacks `permission` on `resource` (Consul ≥ 1.12 wording).
    #[error(
        "Permission denied: token with AccessorID '{ANONYMOUS_ACCESSOR}' lacks permission '{permission}' on {}",
        go_quote(.resource)
    )]
    Permission {
        /// `service:write`, `service:read`, `node:write`, `agent:read`, ….
        permission: &'static str,
        /// The service or node name.
        resource: String,
    },
}

/// What the request's token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authorizer {
    /// ACLs off, or the management token: everything.
    AllowAll,
    /// The anonymous token under default-deny: nothing.
    Anonymous,
}

impl Authorizer {
    /// Resolves the request token against the configured one.
    ///
    /// # Errors
    ///
    /// [`Denied::TokenNotFound`] for a token that is not the configured one.
    pub(crate) fn resolve(
        configured: Option<&str>,
        presented: Option<&str>,
    ) -> Result<Self, Denied> {
        match (configured, presented) {
            (None, _) => Ok(Self::AllowAll),
            (Some(_), None) => Ok(Self::Anonymous),
            (Some(configured), Some(presented)) if configured == presented => Ok(Self::AllowAll),
            (Some(_), Some(_)) => Err(Denied::TokenNotFound),
        }
    }

    /// Whether reads of anything are allowed (list endpoints filter on this).
    pub(crate) fn can_read(self) -> bool {
        self == Self::AllowAll
    }

    /// Requires `permission` on `resource`.
    ///
    /// # Errors
    ///
    /// [`Denied::Permission`] for the anonymous token.
    pub(crate) fn require(self, permission: &'static str, resource: &str) -> Result<(), Denied> {
        match self {
            Self::AllowAll => Ok(()),
            Self::Anonymous => Err(Denied::Permission {
                permission,
                resource: resource.to_owned(),
            }),
        }
    }
}

/// The request's token: `?token`, then `X-Consul-Token`, then `Authorization: Bearer`
/// (scheme case-insensitive), as Consul's `parseToken` does (§7.1).
pub(crate) fn presented_token(query_token: Option<&str>, headers: &HeaderMap) -> Option<String> {
    if let Some(token) = query_token.filter(|t| !t.is_empty()) {
        return Some(token.to_owned());
    }
    if let Some(token) = headers
        .get("x-consul-token")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
    {
        return Some(token.to_owned());
    }
    let authorization = headers.get("authorization")?.to_str().ok()?;
    let mut parts = authorization.split(' ');
    let scheme = parts.next()?;
    let value = parts.next()?.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn query_token_wins_over_headers_and_bearer_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("BEARER abc"));
        assert_eq!(presented_token(None, &headers).as_deref(), Some("abc"));
        headers.insert("x-consul-token", HeaderValue::from_static("hdr"));
        assert_eq!(presented_token(None, &headers).as_deref(), Some("hdr"));
        assert_eq!(presented_token(Some("q"), &headers).as_deref(), Some("q"));
        assert_eq!(presented_token(None, &HeaderMap::new()), None);
    }

    #[test]
    fn unknown_tokens_are_not_found_and_missing_ones_are_anonymous() {
        assert_eq!(
            Authorizer::resolve(Some("t"), Some("x")),
            Err(Denied::TokenNotFound)
        );
        assert_eq!(
            Authorizer::resolve(Some("t"), None),
            Ok(Authorizer::Anonymous)
        );
        assert_eq!(
            Authorizer::resolve(Some("t"), Some("t")),
            Ok(Authorizer::AllowAll)
        );
        assert_eq!(
            Authorizer::resolve(None, Some("x")),
            Ok(Authorizer::AllowAll)
        );
        assert_eq!(
            Authorizer::Anonymous
                .require("service:write", "orders")
                .unwrap_err()
                .to_string(),
            "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'service:write' on \"orders\""
        );
    }
}
