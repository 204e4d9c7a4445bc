//! Opening a check's connection — the name resolved, TCP connected, TLS shaken hands, each step
//! timed — and the HTTP/1.1 connection on it, driven by the check's own task (no task per
//! connection, no wake-ups across threads) and kept only while it is sound. Checks own what
//! they send on it; this owns the connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::Host;

use super::reason::{hyper_reason, io_reason, reason_in_chain};
use crate::outcome::FailureReason;

/// Where a connection goes: the scheme's TLS, the host as written in the URL, the port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    pub(crate) tls: bool,
    pub(crate) host: Box<str>,
    pub(crate) port: u16,
}

impl Origin {
    /// The origin of `url`, or `None` for a URL without a host or a known port.
    pub(crate) fn of(url: &url::Url) -> Option<Self> {
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        Some(Self {
            tls,
            host: url.host_str()?.into(),
            port: url.port_or_known_default()?,
        })
    }
}

/// Why a connection could not be opened or an exchange failed, by the step that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// The host name did not resolve.
    #[error("resolving the name: {0}")]
    Resolve(#[source] io::Error),
    /// It resolved to nothing.
    #[error("the name resolved to no address")]
    NoAddress,
    /// No address accepted a connection (the last one's error).
    #[error("connecting to {address}: {source}")]
    Connect {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The host is not a name TLS can verify.
    #[error("{0} is not a name a certificate can be checked against")]
    ServerName(Box<str>),
    /// The TLS handshake failed (the certificate, the protocol, or the connection).
    #[error("TLS handshake: {0}")]
    Tls(#[source] io::Error),
    /// HTTP/1.1 on the connection failed.
    #[error("{0}")]
    Http(#[source] hyper::Error),
}

impl TransportError {
    /// The bounded reason for this failure.
    pub(crate) fn reason(&self) -> FailureReason {
        match self {
            TransportError::Resolve(_) | TransportError::NoAddress => FailureReason::Dns,
            TransportError::Connect { source, .. } => {
                io_reason(source.kind()).unwrap_or(FailureReason::Connect)
            }
            TransportError::ServerName(_) => FailureReason::Tls,
            // rustls' own error inside is `tls`; a reset or timeout mid-handshake says so.
            TransportError::Tls(source) => reason_in_chain(source).unwrap_or(FailureReason::Tls),
            TransportError::Http(error) => hyper_reason(error),
        }
    }
}

/// A TCP connection, with TLS for HTTPS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_read(context, buffer),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write(context, bytes),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, bytes),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write_vectored(context, buffers),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(context, buffers),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(stream) => stream.is_write_vectored(),
            Stream::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_flush(context),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
        }
    }
}

impl Stream {
    /// Whether nothing has arrived on an idle stream since its last exchange (no data, no
    /// close): it can carry the next request. Asks the runtime's readiness, without a read.
    pub(crate) fn is_quiet(&self) -> bool {
        let tcp = match self {
            Stream::Plain(stream) => stream,
            Stream::Tls(stream) => stream.get_ref().0,
        };
        let mut context = Context::from_waker(Waker::noop());
        tcp.poll_read_ready(&mut context).is_pending()
    }
}

/// The time each step of opening a connection took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Opening {
    pub(crate) dns: Duration,
    pub(crate) connect: Duration,
    pub(crate) tls: Duration,
}

/// An HTTP/1.1 connection: where requests are sent, and the state machine that moves them,
/// polled by whoever is waiting on it. Requests carry bodies of type `B` (a check's are whole;
/// the proxy's stream from its client).
pub(crate) struct Connection<B: RequestBody = Full<Bytes>> {
    pub(crate) sender: http1::SendRequest<B>,
    pub(crate) driver: Driver<B>,
}

/// What a request's body must be for hyper to send it.
pub(crate) trait RequestBody:
    http_body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + Unpin
    + 'static
{
}

impl<B> RequestBody for B where
    B: http_body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + Unpin
        + 'static
{
}

/// hyper's connection state machine, and whether it has finished (closed or failed).
pub(crate) struct Driver<B: RequestBody = Full<Bytes>> {
    machine: Pin<Box<http1::Connection<TokioIo<Stream>, B>>>,
    finished: bool,
}

