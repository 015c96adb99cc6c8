//! Serving the API on a listener until a shutdown future resolves, and the
//! [`RunningRegistry`] handle that tests and launchers use.

mod listener;

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::listener::KillableListener;
use crate::options::Options;
use crate::state::Registry;
use crate::{api, checks};

/// How long [`RunningRegistry::spawn_on`] retries a port that is still held. After
/// [`RunningRegistry::kill`] the aborted server task releases its socket on the
/// runtime's next turn, so an immediate restart may briefly see `AddrInUse`.
const REBIND_PATIENCE: Duration = Duration::from_secs(2);

/// Pause between bind attempts.
const REBIND_PAUSE: Duration = Duration::from_millis(20);

/// Serves the registry on `listener` until `shutdown` resolves.
///
/// Shutdown is graceful: blocking queries in flight return at once with the current
/// data, idle connections close, and the function returns once every connection is
/// done and the listener is closed. Check runners stop with it.
///
/// # Errors
///
/// Only if the listener's local address cannot be read.
pub async fn serve(
    listener: TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let registry = Registry::new(options, advertise_address(listener.local_addr()?));
    let listener = KillableListener::new(listener, CancellationToken::new());
    serve_with(listener, registry, shutdown).await
}

/// Serves `registry` on `listener` until `shutdown`; see [`serve`].
async fn serve_with(
    listener: KillableListener,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let reaper = checks::spawn_reaper(registry.clone());
    let signal = {
        let registry = registry.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down");
            // Wakes blocking queries so that their connections can finish.
            registry.closing().cancel();
        }
    };
    let result = axum::serve(listener, api::router(registry.clone()))
        .with_graceful_shutdown(signal)
        .await;
    registry.close();
    reaper.abort();
    result
}

/// The node address to advertise for a listener: its own IP, or 127.0.0.1 when bound
/// to all interfaces, as `consul agent -dev` does (§4.5, §9.1).
fn advertise_address(local: SocketAddr) -> IpAddr {
    if local.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        local.ip()
    }
}

/// A registry serving in the background, for tests and the devstack launcher.
#[derive(Debug)]
pub struct RunningRegistry {
    /// The bound address.
    addr: SocketAddr,
    /// The registry state (for the request count and for `kill`).
    registry: Registry,
    /// Cuts every connection.
    kill: CancellationToken,
    /// Starts a graceful shutdown.
    stop: Option<oneshot::Sender<()>>,
    /// The server task.
    task: Option<JoinHandle<io::Result<()>>>,
}

impl RunningRegistry {
    /// Starts a registry on `127.0.0.1:0`.
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound.
    pub async fn spawn(options: Options) -> io::Result<Self> {
        Self::spawn_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), options).await
    }

    /// Starts a registry on `addr`; binding the port of a registry that was just shut
    /// down or killed works (a "restarted registry", with fresh state and indexes).
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound (after retrying briefly if the port is in use).
    pub async fn spawn_on(addr: SocketAddr, options: Options) -> io::Result<Self> {
        let listener = bind(addr).await?;
        let addr = listener.local_addr()?;
        let registry = Registry::new(options, advertise_address(addr));
        let kill = CancellationToken::new();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(
            KillableListener::new(listener, kill.clone()),
            registry.clone(),
            async move {
                // A dropped sender also means "stop".
                let _ = stopped.await;
            },
        ));
        tracing::info!(url = %format!("http://{addr}"), "dev-registry listening");
        Ok(Self {
            addr,
            registry,
            kill,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:8500`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// HTTP requests served so far (the status page's own polling excluded).
    pub fn request_count(&self) -> u64 {
        self.registry.request_count()
    }

    /// Shuts down gracefully and returns once the port is free.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "registry stopped with an error"),
                Err(e) => tracing::warn!(error = %e, "registry task failed"),
            }
        }
    }

    /// Stops at once, like `kill -9`: every connection is reset, in-flight requests get
    /// no response, check runners stop.
    pub fn kill(mut self) {
        self.kill_now();
    }

    /// The body of [`kill`](Self::kill), also used on drop.
    fn kill_now(&mut self) {
        self.kill.cancel();
        self.registry.close();
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.stop = None;
    }
}

impl Drop for RunningRegistry {
    /// A registry dropped without `shutdown` or `kill` (say, by a failing test) is killed.
    fn drop(&mut self) {
        if self.task.is_some() {
            self.kill_now();
        }
    }
}

/// Binds `addr`, retrying for a short while if a fixed port is still in use.
async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let deadline = tokio::time::Instant::now() + REBIND_PATIENCE;
    loop {
        match TcpListener::bind(addr).await {
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse
                    && addr.port() != 0
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(REBIND_PAUSE).await;
            }
            result => return result,
        }
    }
}
