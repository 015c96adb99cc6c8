//! The in-memory catalog: services, checks, Raft-style indexes and blocking-query wake-ups.
//!
//! One mutex guards everything; no `.await` happens while it is held. Every change that
//! a client can observe takes the next value of a global, monotonic index (reference
//! §6) and stamps it on the service name it concerns. Each service name has a
//! `tokio::sync::watch` channel that blocking queries on that name subscribe to, and
//! the catalog as a whole has one more for `/v1/catalog/services`, so a change wakes
//! only the watchers it is relevant to. Output-only check changes are stored but take
//! no index, as Consul defers them (§8.5).

pub(crate) mod model;
pub(crate) mod registration;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::model::{CheckRecord, Node, Service, ServiceRecord, Status, TtlState};
use self::registration::Registration;
use crate::checks::{self, Probe};
use crate::options::Options;
use crate::wire::request::Weights;

/// The datacenter every dev agent reports (§9.1).
pub(crate) const DATACENTER: &str = "dc1";

/// Index of the node's own registration; the catalog starts just above it, so a
/// restarted registry visibly starts over (§6.2 "index went backwards").
const NODE_INDEX: u64 = 1;

/// Index of the built-in `consul` service registration.
const CONSUL_SERVICE_INDEX: u64 = 2;

/// Raft port the built-in `consul` service advertises, as a dev server does (§9.1).
const CONSUL_SERVICE_PORT: i64 = 8300;

/// Handle to the shared registry state; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    /// The state behind the handle.
    shared: Arc<Shared>,
}

/// State shared by the HTTP handlers, check runners and the reaper.
#[derive(Debug)]
struct Shared {
    /// Configuration.
    options: Options,
    /// The node identity.
    node: Node,
    /// The catalog.
    catalog: Mutex<Catalog>,
    /// Cancelled on shutdown: blocking queries return, runners stop.
    closing: CancellationToken,
    /// HTTP requests served (the status page's own polling excluded).
    requests: AtomicU64,
    /// Source of runner IDs, so results from a replaced runner are ignored.
    next_runner: AtomicU64,
}

/// Per-service-name indexes, kept after the name disappears so that deregistering
/// the last instance still moves the name's index forward.
#[derive(Debug, Clone, Copy, Default)]
struct NameIndex {
    /// Last change to any instance definition of the name (`/v1/catalog/service`).
    service: u64,
    /// Last change to definitions or check statuses (`/v1/health/service`).
    health: u64,
}

/// Who a check belongs to, for ACL decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckOwner {
    /// A service check: the service name.
    Service(String),
    /// A node-level check.
    Node,
}

/// Why a TTL update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UpdateError {
    /// No check has this ID (404).
    #[error(
        "Unknown check ID {}. Ensure that the check ID is passed, not the check name.",
        crate::duration::go_quote(.0)
    )]
    UnknownCheck(String),
    /// The check exists but is not a TTL check (500).
    #[error("CheckID {} does not have associated TTL", crate::duration::go_quote(.0))]
    NotTtl(String),
}

/// A deregistration of an ID that is not registered (404).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Unknown service ID {}. Ensure that the service ID is passed, not the service name.",
    crate::duration::go_quote(.0)
)]
pub(crate) struct UnknownService(pub(crate) String);

/// Everything the registry knows, guarded by one mutex.
#[derive(Debug)]
pub(crate) struct Catalog {
    /// The global Raft-style index: the last one handed out.
    index: u64,
    /// Last change to any service definition (`/v1/catalog/services`).
    services_index: u64,
    /// Locally registered instances by ID.
    services: BTreeMap<String, ServiceRecord>,
    /// The server's own `consul` service, in the catalog but not an agent service.
    consul_service: ServiceRecord,
    /// Checks by ID.
    checks: BTreeMap<String, CheckRecord>,
    /// Indexes per lower-cased service name.
    names: HashMap<String, NameIndex>,
    /// Wake-up channels per lower-cased service name, created on first wait.
    watchers: HashMap<String, watch::Sender<u64>>,
    /// Wake-up channel for service-set changes.
    catalog_watch: watch::Sender<u64>,
}

/// Lower-cases a service name: names are matched case-insensitively (§11.14).
pub(crate) fn name_key(name: &str) -> String {
    name.to_lowercase()
}

// === impl Registry ===

