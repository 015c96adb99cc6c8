//! Keeps the healthy instances of one service fresh with Consul blocking queries.
//!
//! One background task per watched service long-polls `/v1/health/service/<name>?passing` and
//! publishes each new list through a `tokio::sync::watch` channel. The request path only reads
//! the latest [`Snapshot`] (an `Arc` clone): zero registry calls per request.
//!
//! The loop follows Consul's blocking-query rules (reference §6.2, §11.5):
//! - the index sent is always ≥ 1 (0 would not block and spin);
//! - when the index goes backwards (a restarted agent, a snapshot restore) it starts over from 0;
//! - after any error it starts over without an index, after a jittered, capped backoff;
//! - the loop is rate-limited by a token bucket (burst 2), not a fixed sleep, so a burst of
//!   changes gets through at once while constant churn degrades to one query per period;
//! - the HTTP timeout is longer than `wait + wait/16` (done by [`crate::registry::ConsulRegistry`]).
//!
//! When the registry is unreachable, the last known list keeps serving; [`Snapshot::age`] and
//! [`Snapshot::error`] say how old it is and why. Right after the registry lost its state
//! (error or index reset), an *empty* answer does not wipe a non-empty list for
//! [`WatchOptions::empty_list_grace`]: a restarted agent is empty until the instances, which are
//! still alive, register again within one keep-alive interval. Dropping every instance in that
//! window would fail every request for nothing; keeping them costs at worst a few ejections.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::registry::{BlockingWait, HealthyInstances, Instance, Registry};

/// Tuning of a [`ServiceWatcher`]. The defaults suit production; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchOptions {
    /// How long the registry may hold a blocking query. 60 s: short enough that a stale index
    /// (which Consul holds for the whole wait) recovers within a minute, long enough that an idle
    /// watcher costs one request a minute.
    pub wait: Duration,
    /// Queries allowed back to back before the rate limit applies (Consul's docs suggest 2).
    pub burst: u32,
    /// One more query is allowed per period. 1 s: a change reaches us within milliseconds
    /// unless the service has already changed twice in the last second.
    pub period: Duration,
    /// First pause after a failed query. 250 ms.
    pub backoff_min: Duration,
    /// Longest pause between failed queries. 5 s: recovers promptly once the registry is back.
    pub backoff_max: Duration,
    /// After an error or index reset, how long an empty answer is not trusted. 15 s: three
    /// keep-alive intervals for live instances to register with a restarted agent.
    pub empty_list_grace: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(60),
            burst: 2,
            period: Duration::from_secs(1),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(5),
            empty_list_grace: Duration::from_secs(15),
        }
    }
}

/// What a watcher knows about a service at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The service watched.
    pub service: String,
    /// Healthy instances, sorted by ID.
    pub instances: Arc<[Instance]>,
    /// Registry index of the answer the list came from (0 before the first answer).
    pub index: u64,
    /// When the registry last answered (None before the first answer).
    pub refreshed_at: Option<Instant>,
    /// The last error, when the latest query failed.
    pub error: Option<String>,
    /// Whether an empty answer was held back after a registry reset (see the module docs).
    pub held_back: bool,
}

impl Snapshot {
    fn empty(service: &str) -> Self {
        Self {
            service: service.to_owned(),
            instances: Arc::from([]),
            index: 0,
            refreshed_at: None,
            error: None,
            held_back: false,
        }
    }

    /// Time since the registry last answered, or None if it never has.
    pub fn age(&self) -> Option<Duration> {
        self.refreshed_at.map(|at| at.elapsed())
    }

    /// Whether the list may be out of date: the last query failed, an answer was held back, or
    /// there has been no answer yet.
    pub fn is_stale(&self) -> bool {
        self.error.is_some() || self.held_back || self.refreshed_at.is_none()
    }
}

/// A live view of one service's healthy instances. Cloning is cheap; the background task stops
/// when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct ServiceWatcher {
    /// Latest snapshot.
    rx: watch::Receiver<Arc<Snapshot>>,
    /// Cancels the task when the last clone goes.
    _stop: Arc<DropGuard>,
}

/// Starts watching `service`.
pub fn watch(registry: Arc<dyn Registry>, service: &str, options: WatchOptions) -> ServiceWatcher {
    let (tx, rx) = watch::channel(Arc::new(Snapshot::empty(service)));
    let stop = CancellationToken::new();
    tokio::spawn(watch_loop(
        registry,
        service.to_owned(),
        options,
        tx,
        stop.clone(),
    ));
    ServiceWatcher {
        rx,
        _stop: Arc::new(stop.drop_guard()),
    }
}

