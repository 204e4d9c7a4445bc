//! The sidecar proxy: `/<service>/<rest>` is forwarded to the service's upstream over its
//! breaker, so an application in any language gets the breaker by changing its base URL. Each
//! answer is judged by the service's rules (its provider's language), and the verdict feeds the
//! same breaker, metrics (`source="traffic"`, by operation) and alerts as the checks; while the
//! breaker is open the proxy answers at once with the seed's JSON and never contacts the
//! provider. Bodies stream in both directions; nothing about a request (URL, headers, body) is
//! logged or kept. Whose fault a failed exchange is gets decided here: a client's malformed or
//! broken-off upload is a caller outcome (`client`), breakerd running out of descriptors its
//! own trouble; neither moves the breaker.

mod admission;
mod answer;
mod body;
mod capacity;
pub(crate) mod fast;
mod headers;
mod route;
mod secrets;

use std::sync::Arc;

use std::future::Future;
use std::pin::Pin;

use axum::body::{Body, HttpBody};
use axum::http::{HeaderMap, HeaderValue, Method, Request, header};
use axum::response::Response;
use hyper::body::Incoming;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, warn};

pub use crate::provider::MAX_JUDGED_BODY;
pub use answer::{ANSWER_HEADER, FALLBACK_HEADER};

use crate::api::Published;
use crate::metrics::{FallbackOutcome, Metrics, PROXY_DESCRIPTORS};
use crate::outcome::{CallerKind, FailureReason, ProbeError, Said};
use crate::probe::classify;
use crate::provider::Head;
use crate::registry::Service;
use crate::transport::upstream::{Upstream, UpstreamError};
use body::{BodyAhead, Exchange, Upload, UploadProgress, Watched};
use secrets::RequestSecrets;

/// The proxy's state: the services as last published. Each service forwards with the client
/// [`crate::transport`] built with it (trusting its `ca_file`; pooled, HTTP/1.1 or h2 as the
/// upstream offers, redirects passed back to the caller, never followed).
#[derive(Debug)]
pub struct Proxy {
    published: watch::Receiver<Arc<Published>>,
    capacity: Arc<capacity::Capacity>,
    /// Where breakerd's own troubles (out of descriptors) are counted.
    metrics: Arc<Metrics>,
    /// When breakerd's own shortage was last logged at WARN (at most every ten seconds).
    local_warned: std::sync::Mutex<Option<Instant>>,
}

impl Proxy {
    /// A proxy to the services `published` names, as they change on reload, forwarding at
    /// most `in_flight` calls at once (its share of the descriptors, [`crate::budget`]); one
    /// more is answered 503 with reason `capacity`. breakerd's own troubles are counted in
    /// `metrics`.
    pub fn new(
        published: watch::Receiver<Arc<Published>>,
        metrics: Arc<Metrics>,
        in_flight: usize,
    ) -> Self {
        Self {
            published,
            capacity: Arc::new(capacity::Capacity::new(in_flight, Arc::clone(&metrics))),
            metrics,
            local_warned: std::sync::Mutex::default(),
        }
    }

    /// Whether to log breakerd's own shortage at WARN now (at most every ten seconds).
    fn warn_of_shortage(&self) -> bool {
        let mut last = self
            .local_warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = last.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(10));
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    /// The proxy as a hyper service: every method on every path, within its capacity.
    pub fn service(self: Arc<Self>) -> ProxyService {
        ProxyService(self)
    }
}

/// The proxy serving a connection's requests ([`Proxy::service`]); cheap to clone.
#[derive(Clone, Debug)]
pub struct ProxyService(Arc<Proxy>);

impl hyper::service::Service<Request<Incoming>> for ProxyService {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Self::Error>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let proxy = Arc::clone(&self.0);
        Box::pin(async move { Ok(forward(&proxy, request).await) })
    }
}