impl Registry {
    /// Creates an empty registry for a node advertising `address`.
    pub(crate) fn new(options: Options, address: IpAddr) -> Self {
        let node = Node {
            id: random_uuid(),
            name: options.node_name.clone(),
            address,
            index: NODE_INDEX,
        };
        let consul_service = ServiceRecord {
            service: Service {
                kind: String::new(),
                id: "consul".to_owned(),
                name: "consul".to_owned(),
                tags: Vec::new(),
                address: String::new(),
                tagged_addresses: BTreeMap::new(),
                meta: BTreeMap::from([
                    ("raft_version".to_owned(), "3".to_owned()),
                    (
                        "version".to_owned(),
                        crate::wire::response::CONSUL_VERSION.to_owned(),
                    ),
                ]),
                port: CONSUL_SERVICE_PORT,
                socket_path: String::new(),
                weights: Weights::default(),
                enable_tag_override: false,
                locality: None,
            },
            create_index: CONSUL_SERVICE_INDEX,
            modify_index: CONSUL_SERVICE_INDEX,
        };
        let catalog = Catalog {
            index: CONSUL_SERVICE_INDEX,
            services_index: CONSUL_SERVICE_INDEX,
            services: BTreeMap::new(),
            consul_service,
            checks: BTreeMap::new(),
            names: HashMap::from([(
                "consul".to_owned(),
                NameIndex {
                    service: CONSUL_SERVICE_INDEX,
                    health: CONSUL_SERVICE_INDEX,
                },
            )]),
            watchers: HashMap::new(),
            catalog_watch: watch::channel(CONSUL_SERVICE_INDEX).0,
        };
        Self {
            shared: Arc::new(Shared {
                options,
                node,
                catalog: Mutex::new(catalog),
                closing: CancellationToken::new(),
                requests: AtomicU64::new(0),
                next_runner: AtomicU64::new(1),
            }),
        }
    }

    /// The configuration.
    pub(crate) fn options(&self) -> &Options {
        &self.shared.options
    }

    /// The node identity.
    pub(crate) fn node(&self) -> &Node {
        &self.shared.node
    }

    /// Cancelled when the registry shuts down.
    pub(crate) fn closing(&self) -> &CancellationToken {
        &self.shared.closing
    }

    /// Stops everything: blocking queries return, check runners and the reaper stop.
    pub(crate) fn close(&self) {
        self.shared.closing.cancel();
        let mut catalog = self.lock();
        for check in catalog.checks.values_mut() {
            check.runner = None;
        }
    }

    /// Counts one served request.
    pub(crate) fn count_request(&self) {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests served so far.
    pub(crate) fn request_count(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// A fresh runner ID.
    pub(crate) fn next_runner_id(&self) -> u64 {
        self.shared.next_runner.fetch_add(1, Ordering::Relaxed)
    }

    /// Locks the catalog. A panic while it was held cannot leave it half-updated in a
    /// way worse than the panic itself, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Catalog> {
        self.shared
            .catalog
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on a consistent view of the catalog.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Catalog) -> R) -> R {
        f(&self.lock())
    }