impl<B: RequestBody> Driver<B> {
    /// Runs `work` — a request or a body read on this connection — while moving the
    /// connection along, in the calling task.
    pub(crate) async fn alongside<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|context| {
            if let Poll::Ready(output) = work.as_mut().poll(context) {
                return Poll::Ready(output);
            }
            if self.poll_machine(context) {
                // Moved along: what `work` waits for may have come (an answer, a failure).
                return work.as_mut().poll(context);
            }
            Poll::Pending
        })
        .await
    }

    /// Moves the connection along once, in the calling task; whether it may have answered
    /// something (it ran, or it has finished: closed or failed, whatever was waiting answered).
    pub(crate) fn poll_machine(&mut self, context: &mut Context<'_>) -> bool {
        if self.finished {
            return false;
        }
        if self.machine.as_mut().poll(context).is_ready() {
            self.finished = true;
        }
        true
    }

    /// Whether the connection can carry another request: not closed by either side, nothing
    /// unread on it. Polls it once without waiting.
    pub(crate) fn is_sound(&mut self) -> bool {
        if self.finished {
            return false;
        }
        let mut context = Context::from_waker(Waker::noop());
        if self.machine.as_mut().poll(&mut context).is_ready() {
            self.finished = true;
        }
        !self.finished
    }
}

impl<B: RequestBody> Connection<B> {
    /// Whether another request can be sent now.
    pub(crate) fn is_reusable(&mut self) -> bool {
        self.driver.is_sound() && self.sender.is_ready()
    }
}

/// What opens connections for checks: the TLS settings to verify servers with.
#[derive(Clone)]
pub(crate) struct Connector {
    tls: tokio_rustls::TlsConnector,
}

impl Connector {
    pub(crate) fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            tls: tokio_rustls::TlsConnector::from(tls),
        }
    }

    /// Opens a connection to `origin` of `url`, timing each step.
    pub(crate) async fn open<B: RequestBody>(
        &self,
        url: &url::Url,
        origin: &Origin,
    ) -> Result<(Connection<B>, Opening), TransportError> {
        let (stream, opening) = self.connect(url, origin).await?;
        Ok((Connection::over(stream).await?, opening))
    }

    /// Opens a stream to `origin` of `url` — the name resolved, TCP connected, TLS shaken
    /// hands — timing each step.
    pub(crate) async fn connect(
        &self,
        url: &url::Url,
        origin: &Origin,
    ) -> Result<(Stream, Opening), TransportError> {
        let mut opening = Opening::default();
        let started = Instant::now();
        let addresses = resolve(url, origin.port).await?;
        opening.dns = started.elapsed();
        let connecting = Instant::now();
        let tcp = connect(&addresses).await?;
        opening.connect = connecting.elapsed();
        let stream = if origin.tls {
            let handshaking = Instant::now();
            let name = server_name(url)?;
            let stream = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(TransportError::Tls)?;
            opening.tls = handshaking.elapsed();
            Stream::Tls(Box::new(stream))
        } else {
            Stream::Plain(tcp)
        };
        Ok((stream, opening))
    }
}

impl<B: RequestBody> Connection<B> {
    /// HTTP/1.1 over `stream`.
    pub(crate) async fn over(stream: Stream) -> Result<Self, TransportError> {
        let (sender, machine) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(TransportError::Http)?;
        Ok(Connection {
            sender,
            driver: Driver {
                machine: Box::pin(machine),
                finished: false,
            },
        })
    }

    /// The stream back, once the connection is idle with nothing unread (else `None`: it is
    /// closed with the connection).
    pub(crate) fn into_stream(mut self) -> Option<Stream> {
        if !self.is_reusable() {
            return None;
        }
        let parts = Pin::into_inner(self.driver.machine).into_parts();
        parts.read_buf.is_empty().then(|| parts.io.into_inner())
    }
}

/// The addresses of the URL's host: an address as it is, a name through the system resolver
/// (off the runtime).
async fn resolve(url: &url::Url, port: u16) -> Result<Vec<SocketAddr>, TransportError> {
    let addresses: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(address)) => vec![SocketAddr::new(address.into(), port)],
        Some(Host::Ipv6(address)) => vec![SocketAddr::new(address.into(), port)],
        Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(TransportError::Resolve)?
            .collect(),
        None => Vec::new(),
    };
    if addresses.is_empty() {
        return Err(TransportError::NoAddress);
    }
    Ok(addresses)
}

