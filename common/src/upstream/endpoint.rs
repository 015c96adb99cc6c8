//! One upstream instance as the client sees it: request counters and outlier-ejection state.
//!
//! Ejection follows Envoy's outlier detection and Linkerd's failure accrual:
//! - a refused or reset connection ejects at once (the process is gone or going);
//! - [`EjectionPolicy::consecutive_failures`] failures in a row (timeouts, 5xx) eject too;
//! - the penalty doubles with each repeat offence, from [`EjectionPolicy::base`] up to
//!   [`EjectionPolicy::max`], and the count is forgiven after a quiet spell;
//! - when the penalty is over, the instance is on probation: one request at a time is let
//!   through as a probe; success re-admits it, failure ejects it again for longer.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::registry::Instance;

/// When and for how long to eject a misbehaving instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectionPolicy {
    /// Failures in a row that eject. 5, Envoy's `consecutive_5xx` default: enough to ride out a
    /// blip, few enough that a broken instance costs only a handful of retried requests.
    pub consecutive_failures: u32,
    /// Penalty of a first offence. 1 s: a hiccup costs little capacity, while a dead instance is
    /// gone from the registry (HTTP check, 5 s) before it has been probed many times.
    pub base: Duration,
    /// Longest penalty. 30 s caps how long a recovered instance sits idle.
    pub max: Duration,
}

impl Default for EjectionPolicy {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

/// How an attempt on an instance went, as far as the instance's health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Any answer that is not a server error (2xx, 3xx, 4xx).
    Success,
    /// Nothing listens: connection refused (or reset before the request was sent).
    Refused,
    /// The connection broke after the request may have been sent.
    Reset,
    /// No answer within the attempt timeout.
    Timeout,
    /// A 5xx answer.
    ServerError,
}

/// Whether an instance may take a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// In rotation.
    Usable,
    /// Penalty over; may take one probe request.
    Probation,
    /// Serving a penalty (or its probe is in flight).
    Ejected,
}

/// An upstream instance with its counters and ejection state.
#[derive(Debug)]
pub struct Endpoint {
    /// Where it is.
    pub instance: Instance,
    /// Requests in flight now.
    in_flight: AtomicU64,
    /// Attempts that succeeded.
    successes: AtomicU64,
    /// Attempts that failed.
    failures: AtomicU64,
    /// Ejection state.
    health: Mutex<Health>,
}

#[derive(Debug, Default)]
struct Health {
    consecutive_failures: u32,
    /// Ejections so far, for the growing penalty.
    ejections: u32,
    ejected_until: Option<Instant>,
    last_ejected: Option<Instant>,
    /// A probe request is in flight.
    probing: bool,
}

/// Counters and state of an endpoint at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStats {
    /// Requests in flight.
    pub in_flight: u64,
    /// Successful attempts.
    pub successes: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Time left of the current penalty, when ejected.
    pub ejected_for: Option<Duration>,
}

