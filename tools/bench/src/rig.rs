//! The stack under test: a dev registry, two instances each of metadata and rating, one each of
//! user and product, and two aggregators (our resilient strategy and the seeds' naive one), all
//! child processes of this binary on loopback, plus the probes the scenarios read them with.
//!
//! Both aggregators register as `movie-service`; the load goes to each one's own port, so they
//! never share traffic. Dropping a [`Rig`] kills every child (the [`Stack`] does that), so a
//! failing scenario leaves nothing running.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::registry::Registry;
use devstack::component::Component;
use devstack::process::LogSink;
use devstack::stack::{InstanceRef, Launcher, START_TIMEOUT, Stack, free_port, successes_in};
use serde_json::Value;

/// How often the harness polls the registry or an aggregator while it waits for a change. Short,
/// because several figures (re-registration, first request) are read off these polls.
pub const POLL: Duration = Duration::from_millis(10);

/// Which aggregator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strategy {
    /// `common`'s resilient upstream client (cached discovery, retries, ejection).
    Ours,
    /// `UPSTREAM_STRATEGY=naive`: a registry lookup per call, the first instance, no retry.
    Naive,
}

impl Strategy {
    /// The key in the report.
    pub fn key(self) -> &'static str {
        match self {
            Strategy::Ours => "ours",
            Strategy::Naive => "naive",
        }
    }

    fn env(self) -> &'static str {
        match self {
            Strategy::Ours => "resilient",
            Strategy::Naive => "naive",
        }
    }
}

/// How to start the rig.
#[derive(Debug, Clone)]
pub struct RigOptions {
    /// The multi-call binary that runs components as `<program> run <component>` (this one,
    /// or `bench` itself when a test drives the rig).
    pub program: PathBuf,
    /// `RUST_LOG` of every service.
    pub service_log: String,
    /// Forward children's output to our stdout (for debugging the harness).
    pub show_logs: bool,
}

/// The stack under test and what the scenarios need to find their way in it.
#[derive(Debug)]
pub struct Rig {
    stack: Stack,
    /// For the harness's own calls: registry state, aggregator `/discovery`.
    control: reqwest::Client,
    /// Aggregators by strategy.
    aggregators: BTreeMap<Strategy, InstanceRef>,
    /// Instances that should be running (not killed or stopped by a scenario).
    live: Vec<InstanceRef>,
    /// Holds the ratings database; removed on drop.
    _scratch: tempfile::TempDir,
}

impl Rig {
    /// Starts the registry, the backends, then both aggregators, and waits until every one is
    /// passing and our aggregator sees both instances of metadata and rating.
    ///
    /// # Errors
    ///
    /// Something does not start within [`START_TIMEOUT`].
    pub async fn start(options: &RigOptions) -> anyhow::Result<Rig> {
        let scratch = scratch_dir()?;
        let launcher = Launcher {
            program: options.program.clone(),
            prefix_args: vec!["run".into()],
            logs: if options.show_logs {
                LogSink::terminal()
            } else {
                LogSink::Discard
            },
            own_process_groups: false,
            service_env: vec![
                ("RUST_LOG".to_owned(), options.service_log.clone()),
                // Never the user's own ratings database.
                (
                    "DATABASE_URL".to_owned(),
                    format!(
                        "sqlite://{}",
                        scratch.path().join("ratings.sqlite3").display()
                    ),
                ),
            ],
        };
        let registry_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let mut stack = Stack::new(launcher, registry_addr)?;
        stack.start_registry().await?;
        let control = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let mut rig = Rig {
            stack,
            control,
            aggregators: BTreeMap::new(),
            live: Vec::new(),
            _scratch: scratch,
        };
        for component in [
            Component::Metadata,
            Component::Metadata,
            Component::Rating,
            Component::Rating,
            Component::User,
            Component::Product,
        ] {
            rig.spawn(component)?;
        }
        rig.stack.wait_all_passing(START_TIMEOUT).await?;
        for strategy in [Strategy::Ours, Strategy::Naive] {
            let port = free_port()?;
            let instance = rig.stack.spawn(
                Component::Movie,
                port,
                &[("UPSTREAM_STRATEGY", strategy.env())],
            )?;
            rig.live.push(instance);
            rig.aggregators.insert(strategy, instance);
        }
        rig.stack.wait_all_passing(START_TIMEOUT).await?;
        for component in [Component::Metadata, Component::Rating] {
            rig.wait_aggregator_sees(component).await?;
        }
        Ok(rig)
    }

