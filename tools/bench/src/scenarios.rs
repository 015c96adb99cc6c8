//! The measurements, one function per row of the report, each on the running [`Rig`].
//!
//! Speed is measured with the lean closed-loop [`blast`](crate::blast) load; failover with
//! [`devstack::load`], a paced load that checks every answer for failure or degradation (the
//! same records the end-to-end tests assert on). Every scenario leaves the rig as it found it:
//! two metadata and two rating instances, both aggregators, every instance registered.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::bail;
use devstack::component::Component;
use devstack::load::{Load, LoadPlan, Outcome, Report};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::blast::{self, Blast, BlastReport};
use crate::plan::{
    AFTER_KILL, AFTER_RECOVERY, BEFORE_FAULT, BETWEEN_SCALE_UPS, FAILOVER_CONCURRENCY,
    FAILOVER_PAUSE, OUTAGE, P99_WINDOW, Plan, THROUGHPUT_CONCURRENCY,
};
use crate::report::{
    Kill, KillRun, LatencyC1, LatencyPair, Outage, RegistryCalls, ScaleUp, Sigterm, SteadyRun,
    Throughput, ThroughputPair,
};
use crate::rig::{POLL, Rig, Strategy};
use crate::stats::{median, ms, round};
use crate::system;

/// Movie IDs of the seed data, requested in turn (metadata-service knows 1 to 5).
const IDS: [&str; 5] = ["1", "2", "3", "4", "5"];

/// Hard bound of any paced load: it stops by itself even if a scenario never stops it.
const LOAD_BOUND: Duration = Duration::from_secs(120);

/// Longest wait for the registry to list everything again, or for a new instance's first
/// request; far above the expected (one keep-alive interval, 5 s), to fail rather than hang.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often memory is sampled under load.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// Bytes per MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// Resident memory of every process of the rig now: the largest instance of each, in MiB.
pub fn rss_now(rig: &Rig) -> BTreeMap<String, f64> {
    let mut peaks = BTreeMap::new();
    for (name, pid) in rig.live_pids() {
        if let Ok(bytes) = system::rss_bytes(pid) {
            record_peak(&mut peaks, name, bytes);
        }
    }
    to_mib(&peaks)
}

/// Samples the memory of the rig's processes in the background until stopped.
#[derive(Debug)]
pub struct RssSampler {
    stop: CancellationToken,
    task: JoinHandle<BTreeMap<String, u64>>,
}

impl RssSampler {
    /// Starts sampling the processes running now.
    pub fn start(rig: &Rig) -> RssSampler {
        let pids: Vec<(String, u32)> = rig
            .live_pids()
            .into_iter()
            .map(|(name, pid)| (name.to_owned(), pid))
            .collect();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut peaks = BTreeMap::new();
            loop {
                for (name, pid) in &pids {
                    if let Ok(bytes) = system::rss_bytes(*pid) {
                        record_peak(&mut peaks, name, bytes);
                    }
                }
                tokio::select! {
                    () = token.cancelled() => return peaks,
                    () = tokio::time::sleep(RSS_SAMPLE_EVERY) => {}
                }
            }
        });
        RssSampler { stop, task }
    }

    /// Stops and returns the peak of each process name, in MiB.
    pub async fn stop(self) -> BTreeMap<String, f64> {
        self.stop.cancel();
        // The task only ends by returning its peaks.
        to_mib(&self.task.await.unwrap_or_default())
    }
}

fn record_peak(peaks: &mut BTreeMap<String, u64>, name: &str, bytes: u64) {
    let peak = peaks.entry(name.to_owned()).or_insert(0);
    *peak = (*peak).max(bytes);
}

fn to_mib(peaks: &BTreeMap<String, u64>) -> BTreeMap<String, f64> {
    peaks
        .iter()
        .map(|(name, &bytes)| (name.clone(), round(bytes as f64 / MIB, 1)))
        .collect()
}

