//! The figures of a run under the issue's JSON keys, and the markdown table printed from them.
//!
//! Every figure a target applies to is a median over repeats (ratios are medians of the ratios
//! measured in the same repeat); each section keeps its repeats beside the median.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::plan::Plan;
use crate::system::Machine;

/// Least throughput of the aggregator relative to one backend answering directly: it makes two
/// upstream calls per request on the same two cores, so a third of the direct rate is par.
pub const TARGET_THROUGHPUT_RATIO: f64 = 0.35;
/// Most latency of the aggregator relative to a backend, at concurrency 1.
pub const TARGET_LATENCY_RATIO: f64 = 2.0;
/// Longest time from spawning an instance to its first request.
pub const TARGET_SCALE_UP_MS: f64 = 1000.0;
/// Most idle resident memory per service process.
pub const TARGET_IDLE_RSS_MB: f64 = 20.0;

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// `GET /movies/{id}` vs `GET /metadata/{id}` direct at c=32.
    pub throughput: Throughput,
    /// The same at concurrency 1.
    pub latency_c1: LatencyC1,
    /// Registry HTTP requests per aggregated request in a steady run.
    pub registry_calls_per_request: RegistryCalls,
    /// SIGKILL of one of two rating instances under load.
    pub kill9: Kill9,
    /// SIGTERM of one of two metadata instances under load.
    pub sigterm: Sigterm,
    /// Median time from spawning a rating instance to the first request it serves.
    pub scale_up_first_request_ms: Option<f64>,
    /// The repeats behind `scale_up_first_request_ms`.
    pub scale_up: ScaleUp,
    /// The registry killed for 10 s under load and restarted empty.
    pub registry_outage: Outage,
    /// Resident memory per service, in MiB.
    pub rss_mb: Rss,
    /// How, where and when this was measured.
    pub meta: Meta,
}

/// See [`Results::throughput`].
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Median requests per second through our aggregator.
    pub movie_rps: f64,
    /// Median requests per second of metadata answering directly.
    pub metadata_direct_rps: f64,
    /// Median of movie / direct, each pair measured back to back.
    pub ratio: f64,
    /// Workers.
    pub concurrency: usize,
    /// Median CPU time per aggregated request, all processes together (load generator
    /// included), in µs: what limits the rate on shared cores.
    pub movie_cpu_us_per_request: Option<f64>,
    /// The same for a direct request.
    pub direct_cpu_us_per_request: Option<f64>,
    /// Median CPU time per aggregated request of the aggregator process(es) alone, in µs.
    pub aggregator_cpu_us_per_request: Option<f64>,
    /// Every pair.
    pub repeats: Vec<ThroughputPair>,
}

/// One back-to-back throughput pair.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputPair {
    /// Through the aggregator.
    pub movie_rps: f64,
    /// Direct.
    pub metadata_direct_rps: f64,
    /// movie / direct.
    pub ratio: f64,
    /// Failed requests through the aggregator (expected 0).
    pub movie_failed: u64,
    /// Degraded answers through the aggregator (expected 0).
    pub movie_degraded: u64,
    /// Failed direct requests (expected 0).
    pub direct_failed: u64,
    /// CPU time per aggregated request, in µs, by process (the load generator is `bench`).
    pub movie_cpu_us_per_request: BTreeMap<String, f64>,
    /// CPU time per direct request, in µs, by process.
    pub direct_cpu_us_per_request: BTreeMap<String, f64>,
}

/// See [`Results::latency_c1`].
#[derive(Debug, Clone, Serialize)]
pub struct LatencyC1 {
    /// Median p50 through the aggregator.
    pub movie_p50_ms: Option<f64>,
    /// Median p50 direct.
    pub metadata_direct_p50_ms: Option<f64>,
    /// Median of movie p50 / direct p50 per pair.
    pub ratio: Option<f64>,
    /// Median p99 through the aggregator.
    pub movie_p99_ms: Option<f64>,
    /// Median p99 direct.
    pub metadata_direct_p99_ms: Option<f64>,
    /// Median of movie p99 / direct p99 per pair.
    pub p99_ratio: Option<f64>,
    /// Every pair.
    pub repeats: Vec<LatencyPair>,
}

