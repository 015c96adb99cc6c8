//! Logging setup shared by every binary: `tracing` with `RUST_LOG` and `LOG_FORMAT=json|pretty`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Log filter used when `RUST_LOG` is unset: our own events at info, the frameworks' chatter
/// (Rocket's launch banner, actix's worker notices, warp's per-request pair, which the
/// service's own "served" line replaces) only when it is a warning.
pub const DEFAULT_FILTER: &str =
    "info,rocket=warn,actix_server=warn,hyper=warn,warp::filters::trace=warn";

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event; coloured only when stdout is a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Installs the global subscriber. Call once, first thing in `main`.
///
/// # Errors
///
/// Fails if `RUST_LOG` does not parse or a subscriber is already installed.
pub fn init(format: LogFormat) -> anyhow::Result<()> {
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(directives)?,
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        // A log line that cannot be written (stdout is a pipe whose reader died: a supervisor
        // killed, `| head`) is dropped. Reporting it would `eprintln!`, which panics on a
        // broken stderr too, and take the service down before it could deregister.
        .log_internal_errors(false);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        // Escape codes only for a terminal: in a pipe, a file or `docker logs` they are noise.
        LogFormat::Pretty => builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
    }
    .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}
