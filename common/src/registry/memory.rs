//! [`Registry`] kept in process memory, for unit tests and single-process use.
//!
//! It follows the same contract as Consul where callers can tell: names are case-insensitive,
//! deregistering an unknown ID succeeds, TTL updates of an unknown check fail with
//! [`RegistryError::UnknownCheck`], and blocking queries return once the service's own index moves
//! past the one given (or the wait ends). Test hooks simulate what Consul does to its clients:
//! failing checks, an agent restart that forgets everything, and an unreachable agent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{BlockingWait, HealthyInstances, Instance, Registration, Registry, RegistryError};

/// An in-memory registry.
#[derive(Debug)]
pub struct MemoryRegistry {
    /// Registered instances and indexes.
    state: Mutex<State>,
    /// Carries the global index; blocking queries wait on it.
    changed: watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    /// Global index, bumped on every change; starts at 1 like a fresh agent.
    index: u64,
    /// Per lower-cased service name, the index of its last change (kept after the last instance
    /// leaves, so that leaving wakes blocking queries).
    modified: HashMap<String, u64>,
    /// Instances by ID.
    entries: BTreeMap<String, Entry>,
    /// When set, every call fails as if the agent were down.
    unreachable: bool,
}

#[derive(Debug)]
struct Entry {
    registration: Registration,
    passing: bool,
}

