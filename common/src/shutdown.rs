//! One shutdown signal every framework can consume: a future that resolves on SIGINT or SIGTERM.
//!
//! All five frameworks accept "a future that completes when it is time to stop" (axum's and
//! warp's graceful shutdown, poem's `run_with_graceful_shutdown`, actix's `shutdown_signal`, and a
//! task calling Rocket's `Shutdown::notify`), so that is the one shape we hand out.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The future handed to a framework: resolves once shutdown starts.
pub type Stopping = WaitForCancellationFutureOwned;

/// Resolves when the process receives SIGINT (Ctrl-C) or SIGTERM (`docker stop`, `kill`).
///
/// The handlers are installed when this is *called*, not when the future is first polled, so a
/// signal that arrives in between (while a supervisor is still starting its children, say) is
/// kept for the future instead of killing the process by the default action. Call it inside a
/// tokio runtime.
///
/// Installing our own handlers matters when running as PID 1 in a container: the kernel gives
/// PID 1 no default action for SIGTERM, so without a handler `docker stop` waits out its grace
/// period and then SIGKILLs us, skipping deregistration.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            tokio::select! {
                () = receive(interrupt, "SIGINT") => tracing::info!(signal = "SIGINT", "shutdown requested"),
                () = receive(terminate, "SIGTERM") => tracing::info!(signal = "SIGTERM", "shutdown requested"),
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => tracing::info!(signal = "Ctrl-C", "shutdown requested"),
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for Ctrl-C");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// The next delivery of one signal; never, if its handler could not be installed.
#[cfg(unix)]
async fn receive(stream: std::io::Result<tokio::signal::unix::Signal>, name: &str) {
    match stream {
        Ok(mut stream) => {
            stream.recv().await;
        }
        Err(e) => {
            tracing::error!(error = %e, signal = name, "cannot listen for the signal");
            std::future::pending::<()>().await;
        }
    }
}

/// A cancellation token with a `Send + 'static` future, handed to whichever framework runs.
///
/// # Examples
///
/// ```
/// let stop = common::shutdown::Trigger::new();
/// let for_server = stop.wait(); // give this to axum, warp, poem, actix or Rocket
/// stop.fire();
/// # drop(for_server);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Trigger {
    token: CancellationToken,
}

impl Trigger {
    /// A trigger that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the trigger; every [`Trigger::wait`] future resolves.
    pub fn fire(&self) {
        self.token.cancel();
    }

    /// Whether the trigger has fired.
    pub fn fired(&self) -> bool {
        self.token.is_cancelled()
    }

    /// A future that resolves once the trigger fires.
    pub fn wait(&self) -> Stopping {
        self.token.clone().cancelled_owned()
    }

    /// The underlying token, for code that selects on cancellation.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// Runs `server` to completion, but no longer than `grace` after `stop` fires.
///
/// axum's and warp's graceful shutdown wait without limit for open connections (a client that
/// sent half a request keeps them alive forever), so every server is bounded by this.
/// Returns `None` when the grace period ran out.
pub async fn with_grace<F: Future>(
    server: F,
    stop: &Trigger,
    grace: Duration,
) -> Option<F::Output> {
    tokio::pin!(server);
    tokio::select! {
        out = &mut server => Some(out),
        () = async { stop.wait().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "grace period over; dropping open connections");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn a_signal_sent_before_the_first_poll_is_kept() {
        let stop = signal();
        // Unhandled, SIGTERM would end this test process at once.
        let sent = std::process::Command::new("kill")
            .args(["-s", "TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(10), stop)
            .await
            .expect("the signal was lost");
    }

    #[tokio::test(start_paused = true)]
    async fn with_grace_bounds_a_server_that_never_drains() {
        let stop = Trigger::new();
        stop.fire();
        let out = with_grace(std::future::pending::<()>(), &stop, Duration::from_secs(10)).await;
        assert!(out.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn with_grace_returns_the_server_result_when_it_drains() {
        let stop = Trigger::new();
        let server = {
            let wait = stop.wait();
            async move {
                wait.await;
                7
            }
        };
        stop.fire();
        assert_eq!(
            with_grace(server, &stop, Duration::from_secs(10)).await,
            Some(7)
        );
    }
}
