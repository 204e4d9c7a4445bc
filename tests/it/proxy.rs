//! The sidecar proxy, with real HTTP clients (reqwest here, Node's `fetch` below) through it to
//! a real server: calls pass through unchanged and streaming, real outcomes move the breaker,
//! an open breaker answers at once without the provider, and nothing else is forwarded.

use std::time::Duration;

use breakerd::daemon::RunningDaemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::upstream::{CHUNK, FNV_START, Upstream, fnv, pattern, pattern_checksum};
use crate::support::{eventually, get_json, http_get, sample, start_daemon};

/// A daemon with the proxy on, and `app` a kind-http service whose checks go to `check_url`
/// (once an hour) and whose real calls go to `upstream`.
async fn proxy_daemon(check_url: &str, upstream: &str, extra: &str) -> RunningDaemon {
    start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\nreport_token = \"report-secret-0123456789\"\nadmin_token = \"admin-secret-0123456789\"\n\
         [services.app]\nkind = \"http\"\nurl = \"{check_url}/health\"\nupstream = \"{upstream}/\"\n\
         every = \"1h\"\nfailure_threshold = 3\ntimeout = \"2s\"\nreset_timeout = \"1h\"\n{extra}"
    ))
    .await
}

/// An upstream, and a daemon proxying `app` to it (and checking it there).
async fn app_behind_the_proxy() -> (Upstream, RunningDaemon) {
    let upstream = Upstream::start().await;
    let daemon = proxy_daemon(&upstream.url(), &upstream.url(), "").await;
    (upstream, daemon)
}

fn proxy_url(daemon: &RunningDaemon, path: &str) -> String {
    format!(
        "http://{}{path}",
        daemon.proxy_address().expect("the proxy runs")
    )
}

