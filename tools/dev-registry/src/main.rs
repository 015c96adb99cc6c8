//! `dev-registry`: runs the registry until SIGINT or SIGTERM.

use anyhow::Context as _;
use clap::Parser as _;
use dev_registry::cli::Cli;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let listener = tokio::net::TcpListener::bind(cli.listen_addr())
        .await
        .with_context(|| format!("binding {}", cli.listen_addr()))?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!(%url, ui = %format!("{url}/ui/"), acl = cli.token.is_some(), "dev-registry listening");
    dev_registry::serve(listener, cli.options(), shutdown_signal())
        .await
        .context("serving")
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