/// Registry requests per aggregated request, for both strategies, net of the background the
/// stack makes with no load at all (every instance reads its own entry every 5 s).
///
/// # Errors
///
/// The registry or an aggregator does not answer.
pub async fn registry_calls(rig: &Rig, plan: &Plan) -> anyhow::Result<RegistryCalls> {
    let before = rig.registry_requests().await?;
    let idle_started = Instant::now();
    tokio::time::sleep(plan.registry_window).await;
    let idle = rig.registry_requests().await? - before;
    let idle_per_sec = idle as f64 / idle_started.elapsed().as_secs_f64();
    let mut steady = Vec::new();
    for strategy in [Strategy::Ours, Strategy::Naive] {
        let load = Load::start(paced(movie_urls(rig, strategy), FAILOVER_CONCURRENCY))?;
        tokio::time::sleep(plan.warmup).await;
        let from = load.elapsed();
        let before = rig.registry_requests().await?;
        tokio::time::sleep(plan.registry_window).await;
        let calls = rig.registry_requests().await? - before;
        let to = load.elapsed();
        let report = load.stop().await;
        let window = from..to;
        let requests = report
            .samples
            .iter()
            .filter(|s| window.contains(&s.sent_at))
            .count() as u64;
        let net = (calls as f64 - idle_per_sec * (to - from).as_secs_f64()).max(0.0);
        steady.push((
            net / requests.max(1) as f64,
            SteadyRun {
                requests,
                registry_calls: calls,
                raw_per_request: round(calls as f64 / requests.max(1) as f64, 5),
                failed: report.failed().len() as u64,
                window_s: round((to - from).as_secs_f64(), 3),
            },
        ));
    }
    let [(ours, ours_detail), (naive, naive_detail)]: [(f64, SteadyRun); 2] = steady
        .try_into()
        .map_err(|_| anyhow::anyhow!("two strategies, two runs"))?;
    Ok(RegistryCalls {
        ours: round(ours, 5),
        naive: round(naive, 3),
        idle_calls_per_sec: round(idle_per_sec, 2),
        ours_detail,
        naive_detail,
    })
}

/// `GET /movies/{id}` through our aggregator against `GET /metadata/{id}` straight from the two
/// metadata instances, at c=32, in back-to-back pairs whose order alternates.
///
/// # Errors
///
/// A load cannot run.
pub async fn throughput(rig: &Rig, plan: &Plan) -> anyhow::Result<Throughput> {
    let mut pairs = Vec::new();
    for repeat in 0..plan.repeats {
        let mut movie = None;
        let mut direct = None;
        for target in order(repeat) {
            let blast = target.blast(
                rig,
                THROUGHPUT_CONCURRENCY,
                plan.warmup,
                plan.throughput_window,
            );
            let meter = CpuMeter::start(rig);
            let report = blast::run(&blast).await?;
            let cpu = meter
                .per_request(report.rps() * (plan.warmup + plan.throughput_window).as_secs_f64());
            match target {
                Target::Movie => movie = Some((report, cpu)),
                Target::Direct => direct = Some((report, cpu)),
            }
        }
        let (Some((movie, movie_cpu)), Some((direct, direct_cpu))) = (movie, direct) else {
            bail!("a throughput pair lacks a side");
        };
        pairs.push(ThroughputPair {
            movie_rps: round(movie.rps(), 1),
            metadata_direct_rps: round(direct.rps(), 1),
            ratio: round(movie.rps() / direct.rps().max(f64::MIN_POSITIVE), 4),
            movie_failed: movie.failed,
            movie_degraded: movie.degraded,
            direct_failed: direct.failed,
            movie_cpu_us_per_request: movie_cpu,
            direct_cpu_us_per_request: direct_cpu,
        });
    }
    let column = |f: fn(&ThroughputPair) -> f64| {
        median(&pairs.iter().map(f).collect::<Vec<_>>()).unwrap_or(0.0)
    };
    let cpu = |f: fn(&ThroughputPair) -> Option<f64>| {
        median(&pairs.iter().filter_map(f).collect::<Vec<_>>()).map(|v| round(v, 1))
    };
    Ok(Throughput {
        movie_rps: round(column(|p| p.movie_rps), 1),
        metadata_direct_rps: round(column(|p| p.metadata_direct_rps), 1),
        ratio: round(column(|p| p.ratio), 3),
        concurrency: THROUGHPUT_CONCURRENCY,
        movie_cpu_us_per_request: cpu(|p| p.movie_cpu_us_per_request.get("total").copied()),
        direct_cpu_us_per_request: cpu(|p| p.direct_cpu_us_per_request.get("total").copied()),
        aggregator_cpu_us_per_request: cpu(|p| {
            p.movie_cpu_us_per_request.get("movie-service").copied()
        }),
        repeats: pairs,
    })
}

