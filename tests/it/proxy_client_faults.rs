//! Whose fault it is, decided at the boundary: a client that sends malformed framing, aborts
//! its upload or stops reading its download ends its own exchange, is counted as a caller
//! outcome of kind `client`, and never moves the breaker nor counts against the provider.
//! Raw sockets, since real clients do not misbehave on demand.

use std::net::SocketAddr;

use breakerd::daemon::RunningDaemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::upstream::Upstream;
use crate::support::{eventually, get_json, http_get, sample, start_daemon};

/// An upstream, and a daemon proxying `app` to it (checked there once an hour).
async fn app_behind_the_proxy() -> (Upstream, RunningDaemon) {
    let upstream = Upstream::start().await;
    let url = upstream.url();
    let daemon = start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.app]\nkind = \"http\"\nurl = \"{url}/health\"\nupstream = \"{url}/\"\n\
         every = \"1h\"\nfailure_threshold = 3\ntimeout = \"2s\"\nreset_timeout = \"1h\"\n"
    ))
    .await;
    (upstream, daemon)
}

fn proxy(daemon: &RunningDaemon) -> SocketAddr {
    daemon.proxy_address().expect("the proxy runs")
}

async fn metrics(daemon: &RunningDaemon) -> String {
    http_get(daemon.address(), "/metrics").await.1
}

