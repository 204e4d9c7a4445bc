//! The proxy's fast lane: a connection's plain requests — HTTP/1.1, whole (no body, or a
//! `Content-Length` one of at most 64 KiB), nothing to upgrade or expect — read, forwarded and
//! answered as bytes, without hyper: the head passed on with its headers in order (hop-by-hop
//! ones dropped, `Host` the upstream's), the answer passed back unchanged as its framing
//! ([`framing`]) says where it ends, over pooled upstream connections. Routing, admission,
//! fallback, capacity, the judge and every answer of the proxy's own are the same as hyper's
//! path ([`super::forward`]). The first request the lane does not carry hands the connection,
//! with the bytes already read, to hyper for the rest of its life ([`Handover::Hyper`]).
//!
//! Whose fault it is stays decided the same way: a client that leaves before the answer is a
//! caller outcome, never the provider's; a client that stops reading is cut after the idle
//! limit, the upstream connection dropped with it; an upstream that stalls mid-body is cut
//! after the service's timeout.

mod deadline;
mod framing;
mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use axum::response::Response;
use bytes::{Buf, BufMut, BytesMut};
use futures_util::FutureExt as _;
use http_body_util::BodyExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::debug;

use super::body::{self, BodyAhead, Exchange, PendingVerdict};
use super::secrets::RequestSecrets;
use super::{Admission, Proxy, admission, answer, route, timed_out};
use crate::outcome::{FailureReason, ProbeError, Said};
use crate::provider::{Head, MAX_JUDGED_BODY};
use crate::serve::{Handover, Limits};
use crate::transport::upstream::{Lease, Upstream, UpstreamError};
use deadline::Deadlines;
use framing::{Framing, Walked};
use wire::{Answered, Asked, Reading, Spans};

/// The most bytes of later requests kept while one is answered (a client that pipelines more
/// is read again once there is room).
const MOST_PIPELINED: usize = 64 * 1024;

/// Serves `client`'s requests within `limits` while the fast lane carries them; stops taking
/// new ones once `closed` turns true (the server is shutting down).
pub(crate) async fn serve(
    proxy: &Proxy,
    client: &mut TcpStream,
    limits: Limits,
    closed: &mut watch::Receiver<bool>,
) -> Handover {
    let mut lane = Lane {
        proxy,
        client,
        limits,
        later: BytesMut::new(),
        out: BytesMut::with_capacity(1024),
        answer: BytesMut::with_capacity(8192),
        answer_spans: Vec::with_capacity(16),
        deadlines: Deadlines::new(),
    };
    // What the client has sent and the lane has not answered yet.
    let mut inbound = BytesMut::with_capacity(4096);
    let mut spans = Vec::with_capacity(16);
    // Waited on across the connection's requests (one registration, not one per request).
    let mut shutdown = std::pin::pin!(closed.wait_for(|closed| *closed));
    loop {
        let asked = match lane
            .next_request(&mut inbound, spans, shutdown.as_mut())
            .await
        {
            Next::Request(asked) => asked,
            Next::Closed => return Handover::Closed,
            Next::Hyper => return Handover::Hyper(inbound.freeze()),
        };
        let keep = lane.answer(&asked, &inbound).await;
        inbound.advance(asked.head_len + asked.body_len);
        spans = asked.kept;
        if !lane.later.is_empty() {
            inbound.unsplit(lane.later.split());
        }
        if !keep || shutdown.as_mut().now_or_never().is_some() {
            return Handover::Closed;
        }
    }
}

/// A connection in the fast lane, and the buffers its exchanges reuse.
struct Lane<'a> {
    proxy: &'a Proxy,
    client: &'a mut TcpStream,
    limits: Limits,
    /// What the client sent while a request was being answered.
    later: BytesMut,
    /// What goes out next (to the upstream, or to the client).
    out: BytesMut,
    /// What the upstream has sent.
    answer: BytesMut,
    answer_spans: Vec<Spans>,
    deadlines: Deadlines,
}

/// What the client sends next.
enum Next {
    Request(Asked),
    Closed,
    Hyper,
}

