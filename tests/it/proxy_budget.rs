//! The proxy within its share of descriptors: a client that stops reading is cut after
//! `idle_timeout` and its upstream connection released, idle upstream connections are closed
//! after `proxy_pool_idle`, and a call over the proxy's capacity is answered 503 `capacity`
//! without blaming the provider. An upstream that counts its open connections tells.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use breakerd::daemon::RunningDaemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::upstream::Upstream;
use crate::support::{eventually, get_json, http_get, sample, start_daemon};

/// The most a request head may take at the counting upstream.
const MAX_HEAD: usize = 64 * 1024;

/// An HTTP/1.1 upstream on raw sockets that counts the connections open to it: `GET /endless`
/// streams zeros until the connection breaks; anything else answers `ok`, kept alive.
struct Counting {
    address: SocketAddr,
    open: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
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
        let accepted = Arc::new(AtomicUsize::new(0));
        let (counting, total) = (Arc::clone(&open), Arc::clone(&accepted));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counting.fetch_add(1, Ordering::SeqCst);
                total.fetch_add(1, Ordering::SeqCst);
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
            accepted,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
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
        if head.starts_with("GET /slow") {
            // A provider that takes its time: each call holds its connections meanwhile.
            tokio::time::sleep(Duration::from_millis(100)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_upstream_connections_are_closed_after_proxy_pool_idle() {
    let checks = Upstream::start().await;
    let upstream = Counting::start().await;
    let daemon = daemon(&checks, &upstream.url(), "proxy_pool_idle = \"1s\"").await;
    let proxy = daemon.proxy_address().expect("the proxy runs");
    let client = reqwest::Client::new();
    let calls = (0..4).map(|_| {
        let client = client.clone();
        async move {
            let response = client
                .get(format!("http://{proxy}/app/small"))
                .send()
                .await
                .expect("an answer");
            assert_eq!(response.status(), 200);
            assert_eq!(response.text().await.expect("a body"), "ok");
        }
    });
    futures_util::future::join_all(calls).await;
    assert!(upstream.accepted() >= 1);
    assert!(
        upstream.open() >= 1,
        "kept for the next call, until proxy_pool_idle"
    );
    eventually(15, "idle upstream connections closed", || async {
        upstream.open() == 0
    })
    .await;
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_the_proxys_capacity_is_503_capacity_and_blames_no_breaker() {
    let upstream = Upstream::start().await;
    let daemon = daemon(&upstream, &upstream.url(), "").await;
    // The same proxy, with room for one call at once.
    let proxy = Arc::new(breakerd::proxy::Proxy::new(
        daemon.shared().published(),
        Arc::clone(&daemon.shared().metrics),
        1,
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let limits = breakerd::serve::Limits {
        max_connections: 16,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
    };
    let server = tokio::spawn(breakerd::serve::serve_with(
        listener,
        proxy.service(),
        limits,
        Arc::new(breakerd::metrics::Metrics::new()),
        stopping,
    ));
    let client = reqwest::Client::new();
    // Its answer has begun; the rest of its body waits for the upstream.
    let held = client
        .get(format!("http://{address}/app/held"))
        .send()
        .await
        .expect("the held call's head");
    let refused = client
        .get(format!("http://{address}/app/echo/over"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status(), 503);
    assert_eq!(
        crate::support::proxy_answer(&refused).as_deref(),
        Some("capacity")
    );
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value =
        serde_json::from_str(&refused.text().await.expect("a body")).expect("JSON");
    assert_eq!(body["reason"], "capacity");
    let (_, metrics) = http_get(daemon.address(), "/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            "breakerd_proxy_local_errors_total{reason=\"capacity\"}"
        ),
        Some(1.0),
        "counted as breakerd's own shortage"
    );
    upstream.release();
    let rest = held.bytes().await.expect("the held body");
    assert_eq!(&rest[..], b"first,rest");
    // Its place is given back once its answer is through.
    eventually(10, "a call goes through again", || async {
        client
            .get(format!("http://{address}/app/echo/again"))
            .send()
            .await
            .is_ok_and(|response| response.status() == 201)
    })
    .await;
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/app").await;
    assert_eq!(stats["failureCount"], 0, "{stats}");
    assert_eq!(stats["state"], "CLOSED", "{stats}");
    let _ = stop.send(true);
    let _ = server.await;
    daemon.shutdown().await.expect("clean shutdown");
}

/// What the clients of one burst got back.
#[derive(Debug, Default)]
struct Burst {
    ok: usize,
    capacity: usize,
    /// Connections the proxy closed at once, over its share of inbound connections.
    closed: usize,
    /// Anything else: a 502, a 503 `local`, an unexpected status.
    other: Vec<String>,
}

/// `per_upstream` concurrent `GET /upN/slow` to each of `upstreams` services, each on a
/// connection of its own.
async fn burst(proxy: SocketAddr, upstreams: usize, per_upstream: usize) -> Burst {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let calls = (0..upstreams * per_upstream).map(|index| {
        let client = client.clone();
        let url = format!("http://{proxy}/up{}/slow", index % upstreams);
        tokio::spawn(async move {
            match client.get(url).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let marked = crate::support::proxy_answer(&response);
                    let body = response.text().await.unwrap_or_default();
                    Ok((status, marked, body))
                }
                Err(error) => Err(error),
            }
        })
    });
    let mut burst = Burst::default();
    for call in futures_util::future::join_all(calls).await {
        match call.expect("the call task") {
            Ok((200, None, body)) if body == "ok" => burst.ok += 1,
            Ok((503, Some(marked), _)) if marked == "capacity" => burst.capacity += 1,
            Ok((status, marked, body)) => burst.other.push(format!("{status} {marked:?} {body}")),
            // Closed at once, over the proxy's share of inbound connections: breakerd's
            // own shedding, which no breaker hears of.
            Err(error) if error.is_request() || error.is_connect() => burst.closed += 1,
            Err(error) => burst.other.push(error.to_string()),
        }
    }
    burst
}

/// `breakerd run` under `ulimit -n 1024`, killed when dropped.
struct Limited {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_to_five_upstreams_under_1024_descriptors_never_run_out_or_fail_a_check() {
    breakerd::probe::install_crypto_provider();
    // The clients of the bursts need more descriptors than the daemon has.
    let raised = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let per_upstream = usize::try_from(raised.saturating_sub(256) / 5)
        .unwrap_or(300)
        .min(300);
    assert!(
        per_upstream * 5 > 1024,
        "the bursts must be larger than the daemon's limit (the test process may open {raised})"
    );
    let upstreams: Vec<Counting> =
        futures_util::future::join_all((0..5).map(|_| Counting::start())).await;
    let dir = crate::support::scratch_dir("descriptors");
    let (api, proxy_port) = (crate::support::closed_port(), crate::support::closed_port());
    let mut config = format!(
        "[server]\nproxy_listen = \"127.0.0.1:{proxy_port}\"\n[alerts]\nstate_dir = \"{}\"\n",
        dir.join("state").display()
    );
    for (index, upstream) in upstreams.iter().enumerate() {
        config.push_str(&format!(
            "[services.up{index}]\nkind = \"http\"\nurl = \"{0}/health\"\nupstream = \"{0}/\"\n\
             every = \"250ms\"\nfailure_threshold = 3\ntimeout = \"10s\"\nreset_timeout = \"1h\"\n",
            upstream.url()
        ));
    }
    let file = dir.join("alerts.toml");
    std::fs::write(&file, config).expect("write the config");
    let log = dir.join("breakerd.log");
    let child = std::process::Command::new("prlimit")
        .arg("--nofile=1024:1024")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_breakerd"))
        .args(["run", "--config"])
        .arg(&file)
        .args(["--listen", &format!("127.0.0.1:{api}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start breakerd under prlimit (util-linux)");
    let daemon = Limited { child, log };
    crate::support::wait_until_listening(api, "breakerd");
    crate::support::wait_until_listening(proxy_port, "breakerd's proxy");
    let api = SocketAddr::from(([127, 0, 0, 1], api));
    let proxy = SocketAddr::from(([127, 0, 0, 1], proxy_port));
    // Listening starts before the split is logged: wait for the line.
    eventually(10, "the daemon logs its descriptor split", || async {
        std::fs::read_to_string(&daemon.log).is_ok_and(|log| log.contains("descriptor budget"))
    })
    .await;
    let started = std::fs::read_to_string(&daemon.log).unwrap_or_default();
    assert!(
        started.contains("open-file limit 1024"),
        "the daemon runs under the limit and logs its split:\n{started}"
    );

    let checks_passed = |metrics: &str| -> f64 {
        (0..5)
            .filter_map(|index| {
                sample(
                    metrics,
                    &format!(
                        "breakerd_calls_total{{service=\"up{index}\",outcome=\"success\",source=\"check\"}}"
                    ),
                )
            })
            .sum()
    };
    let before = checks_passed(&http_get(api, "/metrics").await.1);
    let mut served = 0;
    for round in 0..3 {
        let burst = burst(proxy, 5, per_upstream).await;
        assert!(
            burst.other.is_empty(),
            "round {round}: answers that blame a provider or say breakerd ran out: {:?}",
            &burst.other[..burst.other.len().min(5)]
        );
        served += burst.ok;
        eprintln!("round {round}: {burst:?}");
    }
    assert!(served > 0, "calls went through");

    let (_, metrics) = http_get(api, "/metrics").await;
    assert!(
        checks_passed(&metrics) > before,
        "checks ran, and passed, during the bursts"
    );
    assert_eq!(
        sample(
            &metrics,
            "breakerd_proxy_local_errors_total{reason=\"descriptors\"}"
        ),
        Some(0.0),
        "no call found breakerd out of descriptors"
    );
    assert_eq!(
        sample(&metrics, "breakerd_http_accept_errors_total"),
        Some(0.0)
    );
    let failed_checks: f64 = metrics
        .lines()
        .filter(|line| line.starts_with("breakerd_probe_failures_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(failed_checks, 0.0, "no check failed during the bursts");
    let failures: f64 = metrics
        .lines()
        .filter(|line| {
            line.starts_with("breakerd_calls_total{")
                && (line.contains("outcome=\"failure\"") || line.contains("outcome=\"timeout\""))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(failures, 0.0, "nothing counted against any provider");
    for index in 0..5 {
        let stats = get_json(api, &format!("/api/v1/circuit-breakers/up{index}")).await;
        assert_eq!(stats["state"], "CLOSED", "up{index}: {stats}");
        assert_eq!(
            stats["lastCheck"]["outcome"], "success",
            "up{index}: {stats}"
        );
    }
    let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
    assert!(
        !log.contains("Too many open files") && !log.contains("out of file descriptors"),
        "{log}"
    );
}
