//! A real application server behind the proxy (axum on loopback): it echoes what it received,
//! streams large downloads, reads large uploads as they arrive, and can hold a body half sent,
//! so tests can tell streaming from buffering.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// Size of one streamed chunk.
pub const CHUNK: usize = 64 * 1024;

/// The byte at `index` of every generated body.
pub fn pattern(index: usize) -> u8 {
    ((index * 31 + 7) % 251) as u8
}

/// FNV-1a over `bytes`, continuing from `hash` (start with [`FNV_START`]).
pub fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    hash
}

pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The checksum of the first `length` pattern bytes.
pub fn pattern_checksum(length: usize) -> u64 {
    let bytes: Vec<u8> = (0..length).map(pattern).collect();
    fnv(FNV_START, &bytes)
}

#[derive(Default)]
struct Shared {
    hits: AtomicUsize,
    /// Released by the test to let `/held` finish its body.
    release: Notify,
    /// Told when `/upload` has its first chunk.
    first_upload_chunk: Notify,
}

/// The running server.
pub struct Upstream {
    address: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let router = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/echo/{*rest}", any(echo))
            .route("/download/{bytes}", get(download))
            .route("/held", get(held))
            .route("/upload", post(upload))
            .route("/status/{code}", any(status))
            .route("/throttled/{seconds}", any(throttled))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), count))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let address = listener.local_addr().expect("upstream address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            address,
            shared,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Requests received, `/health` (the checks) included.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Lets `/held` send the rest of its body.
    pub fn release(&self) {
        self.shared.release.notify_one();
    }

    /// Waits until `/upload` has received its first chunk.
    pub async fn first_upload_chunk(&self) {
        self.shared.first_upload_chunk.notified().await;
    }
}

async fn count(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    next.run(request).await
}

/// Everything it received, with two cookies and a header of its own.
async fn echo(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_string()))
        .collect();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let echoed = json!({
        "method": parts.method.as_str(),
        "target": parts.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = (StatusCode::CREATED, axum::Json(echoed)).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1; Path=/"));
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static("b=2; HttpOnly"),
    );
    headers.insert("x-upstream", HeaderValue::from_static("yes"));
    response
}

/// `bytes` pattern bytes, streamed in chunks with a `Content-Length`.
async fn download(Path(bytes): Path<usize>) -> Response {
    let chunks = futures_util::stream::unfold(0usize, move |sent| async move {
        (sent < bytes).then(|| {
            let end = (sent + CHUNK).min(bytes);
            let chunk: Vec<u8> = (sent..end).map(pattern).collect();
            (Ok::<_, std::io::Error>(Bytes::from(chunk)), end)
        })
    });
    let mut response = Response::new(Body::from_stream(chunks));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes));
    response
}

/// `first,` at once; `rest` only once the test releases it.
async fn held(State(shared): State<Arc<Shared>>) -> Response {
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        let _ = sender.send(Ok(Bytes::from_static(b"first,"))).await;
        shared.release.notified().await;
        let _ = sender.send(Ok(Bytes::from_static(b"rest"))).await;
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    Response::new(Body::from_stream(stream))
}

/// Reads the body as it arrives: its length and checksum.
async fn upload(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let mut stream = body.into_data_stream();
    let (mut length, mut hash) = (0usize, FNV_START);
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        if length == 0 {
            shared.first_upload_chunk.notify_one();
        }
        length += chunk.len();
        hash = fnv(hash, &chunk);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    axum::Json(json!({ "bytes": length, "checksum": hash.to_string(), "contentLength": declared }))
        .into_response()
}

/// 429 with `Retry-After` (RFC 9110, 10.2.3) in seconds.
async fn throttled(Path(seconds): Path<u64>) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({ "status": 429 })),
    )
        .into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(seconds),
    );
    response
}

async fn status(Path(code): Path<u16>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(json!({ "status": code }))).into_response()
}