/// One back-to-back latency pair.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyPair {
    /// Through the aggregator.
    pub movie_p50_ms: Option<f64>,
    /// See `movie_p50_ms`.
    pub movie_p99_ms: Option<f64>,
    /// Direct.
    pub metadata_direct_p50_ms: Option<f64>,
    /// See `metadata_direct_p50_ms`.
    pub metadata_direct_p99_ms: Option<f64>,
    /// Requests through the aggregator.
    pub movie_requests: u64,
    /// Requests direct.
    pub direct_requests: u64,
}

/// See [`Results::registry_calls_per_request`].
#[derive(Debug, Clone, Serialize)]
pub struct RegistryCalls {
    /// Our aggregator, net of the idle background (keep-alives of every instance).
    pub ours: f64,
    /// The naive aggregator, net of the same background.
    pub naive: f64,
    /// Registry requests per second with no client load: keep-alives and checks of the stack.
    pub idle_calls_per_sec: f64,
    /// The raw counts behind `ours`.
    pub ours_detail: SteadyRun,
    /// The raw counts behind `naive`.
    pub naive_detail: SteadyRun,
}

/// One steady run whose registry calls were counted.
#[derive(Debug, Clone, Serialize)]
pub struct SteadyRun {
    /// Aggregated requests sent in the window.
    pub requests: u64,
    /// Registry requests counted in the window, background included.
    pub registry_calls: u64,
    /// Raw registry requests per aggregated request, background included.
    pub raw_per_request: f64,
    /// Failed requests (expected 0).
    pub failed: u64,
    /// Window length in seconds.
    pub window_s: f64,
}

/// See [`Results::kill9`].
#[derive(Debug, Clone, Serialize)]
pub struct Kill9 {
    /// Our aggregator.
    pub ours: Kill,
    /// The naive aggregator.
    pub naive: Kill,
}

/// A kill -9 scenario of one strategy: medians over its repeats.
#[derive(Debug, Clone, Serialize)]
pub struct Kill {
    /// Non-2xx answers and transport errors.
    pub failed: u64,
    /// 2xx answers without the rating.
    pub degraded: u64,
    /// p99 latency of the requests sent in the 2 s after the kill.
    pub p99_ms: Option<f64>,
    /// p99 latency of the requests sent before the kill, for comparison.
    pub p99_before_ms: Option<f64>,
    /// Every repeat.
    pub repeats: Vec<KillRun>,
}

/// One kill -9 run.
#[derive(Debug, Clone, Serialize)]
pub struct KillRun {
    /// Requests sent.
    pub requests: u64,
    /// See [`Kill::failed`].
    pub failed: u64,
    /// See [`Kill::degraded`].
    pub degraded: u64,
    /// See [`Kill::p99_ms`].
    pub p99_ms: Option<f64>,
    /// See [`Kill::p99_before_ms`].
    pub p99_before_ms: Option<f64>,
    /// The first few failures or degraded answers, as seen by the client.
    pub first_errors: Vec<String>,
}

/// See [`Results::sigterm`].
#[derive(Debug, Clone, Serialize)]
pub struct Sigterm {
    /// Non-2xx answers and transport errors.
    pub failed: u64,
    /// Degraded answers.
    pub degraded: u64,
    /// Requests sent.
    pub requests: u64,
    /// p99 latency of the requests sent from the signal until 2 s after the exit.
    pub p99_ms: Option<f64>,
    /// How long the instance took to exit after SIGTERM (deregister, drain, stop).
    pub exit_ms: f64,
}

/// See [`Results::scale_up`].
#[derive(Debug, Clone, Serialize)]
pub struct ScaleUp {
    /// Spawn to first request served, per repeat.
    pub first_request_ms: Vec<f64>,
    /// Failed requests under the load meanwhile (expected 0).
    pub failed: u64,
}