    /// Starts one more instance of `component` on a free port, without waiting for it.
    ///
    /// # Errors
    ///
    /// No free port, or the process cannot start.
    pub fn spawn(&mut self, component: Component) -> anyhow::Result<InstanceRef> {
        let instance = self.stack.spawn(component, free_port()?, &[])?;
        self.live.push(instance);
        Ok(instance)
    }

    /// [`spawn`](Self::spawn), then wait until it is passing and our aggregator uses it.
    ///
    /// # Errors
    ///
    /// It does not come up within [`START_TIMEOUT`].
    pub async fn add(&mut self, component: Component) -> anyhow::Result<InstanceRef> {
        let instance = self.spawn(component)?;
        self.stack.wait_passing(instance, START_TIMEOUT).await?;
        self.wait_aggregator_sees(component).await?;
        Ok(instance)
    }

    /// SIGKILLs an instance.
    ///
    /// # Errors
    ///
    /// It cannot be killed.
    pub async fn kill(&mut self, instance: InstanceRef) -> anyhow::Result<()> {
        self.live.retain(|&i| i != instance);
        self.stack.kill(instance).await
    }

    /// SIGTERMs an instance and waits until it has exited.
    ///
    /// # Errors
    ///
    /// It exits with an error or has to be killed.
    pub async fn terminate(&mut self, instance: InstanceRef) -> anyhow::Result<()> {
        self.live.retain(|&i| i != instance);
        self.stack.terminate(instance).await
    }

    /// SIGKILLs the registry: its state is gone.
    ///
    /// # Errors
    ///
    /// It cannot be killed.
    pub async fn kill_registry(&mut self) -> anyhow::Result<()> {
        self.stack.kill_registry().await
    }

    /// Starts an empty registry on the same address and waits until it answers.
    ///
    /// # Errors
    ///
    /// It does not start.
    pub async fn start_registry(&mut self) -> anyhow::Result<()> {
        self.stack.start_registry().await
    }

