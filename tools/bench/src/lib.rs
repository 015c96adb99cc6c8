//! The benchmark harness: starts the real stack on loopback (release binaries of the dev
//! registry, two instances each of metadata and rating, one of user and product, and two
//! aggregators, ours and the seeds' naive strategy), drives bounded load from its own async
//! client, and reports speed and failover side by side in one markdown table (and, with
//! `--json <path>`, the figures under the keys of issue 8).
//!
//! `cargo run --release -p bench -- --quick --json /tmp/bench.json` builds everything in one go:
//! like `devstack`, this one binary runs every component (`bench run <component>`), so the
//! children are release builds of exactly the code being measured.
//!
//! Numbers from a shared two-core machine are noisy. Comparisons are made within one run, in
//! back-to-back pairs, and reported as medians of repeats; see `tools/bench/RESULTS.md`.
//!
//! # Layout
//!
//! - [`cli`]: the command line.
//! - [`plan`]: durations, concurrency and repeats, quick and full.
//! - [`rig`]: the stack under test and the probes of it (registry request count, `/discovery`).
//! - [`blast`]: the lean closed-loop load for throughput and latency.
//! - [`scenarios`]: one function per measurement.
//! - [`report`]: the results under the keys, and the markdown table.
//! - [`stats`]: percentiles and medians.
//! - [`system`]: `/proc` (memory, CPU time, machine) and the date.
//! - [`harness`]: one run from start to end.

pub mod blast;
pub mod cli;
pub mod harness;
pub mod plan;
pub mod report;
pub mod rig;
pub mod scenarios;
pub mod stats;
pub mod system;

pub use harness::run;