/// How long one connection attempt has before the next address is tried beside it (RFC 8305's
/// "Happy Eyeballs": a host whose IPv6 route drops packets is still reached over IPv4).
pub(crate) const NEXT_ATTEMPT_AFTER: Duration = Duration::from_millis(250);

/// A TCP connection to the first address that takes one. Addresses are tried in turn, the two
/// families alternating; an attempt still pending after [`NEXT_ATTEMPT_AFTER`] gets the next
/// one started beside it, and the first to connect wins.
async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, TransportError> {
    use futures_util::StreamExt as _;
    if let [address] = addresses {
        return attempt(*address).await;
    }
    let mut waiting = interleaved(addresses).into_iter();
    let mut attempts = futures_util::stream::FuturesUnordered::new();
    let mut last = None;
    loop {
        if attempts.is_empty() {
            match waiting.next() {
                Some(address) => attempts.push(attempt(address)),
                None => return Err(last.unwrap_or(TransportError::NoAddress)),
            }
        }
        let more = waiting.len() > 0;
        tokio::select! {
            biased;
            Some(outcome) = attempts.next() => match outcome {
                Ok(stream) => return Ok(stream),
                Err(error) => last = Some(error),
            },
            () = tokio::time::sleep(NEXT_ATTEMPT_AFTER), if more => {
                if let Some(address) = waiting.next() {
                    attempts.push(attempt(address));
                }
            }
        }
    }
}

/// One connection attempt to `address`, the connection ready to carry a request
/// (`TCP_NODELAY`: a request goes out in one write; nothing holds its tail back).
async fn attempt(address: SocketAddr) -> Result<TcpStream, TransportError> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|source| TransportError::Connect { address, source })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// `addresses` with the two families alternating, the first address's family first.
fn interleaved(addresses: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addresses.first() else {
        return Vec::new();
    };
    let (mut same, mut other): (Vec<SocketAddr>, Vec<SocketAddr>) = addresses
        .iter()
        .partition(|address| address.is_ipv4() == first.is_ipv4());
    same.reverse();
    other.reverse();
    let mut out = Vec::with_capacity(addresses.len());
    while !same.is_empty() || !other.is_empty() {
        out.extend(same.pop());
        out.extend(other.pop());
    }
    out
}

/// The name a server's certificate must hold: the URL's host name or address.
fn server_name(url: &url::Url) -> Result<ServerName<'static>, TransportError> {
    match url.host() {
        Some(Host::Ipv4(address)) => Ok(ServerName::IpAddress(
            std::net::IpAddr::from(address).into(),
        )),
        Some(Host::Ipv6(address)) => Ok(ServerName::IpAddress(
            std::net::IpAddr::from(address).into(),
        )),
        Some(Host::Domain(name)) => ServerName::try_from(name.to_string())
            .map_err(|_| TransportError::ServerName(name.into())),
        None => Err(TransportError::ServerName("an empty host".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_alternate_from_the_first() {
        let v6 = |port| SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port));
        let v4 = |port| SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(
            interleaved(&[v6(1), v6(2), v6(3), v4(4), v4(5)]),
            [v6(1), v4(4), v6(2), v4(5), v6(3)]
        );
        assert_eq!(interleaved(&[v4(1), v4(2)]), [v4(1), v4(2)]);
        assert!(interleaved(&[]).is_empty());
    }

    #[tokio::test]
    async fn an_address_that_never_answers_does_not_hold_up_the_next() {
        // A listener whose accept queue is full drops new SYNs: connecting to it hangs, as to a
        // host whose route loses packets.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let full = socket.listen(0).unwrap();
        let hanging = full.local_addr().unwrap();
        let mut fillers = Vec::new();
        let filled = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let attempt =
                    tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(hanging));
                match attempt.await {
                    Ok(Ok(stream)) => fillers.push(stream),
                    _ => break,
                }
            }
        })
        .await;
        assert!(filled.is_ok(), "the accept queue never filled");
        let answering = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let reachable = answering.local_addr().unwrap();
        let connected =
            tokio::time::timeout(Duration::from_secs(5), connect(&[hanging, reachable])).await;
        let stream = connected.expect("not held up").expect("connected");
        assert_eq!(stream.peer_addr().unwrap(), reachable);
        let refused = {
            let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            closed.local_addr().unwrap()
        };
        let error = connect(&[refused]).await.unwrap_err();
        assert_eq!(error.reason(), FailureReason::Connect, "{error}");
    }
}
