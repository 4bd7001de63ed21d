//! The HTTP server the controller's ports run on (the API router of [`super::api`], the
//! metrics router and the admission webhook's): hyper's HTTP/1 server (plain HTTP, like
//! Bitnami's, meant to be reached through the API server's service proxy; TLS with rustls for
//! the webhook, [`serve_tls_listener`]) with Go's `http.Server` timeouts and connection
//! limits. It knows nothing of the routes it serves.
//!
//! - `--read-timeout` bounds reading the request head (hyper's header timeout, which also
//!   closes idle keep-alive connections, like Go's IdleTimeout defaulting to ReadTimeout) and
//!   the body;
//! - `--write-timeout` bounds the handler, and a write that makes no progress for that long
//!   closes the connection. A timed-out handler closes the connection without a response, as
//!   Go's does;
//! - connections (anyone in the cluster can reach these ports): at most [`MAX_CONNECTIONS`]
//!   open, [`MAX_CONNECTIONS_PER_PEER`] from one address (further ones are closed at once), so
//!   a few slow clients cannot hold every connection and fail the probes;
//! - each request carries its TCP peer ([`PeerAddr`]) for the handlers' rate limits;
//! - shutdown stops accepting, lets in-flight requests finish and closes idle connections.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};

use crate::shutdown::SHUTDOWN_DRAIN;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::Sleep;
use tower::ServiceExt;

/// Open connections at most, per server; further ones are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 1024;

/// Open connections at most from one peer address.
pub const MAX_CONNECTIONS_PER_PEER: usize = 64;

/// Longest TLS handshake ([`serve_tls_listener`]); the read timeout when that is shorter.
pub const MAX_HANDSHAKE: Duration = Duration::from_secs(10);

/// The TCP peer of a request, put into its extensions by [`serve_listener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Timeouts of an HTTP server (`--read-timeout`, `--write-timeout`; zero turns one off).
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Reading a request: its head (and idle keep-alive time) and its body.
    pub read_timeout: Duration,
    /// Running the handler; also the longest a response write may stall.
    pub write_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            read_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(120),
        }
    }
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// Serves `router` on an already bound listener until `shutdown` completes, then stops
/// accepting, closes idle connections and waits for in-flight requests (at most the read plus
/// the write timeout, which bound any request). Returns Ok after a graceful stop.
pub async fn serve_listener(
    listener: TcpListener,
    router: Router,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    serve(listener, router, opts, None, shutdown).await
}

/// The TLS configuration a TLS listener serves with; a new value (a renewed certificate) is
/// used from the next connection on. `None` until there is one: connections are closed.
pub type TlsConfigs = tokio::sync::watch::Receiver<Option<Arc<rustls::ServerConfig>>>;

/// [`serve_listener`] over TLS (the admission webhook's port): each connection's handshake
/// runs in its own task, bounded by [`MAX_HANDSHAKE`] (or the shorter read timeout), with the
/// configuration `tls` holds when it is accepted. The same connection limits and timeouts apply.
pub async fn serve_tls_listener(
    listener: TcpListener,
    router: Router,
    opts: ServeOptions,
    tls: TlsConfigs,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    serve(listener, router, opts, Some(tls), shutdown).await
}

