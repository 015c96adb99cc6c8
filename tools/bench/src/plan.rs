//! How long each scenario runs and how often it repeats, for `--quick` and for a full run.

use std::time::Duration;

use serde::Serialize;

/// Workers of the throughput comparison (the c=32).
pub const THROUGHPUT_CONCURRENCY: usize = 32;

/// Workers of the failover scenarios (the c=16).
pub const FAILOVER_CONCURRENCY: usize = 16;

/// Pause of each failover worker between two requests. 10 ms keeps the load steady (at most
/// 1 600 requests per second at c=16) below what two cores serve, so that a p99 after a kill
/// shows the failover and not a saturated CPU queue.
pub const FAILOVER_PAUSE: Duration = Duration::from_millis(10);

/// Load before a kill, SIGTERM or registry outage, so the kill lands on a warm, steady stack.
pub const BEFORE_FAULT: Duration = Duration::from_secs(1);

/// Load kept up after a kill: longer than the registry's check interval (5 s), so that the naive
/// strategy is measured until the registry itself drops the dead instance.
pub const AFTER_KILL: Duration = Duration::from_secs(7);

/// The window after a kill whose p99 is reported (the "2 s after the kill").
pub const P99_WINDOW: Duration = Duration::from_secs(2);

/// Load kept up after a SIGTERMed instance has exited, or after everything re-registered.
pub const AFTER_RECOVERY: Duration = Duration::from_secs(2);

/// How long the registry stays down (the 10 s).
pub const OUTAGE: Duration = Duration::from_secs(10);

/// Pause between two timed scale-ups. Each spawn and each stop changes the instance list, and
/// the aggregator's watcher takes at most a burst of 2 changes and then 1 per second (its rate
/// limit); 2 s refills the burst, so every repeat times a scale-up on its own rather than the
/// rate limit of the previous repeat's churn.
pub const BETWEEN_SCALE_UPS: Duration = Duration::from_secs(2);

/// Time given to the stack after start before idle memory is read.
pub const SETTLE: Duration = Duration::from_secs(2);

/// Durations and repeats of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// `quick` or `full`.
    pub mode: &'static str,
    /// Throughput and latency pairs (direct, then aggregated, in alternating order).
    pub repeats: u32,
    /// Unrecorded start of each throughput or latency window.
    #[serde(serialize_with = "secs")]
    pub warmup: Duration,
    /// Recorded part of each throughput window.
    #[serde(serialize_with = "secs")]
    pub throughput_window: Duration,
    /// Recorded part of each concurrency-1 latency window.
    #[serde(serialize_with = "secs")]
    pub latency_window: Duration,
    /// Steady window over which registry calls are counted (and the idle baseline).
    #[serde(serialize_with = "secs")]
    pub registry_window: Duration,
    /// Load on user and product through the aggregator, for their memory under load.
    #[serde(serialize_with = "secs")]
    pub side_load_window: Duration,
    /// kill -9 runs per strategy. At least 3: how long the naive strategy keeps sending to a
    /// dead instance depends on where in the registry's 5 s check interval the kill falls, so
    /// one run's degraded count is anywhere from 0 to five seconds' worth of requests.
    pub kill_repeats: u32,
    /// New instances timed to their first request.
    pub scale_repeats: u32,
}

impl Plan {
    /// The plan for `--quick` (or a full run), with `repeats` overriding the pair count.
    pub fn new(quick: bool, repeats: Option<u32>) -> Plan {
        let plan = if quick {
            Plan {
                mode: "quick",
                repeats: 3,
                warmup: Duration::from_millis(500),
                throughput_window: Duration::from_secs(3),
                latency_window: Duration::from_secs(2),
                registry_window: Duration::from_secs(3),
                side_load_window: Duration::from_secs(2),
                kill_repeats: 3,
                scale_repeats: 3,
            }
        } else {
            Plan {
                mode: "full",
                repeats: 7,
                warmup: Duration::from_secs(1),
                throughput_window: Duration::from_secs(5),
                latency_window: Duration::from_secs(4),
                registry_window: Duration::from_secs(5),
                side_load_window: Duration::from_secs(3),
                kill_repeats: 5,
                scale_repeats: 5,
            }
        };
        Plan {
            repeats: repeats.unwrap_or(plan.repeats),
            ..plan
        }
    }

    /// A lower bound of the run time: the load windows and fixed waits, without process starts
    /// and stops (a few seconds more in a release build).
    pub fn minimum_duration(&self) -> Duration {
        let pairs = 2 * self.repeats;
        let throughput = (self.warmup + self.throughput_window) * pairs;
        let latency = (self.warmup + self.latency_window) * pairs;
        // Idle baseline, ours and naive, each with a warm-up.
        let registry = self.registry_window * 3 + self.warmup * 2;
        let kills = (BEFORE_FAULT + AFTER_KILL) * (2 * self.kill_repeats);
        let sigterm = BEFORE_FAULT + AFTER_RECOVERY;
        let outage = BEFORE_FAULT + OUTAGE + AFTER_RECOVERY;
        let scale = BEFORE_FAULT + BETWEEN_SCALE_UPS * self.scale_repeats.saturating_sub(1);
        SETTLE
            + throughput
            + latency
            + registry
            + self.side_load_window
            + kills
            + sigterm
            + scale
            + outage
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_leaves_room_for_starts_within_three_minutes() {
        let quick = Plan::new(true, None);
        assert_eq!(quick.mode, "quick");
        // Arithmetic on the plan, not a measurement: half a minute of slack for process starts,
        // replacements, re-registrations and stops.
        assert!(
            quick.minimum_duration() <= Duration::from_secs(150),
            "{:?}",
            quick.minimum_duration()
        );
    }

    #[test]
    fn a_full_run_repeats_more() {
        let quick = Plan::new(true, None);
        let full = Plan::new(false, None);
        assert_eq!(full.mode, "full");
        assert!(full.repeats > quick.repeats);
        assert!(full.kill_repeats > quick.kill_repeats);
        assert!(full.throughput_window > quick.throughput_window);
    }

    #[test]
    fn repeats_can_be_overridden() {
        assert_eq!(Plan::new(true, Some(9)).repeats, 9);
        assert_eq!(Plan::new(false, Some(1)).repeats, 1);
    }
}
