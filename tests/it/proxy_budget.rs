//! The proxy within its share of descriptors: a client that stops reading is cut after
//! `idle_timeout` and its upstream connection released. An upstream that counts its open
//! connections tells.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use breakerd::daemon::RunningDaemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::upstream::Upstream;
use crate::support::{eventually, start_daemon};

/// The most a request head may take at the counting upstream.
const MAX_HEAD: usize = 64 * 1024;

/// An HTTP/1.1 upstream on raw sockets that counts the connections open to it: `GET /endless`
/// streams zeros until the connection breaks; anything else answers `ok`, kept alive.
struct Counting {
    address: SocketAddr,
    open: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Counting {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let address = listener.local_addr().expect("upstream address");
        let open = Arc::new(AtomicUsize::new(0));
        let counting = Arc::clone(&open);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counting.fetch_add(1, Ordering::SeqCst);
                let open = Arc::clone(&counting);
                tokio::spawn(async move {
                    serve(stream).await;
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            address,
            open,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// Answers requests on one connection until it ends.
async fn serve(mut stream: TcpStream) {
    let mut buffer = Vec::new();
    while let Some(head) = read_head(&mut stream, &mut buffer).await {
        if head.starts_with("GET /endless") {
            let start = "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 1073741824\r\n\r\n";
            if stream.write_all(start.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![0u8; 64 * 1024];
            // Until the reader goes away: its close (a reset) fails the write.
            while stream.write_all(&chunk).await.is_ok() {}
            return;
        }
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The next request head (requests here have no body); `None` when the connection ends.
async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            let head: Vec<u8> = buffer.drain(..end + 4).collect();
            return Some(String::from_utf8_lossy(&head).into_owned());
        }
        if buffer.len() > MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
}

/// A daemon proxying `app` to `upstream` (its checks going to `checks`, once an hour), with
/// `server` lines added to `[server]`.
async fn daemon(checks: &Upstream, upstream: &str, server: &str) -> RunningDaemon {
    start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n{server}\n\
         [services.app]\nkind = \"http\"\nurl = \"{}/health\"\nupstream = \"{upstream}/\"\n\
         every = \"1h\"\nfailure_threshold = 3\ntimeout = \"30s\"\nreset_timeout = \"1h\"\n",
        checks.url()
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_and_its_upstream_connection_released() {
    let checks = Upstream::start().await;
    let upstream = Counting::start().await;
    let daemon = daemon(&checks, &upstream.url(), "idle_timeout = \"1s\"").await;
    let proxy = daemon.proxy_address().expect("the proxy runs");
    let mut client = TcpStream::connect(proxy).await.expect("connect");
    client
        .write_all(b"GET /app/endless HTTP/1.1\r\nhost: app\r\n\r\n")
        .await
        .expect("request sent");
    let mut first = vec![0u8; 4096];
    let read = client.read(&mut first).await.expect("the answer starts");
    assert!(
        first[..read].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first[..read])
    );
    eventually(10, "the upstream connection is open", || async {
        upstream.open() == 1
    })
    .await;
    // The client reads nothing more: the buffers between fill, and no byte moves.
    let stalled = Instant::now();
    eventually(20, "the upstream sees its connection closed", || async {
        upstream.open() == 0
    })
    .await;
    assert!(
        stalled.elapsed() >= Duration::from_millis(800),
        "cut after idle_timeout, not before ({:?})",
        stalled.elapsed()
    );
    // And the client's connection has ended: what was buffered drains, then nothing more.
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match client.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the stalled client's connection was cut");
    daemon.shutdown().await.expect("clean shutdown");
}