async fn serve(
    listener: TcpListener,
    router: Router,
    opts: ServeOptions,
    tls: Option<TlsConfigs>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let read_timeout = nonzero(opts.read_timeout);
    let write_timeout = nonzero(opts.write_timeout);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(ConnectionCount::default());
    let mut backoff = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    backoff = Duration::ZERO;
                    conn
                }
                Err(e) => {
                    // Go's Serve: back off 5 ms, doubling up to 1 s, on accept errors (EMFILE).
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                    tracing::warn!("accept error: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // As Go's net/http does: no Nagle delay between a response's head and body, which
        // a client's delayed ACK would turn into 40 ms per request.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let Some(slot) = connections.clone().open(peer.ip()) else {
            tracing::debug!(peer = %peer.ip(), "too many connections: closed");
            drop(stream);
            continue;
        };
        let service = service(router.clone(), peer, read_timeout, write_timeout);
        let watcher = graceful.watcher();
        let builder = builder.clone();
        match &tls {
            None => {
                let io = TokioIo::new(WriteDeadline::new(stream, write_timeout));
                let conn = watcher.watch(builder.serve_connection(io, service));
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = conn.await {
                        tracing::debug!("connection closed: {e}");
                    }
                });
            }
            Some(configs) => {
                let Some(config) = configs.borrow().clone() else {
                    tracing::debug!("no serving certificate yet: connection closed");
                    continue;
                };
                let handshake_timeout =
                    read_timeout.map_or(MAX_HANDSHAKE, |r| r.min(MAX_HANDSHAKE));
                tokio::spawn(async move {
                    let _slot = slot;
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    let stream = match tokio::time::timeout(
                        handshake_timeout,
                        acceptor.accept(WriteDeadline::new(stream, write_timeout)),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer.ip(), "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(peer = %peer.ip(), "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn =
                        watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
                    if let Err(e) = conn.await {
                        tracing::debug!("connection closed: {e}");
                    }
                });
            }
        }
    }
    drop(listener);
    let drain = graceful.shutdown();
    // Open requests get their timeouts, but never more than SHUTDOWN_DRAIN: the whole process
    // must end well inside Kubernetes' 30 s grace period (docs/controller.md, "Faults and shutdown").
    let bound = read_timeout
        .zip(write_timeout)
        .map_or(SHUTDOWN_DRAIN, |(r, w)| (r + w).min(SHUTDOWN_DRAIN));
    if tokio::time::timeout(bound, drain).await.is_err() {
        tracing::warn!("shutdown: connections still open after {bound:?}; closing them");
    }
    Ok(())
}

/// One connection's request handler: the router, with the peer in each request's extensions,
/// the body read deadline and the handler's write timeout.
fn service(
    router: Router,
    peer: SocketAddr,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = io::Error,
    Future = impl Future<Output = Result<axum::response::Response, io::Error>> + Send,
> + Clone {
    hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let router = router.clone();
        async move {
            let mut req = req.map(|body| Body::new(DeadlineBody::new(body, read_timeout)));
            req.extensions_mut().insert(PeerAddr(peer));
            let handle = router.oneshot(req);
            match write_timeout {
                Some(t) => match tokio::time::timeout(t, handle).await {
                    Ok(r) => r.map_err(|never| match never {}),
                    // An error closes the connection without a response, as Go does.
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "handler exceeded the write timeout",
                    )),
                },
                None => handle.await.map_err(|never| match never {}),
            }
        }
    })
}

/// Open connections, in all and per peer address ([`MAX_CONNECTIONS`],
/// [`MAX_CONNECTIONS_PER_PEER`]).
#[derive(Debug, Default)]
struct ConnectionCount {
    per_peer: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One open connection; counted until it drops.
struct ConnectionSlot {
    count: Arc<ConnectionCount>,
    peer: IpAddr,
}

impl ConnectionCount {
    fn open(self: Arc<Self>, peer: IpAddr) -> Option<ConnectionSlot> {
        {
            let mut g = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
            let (total, map) = &mut *g;
            let n = map.get(&peer).copied().unwrap_or(0);
            if *total >= MAX_CONNECTIONS || n >= MAX_CONNECTIONS_PER_PEER {
                return None;
            }
            *total += 1;
            map.insert(peer, n + 1);
        }
        Some(ConnectionSlot { count: self, peer })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut g = self
            .count
            .per_peer
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (total, map) = &mut *g;
        *total -= 1;
        if let Some(n) = map.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.peer);
            }
        }
    }
}

/// A request body that fails once the read timeout has passed since the request arrived.
struct DeadlineBody {
    inner: Incoming,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Option<Duration>) -> Self {
        DeadlineBody {
            inner,
            deadline: timeout.map(|t| Box::pin(tokio::time::sleep(t))),
        }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(deadline) = this.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                let e = io::Error::new(io::ErrorKind::TimedOut, "request body read timeout");
                return Poll::Ready(Some(Err(e.into())));
            }
        }
        Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&self.inner)
    }
}

/// A connection whose writes fail when they make no progress for the write timeout (a client
/// that stops reading cannot hold a connection open forever).
struct WriteDeadline<S> {
    inner: S,
    timeout: Option<Duration>,
    stalled_since: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, timeout: Option<Duration>) -> Self {
        WriteDeadline {
            inner,
            timeout,
            stalled_since: None,
        }
    }

    /// Called when a write is pending: starts the stall timer or reports that it ran out.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let Some(timeout) = self.timeout else {
            return Poll::Pending;
        };
        let timer = self
            .stalled_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(
        &mut self,
        r: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.stalled_since = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.stalled(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progressed(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progressed(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.progressed(r, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progressed(r, cx)
    }
}
