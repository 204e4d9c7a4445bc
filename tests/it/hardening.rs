//! The daemon under abuse: more connections than it serves, silent and idle clients — and
//! still /metrics answers and alerts go out.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::receiver::Receiver;
use crate::support::{eventually, sample, start_daemon};

/// `GET path` that reports failure instead of panicking (the daemon may refuse).
async fn try_get(address: std::net::SocketAddr, path: &str) -> Option<String> {
    let response = reqwest::get(format!("http://{address}{path}")).await.ok()?;
    response.status().is_success().then_some(())?;
    response.text().await.ok()
}

/// Reads until the server closes the connection; `true` when it did within `seconds`.
async fn closed_by_server(stream: &mut TcpStream, seconds: u64) -> bool {
    let mut sink = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(seconds), read)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_connections_than_the_cap_leave_metrics_and_alerts_working() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let webhook = Receiver::start(&[]).await;
    let daemon = start_daemon(&format!(
        "[server]\nmax_connections = 20\nheader_read_timeout = \"1s\"\nidle_timeout = \"2s\"\n\
         [services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"200ms\"\nfailure_threshold = 3\ntimeout = \"2s\"\nreset_timeout = \"1h\"\n\
         [alerts]\nmin_interval = \"0s\"\n[[alerts.webhook]]\nurl = \"{}\"\n",
        fake.url(),
        webhook.url()
    ))
    .await;
    let address = daemon.address();
    // Sixty clients that connect and never say a word.
    let mut flood = Vec::new();
    for _ in 0..60 {
        flood.push(TcpStream::connect(address).await.expect("connect"));
    }
    // Outbound work does not starve: the breaker opens and the page goes out.
    eventually(15, "the outage is paged during the flood", || async {
        !webhook.bodies().is_empty()
    })
    .await;
    // Silent clients are closed after the header timeout; then /metrics answers.
    eventually(15, "/metrics answers", || async {
        try_get(address, "/metrics").await.is_some()
    })
    .await;
    for stream in &mut flood {
        assert!(
            closed_by_server(stream, 5).await,
            "every silent connection is closed (over the cap at once, the rest after 1 s)"
        );
    }
    let text = try_get(address, "/metrics").await.expect("metrics");
    let refused = sample(&text, "breakerd_http_connections_refused_total").unwrap_or(0.0);
    assert!(
        refused >= 40.0,
        "60 clients, 20 served: {refused} refused\n{text}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let daemon = start_daemon(&format!(
        "[server]\nheader_read_timeout = \"5s\"\nidle_timeout = \"1s\"\n\
         [services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n",
        fake.url()
    ))
    .await;
    let mut stream = TcpStream::connect(daemon.address()).await.expect("connect");
    stream
        .write_all(b"GET /-/nothing HTTP/1.1\r\nHost: breakerd\r\n\r\n")
        .await
        .expect("send a request");
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).await.expect("an answer");
    assert!(
        String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 404"),
        "the request was served"
    );
    assert!(
        closed_by_server(&mut stream, 4).await,
        "kept alive, then closed after 1 s of silence"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_stream_serves_a_bounded_number_of_clients() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let daemon = start_daemon(&format!(
        "[services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n",
        fake.url()
    ))
    .await;
    let url = format!("http://{}/api/v1/status/stream", daemon.address());
    let client = reqwest::Client::new();
    let mut followers = Vec::new();
    for _ in 0..breakerd::api::MAX_STREAM_CLIENTS {
        let response = client.get(&url).send().await.expect("stream");
        assert_eq!(response.status().as_u16(), 200);
        followers.push(response);
    }
    let refused = client.get(&url).send().await.expect("an answer");
    assert_eq!(refused.status().as_u16(), 503);
    let body: serde_json::Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("clients follow the status stream"),
        "{body}"
    );
    // One leaves, one more is served; polling works all along.
    drop(followers.pop());
    crate::support::eventually(5, "a place is free again", || async {
        client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200)
    })
    .await;
    let (status, _) = crate::support::http_get(daemon.address(), "/api/v1/status").await;
    assert_eq!(status, 200);
    // Stopping the daemon ends every stream, rather than waiting out the shutdown grace.
    let stopping = tokio::spawn(daemon.shutdown());
    let mut follower = followers.pop().expect("a follower");
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = follower.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ends when the daemon stops");
    drop(followers);
    stopping.await.unwrap().expect("clean shutdown");
}