/// The same pairs at concurrency 1: p50 and p99 of each side.
///
/// # Errors
///
/// A load cannot run.
pub async fn latency(rig: &Rig, plan: &Plan) -> anyhow::Result<LatencyC1> {
    let mut pairs = Vec::new();
    for repeat in 0..plan.repeats {
        let mut movie = BlastReport::default();
        let mut direct = BlastReport::default();
        for target in order(repeat) {
            let report =
                blast::run(&target.blast(rig, 1, plan.warmup, plan.latency_window)).await?;
            match target {
                Target::Movie => movie = report,
                Target::Direct => direct = report,
            }
        }
        let p = |r: &BlastReport, q| r.percentile_ms(q).map(|v| round(v, 3));
        pairs.push(LatencyPair {
            movie_p50_ms: p(&movie, 0.5),
            movie_p99_ms: p(&movie, 0.99),
            metadata_direct_p50_ms: p(&direct, 0.5),
            metadata_direct_p99_ms: p(&direct, 0.99),
            movie_requests: movie.ok + movie.failed,
            direct_requests: direct.ok + direct.failed,
        });
    }
    let column = |f: &dyn Fn(&LatencyPair) -> Option<f64>| {
        median(&pairs.iter().filter_map(f).collect::<Vec<_>>()).map(|v| round(v, 3))
    };
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b.filter(|b| *b > 0.0)?);
    Ok(LatencyC1 {
        movie_p50_ms: column(&|p| p.movie_p50_ms),
        metadata_direct_p50_ms: column(&|p| p.metadata_direct_p50_ms),
        ratio: column(&|p| ratio(p.movie_p50_ms, p.metadata_direct_p50_ms)),
        movie_p99_ms: column(&|p| p.movie_p99_ms),
        metadata_direct_p99_ms: column(&|p| p.metadata_direct_p99_ms),
        p99_ratio: column(&|p| ratio(p.movie_p99_ms, p.metadata_direct_p99_ms)),
        repeats: pairs,
    })
}

/// A paced load on user and product through our aggregator, so that their memory under load is
/// measured too. Returns the failed requests (expected none).
///
/// # Errors
///
/// The load cannot start.
pub async fn side_load(rig: &Rig, plan: &Plan) -> anyhow::Result<u64> {
    let base = rig.aggregator_url(Strategy::Ours);
    let urls = ["/users/1", "/users/2", "/products/1", "/products/2"]
        .iter()
        .map(|path| format!("{base}{path}"))
        .collect();
    let load = Load::start(paced(urls, FAILOVER_CONCURRENCY))?;
    tokio::time::sleep(plan.side_load_window).await;
    Ok(load.stop().await.failed().len() as u64)
}

/// SIGKILL the rating instance the registry lists first (the one the naive strategy uses; any
/// of the two for ours) under a paced c=16 load through `strategy`'s aggregator, `repeats`
/// times; a new instance replaces it after each run.
///
/// # Errors
///
/// An instance cannot be killed or replaced.
pub async fn kill9(rig: &mut Rig, strategy: Strategy, repeats: u32) -> anyhow::Result<Kill> {
    let mut runs = Vec::new();
    for _ in 0..repeats {
        let victim = rig.first_listed(Component::Rating).await?;
        let load = Load::start(paced(movie_urls(rig, strategy), FAILOVER_CONCURRENCY))?;
        tokio::time::sleep(BEFORE_FAULT).await;
        let killed_at = load.elapsed();
        rig.kill(victim).await?;
        tokio::time::sleep(AFTER_KILL).await;
        let report = load.stop().await;
        runs.push(KillRun {
            requests: report.samples.len() as u64,
            failed: report.failed().len() as u64,
            degraded: report.degraded().len() as u64,
            p99_ms: p99(&report, killed_at..killed_at + P99_WINDOW),
            p99_before_ms: p99(&report, Duration::ZERO..killed_at),
            first_errors: first_errors(&report),
        });
        rig.add(Component::Rating).await?;
        rig.wait_unlisted(victim, RECOVERY_TIMEOUT).await?;
    }
    // Failures count in the worst run, not the median: "0 failed" must hold in every kill.
    let counts = |f: fn(&KillRun) -> u64| runs.iter().map(f).max().unwrap_or(0);
    let times =
        |f: fn(&KillRun) -> Option<f64>| median(&runs.iter().filter_map(f).collect::<Vec<_>>());
    Ok(Kill {
        failed: counts(|r| r.failed),
        degraded: counts(|r| r.degraded),
        p99_ms: times(|r| r.p99_ms),
        p99_before_ms: times(|r| r.p99_before_ms),
        repeats: runs,
    })
}

