//! Check execution: one task per HTTP/TCP check, one timer task per TTL period, and the
//! reaper that removes services critical for too long (reference §8).
//!
//! Runners hold a [`Registry`] handle and report results through it. Each runner has an
//! ID; the catalog accepts results only from the runner currently attached to the check,
//! so a runner replaced by a re-registration can never overwrite newer state. Dropping a
//! [`Runner`] aborts its task, which is how removing a check stops it; shutting the
//! registry down cancels all of them at once.

pub(crate) mod probe;
pub(crate) mod threshold;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;

use self::threshold::StatusHandler;
pub(crate) use self::threshold::Thresholds;
use crate::state::Registry;
use crate::state::model::CheckRecord;

/// How a check gets its status.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    /// Pushed by the service through the TTL endpoints; critical when the TTL lapses.
    Ttl {
        /// The TTL.
        ttl: Duration,
    },
    /// An HTTP request the registry makes.
    Http(HttpProbe),
    /// A TCP connect the registry makes.
    Tcp(TcpProbe),
}

/// An HTTP check definition (§8.1).
#[derive(Debug, Clone)]
pub(crate) struct HttpProbe {
    /// URL as registered (also quoted in the output).
    pub(crate) url: String,
    /// Request method.
    pub(crate) method: String,
    /// Extra headers; `Host` sets the request host.
    pub(crate) header: BTreeMap<String, Vec<String>>,
    /// Request body.
    pub(crate) body: String,
    /// Do not follow redirects.
    pub(crate) disable_redirects: bool,
    /// Accept any TLS certificate.
    pub(crate) tls_skip_verify: bool,
    /// Per-probe timeout.
    pub(crate) timeout: Duration,
    /// Probe period (after the minimum was applied).
    pub(crate) interval: Duration,
    /// Consecutive-result thresholds.
    pub(crate) thresholds: Thresholds,
}

/// A TCP check definition (§8.2).
#[derive(Debug, Clone)]
pub(crate) struct TcpProbe {
    /// `host:port` to connect to.
    pub(crate) address: String,
    /// Connect timeout.
    pub(crate) timeout: Duration,
    /// Probe period (after the minimum was applied).
    pub(crate) interval: Duration,
    /// Consecutive-result thresholds.
    pub(crate) thresholds: Thresholds,
}

/// The task behind a check; dropping it stops the task.
#[derive(Debug)]
pub(crate) struct Runner {
    /// Identifies this runner's reports.
    id: u64,
    /// The running task.
    task: AbortHandle,
}

impl Runner {
    /// The runner's ID.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the task that drives `check`: a probe loop, or the timer of the current TTL
/// period. Returns `None` once the registry is shutting down or for an expired TTL.
pub(crate) fn start(registry: &Registry, check: &CheckRecord) -> Option<Runner> {
    if registry.closing().is_cancelled() {
        return None;
    }
    let id = registry.next_runner_id();
    let check_id = check.info.id.clone();
    let registry = registry.clone();
    let task = match &check.probe {
        Probe::Ttl { .. } => {
            let deadline = check.ttl.as_ref()?.deadline?;
            tokio::spawn(ttl_timer(registry, check_id, deadline))
        }
        Probe::Http(http) => {
            let (interval, thresholds) = (http.interval, http.thresholds);
            let prober = probe::Prober::http(http.clone(), check.output_cap);
            tokio::spawn(probe_loop(
                registry, check_id, id, prober, interval, thresholds,
            ))
        }
        Probe::Tcp(tcp) => {
            let (interval, thresholds) = (tcp.interval, tcp.thresholds);
            let prober = probe::Prober::tcp(tcp.clone());
            tokio::spawn(probe_loop(
                registry, check_id, id, prober, interval, thresholds,
            ))
        }
    };
    Some(Runner {
        id,
        task: task.abort_handle(),
    })
}

/// Probes every `interval`, starting after a random delay in `[0, interval)` so that
/// checks registered together do not probe in lockstep (§1.5).
#[tracing::instrument(name = "check", skip_all, fields(check = %check_id))]
async fn probe_loop(
    registry: Registry,
    check_id: String,
    runner: u64,
    prober: probe::Prober,
    interval: Duration,
    thresholds: Thresholds,
) {
    let closing = registry.closing().clone();
    let first = random_below(interval);
    let mut handler = StatusHandler::new(thresholds);
    let mut next = Instant::now() + first;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = closing.cancelled() => return,
        }
        let (status, output) = tokio::select! {
            result = prober.run() => result,
            () = closing.cancelled() => return,
        };
        tracing::trace!(%status, "probe result");
        if let Some((status, output)) = handler.update(status, output)
            && !registry.report(&check_id, runner, status, output)
        {
            return;
        }
        next = Instant::now() + interval;
    }
}

/// Marks a TTL check critical when `deadline` passes without a newer update.
async fn ttl_timer(registry: Registry, check_id: String, deadline: Instant) {
    tokio::select! {
        () = tokio::time::sleep_until(deadline) => registry.expire_ttl(&check_id, deadline),
        () = registry.closing().cancelled() => {}
    }
}

/// Runs the reaper every `reap_interval` until the registry shuts down (§8.4).
pub(crate) fn spawn_reaper(registry: Registry) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = registry.options().reap_interval;
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                now = ticks.tick() => { registry.reap(now); }
                () = registry.closing().cancelled() => return,
            }
        }
    })
}

/// A uniformly random duration in `[0, bound)`; zero for a zero bound.
fn random_below(bound: Duration) -> Duration {
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        Duration::ZERO
    } else {
        Duration::from_nanos(fastrand::u64(..nanos))
    }
}
