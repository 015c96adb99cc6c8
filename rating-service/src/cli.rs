//! The `rating-service` command line: the shared service flags, where ratings are kept, and the
//! `healthcheck` subcommand.
//!
//! It is in the library, not in `main.rs`, because `devstack` parses the same command line when it
//! runs this service as one of its child processes.

use clap::Parser;
use common::config::ServiceArgs;
use common::launch::Command;

use crate::{INFO, StorageArgs};

/// Ratings of movies (and any other record), on poem.
#[derive(Debug, Parser)]
#[command(name = "rating-service", version, about)]
pub struct Cli {
    /// Something other than serving.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags every service shares.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Where ratings are kept.
    #[command(flatten)]
    pub storage: StorageArgs,
}

impl Cli {
    /// Does what the command line says: serve until SIGINT/SIGTERM, or probe `/health`.
    ///
    /// # Errors
    ///
    /// Bad configuration, a port that cannot be bound, a serving error or a failed probe.
    pub async fn run(self) -> anyhow::Result<()> {
        let storage = self.storage;
        common::launch::launch(
            INFO,
            self.command,
            self.service,
            |config, listener, registry| async move {
                // Resolved only to serve: `healthcheck` needs no database.
                let storage = storage.into_config()?;
                crate::run(
                    config,
                    storage,
                    listener,
                    registry,
                    common::shutdown::signal(),
                )
                .await
            },
        )
        .await
    }
}