    /// Waits until `ready` holds, `deadline` passes or the registry shuts down.
    ///
    /// Wakes on changes to the service `name` (any case), or to the set of services
    /// when `name` is `None`. `ready` is evaluated under the lock that every change
    /// also holds, so no change can slip between the check and the subscription.
    pub(crate) async fn wait_until(
        &self,
        name: Option<&str>,
        deadline: tokio::time::Instant,
        ready: impl Fn(&Catalog) -> bool,
    ) {
        let key = name.map(name_key);
        loop {
            let mut changes = {
                let mut catalog = self.lock();
                if ready(&catalog) {
                    return;
                }
                match &key {
                    Some(key) => catalog
                        .watchers
                        .entry(key.clone())
                        .or_insert_with(|| watch::channel(0).0)
                        .subscribe(),
                    None => catalog.catalog_watch.subscribe(),
                }
            };
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tokio::time::sleep_until(deadline) => return,
                () = self.shared.closing.cancelled() => return,
            }
        }
    }

    /// Adds or replaces a service instance and its checks (§1.6).
    ///
    /// Checks that already exist keep their status and output; their runners and TTL
    /// timers restart. With `replace_existing_checks`, the service's other checks go.
    pub(crate) fn register(&self, registration: Registration, replace_existing_checks: bool) {
        let Registration { service, checks } = registration;
        let mut catalog = self.lock();
        let catalog = &mut *catalog;
        let previous = catalog.services.get(&service.id);
        let service_changed = previous.is_none_or(|p| p.service != service);
        let renamed_from = previous
            .filter(|p| name_key(&p.service.name) != name_key(&service.name))
            .map(|p| p.service.name.clone());
        let previous_indexes = previous.map(|p| (p.create_index, p.modify_index));
        let new_ids: BTreeSet<&str> = checks.iter().map(|c| c.info.id.as_str()).collect();
        let removed: Vec<String> = if replace_existing_checks {
            catalog
                .checks
                .values()
                .filter(|c| {
                    c.info.service_id == service.id && !new_ids.contains(c.info.id.as_str())
                })
                .map(|c| c.info.id.clone())
                .collect()
        } else {
            Vec::new()
        };
        let mut touched_names: BTreeSet<String> = renamed_from.iter().cloned().collect();
        let mut records = Vec::with_capacity(checks.len());
        let mut checks_changed = !removed.is_empty();
        for new in checks {
            let existing = catalog.checks.get(&new.info.id);
            let mut info = new.info;
            if let Some(existing) = existing {
                // The snapshot/restore of §1.6: status and output survive.
                info.status = existing.info.status;
                if existing.info.service_id != info.service_id {
                    touched_names.insert(existing.info.service_name.clone());
                }
            }
            let changed = existing.is_none_or(|e| e.info != info);
            checks_changed |= changed;
            let ttl = match new.probe {
                Probe::Ttl { ttl } => Some(TtlState {
                    ttl,
                    deadline: Some(Instant::now() + ttl),
                    last_output: String::new(),
                }),
                _ => None,
            };
            records.push((
                changed,
                CheckRecord {
                    info,
                    output: existing.map(|e| e.output.clone()).unwrap_or_default(),
                    create_index: existing.map_or(0, |e| e.create_index),
                    modify_index: existing.map_or(0, |e| e.modify_index),
                    probe: new.probe,
                    output_cap: new.output_cap,
                    deregister_after: new.deregister_after,
                    critical_since: None,
                    ttl,
                    runner: None,
                },
            ));
        }
        let index = if service_changed || checks_changed {
            catalog.next_index()
        } else {
            catalog.index
        };
        for id in &removed {
            catalog.checks.remove(id);
        }
        let record = ServiceRecord {
            create_index: previous_indexes.map_or(index, |(create, _)| create),
            modify_index: match previous_indexes {
                Some((_, modify)) if !service_changed => modify,
                _ => index,
            },
            service,
        };
        for (changed, mut check) in records {
            if check.create_index == 0 {
                check.create_index = index;
            }
            if changed {
                check.modify_index = index;
            }
            check.runner = checks::start(self, &check);
            catalog.checks.insert(check.info.id.clone(), check);
        }
        tracing::info!(
            service = %record.service.name,
            id = %record.service.id,
            index,
            changed = service_changed || checks_changed,
            "registered service"
        );
        let name = record.service.name.clone();
        catalog.services.insert(record.service.id.clone(), record);
        if service_changed || checks_changed {
            touched_names.insert(name);
            for name in &touched_names {
                catalog.touch(name, index, service_changed || renamed_from.is_some());
            }
        }
    }

    /// Removes a service instance and all its checks (§2).
    pub(crate) fn deregister(&self, id: &str) -> Result<(), UnknownService> {
        let mut catalog = self.lock();
        let record = catalog
            .services
            .remove(id)
            .ok_or_else(|| UnknownService(id.to_owned()))?;
        catalog.remove_service_checks(id);
        let index = catalog.next_index();
        catalog.touch(&record.service.name, index, true);
        tracing::info!(service = %record.service.name, %id, index, "deregistered service");
        Ok(())
    }

    /// The name of a registered service instance.
    pub(crate) fn service_name(&self, id: &str) -> Option<String> {
        self.lock().services.get(id).map(|r| r.service.name.clone())
    }

    /// Who owns a check, `None` when the ID is unknown.
    pub(crate) fn check_owner(&self, id: &str) -> Option<CheckOwner> {
        if id == crate::wire::response::SERF_CHECK_ID {
            return Some(CheckOwner::Node);
        }
        self.lock()
            .checks
            .get(id)
            .map(|c| CheckOwner::Service(c.info.service_name.clone()))
    }

    /// Applies a TTL heartbeat: sets status and output, restarts the TTL (§3).
    pub(crate) fn update_ttl(
        &self,
        id: &str,
        status: Status,
        output: &str,
    ) -> Result<(), UpdateError> {
        let mut catalog = self.lock();
        let Some(check) = catalog.checks.get_mut(id) else {
            return if id == crate::wire::response::SERF_CHECK_ID {
                Err(UpdateError::NotTtl(id.to_owned()))
            } else {
                Err(UpdateError::UnknownCheck(id.to_owned()))
            };
        };
        let Some(ttl) = check.ttl.as_mut() else {
            return Err(UpdateError::NotTtl(id.to_owned()));
        };
        let output = truncate_ttl_output(output, check.output_cap);
        let deadline = Instant::now() + ttl.ttl;
        ttl.deadline = Some(deadline);
        ttl.last_output.clone_from(&output);
        tracing::debug!(check = %id, %status, "TTL update");
        catalog.set_status(id, status, output);
        if let Some(check) = catalog.checks.get_mut(id) {
            check.runner = checks::start(self, check);
        }
        Ok(())
    }

    /// Records a probe result from runner `runner`; `false` tells the runner to stop
    /// because its check is gone or has a newer runner.
    pub(crate) fn report(&self, id: &str, runner: u64, status: Status, output: String) -> bool {
        let mut catalog = self.lock();
        let current = catalog
            .checks
            .get(id)
            .and_then(|c| c.runner.as_ref())
            .is_some_and(|r| r.id() == runner);
        if current {
            catalog.set_status(id, status, output);
        }
        current
    }

    /// Expires a TTL check whose `deadline` passed without an update (§3).
    pub(crate) fn expire_ttl(&self, id: &str, deadline: Instant) {
        let mut catalog = self.lock();
        let Some(ttl) = catalog.checks.get_mut(id).and_then(|c| c.ttl.as_mut()) else {
            return;
        };
        if ttl.deadline != Some(deadline) {
            return;
        }
        ttl.deadline = None;
        let output = if ttl.last_output.is_empty() {
            "TTL expired".to_owned()
        } else {
            format!(
                "TTL expired (last output before timeout follows): {}",
                ttl.last_output
            )
        };
        tracing::info!(check = %id, "TTL expired");
        catalog.set_status(id, Status::Critical, output);
    }

    /// Removes every service with a check critical for longer than its
    /// `DeregisterCriticalServiceAfter` (§8.4); returns the removed IDs.
    pub(crate) fn reap(&self, now: Instant) -> Vec<String> {
        let mut catalog = self.lock();
        let due: BTreeSet<String> = catalog
            .checks
            .values()
            .filter(|c| match (c.deregister_after, c.critical_since) {
                (Some(after), Some(since)) => now.saturating_duration_since(since) > after,
                _ => false,
            })
            .map(|c| c.info.service_id.clone())
            .filter(|id| !id.is_empty())
            .collect();
        let mut reaped = Vec::new();
        for id in due {
            let Some(record) = catalog.services.remove(&id) else {
                continue;
            };
            catalog.remove_service_checks(&id);
            let index = catalog.next_index();
            catalog.touch(&record.service.name, index, true);
            tracing::info!(service = %record.service.name, %id, index, "reaped critical service");
            reaped.push(id);
        }
        // Wake-up channels nobody listens to are only kept while their name exists.
        let live: BTreeSet<String> = catalog
            .services
            .values()
            .map(|r| name_key(&r.service.name))
            .collect();
        catalog
            .watchers
            .retain(|key, tx| tx.receiver_count() > 0 || live.contains(key));
        reaped
    }
}

