//! The two bodies a proxied call streams, watched on their way through without being held:
//! the request's [`Upload`], which tells a client that stalls from an upstream that does, and
//! the answer's [`Watched`] body, which ends a body that stops moving, and which keeps the
//! start of the body for the service's rules while passing every byte on unchanged.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Bytes, HttpBody};
use axum::http::{HeaderMap, Method};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::secrets::RequestSecrets;
use crate::breaker::OwnedPermit;
use crate::outcome::{FailureReason, ProbeError, Said};
use crate::probe::classify;
use crate::provider::{Head, Judgement, MAX_JUDGED_BODY};
use crate::registry::{Service, Settled};
use crate::transport::upstream::UpstreamBody;

/// A boxed error, as bodies carry them.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a request's upload stands, as the handler reads it when the upstream is late or the
/// forwarding fails: whether the client (not the provider) is the one to blame.
#[derive(Debug, Default)]
pub(crate) struct UploadProgress {
    state: AtomicU8,
    /// What went wrong with the client's body, once it has (sticky: the first fault wins).
    fault: AtomicU8,
}

const SENDING: u8 = 0;
const WAITING_FOR_CLIENT: u8 = 1;
const SENT: u8 = 2;

const NO_FAULT: u8 = 0;
const MALFORMED: u8 = 1;
const GONE: u8 = 2;

/// How a client's request body failed on its way in: the client's doing, never the provider's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientFault {
    /// The body's framing was malformed (a bad chunk size line, say).
    Malformed,
    /// The client closed, reset or otherwise broke off its upload before the end.
    Gone,
}

impl ClientFault {
    /// The fault a request body's `error` means: malformed framing when an I/O error in its
    /// chain says the input was invalid (or hyper could not parse it), else a client gone.
    pub(crate) fn of(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut cause = Some(error);
        while let Some(error) = cause {
            if let Some(io) = error.downcast_ref::<std::io::Error>()
                && matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
                )
            {
                return ClientFault::Malformed;
            }
            // An I/O error that wraps another names it only here (its `source` skips it).
            if let Some(inner) = error
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
            {
                cause = Some(inner);
                continue;
            }
            if error
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_parse)
            {
                return ClientFault::Malformed;
            }
            cause = error.source();
        }
        ClientFault::Gone
    }

    /// What the logs and the proxy's answer say.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            ClientFault::Malformed => "its framing was malformed",
            ClientFault::Gone => "the client broke it off",
        }
    }
}

impl UploadProgress {
    /// Whether the proxy is waiting on the client for more of its body: a late answer is then
    /// the client's doing, not the provider's.
    pub(crate) fn waiting_for_client(&self) -> bool {
        self.state.load(Ordering::Relaxed) == WAITING_FOR_CLIENT
    }

    /// How the client's body failed, if it did: a failed forwarding is then the client's doing.
    pub(crate) fn client_fault(&self) -> Option<ClientFault> {
        match self.fault.load(Ordering::Acquire) {
            MALFORMED => Some(ClientFault::Malformed),
            GONE => Some(ClientFault::Gone),
            _ => None,
        }
    }

    fn note_fault(&self, fault: ClientFault) {
        let value = match fault {
            ClientFault::Malformed => MALFORMED,
            ClientFault::Gone => GONE,
        };
        let _ = self
            .fault
            .compare_exchange(NO_FAULT, value, Ordering::AcqRel, Ordering::Acquire);
    }
}

pin_project! {
    /// A request body streamed to the upstream, noting whether it waits on the client and
    /// whether the client's body failed (malformed framing, an upload broken off). Its data
    /// passes; trailers stay behind.
    pub(crate) struct Upload {
        #[pin]
        inner: Incoming,
        progress: Arc<UploadProgress>,
    }
}

impl Upload {
    pub(crate) fn new(body: Incoming, progress: Arc<UploadProgress>) -> Self {
        Self {
            inner: body,
            progress,
        }
    }
}

impl HttpBody for Upload {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        loop {
            let polled = this.inner.as_mut().poll_frame(cx);
            let progress = match &polled {
                Poll::Pending => WAITING_FOR_CLIENT,
                Poll::Ready(None) => SENT,
                Poll::Ready(Some(Ok(frame))) if !frame.is_data() => continue,
                Poll::Ready(Some(Ok(_))) => SENDING,
                Poll::Ready(Some(Err(error))) => {
                    // Noted before the error reaches the upstream's client, which then fails.
                    this.progress.note_fault(ClientFault::of(error));
                    SENT
                }
            };
            this.progress.state.store(progress, Ordering::Relaxed);
            return polled;
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What the rules read of an exchange besides the body, kept while the body arrives.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) operation: Arc<str>,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
}