    /// The address of an instance.
    pub fn addr(&self, instance: InstanceRef) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.stack.instance(instance).port))
    }

    /// The aggregator of a strategy.
    pub fn aggregator(&self, strategy: Strategy) -> InstanceRef {
        // Both are inserted by `start`, the only constructor.
        self.aggregators[&strategy]
    }

    /// `http://127.0.0.1:<port>` of the aggregator of a strategy.
    pub fn aggregator_url(&self, strategy: Strategy) -> String {
        self.stack.instance(self.aggregator(strategy)).url()
    }

    /// Live instances of a component, in start order.
    pub fn live(&self, component: Component) -> Vec<InstanceRef> {
        self.live
            .iter()
            .copied()
            .filter(|&i| self.stack.instance(i).component == component)
            .collect()
    }

    /// Process IDs of the registry and of every live instance, with the name each runs as.
    pub fn live_pids(&self) -> Vec<(&'static str, u32)> {
        let registry = self
            .stack
            .registry_pid()
            .map(|pid| (Component::Registry.name(), pid));
        registry
            .into_iter()
            .chain(self.live.iter().filter_map(|&i| {
                let name = self.stack.instance(i).component.name();
                self.stack.pid(i).map(|pid| (name, pid))
            }))
            .collect()
    }

    /// The process ID of our own aggregator (for telling the two apart in CPU accounting).
    pub fn pid(&self, instance: InstanceRef) -> Option<u32> {
        self.stack.pid(instance)
    }

    /// HTTP requests the registry has served since it started (`requestCount` of its status
    /// page's `/ui/api/state`, which does not count itself).
    ///
    /// # Errors
    ///
    /// The registry does not answer.
    pub async fn registry_requests(&self) -> anyhow::Result<u64> {
        let url = format!("{}/ui/api/state", self.stack.registry_url());
        let state: Value = self
            .control
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        state["requestCount"]
            .as_u64()
            .context("no requestCount in the registry's /ui/api/state")
    }

    /// The live instance of `component` the registry lists first among the passing ones: the one
    /// the naive strategy sends every request to (it takes the first of the sorted list).
    ///
    /// # Errors
    ///
    /// The registry does not answer or lists none of our live instances.
    pub async fn first_listed(&self, component: Component) -> anyhow::Result<InstanceRef> {
        let healthy = self
            .stack
            .registry_client()
            .healthy_instances(component.name(), None)
            .await?;
        healthy
            .instances
            .iter()
            .find_map(|listed| {
                self.live(component)
                    .into_iter()
                    .find(|&i| self.stack.instance(i).port == listed.port)
            })
            .with_context(|| format!("the registry lists no live {component}"))
    }

    /// Whether every live instance is passing in the registry right now.
    pub async fn all_passing(&self) -> bool {
        let mut wanted: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
        for &i in &self.live {
            let instance = self.stack.instance(i);
            wanted
                .entry(instance.component.name())
                .or_default()
                .push(instance.port);
        }
        for (service, ports) in wanted {
            let Ok(healthy) = self
                .stack
                .registry_client()
                .healthy_instances(service, None)
                .await
            else {
                return false;
            };
            if !ports
                .iter()
                .all(|p| healthy.instances.iter().any(|i| i.port == *p))
            {
                return false;
            }
        }
        true
    }

    /// Waits until an instance is no longer listed as passing (the registry's check saw it
    /// die), so that the next scenario starts from a clean list.
    ///
    /// # Errors
    ///
    /// It is still listed after `timeout`.
    pub async fn wait_unlisted(
        &self,
        instance: InstanceRef,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.stack.is_passing(instance).await {
            if Instant::now() > deadline {
                bail!(
                    "{} still passing {timeout:?} after it died",
                    self.stack.instance(instance).label
                );
            }
            tokio::time::sleep(POLL * 10).await;
        }
        Ok(())
    }

    /// Successful upstream attempts our aggregator has made to the instance at `port` of
    /// `component` (from its `/discovery`), or `None` while it does not know the instance.
    ///
    /// # Errors
    ///
    /// The aggregator does not answer.
    pub async fn successes_seen(
        &self,
        component: Component,
        port: u16,
    ) -> anyhow::Result<Option<u64>> {
        let discovery = self.discovery().await?;
        Ok(successes_in(&discovery, component.name(), port))
    }

    /// Our aggregator's `/discovery` document.
    async fn discovery(&self) -> anyhow::Result<Value> {
        let url = format!("{}/discovery", self.aggregator_url(Strategy::Ours));
        Ok(self
            .control
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Waits until our aggregator's list of `component` holds every live instance of it.
    async fn wait_aggregator_sees(&self, component: Component) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let discovery = self.discovery().await?;
            let seen = self.live(component).iter().all(|&i| {
                successes_in(&discovery, component.name(), self.stack.instance(i).port).is_some()
            });
            if seen {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the aggregator did not see every {component} within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(POLL * 5).await;
        }
    }

    /// Stops everything in order (aggregators, services, registry).
    ///
    /// # Errors
    ///
    /// A child exits with an error after SIGTERM or has to be killed.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stack.shutdown().await
    }
}

/// A directory of our own under the system's temporary directory, removed on drop.
fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("bench-")
        .tempdir()
        .context("creating a scratch directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_directories_are_removed_on_drop() {
        let scratch = scratch_dir().unwrap();
        let path = scratch.path().to_owned();
        assert!(path.is_dir());
        drop(scratch);
        assert!(!path.exists());
    }
}
