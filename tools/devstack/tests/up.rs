//! `devstack` as people run it: on a registry that already answers, it starts every service,
//! and on Ctrl-C (SIGINT) stops them all with each one deregistered. SIGKILLed itself, it still
//! leaves no orphan behind: its children are told to stop by the kernel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use common::registry::Registry;
use devstack::component::Component;
use devstack::process::{Child, LogSink, Spec};
use devstack::stack::{Launcher, Stack, free_port};
use nix::sys::signal::Signal;

const PATIENCE: Duration = Duration::from_secs(60);

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_devstack"))
}

/// A registry of the test's own (so it outlives devstack and can be asked afterwards).
async fn registry() -> Stack {
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let mut stack = Stack::new(
        Launcher::devstack(exe(), LogSink::terminal()),
        addr.parse().unwrap(),
    )
    .unwrap();
    stack.start_registry().await.unwrap();
    stack
}

/// An offset that puts every service's default port on a free one.
fn free_offset() -> u16 {
    for _ in 0..50 {
        let offset = fastrand::u16(20_000..40_000);
        let free = Component::SERVICES
            .iter()
            .all(|c| std::net::TcpListener::bind(("127.0.0.1", c.default_port() + offset)).is_ok());
        if free {
            return offset;
        }
    }
    panic!("no free port offset found");
}

fn start_devstack(registry: &Stack, offset: u16, data: &std::path::Path) -> Child {
    let spec = Spec {
        label: "devstack".to_owned(),
        colour: 37,
        program: exe(),
        args: vec![
            "--registry".into(),
            registry.registry_addr().to_string().into(),
            "--port-offset".into(),
            offset.to_string().into(),
        ],
        env: vec![(
            "DATABASE_URL".to_owned(),
            format!("sqlite://{}", data.join("ratings.sqlite3").display()),
        )],
        env_remove: Vec::new(),
        own_process_group: false,
    };
    Child::spawn(&spec, LogSink::terminal()).unwrap()
}

/// How many instances of `component` the registry's catalog holds on its offset port, healthy
/// or not (a deregistered one is gone from the catalog; a dead one only turns critical).
async fn catalogued(registry: &Stack, component: Component, offset: u16) -> usize {
    let url = format!(
        "{}/v1/catalog/service/{}",
        registry.registry_url(),
        component.name()
    );
    let entries: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ServicePort"] == component.default_port() + offset)
        .count()
}

async fn wait_until_all_passing(registry: &Stack, offset: u16) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    for component in Component::SERVICES {
        loop {
            let healthy = registry
                .registry_client()
                .healthy_instances(component.name(), None)
                .await
                .map(|h| {
                    h.instances
                        .iter()
                        .any(|i| i.port == component.default_port() + offset)
                })
                .unwrap_or(false);
            if healthy {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{component} never passed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn wait_until_none_catalogued(registry: &Stack, offset: u16) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    for component in Component::SERVICES {
        while catalogued(registry, component, offset).await > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{component} is still registered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn port_closed(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_every_service_and_each_deregisters() {
    let registry = registry().await;
    let offset = free_offset();
    let data = tempfile::tempdir().unwrap();
    let mut devstack = start_devstack(&registry, offset, data.path());
    wait_until_all_passing(&registry, offset).await;

    let movie = Component::Movie.default_port() + offset;
    let answer = reqwest::get(format!("http://127.0.0.1:{movie}/movies/1"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    devstack.signal(Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(PATIENCE, devstack.wait())
        .await
        .expect("devstack did not stop after SIGINT")
        .unwrap();
    assert!(status.success(), "devstack exited with {status}");

    // Gone from the catalog (deregistered, not merely critical) the moment devstack returns.
    for component in Component::SERVICES {
        assert_eq!(
            catalogued(&registry, component, offset).await,
            0,
            "{component}"
        );
        assert!(
            port_closed(component.default_port() + offset),
            "{component}"
        );
    }
    // The registry was not ours to stop.
    assert!(registry.registry_answers().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_devstack_leaves_no_orphan() {
    let registry = registry().await;
    let offset = free_offset();
    let data = tempfile::tempdir().unwrap();
    let mut devstack = start_devstack(&registry, offset, data.path());
    wait_until_all_passing(&registry, offset).await;

    devstack.kill().await.unwrap();

    // The kernel SIGTERMs each child when devstack dies; they deregister and exit.
    wait_until_none_catalogued(&registry, offset).await;
    for component in Component::SERVICES {
        let port = component.default_port() + offset;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !port_closed(port) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{component} still listens"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