impl Lane<'_> {
    /// Waits for the next whole request: up to the idle limit for its first byte, the header
    /// limit for the rest (a head not done by then closes the connection; a body not done
    /// goes to hyper, whose upload handling tells a stalled client).
    async fn next_request<S: Future>(
        &mut self,
        inbound: &mut BytesMut,
        mut spans: Vec<Spans>,
        mut shutdown: Pin<&mut S>,
    ) -> Next {
        let mut first_byte = None;
        loop {
            if !inbound.is_empty() {
                match wire::read_request(inbound, std::mem::take(&mut spans)) {
                    Reading::Whole(asked) => return Next::Request(asked),
                    Reading::Hyper => return Next::Hyper,
                    Reading::Partial => {}
                }
                first_byte.get_or_insert_with(Instant::now);
            }
            let due = match first_byte {
                Some(first) => first + self.limits.header_read_timeout,
                None => Instant::now() + self.limits.idle_timeout,
            };
            inbound.reserve(4096);
            let waiting = async {
                tokio::select! {
                    read = self.client.read_buf(inbound) => Some(read),
                    _ = shutdown.as_mut(), if first_byte.is_none() => None,
                }
            };
            match self.deadlines.within(due, waiting).await {
                Some(Some(Ok(read))) if read > 0 => {}
                // Closed by the client, broken, or the server is shutting down.
                Some(_) => return Next::Closed,
                None if wire::head_is_whole(inbound) => return Next::Hyper,
                None => return Next::Closed,
            }
        }
    }

    /// Answers `asked` (read from `request`); whether the connection goes on.
    async fn answer(&mut self, asked: &Asked, request: &[u8]) -> bool {
        let (path, query) = asked.path_and_query(request);
        let registry = Arc::clone(&self.proxy.published.borrow().registry);
        let route = match route::resolve_target(&asked.method, path, &registry) {
            Ok(route) => route,
            Err(refusal) => return self.reply(answer::refused(refusal), asked).await,
        };
        let admission = match super::admit(&registry, route, &asked.method, path).await {
            Ok(admission) => admission,
            Err(refused) => return self.reply(refused, asked).await,
        };
        // Room among the proxy's calls, taken only now that the service let the call through,
        // held until the answer has gone through.
        let Some(_place) = self.proxy.capacity.admit() else {
            return self.reply(self.proxy.capacity.full(), asked).await;
        };
        self.call(asked, request, (path, query), admission).await
    }

    /// Writes one of the proxy's own answers; whether the connection goes on.
    async fn reply(&mut self, response: Response, asked: &Asked) -> bool {
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|body| body.to_bytes())
            .unwrap_or_default();
        let close = asked.close
            || parts
                .headers
                .get(axum::http::header::CONNECTION)
                .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
        self.out.clear();
        wire::write_own(
            &mut self.out,
            parts.status,
            &parts.headers,
            body.len(),
            close,
        );
        if asked.method != Method::HEAD {
            self.out.put_slice(&body);
        }
        write_within(self.client, &self.out, self.limits.idle_timeout).await && !close
    }

    /// Sends the admitted call on and streams its answer back, judged by the service's rules;
    /// whether the connection goes on.
    async fn call(
        &mut self,
        asked: &Asked,
        request: &[u8],
        (path, query): (&str, Option<&str>),
        admission: Admission,
    ) -> bool {
        let Admission {
            route,
            admitted,
            fell_back,
        } = admission;
        let admission::Admitted {
            operation,
            permit,
            slot: _slot,
        } = admitted;
        let service = Arc::clone(&route.service);
        let Some(upstream) = route.upstream() else {
            permit.record_ignored();
            let refusal = route::Refusal::NotFound(format!(
                "service \"{}\" has no upstream to proxy to",
                service.name()
            ));
            return self.reply(answer::refused(refusal), asked).await;
        };
        let started = Instant::now();
        let below = route.path_in(path);
        // Kept only where a rule quotes the provider's answer (the defaults quote nothing).
        let secrets = if service.judge.quotes_answer() {
            RequestSecrets::of(&asked.header_map(request), query)
        } else {
            RequestSecrets::default()
        };
        self.out.clear();
        wire::write_request(
            &mut self.out,
            request,
            asked,
            &route.target(path, query),
            upstream.host_header(),
        );
        let said = || Said {
            operation: Some(operation.name.to_string()),
            code: None,
            message: None,
        };
        let deadline = started + service.breaker.timeout();
        let spans = std::mem::take(&mut self.answer_spans);
        let exchanged = self
            .deadlines
            .within(
                deadline,
                watching_client(
                    self.client,
                    &mut self.later,
                    exchange(upstream, &self.out, &mut self.answer, &asked.method, spans),
                ),
            )
            .await;
        let (lease, answered) = match exchanged {
            Some(Some(Ok(exchanged))) => exchanged,
            Some(Some(Err(error))) => {
                let response = self
                    .proxy
                    .unreached(&service, permit, &error, upstream, said());
                return self.reply(response, asked).await;
            }
            Some(None) => {
                super::client_left(&service, usize::from(operation.index));
                return false;
            }
            None => {
                let response = timed_out(&service, permit, said());
                return self.reply(response, asked).await;
            }
        };
        let head_only = asked.method == Method::HEAD;
        let status = answered.status;
        let pending = {
            let headers = wire::AnswerHeaders {
                buffer: &self.answer,
                kept: &answered.kept,
            };
            let head = Head {
                operation: &operation.name,
                method: asked.method.as_str(),
                path: below,
                status,
                headers: &headers,
            };
            let too_long = answered
                .length
                .is_some_and(|length| length > MAX_JUDGED_BODY as u64);
            let ahead = if head_only || too_long {
                BodyAhead::Unread
            } else if answered.framing.is_done() {
                BodyAhead::Empty
            } else {
                BodyAhead::Coming
            };
            let exchange = || Exchange {
                operation: operation.name.clone(),
                method: asked.method.clone(),
                path: below.to_string(),
                status,
                headers: answered.header_map(&self.answer),
            };
            body::verdict_by_head(permit, &service, &head, ahead, secrets, exchange, started)
        };
        let close = asked.close || answered.framing == Framing::UntilClose;
        let mut extra: Vec<(&str, &[u8])> = Vec::new();
        if let Some(name) = &fell_back {
            extra.push((answer::FALLBACK_HEADER, name.as_bytes()));
        }
        if close {
            extra.push(("connection", b"close"));
        }
        self.out.clear();
        wire::write_answer(&mut self.out, &self.answer, &answered, &extra);
        self.answer.advance(answered.head_len);
        let passed = Passing {
            client: self.client,
            out: &mut self.out,
            answer: &mut self.answer,
            client_idle: self.limits.idle_timeout,
            upstream_idle: service.breaker.timeout(),
            deadlines: &mut self.deadlines,
        }
        .pass(
            lease,
            answered.framing.clone(),
            answered.closes,
            pending,
            &service,
        )
        .await;
        self.answer_spans = answered.kept;
        passed && !close
    }
}

