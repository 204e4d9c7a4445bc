//! Heartbeat services through the running daemon: beats keep the breaker closed, a missed beat
//! opens it and pages once with the last beat's time, a beat closes it again; a wrong token is
//! refused without counting; a reported failure counts at once; the last beat survives a
//! restart.

use std::time::Duration;

use serde_json::Value;

use crate::support::receiver::Receiver;
use crate::support::{eventually, get_json, http_get, sample, scratch_dir, start_daemon};

const TOKEN: &str = "beat-token-value";

fn config(state: &std::path::Path, hook: Option<&Receiver>) -> String {
    let webhook = hook
        .map(|hook| format!("[[alerts.webhook]]\nurl = \"{}\"\n", hook.url()))
        .unwrap_or_default();
    format!(
        "[services.callbacks]\nkind = \"heartbeat\"\nevery = \"1s\"\ngrace = \"0s\"\ntoken = \"{TOKEN}\"\nreset_timeout = \"1s\"\n\
         [alerts]\nstate_dir = \"{}\"\nmin_interval = \"0s\"\n{webhook}",
        state.display()
    )
}

async fn beat(address: std::net::SocketAddr, token: &str, body: Option<&str>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("http://{address}/api/v1/heartbeat/callbacks"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

async fn state(address: std::net::SocketAddr) -> String {
    get_json(address, "/api/v1/circuit-breakers/callbacks").await["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn last_beat_metric(address: std::net::SocketAddr) -> Option<f64> {
    let (_, text) = http_get(address, "/metrics").await;
    sample(
        &text,
        "breakerd_heartbeat_last_timestamp_seconds{service=\"callbacks\"}",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_heartbeat_opens_the_breaker_and_pages_once_with_the_last_beat() {
    let hook = Receiver::start(&[]).await;
    let daemon = start_daemon(&config(&scratch_dir("heartbeat"), Some(&hook))).await;
    let address = daemon.address();
    assert_eq!(last_beat_metric(address).await, Some(0.0), "no beat yet");

    let (status, answer) = beat(address, "wrong-token", None).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(
        last_beat_metric(address).await,
        Some(0.0),
        "a refused beat counts nothing"
    );

    // The application beats more often than every 1s: the breaker stays closed.
    let mut last = Value::Null;
    for _ in 0..6 {
        let (status, answer) = beat(address, TOKEN, None).await;
        assert_eq!(status, 200, "{answer}");
        last = answer;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(state(address).await, "CLOSED");
    let last_beat = last["lastBeat"].as_str().unwrap().to_string();

    // Then it stops: the gap passes every + grace, and the breaker opens.
    eventually(10, "the missed heartbeat opens the breaker", || async {
        state(address).await == "OPEN"
    })
    .await;
    let stats = get_json(address, "/api/v1/circuit-breakers/callbacks").await;
    assert_eq!(stats["cause"]["reason"], "heartbeat_missed", "{stats}");
    let detail = stats["cause"]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("no heartbeat since {last_beat}")),
        "{detail}"
    );
    eventually(10, "the outage is paged", || async {
        !hook.accepted().is_empty()
    })
    .await;

    // A beat brings it back at its next trial.
    let (status, _) = beat(address, TOKEN, None).await;
    assert_eq!(status, 200);
    eventually(10, "the breaker closes after a beat", || async {
        state(address).await == "CLOSED"
    })
    .await;
    eventually(10, "the recovery is paged", || async {
        hook.accepted().len() >= 2
    })
    .await;
    daemon.shutdown().await.expect("clean shutdown");
    let pages: Vec<Value> = hook.accepted().iter().map(|r| r.json()).collect();
    let opened: Vec<&Value> = pages.iter().filter(|p| p["to"] == "OPEN").collect();
    assert_eq!(opened.len(), 1, "one page for the outage: {pages:#?}");
    assert!(
        opened[0]["lastFailure"]
            .as_str()
            .unwrap()
            .contains(&format!("no heartbeat since {last_beat}")),
        "{:#}",
        opened[0]
    );
    assert_eq!(pages.iter().filter(|p| p["to"] == "CLOSED").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_beat_survives_a_restart_and_a_reported_failure_counts_at_once() {
    let state_dir = scratch_dir("heartbeat-kept");
    let daemon = start_daemon(&config(&state_dir, None)).await;
    let address = daemon.address();
    // cron jobs and curl: the token in the query.
    let (status, body) = http_get(
        address,
        &format!("/api/v1/heartbeat/callbacks?token={TOKEN}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let kept = humantime::parse_rfc3339(answer["lastBeat"].as_str().unwrap()).unwrap();
    let kept_seconds = kept
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (status, _) = http_get(address, "/api/v1/heartbeat/callbacks?token=nope").await;
    assert_eq!(status, 401);
    daemon.shutdown().await.expect("clean shutdown");

    let daemon = start_daemon(&config(&state_dir, None)).await;
    let address = daemon.address();
    eventually(10, "the kept beat is read back", || async {
        last_beat_metric(address)
            .await
            .is_some_and(|at| (at - kept_seconds).abs() < 0.002)
    })
    .await;

    let (status, answer) = beat(
        address,
        TOKEN,
        Some(r#"{"outcome": "failure", "detail": "callback signature invalid\nfor 3 payments"}"#),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "failure");
    assert_eq!(
        answer["state"], "OPEN",
        "failure_threshold 1: it counts at once"
    );
    let stats = get_json(address, "/api/v1/circuit-breakers/callbacks").await;
    assert_eq!(stats["cause"]["reason"], "reported");
    assert_eq!(
        stats["cause"]["detail"],
        "callback signature invalid for 3 payments"
    );
    let (status, answer) = beat(address, TOKEN, Some(r#"{"outcome": "maybe"}"#)).await;
    assert_eq!(status, 400, "{answer}");
    daemon.shutdown().await.expect("clean shutdown");
}