/// See [`Results::registry_outage`].
#[derive(Debug, Clone, Serialize)]
pub struct Outage {
    /// Non-2xx answers and transport errors through our aggregator, from before the kill until
    /// 2 s after every instance was back.
    pub failed: u64,
    /// From spawning the new, empty registry until every live instance is passing in it again.
    pub reregistered_ms: f64,
    /// Degraded answers through our aggregator.
    pub degraded: u64,
    /// Requests through our aggregator.
    pub requests: u64,
    /// Failed requests of a lighter load (c=4) on the naive aggregator at the same time.
    pub naive_failed: u64,
    /// Requests of that load.
    pub naive_requests: u64,
}

/// See [`Results::rss_mb`].
#[derive(Debug, Clone, Serialize)]
pub struct Rss {
    /// After start, before any load; the largest instance of each service.
    pub idle: BTreeMap<String, f64>,
    /// Peak during the throughput, latency and side loads; the largest instance of each.
    pub load: BTreeMap<String, f64>,
}

/// How, where and when.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// UTC, ISO 8601, at the start.
    pub date: String,
    /// The command, as it would be typed.
    pub command: String,
    /// Our argv exactly.
    pub argv: Vec<String>,
    /// `git rev-parse HEAD` of the source, when it can be read.
    pub git_commit: Option<String>,
    /// The machine.
    pub machine: Machine,
    /// Durations and repeats.
    pub plan: Plan,
    /// Whole run, seconds.
    pub duration_s: f64,
    /// `RUST_LOG` of the services.
    pub service_log: String,
    /// `/proc/loadavg` when the run started: other work on the machine competes for the cores.
    pub loadavg_start: String,
    /// `/proc/loadavg` when it ended.
    pub loadavg_end: String,
    /// Anything unexpected on the way (a child that exited badly at the end, say).
    pub warnings: Vec<String>,
}

// === impl Results ===