// === impl Catalog ===

impl Catalog {
    /// Hands out the next index.
    fn next_index(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    /// Stamps `index` on a service name and wakes its watchers; `definition` also
    /// marks the instance set or definitions as changed (catalog-level watchers).
    fn touch(&mut self, name: &str, index: u64, definition: bool) {
        let key = name_key(name);
        let entry = self.names.entry(key.clone()).or_default();
        entry.health = index;
        if definition {
            entry.service = index;
            self.services_index = index;
            self.catalog_watch.send_replace(index);
        }
        if let Some(tx) = self.watchers.get(&key) {
            tx.send_replace(index);
        }
    }

    /// Removes the checks of service `id` (their runners stop on drop).
    fn remove_service_checks(&mut self, id: &str) {
        self.checks.retain(|_, c| c.info.service_id != id);
    }

    /// Applies a status report: tracks the critical clock, stores the output, and takes
    /// an index only when the status changed.
    fn set_status(&mut self, id: &str, status: Status, output: String) {
        let Some(check) = self.checks.get_mut(id) else {
            return;
        };
        if status == Status::Critical {
            check.critical_since.get_or_insert_with(Instant::now);
        } else {
            check.critical_since = None;
        }
        check.output = output;
        if check.info.status == status {
            return;
        }
        let previous = check.info.status;
        check.info.status = status;
        self.index += 1;
        let index = self.index;
        check.modify_index = index;
        let name = check.info.service_name.clone();
        tracing::info!(check = %id, from = %previous, to = %status, index, "check status changed");
        self.touch(&name, index, false);
    }

    /// The last index handed out (never 0).
    pub(crate) fn index(&self) -> u64 {
        self.index.max(1)
    }

    /// `X-Consul-Index` of `/v1/health/service/:name`. A name never seen reports the
    /// index of the service set, as Consul does.
    pub(crate) fn health_index(&self, name: &str) -> u64 {
        self.names
            .get(&name_key(name))
            .map_or(self.services_index, |n| n.health)
            .max(1)
    }

    /// `X-Consul-Index` of `/v1/catalog/service/:name`.
    pub(crate) fn service_nodes_index(&self, name: &str) -> u64 {
        self.names
            .get(&name_key(name))
            .map_or(self.services_index, |n| n.service)
            .max(1)
    }

    /// `X-Consul-Index` of `/v1/catalog/services`.
    pub(crate) fn services_index(&self) -> u64 {
        self.services_index.max(1)
    }

    /// Locally registered instances by ID (what `/v1/agent/services` lists).
    pub(crate) fn agent_services(&self) -> &BTreeMap<String, ServiceRecord> {
        &self.services
    }

    /// Every check by ID (service checks only; the node check is rendered separately).
    pub(crate) fn checks(&self) -> &BTreeMap<String, CheckRecord> {
        &self.checks
    }

    /// All instances in the catalog, the built-in `consul` service included, by ID.
    pub(crate) fn catalog_services(&self) -> impl Iterator<Item = &ServiceRecord> {
        std::iter::once(&self.consul_service).chain(self.services.values())
    }

    /// Instances of `name` (any case) in ID order.
    pub(crate) fn instances(&self, name: &str) -> Vec<&ServiceRecord> {
        let key = name_key(name);
        self.catalog_services()
            .filter(|r| name_key(&r.service.name) == key)
            .collect()
    }

    /// The checks of service instance `id`, in check-ID order.
    pub(crate) fn service_checks(&self, id: &str) -> impl Iterator<Item = &CheckRecord> {
        self.checks
            .values()
            .filter(move |c| c.info.service_id == id)
    }

    /// Tagged instances: every wanted tag present, compared case-insensitively (§4.1).
    pub(crate) fn has_tags(service: &Service, wanted: &[String]) -> bool {
        wanted.iter().all(|want| {
            service
                .tags
                .iter()
                .any(|tag| tag.to_lowercase() == want.to_lowercase())
        })
    }
}

/// Cuts TTL output to its first `cap` bytes plus Consul's marker (§3 "Output cap").
pub(crate) fn truncate_ttl_output(output: &str, cap: usize) -> String {
    if output.len() <= cap {
        return output.to_owned();
    }
    let mut end = cap;
    while !output.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{} ... (captured {end} of {} bytes)",
        &output[..end],
        output.len()
    )
}

