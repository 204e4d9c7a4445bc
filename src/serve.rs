//! Serving HTTP on a listener without letting clients exhaust the daemon: at most
//! `max_connections` at once (one over it is closed at once, counted and now and then logged;
//! an `accept` that fails, out of descriptors, counted and logged likewise), a time limit for a
//! request's headers (slow or silent clients), an idle limit for kept-alive connections, and a
//! graceful shutdown that lets requests in progress finish. A client that stops reading an answer
//! is cut after the idle limit without a byte written, mid-answer, and whatever the answer was
//! streaming from (a proxied upstream connection) is dropped with it. The descriptor limit is
//! raised at start and the connection cap kept within [`crate::budget`], so checks, the outbox
//! and alert delivery always have descriptors left.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;

/// The pause after `accept` fails (out of descriptors), so the loop does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// How one listener treats its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may stay idle.
    pub idle_timeout: Duration,
}

/// Raises the soft descriptor limit to the hard one; returns the soft limit now (`None` where
/// the system has none to tell).
pub fn raise_descriptor_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(failure) => {
            warn!("cannot raise the open-file limit: {failure}");
            None
        }
    }
}

/// Serves `router` on `listener` within `limits` until `stopping` turns true; then stops
/// accepting and waits for the open connections to finish what they are doing (the caller
/// bounds the wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    stopping: watch::Receiver<bool>,
) -> io::Result<()> {
    serve_with(
        listener,
        TowerToHyperService::new(router),
        limits,
        metrics,
        stopping,
    )
    .await
}

/// As [`serve`], each request carrying its client's address
/// (`axum::extract::ConnectInfo<SocketAddr>`), for the routes that throttle by address.
pub async fn serve_telling_peers(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    stopping: watch::Receiver<bool>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let service = TowerToHyperService::new(router);
    let peers = Peers::Told;
    let lane = HyperOnly;
    serve_shared(
        listener,
        (service, lane),
        limits,
        permits,
        metrics,
        stopping,
        peers,
    )
    .await
}

/// What becomes of a connection once the lane that served it first is done with it.
#[derive(Debug)]
pub(crate) enum Handover {
    /// Closed, or to be closed.
    Closed,
    /// hyper serves the rest of it, starting with these bytes, already read.
    Hyper(bytes::Bytes),
}

/// What serves a connection before hyper does (the proxy's fast lane), if anything.
pub(crate) trait FirstLane: Clone + Send + Sync + 'static {
    /// Serves `stream` for as long as it carries its requests, within `limits`, taking no new
    /// one once `closed` turns true; what becomes of the connection then.
    fn serve(
        &self,
        stream: &mut TcpStream,
        limits: Limits,
        closed: &mut watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = Handover> + Send;
}

/// No lane before hyper: it serves every connection from its first byte.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HyperOnly;

impl FirstLane for HyperOnly {
    async fn serve(
        &self,
        _stream: &mut TcpStream,
        _limits: Limits,
        _closed: &mut watch::Receiver<bool>,
    ) -> Handover {
        Handover::Hyper(bytes::Bytes::new())
    }
}

/// Whether each request is told its client's address (as `ConnectInfo<SocketAddr>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peers {
    /// Not told (the proxy: no work per request for it).
    Untold,
    /// Told (the API: tokens are throttled by address).
    Told,
}

/// [`serve`] with a hyper `service` of its own (the proxy's, without a router in between).
pub async fn serve_with<S, B>(
    listener: TcpListener,
    service: S,
    limits: Limits,
    metrics: Arc<Metrics>,
    stopping: watch::Receiver<bool>,
) -> io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    serve_shared(
        listener,
        (service, HyperOnly),
        limits,
        permits,
        metrics,
        stopping,
        Peers::Untold,
    )
    .await
}

