//! `breakerd demo`, ten times faster: breakers open, half-open and close, slow calls are
//! counted, Pesapal's HTTP 200 error body fails as `auth`, and the sink receives the alerts.

use std::time::{Duration, Instant};

use breakerd::demo::{Pace, alert_line, start};

use crate::support::{get_json, http_get, sample};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_breakers_opening_and_recovering_with_alerts() {
    let mut demo = start("127.0.0.1:0".parse().unwrap(), Pace(0.1))
        .await
        .expect("demo starts");
    let address = demo.daemon.address();
    let mut seen = Vec::new();
    let mut recovery = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    let wanted = [
        ("down", "OPEN"),
        ("flaky", "OPEN"),
        ("flaky", "CLOSED"),
        ("pesapal", "OPEN"),
    ];
    while !wanted
        .iter()
        .all(|w| seen.contains(&(w.0.to_string(), w.1.to_string())))
    {
        let remaining = deadline.saturating_duration_since(Instant::now());
        assert!(!remaining.is_zero(), "missing alerts; got {seen:?}");
        if let Ok(Some(alert)) = tokio::time::timeout(remaining, demo.alerts.recv()).await {
            let service = alert["service"].as_str().unwrap_or_default().to_string();
            let to = alert["to"].as_str().unwrap_or_default().to_string();
            if service == "flaky" && to == "CLOSED" {
                recovery.get_or_insert_with(|| alert_line(&alert));
            }
            seen.push((service, to));
        }
    }
    // The recovery line says how long the outage lasted and what it was, not the old error
    // as if it were current.
    let recovery = recovery.unwrap_or_default();
    assert!(
        recovery.starts_with("ALERT  flaky recovered after ") && !recovery.contains("last error"),
        "{recovery}"
    );
    assert!(
        recovery.contains("(was: http_status — HTTP 503"),
        "{recovery}"
    );
    let all = get_json(address, "/api/v1/circuit-breakers").await;
    assert_eq!(all["healthy"]["state"], "CLOSED");
    let pesapal = all["pesapal"]["lastFailure"]["reason"].as_str().unwrap();
    assert!(
        pesapal.starts_with(
            "auth: Pesapal refused the consumer key and secret: invalid_consumer_key_or_secret_provided"
        ),
        "{pesapal}"
    );
    let down = all["down"]["lastFailure"]["reason"].as_str().unwrap();
    assert!(down.starts_with("connect: "), "{down}");
    let (_, text) = http_get(address, "/metrics").await;
    assert!(
        sample(
            &text,
            "breakerd_slow_calls_total{service=\"slow\",source=\"check\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    demo.shutdown().await.expect("clean shutdown");
}
