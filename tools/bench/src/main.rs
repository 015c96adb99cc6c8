//! `bench`: runs the benchmark (see [`bench::run`]), or one component of the stack in this
//! process (`bench run <component> [flags…]`, which is how the harness starts its children), or
//! its load alone (`bench blast`, for profiling by hand).

use std::io::Write as _;
use std::time::Duration;

use bench::blast::{self, Blast};
use bench::cli::{Cli, Command};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Run { component, args }) => {
            // A child of a harness that dies (Ctrl-C, SIGKILL, a failed test) stops with it.
            devstack::process::stop_with_parent()?;
            component.run(args).await
        }
        Some(Command::Blast {
            servers,
            paths,
            concurrency,
            seconds,
            reqwest: true,
        }) => {
            let urls = servers
                .iter()
                .flat_map(|s| paths.iter().map(move |p| format!("http://{s}{p}")))
                .collect();
            let load = devstack::load::Load::start(devstack::load::LoadPlan {
                urls,
                concurrency,
                pause: Duration::ZERO,
                request_timeout: blast::REQUEST_TIMEOUT,
                max_duration: Duration::from_secs(seconds + 1),
            })?;
            tokio::time::sleep(Duration::from_secs(seconds + 1)).await;
            let report = load.stop().await;
            let window = Duration::from_secs(1)..Duration::MAX;
            let requests = report
                .samples
                .iter()
                .filter(|s| window.contains(&s.sent_at))
                .count();
            let p = |q| {
                report
                    .latency_percentile(window.clone(), q)
                    .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
            };
            writeln!(
                std::io::stdout().lock(),
                "{:.0} req/s (reqwest), {} failed, {} degraded; p50 {:.3} ms, p99 {:.3} ms",
                requests as f64 / seconds as f64,
                report.failed().len(),
                report.degraded().len(),
                p(0.5),
                p(0.99)
            )?;
            Ok(())
        }
        Some(Command::Blast {
            servers,
            paths,
            concurrency,
            seconds,
            reqwest: false,
        }) => {
            let plan = Blast {
                addrs: servers,
                paths,
                concurrency,
                warmup: Duration::from_secs(1),
                duration: Duration::from_secs(seconds),
            };
            let report = blast::run(&plan).await?;
            let p = |q| report.percentile_ms(q).unwrap_or(f64::NAN);
            writeln!(
                std::io::stdout().lock(),
                "{:.0} req/s, {} failed, {} degraded; p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                report.rps(),
                report.failed,
                report.degraded,
                p(0.5),
                p(0.99),
                p(1.0)
            )?;
            Ok(())
        }
        None => bench::run(cli.bench).await,
    }
}
