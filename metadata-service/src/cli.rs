//! The `metadata-service` command line: the shared service flags plus the `healthcheck` subcommand.
//!
//! It is in the library, not in `main.rs`, because `devstack` parses the same command line when it
//! runs this service as one of its child processes.

use clap::Parser;
use common::config::ServiceArgs;
use common::launch::Command;

use crate::INFO;

/// Movie metadata, on warp.
#[derive(Debug, Parser)]
#[command(name = "metadata-service", version, about)]
pub struct Cli {
    /// Something other than serving.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags every service shares.
    #[command(flatten)]
    pub service: ServiceArgs,
}

impl Cli {
    /// Does what the command line says: serve until SIGINT/SIGTERM, or probe `/health`.
    ///
    /// # Errors
    ///
    /// Bad configuration, a port that cannot be bound, a serving error or a failed probe.
    pub async fn run(self) -> anyhow::Result<()> {
        common::launch::launch(
            INFO,
            self.command,
            self.service,
            |config, listener, registry| {
                crate::run(config, listener, registry, common::shutdown::signal())
            },
        )
        .await
    }
}