/// Marks a request in flight; decrements the count when dropped.
#[derive(Debug)]
pub struct InFlight<'a> {
    endpoint: &'a Endpoint,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Endpoint {
    /// A fresh endpoint: usable, no history.
    pub fn new(instance: Instance) -> Self {
        Self {
            instance,
            in_flight: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            health: Mutex::new(Health::default()),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        // Health holds plain values, so a panic elsewhere cannot leave it inconsistent.
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether it may take a request at `now`.
    pub fn availability(&self, now: Instant) -> Availability {
        let health = self.health();
        match health.ejected_until {
            None => Availability::Usable,
            Some(until) if now < until || health.probing => Availability::Ejected,
            Some(_) => Availability::Probation,
        }
    }

    /// Starts an attempt. On probation, the attempt is the probe: no other request is let
    /// through until it ends. Returns None if the endpoint cannot take the request after all
    /// (another probe got there first).
    pub fn begin(&self, now: Instant) -> Option<InFlight<'_>> {
        {
            let mut health = self.health();
            match health.ejected_until {
                None => {}
                Some(until) if now < until || health.probing => return None,
                Some(_) => health.probing = true,
            }
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(InFlight { endpoint: self })
    }

    /// Counts an attempt without touching the ejection state (the naive strategy's view).
    pub fn count(&self, success: bool) {
        let counter = if success {
            &self.successes
        } else {
            &self.failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how an attempt went, ejecting or re-admitting as the policy says.
    pub fn record(&self, outcome: Outcome, now: Instant, policy: &EjectionPolicy) {
        self.count(outcome == Outcome::Success);
        let mut health = self.health();
        if outcome == Outcome::Success {
            health.consecutive_failures = 0;
            if health.ejected_until.is_some_and(|until| now >= until) {
                health.ejected_until = None;
                health.probing = false;
                tracing::info!(instance = %self.instance.authority(), "probe succeeded; instance re-admitted");
            }
            return;
        }
        let serving_penalty = health.ejected_until.is_some_and(|until| now < until);
        if serving_penalty {
            // Late failures of requests sent before the ejection are not new offences.
            return;
        }
        health.consecutive_failures += 1;
        let eject = matches!(outcome, Outcome::Refused | Outcome::Reset)
            || health.consecutive_failures >= policy.consecutive_failures
            || health.probing;
        if eject {
            // Forgive old offences once the instance has behaved for twice the longest penalty.
            if health
                .last_ejected
                .is_some_and(|at| now.duration_since(at) > policy.max * 2)
            {
                health.ejections = 0;
            }
            health.ejections = health.ejections.saturating_add(1);
            let penalty = penalty(policy, health.ejections);
            health.ejected_until = Some(now + penalty);
            health.last_ejected = Some(now);
            health.consecutive_failures = 0;
            health.probing = false;
            tracing::warn!(
                instance = %self.instance.authority(),
                ?outcome,
                penalty_ms = penalty.as_millis() as u64,
                ejections = health.ejections,
                "instance ejected"
            );
        }
    }

    /// Counters and state at `now`.
    pub fn stats(&self, now: Instant) -> EndpointStats {
        let health = self.health();
        EndpointStats {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            successes: self.successes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            ejected_for: health
                .ejected_until
                .map(|until| until.saturating_duration_since(now)),
        }
    }
}

/// `base * 2^(n-1)`, capped at `max`.
fn penalty(policy: &EjectionPolicy, ejections: u32) -> Duration {
    let factor = 1_u32 << ejections.saturating_sub(1).min(16);
    policy.base.saturating_mul(factor).min(policy.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint::new(Instance {
            id: "a".into(),
            address: "127.0.0.1".into(),
            port: 1,
        })
    }

    const POLICY: EjectionPolicy = EjectionPolicy {
        consecutive_failures: 5,
        base: Duration::from_secs(1),
        max: Duration::from_secs(30),
    };

    #[tokio::test(start_paused = true)]
    async fn a_refused_connection_ejects_at_once() {
        let e = endpoint();
        e.record(Outcome::Refused, Instant::now(), &POLICY);
        assert_eq!(e.availability(Instant::now()), Availability::Ejected);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_of_failures_ejects_but_a_success_breaks_the_run() {
        let e = endpoint();
        let now = Instant::now();
        for _ in 0..4 {
            e.record(Outcome::Timeout, now, &POLICY);
        }
        e.record(Outcome::Success, now, &POLICY);
        for _ in 0..4 {
            e.record(Outcome::ServerError, now, &POLICY);
        }
        assert_eq!(e.availability(now), Availability::Usable);
        e.record(Outcome::ServerError, now, &POLICY);
        assert_eq!(e.availability(now), Availability::Ejected);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_penalty_one_probe_at_a_time_decides() {
        let e = endpoint();
        e.record(Outcome::Refused, Instant::now(), &POLICY);
        assert!(
            e.begin(Instant::now()).is_none(),
            "no traffic while ejected"
        );
        tokio::time::advance(POLICY.base).await;
        assert_eq!(e.availability(Instant::now()), Availability::Probation);
        let probe = e.begin(Instant::now()).expect("probe allowed");
        assert!(
            e.begin(Instant::now()).is_none(),
            "only one probe at a time"
        );
        e.record(Outcome::Success, Instant::now(), &POLICY);
        drop(probe);
        assert_eq!(e.availability(Instant::now()), Availability::Usable);
        assert_eq!(e.stats(Instant::now()).in_flight, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn repeat_offences_double_the_penalty_up_to_the_cap() {
        let e = endpoint();
        let mut penalties = Vec::new();
        for _ in 0..7 {
            e.record(Outcome::Refused, Instant::now(), &POLICY);
            let left = e.stats(Instant::now()).ejected_for.unwrap();
            penalties.push(left.as_secs());
            tokio::time::advance(left).await;
            let _probe = e.begin(Instant::now()).unwrap();
        }
        // Each failed probe is a repeat offence.
        assert_eq!(penalties, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[tokio::test(start_paused = true)]
    async fn old_offences_are_forgiven_after_a_quiet_spell() {
        let e = endpoint();
        e.record(Outcome::Refused, Instant::now(), &POLICY);
        tokio::time::advance(Duration::from_secs(1)).await;
        e.record(Outcome::Success, Instant::now(), &POLICY);
        tokio::time::advance(POLICY.max * 3).await;
        e.record(Outcome::Refused, Instant::now(), &POLICY);
        assert_eq!(e.stats(Instant::now()).ejected_for, Some(POLICY.base));
    }

    #[tokio::test(start_paused = true)]
    async fn late_failures_during_a_penalty_do_not_extend_it() {
        let e = endpoint();
        e.record(Outcome::Refused, Instant::now(), &POLICY);
        for _ in 0..10 {
            e.record(Outcome::Timeout, Instant::now(), &POLICY);
        }
        assert_eq!(e.stats(Instant::now()).ejected_for, Some(POLICY.base));
        assert_eq!(e.stats(Instant::now()).failures, 11);
    }
}
