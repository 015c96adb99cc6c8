//! `devstack` itself: start the registry (unless one answers already) and every service, print
//! where to look, carry on while instances are killed, and stop everything in order on Ctrl-C.
//!
//! Ports: the first instance of a service gets its default port (8001, 8002, 8081, 8082, 8083),
//! the k-th replica that plus 100·(k−1) (rating-service: 8082, 8182, 8282…), so every URL is
//! predictable and the walkthrough's own extra instances (e.g. 8092) stay free.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::component::Component;
use crate::process::LogSink;
use crate::stack::{Launcher, START_TIMEOUT, Stack};

/// Most instances of one service: replica ports step by 100 from the default, and 8500 must
/// stay the registry's.
pub const MAX_REPLICAS: usize = 4;

/// How to start the stack.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Instances per service, e.g. `rating-service=2,metadata-service=2` (others: 1; max 4).
    #[arg(long, value_delimiter = ',', value_parser = parse_replicas)]
    pub replicas: Vec<(Component, usize)>,

    /// Registry address (`host:port`). When something Consul-like answers there (a real
    /// `consul agent -dev`, say) the services use it; otherwise a dev registry is started on it.
    #[arg(long, default_value = "127.0.0.1:8500")]
    pub registry: SocketAddr,

    /// Added to every service port, to run a second stack beside a first (the tests do).
    #[arg(long, default_value_t = 0)]
    pub port_offset: u16,
}

fn parse_replicas(raw: &str) -> Result<(Component, usize), String> {
    let (name, count) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected <service>=<count>, got {raw:?}"))?;
    let component = Component::from_name(name.trim())
        .filter(|c| *c != Component::Registry)
        .ok_or_else(|| {
            let names: Vec<_> = Component::SERVICES.iter().map(|c| c.name()).collect();
            format!("unknown service {name:?}; one of {}", names.join(", "))
        })?;
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| format!("{count:?} is not a count"))?;
    if !(1..=MAX_REPLICAS).contains(&count) {
        return Err(format!("{name}: between 1 and {MAX_REPLICAS} instances"));
    }
    Ok((component, count))
}

/// The port of the `replica`-th (0-based) instance of `component`.
pub fn replica_port(component: Component, replica: usize) -> u16 {
    // Bounded by MAX_REPLICAS, so this stays far below u16::MAX.
    component.default_port() + 100 * replica as u16
}

/// Starts the stack and runs until SIGINT/SIGTERM.
///
/// # Errors
///
/// A port is taken, nothing Consul-like can be started on the registry address, or a child does
/// not come up.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Handlers first: a Ctrl-C while children start must stop them in order, not kill us
    // (children sit in their own process groups, so the terminal's signal reaches only us).
    let stop = common::shutdown::signal();
    tokio::pin!(stop);
    let program = std::env::current_exe().context("locating the devstack executable")?;
    let mut launcher = Launcher::devstack(program, LogSink::terminal());
    launcher.own_process_groups = true;
    let mut stack = Stack::new(launcher, args.registry)?;

    let replicas: BTreeMap<Component, usize> = args.replicas.into_iter().collect();
    let mut plan: Vec<(Component, u16)> = Vec::new();
    for component in Component::SERVICES {
        for k in 0..replicas.get(&component).copied().unwrap_or(1) {
            let port = replica_port(component, k)
                .checked_add(args.port_offset)
                .context("--port-offset too large")?;
            plan.push((component, port));
        }
    }
    for (component, port) in &plan {
        ensure_free(*port).with_context(|| format!("{component} wants port {port}"))?;
    }

    let external_registry = stack.registry_answers().await;
    if external_registry {
        say(&format!(
            "devstack: using the registry already answering at {}",
            stack.registry_url()
        ));
    } else if args.registry.ip().is_loopback() {
        stack.start_registry().await?;
    } else {
        bail!(
            "nothing answers at {} and devstack only starts a registry on loopback",
            args.registry
        );
    }

    let started = async {
        let mut instances = Vec::new();
        for (component, port) in &plan {
            instances.push(stack.spawn(*component, *port, &[])?);
        }
        for instance in instances {
            stack.wait_passing(instance, START_TIMEOUT).await?;
        }
        anyhow::Ok(())
    };
    let outcome = tokio::select! {
        result = started => Some(result),
        () = &mut stop => None,
    };
    match outcome {
        Some(Err(e)) => {
            stack.shutdown().await.ok();
            return Err(e);
        }
        Some(Ok(())) => {
            say(&banner(&stack, external_registry));
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    () = &mut stop => break,
                    _ = tick.tick() => {
                        for exit in stack.unexpected_exits()? {
                            say(&format!("devstack: {exit}; the rest carries on"));
                        }
                    }
                }
            }
        }
        None => say("devstack: interrupted while starting"),
    }
    say("devstack: stopping: aggregator, then services (they deregister), then the registry");
    say("devstack: (Ctrl-C again to kill everything at once)");
    let again = common::shutdown::signal();
    tokio::select! {
        result = stack.shutdown() => result?,
        // Dropping the stack SIGKILLs every child still running.
        () = again => {
            say("devstack: killed everything");
            return Ok(());
        }
    }
    say("devstack: all stopped");
    Ok(())
}