impl Results {
    /// The markdown tables: figures against their targets, then memory per service.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let t = &self.throughput;
        let l = &self.latency_c1;
        let r = &self.registry_calls_per_request;
        let (ko, kn) = (&self.kill9.ours, &self.kill9.naive);
        let o = &self.registry_outage;
        let rows: Vec<[String; 5]> = vec![
            [
                format!("throughput, c={} (req/s)", t.concurrency),
                format!("{:.0}", t.movie_rps),
                format!("{:.0} (metadata direct)", t.metadata_direct_rps),
                format!("ratio ≥ {TARGET_THROUGHPUT_RATIO}"),
                verdict(
                    format!("{:.2}", t.ratio),
                    t.ratio >= TARGET_THROUGHPUT_RATIO,
                ),
            ],
            [
                "CPU per request, all processes, c=32 (µs)".into(),
                opt(t.movie_cpu_us_per_request, 0),
                format!("{} (metadata direct)", opt(t.direct_cpu_us_per_request, 0)),
                "".into(),
                format!(
                    "aggregator alone: {}",
                    opt(t.aggregator_cpu_us_per_request, 0)
                ),
            ],
            [
                "latency p50, c=1 (ms)".into(),
                opt(l.movie_p50_ms, 3),
                format!("{} (metadata direct)", opt(l.metadata_direct_p50_ms, 3)),
                format!("ratio ≤ {TARGET_LATENCY_RATIO}"),
                match l.ratio {
                    Some(ratio) => verdict(format!("{ratio:.2}"), ratio <= TARGET_LATENCY_RATIO),
                    None => "n/a".into(),
                },
            ],
            [
                "latency p99, c=1 (ms)".into(),
                opt(l.movie_p99_ms, 3),
                format!("{} (metadata direct)", opt(l.metadata_direct_p99_ms, 3)),
                "".into(),
                l.p99_ratio
                    .map_or("n/a".into(), |x| format!("ratio {x:.2}")),
            ],
            [
                "registry calls per request".into(),
                format!("{:.4}", r.ours),
                format!("{:.2} (naive)", r.naive),
                "0".into(),
                verdict(format!("{:.4}", r.ours), r.ours < 0.001),
            ],
            [
                "kill -9 a rating instance, c=16: failed / degraded".into(),
                format!("{} / {}", ko.failed, ko.degraded),
                format!("{} / {} (naive)", kn.failed, kn.degraded),
                "0 / 0".into(),
                verdict(
                    format!("{} / {}", ko.failed, ko.degraded),
                    ko.failed == 0 && ko.degraded == 0,
                ),
            ],
            [
                "kill -9: p99 in the 2 s after (ms)".into(),
                opt(ko.p99_ms, 1),
                format!("{} (naive)", opt(kn.p99_ms, 1)),
                "".into(),
                format!("before the kill: {}", opt(ko.p99_before_ms, 1)),
            ],
            [
                "SIGTERM a metadata instance, c=16: failed".into(),
                self.sigterm.failed.to_string(),
                "".into(),
                "0".into(),
                verdict(
                    self.sigterm.failed.to_string(),
                    self.sigterm.failed == 0 && self.sigterm.degraded == 0,
                ),
            ],
            [
                "new rating instance: spawn to first request (ms)".into(),
                opt(self.scale_up_first_request_ms, 0),
                "".into(),
                format!("≤ {TARGET_SCALE_UP_MS:.0}"),
                match self.scale_up_first_request_ms {
                    Some(ms) => verdict(format!("{ms:.0}"), ms <= TARGET_SCALE_UP_MS),
                    None => "**not served**".into(),
                },
            ],
            [
                "registry down 10 s, restarted empty: failed".into(),
                o.failed.to_string(),
                format!("{} of {} (naive, c=4)", o.naive_failed, o.naive_requests),
                "0".into(),
                verdict(o.failed.to_string(), o.failed == 0 && o.degraded == 0),
            ],
            [
                "registry restart: every instance back (ms)".into(),
                format!("{:.0}", o.reregistered_ms),
                "".into(),
                "".into(),
                "".into(),
            ],
        ];
        table(
            &mut out,
            ["measure", "ours", "baseline", "target", "result"],
            &rows,
        );
        out.push('\n');
        let rss_rows: Vec<[String; 4]> = self
            .rss_mb
            .idle
            .keys()
            .chain(self.rss_mb.load.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|service| {
                let idle = self.rss_mb.idle.get(service).copied();
                [
                    service.clone(),
                    opt(idle, 1),
                    opt(self.rss_mb.load.get(service).copied(), 1),
                    match idle {
                        Some(mb) if service != "dev-registry" => verdict(
                            format!("≤ {TARGET_IDLE_RSS_MB:.0}"),
                            mb <= TARGET_IDLE_RSS_MB,
                        ),
                        _ => "".into(),
                    },
                ]
            })
            .collect();
        table(
            &mut out,
            [
                "process (largest instance)",
                "RSS idle (MiB)",
                "RSS under load (MiB)",
                "idle target",
            ],
            &rss_rows,
        );
        out
    }
}

/// Appends a markdown table.
fn table<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(N));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

