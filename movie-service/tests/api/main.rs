//! movie-service, started for real on port 0 against stub backends on real sockets, and against
//! the real backend services started in process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod aggregate;
mod helpers;
mod http;
mod real_backends;