impl ServiceWatcher {
    /// The latest snapshot. Never touches the registry.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.rx.borrow().clone()
    }

    /// A receiver that is notified when the list, index or error changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.rx.clone()
    }

    /// Waits until a snapshot satisfies `pred`, and returns it.
    pub async fn wait_for(&self, mut pred: impl FnMut(&Snapshot) -> bool) -> Arc<Snapshot> {
        let mut rx = self.rx.clone();
        match rx.wait_for(|s| pred(s)).await {
            Ok(snapshot) => snapshot.clone(),
            // The sender lives as long as the task, which lives as long as `self`.
            Err(_) => self.snapshot(),
        }
    }
}

#[tracing::instrument(name = "watch", skip_all, fields(service = %service))]
async fn watch_loop(
    registry: Arc<dyn Registry>,
    service: String,
    options: WatchOptions,
    tx: watch::Sender<Arc<Snapshot>>,
    stop: CancellationToken,
) {
    let mut limit = RateLimit::new(options.burst, options.period);
    let mut backoff = error_backoff(&options);
    // 0 means "next query does not block".
    let mut index = 0_u64;
    // Until when an empty answer is not trusted (set after an error or an index reset).
    let mut distrust_empty_until: Option<Instant> = None;

    loop {
        if stop.run_until_cancelled(limit.acquire()).await.is_none() {
            return;
        }
        let wait = (index > 0).then(|| {
            // While holding back an empty answer, ask again when the grace period ends.
            let wait = match distrust_empty_until {
                Some(until) if tx.borrow().held_back => until
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
                _ => options.wait,
            };
            BlockingWait {
                index,
                wait: wait.min(options.wait),
            }
        });
        let Some(result) = stop
            .run_until_cancelled(registry.healthy_instances(&service, wait))
            .await
        else {
            return;
        };
        match result {
            Ok(answer) => {
                backoff = error_backoff(&options);
                if answer.index < index {
                    tracing::info!(
                        previous = index,
                        index = answer.index,
                        "registry index went backwards (restarted?); starting over"
                    );
                    index = 0;
                    distrust_empty_until = Some(Instant::now() + options.empty_list_grace);
                } else {
                    index = answer.index.max(1);
                }
                let now = Instant::now();
                if distrust_empty_until.is_some_and(|until| now >= until) {
                    distrust_empty_until = None;
                }
                if !answer.instances.is_empty() {
                    distrust_empty_until = None;
                }
                publish(&tx, answer, distrust_empty_until.is_some(), now);
            }
            Err(e) => {
                let delay = backoff.next().unwrap_or(options.backoff_max);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "discovery query failed; keeping the last known list");
                index = 0;
                distrust_empty_until = Some(Instant::now() + options.empty_list_grace);
                let message = e.to_string();
                tx.send_if_modified(|snapshot| {
                    if snapshot.error.as_deref() == Some(message.as_str()) {
                        return false;
                    }
                    let mut next = Snapshot::clone(snapshot);
                    next.error = Some(message);
                    *snapshot = Arc::new(next);
                    true
                });
                if stop
                    .run_until_cancelled(tokio::time::sleep(delay))
                    .await
                    .is_none()
                {
                    return;
                }
            }
        }
    }
}

/// Publishes an answer; readers are notified only when something they can see changed.
fn publish(
    tx: &watch::Sender<Arc<Snapshot>>,
    answer: HealthyInstances,
    distrust_empty: bool,
    now: Instant,
) {
    tx.send_if_modified(|snapshot| {
        let hold_back =
            distrust_empty && answer.instances.is_empty() && !snapshot.instances.is_empty();
        // Same list, same Arc: readers can tell "unchanged" by pointer.
        let instances: Arc<[Instance]> =
            if hold_back || answer.instances[..] == snapshot.instances[..] {
                snapshot.instances.clone()
            } else {
                answer.instances.into()
            };
        if hold_back && !snapshot.held_back {
            tracing::warn!(
                kept = instances.len(),
                "registry answered an empty list right after a reset; keeping the last list for now"
            );
        }
        let next = Snapshot {
            service: snapshot.service.clone(),
            instances,
            index: answer.index,
            refreshed_at: Some(now),
            error: None,
            held_back: hold_back,
        };
        let visible_change = next.instances != snapshot.instances
            || next.index != snapshot.index
            || next.error != snapshot.error
            || next.held_back != snapshot.held_back
            || snapshot.refreshed_at.is_none();
        if visible_change && next.instances != snapshot.instances {
            tracing::info!(
                instances = ?next.instances.iter().map(Instance::authority).collect::<Vec<_>>(),
                index = next.index,
                "instances changed"
            );
        }
        *snapshot = Arc::new(next);
        visible_change
    });
}

fn error_backoff(options: &WatchOptions) -> impl Iterator<Item = Duration> + use<> {
    ExponentialBuilder::default()
        .with_min_delay(options.backoff_min)
        .with_max_delay(options.backoff_max)
        .with_jitter()
        .without_max_times()
        .build()
}