/// A call whose verdict waits for the start of its answer's body.
#[derive(Debug)]
pub(crate) struct PendingVerdict {
    permit: OwnedPermit,
    service: Arc<Service>,
    exchange: Exchange,
    secrets: RequestSecrets,
    prefix: Vec<u8>,
    /// The call's timeout, and when it runs out: no verdict by then is a timeout.
    timeout: Duration,
    deadline: Instant,
}

impl PendingVerdict {
    pub(crate) fn new(
        permit: OwnedPermit,
        service: Arc<Service>,
        exchange: Exchange,
        secrets: RequestSecrets,
        started: Instant,
    ) -> Self {
        let timeout = service.breaker.timeout();
        Self {
            permit,
            service,
            exchange,
            secrets,
            prefix: Vec::new(),
            timeout,
            deadline: started + timeout,
        }
    }

    /// When no verdict by then is a timeout.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Judges now, by the head and the body read (`whole`: all of it; else it was too long).
    pub(crate) fn settle_now(self, whole: bool) {
        self.settle(whole);
    }

    /// The body broke off before the verdict (`failure` says how): the provider's failure.
    pub(crate) fn fail_broken(self, failure: ProbeError) {
        self.fail(failure, FailureKind::Failure);
    }

    /// No verdict within the call's timeout: the provider's.
    pub(crate) fn fail_timed_out(self) {
        let detail = format!(
            "no complete answer within {} ms (a real call)",
            self.timeout.as_millis()
        );
        self.fail(
            ProbeError::new(FailureReason::Timeout, detail),
            FailureKind::Timeout,
        );
    }

    /// Takes in a chunk; `false` once the body is longer than the rules read.
    pub(crate) fn take(&mut self, data: &[u8]) -> bool {
        if self.prefix.len() + data.len() > MAX_JUDGED_BODY {
            return false;
        }
        self.prefix.extend_from_slice(data);
        true
    }

    /// Judges by the head and the body read (`whole`: all of it; else it was too long).
    fn settle(self, whole: bool) {
        let exchange = &self.exchange;
        let head = Head {
            operation: &exchange.operation,
            method: exchange.method.as_str(),
            path: &exchange.path,
            status: exchange.status,
            headers: &exchange.headers,
        };
        let body = whole.then_some(self.prefix.as_slice());
        let judgement = self.service.judge.judge(&head, body);
        settle(self.permit, &self.service, judgement, &self.secrets);
    }

    /// Reads what is left of the start of the body after the client has gone — within the
    /// call's timeout, at most what the rules read — and settles (off the caller: a task; with
    /// no runtime, by the head alone).
    fn settle_without_client(mut self, mut rest: UpstreamBody) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.settle(false);
            return;
        };
        runtime.spawn(async move {
            use http_body_util::BodyExt as _;
            loop {
                let frame = tokio::time::timeout_at(self.deadline, rest.frame()).await;
                match frame {
                    Ok(None) => return self.settle(true),
                    Ok(Some(Ok(frame))) => {
                        if let Some(data) = frame.data_ref()
                            && !self.take(data)
                        {
                            return self.settle(false);
                        }
                    }
                    Ok(Some(Err(error))) => {
                        let failure = classify::body_error(&error, self.service.name());
                        return self.fail(failure, FailureKind::Failure);
                    }
                    Err(_) => {
                        let detail = format!(
                            "no complete answer within {} ms (a real call)",
                            self.timeout.as_millis()
                        );
                        let failure = ProbeError::new(FailureReason::Timeout, detail);
                        return self.fail(failure, FailureKind::Timeout);
                    }
                }
            }
        });
    }

    fn fail(self, failure: ProbeError, outcome: FailureKind) {
        let failure = failure.saying(Said {
            operation: Some(self.exchange.operation.to_string()),
            code: None,
            message: None,
        });
        self.service.note_failure(&failure);
        match outcome {
            FailureKind::Timeout => self.permit.record_timeout(&failure),
            FailureKind::Failure => self.permit.record_failure(&failure),
        }
    }
}

enum FailureKind {
    Timeout,
    Failure,
}

/// What an answer's head says of its body, for the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyAhead {
    /// None will be read (a `HEAD`), or it is longer than the rules read: the head decides.
    Unread,
    /// It is known to be empty.
    Empty,
    /// It is to come.
    Coming,
}

