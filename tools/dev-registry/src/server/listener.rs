//! A TCP listener whose connections can all be cut at once, to emulate `kill -9`.
//!
//! axum serves each connection on its own task, so aborting the server task alone would
//! leave accepted connections open. Every accepted stream here watches a kill token:
//! once it fires, any further read or write fails and the socket is closed with
//! `SO_LINGER` 0, so clients see a connection reset rather than a clean response.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Pause after an accept error that is not about one connection (e.g. out of file
/// descriptors), as axum's own listener does, so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// A [`TcpListener`] handing out [`KillableStream`]s.
#[derive(Debug)]
pub(crate) struct KillableListener {
    /// The socket.
    inner: TcpListener,
    /// Cuts every connection when cancelled.
    kill: CancellationToken,
}

impl KillableListener {
    /// Wraps `listener`; cancelling `kill` resets every connection it accepted.
    pub(crate) fn new(listener: TcpListener, kill: CancellationToken) -> Self {
        Self {
            inner: listener,
            kill,
        }
    }
}

impl axum::serve::Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Small JSON responses; do not let Nagle delay them.
                    let _ = stream.set_nodelay(true);
                    return (KillableStream::new(stream, self.kill.clone()), addr);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => {
                    tracing::error!(error = %e, "accept error");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted connection that fails all I/O once the kill token fires.
#[derive(Debug)]
pub(crate) struct KillableStream {
    /// The socket.
    inner: TcpStream,
    /// Resolves when the registry is killed.
    killed: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Set once the kill was observed.
    dead: bool,
}

impl KillableStream {
    /// Wraps an accepted stream.
    fn new(inner: TcpStream, kill: CancellationToken) -> Self {
        Self {
            inner,
            killed: Box::pin(kill.cancelled_owned()),
            dead: false,
        }
    }

    /// Fails once the registry was killed (and registers for that wake-up otherwise).
    fn alive(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.dead && self.killed.as_mut().poll(cx).is_ready() {
            self.dead = true;
            // Reset instead of a graceful FIN, like a killed process.
            let _ = self.inner.set_zero_linger();
        }
        if self.dead {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "registry killed",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.alive(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.alive(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.alive(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.alive(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.alive(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
