//! A lean closed-loop load for throughput and latency: each worker owns one keep-alive HTTP/1.1
//! connection and sends the next request as soon as the previous answer is read, like `wrk`.
//!
//! It is leaner than [`devstack::load`] on purpose: the load generator shares the cores with the
//! stack it measures, so every microsecond it spends is taken from the servers. No pool, no URL
//! parsing per request, no JSON decoding (a degraded answer is spotted by a byte search), and one
//! `u32` of microseconds per request.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::stats;

/// Time one request may take before it counts as failed and its connection is dropped. 5 s:
/// the aggregator's own request deadline.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause before reconnecting after a failed connection, so a dead server is not spun on.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// What a degraded aggregator answer contains (`"degraded":["rating-service"]`).
const DEGRADED_MARK: &[u8] = b"\"degraded\":[\"";

/// A closed-loop load on one server.
#[derive(Debug, Clone)]
pub struct Blast {
    /// The servers; worker `i` keeps its connection to server `i mod n`.
    pub addrs: Vec<SocketAddr>,
    /// Paths, used in turn by every worker (each starts at a different one).
    pub paths: Vec<String>,
    /// Workers, each with one connection and one request in flight.
    pub concurrency: usize,
    /// Time at the start whose requests are not recorded (connections open, caches warm).
    pub warmup: Duration,
    /// Time recorded after the warm-up.
    pub duration: Duration,
}

/// What a [`Blast`] measured, over its recorded window only.
#[derive(Debug, Clone, Default)]
pub struct BlastReport {
    /// 2xx answers.
    pub ok: u64,
    /// 2xx answers with a non-empty `degraded` list (also counted in `ok`).
    pub degraded: u64,
    /// Non-2xx answers, transport errors and timeouts.
    pub failed: u64,
    /// Latency of every recorded request in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// Length of the recorded window.
    pub window: Duration,
}

impl BlastReport {
    /// Completed requests (any outcome) per second of the recorded window.
    pub fn rps(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            (self.ok + self.failed) as f64 / secs
        } else {
            0.0
        }
    }

    /// Latency percentile (0.0–1.0) in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        stats::percentile(&self.latencies_us, p).map(|us| f64::from(us) / 1e3)
    }

    fn merge(&mut self, other: WorkerRecord) {
        self.ok += other.ok;
        self.degraded += other.degraded;
        self.failed += other.failed;
        self.latencies_us.extend(other.latencies_us);
    }
}

/// One worker's records.
#[derive(Debug, Default)]
struct WorkerRecord {
    ok: u64,
    degraded: u64,
    failed: u64,
    latencies_us: Vec<u32>,
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok,
    Degraded,
    Failed,
}

/// Runs `plan` to its end and returns what it measured.
///
/// # Errors
///
/// The plan has no server, path or worker, or a path is not a valid URI path.
pub async fn run(plan: &Blast) -> anyhow::Result<BlastReport> {
    anyhow::ensure!(
        !plan.paths.is_empty() && !plan.addrs.is_empty() && plan.concurrency > 0,
        "a blast needs servers, paths and workers"
    );
    let uris = plan
        .paths
        .iter()
        .map(|p| p.parse::<Uri>().with_context(|| format!("path {p:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let start = Instant::now();
    let record_from = start + plan.warmup;
    let end = record_from + plan.duration;
    let mut workers = JoinSet::new();
    for worker in 0..plan.concurrency {
        let addr = plan.addrs[worker % plan.addrs.len()];
        let host = HeaderValue::from_str(&addr.to_string())?;
        let uris = uris.clone();
        workers.spawn(async move { work(addr, host, uris, worker, record_from, end).await });
    }
    let mut report = BlastReport {
        window: plan.duration,
        ..BlastReport::default()
    };
    while let Some(done) = workers.join_next().await {
        report.merge(done.context("a load worker panicked")?);
    }
    report.latencies_us.sort_unstable();
    Ok(report)
}

async fn work(
    addr: SocketAddr,
    host: HeaderValue,
    uris: Vec<Uri>,
    first: usize,
    record_from: Instant,
    end: Instant,
) -> WorkerRecord {
    let mut record = WorkerRecord::default();
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    let mut next = first;
    while Instant::now() < end {
        let sent = Instant::now();
        let uri = uris[next % uris.len()].clone();
        next += 1;
        let answer = match tokio::time::timeout(
            REQUEST_TIMEOUT,
            once(&mut sender, addr, &host, uri),
        )
        .await
        {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) | Err(_) => {
                // The connection is in an unknown state: start over with a new one.
                sender = None;
                Answer::Failed
            }
        };
        if sent >= record_from && sent < end {
            let latency = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
            record.latencies_us.push(latency);
            match answer {
                Answer::Ok => record.ok += 1,
                Answer::Degraded => {
                    record.ok += 1;
                    record.degraded += 1;
                }
                Answer::Failed => record.failed += 1,
            }
        }
        if answer == Answer::Failed && sender.is_none() {
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }
    record
}

/// Sends one GET on the worker's connection, opening it first if needed.
async fn once(
    sender: &mut Option<SendRequest<Empty<Bytes>>>,
    addr: SocketAddr,
    host: &HeaderValue,
    uri: Uri,
) -> anyhow::Result<Answer> {
    let conn = match sender {
        Some(conn) => conn,
        None => sender.insert(connect(addr).await?),
    };
    conn.ready().await?;
    let mut request = Request::get(uri).body(Empty::<Bytes>::new())?;
    request.headers_mut().insert(HOST, host.clone());
    let response = conn.send_request(request).await?;
    let ok = response.status().is_success();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(if !ok {
        Answer::Failed
    } else if contains(&body, DEGRADED_MARK) {
        Answer::Degraded
    } else {
        Answer::Ok
    })
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes; either way nothing to do.
        let _ = connection.await;
    });
    Ok(sender)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_answers_are_spotted_without_parsing() {
        assert!(contains(
            br#"{"id":"1","rating":null,"degraded":["rating-service"]}"#,
            DEGRADED_MARK
        ));
        assert!(!contains(br#"{"id":"1","degraded":[]}"#, DEGRADED_MARK));
        assert!(!contains(b"", DEGRADED_MARK));
    }

    #[test]
    fn rate_counts_every_completed_request_of_the_window() {
        let report = BlastReport {
            ok: 90,
            failed: 10,
            window: Duration::from_secs(2),
            ..BlastReport::default()
        };
        assert_eq!(report.rps(), 50.0);
    }

    #[tokio::test]
    async fn measures_a_real_server_and_counts_refusals_as_failures() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A minimal keep-alive HTTP/1.1 server: one fixed answer per request head.
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut pending = Vec::new();
                    loop {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            pending.drain(..end + 4);
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if socket.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        let plan = Blast {
            addrs: vec![addr],
            paths: vec!["/a".into(), "/b".into()],
            concurrency: 2,
            warmup: Duration::from_millis(20),
            duration: Duration::from_millis(200),
        };
        let report = run(&plan).await.unwrap();
        assert!(report.ok > 0, "{report:?}");
        assert_eq!(report.failed, 0);
        assert_eq!(report.latencies_us.len() as u64, report.ok);
        assert!(report.latencies_us.is_sorted());

        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let refused = run(&Blast {
            addrs: vec![closed],
            duration: Duration::from_millis(50),
            warmup: Duration::ZERO,
            ..plan
        })
        .await
        .unwrap();
        assert_eq!(refused.ok, 0);
        assert!(refused.failed > 0);
    }
}