/// The client's answer on its way: the body passed from the upstream to the client as its
/// framing says, the start of it kept for a verdict that waits on it.
struct Passing<'a> {
    client: &'a mut TcpStream,
    /// The answer's head, to go out with the first of the body.
    out: &'a mut BytesMut,
    /// What has come of the body so far (after the head).
    answer: &'a mut BytesMut,
    client_idle: Duration,
    upstream_idle: Duration,
    deadlines: &'a mut Deadlines,
}

impl Passing<'_> {
    /// Passes the body through; whether the client got all of it (and the connection can go on).
    /// The upstream connection goes back to its pool when the body ended cleanly and it stays
    /// open. A client that leaves or stops reading mid-body does not lose the verdict: the rest
    /// of the start of the body is read, within the call's timeout.
    async fn pass(
        self,
        mut lease: Lease,
        mut framing: Framing,
        upstream_closes: bool,
        mut pending: Option<PendingVerdict>,
        service: &crate::registry::Service,
    ) -> bool {
        let Passing {
            client,
            out,
            answer,
            client_idle,
            upstream_idle,
            deadlines,
        } = self;
        let mut client_here = true;
        let mut ended = framing.is_done();
        let mut leftover = false;
        loop {
            let mut taken = 0;
            if ended {
                // Bytes after the end of the body: the connection is not clean.
                leftover |= !answer.is_empty();
            } else if !answer.is_empty() {
                let mut kept = true;
                let walked = framing.walk(answer, |data| {
                    if let Some(verdict) = pending.as_mut() {
                        kept &= verdict.take(data);
                    }
                });
                taken = match walked {
                    Ok(Walked::More) => answer.len(),
                    Ok(Walked::Ended(taken)) => {
                        ended = true;
                        leftover = taken < answer.len();
                        taken
                    }
                    Err(malformed) => {
                        if let Some(verdict) = pending.take() {
                            let failure = ProbeError::new(
                                FailureReason::Protocol,
                                format!("{}: {malformed}", service.name()),
                            );
                            verdict.fail_broken(failure);
                        }
                        // The head, if it has not gone yet, then the cut: the client can tell
                        // the body is incomplete.
                        if client_here && !out.is_empty() {
                            write_within(client, out, client_idle).await;
                        }
                        return false;
                    }
                };
                if (!kept || ended)
                    && let Some(verdict) = pending.take()
                {
                    // Past what a judge reads the status decides; at the end, the body.
                    verdict.settle_now(kept);
                }
            }
            if client_here {
                // The head goes out with the first of the body; the rest as it comes.
                let body = &answer[..taken];
                client_here = if out.is_empty() {
                    write_within(client, body, client_idle).await
                } else {
                    out.put_slice(body);
                    write_within(client, out, client_idle).await
                };
                out.clear();
                if !client_here {
                    debug!(
                        service = service.name(),
                        "the client left or stopped reading mid-answer; the connection is cut"
                    );
                }
            }
            answer.clear();
            if ended {
                if client_here && !upstream_closes && !leftover {
                    lease.give_back();
                }
                return client_here;
            }
            if !client_here && pending.is_none() {
                return false;
            }
            answer.reserve(64 * 1024);
            let due = Instant::now() + upstream_idle;
            let due = pending
                .as_ref()
                .map_or(due, |verdict| verdict.deadline().min(due));
            match deadlines.within(due, lease.stream.read_buf(answer)).await {
                Some(Ok(0)) if framing == Framing::UntilClose => {
                    if let Some(verdict) = pending.take() {
                        verdict.settle_now(true);
                    }
                    return client_here;
                }
                Some(Ok(0)) => {
                    if let Some(verdict) = pending.take() {
                        let failure = ProbeError::new(
                            FailureReason::Reset,
                            format!("{}: {}", service.name(), UpstreamError::Closed),
                        );
                        verdict.fail_broken(failure);
                    }
                    return false;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    if let Some(verdict) = pending.take() {
                        let error = UpstreamError::Io(error);
                        let failure =
                            ProbeError::new(error.reason(), format!("{}: {error}", service.name()));
                        verdict.fail_broken(failure);
                    }
                    return false;
                }
                None => {
                    if let Some(verdict) = pending.take() {
                        verdict.fail_timed_out();
                    }
                    debug!(
                        service = service.name(),
                        "the provider's answer stopped mid-body; the connection is cut"
                    );
                    return false;
                }
            }
        }
    }
}

