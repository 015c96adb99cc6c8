//! A whole stack of child processes on loopback: the registry and any number of service
//! instances, started, killed, stopped and restarted one by one, and stopped in order at the end.
//!
//! `devstack` runs one for people; the end-to-end tests and the benchmark drive one to kill
//! instances and restart the registry under load. Readiness is read from the registry itself
//! (`?passing`), the same signal the aggregator acts on.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use common::config::{ConsulAddress, ConsulConfig};
use common::registry::{ConsulRegistry, Registry};
use nix::sys::signal::Signal;

use crate::component::Component;
use crate::process::{Child, LogSink, Spec};

/// How long a child may take from spawn to passing in the registry. Generous: a debug build of
/// five frameworks on two busy cores can take seconds to start; a healthy one takes well under one.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a service may take to exit after SIGTERM: its own shutdown grace (10 s) plus slack.
pub const STOP_GRACE: Duration = Duration::from_secs(15);

/// How the registry and services are started.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// A multi-call binary (devstack, or the benchmark) that runs a component with
    /// `<program> <prefix_args…> <component-name>`.
    pub program: PathBuf,
    /// Arguments before the component name, e.g. `["run"]`.
    pub prefix_args: Vec<OsString>,
    /// Where children's output goes.
    pub logs: LogSink,
    /// Children in their own process groups (see [`Spec::own_process_group`]).
    pub own_process_groups: bool,
    /// Environment given to every service instance (not the registry), e.g. a `DATABASE_URL`.
    pub service_env: Vec<(String, String)>,
}

impl Launcher {
    /// Runs components through `devstack run <component>` at `program`.
    pub fn devstack(program: impl Into<PathBuf>, logs: LogSink) -> Launcher {
        Launcher {
            program: program.into(),
            prefix_args: vec!["run".into()],
            logs,
            own_process_groups: false,
            service_env: Vec::new(),
        }
    }
}

/// Refers to one instance of a [`Stack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceRef(usize);

/// One service instance started by a [`Stack`].
#[derive(Debug)]
pub struct Instance {
    /// Which service.
    pub component: Component,
    /// The port it serves on, on 127.0.0.1.
    pub port: u16,
    /// Its log label, `<name>:<port>`.
    pub label: String,
    child: Child,
    /// Stopped or killed by us (so an exit is expected).
    stopped: bool,
}

impl Instance {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The registry and the instances, owned: dropping a stack kills whatever still runs.
#[derive(Debug)]
pub struct Stack {
    launcher: Launcher,
    registry_addr: SocketAddr,
    registry_client: ConsulRegistry,
    http: reqwest::Client,
    registry: Option<Child>,
    instances: Vec<Instance>,
}

impl Stack {
    /// A stack whose services use the registry at `registry_addr` (started by
    /// [`Stack::start_registry`], or already running).
    ///
    /// # Errors
    ///
    /// The HTTP clients cannot be built.
    pub fn new(launcher: Launcher, registry_addr: SocketAddr) -> anyhow::Result<Stack> {
        let address: ConsulAddress = registry_addr
            .to_string()
            .parse()
            .context("registry address")?;
        let registry_client = ConsulRegistry::new(&ConsulConfig::new(address))?;
        common::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        Ok(Stack {
            launcher,
            registry_addr,
            registry_client,
            http,
            registry: None,
            instances: Vec::new(),
        })
    }

    /// The registry's address.
    pub fn registry_addr(&self) -> SocketAddr {
        self.registry_addr
    }

    /// `http://<registry address>`.
    pub fn registry_url(&self) -> String {
        format!("http://{}", self.registry_addr)
    }

    /// A client for the registry's API.
    pub fn registry_client(&self) -> &ConsulRegistry {
        &self.registry_client
    }

    /// Whether something Consul-like answers on the registry address (`/v1/status/leader`
    /// with 200), whether we started it or not.
    pub async fn registry_answers(&self) -> bool {
        let url = format!("{}/v1/status/leader", self.registry_url());
        matches!(self.http.get(url).send().await, Ok(r) if r.status().is_success())
    }

