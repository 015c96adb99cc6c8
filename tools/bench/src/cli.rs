//! The `bench` command line: run the benchmark, or run one component of the stack in this
//! process (`bench run <component> [flags…]`, which is how the harness starts its children).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use devstack::component::Component;

/// Speed and failover of the real stack on loopback, side by side in one run; prints a markdown
/// table.
#[derive(Debug, Parser)]
#[command(name = "bench", version, about)]
pub struct Cli {
    /// Something other than benchmarking.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// How to benchmark.
    #[command(flatten)]
    pub bench: BenchArgs,
}

/// Subcommands besides benchmarking (the default).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one component in this process with its own flags, as its own binary would.
    Run {
        /// Which one.
        component: Component,
        /// Its flags (`--help` shows them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Drive the benchmark's closed-loop load at running servers and print rate and latency
    /// (for profiling one side by hand, like `wrk`).
    Blast {
        /// `host:port` of each server (workers are spread over them).
        #[arg(required = true, value_delimiter = ',')]
        servers: Vec<std::net::SocketAddr>,
        /// Paths, used in turn.
        #[arg(long = "path", required = true)]
        paths: Vec<String>,
        /// Workers, each with one connection.
        #[arg(short, long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds of load, after one second of warm-up.
        #[arg(short, long, default_value_t = 10)]
        seconds: u64,
        /// Use `devstack::load` (reqwest, JSON checked) instead of the lean client, to compare
        /// what the client itself costs.
        #[arg(long)]
        reqwest: bool,
    },
}

/// How to benchmark.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Fewer and shorter repeats: the whole run in about two minutes on two cores.
    #[arg(long)]
    pub quick: bool,

    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Repeats of each throughput and latency pair (default: 3 with --quick, else 7).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub repeats: Option<u32>,

    /// `RUST_LOG` of the services. `warn` by default: at `info` every request writes a log line,
    /// which measures the logging rather than discovery.
    #[arg(long, value_name = "FILTER", default_value = "warn")]
    pub service_log: String,

    /// Show the services' output (interleaved with the progress, before the table).
    #[arg(long)]
    pub logs: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_run_with_a_json_file() {
        let cli = Cli::try_parse_from(["bench", "--quick", "--json", "/tmp/bench.json"]).unwrap();
        assert!(cli.command.is_none());
        assert!(cli.bench.quick);
        assert_eq!(cli.bench.json, Some(PathBuf::from("/tmp/bench.json")));
        assert_eq!(cli.bench.repeats, None);
        assert_eq!(cli.bench.service_log, "warn");
        assert!(!cli.bench.logs);
    }

    #[test]
    fn repeats_are_bounded() {
        let cli = Cli::try_parse_from(["bench", "--repeats", "5"]).unwrap();
        assert_eq!(cli.bench.repeats, Some(5));
        assert!(Cli::try_parse_from(["bench", "--repeats", "0"]).is_err());
        assert!(Cli::try_parse_from(["bench", "--repeats", "51"]).is_err());
        assert!(Cli::try_parse_from(["bench", "--json"]).is_err());
        assert!(Cli::try_parse_from(["bench", "--bogus"]).is_err());
    }

    #[test]
    fn blast_takes_servers_and_paths() {
        let cli = Cli::try_parse_from([
            "bench",
            "blast",
            "127.0.0.1:1,127.0.0.1:2",
            "--path",
            "/a",
            "--path",
            "/b",
            "-c",
            "4",
        ])
        .unwrap();
        match cli.command {
            Some(Command::Blast {
                servers,
                paths,
                concurrency,
                seconds,
                reqwest,
            }) => {
                assert!(!reqwest, "the lean client by default");
                assert_eq!(servers.len(), 2);
                assert_eq!(paths, ["/a", "/b"]);
                assert_eq!((concurrency, seconds), (4, 10));
            }
            other => panic!("expected the blast subcommand, got {other:?}"),
        }
        assert!(Cli::try_parse_from(["bench", "blast", "127.0.0.1:1"]).is_err());
    }

    #[test]
    fn run_passes_the_components_own_flags_through() {
        let cli =
            Cli::try_parse_from(["bench", "run", "rating-service", "--port", "9082"]).unwrap();
        match cli.command {
            Some(Command::Run { component, args }) => {
                assert_eq!(component, Component::Rating);
                assert_eq!(args, ["--port", "9082"]);
            }
            other => panic!("expected the run subcommand, got {other:?}"),
        }
        assert!(Cli::try_parse_from(["bench", "run", "nope"]).is_err());
    }
}