impl crate::serve::FirstLane for ProxyService {
    async fn serve(
        &self,
        stream: &mut tokio::net::TcpStream,
        limits: crate::serve::Limits,
        closed: &mut watch::Receiver<bool>,
    ) -> crate::serve::Handover {
        fast::serve(&self.0, stream, limits, closed).await
    }
}

/// Forwards one request, or answers it without the provider: to the service it names when its
/// breaker and cap let the call through, else to the service's `fallback` when that one's do
/// (marked `x-breakerd-fallback`), else the refusal of the service named.
async fn forward(proxy: &Proxy, request: Request<Incoming>) -> Response {
    let registry = Arc::clone(&proxy.published.borrow().registry);
    let uri = request.uri();
    let admission = match route::resolve(request.method(), uri, &registry) {
        Ok(route) => admit(&registry, route, request.method(), uri.path()).await,
        Err(refusal) => return answer::refused(refusal),
    };
    let Admission {
        route,
        admitted,
        fell_back,
    } = match admission {
        Ok(admission) => admission,
        Err(refused) => return refused,
    };
    let mut response = exchange(proxy, route, admitted, request).await;
    if let Some(name) = fell_back {
        response.headers_mut().insert(answer::FALLBACK_HEADER, name);
    }
    response
}

/// A call let through, and where it goes: the service named, or its fallback (named in
/// `fell_back`) when the service refused it.
pub(crate) struct Admission {
    route: route::Route,
    admitted: admission::Admitted,
    fell_back: Option<HeaderValue>,
}

/// Lets a call of `method` on `path` through along `route`, or to the service's
/// `fallback` when the service refuses it and the fallback does not; else the refusal of the
/// service named, as the proxy answers it.
async fn admit(
    registry: &crate::registry::Registry,
    route: route::Route,
    method: &Method,
    path: &str,
) -> Result<Admission, Response> {
    let below = route.path_in(path);
    let refused = match admission::admit(&route.service, method.as_str(), below).await {
        Ok(admitted) => {
            return Ok(Admission {
                route,
                admitted,
                fell_back: None,
            });
        }
        Err(refused) => refused,
    };
    let primary = Arc::clone(&route.service);
    let fallback = primary
        .config
        .fallback
        .as_deref()
        .and_then(|name| registry.get(name))
        .and_then(|fallback| route.to_fallback(fallback, path));
    let Some(fallback) = fallback else {
        return Err(refused.answer(primary.name()));
    };
    let below = fallback.path_in(path);
    let series = primary.metrics.proxy();
    match admission::admit(&fallback.service, method.as_str(), below).await {
        Ok(admitted) => {
            series.fell_back(fallback.service.name(), FallbackOutcome::Sent);
            debug!(
                service = primary.name(),
                fallback = fallback.service.name(),
                "a refused call went to the fallback"
            );
            let fell_back = HeaderValue::from_str(fallback.service.name()).ok();
            Ok(Admission {
                route: fallback,
                admitted,
                fell_back,
            })
        }
        Err(_) => {
            series.fell_back(fallback.service.name(), FallbackOutcome::Refused);
            Err(refused.answer(primary.name()))
        }
    }
}

/// Sends one admitted request along `route` and streams the answer back, judged by the
/// service's rules; the call's place among the proxy's and its service slot (if any) are held
/// until the answer has streamed through.
async fn exchange(
    proxy: &Proxy,
    route: route::Route,
    admitted: admission::Admitted,
    request: Request<Incoming>,
) -> Response {
    let admission::Admitted {
        operation,
        permit,
        slot,
    } = admitted;
    // Room among the proxy's calls, taken only now that the service let the call through (a
    // call waiting for its service's slot holds none), and held with the slot until the
    // answer's body is dropped; or 503 `capacity`, the breaker's permit handed back.
    let Some(place) = proxy.capacity.admit() else {
        return proxy.capacity.full();
    };
    let response = call(proxy, &route, operation, permit, request).await;
    capacity::held(response, (place, slot))
}

