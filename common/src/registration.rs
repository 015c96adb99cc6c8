//! Keeps one instance registered: registers with backoff, heartbeats, re-registers when forgotten.
//!
//! A background task owns the registration for the life of the process:
//!
//! 1. register, retrying with capped, jittered exponential backoff while the registry is
//!    unreachable (the service keeps serving meanwhile);
//! 2. every keep-alive interval, prove we are still known: in TTL mode by passing the TTL check
//!    (404 `Unknown check ID` means the agent forgot us), in HTTP mode by reading our own entry
//!    (`GET /v1/agent/service/<id>`, 404 likewise) since the registry probes `/health` itself;
//! 3. when forgotten (a restarted dev agent, a reaped entry), go back to 1 at once, so the
//!    instance is back within one interval of the registry's return;
//! 4. on [`Registered::deregister`], stop the task and deregister (404 counts as done).

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::registry::{HealthCheck, Registration, Registry, RegistryError};

/// First retry delay after a failed registration. 250 ms: a registry that is still starting
/// (or restarting) usually answers within that.
pub const REGISTER_BACKOFF_MIN: Duration = Duration::from_millis(250);

/// Longest pause between registration attempts. 5 s keeps a fleet of instances from hammering a
/// recovering registry while still re-registering promptly once it is back.
pub const REGISTER_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Handle to the background task that keeps an instance registered.
#[derive(Debug)]
pub struct Registered {
    /// The registry we registered with.
    registry: Arc<dyn Registry>,
    /// Our instance ID.
    service_id: String,
    /// Whether the registry currently has us, as far as we know.
    state: watch::Receiver<bool>,
    /// Stops the background task.
    stop: CancellationToken,
    /// The background task.
    task: JoinHandle<()>,
}

/// Starts keeping `registration` registered; `keepalive` is the heartbeat / re-check period.
///
/// Use [`keepalive_interval`] to derive the period from the check.
pub fn spawn(
    registry: Arc<dyn Registry>,
    registration: Registration,
    keepalive: Duration,
) -> Registered {
    let (state_tx, state) = watch::channel(false);
    let stop = CancellationToken::new();
    let service_id = registration.id.clone();
    let task = tokio::spawn(keep_registered(
        registry.clone(),
        registration,
        keepalive,
        state_tx,
        stop.clone(),
    ));
    Registered {
        registry,
        service_id,
        state,
        stop,
        task,
    }
}

/// How often to heartbeat or re-check a registration with this check.
///
/// TTL checks: a third of the TTL, so one lost or slow heartbeat never marks us critical.
/// HTTP checks: the probe interval, which bounds how long a forgotten instance stays unlisted.
pub fn keepalive_interval(check: &HealthCheck) -> Duration {
    match check {
        HealthCheck::Ttl { ttl } => *ttl / 3,
        HealthCheck::Http { interval, .. } => *interval,
    }
}

impl Registered {
    /// Whether the registry has us, as of the last successful registration or keep-alive.
    pub fn is_registered(&self) -> bool {
        *self.state.borrow()
    }

    /// Waits until the instance is registered (returns at once if it is).
    pub async fn wait_registered(&self) {
        let mut state = self.state.clone();
        // Err only if the task ended, which happens only through `deregister`.
        let _ = state.wait_for(|registered| *registered).await;
    }

    /// Stops keeping the registration alive and removes it from the registry, bounded by `timeout`.
    ///
    /// # Errors
    ///
    /// The registry's error, or [`RegistryError::Timeout`]; either way the keep-alive task has stopped.
    pub async fn deregister(self, timeout: Duration) -> Result<(), RegistryError> {
        self.stop.cancel();
        // The task only awaits cancellable operations, so it ends promptly; a JoinError would
        // mean it panicked, which must not prevent deregistration.
        let _ = self.task.await;
        match tokio::time::timeout(timeout, self.registry.deregister(&self.service_id)).await {
            Ok(result) => result,
            Err(_) => Err(RegistryError::Timeout(timeout)),
        }
    }
}

#[tracing::instrument(name = "registration", skip_all, fields(service = %registration.name, id = %registration.id))]
async fn keep_registered(
    registry: Arc<dyn Registry>,
    registration: Registration,
    keepalive: Duration,
    state: watch::Sender<bool>,
    stop: CancellationToken,
) {
    loop {
        let registered = stop
            .run_until_cancelled(register_with_backoff(registry.as_ref(), &registration))
            .await;
        if registered.is_none() {
            return;
        }
        state.send_replace(true);
        tracing::info!(address = %registration.address, port = registration.port, "registered");

        loop {
            if stop
                .run_until_cancelled(tokio::time::sleep(keepalive))
                .await
                .is_none()
            {
                return;
            }
            let Some(still_known) = stop
                .run_until_cancelled(still_registered(registry.as_ref(), &registration))
                .await
            else {
                return;
            };
            match still_known {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("the registry forgot this instance; registering again");
                    state.send_replace(false);
                    break;
                }
                // Keep our state: one failed heartbeat is within the TTL's margin, and the
                // registry being briefly unreachable does not mean it forgot us.
                Err(e) => tracing::warn!(error = %e, "keep-alive failed; retrying next interval"),
            }
        }
    }
}

