//! The proxy as a resilience layer per service: `max_concurrent` caps the calls in flight
//! (the rest answered 503 `capacity` at once, never against the provider), and `fallback`
//! sends the calls an open breaker refuses to a second service's upstream, through that
//! service's own breaker, one hop only. Real HTTP clients (reqwest) against the real proxy;
//! the providers are the fake that hangs or fails as real ones do.

use std::net::SocketAddr;

use crate::support::config_problems as problems;
use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::upstream::Upstream;
use crate::support::{eventually, get_json, http_get, sample, start_daemon};

/// A service table proxying to `upstream`, its checks going to `checks` once an hour.
fn service(name: &str, upstream: &str, checks: &Upstream, extra: &str) -> String {
    format!(
        "[services.{name}]\nkind = \"http\"\nurl = \"{}/health\"\nupstream = \"{upstream}/\"\n\
         every = \"1h\"\nfailure_threshold = 3\ntimeout = \"30s\"\nreset_timeout = \"1h\"\n{extra}\n",
        checks.url()
    )
}

async fn metrics(daemon: SocketAddr) -> String {
    http_get(daemon, "/metrics").await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_lets_three_through_and_refuses_the_rest_at_once() {
    let checks = Upstream::start().await;
    let slow = FakeProvider::start(Mode::Hang).await;
    let daemon = start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\nreport_token = \"report-secret-0123456789\"\n{}",
        service("sms", &slow.url(), &checks, "max_concurrent = 3")
    ))
    .await;
    let proxy = daemon.proxy_address().expect("the proxy runs");
    let client = reqwest::Client::new();
    let calls: Vec<_> = (0..10)
        .map(|index| {
            let client = client.clone();
            tokio::spawn(async move {
                let response = client
                    .post(format!("http://{proxy}/sms/version1/messaging"))
                    .body(format!("to=%2B2547000000{index:02}&message=hi"))
                    .send()
                    .await
                    .expect("an answer");
                let status = response.status().as_u16();
                let marked = crate::support::proxy_answer(&response);
                let retry_after = response.headers().contains_key("retry-after");
                let text = response.text().await.expect("a body");
                let body: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                (status, marked, retry_after, body)
            })
        })
        .collect();
    // Seven come back while the three that got through still hang at the provider.
    let mut refused = Vec::new();
    let mut waiting = Vec::new();
    for call in calls {
        waiting.push(call);
    }
    eventually(20, "seven calls are answered", || {
        let done = waiting.iter().filter(|call| call.is_finished()).count();
        async move { done == 7 }
    })
    .await;
    let mut hanging = Vec::new();
    for call in waiting {
        if call.is_finished() {
            refused.push(call.await.expect("the call task"));
        } else {
            hanging.push(call);
        }
    }
    assert_eq!(hanging.len(), 3);
    for (status, marked, retry_after, body) in &refused {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(marked.as_deref(), Some("capacity"));
        assert!(
            retry_after,
            "Retry-After tells the client when to come back"
        );
        assert_eq!(body["reason"], "capacity");
        assert_eq!(body["success"], false);
        assert_eq!(body["maxConcurrent"], 3);
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|message| message.contains("max_concurrent")),
            "{body}"
        );
    }
    eventually(10, "three calls reach the provider", || async {
        slow.requests().len() == 3
    })
    .await;
    assert_eq!(slow.max_in_flight(), 3, "never more than the cap at once");
    let address = daemon.address();
    let text = metrics(address).await;
    assert_eq!(
        sample(&text, "breakerd_bulkhead_in_flight{service=\"sms\"}"),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, "breakerd_bulkhead_max_concurrent{service=\"sms\"}"),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, "breakerd_bulkhead_rejections_total{service=\"sms\"}"),
        Some(7.0)
    );
    let stats = get_json(address, "/api/v1/circuit-breakers/sms").await;
    assert_eq!(stats["state"], "CLOSED");
    assert_eq!(
        stats["failureCount"], 0,
        "nothing counted against the provider"
    );
    assert_eq!(stats["bulkhead"]["maxConcurrent"], 3);
    assert_eq!(stats["bulkhead"]["inFlight"], 3);
    assert_eq!(stats["bulkhead"]["rejections"], 7);
    // What applications report themselves is never capped.
    let reported = client
        .post(format!(
            "http://{address}/api/v1/circuit-breakers/sms/outcomes"
        ))
        .bearer_auth("report-secret-0123456789")
        .header("content-type", "application/json")
        .body(r#"[{"outcome":"success","durationMs":12},{"outcome":"success","durationMs":9}]"#)
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        reported.status(),
        200,
        "reports are taken while the cap is full"
    );
    let answer: serde_json::Value =
        serde_json::from_str(&reported.text().await.expect("a body")).expect("JSON");
    assert_eq!(answer["accepted"], 2, "{answer}");

    // The three callers give up: their slots come free, and the next call gets one.
    for call in &hanging {
        call.abort();
    }
    eventually(10, "the slots come free", || async {
        get_json(address, "/api/v1/circuit-breakers/sms").await["bulkhead"]["inFlight"] == 0
    })
    .await;
    slow.set_mode(Mode::Healthy);
    let response = client
        .get(format!("http://{proxy}/sms/version1/user?username=sandbox"))
        .send()
        .await
        .expect("an answer");
    assert_ne!(
        crate::support::proxy_answer(&response).as_deref(),
        Some("capacity"),
        "a slot was free again"
    );
    let stats = get_json(address, "/api/v1/circuit-breakers/sms").await;
    assert_eq!(stats["state"], "CLOSED");
    assert_eq!(stats["failureCount"], 0);
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_an_open_breaker_refuses_go_to_the_fallback_which_keeps_its_own_breaker() {
    let checks = Upstream::start().await;
    let primary = FakeProvider::start(Mode::Status(500)).await;
    let second = FakeProvider::start(Mode::Healthy).await;
    let daemon = start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n{}{}",
        service("sms", &primary.url(), &checks, "fallback = \"sms-backup\""),
        service("sms-backup", &second.url(), &checks, "")
    ))
    .await;
    let proxy = daemon.proxy_address().expect("the proxy runs");
    let address = daemon.address();
    let client = reqwest::Client::new();
    let call = || {
        let client = client.clone();
        async move {
            let response = client
                .get(format!("http://{proxy}/sms/version1/user?username=sandbox"))
                .send()
                .await
                .expect("an answer");
            let fallback = response
                .headers()
                .get("x-breakerd-fallback")
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            (response.status().as_u16(), fallback)
        }
    };
    // The primary fails three times: those calls reached it, so none is resent.
    for _ in 0..3 {
        assert_eq!(call().await, (500, None));
    }
    assert_eq!(primary.requests().len(), 3);
    assert!(
        second.requests().is_empty(),
        "a call that reached the primary is never resent"
    );
    let stats = get_json(address, "/api/v1/circuit-breakers/sms").await;
    assert_eq!(stats["state"], "OPEN");

    // Open: the calls go to the fallback's upstream, marked, and the primary sees none.
    for _ in 0..4 {
        let (status, fallback) = call().await;
        assert_ne!(status, 503);
        assert_eq!(fallback.as_deref(), Some("sms-backup"));
    }
    assert_eq!(
        primary.requests().len(),
        3,
        "the open primary is not called"
    );
    assert_eq!(second.requests().len(), 4);
    let seen = &second.requests()[0];
    assert_eq!(
        seen.target, "/version1/user?username=sandbox",
        "same path and query"
    );
    let text = metrics(address).await;
    assert_eq!(
        sample(
            &text,
            "breakerd_fallback_calls_total{service=\"sms\",fallback=\"sms-backup\",outcome=\"sent\"}"
        ),
        Some(4.0)
    );
    assert_eq!(
        get_json(address, "/api/v1/circuit-breakers/sms").await["fallback"],
        serde_json::json!({"service": "sms-backup", "calls": 4})
    );

    // The fallback fails too: its own breaker opens after three, and then protects it.
    second.set_mode(Mode::Status(502));
    for _ in 0..3 {
        assert_eq!(call().await, (502, Some("sms-backup".to_string())));
    }
    assert_eq!(second.requests().len(), 7);
    let backup = get_json(address, "/api/v1/circuit-breakers/sms-backup").await;
    assert_eq!(backup["state"], "OPEN");
    let (status, fallback) = call().await;
    assert_eq!(status, 503, "both refuse: the primary's own refusal");
    assert_eq!(fallback, None);
    assert_eq!(
        second.requests().len(),
        7,
        "the open fallback is not called"
    );
    assert_eq!(primary.requests().len(), 3);
    let text = metrics(address).await;
    assert_eq!(
        sample(
            &text,
            "breakerd_fallback_calls_total{service=\"sms\",fallback=\"sms-backup\",outcome=\"refused\"}"
        ),
        Some(1.0)
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[test]
fn check_points_at_fallbacks_it_cannot_follow_and_bad_caps() {
    let http = |name: &str, extra: &str| {
        format!(
            "[services.{name}]\nkind = \"http\"\nurl = \"https://{name}.example.com/health\"\nupstream = \"https://{name}.example.com/\"\n{extra}\n"
        )
    };
    let tcp = "[services.db]\nkind = \"tcp\"\naddress = \"127.0.0.1:5432\"\n";
    assert_eq!(
        problems(&http("a", "fallback = \"a\"")),
        [
            "alerts.toml:5:12: service a cannot fall back to itself: name another service with an upstream"
        ]
    );
    assert_eq!(
        problems(&http("a", "fallback = \"zz\"")),
        ["alerts.toml:5:12: unknown fallback \"zz\" (did you mean \"a\"? allowed: a)"]
    );
    assert_eq!(
        problems(&format!("{}{tcp}", http("a", "fallback = \"db\""))),
        [
            "alerts.toml:5:12: fallback db has no upstream to proxy to (a kind http service needs `upstream`; smtp, tcp and heartbeat services carry no HTTP): choose a service the proxy can reach"
        ]
    );
    assert_eq!(
        problems(&format!(
            "{}{}{}",
            http("a", "fallback = \"b\""),
            http("b", "fallback = \"c\""),
            http("c", "")
        )),
        [
            "alerts.toml:5:12: fallback b falls back in turn (to c): fallbacks are one hop, never a chain; point a at a service without a fallback"
        ]
    );
    assert_eq!(
        problems(&format!("{tcp}fallback = \"db\"\nmax_concurrent = 2\n")),
        [
            "alerts.toml:4:12: service db cannot fall back to itself: name another service with an upstream",
            "alerts.toml:5:18: max_concurrent applies to calls through the proxy, and service db has no upstream to proxy to (set `upstream` on a kind http service; smtp, tcp and heartbeat services carry no HTTP)",
        ]
    );
    assert_eq!(
        problems(&http("a", "max_concurrent = 0\nmax_wait = \"2m\"")),
        [
            "alerts.toml:5:18: max_concurrent is 0, allowed is a whole number from 1 to 100000",
            "alerts.toml:6:12: max_wait is 2m, the longest allowed is 1m",
        ]
    );
    assert_eq!(
        problems(&http("a", "max_wait = \"1s\"")),
        [
            "alerts.toml:5:12: max_wait is how long a call waits for one of `max_concurrent` slots: set max_concurrent too, or remove max_wait"
        ]
    );
}

#[test]
fn check_print_shows_the_cap_and_the_fallback() {
    let config = crate::support::test_config(
        "[services.a]\nkind = \"http\"\nurl = \"https://a.example.com/health\"\nupstream = \"https://a.example.com/\"\nmax_concurrent = 5\nmax_wait = \"250ms\"\nfallback = \"b\"\n\
         [services.b]\nkind = \"http\"\nurl = \"https://b.example.com/health\"\nupstream = \"https://b.example.com/\"\n",
    );
    let printed = breakerd::config::render_effective(&config);
    assert!(
        printed.contains("max_concurrent = 5\nmax_wait = \"250ms\""),
        "{printed}"
    );
    assert!(printed.contains("fallback = \"b\""), "{printed}");
    let service = config.service("a").expect("a");
    assert_eq!(service.fallback.as_deref(), Some("b"));
    assert_eq!(
        service
            .bulkhead
            .map(|cap| (cap.max_concurrent, cap.max_wait.as_millis())),
        Some((5, 250))
    );
}
