//! The two routes the Node.js client (`clients/node`, npm `@breakerd/client`) relies on — the
//! state stream and trial permits — checked at the router. The client's own tests run with
//! `node --test` as the last part of README's test command (and so of `.ci/run`).

use std::time::Duration;

use breakerd::breaker::State;

use crate::support::{app_state, send};

const CONFIG: &str = "[server]\nreport_token = \"report-token-0123456789\"\n\
     [services.mpesa]\npreset = \"mpesa\"\nbase_url = \"http://127.0.0.1:9\"\n\
     failure_threshold = 1\nreset_timeout = \"50ms\"\nhalf_open_max_calls = 2\n";

fn breaker(state: &breakerd::api::AppState) -> breakerd::breaker::Breaker {
    state
        .registry()
        .get("mpesa")
        .expect("mpesa runs")
        .breaker
        .clone()
}

/// Opens the breaker with one reported failure and waits for its timer to half-open it.
async fn half_open(state: &breakerd::api::AppState) {
    let (status, _) = send(
        state,
        "POST",
        "/api/v1/circuit-breakers/mpesa/outcomes",
        Some("report-token-0123456789"),
        Some(r#"[{"outcome":"failure"}]"#),
    )
    .await;
    assert_eq!(status, 200);
    let breaker = breaker(state);
    for _ in 0..1000 {
        if breaker.state() == State::HalfOpen {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the breaker did not half-open: {:?}", breaker.state());
}

#[tokio::test]
async fn trial_permits_hold_the_half_open_slots_until_their_report() {
    let state = app_state(CONFIG);
    let (status, closed) = send(
        &state,
        "POST",
        "/api/v1/circuit-breakers/mpesa/trials",
        Some("report-token-0123456789"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(closed["permit"], serde_json::Value::Null, "{closed}");
    assert_eq!(closed["state"], "CLOSED");
    let (status, _) = send(
        &state,
        "POST",
        "/api/v1/circuit-breakers/mpesa/trials",
        Some("wrong"),
        None,
    )
    .await;
    assert_eq!(status, 401);

    half_open(&state).await;
    let mut permits = Vec::new();
    for _ in 0..2 {
        let (status, granted) = send(
            &state,
            "POST",
            "/api/v1/circuit-breakers/mpesa/trials",
            Some("report-token-0123456789"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{granted}");
        assert_eq!(granted["state"], "HALF_OPEN");
        permits.push(granted["permit"].as_str().expect("a permit id").to_string());
    }
    let (status, refused) = send(
        &state,
        "POST",
        "/api/v1/circuit-breakers/mpesa/trials",
        Some("report-token-0123456789"),
        None,
    )
    .await;
    assert_eq!(status, 503, "the third trial is refused: {refused}");
    assert_eq!(refused["circuitBreakerOpen"], true);
    assert_eq!(refused["message"], "Circuit breaker mpesa is HALF_OPEN");

    // The report naming a permit settles it: a success under each closes the breaker
    // (success_threshold defaults to 1, so the first does).
    let (status, report) = send(
        &state,
        "POST",
        "/api/v1/circuit-breakers/mpesa/outcomes",
        Some("report-token-0123456789"),
        Some(&format!(
            r#"[{{"outcome":"success","durationMs":3,"permit":"{}"}}]"#,
            permits[0]
        )),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["accepted"], 1);
    assert_eq!(report["state"], "CLOSED");
    let (status, problem) = send(
        &state,
        "POST",
        "/api/v1/circuit-breakers/mpesa/outcomes",
        Some("report-token-0123456789"),
        Some(r#"[{"outcome":"success","permit":7}]"#),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        problem["error"]
            .as_str()
            .unwrap_or("")
            .contains("[0].permit:"),
        "{problem}"
    );
}

/// Reads the stream until an event of `name` arrives; its data.
async fn next_event(stream: &mut reqwest::Response, buffer: &mut String, name: &str) -> String {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if event.starts_with(&format!("event: {name}\n")) {
                return event
                    .lines()
                    .filter_map(|line| line.strip_prefix("data: "))
                    .collect();
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
            .await
            .expect("an event within 5 s")
            .expect("the stream reads")
            .expect("the stream goes on");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_stream_sends_a_snapshot_then_each_change_at_once() {
    let daemon = crate::support::start_daemon(CONFIG).await;
    let base = format!("http://{}", daemon.address());
    let client = reqwest::Client::new();
    let mut stream = client
        .get(format!("{base}/api/v1/circuit-breakers/stream"))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.status().as_u16(), 200);
    let mut buffer = String::new();
    let snapshot: serde_json::Value =
        serde_json::from_str(&next_event(&mut stream, &mut buffer, "snapshot").await).unwrap();
    let mpesa = &snapshot["services"]["mpesa"];
    assert_eq!(mpesa["failureThreshold"], 1, "{snapshot}");
    assert_eq!(mpesa["timeoutMs"], 30000);
    assert_eq!(mpesa["halfOpenMaxCalls"], 2);
    assert!(mpesa["state"].is_string());

    let reported = tokio::time::Instant::now();
    let answer = client
        .post(format!("{base}/api/v1/circuit-breakers/mpesa/outcomes"))
        .bearer_auth("report-token-0123456789")
        .body(r#"[{"outcome":"failure"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    loop {
        let change: serde_json::Value =
            serde_json::from_str(&next_event(&mut stream, &mut buffer, "state").await).unwrap();
        assert_eq!(change["service"], "mpesa");
        if change["state"] == "OPEN" {
            assert!(change["nextAttempt"].is_string(), "{change}");
            break;
        }
    }
    assert!(
        reported.elapsed() < Duration::from_millis(500),
        "the change came by the transition, not by the once-a-second look: {:?}",
        reported.elapsed()
    );
    let stopping = tokio::spawn(daemon.shutdown());
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "stopping the daemon ends the stream");
    stopping.await.unwrap().expect("clean shutdown");
}

#[tokio::test]
async fn an_unreported_trial_permit_gives_its_slot_back_after_the_timeout() {
    let state = app_state(&CONFIG.replace(
        "half_open_max_calls = 2\n",
        "half_open_max_calls = 1\ntimeout = \"100ms\"\n",
    ));
    half_open(&state).await;
    let ask = || {
        send(
            &state,
            "POST",
            "/api/v1/circuit-breakers/mpesa/trials",
            Some("report-token-0123456789"),
            None,
        )
    };
    let (status, granted) = ask().await;
    assert_eq!(status, 200, "{granted}");
    assert_eq!(
        granted["expiresInMs"], 1100,
        "the timeout and a second's grace"
    );
    let asked = tokio::time::Instant::now();
    assert_eq!(ask().await.0, 503, "the one slot is held");
    // The client that took it never reports: the slot comes back once the permit expires.
    loop {
        let (status, _) = ask().await;
        if status == 200 {
            break;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "the permit never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(asked.elapsed() >= Duration::from_millis(1000));
    assert_eq!(breaker(&state).state(), State::HalfOpen);
}
