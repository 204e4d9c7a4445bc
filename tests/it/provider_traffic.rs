//! Real calls through the sidecar proxy, with a real HTTP client, against fakes answering as
//! the providers publish: healthy payments never open a breaker, the caller's and the
//! customer's own outcomes never count against a provider, our own account's trouble and
//! throttling do — and a provider's `Retry-After` holds the next trial back.

use std::time::Duration;

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::upstream::Upstream;
use crate::support::{get_json, http_get, sample, start_daemon};

fn proxy(daemon: &breakerd::daemon::RunningDaemon, path: &str) -> String {
    format!(
        "http://{}{path}",
        daemon.proxy_address().expect("the proxy runs")
    )
}

fn provider_config(service: &str, preset: &str, url: &str, extra: &str) -> String {
    let credentials = match preset {
        "africastalking" => "username = \"${AT_USERNAME}\"\napi_key = \"${AT_API_KEY}\"",
        _ => "consumer_key = \"${KEY}\"\nconsumer_secret = \"${SECRET}\"",
    };
    format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.{service}]\npreset = \"{preset}\"\nbase_url = \"{url}\"\n{credentials}\nevery = \"1h\"\n{extra}"
    )
}

/// Sends `count` requests through the proxy; returns their statuses.
async fn send(
    daemon: &breakerd::daemon::RunningDaemon,
    method: &str,
    path: &str,
    count: usize,
) -> Vec<u16> {
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..count {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = client.request(method.clone(), proxy(daemon, path));
        if method == reqwest::Method::POST {
            request = request
                .header("content-type", "application/json")
                .body("{}");
        }
        let response = request.send().await.expect("the proxy answers");
        statuses.push(response.status().as_u16());
        response.bytes().await.expect("the body");
    }
    statuses
}

fn caller(metrics: &str, service: &str, operation: &str, kind: &str) -> f64 {
    sample(
        metrics,
        &format!(
            "breakerd_caller_outcomes_total{{service=\"{service}\",operation=\"{operation}\",kind=\"{kind}\"}}"
        ),
    )
    .unwrap_or(0.0)
}

