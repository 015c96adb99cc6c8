//! Integration tests: the registry started on port 0 and driven over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod acl;
mod blocking;
mod checks;
mod errors;
mod helpers;
mod lifecycle;
mod register;
mod routing;
mod shapes;
