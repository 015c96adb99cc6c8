//! Query-string parameters with Go's `url.Values` semantics, and the shared read
//! parameters: blocking (`index`, `wait`), `passing`, `tag`, `dc` (reference §4.1, §6.1).

use std::time::Duration;

use super::ApiError;
use crate::duration;
use crate::state::{Catalog, DATACENTER, Registry, blocking_wait};

/// Decoded query parameters, in order (`+` is a space, as in Go's `ParseQuery`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    /// Key/value pairs; a bare `?key` has an empty value.
    pairs: Vec<(String, String)>,
}

/// The blocking-query parameters of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blocking {
    /// `?index`; 0 means "do not block".
    pub(crate) index: u64,
    /// `?wait`, when given and positive.
    pub(crate) wait: Option<Duration>,
}

impl Blocking {
    /// Holds a blocking read (`?index` above 0) until `index_of` the catalog passes that index
    /// or the clamped, jittered wait runs out, as Consul does; returns at once otherwise.
    /// `name` narrows the wake-ups to one service's changes.
    pub(crate) async fn wait_past(
        self,
        registry: &Registry,
        name: Option<&str>,
        index_of: impl Fn(&Catalog) -> u64,
    ) {
        if self.index == 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + blocking_wait(self.wait, registry.options());
        registry
            .wait_until(name, deadline, |catalog| index_of(catalog) > self.index)
            .await;
    }
}

impl Query {
    /// Parses a raw query string.
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|raw| {
                url::form_urlencoded::parse(raw.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Self { pairs }
    }

    /// The first value of `key` (Go's `Values.Get`).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is present at all, even without a value.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// Every value of `key`.
    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `?wait` then `?index`, validated in Consul's order (`parseWait`).
    ///
    /// # Errors
    ///
    /// 400 `Invalid wait time` / `Invalid index`.
    pub(crate) fn blocking(&self) -> Result<Blocking, ApiError> {
        let wait = match self.get("wait").filter(|w| !w.is_empty()) {
            None => None,
            Some(text) => {
                let nanos = duration::parse_nanos(text)
                    .map_err(|_| ApiError::bad_request("Invalid wait time"))?;
                u64::try_from(nanos)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Duration::from_nanos)
            }
        };
        let index = match self.get("index").filter(|i| !i.is_empty()) {
            None => 0,
            Some(text) if text.bytes().all(|b| b.is_ascii_digit()) => text
                .parse()
                .map_err(|_| ApiError::bad_request("Invalid index"))?,
            Some(_) => return Err(ApiError::bad_request("Invalid index")),
        };
        Ok(Blocking { index, wait })
    }

    /// `?passing` with Go's `ParseBool` semantics; a bare `?passing` is true.
    ///
    /// # Errors
    ///
    /// 400 `Invalid value for ?passing`.
    pub(crate) fn passing(&self) -> Result<bool, ApiError> {
        if !self.has("passing") {
            return Ok(false);
        }
        match self.get("passing").unwrap_or_default() {
            "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(ApiError::bad_request("Invalid value for ?passing")),
        }
    }

    /// Refuses `?filter`: go-bexpr expressions are not emulated, and silently ignoring
    /// one would return entries the client asked to exclude.
    ///
    /// # Errors
    ///
    /// 400, worded like Consul's evaluator errors.
    pub(crate) fn reject_filter(&self) -> Result<(), ApiError> {
        match self.get("filter") {
            Some(filter) if !filter.is_empty() => Err(ApiError::bad_request(
                "Failed to create boolean expression evaluator: dev-registry does not implement ?filter expressions",
            )),
            _ => Ok(()),
        }
    }

    /// Whether the node's metadata has every `?node-meta=key:value` pair (§4.1).
    pub(crate) fn node_meta_matches(&self, meta: &[(&str, &str)]) -> bool {
        self.all("node-meta").iter().all(|pair| {
            let (key, value) = pair.split_once(':').unwrap_or((pair, ""));
            meta.iter().any(|(k, v)| *k == key && *v == value)
        })
    }

    /// Refuses a `?dc` other than this registry's datacenter, as Consul does for a
    /// datacenter it cannot reach.
    ///
    /// # Errors
    ///
    /// 500 `No path to datacenter`.
    pub(crate) fn check_datacenter(&self) -> Result<(), ApiError> {
        match self.get("dc") {
            Some(dc) if !dc.is_empty() && dc != DATACENTER => {
                Err(ApiError::internal("No path to datacenter"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_passing_is_true_and_bad_values_are_rejected() {
        assert_eq!(Query::parse(Some("passing")).passing(), Ok(true));
        assert_eq!(Query::parse(Some("passing=1")).passing(), Ok(true));
        assert_eq!(Query::parse(Some("passing=false")).passing(), Ok(false));
        assert_eq!(Query::parse(None).passing(), Ok(false));
        assert_eq!(
            Query::parse(Some("passing=yes")).passing(),
            Err(ApiError::bad_request("Invalid value for ?passing"))
        );
    }

    #[test]
    fn wait_is_validated_before_index() {
        assert_eq!(
            Query::parse(Some("index=abc&wait=30")).blocking(),
            Err(ApiError::bad_request("Invalid wait time"))
        );
        assert_eq!(
            Query::parse(Some("index=abc")).blocking(),
            Err(ApiError::bad_request("Invalid index"))
        );
        assert_eq!(
            Query::parse(Some("index=7&wait=55000ms")).blocking(),
            Ok(Blocking {
                index: 7,
                wait: Some(Duration::from_secs(55))
            })
        );
    }

    #[test]
    fn node_meta_pairs_must_all_match() {
        let meta = [("consul-network-segment", ""), ("consul-version", "1.20.2")];
        assert!(Query::parse(Some("node-meta=consul-version:1.20.2")).node_meta_matches(&meta));
        assert!(!Query::parse(Some("node-meta=rack:a")).node_meta_matches(&meta));
        assert!(Query::parse(None).node_meta_matches(&meta));
    }

    #[test]
    fn repeated_keys_keep_every_value() {
        let query = Query::parse(Some("tag=a&tag=B&x"));
        assert_eq!(query.all("tag"), ["a", "B"]);
        assert!(query.has("x"));
        assert_eq!(query.get("x"), Some(""));
    }
}
