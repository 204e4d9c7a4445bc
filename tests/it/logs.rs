//! What the daemon logs: state changes with their context, slow calls, failed checks — and
//! never a secret.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::{eventually, get_json, start_daemon};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// A current-thread runtime keeps every daemon task on this thread, under this subscriber.
#[tokio::test(flavor = "current_thread")]
async fn state_changes_and_slow_calls_are_logged_without_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let fake = FakeProvider::start(Mode::Status(500)).await;
    let daemon = start_daemon(&format!(
        "[server]\nadmin_token = \"${{ADMIN_TOKEN}}\"\nslow_call = \"100ms\"\n\
         [services.pesapal]\npreset = \"pesapal\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"50ms\"\nfailure_threshold = 2\ntimeout = \"2s\"\nreset_timeout = \"300ms\"\n",
        fake.url()
    ))
    .await;
    let address = daemon.address();
    eventually(10, "the breaker opens", || async {
        get_json(address, "/api/v1/circuit-breakers/pesapal").await["state"] == "OPEN"
    })
    .await;
    fake.set_mode(Mode::Slow(Duration::from_millis(200)));
    eventually(10, "the breaker closes after a slow success", || async {
        get_json(address, "/api/v1/circuit-breakers/pesapal").await["state"] == "CLOSED"
    })
    .await;
    eventually(10, "the slow call and the recovery are logged", || async {
        let log = captured.text();
        log.contains("slow call: pesapal took")
            && log.contains("circuit breaker pesapal HALF_OPEN -> CLOSED")
    })
    .await;
    daemon.shutdown().await.expect("clean shutdown");

    let log = captured.text();
    let opened = log
        .lines()
        .find(|line| line.contains("circuit breaker pesapal CLOSED -> OPEN"))
        .unwrap_or_else(|| panic!("no open line in:\n{log}"));
    assert!(opened.contains("WARN"), "{opened}");
    assert!(opened.contains("2 consecutive failures"), "{opened}");
    assert!(
        opened.contains("last_error=\"http_status: HTTP 500"),
        "{opened}"
    );
    assert!(opened.contains("next_attempt="), "{opened}");
    assert!(
        log.contains("circuit breaker pesapal OPEN -> HALF_OPEN: reset timeout elapsed"),
        "{log}"
    );
    assert!(
        log.contains("circuit breaker pesapal HALF_OPEN -> CLOSED"),
        "{log}"
    );
    assert!(log.contains("check failed: HTTP 500"), "{log}");
    for secret in ["test-key", "test-secret", "admin-token-value"] {
        assert!(!log.contains(secret), "secret {secret} in the log:\n{log}");
    }
}