/// Fails when something already listens on `port` on loopback.
fn ensure_free(port: u16) -> anyhow::Result<()> {
    std::net::TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .with_context(|| {
            format!("port {port} is in use (another devstack, or the service started by hand?)")
        })
}

/// What to look at and try, printed once everything is up.
fn banner(stack: &Stack, external_registry: bool) -> String {
    let registry = stack.registry_url();
    let mut out = String::from("\ndevstack: everything is up and registered\n\n");
    for (_, instance) in stack.instances() {
        out += &format!("  {:<18} {}\n", instance.component.name(), instance.url());
    }
    let which = if external_registry {
        "registry (external)"
    } else {
        "registry (dev)"
    };
    out += &format!("  {which:<18} {registry}  (UI: {registry}/ui/)\n\n");
    let movie = stack
        .instances()
        .find(|(_, i)| i.component == Component::Movie)
        .map(|(_, i)| i.url())
        .unwrap_or_default();
    out += "Try:\n";
    out += &format!("  curl -i {movie}/movies/1\n");
    out += &format!("  curl -s {movie}/movies\n");
    out += &format!("  curl -s {movie}/discovery\n");
    out += &format!(
        "  curl -i -X PUT {movie}/movies/1/rating -H 'content-type: application/json' -d '{{\"user_id\":\"alice\",\"value\":5}}'\n"
    );
    out += &format!("  curl -s '{registry}/v1/health/service/rating-service?passing'\n");
    out += &format!(
        "  CONSUL_HTTP_ADDR={} cargo run -p rating-service -- --port 8092   # one more instance\n",
        stack.registry_addr()
    );
    out += "  kill -9 <pid of an instance>   # the aggregator keeps answering\n";
    out += "\nCtrl-C stops everything.\n";
    out
}

/// One message of devstack's own, between its children's lines.
fn say(message: &str) {
    let mut out = std::io::stdout().lock();
    // Nothing to do about a closed stdout; the stack itself is unaffected.
    let _ = writeln!(out, "{message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_parse_and_are_bounded() {
        assert_eq!(
            parse_replicas("rating-service=2"),
            Ok((Component::Rating, 2))
        );
        assert!(parse_replicas("rating-service").is_err());
        assert!(parse_replicas("dev-registry=2").is_err());
        assert!(parse_replicas("nope=2").unwrap_err().contains("one of"));
        assert!(parse_replicas("rating-service=0").is_err());
        assert!(parse_replicas("rating-service=5").is_err());
        assert!(parse_replicas("rating-service=x").is_err());
    }

    #[test]
    fn replica_ports_never_collide_with_each_other_or_the_registry() {
        let mut seen = std::collections::BTreeSet::from([Component::Registry.default_port()]);
        for component in Component::SERVICES {
            for k in 0..MAX_REPLICAS {
                assert!(seen.insert(replica_port(component, k)), "{component} #{k}");
            }
        }
    }
}
