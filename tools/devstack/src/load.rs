//! A steady, bounded client load: a few workers sending requests in a loop until told to stop,
//! recording when each was sent, how long it took, and whether it failed or came back degraded.
//!
//! The end-to-end tests assert on the outcomes (no failed, no degraded request across a kill);
//! the benchmark reads latencies and rates from the same records.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// URLs, used in turn by every worker.
    pub urls: Vec<String>,
    /// Workers, each with one request in flight at a time.
    pub concurrency: usize,
    /// Pause of a worker between two requests (zero for as fast as possible).
    pub pause: Duration,
    /// Client timeout of one request; a request that takes longer counts as failed.
    pub request_timeout: Duration,
    /// Hard bound: workers stop by themselves after this long even if never told.
    pub max_duration: Duration,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx, not degraded.
    Ok,
    /// 2xx with a non-empty `degraded` list in the JSON body.
    Degraded,
    /// Any other status, or a transport error, with what happened.
    Failed(String),
}

/// One request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was sent, from the start of the load.
    pub sent_at: Duration,
    /// How long until the whole answer was read.
    pub latency: Duration,
    /// How it ended.
    pub outcome: Outcome,
    /// `X-Instance-Id` of the answering instance.
    pub instance: Option<String>,
}

/// A running load; [`Load::stop`] ends it and returns the records.
#[derive(Debug)]
pub struct Load {
    started: Instant,
    stop: CancellationToken,
    workers: JoinSet<Vec<Sample>>,
}

impl Load {
    /// Starts `plan.concurrency` workers.
    ///
    /// # Errors
    ///
    /// The plan has no URL or no worker, or the client cannot be built.
    pub fn start(plan: LoadPlan) -> anyhow::Result<Load> {
        anyhow::ensure!(
            !plan.urls.is_empty() && plan.concurrency > 0,
            "a load needs URLs and workers"
        );
        common::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(plan.request_timeout)
            .pool_max_idle_per_host(plan.concurrency)
            .build()?;
        let started = Instant::now();
        let stop = CancellationToken::new();
        let mut workers = JoinSet::new();
        for worker in 0..plan.concurrency {
            let (client, plan, stop) = (client.clone(), plan.clone(), stop.clone());
            workers.spawn(async move {
                let mut samples = Vec::new();
                let mut next = worker;
                while !stop.is_cancelled() && started.elapsed() < plan.max_duration {
                    let url = &plan.urls[next % plan.urls.len()];
                    next += 1;
                    samples.push(send(&client, url, started).await);
                    if !plan.pause.is_zero() {
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep(plan.pause) => {}
                        }
                    }
                }
                samples
            });
        }
        Ok(Load {
            started,
            stop,
            workers,
        })
    }

    /// How long it has been running.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the workers (each finishes its request in flight) and returns every record, in
    /// send order.
    pub async fn stop(mut self) -> Report {
        self.stop.cancel();
        let mut samples = Vec::new();
        while let Some(done) = self.workers.join_next().await {
            // A worker only ends by returning; a panic there is a bug in this module.
            samples.extend(done.unwrap_or_default());
        }
        samples.sort_by_key(|s| s.sent_at);
        Report { samples }
    }
}

async fn send(client: &reqwest::Client, url: &str, started: Instant) -> Sample {
    let sent = Instant::now();
    let sent_at = sent.duration_since(started);
    let (outcome, instance) = match client.get(url).send().await {
        Err(e) => (Outcome::Failed(format!("{e:#}")), None),
        Ok(response) => {
            let status = response.status();
            let instance = response
                .headers()
                .get(common::http::INSTANCE_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let outcome = match response.bytes().await {
                Err(e) => Outcome::Failed(format!("{status}, body: {e:#}")),
                Ok(_) if !status.is_success() => Outcome::Failed(status.to_string()),
                Ok(body) if is_degraded(&body) => Outcome::Degraded,
                Ok(_) => Outcome::Ok,
            };
            (outcome, instance)
        }
    };
    Sample {
        sent_at,
        latency: sent.elapsed(),
        outcome,
        instance,
    }
}

/// A JSON body whose `degraded` member is a non-empty list (the aggregator's partial answers).
fn is_degraded(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("degraded")?.as_array().map(|list| !list.is_empty()))
        .unwrap_or(false)
}

/// Every request of a load.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// In send order.
    pub samples: Vec<Sample>,
}

impl Report {
    /// Requests that failed.
    pub fn failed(&self) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Failed(_)))
            .collect()
    }

    /// Requests answered with a degraded body.
    pub fn degraded(&self) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.outcome == Outcome::Degraded)
            .collect()
    }

    /// Latency percentile (0.0–1.0) of the requests sent within `window`, if any.
    pub fn latency_percentile(
        &self,
        window: std::ops::Range<Duration>,
        percentile: f64,
    ) -> Option<Duration> {
        let mut latencies: Vec<Duration> = self
            .samples
            .iter()
            .filter(|s| window.contains(&s.sent_at))
            .map(|s| s.latency)
            .collect();
        if latencies.is_empty() {
            return None;
        }
        latencies.sort_unstable();
        // Nearest rank: the smallest latency with at least `percentile` of samples at or below.
        let rank = (percentile.clamp(0.0, 1.0) * latencies.len() as f64).ceil() as usize;
        Some(latencies[rank.saturating_sub(1).min(latencies.len() - 1)])
    }

    /// A short account of failures for an assertion message: count and the first few.
    pub fn describe_failures(&self) -> String {
        let bad: Vec<String> = self
            .samples
            .iter()
            .filter(|s| s.outcome != Outcome::Ok)
            .take(5)
            .map(|s| format!("at {:?}: {:?}", s.sent_at, s.outcome))
            .collect();
        format!(
            "{} failed, {} degraded of {}; first: {bad:?}",
            self.failed().len(),
            self.degraded().len(),
            self.samples.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_means_a_non_empty_degraded_list() {
        assert!(is_degraded(br#"{"degraded":["rating-service"]}"#));
        assert!(!is_degraded(br#"{"degraded":[]}"#));
        assert!(!is_degraded(br#"{"id":"1"}"#));
        assert!(!is_degraded(b"not json"));
    }

    fn sample(ms: u64, latency_ms: u64) -> Sample {
        Sample {
            sent_at: Duration::from_millis(ms),
            latency: Duration::from_millis(latency_ms),
            outcome: Outcome::Ok,
            instance: None,
        }
    }

    #[test]
    fn percentiles_use_nearest_rank_within_the_window() {
        let report = Report {
            samples: (1..=100)
                .map(|i| sample(i, i))
                .chain([sample(500, 9000)])
                .collect(),
        };
        let window = Duration::ZERO..Duration::from_millis(101);
        assert_eq!(
            report.latency_percentile(window.clone(), 0.5),
            Some(Duration::from_millis(50))
        );
        assert_eq!(
            report.latency_percentile(window, 0.99),
            Some(Duration::from_millis(99))
        );
        assert_eq!(
            report.latency_percentile(Duration::from_secs(1)..Duration::from_secs(2), 0.5),
            None
        );
    }
}
