//! Integration tests: each starts the real service on 127.0.0.1, port 0, against an in-memory
//! registry; `replicas` starts the real binary several times against the dev registry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod databases;
mod errors;
mod faults;
mod health;
mod helpers;
mod lifecycle;
mod outage;
mod ratings;
mod replicas;