impl Default for MemoryRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                index: 1,
                modified: HashMap::new(),
                entries: BTreeMap::new(),
                unreachable: false,
            }),
            changed: watch::Sender::new(1),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters for a test double, so recover from poisoning.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    /// Marks `service`'s name as changed and wakes blocking queries.
    fn touch(&self, state: &mut State, name: &str) {
        state.index += 1;
        state.modified.insert(name.to_lowercase(), state.index);
        self.changed.send_replace(state.index);
    }

    fn check_reachable(state: &State) -> Result<(), RegistryError> {
        if state.unreachable {
            Err(RegistryError::Unreachable(
                "connection refused (simulated)".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// Test hook: sets an instance's check status, as a failing probe or TTL expiry would.
    /// Returns false for an unknown ID.
    pub fn set_passing(&self, service_id: &str, passing: bool) -> bool {
        self.with_state(|state| {
            let Some(entry) = state.entries.get_mut(service_id) else {
                return false;
            };
            if entry.passing != passing {
                entry.passing = passing;
                let name = entry.registration.name.clone();
                self.touch(state, &name);
            }
            true
        })
    }

    /// Test hook: forgets everything and starts the index over, like a restarted dev agent.
    pub fn forget_all(&self) {
        self.with_state(|state| {
            state.entries.clear();
            state.modified.clear();
            state.index = 1;
            self.changed.send_replace(1);
        });
    }

    /// Test hook: makes every call fail with [`RegistryError::Unreachable`] (or succeed again).
    pub fn set_unreachable(&self, unreachable: bool) {
        self.with_state(|state| state.unreachable = unreachable);
    }

    /// The current registration of an instance, if any.
    pub fn registration(&self, service_id: &str) -> Option<Registration> {
        self.with_state(|state| {
            state
                .entries
                .get(service_id)
                .map(|e| e.registration.clone())
        })
    }

    fn snapshot(&self, service: &str) -> Result<HealthyInstances, RegistryError> {
        self.with_state(|state| {
            Self::check_reachable(state)?;
            let key = service.to_lowercase();
            let mut instances: Vec<Instance> = state
                .entries
                .values()
                .filter(|e| e.passing && e.registration.name.to_lowercase() == key)
                .map(|e| Instance {
                    id: e.registration.id.clone(),
                    address: e.registration.address.clone(),
                    port: e.registration.port,
                })
                .collect();
            instances.sort();
            let index = state.modified.get(&key).copied().unwrap_or(1);
            Ok(HealthyInstances { index, instances })
        })
    }
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn register(&self, registration: &Registration) -> Result<(), RegistryError> {
        self.with_state(|state| {
            Self::check_reachable(state)?;
            state.entries.insert(
                registration.id.clone(),
                Entry {
                    registration: registration.clone(),
                    passing: true,
                },
            );
            self.touch(state, &registration.name);
            Ok(())
        })
    }

    async fn deregister(&self, service_id: &str) -> Result<(), RegistryError> {
        self.with_state(|state| {
            Self::check_reachable(state)?;
            if let Some(entry) = state.entries.remove(service_id) {
                self.touch(state, &entry.registration.name);
            }
            Ok(())
        })
    }

    async fn pass_ttl(&self, check_id: &str, _note: &str) -> Result<(), RegistryError> {
        self.with_state(|state| {
            Self::check_reachable(state)?;
            let found = state
                .entries
                .values_mut()
                .find(|e| e.registration.check_id() == check_id);
            match found {
                Some(entry) if entry.passing => Ok(()),
                Some(entry) => {
                    entry.passing = true;
                    let name = entry.registration.name.clone();
                    self.touch(state, &name);
                    Ok(())
                }
                None => Err(RegistryError::UnknownCheck {
                    check_id: check_id.to_owned(),
                    body: format!(
                        "Unknown check ID {check_id:?}. Ensure that the check ID is passed, not the check name."
                    ),
                }),
            }
        })
    }

    async fn is_registered(&self, service_id: &str) -> Result<bool, RegistryError> {
        self.with_state(|state| {
            Self::check_reachable(state)?;
            Ok(state.entries.contains_key(service_id))
        })
    }

    async fn healthy_instances(
        &self,
        service: &str,
        wait: Option<BlockingWait>,
    ) -> Result<HealthyInstances, RegistryError> {
        let Some(BlockingWait { index, wait }) = wait else {
            return self.snapshot(service);
        };
        let mut changes = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let current = self.snapshot(service)?;
            // Like Consul: a requested index the registry has not reached (a stale one, after a
            // restart) waits out the whole wait and then returns a lower index.
            if current.index > index.max(1) {
                return Ok(current);
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(current);
                    }
                }
                () = tokio::time::sleep_until(deadline) => return self.snapshot(service),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::HealthCheck;
    use std::sync::Arc;
    use std::time::Duration;

    pub(crate) fn registration(name: &str, id: &str, port: u16) -> Registration {
        Registration {
            id: id.into(),
            name: name.into(),
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

    #[tokio::test]
    async fn lists_only_passing_instances_case_insensitively() {
        let reg = MemoryRegistry::new();
        reg.register(&registration("Rating", "r1", 1))
            .await
            .unwrap();
        reg.register(&registration("rating", "r2", 2))
            .await
            .unwrap();
        reg.register(&registration("other", "o1", 3)).await.unwrap();
        reg.set_passing("r2", false);
        let ids: Vec<_> = reg
            .healthy_instances("RATING", None)
            .await
            .unwrap()
            .instances
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["r1"]);
    }

    #[tokio::test]
    async fn deregistering_an_unknown_id_succeeds_and_ttl_on_it_fails() {
        let reg = MemoryRegistry::new();
        reg.deregister("nope").await.unwrap();
        let err = reg.pass_ttl("service:nope", "").await.unwrap_err();
        assert!(matches!(err, RegistryError::UnknownCheck { .. }), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn blocking_query_wakes_on_its_service_only() {
        let reg = Arc::new(MemoryRegistry::new());
        reg.register(&registration("a", "a1", 1)).await.unwrap();
        let first = reg.healthy_instances("a", None).await.unwrap();
        let waiter = {
            let reg = reg.clone();
            tokio::spawn(async move {
                reg.healthy_instances(
                    "a",
                    Some(BlockingWait {
                        index: first.index,
                        wait: Duration::from_secs(60),
                    }),
                )
                .await
            })
        };
        reg.register(&registration("b", "b1", 2)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            !waiter.is_finished(),
            "a change to b must not wake a watcher of a"
        );
        reg.register(&registration("a", "a2", 3)).await.unwrap();
        let next = waiter.await.unwrap().unwrap();
        assert!(next.index > first.index);
        assert_eq!(next.instances.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn blocking_query_returns_unchanged_data_when_the_wait_ends() {
        let reg = MemoryRegistry::new();
        reg.register(&registration("a", "a1", 1)).await.unwrap();
        let first = reg.healthy_instances("a", None).await.unwrap();
        let again = reg
            .healthy_instances(
                "a",
                Some(BlockingWait {
                    index: first.index,
                    wait: Duration::from_secs(5),
                }),
            )
            .await
            .unwrap();
        assert_eq!(again, first);
    }

    #[tokio::test]
    async fn forget_all_resets_the_index_like_a_restarted_agent() {
        let reg = MemoryRegistry::new();
        reg.register(&registration("a", "a1", 1)).await.unwrap();
        reg.register(&registration("a", "a2", 2)).await.unwrap();
        let before = reg.healthy_instances("a", None).await.unwrap().index;
        reg.forget_all();
        let after = reg.healthy_instances("a", None).await.unwrap();
        assert!(after.index < before && after.instances.is_empty());
    }
}
