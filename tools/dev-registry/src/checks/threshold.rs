//! Consecutive-result thresholds (`SuccessBeforePassing`, `FailuresBeforeWarning`,
//! `FailuresBeforeCritical`), as Consul's `StatusHandler` applies them (reference §8.3).

use crate::state::model::Status;

/// The three thresholds of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Thresholds {
    /// Consecutive successes before passing (or warning) is reported.
    pub(crate) success_before_passing: u32,
    /// Consecutive failures before warning is reported.
    pub(crate) failures_before_warning: u32,
    /// Consecutive failures before critical is reported.
    pub(crate) failures_before_critical: u32,
}

impl Thresholds {
    /// Builds thresholds from the registration values; an unset `FailuresBeforeWarning`
    /// defaults to `FailuresBeforeCritical` (§1.3).
    pub(crate) fn new(
        success_before_passing: i64,
        failures_before_warning: i64,
        failures_before_critical: i64,
    ) -> Self {
        let count = |value: i64| u32::try_from(value.max(0)).unwrap_or(u32::MAX);
        let failures_before_critical = count(failures_before_critical);
        let failures_before_warning = match count(failures_before_warning) {
            0 => failures_before_critical,
            n => n,
        };
        Self {
            success_before_passing: count(success_before_passing),
            failures_before_warning,
            failures_before_critical,
        }
    }
}

/// Turns raw probe results into reported statuses.
#[derive(Debug)]
pub(crate) struct StatusHandler {
    /// The thresholds.
    thresholds: Thresholds,
    /// Consecutive passing/warning results.
    successes: u32,
    /// Consecutive critical results.
    failures: u32,
}

impl StatusHandler {
    /// Counters start at their thresholds, so the first result takes effect at once.
    pub(crate) fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds,
            successes: thresholds.success_before_passing,
            failures: thresholds.failures_before_critical,
        }
    }

    /// Feeds one probe result; returns what to report, or `None` while a threshold
    /// has not been reached (the previous status and output then stay).
    pub(crate) fn update(&mut self, status: Status, output: String) -> Option<(Status, String)> {
        if status == Status::Critical {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.thresholds.failures_before_critical {
                Some((Status::Critical, output))
            } else if self.failures >= self.thresholds.failures_before_warning {
                Some((Status::Warning, output))
            } else {
                None
            }
        } else {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            (self.successes >= self.thresholds.success_before_passing).then_some((status, output))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(thresholds: Thresholds, results: &[Status]) -> Vec<Option<Status>> {
        let mut handler = StatusHandler::new(thresholds);
        results
            .iter()
            .map(|s| handler.update(*s, String::new()).map(|(s, _)| s))
            .collect()
    }

    #[test]
    fn without_thresholds_every_result_is_reported() {
        use Status::*;
        assert_eq!(
            statuses(Thresholds::new(0, 0, 0), &[Passing, Critical, Warning]),
            [Some(Passing), Some(Critical), Some(Warning)]
        );
    }

    #[test]
    fn first_result_takes_effect_immediately_then_thresholds_apply() {
        use Status::*;
        let t = Thresholds::new(2, 0, 3);
        assert_eq!(
            statuses(
                t,
                &[Critical, Passing, Passing, Critical, Critical, Critical]
            ),
            [
                Some(Critical),
                None,
                Some(Passing),
                None,
                None,
                Some(Critical)
            ]
        );
    }

    #[test]
    fn failures_between_warning_and_critical_thresholds_report_warning() {
        use Status::*;
        let t = Thresholds::new(0, 1, 3);
        assert_eq!(
            statuses(t, &[Passing, Critical, Critical, Critical]),
            [Some(Passing), Some(Warning), Some(Warning), Some(Critical)]
        );
    }
}
