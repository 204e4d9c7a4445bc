//! The proxy's share of the descriptors, enforced: at most so many calls forwarded at once, each
//! holding its place until its answer has streamed through (or the client is gone); one more is
//! answered 503 with reason `capacity` at once, without the provider and without its breaker
//! hearing of it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Json;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::debug;

use super::answer::ANSWER_HEADER;
use crate::metrics::{Metrics, PROXY_CAPACITY};

/// Calls the proxy forwards at once.
#[derive(Debug)]
pub(crate) struct Capacity {
    permits: Arc<Semaphore>,
    limit: usize,
    /// Where a call answered for want of room is counted.
    metrics: Arc<Metrics>,
}

impl Capacity {
    /// Room for `limit` calls at once (at least one; at most what a semaphore holds).
    /// Calls refused for want of room are counted in `metrics`.
    pub(crate) fn new(limit: usize, metrics: Arc<Metrics>) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            metrics,
        }
    }
}

impl Capacity {
    /// A place for one call while there is room (held until the answer's body is dropped:
    /// [`held`]); `None`, counted, when there is none: answer it [`Capacity::full`].
    pub(crate) fn admit(&self) -> Option<OwnedSemaphorePermit> {
        let place = Arc::clone(&self.permits).try_acquire_owned().ok();
        if place.is_none() {
            self.metrics.proxy_local_error(PROXY_CAPACITY);
            debug!(
                limit = self.limit,
                "proxy at capacity: a call was answered 503"
            );
        }
        place
    }

    /// The answer to a call there was no room for.
    pub(crate) fn full(&self) -> Response {
        full(self.limit)
    }
}

/// `response`, its body holding `guard` until it is dropped (streamed through, or the client
/// gone): a call's place, under the proxy's capacity or a service's cap.
pub(crate) fn held<G: Send + Sync + 'static>(response: Response, guard: G) -> Response {
    response.map(|body| {
        Body::new(Held {
            inner: body,
            _guard: guard,
        })
    })
}

/// 503: the proxy is forwarding as many calls as its share of descriptors allows.
fn full(limit: usize) -> Response {
    let body = json!({
        "success": false,
        "message": format!("breakerd's proxy is forwarding {limit} calls at once, its most; try again shortly (the provider was not blamed)"),
        "reason": "capacity",
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(ANSWER_HEADER, HeaderValue::from_static("capacity"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

pin_project! {
    /// An answer's body, holding the call's place until it is dropped.
    struct Held<G> {
        #[pin]
        inner: Body,
        _guard: G,
    }
}

impl<G> HttpBody for Held<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
