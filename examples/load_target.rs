//! A minimal local HTTP target for `scripts/load_test.py`, on the address given as the first
//! argument: `GET /health` answers a small JSON body; `GET /flap` hangs (never answers) for 20 s,
//! then answers for 20 s, and so on — a provider that keeps going down and coming back.
//! For `scripts/proxy_bench.py`: `GET /download/{bytes}` streams that many bytes in 64 KiB
//! chunks, and `POST /upload` reads a body of any size as it arrives and answers its length.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::routing::{get, post};
use futures_util::StreamExt;

/// One chunk of a download.
const CHUNK: usize = 64 * 1024;

fn main() -> std::io::Result<()> {
    let address: SocketAddr = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 18080)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = Router::new()
            .route("/health", get(|| async { r#"{"status":"ok"}"# }))
            .route("/flap", get(flap))
            .route("/download/{bytes}", get(download))
            .route("/upload", post(upload));
        let listener = tokio::net::TcpListener::bind(address).await?;
        axum::serve(listener, app).await
    })
}

async fn flap() -> &'static str {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    if (seconds / 20) % 2 == 0 {
        std::future::pending::<()>().await;
    }
    r#"{"status":"ok"}"#
}

async fn download(Path(bytes): Path<usize>) -> axum::response::Response {
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let chunks = futures_util::stream::unfold(0usize, move |sent| {
        let chunk = chunk.clone();
        async move {
            (sent < bytes).then(|| {
                let size = CHUNK.min(bytes - sent);
                (Ok::<_, std::io::Error>(chunk.slice(..size)), sent + size)
            })
        }
    });
    axum::response::Response::builder()
        .header("content-length", bytes)
        .body(Body::from_stream(chunks))
        .unwrap_or_default()
}

async fn upload(body: Body) -> String {
    let mut stream = body.into_data_stream();
    let mut length = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        length += chunk.len();
    }
    format!("{{\"bytes\":{length}}}")
}