/// A token bucket over time: up to `burst` acquisitions back to back, then one per `period`.
#[derive(Debug)]
struct RateLimit {
    period: Duration,
    burst: u32,
    /// Accumulated allowance, capped at `period * burst`.
    credit: Duration,
    last: Instant,
}

impl RateLimit {
    fn new(burst: u32, period: Duration) -> Self {
        let burst = burst.max(1);
        Self {
            period,
            burst,
            credit: period * burst,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.credit = (self.credit + (now - self.last)).min(self.period * self.burst);
        self.last = now;
    }

    async fn acquire(&mut self) {
        self.refill();
        if self.credit < self.period {
            tokio::time::sleep(self.period - self.credit).await;
            self.refill();
        }
        self.credit = self.credit.saturating_sub(self.period);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{HealthCheck, MemoryRegistry, Registration, RegistryError};
    use async_trait::async_trait;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn registration(id: &str, port: u16) -> Registration {
        Registration {
            id: id.into(),
            name: "rating".into(),
            address: "127.0.0.1".into(),
            port,
            tags: vec![],
            meta: BTreeMap::new(),
            check: HealthCheck::Ttl {
                ttl: Duration::from_secs(15),
            },
            deregister_critical_after: Duration::from_secs(60),
        }
    }

    /// Counts the queries that reach the registry.
    #[derive(Debug)]
    struct Counting {
        inner: Arc<MemoryRegistry>,
        queries: AtomicUsize,
    }

    #[async_trait]
    impl Registry for Counting {
        async fn register(&self, r: &Registration) -> Result<(), RegistryError> {
            self.inner.register(r).await
        }
        async fn deregister(&self, id: &str) -> Result<(), RegistryError> {
            self.inner.deregister(id).await
        }
        async fn pass_ttl(&self, id: &str, note: &str) -> Result<(), RegistryError> {
            self.inner.pass_ttl(id, note).await
        }
        async fn is_registered(&self, id: &str) -> Result<bool, RegistryError> {
            self.inner.is_registered(id).await
        }
        async fn healthy_instances(
            &self,
            service: &str,
            wait: Option<BlockingWait>,
        ) -> Result<HealthyInstances, RegistryError> {
            self.queries.fetch_add(1, Ordering::SeqCst);
            self.inner.healthy_instances(service, wait).await
        }
    }

    fn ids(snapshot: &Snapshot) -> Vec<String> {
        snapshot.instances.iter().map(|i| i.id.clone()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn learns_of_a_new_instance_through_the_blocking_query_not_a_poll() {
        let memory = Arc::new(MemoryRegistry::new());
        let counting = Arc::new(Counting {
            inner: memory.clone(),
            queries: AtomicUsize::new(0),
        });
        memory.register(&registration("r1", 1)).await.unwrap();
        let watcher = watch(counting.clone(), "rating", WatchOptions::default());
        watcher.wait_for(|s| s.instances.len() == 1).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = counting.queries.load(Ordering::SeqCst);
        assert!(
            before <= 2,
            "idle watcher is parked in a blocking query, not polling ({before})"
        );

        memory.register(&registration("r2", 2)).await.unwrap();
        let snapshot = tokio::time::timeout(
            Duration::from_millis(100),
            watcher.wait_for(|s| s.instances.len() == 2),
        )
        .await
        .expect("a 60 s blocking query woke on the change");
        assert_eq!(ids(&snapshot), ["r1", "r2"]);
        assert!(!snapshot.is_stale());
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_the_last_list_while_the_registry_is_unreachable() {
        let memory = Arc::new(MemoryRegistry::new());
        memory.register(&registration("r1", 1)).await.unwrap();
        let watcher = watch(memory.clone(), "rating", WatchOptions::default());
        watcher.wait_for(|s| s.instances.len() == 1).await;

        memory.set_unreachable(true);
        // Wake the parked query so that it fails; a real agent's death resets the connection.
        memory.forget_all();
        let snapshot = watcher.wait_for(|s| s.error.is_some()).await;
        assert_eq!(ids(&snapshot), ["r1"], "last known list kept");
        assert!(snapshot.is_stale());
        tokio::time::sleep(Duration::from_secs(30)).await;
        let snapshot = watcher.snapshot();
        assert!(
            snapshot.age().unwrap() >= Duration::from_secs(30),
            "age shows how old it is"
        );
        assert_eq!(ids(&snapshot), ["r1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn starts_over_when_the_index_goes_backwards() {
        let memory = Arc::new(MemoryRegistry::new());
        for n in 0..10 {
            memory.register(&registration("old", n)).await.unwrap();
        }
        let watcher = watch(memory.clone(), "rating", WatchOptions::default());
        let first = watcher.wait_for(|s| s.index > 0).await;

        memory.forget_all();
        memory.register(&registration("new", 7)).await.unwrap();
        let snapshot = watcher.wait_for(|s| ids(s) == ["new"]).await;
        assert!(
            snapshot.index < first.index,
            "took the restarted agent's lower index"
        );

        memory.register(&registration("newer", 8)).await.unwrap();
        let snapshot = tokio::time::timeout(
            Duration::from_secs(2),
            watcher.wait_for(|s| s.instances.len() == 2),
        )
        .await
        .expect("blocking again on the new index, not stuck on the stale one");
        assert_eq!(ids(&snapshot), ["new", "newer"]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_answer_right_after_a_reset_does_not_wipe_the_list() {
        let memory = Arc::new(MemoryRegistry::new());
        memory.register(&registration("r1", 1)).await.unwrap();
        memory.register(&registration("r1b", 2)).await.unwrap();
        let options = WatchOptions::default();
        let watcher = watch(memory.clone(), "rating", options);
        watcher.wait_for(|s| s.instances.len() == 2).await;

        memory.forget_all();
        let held = watcher.wait_for(|s| s.held_back).await;
        assert_eq!(ids(&held), ["r1", "r1b"]);
        assert!(held.is_stale());

        memory.register(&registration("r1", 1)).await.unwrap();
        let back = watcher.wait_for(|s| !s.held_back).await;
        assert_eq!(ids(&back), ["r1"], "a real answer replaces the held list");
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_list_is_accepted_once_the_grace_period_is_over() {
        let memory = Arc::new(MemoryRegistry::new());
        memory.register(&registration("r1", 1)).await.unwrap();
        let options = WatchOptions::default();
        let watcher = watch(memory.clone(), "rating", options);
        watcher.wait_for(|s| s.instances.len() == 1).await;
        memory.forget_all();
        watcher.wait_for(|s| s.held_back).await;
        let emptied = tokio::time::timeout(
            options.empty_list_grace + Duration::from_secs(5),
            watcher.wait_for(|s| s.instances.is_empty()),
        )
        .await
        .expect("the grace period ends");
        assert!(!emptied.held_back);
    }

    #[tokio::test(start_paused = true)]
    async fn a_normal_deregistration_empties_the_list_at_once() {
        let memory = Arc::new(MemoryRegistry::new());
        memory.register(&registration("r1", 1)).await.unwrap();
        let watcher = watch(memory.clone(), "rating", WatchOptions::default());
        watcher.wait_for(|s| s.instances.len() == 1).await;
        memory.deregister("r1").await.unwrap();
        let snapshot = tokio::time::timeout(
            Duration::from_millis(100),
            watcher.wait_for(|s| s.instances.is_empty()),
        )
        .await
        .expect("no grace without a reset");
        assert!(!snapshot.held_back);
    }

    #[tokio::test(start_paused = true)]
    async fn constant_churn_is_rate_limited() {
        let memory = Arc::new(MemoryRegistry::new());
        let counting = Arc::new(Counting {
            inner: memory.clone(),
            queries: AtomicUsize::new(0),
        });
        let options = WatchOptions::default();
        let _watcher = watch(counting.clone(), "rating", options);
        // 10 s of a change every 10 ms.
        for n in 0..1000_u16 {
            memory.register(&registration("churn", n)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let queries = counting.queries.load(Ordering::SeqCst);
        // burst + one per period over 10 s, plus the query in flight.
        assert!(queries <= 2 + 10 + 1, "{queries} queries in 10 s of churn");
        assert!(queries >= 5, "still following the changes ({queries})");
    }

    #[tokio::test(start_paused = true)]
    async fn stops_querying_when_the_last_watcher_is_dropped() {
        let memory = Arc::new(MemoryRegistry::new());
        let counting = Arc::new(Counting {
            inner: memory.clone(),
            queries: AtomicUsize::new(0),
        });
        let watcher = watch(counting.clone(), "rating", WatchOptions::default());
        let clone = watcher.clone();
        drop(watcher);
        clone.wait_for(|s| s.refreshed_at.is_some()).await;
        drop(clone);
        tokio::task::yield_now().await;
        let before = counting.queries.load(Ordering::SeqCst);
        for n in 0..5 {
            memory.register(&registration("x", n)).await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert_eq!(counting.queries.load(Ordering::SeqCst), before);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_allows_a_burst_then_one_per_period() {
        let mut limit = RateLimit::new(2, Duration::from_secs(1));
        let start = Instant::now();
        limit.acquire().await;
        limit.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO, "burst of two is free");
        limit.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(10)).await;
        let again = Instant::now();
        limit.acquire().await;
        limit.acquire().await;
        assert_eq!(
            again.elapsed(),
            Duration::ZERO,
            "credit is capped at the burst"
        );
        limit.acquire().await;
        assert_eq!(again.elapsed(), Duration::from_secs(1));
    }
}
