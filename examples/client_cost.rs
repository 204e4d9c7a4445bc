//! What the HTTP client stack costs per kept-alive request, measured the way breakerd's
//! scheduler sends checks (a batch every few tens of milliseconds): reqwest (what checks used
//! before they got their own connections; alerts and the proxy still use it) against hyper's
//! bare HTTP/1.1 connections, one per request in flight — the measurement that led checks to
//! hyper's connections.
//!
//! Run: `cargo run --release --example load_target -- 127.0.0.1:18099 &` then
//! `cargo run --release --example client_cost -- 18099 reqwest 200 10` (port, `reqwest` or
//! `hyper`, requests per second, requests per batch; add `fresh` for a new connection per
//! request). CPU is the process's own, from /proc.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use tokio::sync::Mutex;

/// Seconds measured.
const SECONDS: u64 = 15;

/// This process's CPU seconds so far (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0.0))
        .collect();
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / 100.0
}

type Sender = Arc<Mutex<hyper::client::conn::http1::SendRequest<Body>>>;

async fn hyper_senders(port: u16, count: u64) -> std::io::Result<Vec<Sender>> {
    let mut senders = Vec::new();
    for _ in 0..count {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        senders.push(Arc::new(Mutex::new(sender)));
    }
    Ok(senders)
}

async fn with_hyper_fresh(port: u16) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let sender = hyper_senders(port, 1).await?.pop().ok_or("no connection")?;
    with_hyper(sender).await
}

async fn with_hyper(sender: Sender) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let request = hyper::Request::get("/health")
        .header("host", "127.0.0.1")
        .body(Body::empty())?;
    let mut sender = sender.lock().await;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    drop(sender);
    Ok(
        axum::body::to_bytes(Body::new(response.into_body()), 64 * 1024)
            .await?
            .len(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: client_cost PORT reqwest|hyper RATE BATCH";
    let port: u16 = args.get(1).and_then(|a| a.parse().ok()).ok_or(usage)?;
    let stack = args.get(2).cloned().ok_or(usage)?;
    let rate: u64 = args.get(3).and_then(|a| a.parse().ok()).ok_or(usage)?;
    let batch: u64 = args.get(4).and_then(|a| a.parse().ok()).ok_or(usage)?;
    let fresh = args.get(5).is_some_and(|a| a == "fresh");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = format!("http://127.0.0.1:{port}/health");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(if fresh { 0 } else { 32 })
            .build()?;
        let senders = hyper_senders(port, batch).await?;
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 * batch / rate.max(1)));
        let (cpu, started) = (cpu_seconds(), Instant::now());
        let mut sent = 0u64;
        while started.elapsed() < Duration::from_secs(SECONDS) {
            tick.tick().await;
            for sender in &senders {
                sent += 1;
                if stack == "reqwest" {
                    let request = client.get(&url).send();
                    tokio::spawn(async move {
                        if let Ok(response) = request.await {
                            let _ = response.bytes().await;
                        }
                    });
                } else if fresh {
                    tokio::spawn(with_hyper_fresh(port));
                } else {
                    tokio::spawn(with_hyper(Arc::clone(sender)));
                }
            }
        }
        let per_request = (cpu_seconds() - cpu) / sent as f64 * 1e6;
        let connections = if fresh { "fresh" } else { "kept-alive" };
        println!("{stack}, {connections}, at {rate}/s in batches of {batch}: {per_request:.1} µs CPU per request ({sent} requests)");
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