async fn register_with_backoff(registry: &dyn Registry, registration: &Registration) {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(REGISTER_BACKOFF_MIN)
        .with_max_delay(REGISTER_BACKOFF_MAX)
        .with_jitter()
        .without_max_times();
    let attempt = || async { registry.register(registration).await };
    // Unlimited attempts: `retry` only returns Ok. A refusal (400, 403) is logged as an error
    // because it needs an operator; we still retry, since an ACL may be fixed without a restart.
    let _ = attempt
        .retry(backoff)
        .notify(|e: &RegistryError, delay| {
            if e.is_transient() {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "registration failed");
            } else {
                tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "registry refused the registration");
            }
        })
        .await;
}

/// `Ok(false)` when the registry answers that it does not know us.
async fn still_registered(
    registry: &dyn Registry,
    registration: &Registration,
) -> Result<bool, RegistryError> {
    match registration.check {
        HealthCheck::Ttl { .. } => match registry
            .pass_ttl(&registration.check_id(), "heartbeat ok")
            .await
        {
            Ok(()) => Ok(true),
            Err(RegistryError::UnknownCheck { .. }) => Ok(false),
            Err(e) => Err(e),
        },
        HealthCheck::Http { .. } => registry.is_registered(&registration.id).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::MemoryRegistry;
    use std::collections::BTreeMap;

    fn registration(check: HealthCheck) -> Registration {
        Registration {
            id: "svc-1".into(),
            name: "svc".into(),
            address: "127.0.0.1".into(),
            port: 9000,
            tags: vec![],
            meta: BTreeMap::new(),
            check,
            deregister_critical_after: Duration::from_secs(60),
        }
    }

    const TTL: HealthCheck = HealthCheck::Ttl {
        ttl: Duration::from_secs(15),
    };

    #[test]
    fn ttl_heartbeat_is_a_third_of_the_ttl() {
        assert_eq!(keepalive_interval(&TTL), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn registers_once_the_registry_becomes_reachable() {
        let memory = Arc::new(MemoryRegistry::new());
        memory.set_unreachable(true);
        let reg = registration(TTL);
        let handle = spawn(memory.clone(), reg.clone(), keepalive_interval(&reg.check));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!handle.is_registered());
        memory.set_unreachable(false);
        // Backoff is capped, so the next attempt comes within REGISTER_BACKOFF_MAX (+ jitter).
        tokio::time::timeout(
            REGISTER_BACKOFF_MAX * 2 + Duration::from_secs(1),
            handle.wait_registered(),
        )
        .await
        .expect("registered after the registry came back");
        assert_eq!(memory.registration("svc-1"), Some(reg));
    }

    #[tokio::test(start_paused = true)]
    async fn ttl_heartbeats_keep_a_failing_check_passing() {
        let memory = Arc::new(MemoryRegistry::new());
        let handle = spawn(memory.clone(), registration(TTL), Duration::from_secs(5));
        handle.wait_registered().await;
        memory.set_passing("svc-1", false);
        tokio::time::sleep(Duration::from_millis(5_100)).await;
        let listed = memory.healthy_instances("svc", None).await.unwrap();
        assert_eq!(
            listed.instances.len(),
            1,
            "the heartbeat passed the check again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn re_registers_within_one_interval_after_the_registry_forgets_it() {
        for check in [
            TTL,
            HealthCheck::Http {
                url: "http://127.0.0.1:9000/health".into(),
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(2),
            },
        ] {
            let memory = Arc::new(MemoryRegistry::new());
            let handle = spawn(
                memory.clone(),
                registration(check.clone()),
                Duration::from_secs(5),
            );
            handle.wait_registered().await;
            memory.forget_all();
            tokio::time::sleep(Duration::from_millis(5_100)).await;
            assert!(
                memory.registration("svc-1").is_some(),
                "{check:?}: registered again within one keep-alive interval"
            );
            assert!(handle.is_registered());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_its_registration_through_a_registry_outage() {
        let memory = Arc::new(MemoryRegistry::new());
        let handle = spawn(memory.clone(), registration(TTL), Duration::from_secs(5));
        handle.wait_registered().await;
        memory.set_unreachable(true);
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(
            handle.is_registered(),
            "an unreachable registry has not forgotten us"
        );
        memory.set_unreachable(false);
        handle.deregister(Duration::from_secs(1)).await.unwrap();
        assert!(memory.registration("svc-1").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn deregister_stops_heartbeats_and_removes_the_entry() {
        let memory = Arc::new(MemoryRegistry::new());
        let handle = spawn(memory.clone(), registration(TTL), Duration::from_secs(5));
        handle.wait_registered().await;
        handle.deregister(Duration::from_secs(1)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(
            memory.registration("svc-1").is_none(),
            "no heartbeat re-created it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn deregister_is_bounded_when_the_registry_is_down() {
        let memory = Arc::new(MemoryRegistry::new());
        memory.set_unreachable(true);
        let handle = spawn(memory.clone(), registration(TTL), Duration::from_secs(5));
        let err = handle.deregister(Duration::from_secs(1)).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
    }
}
