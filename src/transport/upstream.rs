//! The proxy's upstream connections: opened as checks open theirs ([`super::connection`]: the
//! name resolved off the runtime, Happy Eyeballs, rustls) and kept idle in pools of their own,
//! one per proxy thread, for `idle_timeout` at most and at most `idle_per_host` per upstream
//! (swept even when no call comes). The proxy's fast lane writes and reads them itself
//! ([`UpstreamClient::lease`]); any other request goes out through hyper's HTTP/1.1 client
//! connection on one ([`UpstreamClient::send`]), driven by the task that waits on it — the
//! exchange while the answer's head comes, then the answer's body as it streams — and the
//! stream goes back to the pool when the body has been read whole. Redirects are passed back,
//! never followed.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::HeaderValue;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::outcome::FailureReason;

use super::connection::{Connection, Connector, Origin, Stream, TransportError};
use super::tls::{Alpn, Sessions, client_config};
use super::{ClientError, ProxyPool, Trust};

/// A forwarded request, its body streamed from the client, its URI in origin form.
pub(crate) type UpstreamRequest = http::Request<Body>;

/// Why a forwarded request got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// No connection could be opened (the name, TCP, TLS).
    #[error("{0}")]
    Open(#[source] TransportError),
    /// The exchange on the connection failed.
    #[error("{0}")]
    Exchange(#[source] hyper::Error),
    /// Writing the request or reading the answer failed (the proxy's fast lane).
    #[error("{0}")]
    Io(#[source] std::io::Error),
    /// The connection closed before the answer was complete.
    #[error("connection closed before message completed")]
    Closed,
    /// The answer was not HTTP the proxy can pass on.
    #[error("{0}")]
    Malformed(&'static str),
}

impl UpstreamError {
    /// The bounded reason for this failure.
    pub(crate) fn reason(&self) -> FailureReason {
        match self {
            UpstreamError::Open(error) => error.reason(),
            UpstreamError::Exchange(error) => super::reason::hyper_reason(error),
            UpstreamError::Io(error) => {
                super::reason::io_reason(error.kind()).unwrap_or(FailureReason::Reset)
            }
            UpstreamError::Closed => FailureReason::Reset,
            UpstreamError::Malformed(_) => FailureReason::Protocol,
        }
    }
}

/// Where a service's proxied calls go: its upstream's origin (the pool's key), its URL (for
/// the name and the certificate) and the `Host` header its requests carry, with the client
/// they go out with. Built once, with the service.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    client: UpstreamClient,
    key: PoolKey,
    url: url::Url,
    host: HeaderValue,
}

/// An upstream's origin as the pools file its connections: hashed once, shared, compared whole.
#[derive(Clone, Debug)]
struct PoolKey {
    origin: Arc<Origin>,
    hash: u64,
}

impl PoolKey {
    fn of(origin: Origin) -> Self {
        use std::hash::BuildHasher as _;
        // The same for every service with this origin (one pool, one per-host cap): the keys
        // come from the config, not from the network, so a fixed hasher is safe.
        let hash = BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(&origin);
        Self {
            origin: Arc::new(origin),
            hash,
        }
    }
}

impl PartialEq for PoolKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.origin == other.origin
    }
}

impl Eq for PoolKey {}

impl std::hash::Hash for PoolKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Hashes a [`PoolKey`] by the hash it carries.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

impl Upstream {
    /// The upstream at `url` through `client`, or `None` without a URL or for one that is not
    /// `http`/`https` with a host.
    pub(crate) fn of(client: &UpstreamClient, url: Option<&url::Url>) -> Option<Self> {
        let url = url?;
        let key = PoolKey::of(Origin::of(url)?);
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str()?),
            None => url.host_str()?.to_string(),
        };
        Some(Self {
            client: client.clone(),
            key,
            url: url.clone(),
            host: HeaderValue::from_str(&host).ok()?,
        })
    }

    /// The `Host` header requests to it carry: its host and port (any user information left
    /// out).
    pub(crate) fn host_header(&self) -> &HeaderValue {
        &self.host
    }

    /// Its host, as failures name it.
    pub(crate) fn host(&self) -> &str {
        &self.key.origin.host
    }

    /// A connection to it ([`UpstreamClient::lease`]).
    pub(crate) async fn lease(&self, fresh: bool) -> Result<Lease, TransportError> {
        self.client.lease(self, fresh).await
    }

    /// `request` sent to it through hyper's client ([`UpstreamClient::send`]).
    pub(crate) async fn send(
        &self,
        request: UpstreamRequest,
    ) -> Result<http::Response<UpstreamBody>, UpstreamError> {
        self.client.send(self, request).await
    }
}