fn traffic(metrics: &str, service: &str, operation: &str, outcome: &str) -> f64 {
    sample(
        metrics,
        &format!(
            "breakerd_calls_total{{service=\"{service}\",operation=\"{operation}\",outcome=\"{outcome}\",source=\"traffic\"}}"
        ),
    )
    .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_pesapal_statuses_leave_pesapal_closed() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let daemon = start_daemon(&provider_config("pesapal", "pesapal", &fake.url(), "")).await;
    let status = "/pesapal/api/Transactions/GetTransactionStatus?orderTrackingId=7e6b62d9-883e-440f-a63e-e1105bbfadc3";
    for published in [
        "pesapal/transaction_status_completed",
        "pesapal/transaction_status_failed",
        "pesapal/transaction_status_completed",
        "pesapal/transaction_status_failed",
        "pesapal/transaction_status_failed",
    ] {
        fake.set_mode(Mode::At(published.into()));
        assert_eq!(send(&daemon, "GET", status, 1).await, [200]);
    }
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/pesapal").await;
    assert_eq!(stats["state"], "CLOSED", "{stats}");
    assert_eq!(stats["failureCount"], 0, "{stats}");
    let (_, metrics) = http_get(daemon.address(), "/metrics").await;
    assert_eq!(
        traffic(&metrics, "pesapal", "transaction_status", "failure"),
        0.0
    );
    assert_eq!(
        traffic(&metrics, "pesapal", "transaction_status", "success"),
        2.0
    );
    assert_eq!(
        caller(&metrics, "pesapal", "transaction_status", "declined"),
        3.0
    );
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stk_queries_being_processed_leave_mpesa_closed_and_throttling_names_its_code() {
    let fake = FakeProvider::start(Mode::At("mpesa/stk_query_pending".into())).await;
    let daemon = start_daemon(&provider_config("mpesa", "mpesa", &fake.url(), "")).await;
    let statuses = send(&daemon, "POST", "/mpesa/mpesa/stkpushquery/v1/query", 6).await;
    assert_eq!(
        statuses, [500; 6],
        "the application gets Daraja's own 500 each time"
    );
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(stats["state"], "CLOSED", "{stats}");
    assert_eq!(stats["failureCount"], 0, "{stats}");
    let (_, metrics) = http_get(daemon.address(), "/metrics").await;
    assert_eq!(caller(&metrics, "mpesa", "stk_query", "pending"), 6.0);
    assert_eq!(traffic(&metrics, "mpesa", "stk_query", "failure"), 0.0);

    fake.set_mode(Mode::At("mpesa/stk_push_success".into()));
    send(&daemon, "POST", "/mpesa/mpesa/stkpush/v1/processrequest", 1).await;
    fake.set_mode(Mode::At("mpesa/stk_query_success".into()));
    send(&daemon, "POST", "/mpesa/mpesa/stkpushquery/v1/query", 2).await;
    fake.set_mode(Mode::At("mpesa/stk_push_spike_arrest".into()));
    send(&daemon, "POST", "/mpesa/mpesa/stkpush/v1/processrequest", 1).await;
    let (_, metrics) = http_get(daemon.address(), "/metrics").await;
    assert_eq!(
        traffic(&metrics, "mpesa", "stk_push", "success"),
        1.0,
        "stk_push apart"
    );
    assert_eq!(
        traffic(&metrics, "mpesa", "stk_query", "success"),
        2.0,
        "from stk_query"
    );
    assert_eq!(traffic(&metrics, "mpesa", "stk_push", "failure"), 1.0);
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/mpesa").await;
    let cause = &stats["cause"];
    assert_eq!(cause["reason"], "throttled", "{stats}");
    assert_eq!(cause["operation"], "stk_push", "{stats}");
    assert_eq!(cause["code"], "500.003.02", "{stats}");
    assert_eq!(
        cause["message"], "Error Occurred: Spike Arrest Violation",
        "{stats}"
    );
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_sms_account_opens_the_breaker_and_a_blacklisting_recipient_does_not() {
    let fake = FakeProvider::start(Mode::At("africastalking/sms_send_blacklisted".into())).await;
    let daemon = start_daemon(&provider_config("sms", "africastalking", &fake.url(), "")).await;
    let statuses = send(&daemon, "POST", "/sms/version1/messaging", 3).await;
    assert_eq!(statuses, [201; 3]);
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/sms").await;
    assert_eq!(
        (stats["state"].as_str(), stats["failureCount"].as_u64()),
        (Some("CLOSED"), Some(0)),
        "{stats}"
    );
    let (_, metrics) = http_get(daemon.address(), "/metrics").await;
    assert_eq!(caller(&metrics, "sms", "sms_send", "recipient"), 3.0);

    fake.set_mode(Mode::At(
        "africastalking/sms_send_insufficient_balance".into(),
    ));
    let statuses = send(&daemon, "POST", "/sms/version1/messaging", 5).await;
    assert_eq!(
        statuses, [201; 5],
        "Africa's Talking answers 201 with an empty account"
    );
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/sms").await;
    assert_eq!(
        stats["state"], "OPEN",
        "five sends with no credit open it: {stats}"
    );
    assert_eq!(stats["cause"]["reason"], "balance", "{stats}");
    assert_eq!(stats["cause"]["operation"], "sms_send", "{stats}");
    assert!(
        stats["cause"]["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("top up the Africa's Talking account")),
        "says what to do: {stats}"
    );
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_holds_the_next_trial_back_and_the_proxy_says_how_long() {
    let upstream = Upstream::start().await;
    let daemon = start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.app]\nkind = \"http\"\nurl = \"{url}/health\"\nupstream = \"{url}\"\nevery = \"1h\"\n\
         failure_threshold = 1\nreset_timeout = \"2s\"\n",
        url = upstream.url()
    ))
    .await;
    let before = std::time::SystemTime::now();
    assert_eq!(send(&daemon, "GET", "/app/throttled/30", 1).await, [429]);
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/app").await;
    assert_eq!(stats["state"], "OPEN", "{stats}");
    assert_eq!(stats["cause"]["reason"], "throttled", "{stats}");
    let next = humantime::parse_rfc3339_weak(stats["nextAttempt"].as_str().unwrap()).unwrap();
    let wait = next.duration_since(before).unwrap();
    assert!(
        wait >= Duration::from_secs(29) && wait <= Duration::from_secs(31),
        "no trial before the 30 s the provider asked for, though reset_timeout is 2s: {wait:?}"
    );
    let response = reqwest::get(proxy(&daemon, "/app/health")).await.unwrap();
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (28..=30).contains(&retry_after),
        "the 503 says how long is left: {retry_after}"
    );
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["nextAttempt"], stats["nextAttempt"]);
    let (_, metrics) = http_get(daemon.address(), "/metrics").await;
    assert_eq!(
        traffic(&metrics, "app", "other", "rejected"),
        1.0,
        "the open breaker sent nothing on"
    );
    daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_before_the_body_does_not_lose_the_verdict() {
    let upstream = Upstream::start().await;
    let daemon = start_daemon(&provider_config(
        "mpesa",
        "mpesa",
        &upstream.url(),
        "failure_threshold = 100\n",
    ))
    .await;
    // Daraja's rules read the body, and this one's rest comes only once released.
    let response = reqwest::get(proxy(&daemon, "/mpesa/held")).await.unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    upstream.release();
    crate::support::eventually(10, "the call is judged once its body has come", || async {
        let (_, metrics) = http_get(daemon.address(), "/metrics").await;
        traffic(&metrics, "mpesa", "other", "success") == 1.0
    })
    .await;
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(stats["cancelled"], 0, "{stats}");
    daemon.shutdown().await.unwrap();
}
