//! A minimal local HTTP target for `scripts/load_test.py`, on the address given as the first
//! argument: `GET /health` answers a small JSON body; `GET /flap` hangs (never answers) for 20 s,
//! then answers for 20 s, and so on — a provider that keeps going down and coming back.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;

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
            .route("/flap", get(flap));
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