/// SIGTERM a metadata instance under a paced c=16 load through our aggregator, wait for it to
/// exit, keep the load up 2 s more; then a new instance replaces it.
///
/// # Errors
///
/// The instance does not exit cleanly or cannot be replaced.
pub async fn sigterm(rig: &mut Rig) -> anyhow::Result<Sigterm> {
    let victim = rig.first_listed(Component::Metadata).await?;
    let load = Load::start(paced(movie_urls(rig, Strategy::Ours), FAILOVER_CONCURRENCY))?;
    tokio::time::sleep(BEFORE_FAULT).await;
    let signalled_at = load.elapsed();
    let signalled = Instant::now();
    rig.terminate(victim).await?;
    let exit = signalled.elapsed();
    tokio::time::sleep(AFTER_RECOVERY).await;
    let report = load.stop().await;
    rig.add(Component::Metadata).await?;
    Ok(Sigterm {
        failed: report.failed().len() as u64,
        degraded: report.degraded().len() as u64,
        requests: report.samples.len() as u64,
        p99_ms: p99(&report, signalled_at..Duration::MAX),
        exit_ms: round(ms(exit), 1),
    })
}

/// Spawn a rating instance under a paced c=16 load through our aggregator and time it until the
/// aggregator's `/discovery` counts a success on it; SIGTERM it again; `repeats` times, 2 s
/// apart (see [`BETWEEN_SCALE_UPS`]).
///
/// # Errors
///
/// An instance cannot be started or stopped.
pub async fn scale_up(rig: &mut Rig, repeats: u32) -> anyhow::Result<ScaleUp> {
    let load = Load::start(paced(movie_urls(rig, Strategy::Ours), FAILOVER_CONCURRENCY))?;
    tokio::time::sleep(BEFORE_FAULT).await;
    let mut first_request_ms = Vec::new();
    for repeat in 0..repeats {
        if repeat > 0 {
            tokio::time::sleep(BETWEEN_SCALE_UPS).await;
        }
        let spawned = Instant::now();
        let instance = rig.spawn(Component::Rating)?;
        let port = rig.addr(instance).port();
        loop {
            if rig
                .successes_seen(Component::Rating, port)
                .await?
                .is_some_and(|n| n > 0)
            {
                first_request_ms.push(round(ms(spawned.elapsed()), 1));
                break;
            }
            if spawned.elapsed() > RECOVERY_TIMEOUT {
                bail!("a new rating instance served nothing within {RECOVERY_TIMEOUT:?}");
            }
            tokio::time::sleep(POLL).await;
        }
        rig.terminate(instance).await?;
    }
    let report = load.stop().await;
    Ok(ScaleUp {
        first_request_ms,
        failed: report.failed().len() as u64,
    })
}

/// Kill the registry for 10 s under a paced c=16 load through our aggregator (and a c=4 one
/// through the naive one), restart it empty, time until every instance is listed again.
///
/// # Errors
///
/// The registry cannot be restarted, or the instances are not back within 30 s.
pub async fn registry_outage(rig: &mut Rig) -> anyhow::Result<Outage> {
    let ours = Load::start(paced(movie_urls(rig, Strategy::Ours), FAILOVER_CONCURRENCY))?;
    let naive = Load::start(paced(movie_urls(rig, Strategy::Naive), 4))?;
    tokio::time::sleep(BEFORE_FAULT).await;
    rig.kill_registry().await?;
    tokio::time::sleep(OUTAGE).await;
    let restarted = Instant::now();
    rig.start_registry().await?;
    while !rig.all_passing().await {
        if restarted.elapsed() > RECOVERY_TIMEOUT {
            bail!("not every instance re-registered within {RECOVERY_TIMEOUT:?}");
        }
        tokio::time::sleep(POLL * 2).await;
    }
    let reregistered = restarted.elapsed();
    tokio::time::sleep(AFTER_RECOVERY).await;
    let (ours, naive) = (ours.stop().await, naive.stop().await);
    Ok(Outage {
        failed: ours.failed().len() as u64,
        reregistered_ms: round(ms(reregistered), 0),
        degraded: ours.degraded().len() as u64,
        requests: ours.samples.len() as u64,
        naive_failed: naive.failed().len() as u64,
        naive_requests: naive.samples.len() as u64,
    })
}