/// A random version-4 UUID string for the node ID.
fn random_uuid() -> String {
    let hi = fastrand::u64(..);
    let lo = fastrand::u64(..);
    // Version 4 and the RFC 4122 variant bits.
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// How long a blocking query may wait: the requested time (or the default), clamped to
/// the maximum, plus a random jitter of up to a sixteenth (§6.1, Consul's
/// `RPCQueryTimeout` clamps before adding jitter).
pub(crate) fn blocking_wait(requested: Option<Duration>, options: &Options) -> Duration {
    /// Jitter is a random fraction up to `wait / JITTER_FRACTION` (`structs.JitterFraction`).
    const JITTER_FRACTION: u32 = 16;
    let wait = requested
        .filter(|w| !w.is_zero())
        .unwrap_or(options.default_wait)
        .min(options.max_wait);
    let jitter_cap = wait / JITTER_FRACTION;
    let jitter = if jitter_cap.is_zero() {
        Duration::ZERO
    } else {
        let nanos = u64::try_from(jitter_cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(..nanos))
    };
    wait + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_output_keeps_the_first_bytes_and_marks_the_cut() {
        let long = "a".repeat(5000);
        let cut = truncate_ttl_output(&long, 4096);
        assert!(cut.starts_with(&"a".repeat(4096)));
        assert!(cut.ends_with(" ... (captured 4096 of 5000 bytes)"));
        assert_eq!(truncate_ttl_output("short", 4096), "short");
    }

    #[test]
    fn blocking_wait_is_clamped_then_jittered_by_at_most_a_sixteenth() {
        let options = Options::default();
        for _ in 0..100 {
            let wait = blocking_wait(Some(Duration::from_secs(3600)), &options);
            assert!(wait >= options.max_wait);
            assert!(wait < options.max_wait + options.max_wait / 16);
            let wait = blocking_wait(None, &options);
            assert!(wait >= options.default_wait);
        }
    }

    #[test]
    fn node_ids_look_like_uuids() {
        let id = random_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