/// The call itself: the request sent on, the answer judged and streamed back.
async fn call(
    proxy: &Proxy,
    route: &route::Route,
    operation: crate::provider::Operation,
    permit: crate::breaker::OwnedPermit,
    request: Request<Incoming>,
) -> Response {
    let service = Arc::clone(&route.service);
    let Some(upstream) = route.upstream() else {
        // A route is only made to a service with an upstream.
        permit.record_ignored();
        return answer::refused(route::Refusal::NotFound(format!(
            "service \"{}\" has no upstream to proxy to",
            service.name()
        )));
    };
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let uri = parts.uri;
    let path = route.path_in(uri.path());
    // Kept only where a rule quotes the provider's answer (the defaults quote nothing).
    let secrets = if service.judge.quotes_answer() {
        RequestSecrets::of(&parts.headers, uri.query())
    } else {
        RequestSecrets::default()
    };
    let target = match route.target_uri(uri.path(), uri.query()) {
        Ok(target) => target,
        Err(refusal) => {
            permit.record_ignored();
            return answer::refused(refusal);
        }
    };
    let method = parts.method;
    let head_only = method == Method::HEAD;
    let progress = Arc::new(UploadProgress::default());
    let upload = if body.is_end_stream() {
        Body::empty()
    } else {
        Body::new(Upload::new(body, Arc::clone(&progress)))
    };
    let mut headers = parts.headers;
    headers::strip_hop_by_hop(&mut headers, Some(upstream.host_header().clone()));
    let mut outbound = http::Request::new(upload);
    *outbound.method_mut() = method.clone();
    *outbound.uri_mut() = target;
    *outbound.headers_mut() = headers;
    let said = || Said {
        operation: Some(operation.name.to_string()),
        code: None,
        message: None,
    };
    let deadline = started + service.breaker.timeout();
    // Dropped before the upstream's client is done: the client left (its connection closed).
    let left = ClientLeft::armed(Arc::clone(&service), usize::from(operation.index));
    let sent = tokio::time::timeout_at(deadline, upstream.send(outbound)).await;
    left.disarm();
    let answered = match sent {
        Ok(Ok(answered)) => answered,
        // The client's body failed first: its doing, whatever the upstream's client says.
        Ok(Err(_)) if let Some(fault) = progress.client_fault() => {
            debug!(
                service = service.name(),
                "a proxied request's body failed: {}",
                fault.describe()
            );
            service
                .metrics
                .caller_outcome(usize::from(operation.index), CallerKind::Client);
            permit.record_ignored();
            return answer::client_fault(service.name(), fault);
        }
        Ok(Err(error)) => return proxy.unreached(&service, permit, &error, upstream, said()),
        Err(_) if progress.waiting_for_client() => {
            debug!(
                service = service.name(),
                "a proxied request's body stopped arriving"
            );
            service
                .metrics
                .caller_outcome(usize::from(operation.index), CallerKind::Client);
            permit.record_ignored();
            return answer::client_stalled(service.name());
        }
        Err(_) => return timed_out(&service, permit, said()),
    };
    let (mut parts, upstream_body) = answered.into_parts();
    let status = parts.status;
    let head = Head {
        operation: &operation.name,
        method: method.as_str(),
        path,
        status: status.as_u16(),
        headers: &parts.headers,
    };
    let ahead = if head_only || longer_than(&parts.headers, MAX_JUDGED_BODY) {
        BodyAhead::Unread
    } else if upstream_body.is_end_stream() {
        BodyAhead::Empty
    } else {
        BodyAhead::Coming
    };
    let exchange = || Exchange {
        operation: operation.name.clone(),
        method: method.clone(),
        path: path.to_string(),
        status: status.as_u16(),
        headers: parts.headers.clone(),
    };
    let pending = body::verdict_by_head(permit, &service, &head, ahead, secrets, exchange, started);
    let watched = Watched::new(upstream_body, service.breaker.timeout(), pending);
    headers::strip_hop_by_hop(&mut parts.headers, None);
    let mut response = Response::new(Body::new(watched));
    *response.status_mut() = status;
    *response.headers_mut() = parts.headers;
    response
}