    /// Starts the dev registry on the registry address and waits until it answers.
    ///
    /// # Errors
    ///
    /// It is already running here, it cannot start, or it exits or stays silent.
    pub async fn start_registry(&mut self) -> anyhow::Result<()> {
        if self
            .registry
            .as_mut()
            .is_some_and(|c| matches!(c.try_exit(), Ok(None)))
        {
            bail!("the registry is already running");
        }
        let spec = self.spec(
            Component::Registry,
            "dev-registry".to_owned(),
            vec![
                "--port".into(),
                self.registry_addr.port().to_string().into(),
                "--bind".into(),
                self.registry_addr.ip().to_string().into(),
            ],
            Vec::new(),
        );
        let mut child = Child::spawn(&spec, self.launcher.logs)?;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while !self.registry_answers().await {
            if let Some(status) = child.try_exit()? {
                bail!("the dev registry exited at start ({status}); is the port taken?");
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the dev registry did not answer within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.registry = Some(child);
        Ok(())
    }

    /// SIGKILLs the registry we started: its state is gone, as with a crashed `consul agent -dev`.
    ///
    /// # Errors
    ///
    /// We did not start one, or it cannot be killed.
    pub async fn kill_registry(&mut self) -> anyhow::Result<()> {
        let mut child = self
            .registry
            .take()
            .context("no registry of ours is running")?;
        child.kill().await?;
        Ok(())
    }

    /// Starts an instance of `component` on `port` (0 is not allowed: the port is how the
    /// stack recognises the instance in the registry) without waiting for it to be ready.
    ///
    /// # Errors
    ///
    /// `component` is the registry, the port is 0, or the process cannot start.
    pub fn spawn(
        &mut self,
        component: Component,
        port: u16,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<InstanceRef> {
        if component == Component::Registry {
            bail!("use start_registry for the registry");
        }
        if port == 0 {
            bail!("give {component} a fixed port");
        }
        let mut env = vec![
            ("PORT".to_owned(), port.to_string()),
            ("BIND_ADDRESS".to_owned(), "127.0.0.1".to_owned()),
            ("SERVICE_ADDRESS".to_owned(), "127.0.0.1".to_owned()),
            (
                "CONSUL_HTTP_ADDR".to_owned(),
                self.registry_addr.to_string(),
            ),
            // The registry is probed and addressed over plain HTTP; a CONSUL_HTTP_SSL from the
            // shell would leave every instance failing to register.
            ("CONSUL_HTTP_SSL".to_owned(), "false".to_owned()),
        ];
        env.extend(self.launcher.service_env.iter().cloned());
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let label = format!("{component}:{port}");
        let spec = self.spec(component, label.clone(), Vec::new(), env);
        let child = Child::spawn(&spec, self.launcher.logs)?;
        self.instances.push(Instance {
            component,
            port,
            label,
            child,
            stopped: false,
        });
        Ok(InstanceRef(self.instances.len() - 1))
    }

    /// [`spawn`](Self::spawn), then [`wait_passing`](Self::wait_passing).
    ///
    /// # Errors
    ///
    /// As those two.
    pub async fn start(
        &mut self,
        component: Component,
        port: u16,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<InstanceRef> {
        let instance = self.spawn(component, port, extra_env)?;
        self.wait_passing(instance, START_TIMEOUT).await?;
        Ok(instance)
    }

    /// Waits until the registry lists the instance as passing.
    ///
    /// # Errors
    ///
    /// It exits first, or `timeout` passes.
    pub async fn wait_passing(
        &mut self,
        instance: InstanceRef,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.is_passing(instance).await {
                return Ok(());
            }
            let entry = self.entry_mut(instance)?;
            if let Some(status) = entry.child.try_exit()? {
                bail!("{} exited before it was healthy ({status})", entry.label);
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{} was not passing in the registry within {timeout:?}",
                    entry.label
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every instance not stopped by us is passing in the registry (after a
    /// registry restart, say).
    ///
    /// # Errors
    ///
    /// One of them exits, or `timeout` passes.
    pub async fn wait_all_passing(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        for index in 0..self.instances.len() {
            if !self.instances[index].stopped {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                self.wait_passing(InstanceRef(index), left).await?;
            }
        }
        Ok(())
    }

    /// Whether the registry lists the instance as passing right now.
    pub async fn is_passing(&self, instance: InstanceRef) -> bool {
        let Some(entry) = self.instances.get(instance.0) else {
            return false;
        };
        match self
            .registry_client
            .healthy_instances(entry.component.name(), None)
            .await
        {
            Ok(healthy) => healthy
                .instances
                .iter()
                .any(|i| i.port == entry.port && i.address == "127.0.0.1"),
            Err(_) => false,
        }
    }

    /// SIGKILLs the instance.
    ///
    /// # Errors
    ///
    /// No such instance, or the kill fails.
    pub async fn kill(&mut self, instance: InstanceRef) -> anyhow::Result<()> {
        let entry = self.entry_mut(instance)?;
        entry.stopped = true;
        entry.child.kill().await?;
        Ok(())
    }

    /// SIGTERMs the instance and waits for it to exit (SIGKILL after [`STOP_GRACE`]).
    ///
    /// # Errors
    ///
    /// No such instance, or it cannot be signalled.
    pub async fn terminate(&mut self, instance: InstanceRef) -> anyhow::Result<()> {
        let entry = self.entry_mut(instance)?;
        entry.stopped = true;
        let status = entry.child.stop(STOP_GRACE).await?;
        if !status.success() {
            bail!("{} exited with {status} after SIGTERM", entry.label);
        }
        Ok(())
    }

    /// Sends `signal` to the instance without waiting.
    ///
    /// # Errors
    ///
    /// No such instance, or the signal cannot be sent.
    pub fn signal(&mut self, instance: InstanceRef, signal: Signal) -> anyhow::Result<()> {
        let entry = self.entry_mut(instance)?;
        entry.stopped = true;
        entry.child.signal(signal)
    }

    /// The instance.
    ///
    /// # Panics
    ///
    /// If `instance` is not of this stack (a programming error).
    pub fn instance(&self, instance: InstanceRef) -> &Instance {
        &self.instances[instance.0]
    }

    /// Every instance ever started, in start order.
    pub fn instances(&self) -> impl Iterator<Item = (InstanceRef, &Instance)> {
        self.instances
            .iter()
            .enumerate()
            .map(|(i, instance)| (InstanceRef(i), instance))
    }

    /// The PID of an instance's process.
    pub fn pid(&self, instance: InstanceRef) -> Option<u32> {
        self.instances.get(instance.0).map(|i| i.child.pid())
    }

    /// The PID of the registry we started.
    pub fn registry_pid(&self) -> Option<u32> {
        self.registry.as_ref().map(Child::pid)
    }

    /// Labels and statuses of children that exited without being told to since the last call.
    ///
    /// # Errors
    ///
    /// An exit status cannot be read.
    pub fn unexpected_exits(&mut self) -> anyhow::Result<Vec<String>> {
        let mut exits = Vec::new();
        for entry in self.instances.iter_mut().filter(|i| !i.stopped) {
            if let Some(status) = entry.child.try_exit()? {
                entry.stopped = true;
                exits.push(format!("{} exited ({status})", entry.label));
            }
        }
        if let Some(registry) = &mut self.registry
            && let Some(status) = registry.try_exit()?
        {
            exits.push(format!("dev-registry exited ({status})"));
            self.registry = None;
        }
        Ok(exits)
    }

    /// Stops everything in order: the aggregator, then the other services (each deregisters on
    /// SIGTERM, so the registry must still be up), then the registry.
    ///
    /// # Errors
    ///
    /// The first child that could not be stopped or exited with an error; the rest are still
    /// stopped.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        let (aggregators, others): (Vec<_>, Vec<_>) = self
            .instances
            .iter_mut()
            .filter(|i| !i.stopped)
            .partition(|i| i.component == Component::Movie);
        for group in [aggregators, others] {
            let stops = group.into_iter().map(|i| async move {
                let result = i.child.stop(STOP_GRACE).await;
                (i.label.clone(), result)
            });
            for outcome in futures::future::join_all(stops).await {
                record(outcome, &mut first_error);
            }
        }
        if let Some(mut registry) = self.registry.take() {
            record(
                ("dev-registry".to_owned(), registry.stop(STOP_GRACE).await),
                &mut first_error,
            );
        }
        first_error.map_or(Ok(()), Err)
    }

    fn entry_mut(&mut self, instance: InstanceRef) -> anyhow::Result<&mut Instance> {
        self.instances
            .get_mut(instance.0)
            .context("no such instance in this stack")
    }

    fn spec(
        &self,
        component: Component,
        label: String,
        flags: Vec<OsString>,
        mut env: Vec<(String, String)>,
    ) -> Spec {
        let mut args = self.launcher.prefix_args.clone();
        args.push(component.name().into());
        args.extend(flags);
        env.push((
            crate::process::SUPERVISOR_PID_ENV.to_owned(),
            std::process::id().to_string(),
        ));
        Spec {
            label,
            colour: colour_of(component),
            program: self.launcher.program.clone(),
            args,
            env,
            // A service ID or port from the caller's shell would clash between instances.
            env_remove: vec!["SERVICE_ID".to_owned(), "DEV_REGISTRY_PORT".to_owned()],
            own_process_group: self.launcher.own_process_groups,
        }
    }
}

/// Keeps the first failure of an ordered stop.
fn record(
    (label, result): (String, anyhow::Result<std::process::ExitStatus>),
    first_error: &mut Option<anyhow::Error>,
) {
    match result {
        Ok(status) if status.success() => {}
        Ok(status) => {
            first_error.get_or_insert_with(|| anyhow::anyhow!("{label} exited with {status}"));
        }
        Err(e) => {
            first_error.get_or_insert(e);
        }
    }
}

/// A label colour per component, so interleaved logs stay readable.
fn colour_of(component: Component) -> u8 {
    match component {
        Component::Registry => 90,
        Component::User => 32,
        Component::Product => 33,
        Component::Metadata => 34,
        Component::Rating => 35,
        Component::Movie => 36,
    }
}

/// Successes of the instance at `127.0.0.1:<port>` of `service` in the aggregator's
/// `/discovery` document; `None` when it does not list that instance.
pub fn successes_in(discovery: &serde_json::Value, service: &str, port: u16) -> Option<u64> {
    let address = format!("127.0.0.1:{port}");
    discovery["services"][service]["instances"]
        .as_array()?
        .iter()
        .find(|i| i["address"] == address.as_str())
        .map(|i| i["successes"].as_u64().unwrap_or(0))
}

/// A port free on 127.0.0.1 right now (the OS picks it). Another process could take it before
/// it is used; on a test machine that race is remote, and a clash fails loudly at bind.
///
/// # Errors
///
/// No port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_an_instance_in_the_aggregators_discovery_document() {
        let doc = serde_json::json!({"services": {"rating-service": {"instances": [
            {"address": "127.0.0.1:9001", "successes": 0},
            {"address": "127.0.0.1:9002", "successes": 7},
        ]}}});
        assert_eq!(successes_in(&doc, "rating-service", 9002), Some(7));
        assert_eq!(successes_in(&doc, "rating-service", 9001), Some(0));
        assert_eq!(successes_in(&doc, "rating-service", 9003), None);
        assert_eq!(successes_in(&doc, "metadata-service", 9002), None);
    }
}