/// The proxy's client over one root store: a pool of idle connections for each proxy thread
/// (and one for any other thread), so a request goes out on a connection its own thread drives
/// ([`crate::proxy_threads`]). Cheap to clone (the pools are shared).
#[derive(Clone)]
pub(crate) struct UpstreamClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UpstreamClient")
            .field("idle_timeout", &self.shared.idle_timeout)
            .field("idle_per_host", &self.shared.idle_per_host)
            .finish_non_exhaustive()
    }
}

struct Shared {
    connector: Connector,
    idle_timeout: Duration,
    /// Idle connections kept per upstream in each pool (the budget's share of one thread).
    idle_per_host: usize,
    /// Indexed by [`crate::proxy_threads::pool_index`].
    pools: Box<[Mutex<Pool>]>,
}

/// One thread's idle connections, by upstream, the longest idle first.
#[derive(Default)]
struct Pool {
    idle: HashMap<PoolKey, VecDeque<(Stream, Instant)>, BuildHasherDefault<Prehashed>>,
    /// Whether a sweeper runs for this pool.
    swept: bool,
}

/// A connection to an upstream, lent to one exchange; [`Lease::give_back`] returns it to the
/// pool it came from, and dropping it closes it.
pub(crate) struct Lease {
    pub(crate) stream: Stream,
    /// Whether it carried an exchange before (it may have been closed under the next one).
    pub(crate) reused: bool,
    home: Home,
}

impl Lease {
    /// Back to the pool, for the next exchange: call it only when the last answer has been
    /// read whole and nothing else is owed on the connection.
    pub(crate) fn give_back(self) {
        self.home.take_back(self.stream);
    }
}

impl UpstreamClient {
    /// A client verifying servers against `trust`, keeping idle connections as `pool` says.
    pub(crate) fn new(trust: &Trust, pool: ProxyPool) -> Result<Self, ClientError> {
        let tls = client_config(Arc::clone(trust.verifier()), Alpn::Http1, Sessions::Resumed)?;
        let threads = crate::proxy_threads::count();
        Ok(Self {
            shared: Arc::new(Shared {
                connector: Connector::new(Arc::new(tls)),
                idle_timeout: pool.idle_timeout,
                // The idle connections the budget allows, shared out among the pools.
                idle_per_host: pool.idle_per_host.div_ceil(threads),
                pools: (0..=threads).map(|_| Mutex::default()).collect(),
            }),
        })
    }

    /// A connection to `upstream`: an idle one from this thread's pool (`fresh` false), else
    /// a new one.
    pub(crate) async fn lease(
        &self,
        upstream: &Upstream,
        fresh: bool,
    ) -> Result<Lease, TransportError> {
        let index = crate::proxy_threads::pool_index().min(self.shared.pools.len() - 1);
        let home = Home {
            shared: Arc::downgrade(&self.shared),
            index,
            key: upstream.key.clone(),
        };
        if !fresh && let Some(stream) = self.shared.checkout(index, &upstream.key) {
            return Ok(Lease {
                stream,
                reused: true,
                home,
            });
        }
        // Boxed: opening a connection is rare, and its state large; the call's future stays small.
        let (stream, _) = Box::pin(
            self.shared
                .connector
                .connect(&upstream.url, &upstream.key.origin),
        )
        .await?;
        Ok(Lease {
            stream,
            reused: false,
            home,
        })
    }

    /// Sends `request` (its URI in origin form, its `Host` set) to `upstream` through hyper's
    /// client, on an idle connection of this thread's pool or a new one; the answer's head once
    /// it has arrived, its body streaming from the connection, which goes back to the pool
    /// when the body has been read whole. A request an idle connection closed under before it
    /// went out is sent again on a new one (it never reached the upstream).
    pub(crate) async fn send(
        &self,
        upstream: &Upstream,
        request: UpstreamRequest,
    ) -> Result<http::Response<UpstreamBody>, UpstreamError> {
        let mut request = request;
        let mut fresh = false;
        loop {
            let lease = self
                .lease(upstream, fresh)
                .await
                .map_err(UpstreamError::Open)?;
            let Lease {
                stream,
                reused,
                home,
            } = lease;
            let mut connection = Connection::<Body>::over(stream)
                .await
                .map_err(UpstreamError::Open)?;
            let sent = connection
                .driver
                .alongside(connection.sender.try_send_request(request))
                .await;
            match sent {
                Ok(answer) => {
                    return Ok(answer.map(|body| UpstreamBody {
                        body,
                        connection: Some(connection),
                        home,
                    }));
                }
                Err(mut error) => match error.take_message() {
                    Some(unsent) if reused => {
                        request = unsent;
                        fresh = true;
                    }
                    _ => return Err(UpstreamError::Exchange(error.into_error())),
                },
            }
        }
    }
}