/// `value`, marked as meeting its target or not.
fn verdict(value: String, met: bool) -> String {
    if met {
        format!("{value} ✅")
    } else {
        format!("**{value}** ❌")
    }
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plausible result, for shape and rendering tests.
    pub(crate) fn sample() -> Results {
        let kill = |failed, degraded| Kill {
            failed,
            degraded,
            p99_ms: Some(4.0),
            p99_before_ms: Some(2.0),
            repeats: vec![],
        };
        let steady = SteadyRun {
            requests: 4000,
            registry_calls: 5,
            raw_per_request: 0.00125,
            failed: 0,
            window_s: 3.0,
        };
        let services = ["metadata-service", "movie-service", "rating-service"];
        let mb = |v: f64| services.iter().map(|s| ((*s).to_owned(), v)).collect();
        Results {
            throughput: Throughput {
                movie_rps: 2000.0,
                metadata_direct_rps: 5000.0,
                ratio: 0.4,
                concurrency: 32,
                movie_cpu_us_per_request: Some(170.0),
                direct_cpu_us_per_request: Some(23.0),
                aggregator_cpu_us_per_request: Some(85.0),
                repeats: vec![],
            },
            latency_c1: LatencyC1 {
                movie_p50_ms: Some(0.5),
                metadata_direct_p50_ms: Some(0.2),
                ratio: Some(2.5),
                movie_p99_ms: Some(1.0),
                metadata_direct_p99_ms: Some(0.4),
                p99_ratio: Some(2.5),
                repeats: vec![],
            },
            registry_calls_per_request: RegistryCalls {
                ours: 0.0,
                naive: 2.0,
                idle_calls_per_sec: 1.6,
                ours_detail: steady.clone(),
                naive_detail: steady,
            },
            kill9: Kill9 {
                ours: kill(0, 0),
                naive: kill(0, 700),
            },
            sigterm: Sigterm {
                failed: 0,
                degraded: 0,
                requests: 3000,
                p99_ms: Some(3.0),
                exit_ms: 600.0,
            },
            scale_up_first_request_ms: Some(300.0),
            scale_up: ScaleUp {
                first_request_ms: vec![300.0],
                failed: 0,
            },
            registry_outage: Outage {
                failed: 0,
                reregistered_ms: 4000.0,
                degraded: 0,
                requests: 10_000,
                naive_failed: 4000,
                naive_requests: 4000,
            },
            rss_mb: Rss {
                idle: mb(10.0),
                load: mb(15.0),
            },
            meta: Meta {
                date: "2026-01-01T00:00:00Z".into(),
                command: "cargo run --release -p bench -- --quick".into(),
                argv: vec!["bench".into(), "--quick".into()],
                git_commit: None,
                machine: Machine::probe(),
                plan: Plan::new(true, None),
                duration_s: 100.0,
                service_log: "warn".into(),
                loadavg_start: "1.00 1.00 1.00 1/100 1".into(),
                loadavg_end: "1.00 1.00 1.00 1/100 1".into(),
                warnings: vec![],
            },
        }
    }

    #[test]
    fn json_has_every_key_the_issue_names() {
        let json = serde_json::to_value(sample()).unwrap();
        let required = [
            "/throughput/movie_rps",
            "/throughput/metadata_direct_rps",
            "/throughput/ratio",
            "/latency_c1/movie_p50_ms",
            "/latency_c1/metadata_direct_p50_ms",
            "/latency_c1/ratio",
            "/registry_calls_per_request/ours",
            "/registry_calls_per_request/naive",
            "/kill9/ours/failed",
            "/kill9/ours/degraded",
            "/kill9/ours/p99_ms",
            "/kill9/naive/failed",
            "/kill9/naive/degraded",
            "/kill9/naive/p99_ms",
            "/sigterm/failed",
            "/scale_up_first_request_ms",
            "/registry_outage/failed",
            "/registry_outage/reregistered_ms",
            "/rss_mb/idle/movie-service",
            "/rss_mb/idle/metadata-service",
            "/rss_mb/idle/rating-service",
            "/rss_mb/load/movie-service",
            "/meta/date",
            "/meta/command",
            "/meta/machine/nproc",
            "/meta/machine/cpu_model",
            "/meta/plan/repeats",
        ];
        for pointer in required {
            let value = json.pointer(pointer);
            assert!(
                value.is_some_and(|v| v.is_number() || v.is_string()),
                "{pointer}: {value:?}"
            );
        }
    }

    #[test]
    fn table_marks_targets_met_and_missed() {
        let table = sample().markdown();
        assert!(table.starts_with("| measure | ours | baseline | target | result |\n|---|"));
        assert!(table.contains("| 0.40 ✅ |"), "{table}");
        assert!(table.contains("| **2.50** ❌ |"), "{table}");
        assert!(table.contains("| 0 / 700 (naive) |"), "{table}");
        assert!(
            table.contains("| 170 | 23 (metadata direct) |  | aggregator alone: 85 |"),
            "{table}"
        );
        assert!(
            table.contains("| movie-service | 10.0 | 15.0 | ≤ 20 ✅ |"),
            "{table}"
        );
        // Every row has as many cells as the header.
        for line in table.lines().filter(|l| l.starts_with('|')) {
            let cells = line.matches('|').count();
            assert!(cells == 6 || cells == 5, "{line}");
        }
    }
}
