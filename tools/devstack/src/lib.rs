//! The whole stack on one machine, from one binary: the dev registry and every service as real,
//! separate OS processes, with their logs under coloured labels, stopped in order on Ctrl-C.
//!
//! # Layout
//!
//! - [`component`]: the six programs, and `devstack run <component>` (one binary runs them all).
//! - [`process`]: one supervised child: output forwarding, SIGTERM with a grace period, SIGKILL.
//! - [`stack`]: a registry and instances, started, killed and restarted one by one.
//! - [`load`]: a steady, bounded client load and its records.
//! - [`up`]: the `devstack` command people run.
//!
//! The end-to-end tests (`tests/e2e.rs`) and the benchmark (`tools/bench`) drive [`stack`] and
//! [`load`] to kill instances and the registry under load.

pub mod component;
pub mod load;
pub mod process;
pub mod stack;
pub mod up;