/// The verdict of a call whose answer's `head` has come: given now, through `permit`, when the
/// head decides it or the body will not be read (`body`); else waiting on the start of the
/// body, with the `exchange` (made only then) the rules read with it.
pub(crate) fn verdict_by_head(
    permit: OwnedPermit,
    service: &Arc<Service>,
    head: &Head<'_>,
    body: BodyAhead,
    secrets: RequestSecrets,
    exchange: impl FnOnce() -> Exchange,
    started: Instant,
) -> Option<PendingVerdict> {
    let judgement = match (service.judge.plan(head), body) {
        (crate::provider::Plan::Decided(judgement), _) => judgement,
        (_, BodyAhead::Unread) => service.judge.judge(head, None),
        // An empty body is never polled: judge it now.
        (_, BodyAhead::Empty) => service.judge.judge(head, Some(&[])),
        (_, BodyAhead::Coming) => {
            let service = Arc::clone(service);
            return Some(PendingVerdict::new(
                permit,
                service,
                exchange(),
                secrets,
                started,
            ));
        }
    };
    settle(permit, service, judgement, &secrets);
    None
}

/// Reports a real call's `judgement` through `permit`, once the service has done what it asks
/// (a failure noted first, so whoever hears of the transition it causes reads why).
pub(crate) fn settle(
    permit: OwnedPermit,
    service: &Service,
    mut judgement: Judgement,
    secrets: &RequestSecrets,
) {
    if !judgement.detail.is_empty() {
        judgement.detail.push_str(" (a real call)");
    }
    let secrets = match judgement.verdict {
        crate::outcome::Verdict::Failure(_) => secrets.values(),
        _ => Vec::new(),
    };
    match service.settle(&judgement, &secrets) {
        Settled::Success => permit.record_success(),
        Settled::Ignored => permit.record_ignored(),
        Settled::Failure(failure) => permit.record_failure(&failure),
    }
}

/// Why a watched body ended early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyCut {
    /// No byte arrived for the idle limit (or the judged start of the body missed the call's
    /// timeout).
    #[error("the provider's answer stopped for {0:?}")]
    Stalled(Duration),
    /// The provider's connection broke mid-body.
    #[error("the provider's answer broke off")]
    Broken,
}

pin_project! {
    /// An answer's body on its way to the client: ended when it stops moving for `idle`, and,
    /// while a verdict waits on it, its start kept for the judge. A client that leaves before
    /// the start of the body has passed does not lose the verdict: the rest of that start is
    /// read, within the call's timeout, after it has gone.
    pub(crate) struct Watched {
        // Taken when the body is dropped with a verdict still waiting on it.
        inner: Option<UpstreamBody>,
        #[pin]
        timer: Sleep,
        idle: Duration,
        last_data: Instant,
        pending: Option<PendingVerdict>,
    }

    impl PinnedDrop for Watched {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let (Some(pending), Some(rest)) = (this.pending.take(), this.inner.take()) {
                pending.settle_without_client(rest);
            }
        }
    }
}

impl Watched {
    pub(crate) fn new(
        inner: UpstreamBody,
        idle: Duration,
        pending: Option<PendingVerdict>,
    ) -> Self {
        let now = Instant::now();
        let first = pending
            .as_ref()
            .map_or(now + idle, |pending| pending.deadline.min(now + idle));
        Self {
            inner: Some(inner),
            timer: tokio::time::sleep_until(first),
            idle,
            last_data: now,
            pending,
        }
    }

    /// The moment the body is cut unless data arrives.
    fn due(last_data: Instant, idle: Duration, pending: Option<&PendingVerdict>) -> Instant {
        let stalled = last_data + idle;
        pending.map_or(stalled, |pending| pending.deadline.min(stalled))
    }
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(&mut *inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.last_data = Instant::now();
                    if let Some(pending) = this.pending.as_mut() {
                        let kept = pending.take(data);
                        // The server stops asking once the body says it has ended: judge now.
                        let ended = inner.is_end_stream();
                        if (!kept || ended)
                            && let Some(pending) = this.pending.take()
                        {
                            // Past what a judge reads the status decides; at the end, the body.
                            pending.settle(kept);
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(pending) = this.pending.take() {
                    let failure = classify::body_error(&error, pending.service.name());
                    pending.fail(failure, FailureKind::Failure);
                }
                Poll::Ready(Some(Err(BodyCut::Broken.into())))
            }
            Poll::Ready(None) => {
                if let Some(pending) = this.pending.take() {
                    pending.settle(true);
                }
                Poll::Ready(None)
            }
            Poll::Pending => loop {
                ready!(this.timer.as_mut().poll(cx));
                let now = Instant::now();
                let due = Self::due(*this.last_data, *this.idle, this.pending.as_ref());
                if due > now {
                    this.timer.as_mut().reset(due);
                    continue;
                }
                if let Some(pending) = this.pending.take() {
                    let detail = format!(
                        "no complete answer within {} ms (a real call)",
                        pending.timeout.as_millis()
                    );
                    let failure = ProbeError::new(FailureReason::Timeout, detail);
                    pending.fail(failure, FailureKind::Timeout);
                }
                return Poll::Ready(Some(Err(BodyCut::Stalled(*this.idle).into())));
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(UpstreamBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), UpstreamBody::size_hint)
    }
}