async fn metrics(daemon: &RunningDaemon) -> String {
    http_get(daemon.address(), "/metrics").await.1
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    let text = response.text().await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// A service's real calls with `outcome`, over every operation (-1 when it has no traffic
/// series at all).
fn traffic(text: &str, service: &str, outcome: &str) -> f64 {
    let head = format!("breakerd_calls_total{{service=\"{service}\",operation=\"");
    let tail = format!(",outcome=\"{outcome}\",source=\"traffic\"}} ");
    let values: Vec<f64> = text
        .lines()
        .filter(|line| line.starts_with(&head) && line.contains(&tail))
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .collect();
    if values.is_empty() {
        -1.0
    } else {
        values.iter().sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_passes_through_unchanged_but_for_hop_by_hop_headers() {
    let (upstream, daemon) = app_behind_the_proxy().await;
    let client = reqwest::Client::new();
    let response = client
        .put(proxy_url(
            &daemon,
            "/app/echo/orders/7?expand=items&token=abc%20d",
        ))
        .header("authorization", "Bearer app-credential")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "dropped")
        .header("x-request-id", "r-1")
        .header("content-type", "application/json")
        .body(r#"{"amount":100}"#)
        .send()
        .await
        .expect("the proxy answers");
    assert_eq!(response.status(), 201, "the upstream's own status");
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert_eq!(
        cookies,
        ["a=1; Path=/", "b=2; HttpOnly"],
        "repeated headers, in order"
    );
    assert_eq!(response.headers()["x-upstream"], "yes");
    assert!(
        response.headers().get("x-breakerd-answer").is_none(),
        "the provider's answer"
    );
    let echoed: serde_json::Value = json(response).await;
    assert_eq!(echoed["method"], "PUT");
    assert_eq!(
        echoed["target"],
        "/echo/orders/7?expand=items&token=abc%20d"
    );
    assert_eq!(echoed["body"], r#"{"amount":100}"#);
    let header = |name: &str| {
        echoed["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].as_str().unwrap().to_string())
    };
    assert_eq!(
        header("authorization").as_deref(),
        Some("Bearer app-credential")
    );
    assert_eq!(header("x-request-id").as_deref(), Some("r-1"));
    assert_eq!(
        header("content-length").as_deref(),
        Some("14"),
        "not re-chunked"
    );
    assert_eq!(header("x-hop"), None, "named by Connection: hop-by-hop");
    assert_eq!(
        header("host"),
        Some(upstream.url().trim_start_matches("http://").to_string()),
        "the upstream's own Host"
    );
    let text = metrics(&daemon).await;
    assert_eq!(traffic(&text, "app", "success"), 1.0);
    assert_eq!(
        sample(
            &text,
            "breakerd_calls_total{service=\"app\",outcome=\"success\",source=\"check\"}"
        ),
        Some(1.0),
        "the check at start, counted apart"
    );
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_through_in_both_directions() {
    let (upstream, daemon) = app_behind_the_proxy().await;
    let client = reqwest::Client::new();

    // Download: 48 MiB, checked as it arrives.
    let size = 48 * 1024 * 1024 + 123;
    let mut response = client
        .get(proxy_url(&daemon, &format!("/app/download/{size}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.content_length(), Some(size as u64));
    let (mut received, mut hash) = (0usize, FNV_START);
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len();
        hash = fnv(hash, &chunk);
    }
    assert_eq!(received, size);
    assert_eq!(hash, pattern_checksum(size));

    // A body the upstream holds half sent reaches the client half: nothing waits for the end.
    let mut held = client
        .get(proxy_url(&daemon, "/app/held"))
        .send()
        .await
        .unwrap();
    assert_eq!(&held.chunk().await.unwrap().unwrap()[..], b"first,");
    upstream.release();
    assert_eq!(&held.chunk().await.unwrap().unwrap()[..], b"rest");

    // Upload: the upstream has the first chunk before the client has sent the second.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(receiver, |mut r| async {
        r.recv().await.map(|chunk| (chunk, r))
    }));
    let upload = tokio::spawn(
        client
            .post(proxy_url(&daemon, "/app/upload"))
            .body(body)
            .send(),
    );
    let upload_size = 8 * CHUNK + 5;
    let all: Vec<u8> = (0..upload_size).map(pattern).collect();
    sender.send(Ok(all[..CHUNK].to_vec())).await.unwrap();
    upstream.first_upload_chunk().await;
    for chunk in all[CHUNK..].chunks(CHUNK) {
        sender.send(Ok(chunk.to_vec())).await.unwrap();
    }
    drop(sender);
    let answer: serde_json::Value = json(upload.await.unwrap().unwrap()).await;
    assert_eq!(answer["bytes"], upload_size);
    assert_eq!(answer["checksum"], fnv(FNV_START, &all).to_string());
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundreds_open_the_breaker_and_then_the_proxy_answers_alone() {
    let healthy = Upstream::start().await;
    let failing = FakeProvider::start(Mode::Status(500)).await;
    let daemon = proxy_daemon(&healthy.url(), &failing.url(), "").await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let response = client
            .post(proxy_url(&daemon, "/app/pay"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            500,
            "the provider's own answer, passed on"
        );
        assert_eq!(
            response.text().await.unwrap(),
            "{\"error\":\"upstream answered 500\"}"
        );
    }
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/app").await;
    assert_eq!(stats["state"], "OPEN", "{stats}");
    let hits = failing.requests().len();
    assert_eq!(hits, 3);

    let response = client
        .post(proxy_url(&daemon, "/app/pay"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-breakerd-answer"], "open");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (3_500..=3_600).contains(&retry_after),
        "seconds until the next attempt: {retry_after}"
    );
    let body: serde_json::Value = json(response).await;
    assert_eq!(body["success"], false);
    assert_eq!(body["message"], "Circuit breaker app is OPEN");
    assert_eq!(body["circuitBreakerOpen"], true);
    assert_eq!(body["service"], "app");
    assert!(
        body["nextAttempt"].as_str().unwrap().ends_with('Z'),
        "{body}"
    );
    assert_eq!(
        failing.requests().len(),
        hits,
        "the provider was not contacted"
    );

    let text = metrics(&daemon).await;
    assert_eq!(traffic(&text, "app", "failure"), 3.0);
    assert_eq!(traffic(&text, "app", "rejected"), 1.0);
    let last = &stats["cause"];
    assert_eq!(last["reason"], "http_status", "{stats}");
    assert_eq!(last["detail"], "HTTP 500 on other (a real call)");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pesapal_errors_in_a_200_count_while_the_client_still_gets_the_body() {
    let fake = FakeProvider::start(Mode::Fixture(
        "pesapal/request_token_invalid_key_secret".into(),
    ))
    .await;
    let daemon = start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.pesapal]\npreset = \"pesapal\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"1h\"\nfailure_threshold = 5\nreset_timeout = \"1h\"\n",
        fake.url()
    ))
    .await;
    let response = reqwest::Client::new()
        .post(proxy_url(&daemon, "/pesapal/api/Auth/RequestToken"))
        .header("content-type", "application/json")
        .body(r#"{"consumer_key":"k","consumer_secret":"s"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let published = crate::support::fixtures::load("pesapal/request_token_invalid_key_secret");
    assert_eq!(
        body.as_bytes(),
        published.body.as_slice(),
        "the original body, byte for byte"
    );
    let text = metrics(&daemon).await;
    assert_eq!(
        traffic(&text, "pesapal", "failure"),
        1.0,
        "judged by its body"
    );
    assert_eq!(traffic(&text, "pesapal", "success"), 0.0);
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_own_errors_do_not_count_but_throttling_does() {
    let (_upstream, daemon) = app_behind_the_proxy().await;
    let client = reqwest::Client::new();
    for code in [400, 401, 404, 422] {
        let response = client
            .get(proxy_url(&daemon, &format!("/app/status/{code}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), code);
    }
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/app").await;
    assert_eq!(stats["failureCount"], 0, "{stats}");
    let response = client
        .get(proxy_url(&daemon, "/app/status/429"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let text = metrics(&daemon).await;
    assert_eq!(traffic(&text, "app", "failure"), 1.0);
    assert_eq!(traffic(&text, "app", "success"), 0.0, "4xx are neither");
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/app").await;
    assert_eq!(stats["cause"]["reason"], "throttled", "{stats}");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_provider_gets_504_at_the_timeout() {
    let healthy = Upstream::start().await;
    let hanging = FakeProvider::start(Mode::Hang).await;
    let daemon = start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.app]\nkind = \"http\"\nurl = \"{}/health\"\nupstream = \"{}\"\nevery = \"1h\"\ntimeout = \"300ms\"\n",
        healthy.url(),
        hanging.url()
    ))
    .await;
    let response = reqwest::Client::new()
        .get(proxy_url(&daemon, "/app/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(response.headers()["x-breakerd-answer"], "timeout");
    let body: serde_json::Value = json(response).await;
    assert_eq!(body["message"], "Circuit breaker app timeout after 300ms");
    assert_eq!(body["success"], false);
    assert_eq!(body["timeout"], true);
    assert_eq!(traffic(&metrics(&daemon).await, "app", "timeout"), 1.0);
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_real_calls_are_counted_as_slow() {
    let healthy = Upstream::start().await;
    let slow = FakeProvider::start(Mode::Slow(Duration::from_millis(150))).await;
    let daemon = proxy_daemon(&healthy.url(), &slow.url(), "slow_call = \"50ms\"\n").await;
    let response = reqwest::Client::new()
        .get(proxy_url(&daemon, "/app/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = metrics(&daemon).await;
    assert_eq!(
        sample(
            &text,
            "breakerd_slow_calls_total{service=\"app\",operation=\"other\",source=\"traffic\"}"
        ),
        Some(1.0)
    );
    assert_eq!(traffic(&text, "app", "success"), 1.0, "slow, yet a success");
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_gets_502_without_its_address() {
    let healthy = Upstream::start().await;
    let port = crate::support::closed_port();
    let daemon = proxy_daemon(&healthy.url(), &format!("http://127.0.0.1:{port}"), "").await;
    let response = reqwest::Client::new()
        .get(proxy_url(&daemon, "/app/x?token=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body = response.text().await.unwrap();
    assert!(body.contains("\"reason\":\"connect\""), "{body}");
    assert!(
        !body.contains("token") && !body.contains(&port.to_string()),
        "{body}"
    );
    assert_eq!(traffic(&metrics(&daemon).await, "app", "failure"), 1.0);
    daemon.shutdown().await.unwrap();
}

/// Sends `request` as raw bytes (clients normalise what these tests need unnormalised); the
/// status code of the answer.
async fn raw_status(address: std::net::SocketAddr, request: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let read = stream.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_is_no_open_proxy_and_paths_cannot_leave_the_upstream() {
    let (upstream, daemon) = app_behind_the_proxy().await;
    let proxy = daemon.proxy_address().unwrap();
    // The first scheduled check runs at start and reaches the upstream: wait for it, so only
    // what the proxy let through is counted.
    let checked = tokio::time::timeout(Duration::from_secs(10), async {
        while upstream.hits() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(checked.await.is_ok(), "the first check never ran");
    let before = upstream.hits();
    for request in [
        "GET http://evil.example.com/steal HTTP/1.1\r\nHost: evil.example.com\r\n\r\n",
        &format!("GET {}/health HTTP/1.1\r\nHost: x\r\n\r\n", upstream.url()),
        "CONNECT evil.example.com:443 HTTP/1.1\r\nHost: evil.example.com:443\r\n\r\n",
        "GET /app/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /app/echo/%2e%2e/%2E%2E/health HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /app/echo%2F..%2Fhealth HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /app/echo%5C..%5Chealth HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        assert_eq!(raw_status(proxy, request).await, 400, "{request:?}");
    }
    assert_eq!(
        raw_status(proxy, "GET /other/x HTTP/1.1\r\nHost: x\r\n\r\n").await,
        404,
        "only configured services"
    );
    assert_eq!(upstream.hits(), before, "nothing reached the upstream");
    daemon.shutdown().await.unwrap();
}

async fn report(daemon: &RunningDaemon, token: &str, body: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/circuit-breakers/app/outcomes",
            daemon.address()
        ))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, json(response).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outcome_api_moves_the_breaker_with_the_report_token_only() {
    let (_upstream, daemon) = app_behind_the_proxy().await;
    let failures = r#"[{"outcome":"failure","durationMs":812,"reason":"http_status"},{"outcome":"timeout","durationMs":30000},{"outcome":"failure","durationMs":5}]"#;
    let (status, answer) = report(&daemon, "wrong", failures).await;
    assert_eq!(status, 401, "{answer}");
    let (status, _) = report(&daemon, "admin-secret-0123456789", failures).await;
    assert_eq!(status, 401, "the admin token is not a report token");
    let (status, answer) = report(
        &daemon,
        "report-secret-0123456789",
        r#"[{"outcome":"failure","durationMs":-3}]"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("[0].durationMs:"),
        "{answer}"
    );
    assert_eq!(
        get_json(daemon.address(), "/api/v1/circuit-breakers/app").await["failureCount"],
        0
    );

    let (status, answer) = report(&daemon, "report-secret-0123456789", failures).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 3);
    assert_eq!(answer["state"], "OPEN");
    let (_, answer) = report(
        &daemon,
        "report-secret-0123456789",
        r#"[{"outcome":"success","durationMs":3}]"#,
    )
    .await;
    assert_eq!(
        (answer["accepted"].clone(), answer["rejected"].clone()),
        (0.into(), 1.into())
    );
    let text = metrics(&daemon).await;
    assert_eq!(traffic(&text, "app", "failure"), 2.0);
    assert_eq!(traffic(&text, "app", "timeout"), 1.0);
    assert_eq!(
        sample(
            &text,
            "breakerd_call_duration_seconds_count{service=\"app\",operation=\"other\",outcome=\"timeout\",source=\"traffic\"}"
        ),
        Some(1.0)
    );
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_off_without_a_report_token() {
    let upstream = Upstream::start().await;
    let daemon = start_daemon(&format!(
        "[services.app]\nkind = \"http\"\nurl = \"{}/health\"\nevery = \"1h\"\n",
        upstream.url()
    ))
    .await;
    let (status, answer) = report(&daemon, "anything", r#"[{"outcome":"success"}]"#).await;
    assert_eq!(status, 403);
    assert!(
        answer["error"].as_str().unwrap().contains("report_token"),
        "{answer}"
    );
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_when_idle_real_traffic_stands_in_for_the_checks() {
    let upstream = Upstream::start().await;
    let daemon = start_daemon(&format!(
        "[server]\nreport_token = \"report-secret-0123456789\"\n\
         [services.app]\nkind = \"http\"\nurl = \"{}/health\"\nevery = \"100ms\"\nchecks = \"when_idle\"\n",
        upstream.url()
    ))
    .await;
    let checks = |daemon: &RunningDaemon| {
        daemon
            .shared()
            .registry()
            .get("app")
            .unwrap()
            .recent_checks()
            .len()
    };
    eventually(10, "checks run while there is no traffic", || async {
        checks(&daemon) >= 2
    })
    .await;
    let (_, _) = report(
        &daemon,
        "report-secret-0123456789",
        r#"[{"outcome":"success","durationMs":1}]"#,
    )
    .await;
    let at_start = checks(&daemon);
    let skipped = |text: &str| {
        sample(
            text,
            "breakerd_probe_skipped_for_traffic_total{service=\"app\"}",
        )
        .unwrap_or(0.0)
    };
    loop {
        let (status, _) = report(
            &daemon,
            "report-secret-0123456789",
            r#"[{"outcome":"success","durationMs":1}]"#,
        )
        .await;
        assert_eq!(status, 200);
        if skipped(&metrics(&daemon).await) >= 5.0 {
            break;
        }
    }
    assert!(
        checks(&daemon) <= at_start + 1,
        "checks ran while traffic flowed: {} then {}",
        at_start,
        checks(&daemon)
    );
    let quiet = checks(&daemon);
    eventually(10, "checks resume once traffic stops", || async {
        checks(&daemon) >= quiet + 2
    })
    .await;
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_fetch_through_the_proxy() {
    let upstream = Upstream::start().await;
    let failing = FakeProvider::start(Mode::Status(503)).await;
    let daemon = start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.app]\nkind = \"http\"\nurl = \"{0}/health\"\nupstream = \"{0}\"\nevery = \"1h\"\n\
         [services.sms]\nkind = \"http\"\nurl = \"{0}/health\"\nupstream = \"{1}\"\nevery = \"1h\"\nfailure_threshold = 2\nreset_timeout = \"1h\"\n",
        upstream.url(),
        failing.url()
    ))
    .await;
    let base = proxy_url(&daemon, "");
    let size = 3 * 1024 * 1024 + 7;
    let script = format!(
        r#"
const base = {base:?};
const out = {{}};
let r = await fetch(base + "/app/echo/send?to=254700000000", {{
  method: "POST", headers: {{ "content-type": "application/json", "authorization": "Bearer node" }},
  body: JSON.stringify({{ message: "Rent due" }}),
}});
out.status = r.status;
out.cookies = r.headers.getSetCookie();
out.echo = await r.json();
r = await fetch(base + "/app/download/{size}");
const bytes = new Uint8Array(await r.arrayBuffer());
let hash = 0xcbf29ce484222325n;
for (const b of bytes) {{ hash ^= BigInt(b); hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn; }}
out.downloaded = bytes.length; out.checksum = hash.toString();
for (let i = 0; i < 2; i++) {{ await (await fetch(base + "/sms/messaging")).text(); }}
r = await fetch(base + "/sms/messaging");
out.openStatus = r.status; out.retryAfter = r.headers.get("retry-after"); out.open = await r.json();
console.log(JSON.stringify(out));
"#
    );
    let output = tokio::process::Command::new("node")
        .args(["--input-type=module", "-e", &script])
        .output()
        .await
        .expect("node runs (Debian package nodejs)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(
        output
            .stdout
            .split(|b| *b == b'\n')
            .find(|line| line.starts_with(b"{"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(out["status"], 201);
    assert_eq!(
        out["cookies"],
        serde_json::json!(["a=1; Path=/", "b=2; HttpOnly"])
    );
    assert_eq!(out["echo"]["target"], "/echo/send?to=254700000000");
    assert_eq!(out["echo"]["body"], r#"{"message":"Rent due"}"#);
    assert_eq!(out["downloaded"], size);
    assert_eq!(out["checksum"], pattern_checksum(size).to_string());
    assert_eq!(out["openStatus"], 503);
    assert_eq!(out["open"]["message"], "Circuit breaker sms is OPEN");
    assert_eq!(out["open"]["circuitBreakerOpen"], true);
    assert!(out["retryAfter"].as_str().is_some(), "{out}");
    assert_eq!(
        failing.requests().len(),
        2,
        "the third call never left the proxy"
    );
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_stops_with_the_daemon() {
    let (_upstream, daemon) = app_behind_the_proxy().await;
    let proxy = daemon.proxy_address().unwrap();
    tokio::time::timeout(Duration::from_secs(10), daemon.shutdown())
        .await
        .expect("shutdown is prompt")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(proxy).await.is_err(),
        "the listener is closed"
    );
}
