//! One benchmark run from start to end: start the rig, run every scenario in order, stop the
//! rig, print the table and write the JSON.
//!
//! The order matters: memory is read idle first; registry calls are counted before anything
//! restarts the registry (its counter starts over); speed is measured before any instance is
//! killed; the registry outage comes last.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use devstack::component::Component;

use crate::cli::BenchArgs;
use crate::plan::{Plan, SETTLE};
use crate::report::{Kill9, Meta, Results, Rss};
use crate::rig::{Rig, RigOptions, Strategy};
use crate::scenarios::{self, RssSampler};
use crate::system::{self, Machine};

/// Runs the benchmark `args` describe.
///
/// # Errors
///
/// The stack cannot start, a scenario cannot run, or the JSON cannot be written. The children
/// are killed on any error.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    common::tls::install_crypto_provider();
    let started = Instant::now();
    let date = system::now_utc();
    let loadavg_start = system::loadavg();
    let plan = Plan::new(args.quick, args.repeats);
    let progress = |what: &str| eprintln!("[{:>6.1} s] {what}", started.elapsed().as_secs_f64());
    progress(&format!(
        "{} run: at least {:.0} s of load, plus process starts",
        plan.mode,
        plan.minimum_duration().as_secs_f64()
    ));

    progress("starting the registry, 2 metadata, 2 rating, user, product, 2 aggregators");
    let mut rig = Rig::start(&RigOptions {
        program: std::env::current_exe().context("locating the bench executable")?,
        service_log: args.service_log.clone(),
        show_logs: args.logs,
    })
    .await?;
    tokio::time::sleep(SETTLE).await;
    let idle = scenarios::rss_now(&rig);

    let sampler = RssSampler::start(&rig);
    progress("registry calls per request (idle, ours, naive)");
    let registry_calls = scenarios::registry_calls(&rig, &plan).await?;
    progress("throughput at c=32: movie vs metadata direct");
    let throughput = scenarios::throughput(&rig, &plan).await?;
    progress("latency at c=1: movie vs metadata direct");
    let latency_c1 = scenarios::latency(&rig, &plan).await?;
    progress("user and product through the aggregator (memory under load)");
    let side_failed = scenarios::side_load(&rig, &plan).await?;
    let load = sampler.stop().await;

    progress("kill -9 a rating instance under load: ours");
    let ours = scenarios::kill9(&mut rig, Strategy::Ours, plan.kill_repeats).await?;
    progress("kill -9 a rating instance under load: naive");
    let naive = scenarios::kill9(&mut rig, Strategy::Naive, plan.kill_repeats).await?;
    progress("SIGTERM a metadata instance under load");
    let sigterm = scenarios::sigterm(&mut rig).await?;
    progress("new rating instances: spawn to first request");
    let scale_up = scenarios::scale_up(&mut rig, plan.scale_repeats).await?;
    progress("registry killed for 10 s under load, restarted empty");
    let registry_outage = scenarios::registry_outage(&mut rig).await?;

    progress("stopping the stack");
    let mut warnings = Vec::new();
    if side_failed > 0 {
        warnings.push(format!(
            "{side_failed} user/product requests failed under load"
        ));
    }
    if let Err(e) = rig.shutdown().await {
        warnings.push(format!("stopping the stack: {e:#}"));
    }
    let argv: Vec<String> = std::env::args().collect();
    let results = Results {
        throughput,
        latency_c1,
        registry_calls_per_request: registry_calls,
        kill9: Kill9 { ours, naive },
        sigterm,
        scale_up_first_request_ms: crate::stats::median(&scale_up.first_request_ms),
        scale_up,
        registry_outage,
        rss_mb: Rss {
            idle: services_only(idle),
            load: services_only(load),
        },
        meta: Meta {
            date,
            command: command_line(&argv, std::env::var_os("CARGO").is_some()),
            argv,
            git_commit: git_commit(),
            machine: Machine::probe(),
            plan,
            duration_s: crate::stats::round(started.elapsed().as_secs_f64(), 1),
            service_log: args.service_log,
            loadavg_start,
            loadavg_end: system::loadavg(),
            warnings,
        },
    };
    for warning in &results.meta.warnings {
        eprintln!("warning: {warning}");
    }
    print_table(&results)?;
    if let Some(path) = &args.json {
        write_json(&results, path)?;
        progress(&format!("figures written to {}", path.display()));
    }
    Ok(())
}

/// The table and how it was measured, on stdout.
fn print_table(results: &Results) -> anyhow::Result<()> {
    let m = &results.meta;
    let mut out = std::io::stdout().lock();
    writeln!(out)?;
    write!(out, "{}", results.markdown())?;
    writeln!(
        out,
        "\n{} ({} CPUs), {} · {} · `{}` · {} pairs, medians · load average at start {}",
        m.machine.cpu_model,
        m.machine.nproc,
        m.machine.kernel,
        m.date,
        m.command,
        m.plan.repeats,
        m.loadavg_start
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )?;
    out.flush()?;
    Ok(())
}

fn write_json(results: &Results, path: &Path) -> anyhow::Result<()> {
    let mut json = serde_json::to_string_pretty(results)?;
    json.push('\n');
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}

/// Memory figures keyed by service (the registry kept under its own name).
fn services_only(
    rss: std::collections::BTreeMap<String, f64>,
) -> std::collections::BTreeMap<String, f64> {
    let known = |name: &str| {
        std::iter::once(Component::Registry)
            .chain(Component::SERVICES)
            .any(|c| c.name() == name)
    };
    rss.into_iter().filter(|(name, _)| known(name)).collect()
}

/// The command as typed: through `cargo run` when cargo started us (it sets `CARGO`).
fn command_line(argv: &[String], via_cargo: bool) -> String {
    let args: Vec<String> = argv.iter().skip(1).map(|a| shell_quote(a)).collect();
    let args = args.join(" ");
    if via_cargo {
        let profile = if cfg!(debug_assertions) {
            ""
        } else {
            "--release "
        };
        format!("cargo run {profile}-p bench -- {args}")
    } else {
        let program = argv.first().map_or("bench", String::as_str);
        format!("{} {args}", shell_quote(program))
    }
}

/// `arg`, single-quoted for a POSIX shell when it holds anything but plain characters.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The commit the harness was built from, `-dirty` when the tree had changes; `None` outside a
/// git checkout.
fn git_commit() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_recorded_as_typed() {
        let argv: Vec<String> = [
            "/x/target/release/bench",
            "--quick",
            "--json",
            "/tmp/b.json",
        ]
        .map(String::from)
        .to_vec();
        let profile = if cfg!(debug_assertions) {
            ""
        } else {
            "--release "
        };
        assert_eq!(
            command_line(&argv, true),
            format!("cargo run {profile}-p bench -- --quick --json /tmp/b.json")
        );
        assert_eq!(
            command_line(&argv, false),
            "/x/target/release/bench --quick --json /tmp/b.json"
        );
    }

    #[test]
    fn odd_arguments_are_quoted_for_a_shell() {
        assert_eq!(shell_quote("info,hyper=warn"), "info,hyper=warn");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn memory_is_reported_for_known_processes_only() {
        let rss = [
            ("movie-service", 9.0),
            ("dev-registry", 5.0),
            ("bench", 20.0),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into_iter()
        .collect();
        let kept = services_only(rss);
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            ["dev-registry", "movie-service"]
        );
    }
}
