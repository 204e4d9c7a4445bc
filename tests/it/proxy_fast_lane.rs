//! The proxy's fast lane, on the wire: answers framed every way HTTP/1.1 frames them (a
//! length, chunks with trailers, the connection's close, informational heads first) pass back
//! byte for byte; pipelined requests are answered in order over one pooled upstream connection;
//! a connection whose request the lane does not carry goes on in hyper; an upstream that
//! closes its idle connections costs no call; and answers HTTP cannot frame count against the
//! provider. Raw sockets on both sides, since the framing is what is tested.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use breakerd::daemon::RunningDaemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::{get_json, http_get, sample, start_daemon};

/// An answer framed in chunks, with a trailer.
const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 42\r\n\r\n";

/// An answer whose body ends when the connection does.
const UNTIL_CLOSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it, until the close";

/// An informational head, then the answer.
const EARLY_HINTS: &[u8] =
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// An answer with a length, after which the upstream closes the connection without saying so.
const THEN_CLOSED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nclosed";

/// An answer whose length cannot be told (RFC 9112 6.1: a request smuggler's favourite).
const BOTH_LENGTHS: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";

/// A chunked answer whose second chunk size is not hex: the framing breaks mid-body.
const BROKEN_CHUNKS: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nnot a chunk\r\n0\r\n\r\n";

/// An upstream that answers each request from a script, by path: what it was sent comes back
/// in `/echo`'s body.
struct Scripted {
    address: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// The most requests one connection has carried.
    most_on_one: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Scripted {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let most_on_one = Arc::new(AtomicUsize::new(0));
        let (counter, most) = (Arc::clone(&accepted), Arc::clone(&most_on_one));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, Arc::clone(&most)));
            }
        });
        Self {
            address,
            accepted,
            most_on_one,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one connection's requests from the script, noting the most one has carried.
async fn serve(mut stream: TcpStream, most: Arc<AtomicUsize>) {
    let mut buffer = Vec::new();
    let mut carried = 0;
    loop {
        let Some((request, used)) = read_request(&mut stream, &mut buffer).await else {
            return;
        };
        buffer.drain(..used);
        carried += 1;
        most.fetch_max(carried, Ordering::SeqCst);
        let path = request
            .split(|byte| *byte == b' ')
            .nth(1)
            .map(|path| String::from_utf8_lossy(path).into_owned())
            .unwrap_or_default();
        let (answer, close): (Vec<u8>, bool) = match path.as_str() {
            "/chunked" => (CHUNKED.to_vec(), false),
            "/until-close" => (UNTIL_CLOSE.to_vec(), true),
            "/early-hints" => (EARLY_HINTS.to_vec(), false),
            "/then-closed" => (THEN_CLOSED.to_vec(), true),
            "/both-lengths" => (BOTH_LENGTHS.to_vec(), true),
            "/broken-chunks" => (BROKEN_CHUNKS.to_vec(), false),
            _ => {
                let mut answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    request.len()
                )
                .into_bytes();
                answer.extend_from_slice(&request);
                (answer, false)
            }
        };
        if stream.write_all(&answer).await.is_err() || close {
            return;
        }
    }
}

/// Reads one request (its head and a `Content-Length` or chunked body) from `stream`: its
/// bytes, and how many of `buffer` it took.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(Vec<u8>, usize)> {
    loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let total = if head.contains("transfer-encoding: chunked") {
                find(&buffer[end..], b"\r\n0\r\n\r\n").map(|last| end + last + 7)
            } else {
                Some(end + 4 + length)
            };
            if let Some(total) = total.filter(|total| buffer.len() >= *total) {
                return Some((buffer[..total].to_vec(), total));
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A daemon proxying `app` to `upstream` (checked there once an hour).
async fn proxying_to(upstream: &Scripted) -> RunningDaemon {
    let url = upstream.url();
    start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.app]\nkind = \"http\"\nurl = \"{url}/health\"\nupstream = \"{url}/\"\n\
         every = \"1h\"\nfailure_threshold = 3\ntimeout = \"2s\"\nreset_timeout = \"1h\"\n"
    ))
    .await
}

/// Reads from `stream` until `wanted` bytes have come, or the connection ends.
async fn read_exactly(stream: &mut TcpStream, wanted: usize) -> Vec<u8> {
    let mut read = Vec::new();
    let mut chunk = [0u8; 8192];
    while read.len() < wanted {
        let got = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("the proxy answers")
            .expect("read");
        if got == 0 {
            break;
        }
        read.extend_from_slice(&chunk[..got]);
    }
    read
}

/// Reads from `stream` until it closes.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut read = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut read))
        .await
        .expect("the proxy closes")
        .expect("read");
    read
}

/// Sends `requests` on a new connection to the proxy: all it answers, until it closes.
async fn ask(daemon: &RunningDaemon, requests: &[u8]) -> String {
    let mut client = TcpStream::connect(daemon.proxy_address().unwrap())
        .await
        .unwrap();
    client.write_all(requests).await.unwrap();
    text(&read_to_close(&mut client).await)
}

/// The answer `wire` as the client is sent it: the same status, headers and body.
fn text(wire: &[u8]) -> String {
    String::from_utf8_lossy(wire).into_owned()
}

async fn breaker(daemon: &RunningDaemon) -> serde_json::Value {
    get_json(daemon.address(), "/api/v1/circuit-breakers/app").await
}

