//! End to end through the running daemon: a failing provider opens the breaker, which rejects,
//! half-opens after the reset timeout and closes on recovery, all seen in `/metrics` (checked by
//! promtool and scraped by a real Prometheus) and the API.

use std::time::Duration;

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::prometheus::{Prometheus, promtool_check_metrics};
use crate::support::{eventually, get_json, http_get, sample, start_daemon};

fn mpesa_config(base_url: &str) -> String {
    format!(
        "[server]\nadmin_token = \"${{ADMIN_TOKEN}}\"\nslow_call = \"150ms\"\n\
         [services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{base_url}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"100ms\"\nfailure_threshold = 3\ntimeout = \"2s\"\nreset_timeout = \"1s\"\n"
    )
}

async fn state_of(address: std::net::SocketAddr) -> String {
    state_of_service(address, "mpesa").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provider_opens_the_breaker_and_recovery_closes_it() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let daemon = start_daemon(&mpesa_config(&fake.url())).await;
    let address = daemon.address();

    eventually(10, "the breaker opens", || async {
        state_of(address).await == "OPEN"
    })
    .await;
    let stats = get_json(address, "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(stats["failureCount"], 3, "{stats}");
    // The last check may already be one the open breaker rejected; the cause stays.
    assert_eq!(stats["cause"]["reason"], "http_status", "{stats}");
    assert!(stats["nextAttempt"].as_str().is_some(), "{stats}");
    assert!(
        stats["lastFailure"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("http_status: HTTP 500"),
        "{stats}"
    );
    let calls_while_open = fake.requests().len();

    eventually(10, "scheduled checks are rejected while open", || async {
        get_json(address, "/api/v1/circuit-breakers/mpesa").await["rejections"].as_u64() >= Some(2)
    })
    .await;
    // While checks are rejected, every view still says what is wrong and since when.
    let stats = get_json(address, "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(stats["lastCheck"]["outcome"], "rejected");
    assert_eq!(stats["cause"]["reason"], "http_status", "{stats}");
    assert!(
        stats["cause"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 500")
    );
    eventually(5, "the outage is booked", || async {
        get_json(address, "/api/v1/circuit-breakers/mpesa").await["outage"]["startedAt"].is_string()
    })
    .await;
    let health = get_json(address, "/api/v1/circuit-breakers/health").await;
    assert_eq!(health["problems"][0]["service"], "mpesa", "{health}");
    assert_eq!(health["problems"][0]["cause"]["reason"], "http_status");
    assert!(
        health["problems"][0]["outage"]["startedAt"].is_string(),
        "{health}"
    );
    let status = get_json(address, "/api/v1/status").await;
    assert_eq!(
        status["services"][0]["cause"]["reason"], "http_status",
        "{status}"
    );
    let (_, text) = http_get(address, "/metrics").await;
    assert_eq!(
        sample(
            &text,
            "breakerd_breaker_state{service=\"mpesa\",state=\"open\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "breakerd_calls_total{service=\"mpesa\",outcome=\"failure\",source=\"check\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            "breakerd_probe_failures_total{service=\"mpesa\",reason=\"http_status\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            "breakerd_state_transitions_total{service=\"mpesa\",from=\"closed\",to=\"open\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "breakerd_probe_success{service=\"mpesa\"}"),
        Some(0.0)
    );
    assert!(
        sample(
            &text,
            "breakerd_next_attempt_timestamp_seconds{service=\"mpesa\"}"
        )
        .is_some_and(|t| t > 1.0e9)
    );
    assert!(
        sample(
            &text,
            "breakerd_calls_total{service=\"mpesa\",outcome=\"rejected\",source=\"check\"}"
        )
        .is_some_and(|n| n >= 2.0)
    );
    let (valid, said) = promtool_check_metrics(&text);
    assert!(valid, "promtool check metrics: {said}");

    fake.set_mode(Mode::Healthy);
    eventually(10, "the breaker closes after a good trial", || async {
        state_of(address).await == "CLOSED"
    })
    .await;
    assert!(
        fake.requests().len() > calls_while_open,
        "the trial reached the provider"
    );
    let (_, text) = http_get(address, "/metrics").await;
    for (from, to) in [("open", "half_open"), ("half_open", "closed")] {
        let series = format!(
            "breakerd_state_transitions_total{{service=\"mpesa\",from=\"{from}\",to=\"{to}\"}}"
        );
        assert_eq!(sample(&text, &series), Some(1.0), "{series}");
    }
    assert_eq!(
        sample(
            &text,
            "breakerd_breaker_state{service=\"mpesa\",state=\"closed\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "breakerd_probe_success{service=\"mpesa\"}"),
        Some(1.0)
    );

    fake.set_mode(Mode::Slow(Duration::from_millis(300)));
    eventually(10, "a slow check is counted", || async {
        let (_, text) = http_get(address, "/metrics").await;
        sample(
            &text,
            "breakerd_slow_calls_total{service=\"mpesa\",source=\"check\"}",
        )
        .is_some_and(|n| n >= 1.0)
    })
    .await;
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_daemon() {
    let fake = FakeProvider::start(Mode::Status(503)).await;
    let daemon = start_daemon(&mpesa_config(&fake.url())).await;
    let address = daemon.address();
    let prometheus = Prometheus::scraping(&address.to_string(), None);
    eventually(30, "Prometheus sees the breaker open", || async {
        let result = prometheus
            .query("breakerd_breaker_state{service=\"mpesa\",state=\"open\"} == 1")
            .await;
        !result.is_empty()
    })
    .await;
    let up = prometheus.query("up{job=\"breakerd\"}").await;
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
    let failures = prometheus
        .query("breakerd_calls_total{service=\"mpesa\",outcome=\"failure\"}")
        .await;
    let failed: f64 = failures[0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(failed >= 3.0, "{failures:?}");
    let buckets = prometheus
        .query("count(breakerd_call_duration_seconds_bucket{service=\"mpesa\"})")
        .await;
    assert_eq!(
        buckets[0]["value"][1], "28",
        "14 buckets for success (always) and failure (seen); none for timeout (never seen): {buckets:?}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unset_credentials_leave_every_breaker_visible() {
    let daemon = start_daemon(
        "[services.mpesa]\npreset = \"mpesa\"\nconsumer_key = \"${NOT_SET_1}\"\nconsumer_secret = \"${NOT_SET_2}\"\nevery = \"50ms\"\n\
         [services.email]\npreset = \"smtp\"\nserver = \"${NOT_SET_3}\"\nevery = \"50ms\"\n",
    )
    .await;
    let address = daemon.address();
    eventually(10, "both checks ran", || async {
        let all = get_json(address, "/api/v1/circuit-breakers").await;
        all["mpesa"]["lastCheck"].is_object() && all["email"]["lastCheck"].is_object()
    })
    .await;
    let all = get_json(address, "/api/v1/circuit-breakers").await;
    assert_eq!(all["mpesa"]["lastCheck"]["reason"], "auth");
    assert_eq!(
        all["mpesa"]["lastCheck"]["detail"],
        "consumer_key is not set: environment variable NOT_SET_1 is empty or unset"
    );
    assert_eq!(
        all["email"]["lastCheck"]["detail"],
        "server is not set: environment variable NOT_SET_3 is empty or unset"
    );
    let (_, text) = http_get(address, "/metrics").await;
    assert!(
        sample(
            &text,
            "breakerd_probe_failures_total{service=\"mpesa\",reason=\"auth\"}"
        )
        .is_some_and(|n| n >= 1.0)
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_is_served_to_scrapers_that_ask_for_it() {
    let daemon = start_daemon("[services.t]\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n").await;
    let response = reqwest::Client::new()
        .get(format!("http://{}/metrics", daemon.address()))
        .header("accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"));
    assert!(text.contains("# TYPE breakerd_calls counter"));
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_of_one_service_never_overlap_and_missed_ticks_are_counted() {
    let fake = FakeProvider::start(Mode::Slow(Duration::from_millis(350))).await;
    let daemon = start_daemon(&format!(
        "[services.slow]\nkind = \"http\"\nurl = \"{}/health\"\nevery = \"100ms\"\ntimeout = \"2s\"\n",
        fake.url()
    ))
    .await;
    let address = daemon.address();
    eventually(
        10,
        "ticks missed behind a slow check are counted",
        || async {
            let (_, text) = http_get(address, "/metrics").await;
            sample(&text, "breakerd_probe_missed_ticks_total{service=\"slow\"}")
                .is_some_and(|n| n >= 4.0)
        },
    )
    .await;
    assert_eq!(
        fake.max_in_flight(),
        1,
        "two checks of one service ran at once"
    );
    let (_, text) = http_get(address, "/metrics").await;
    let successes = sample(
        &text,
        "breakerd_calls_total{service=\"slow\",outcome=\"success\",source=\"check\"}",
    )
    .unwrap_or(0.0);
    assert!(successes >= 1.0 && (successes as usize) <= fake.requests().len());
    daemon.shutdown().await.expect("clean shutdown");
}

/// Milliseconds between two RFC 3339 times of the events route.
fn millis_between(from: &serde_json::Value, to: &serde_json::Value) -> i128 {
    let parse = |value: &serde_json::Value| {
        humantime::parse_rfc3339(value.as_str().expect("a time"))
            .expect("RFC 3339")
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i128
    };
    parse(to) - parse(from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trial_runs_when_the_breaker_half_opens_not_at_the_next_tick() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    // Checks every hour: only the wake on half-open can run the trials this test sees.
    let config = format!(
        "[services.kcb]\npreset = \"kcb\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"1h\"\nfailure_threshold = 1\ntimeout = \"2s\"\nreset_timeout = \"300ms\"\n",
        fake.url()
    );
    let daemon = start_daemon(&config).await;
    let address = daemon.address();
    eventually(10, "two failed trials reopen the breaker", || async {
        let events = get_json(address, "/api/v1/circuit-breakers/kcb/events").await;
        events["transitions"]
            .as_array()
            .is_some_and(|all| all.iter().filter(|t| t["from"] == "HALF_OPEN").count() >= 2)
    })
    .await;
    let events = get_json(address, "/api/v1/circuit-breakers/kcb/events").await;
    let transitions = events["transitions"].as_array().unwrap();
    for pair in transitions.windows(2) {
        if pair[0]["to"] == "HALF_OPEN" {
            assert_eq!(pair[1]["from"], "HALF_OPEN", "{transitions:#?}");
            let half_open_ms = millis_between(&pair[0]["at"], &pair[1]["at"]);
            assert!(
                half_open_ms < 250,
                "half-open only as long as the trial call, not until the next tick: {half_open_ms} ms"
            );
        }
    }
    let (_, text) = http_get(address, "/metrics").await;
    let last_run = sample(
        &text,
        "breakerd_probe_last_run_timestamp_seconds{service=\"kcb\"}",
    )
    .unwrap();
    assert!(last_run > 1.0e9, "{text}");

    fake.set_mode(Mode::Healthy);
    eventually(
        5,
        "recovery is seen at the next trial, not in an hour",
        || async { state_of_service(address, "kcb").await == "CLOSED" },
    )
    .await;
    daemon.shutdown().await.expect("clean shutdown");
}

async fn state_of_service(address: std::net::SocketAddr, service: &str) -> String {
    get_json(address, &format!("/api/v1/circuit-breakers/{service}")).await["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_marked_disabled_is_checked_but_never_trips() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let daemon = start_daemon(&format!("{}disabled = true\n", mpesa_config(&fake.url()))).await;
    let address = daemon.address();
    eventually(10, "failing checks are counted", || async {
        get_json(address, "/api/v1/circuit-breakers/mpesa").await["failureCount"].as_u64()
            >= Some(5)
    })
    .await;
    assert_eq!(state_of(address).await, "DISABLED", "nothing trips it");
    let (_, text) = http_get(address, "/metrics").await;
    // The state gauge has three values; a disabled breaker lets calls through, as closed.
    assert_eq!(
        sample(
            &text,
            "breakerd_breaker_state{service=\"mpesa\",state=\"closed\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "breakerd_state_transitions_total{service=\"mpesa\",from=\"closed\",to=\"open\"}"
        ),
        Some(0.0)
    );
    let (status, body) = http_get(address, "/-/ready").await;
    assert_eq!((status, body.as_str()), (200, "breakerd is Ready.\n"));
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_answers_http_status_is_exported_and_shown() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let daemon = start_daemon(&format!(
        "{}[services.port]\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\nevery = \"100ms\"\n",
        mpesa_config(&fake.url()),
        crate::support::closed_port()
    ))
    .await;
    let address = daemon.address();
    let status_of = |service: &'static str| async move {
        let (_, text) = http_get(address, "/metrics").await;
        sample(
            &text,
            &format!("breakerd_probe_http_status_code{{service=\"{service}\"}}"),
        )
    };
    eventually(10, "the token answer's status is exported", || async {
        status_of("mpesa").await == Some(200.0)
    })
    .await;
    let stats = get_json(address, "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(stats["lastCheck"]["httpStatus"], 200, "{stats}");
    eventually(10, "the tcp check has run", || async {
        get_json(address, "/api/v1/circuit-breakers/port").await["lastCheck"]["outcome"]
            == "failure"
    })
    .await;
    assert_eq!(status_of("port").await, Some(0.0), "no HTTP answer: 0");
    fake.set_mode(Mode::Status(503));
    eventually(10, "a 503 is exported", || async {
        status_of("mpesa").await == Some(503.0)
    })
    .await;
    let stats = get_json(address, "/api/v1/circuit-breakers/mpesa").await;
    assert!(
        stats["lastCheck"]["httpStatus"] == 503 || stats["lastCheck"]["outcome"] == "rejected",
        "{stats}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_open_a_fresh_connection_and_say_where_their_time_went() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    // By host name, so the lookup is a phase too.
    let base = fake.url().replace("127.0.0.1", "localhost");
    let service = |name: &str, extra: &str| {
        format!(
            "[services.{name}]\npreset = \"kcb\"\nbase_url = \"{base}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\nevery = \"100ms\"\n{extra}"
        )
    };
    let daemon = start_daemon(&format!(
        "{}{}",
        service("fresh", ""),
        service("pooled", "reuse_connections = true\n")
    ))
    .await;
    let address = daemon.address();
    let phase = |service: &'static str, phase: &'static str| async move {
        let (_, text) = http_get(address, "/metrics").await;
        sample(
            &text,
            &format!("breakerd_probe_phase_seconds{{service=\"{service}\",phase=\"{phase}\"}}"),
        )
        .unwrap_or(-1.0)
    };
    // Several checks in, the fresh service still looks up and connects every time; the pooled
    // one reuses its connection (no lookup, no connect).
    eventually(10, "both services have checked a few times", || async {
        let fresh = get_json(address, "/api/v1/circuit-breakers/fresh").await;
        let pooled = get_json(address, "/api/v1/circuit-breakers/pooled").await;
        fresh["successCount"].as_u64() >= Some(3) && pooled["successCount"].as_u64() >= Some(3)
    })
    .await;
    assert!(phase("fresh", "dns").await > 0.0, "a fresh check resolves");
    assert!(phase("fresh", "connect").await > 0.0, "and connects");
    assert!(phase("fresh", "first_byte").await > 0.0);
    assert_eq!(
        phase("fresh", "tls").await,
        0.0,
        "plain HTTP has no handshake"
    );
    eventually(
        5,
        "the pooled service's last check reused its connection",
        || async { phase("pooled", "connect").await == 0.0 && phase("pooled", "dns").await == 0.0 },
    )
    .await;
    let stats = get_json(address, "/api/v1/circuit-breakers/fresh").await;
    let phases = &stats["lastCheck"]["phases"];
    for key in ["dnsMs", "connectMs", "tlsMs", "firstByteMs", "bodyMs"] {
        assert!(phases[key].is_number(), "{key} in {stats}");
    }
    assert!(phases["connectMs"].as_f64() > Some(0.0), "{stats}");
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_spread_over_several_check_threads_all_run_and_stop_with_the_daemon() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let services: String = (0..6)
        .map(|i| {
            format!(
                "[services.s{i}]\nkind = \"http\"\nurl = \"{}/health\"\nevery = \"100ms\"\n{}",
                fake.url(),
                if i % 2 == 0 {
                    "reuse_connections = true\n"
                } else {
                    ""
                }
            )
        })
        .collect();
    let daemon = start_daemon(&format!("[server]\ncheck_threads = 3\n{services}")).await;
    let address = daemon.address();
    eventually(10, "every service has passed three checks", || async {
        let mut passed = 0;
        for i in 0..6 {
            let stats = get_json(address, &format!("/api/v1/circuit-breakers/s{i}")).await;
            if stats["successCount"].as_u64() >= Some(3) {
                passed += 1;
            }
        }
        passed == 6
    })
    .await;
    daemon.shutdown().await.expect("clean shutdown");
    // Stopped with the daemon: no check reaches the provider afterwards.
    let seen = fake.requests().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests().len(), seen, "checks ran after shutdown");
}