/// Runs `work` while watching `client`: `None` as soon as the client closes its connection
/// (it left before its answer); what it sends meanwhile is kept in `later`, up to
/// [`MOST_PIPELINED`].
async fn watching_client<T>(
    client: &TcpStream,
    later: &mut BytesMut,
    work: impl Future<Output = T>,
) -> Option<T> {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            biased;
            done = &mut work => return Some(done),
            ready = client.readable(), if later.len() < MOST_PIPELINED => {
                if ready.is_err() {
                    return None;
                }
                later.reserve(4096);
                match client.try_read_buf(later) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return None,
                }
            }
        }
    }
}

/// Sends `request` (head and body, whole) to `upstream` and reads the answer's head into
/// `answer`: on an idle pooled connection, or a new one. An idempotent request whose pooled
/// connection turned out closed before any answer is sent again on a new one.
async fn exchange(
    upstream: &Upstream,
    request: &[u8],
    answer: &mut BytesMut,
    method: &Method,
    spans: Vec<Spans>,
) -> Result<(Lease, Answered), UpstreamError> {
    let mut fresh = false;
    let mut spans = spans;
    loop {
        let mut lease = upstream.lease(fresh).await.map_err(UpstreamError::Open)?;
        answer.clear();
        match round_trip(&mut lease, request, answer, method, spans).await {
            Ok(answered) => return Ok((lease, answered)),
            Err((error, returned)) => {
                let unanswered = answer.is_empty();
                if lease.reused && !fresh && unanswered && method.is_idempotent() {
                    fresh = true;
                    spans = returned;
                    continue;
                }
                return Err(error);
            }
        }
    }
}

/// One request written and its answer's head read (informational answers skipped).
async fn round_trip(
    lease: &mut Lease,
    request: &[u8],
    answer: &mut BytesMut,
    method: &Method,
    spans: Vec<Spans>,
) -> Result<Answered, (UpstreamError, Vec<Spans>)> {
    if let Err(error) = lease.stream.write_all(request).await {
        return Err((UpstreamError::Io(error), spans));
    }
    let mut spans = spans;
    loop {
        if !answer.is_empty() {
            match wire::read_answer(answer, method, spans) {
                Ok(Some(answered)) if (100..200).contains(&answered.status) => {
                    // 100 Continue, 103 Early Hints: not passed on; the answer follows.
                    answer.advance(answered.head_len);
                    spans = answered.kept;
                    continue;
                }
                Ok(Some(answered)) => return Ok(answered),
                Ok(None) => spans = Vec::new(),
                Err(bad) => return Err((UpstreamError::Malformed(bad.describe()), Vec::new())),
            }
        }
        answer.reserve(8192);
        match lease.stream.read_buf(answer).await {
            Ok(0) => return Err((UpstreamError::Closed, spans)),
            Ok(_) => {}
            Err(error) => return Err((UpstreamError::Io(error), spans)),
        }
    }
}

/// Writes `bytes` to `client`, giving up when it takes none for `idle` (it stopped reading);
/// whether all were written.
async fn write_within(client: &mut TcpStream, bytes: &[u8], idle: Duration) -> bool {
    let mut left = bytes;
    while !left.is_empty() {
        match client.try_write(left) {
            Ok(written) => left = &left[written..],
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                match tokio::time::timeout(idle, client.writable()).await {
                    Ok(Ok(())) => {}
                    _ => return false,
                }
            }
            Err(_) => return false,
        }
    }
    true
}