/// Real calls to `app` with `outcome`, as the metrics count them.
async fn traffic(daemon: &RunningDaemon, outcome: &str) -> Option<f64> {
    let metrics = http_get(daemon.address(), "/metrics").await.1;
    sample(
        &metrics,
        &format!(
            "breakerd_calls_total{{service=\"app\",operation=\"other\",outcome=\"{outcome}\",source=\"traffic\"}}"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_get_their_answers_in_order_over_one_upstream_connection() {
    let upstream = Scripted::start().await;
    let daemon = proxying_to(&upstream).await;
    let answers = ask(
        &daemon,
        b"GET /app/chunked HTTP/1.1\r\nHost: proxy\r\n\r\n\
          GET /app/early-hints HTTP/1.1\r\nHost: proxy\r\n\r\n\
          POST /app/echo HTTP/1.1\r\nHost: proxy\r\nContent-Length: 4\r\nConnection: keep-alive, close\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\n\r\nbody",
    )
    .await;
    // The chunked answer passes byte for byte, chunk extension and trailer included.
    let chunked = text(CHUNKED);
    let (chunked_head, chunked_body) = chunked.split_once("\r\n\r\n").unwrap();
    assert!(answers.starts_with(chunked_head), "{answers}");
    let rest = &answers[chunked_head.len() + 4..];
    assert!(rest.starts_with(chunked_body), "{answers}");
    // The informational head stays behind; the answer after it comes.
    let rest = &rest[chunked_body.len()..];
    assert!(
        rest.starts_with("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        "{answers}"
    );
    let echo = &rest["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".len()..];
    assert!(echo.starts_with("HTTP/1.1 200 OK\r\n"), "{answers}");
    assert!(
        echo.contains("connection: close\r\n"),
        "the client asked to close: {echo}"
    );
    let sent = echo.split_once("\r\n\r\n").unwrap().1;
    let upstream_address = upstream.address;
    assert!(
        sent.starts_with(&format!(
            "POST /echo HTTP/1.1\r\nhost: {upstream_address}\r\nContent-Length: 4\r\nX-Kept: yes\r\n\r\nbody"
        )),
        "the request went on with its own headers, hop-by-hop ones left behind: {sent}"
    );
    assert_eq!(
        upstream.most_on_one.load(Ordering::SeqCst),
        3,
        "one upstream connection carried all three"
    );
    assert_eq!(breaker(&daemon).await["state"], "CLOSED");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_ends_with_the_upstreams_close_ends_the_clients_connection_too() {
    let upstream = Scripted::start().await;
    let daemon = proxying_to(&upstream).await;
    let answer = ask(
        &daemon,
        b"GET /app/until-close HTTP/1.1\r\nHost: proxy\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\nall of it, until the close"),
        "{answer}"
    );
    assert_eq!(traffic(&daemon, "success").await, Some(1.0));
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_fast_lane_does_not_carry_goes_on_in_hyper_on_the_same_connection() {
    let upstream = Scripted::start().await;
    let daemon = proxying_to(&upstream).await;
    let mut client = TcpStream::connect(daemon.proxy_address().unwrap())
        .await
        .unwrap();
    client
        .write_all(b"GET /app/echo HTTP/1.1\r\nHost: proxy\r\n\r\n")
        .await
        .unwrap();
    let first = text(&read_exactly(&mut client, 1).await);
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    // A chunked upload: hyper's to read.
    client
        .write_all(
            b"POST /app/echo HTTP/1.1\r\nHost: proxy\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n\
              GET /app/echo?after=hyper HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let rest = text(&read_to_close(&mut client).await);
    let answers: Vec<&str> = rest.matches("HTTP/1.1 200 OK\r\n").collect();
    assert_eq!(answers.len(), 2, "{rest}");
    assert!(
        rest.contains("\r\n\r\n4\r\nbody\r\n0\r\n\r\n"),
        "the chunked upload reached the upstream: {rest}"
    );
    assert!(rest.contains("GET /echo?after=hyper HTTP/1.1"), "{rest}");
    assert_eq!(traffic(&daemon, "success").await, Some(3.0));
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_closes_its_idle_connections_costs_no_call() {
    let upstream = Scripted::start().await;
    let daemon = proxying_to(&upstream).await;
    let proxy = daemon.proxy_address().unwrap();
    let client = reqwest::Client::new();
    for round in 1..=4 {
        let response = client
            .get(format!("http://{proxy}/app/then-closed"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "round {round}");
        assert_eq!(response.text().await.unwrap(), "closed", "round {round}");
    }
    assert_eq!(
        upstream.accepted(),
        4 + 1,
        "a connection the upstream closed is never used again (and the check had one)"
    );
    let stats = breaker(&daemon).await;
    assert_eq!(stats["state"], "CLOSED", "{stats}");
    assert_eq!(stats["failureCount"], 0, "{stats}");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_length_cannot_be_told_counts_against_the_provider() {
    let upstream = Scripted::start().await;
    let daemon = proxying_to(&upstream).await;
    let proxy = daemon.proxy_address().unwrap();
    let (status, body) = http_get(proxy, "/app/both-lengths").await;
    assert_eq!(status, 502, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reason"], "protocol", "{body}");
    assert_eq!(breaker(&daemon).await["failureCount"], 1);
    assert_eq!(traffic(&daemon, "failure").await, Some(1.0));
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_framing_that_breaks_mid_body_cuts_the_clients_connection() {
    let upstream = Scripted::start().await;
    let daemon = proxying_to(&upstream).await;
    let answer = ask(
        &daemon,
        b"GET /app/broken-chunks HTTP/1.1\r\nHost: proxy\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        !answer.contains("not a chunk"),
        "nothing past the break is passed on: {answer}"
    );
    // The connection was cut, so the client knows the answer is incomplete (no last chunk).
    assert!(!answer.ends_with("0\r\n\r\n"), "{answer}");
    daemon.shutdown().await.unwrap();
}