/// Which side of a speed pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `GET /movies/{id}` through our aggregator.
    Movie,
    /// `GET /metadata/{id}` from the metadata instances directly.
    Direct,
}

impl Target {
    fn blast(self, rig: &Rig, concurrency: usize, warmup: Duration, duration: Duration) -> Blast {
        let (addrs, prefix): (Vec<SocketAddr>, &str) = match self {
            Target::Movie => (vec![rig.addr(rig.aggregator(Strategy::Ours))], "/movies/"),
            Target::Direct => (
                rig.live(Component::Metadata)
                    .into_iter()
                    .map(|i| rig.addr(i))
                    .collect(),
                "/metadata/",
            ),
        };
        Blast {
            addrs,
            paths: IDS.iter().map(|id| format!("{prefix}{id}")).collect(),
            concurrency,
            warmup,
            duration,
        }
    }
}

/// Direct first on even repeats, aggregated first on odd ones, so that a drift of the machine
/// (another build starting) does not always favour the same side.
fn order(repeat: u32) -> [Target; 2] {
    if repeat.is_multiple_of(2) {
        [Target::Direct, Target::Movie]
    } else {
        [Target::Movie, Target::Direct]
    }
}

/// CPU time of every process of the rig and of this one over a measurement.
#[derive(Debug)]
struct CpuMeter {
    started: Vec<(String, u32, Duration)>,
}

impl CpuMeter {
    fn start(rig: &Rig) -> CpuMeter {
        let mut pids: Vec<(String, u32)> = rig
            .live_pids()
            .into_iter()
            .map(|(name, pid)| (name.to_owned(), pid))
            .collect();
        pids.push(("bench (load generator)".to_owned(), std::process::id()));
        CpuMeter {
            started: pids
                .into_iter()
                .filter_map(|(name, pid)| Some((name, pid, system::cpu_time(pid).ok()?)))
                .collect(),
        }
    }

    /// Microseconds of CPU per request, by process name (instances of a service summed).
    fn per_request(self, requests: f64) -> BTreeMap<String, f64> {
        let mut used: BTreeMap<String, f64> = BTreeMap::new();
        for (name, pid, before) in self.started {
            if let Ok(after) = system::cpu_time(pid) {
                *used.entry(name).or_default() += (after.saturating_sub(before)).as_secs_f64();
            }
        }
        let total: f64 = used.values().sum();
        used.insert("total".to_owned(), total);
        used.into_iter()
            .map(|(name, secs)| (name, round(secs * 1e6 / requests.max(1.0), 1)))
            .collect()
    }
}

fn movie_urls(rig: &Rig, strategy: Strategy) -> Vec<String> {
    let base = rig.aggregator_url(strategy);
    IDS.iter().map(|id| format!("{base}/movies/{id}")).collect()
}

fn paced(urls: Vec<String>, concurrency: usize) -> LoadPlan {
    LoadPlan {
        urls,
        concurrency,
        pause: FAILOVER_PAUSE,
        request_timeout: blast::REQUEST_TIMEOUT,
        max_duration: LOAD_BOUND,
    }
}

fn p99(report: &Report, window: std::ops::Range<Duration>) -> Option<f64> {
    report
        .latency_percentile(window, 0.99)
        .map(|d| round(ms(d), 2))
}

/// The first few failed or degraded requests, for the JSON (what went wrong, not just how often).
fn first_errors(report: &Report) -> Vec<String> {
    report
        .samples
        .iter()
        .filter(|s| s.outcome != Outcome::Ok)
        .take(3)
        .map(|s| format!("at {:.3} s: {:?}", s.sent_at.as_secs_f64(), s.outcome))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_alternate_their_order() {
        assert_eq!(order(0), [Target::Direct, Target::Movie]);
        assert_eq!(order(1), [Target::Movie, Target::Direct]);
    }

    #[test]
    fn peaks_keep_the_largest_instance_in_mib() {
        let mut peaks = BTreeMap::new();
        record_peak(&mut peaks, "rating-service", 8 * 1024 * 1024);
        record_peak(&mut peaks, "rating-service", 12 * 1024 * 1024);
        record_peak(&mut peaks, "rating-service", 10 * 1024 * 1024);
        record_peak(&mut peaks, "movie-service", 1024 * 1024 + 512 * 1024);
        let mib = to_mib(&peaks);
        assert_eq!(mib["rating-service"], 12.0);
        assert_eq!(mib["movie-service"], 1.5);
    }
}