impl Proxy {
    /// The call failed to reach the upstream or to get its answer (`error`): the provider's
    /// failure, noted and counted, and 502 — unless breakerd itself ran out of descriptors,
    /// which is its own shortage (counted, now and then logged) and 503.
    fn unreached(
        &self,
        service: &Service,
        permit: crate::breaker::OwnedPermit,
        error: &UpstreamError,
        upstream: &Upstream,
        said: Said,
    ) -> Response {
        if out_of_descriptors(error) {
            if self.warn_of_shortage() {
                warn!(
                    service = service.name(),
                    "breakerd is out of file descriptors: proxied calls are not being made (the provider is not blamed; counted in breakerd_proxy_local_errors_total)"
                );
            } else {
                debug!(service = service.name(), "out of file descriptors");
            }
            self.metrics.proxy_local_error(PROXY_DESCRIPTORS);
            permit.record_ignored();
            return answer::local(service.name(), PROXY_DESCRIPTORS);
        }
        let failure = classify::upstream_error(error, upstream.host()).saying(said);
        debug!(service = service.name(), %failure, "a real call failed");
        service.note_failure(&failure);
        permit.record_failure(&failure);
        answer::unreachable(service.name(), &failure)
    }
}

/// No answer came within the service's timeout: the provider's failure, noted and counted,
/// and 504.
fn timed_out(service: &Service, permit: crate::breaker::OwnedPermit, said: Said) -> Response {
    let error = service.breaker.timeout_error();
    service.note_failure(
        &ProbeError::new(
            FailureReason::Timeout,
            format!(
                "no answer within {} ms (a real call)",
                error.timeout().as_millis()
            ),
        )
        .saying(said),
    );
    permit.record_timeout(&error);
    answer::timeout(&error)
}

/// Counts the client's own outcome if the exchange is dropped while it waits on the upstream:
/// the client closed its connection before the proxy could answer. The permit, dropped with
/// it, leaves the breaker as it was (a half-open trial slot is given back).
struct ClientLeft {
    service: Option<Arc<Service>>,
    operation: usize,
}

impl ClientLeft {
    fn armed(service: Arc<Service>, operation: usize) -> Self {
        Self {
            service: Some(service),
            operation,
        }
    }

    fn disarm(mut self) {
        self.service = None;
    }
}

impl Drop for ClientLeft {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            client_left(&service, self.operation);
        }
    }
}

/// The client left before the proxy could answer: its own outcome, counted for `operation`.
fn client_left(service: &Service, operation: usize) {
    debug!(
        service = service.name(),
        "a client left before the proxy could answer"
    );
    service
        .metrics
        .caller_outcome(operation, CallerKind::Client);
}

/// Whether `error` (anywhere in its chain) says this process ran out of file descriptors
/// (EMFILE, ENFILE): breakerd's own shortage, not the provider's failure.
fn out_of_descriptors(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                return true;
            }
            // An I/O error that wraps another names it only here (its `source` skips it).
            if let Some(inner) = io.get_ref() {
                cause = Some(inner);
                continue;
            }
        }
        cause = error.source();
    }
    false
}

/// Whether an answer's `Content-Length` says its body is longer than `limit`.
fn longer_than(headers: &HeaderMap, limit: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64)
}

#[cfg(test)]
mod tests {
    use super::out_of_descriptors;

    #[test]
    fn only_running_out_of_descriptors_is_our_own_shortage() {
        let wrapped = |code| std::io::Error::other(std::io::Error::from_raw_os_error(code));
        assert!(out_of_descriptors(&wrapped(libc::EMFILE)));
        assert!(out_of_descriptors(&wrapped(libc::ENFILE)));
        assert!(!out_of_descriptors(&wrapped(libc::ECONNREFUSED)));
        assert!(!out_of_descriptors(&std::io::Error::other("reset")));
    }
}