/// The sum of `family`'s series for `app` whose labels contain `label`.
fn total(text: &str, family: &str, label: &str) -> f64 {
    let head = format!("{family}{{service=\"app\",");
    text.lines()
        .filter(|line| line.starts_with(&head) && line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Caller outcomes of kind `client`.
fn client_outcomes(text: &str) -> f64 {
    total(text, "breakerd_caller_outcomes_total", "kind=\"client\"")
}

/// Real calls counted against the provider (failures and timeouts).
fn provider_failures(text: &str) -> f64 {
    total(text, "breakerd_calls_total", "outcome=\"failure\"")
        + total(text, "breakerd_calls_total", "outcome=\"timeout\"")
}

/// The breaker is closed and has counted no failure.
async fn assert_untouched(daemon: &RunningDaemon) {
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/app").await;
    assert_eq!(stats["state"], "CLOSED", "{stats}");
    assert_eq!(stats["failureCount"], 0, "{stats}");
    let text = metrics(daemon).await;
    assert_eq!(provider_failures(&text), 0.0, "{text}");
    assert_eq!(
        sample(&text, "breakerd_consecutive_failures{service=\"app\"}"),
        Some(0.0)
    );
}

/// A connection that has sent 1,000 of an upload's 100,000 bytes, once the upstream has them.
async fn started_upload(daemon: &RunningDaemon, upstream: &Upstream) -> TcpStream {
    let mut stream = TcpStream::connect(proxy(daemon)).await.unwrap();
    stream
        .write_all(b"POST /app/upload HTTP/1.1\r\nhost: proxy\r\ncontent-length: 100000\r\n\r\n")
        .await
        .unwrap();
    stream.write_all(&[b'x'; 1000]).await.unwrap();
    upstream.first_upload_chunk().await;
    stream
}

/// Waits until `round` client outcomes are counted.
async fn counted(daemon: &RunningDaemon, round: u32) {
    eventually(5, "the client outcome is counted", || async {
        client_outcomes(&metrics(daemon).await) == f64::from(round)
    })
    .await;
}

/// The start of what `stream` answers (empty when it answers nothing).
async fn answer_of(stream: &mut TcpStream) -> String {
    let mut answer = vec![0u8; 2048];
    let read = stream.read(&mut answer).await.unwrap_or(0);
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

/// The status code at the start of what `stream` answers, if it answers at all.
async fn status_of(stream: &mut TcpStream) -> Option<u16> {
    answer_of(stream).await.split(' ').nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunked_uploads_get_400_and_leave_the_breaker_closed() {
    let (_upstream, daemon) = app_behind_the_proxy().await;
    for round in 1..=3 {
        let mut stream = TcpStream::connect(proxy(&daemon)).await.unwrap();
        stream
            .write_all(
                b"POST /app/upload HTTP/1.1\r\nhost: proxy\r\ntransfer-encoding: chunked\r\n\r\n\
                  5\r\nhello\r\nnot-a-size\r\n",
            )
            .await
            .unwrap();
        let answer = answer_of(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "round {round}: {answer}"
        );
        assert!(
            answer.contains("x-breakerd-answer: client_fault"),
            "{answer}"
        );
        assert!(answer.contains("the provider was not blamed"), "{answer}");
        counted(&daemon, round).await;
    }
    assert_untouched(&daemon).await;
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_uploads_leave_the_breaker_closed() {
    let (upstream, daemon) = app_behind_the_proxy().await;
    for round in 1..=3 {
        drop(started_upload(&daemon, &upstream).await);
        counted(&daemon, round).await;
    }
    assert_untouched(&daemon).await;
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_get_408_and_leave_the_breaker_closed() {
    let (upstream, daemon) = app_behind_the_proxy().await;
    for round in 1..=3 {
        let mut stream = started_upload(&daemon, &upstream).await;
        // Nothing more is sent: at the service's timeout the proxy gives up on the client.
        let answer = answer_of(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "round {round}: {answer}"
        );
        assert!(
            answer.contains("x-breakerd-answer: client_timeout"),
            "{answer}"
        );
        counted(&daemon, round).await;
    }
    assert_untouched(&daemon).await;
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_a_download_leave_the_breaker_closed() {
    let (_upstream, daemon) = app_behind_the_proxy().await;
    for round in 1..=3 {
        let mut stream = TcpStream::connect(proxy(&daemon)).await.unwrap();
        stream
            .write_all(b"GET /app/download/67108864 HTTP/1.1\r\nhost: proxy\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(status_of(&mut stream).await, Some(200), "round {round}");
        // The answer's head decided the call: a success, whatever the client does next.
        eventually(5, "the answer is judged", || async {
            total(
                &metrics(&daemon).await,
                "breakerd_calls_total",
                "outcome=\"success\",source=\"traffic\"",
            ) == f64::from(round)
        })
        .await;
        // It stops reading past the call's timeout, then leaves without the rest.
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        drop(stream);
        eventually(5, "the proxy lets the connection go", || async {
            sample(&metrics(&daemon).await, "breakerd_http_connections") == Some(1.0)
        })
        .await;
    }
    assert_untouched(&daemon).await;
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_pauses_past_the_timeout_still_gets_the_whole_download() {
    let (_upstream, daemon) = app_behind_the_proxy().await;
    let size = 32 * 1024 * 1024;
    let mut stream = TcpStream::connect(proxy(&daemon)).await.unwrap();
    stream
        .write_all(format!("GET /app/download/{size} HTTP/1.1\r\nhost: proxy\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let head_end = loop {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the proxy closed before the head");
        received.extend_from_slice(&buffer[..read]);
        if let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
    };
    assert!(received.starts_with(b"HTTP/1.1 200"));
    // Not reading for longer than the service's timeout: the client's pause, not a stall of
    // the provider's.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let mut body = received.len() - head_end;
    let read_all = async {
        while body < size {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => body += read,
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), read_all)
        .await
        .expect("the download ends");
    assert_eq!(body, size, "the whole body arrives after the pause");
    assert_untouched(&daemon).await;
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_leave_before_the_answer_leave_the_breaker_closed() {
    let healthy = Upstream::start().await;
    let slow = FakeProvider::start(Mode::Slow(std::time::Duration::from_millis(1500))).await;
    let daemon = start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.app]\nkind = \"http\"\nurl = \"{}/health\"\nupstream = \"{}\"\n\
         every = \"1h\"\nfailure_threshold = 3\ntimeout = \"2s\"\nreset_timeout = \"1h\"\n",
        healthy.url(),
        slow.url()
    ))
    .await;
    for round in 1..=3 {
        let mut stream = TcpStream::connect(proxy(&daemon)).await.unwrap();
        stream
            .write_all(b"GET /app/x HTTP/1.1\r\nhost: proxy\r\n\r\n")
            .await
            .unwrap();
        eventually(5, "the provider has the request", || async {
            slow.requests().len() == round
        })
        .await;
        drop(stream);
        eventually(5, "the client outcome is counted", || async {
            client_outcomes(&metrics(&daemon).await) == round as f64
        })
        .await;
    }
    assert_untouched(&daemon).await;
    daemon.shutdown().await.unwrap();
}
