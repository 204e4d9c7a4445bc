//! A minimal local HTTP target for `scripts/load_test.py`: answers `GET /health` with a small
//! JSON body, on the address given as the first argument.

use std::net::SocketAddr;

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
        let app = Router::new().route("/health", get(|| async { r#"{"status":"ok"}"# }));
        let listener = tokio::net::TcpListener::bind(address).await?;
        axum::serve(listener, app).await
    })
}