/// [`serve_with`], the connection cap (`permits`) shared with other listeners serving the same
/// socket (the proxy's threads, [`crate::proxy_threads`]), each connection served by `lane`
/// first, then by hyper with `service`.
pub(crate) async fn serve_shared<S, B, L>(
    listener: TcpListener,
    (service, lane): (S, L),
    limits: Limits,
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    mut stopping: watch::Receiver<bool>,
    peers: Peers,
) -> io::Result<()>
where
    L: FirstLane,
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut accept_warning = NowAndThen::default();
    let mut cap_warning = NowAndThen::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => (stream, (peers == Peers::Told).then_some(peer)),
            Err(failure) => {
                // Out of descriptors, most likely: our own shortage, counted; said now and
                // then; and a breath.
                metrics.accept_failed();
                if accept_warning.due() {
                    warn!("cannot accept a connection (breakerd's own shortage): {failure}");
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            metrics.connection_refused();
            if cap_warning.due() {
                warn!(
                    max_connections = limits.max_connections,
                    "connections over server.max_connections are being closed at once"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (service, metrics, closed) = (service.clone(), Arc::clone(&metrics), closed.clone());
        let lane = lane.clone();
        connections.spawn(async move {
            metrics.connection_opened(1);
            let service = WithPeer {
                inner: service,
                peer,
            };
            connection(stream, (service, lane), limits, closed).await;
            metrics.connection_opened(-1);
            drop(permit);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    if !connections.is_empty() {
        info!(
            open = connections.len(),
            "waiting for open HTTP connections to finish"
        );
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A connection's service, telling each request the client's address when it is known.
#[derive(Clone)]
struct WithPeer<S> {
    inner: S,
    peer: Option<SocketAddr>,
}

impl<S> Service<Request<Incoming>> for WithPeer<S>
where
    S: Service<Request<Incoming>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        self.inner.call(request)
    }
}

/// A warning said at most every ten seconds.
#[derive(Debug, Default)]
struct NowAndThen(Option<Instant>);

impl NowAndThen {
    /// Whether to say it now (and if so, the clock starts again).
    fn due(&mut self) -> bool {
        let due = self
            .0
            .is_none_or(|at| at.elapsed() > Duration::from_secs(10));
        if due {
            self.0 = Some(Instant::now());
        }
        due
    }
}

/// One connection: HTTP/1.1 with keep-alive, closed after `idle_timeout` without a byte in
/// either direction, or when the server shuts down — gracefully, so a request in progress
/// finishes first. A client that has stopped reading (the last write is waiting for it) is cut
/// after `idle_timeout` of that, graceful or not: the answer it was sent, and the upstream
/// connection a proxied answer streams from, are dropped with the connection.
async fn connection<S, B, L>(
    stream: TcpStream,
    (service, lane): (S, L),
    limits: Limits,
    mut closed: watch::Receiver<bool>,
) where
    L: FirstLane,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut stream = stream;
    let read = match lane.serve(&mut stream, limits, &mut closed).await {
        Handover::Closed => return,
        Handover::Hyper(read) => read,
    };
    let activity = Arc::new(AtomicU64::new(0));
    let blocked = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let io = TokioIo::new(Activity {
        read,
        inner: stream,
        last: Arc::clone(&activity),
        blocked: Arc::clone(&blocked),
        origin: started,
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let last_activity = || started + Duration::from_millis(activity.load(Ordering::Relaxed));
    let mut shutting_down = false;
    // The next look at the connection is never before this (once it is shutting down
    // gracefully and still moving, it is looked at again an idle limit later).
    let mut not_before = started;
    loop {
        let due = (last_activity() + limits.idle_timeout).max(not_before);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(failure) = result {
                    debug!("HTTP connection ended: {failure}");
                }
                return;
            }
            () = tokio::time::sleep_until(due) => {
                let now = Instant::now();
                if last_activity() + limits.idle_timeout > now {
                    continue;
                }
                if blocked.load(Ordering::Relaxed) {
                    debug!(
                        idle_ms = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX),
                        "the client stopped reading its answer; the connection is cut"
                    );
                    return;
                }
                if !shutting_down {
                    conn.as_mut().graceful_shutdown();
                    shutting_down = true;
                }
                not_before = now + limits.idle_timeout;
            }
            _ = closed.wait_for(|closed| *closed), if !shutting_down => {
                conn.as_mut().graceful_shutdown();
                shutting_down = true;
            }
        }
    }
}

pin_project! {
    /// A stream that notes when it last moved a byte, for the idle limit, and whether its
    /// last write is waiting for the peer to read. Bytes already read from it (by the lane
    /// that served it first) are read again first.
    struct Activity<S> {
        read: bytes::Bytes,
        #[pin]
        inner: S,
        last: Arc<AtomicU64>,
        blocked: Arc<AtomicBool>,
        origin: Instant,
    }
}

impl<S> Activity<S> {
    fn touch(last: &AtomicU64, origin: Instant) {
        let millis = u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(millis, Ordering::Relaxed);
    }
}

impl<S: AsyncRead> AsyncRead for Activity<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if !this.read.is_empty() {
            let length = this.read.len().min(buf.remaining());
            buf.put_slice(&this.read.split_to(length));
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            Self::touch(this.last, *this.origin);
        }
        result
    }
}

impl<S: AsyncWrite> AsyncWrite for Activity<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.inner.poll_write(cx, data);
        this.blocked.store(result.is_pending(), Ordering::Relaxed);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            Self::touch(this.last, *this.origin);
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let result = this.inner.poll_flush(cx);
        this.blocked.store(result.is_pending(), Ordering::Relaxed);
        result
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
