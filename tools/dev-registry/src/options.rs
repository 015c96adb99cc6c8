//! Registry configuration, built as a value (tests shorten the timings).

use std::fmt;
use std::time::Duration;

/// Floor for `DeregisterCriticalServiceAfter`: Consul's non-configurable
/// `check_deregister_interval_min` of one minute (reference §8.4).
pub const DEFAULT_DEREGISTER_FLOOR: Duration = Duration::from_secs(60);

/// How often critical services are reaped: Consul's `check_reap_interval` (§8.4).
pub const DEFAULT_REAP_INTERVAL: Duration = Duration::from_secs(30);

/// Shortest probe interval; shorter ones are raised: Consul's `checks.MinInterval` (§1.3).
pub const DEFAULT_MIN_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Blocking-query wait when the client gives none: `default_query_time` (§6.1).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5 * 60);

/// Longest blocking-query wait before jitter: `max_query_time` (§6.1).
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// Node name when none is configured.
pub const DEFAULT_NODE_NAME: &str = "dev-registry";

/// How the registry behaves. [`Default`] matches `consul agent -dev`.
#[derive(Clone, PartialEq, Eq)]
pub struct Options {
    /// Name of the single node (`Node` in every response).
    pub node_name: String,
    /// When set, ACLs are emulated with default policy `deny` and this is the only
    /// (management) token; when `None`, ACLs are off as in dev mode (reference §7).
    pub token: Option<String>,
    /// Smallest `DeregisterCriticalServiceAfter`; smaller values are raised.
    pub deregister_floor: Duration,
    /// Period of the critical-service reaper.
    pub reap_interval: Duration,
    /// Smallest HTTP/TCP check interval; smaller values are raised.
    pub min_check_interval: Duration,
    /// Blocking-query wait when `?wait` is absent.
    pub default_wait: Duration,
    /// Largest blocking-query wait (jitter of up to a sixteenth comes on top).
    pub max_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            node_name: DEFAULT_NODE_NAME.to_owned(),
            token: None,
            deregister_floor: DEFAULT_DEREGISTER_FLOOR,
            reap_interval: DEFAULT_REAP_INTERVAL,
            min_check_interval: DEFAULT_MIN_CHECK_INTERVAL,
            default_wait: DEFAULT_WAIT,
            max_wait: DEFAULT_MAX_WAIT,
        }
    }
}

impl fmt::Debug for Options {
    /// Like a derived `Debug`, with the token redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("node_name", &self.node_name)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("deregister_floor", &self.deregister_floor)
            .field("reap_interval", &self.reap_interval)
            .field("min_check_interval", &self.min_check_interval)
            .field("default_wait", &self.default_wait)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token() {
        let options = Options {
            token: Some("s3cret".to_owned()),
            ..Options::default()
        };
        let text = format!("{options:?}");
        assert!(!text.contains("s3cret"));
        assert!(text.contains("redacted"));
    }
}