impl Shared {
    /// An idle connection to `origin` that can carry a request now, from pool `index`; those
    /// closed, spoken to, or idle too long are dropped on the way.
    fn checkout(&self, index: usize, key: &PoolKey) -> Option<Stream> {
        let mut pool = self.pools[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // An upstream's list stays while it empties and fills again; the sweeper drops it
        // once it has stayed empty.
        let idle = pool.idle.get_mut(key)?;
        let now = Instant::now();
        while let Some((stream, since)) = idle.pop_back() {
            if since + self.idle_timeout > now && stream.is_quiet() {
                return Some(stream);
            }
        }
        None
    }

    /// Keeps `stream` in pool `index` if there is room (the longest idle makes way); starts the
    /// pool's sweeper if it has none.
    fn checkin(self: &Arc<Self>, index: usize, key: PoolKey, stream: Stream) {
        if self.idle_per_host == 0 {
            return;
        }
        let mut pool = self.pools[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let idle = pool.idle.entry(key).or_default();
        if idle.len() >= self.idle_per_host {
            idle.pop_front();
        }
        idle.push_back((stream, Instant::now()));
        if !pool.swept
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            pool.swept = true;
            runtime.spawn(sweep(Arc::downgrade(self), index));
        }
    }

    /// Drops the connections of pool `index` idle for `idle_timeout`; whether any are left.
    fn sweep(&self, index: usize) -> bool {
        let mut pool = self.pools[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        pool.idle.retain(|_, idle| {
            while idle.front().is_some_and(|(_, since)| {
                now.saturating_duration_since(*since) >= self.idle_timeout
            }) {
                idle.pop_front();
            }
            !idle.is_empty()
        });
        if pool.idle.is_empty() {
            pool.swept = false;
        }
        pool.swept
    }
}

/// Closes pool `index`'s connections once idle for `idle_timeout`, even when no call comes to
/// take one; ends when the pool is empty (the next connection kept starts another) or the
/// client is gone (a reload built another).
async fn sweep(shared: Weak<Shared>, index: usize) {
    let every = match shared.upgrade() {
        Some(shared) => (shared.idle_timeout / 4).max(Duration::from_millis(100)),
        None => return,
    };
    loop {
        tokio::time::sleep(every).await;
        match shared.upgrade() {
            Some(shared) if shared.sweep(index) => {}
            _ => return,
        }
    }
}

/// Where a connection goes back to.
struct Home {
    shared: Weak<Shared>,
    index: usize,
    key: PoolKey,
}

impl Home {
    fn take_back(self, stream: Stream) {
        if let Some(shared) = self.shared.upgrade() {
            shared.checkin(self.index, self.key, stream);
        }
    }
}

/// An answer's body, read from its connection: polling it moves the connection along (the
/// rest of the request's body included), and the connection goes back to its pool once the
/// body has ended; a body dropped before its end closes it.
pub(crate) struct UpstreamBody {
    body: Incoming,
    connection: Option<Connection<Body>>,
    home: Home,
}

impl UpstreamBody {
    /// The body has ended: the connection goes home, if it is idle with nothing unread.
    fn ended(&mut self) {
        if let Some(stream) = self.connection.take().and_then(Connection::into_stream) {
            let home = Home {
                shared: std::mem::take(&mut self.home.shared),
                index: self.home.index,
                key: self.home.key.clone(),
            };
            home.take_back(stream);
        }
    }
}

impl HttpBody for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let mut polled = Pin::new(&mut this.body).poll_frame(context);
        if polled.is_pending()
            && let Some(connection) = this.connection.as_mut()
            && connection.driver.poll_machine(context)
        {
            polled = Pin::new(&mut this.body).poll_frame(context);
        }
        match &polled {
            Poll::Ready(None) => this.ended(),
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.ended(),
            Poll::Ready(Some(Err(_))) => this.connection = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_with_one_origin_share_its_pool_key() {
        let key = |url: &str| PoolKey::of(Origin::of(&url.parse().unwrap()).unwrap());
        assert_eq!(
            key("https://api.example.com/v1"),
            key("https://api.example.com/v2/")
        );
        assert_ne!(
            key("https://api.example.com/"),
            key("http://api.example.com/")
        );
        assert_ne!(
            key("https://api.example.com/"),
            key("https://api.example.com:8443/")
        );
    }

    #[test]
    fn the_host_header_is_the_host_and_any_port_written() {
        let client =
            UpstreamClient::new(&Trust::platform().unwrap(), ProxyPool::default()).unwrap();
        let upstream =
            |url: &str| Upstream::of(&client, Some(&url.parse().unwrap())).map(|up| up.host);
        assert_eq!(
            upstream("https://user:pass@api.example.com/v2/").unwrap(),
            "api.example.com"
        );
        assert_eq!(upstream("http://127.0.0.1:8080").unwrap(), "127.0.0.1:8080");
        assert_eq!(upstream("https://[::1]:8443/x").unwrap(), "[::1]:8443");
        assert!(upstream("ftp://example.com/").is_none());
    }
}
