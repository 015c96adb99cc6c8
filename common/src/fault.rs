//! Fault injection for demos: an added delay and a share of requests answered 503, per instance.
//!
//! Off by default. Set `FAULT_DELAY_MS` and/or `FAULT_ERROR_RATE` on one instance to watch the
//! aggregator route around it. `/health` is never faulted, so the registry keeps listing the
//! instance and the client-side ejection is what you see at work.

use std::time::Duration;

/// The faults one instance injects into its API routes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Added to every API request before it is handled.
    pub delay: Duration,
    /// Share of API requests answered 503 (0.0–1.0).
    pub error_rate: f64,
}

/// Error returned when a fault fires; services answer it as a 503 problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fault injected by FAULT_ERROR_RATE")]
pub struct InjectedFault;

impl Faults {
    /// Builds the faults, checking the rate.
    ///
    /// # Errors
    ///
    /// A rate outside 0.0–1.0 (or NaN).
    pub fn new(delay_ms: u64, error_rate: f64) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&error_rate) {
            return Err(format!(
                "FAULT_ERROR_RATE must be within 0.0 and 1.0, got {error_rate}"
            ));
        }
        Ok(Self {
            delay: Duration::from_millis(delay_ms),
            error_rate,
        })
    }

    /// Whether any fault is configured.
    pub fn is_active(&self) -> bool {
        !self.delay.is_zero() || self.error_rate > 0.0
    }

    /// Waits the configured delay, then fails with the configured probability.
    ///
    /// # Errors
    ///
    /// [`InjectedFault`] for the share of calls given by `error_rate`.
    pub async fn inject(&self) -> Result<(), InjectedFault> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.error_rate > 0.0 && fastrand::f64() < self.error_rate {
            Err(InjectedFault)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        assert!(Faults::new(0, 1.5).is_err());
        assert!(Faults::new(0, -0.1).is_err());
        assert!(Faults::new(0, f64::NAN).is_err());
        assert!(!Faults::new(0, 0.0).unwrap().is_active());
    }

    #[tokio::test(start_paused = true)]
    async fn always_and_never_do_what_they_say() {
        let always = Faults::new(0, 1.0).unwrap();
        let never = Faults::new(0, 0.0).unwrap();
        for _ in 0..100 {
            assert_eq!(always.inject().await, Err(InjectedFault));
            assert_eq!(never.inject().await, Ok(()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn delay_is_applied_before_answering() {
        let slow = Faults::new(250, 0.0).unwrap();
        let start = tokio::time::Instant::now();
        slow.inject().await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    }
}
