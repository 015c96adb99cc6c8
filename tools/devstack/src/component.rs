//! The six programs of the stack and how this one binary runs any of them.
//!
//! `devstack run <component> [flags…]` parses exactly the command line the component's own binary
//! parses and runs it in this process. The supervisor starts every child that way, re-executing
//! its own executable, so `cargo run -p devstack` needs nothing built beforehand and every child is
//! a real, separate OS process that can be killed on its own.

use std::ffi::OsString;

use clap::Parser as _;

/// A program of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Component {
    /// The Consul-compatible dev registry.
    #[value(name = "dev-registry")]
    Registry,
    /// user-service (Rocket).
    #[value(name = "user-service")]
    User,
    /// product-service (actix-web).
    #[value(name = "product-service")]
    Product,
    /// metadata-service (warp).
    #[value(name = "metadata-service")]
    Metadata,
    /// rating-service (poem).
    #[value(name = "rating-service")]
    Rating,
    /// movie-service (axum), the aggregator.
    #[value(name = "movie-service")]
    Movie,
}

impl Component {
    /// The five services, in start order: the aggregator last, so that it finds its upstreams
    /// already registered (it would cope otherwise, but the first requests would be degraded).
    pub const SERVICES: [Component; 5] = [
        Component::User,
        Component::Product,
        Component::Metadata,
        Component::Rating,
        Component::Movie,
    ];

    /// The name it registers (services) or runs as.
    pub fn name(self) -> &'static str {
        match self {
            Component::Registry => "dev-registry",
            Component::User => user_service::INFO.name,
            Component::Product => product_service::INFO.name,
            Component::Metadata => metadata_service::INFO.name,
            Component::Rating => rating_service::INFO.name,
            Component::Movie => movie_service::INFO.name,
        }
    }

    /// Its default port (Consul's 8500 for the registry).
    pub fn default_port(self) -> u16 {
        match self {
            Component::Registry => 8500,
            Component::User => user_service::INFO.default_port,
            Component::Product => product_service::INFO.default_port,
            Component::Metadata => metadata_service::INFO.default_port,
            Component::Rating => rating_service::INFO.default_port,
            Component::Movie => movie_service::INFO.default_port,
        }
    }

    /// Looks a component up by the name it runs as.
    pub fn from_name(name: &str) -> Option<Component> {
        <Component as clap::ValueEnum>::from_str(name, false).ok()
    }

    /// Runs the component in this process with `args` (its flags, without a program name), as
    /// its own binary would: until SIGINT/SIGTERM, or a `healthcheck`.
    ///
    /// # Errors
    ///
    /// Whatever the component's own `main` would fail with.
    pub async fn run(self, args: Vec<OsString>) -> anyhow::Result<()> {
        let argv = std::iter::once(OsString::from(self.name())).chain(args);
        match self {
            Component::Registry => dev_registry::cli::Cli::parse_from(argv).run().await,
            Component::User => user_service::cli::Cli::parse_from(argv).run().await,
            Component::Product => product_service::cli::Cli::parse_from(argv).run().await,
            Component::Metadata => metadata_service::cli::Cli::parse_from(argv).run().await,
            Component::Rating => rating_service::cli::Cli::parse_from(argv).run().await,
            Component::Movie => movie_service::cli::Cli::parse_from(argv).run().await,
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ports_are_distinct() {
        let mut ports = std::collections::BTreeSet::new();
        for component in std::iter::once(Component::Registry).chain(Component::SERVICES) {
            assert_eq!(Component::from_name(component.name()), Some(component));
            assert!(ports.insert(component.default_port()), "{component}");
        }
        assert_eq!(Component::from_name("nope"), None);
    }
}
