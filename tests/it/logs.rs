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

/// The process-wide log capture. A global subscriber, not a scoped one: tracing caches each
/// call site's interest process-wide, and a scoped subscriber races with other tests' threads.
fn captured() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("the only global subscriber");
            captured
        })
        .clone()
}

impl Captured {
    /// The captured lines that mention `service`.
    fn about(&self, service: &str) -> String {
        self.text()
            .lines()
            .filter(|line| line.contains(service))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_and_slow_calls_are_logged_without_secrets() {
    let captured = captured();

    let fake = FakeProvider::start(Mode::Status(500)).await;
    let daemon = start_daemon(&format!(
        "[server]\nadmin_token = \"${{ADMIN_TOKEN}}\"\nslow_call = \"100ms\"\n\
         [services.pesapal-logs]\npreset = \"pesapal\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"50ms\"\nfailure_threshold = 2\ntimeout = \"2s\"\nreset_timeout = \"300ms\"\n",
        fake.url()
    ))
    .await;
    let address = daemon.address();
    eventually(10, "the breaker opens", || async {
        get_json(address, "/api/v1/circuit-breakers/pesapal-logs").await["state"] == "OPEN"
    })
    .await;
    fake.set_mode(Mode::Slow(Duration::from_millis(200)));
    eventually(10, "the breaker closes after a slow success", || async {
        get_json(address, "/api/v1/circuit-breakers/pesapal-logs").await["state"] == "CLOSED"
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = captured.about("pesapal-logs");
        if log.contains("slow call: pesapal-logs took")
            && log.contains("circuit breaker pesapal-logs HALF_OPEN -> CLOSED")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slow call and the recovery are not logged:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    daemon.shutdown().await.expect("clean shutdown");

    let log = captured.about("pesapal-logs");
    let opened = log
        .lines()
        .find(|line| line.contains("circuit breaker pesapal-logs CLOSED -> OPEN"))
        .unwrap_or_else(|| panic!("no open line in:\n{log}"));
    assert!(opened.contains("WARN"), "{opened}");
    assert!(opened.contains("2 consecutive failures"), "{opened}");
    assert!(
        opened.contains("last_error=\"http_status: HTTP 500"),
        "{opened}"
    );
    assert!(opened.contains("next_attempt="), "{opened}");
    assert!(
        log.contains("circuit breaker pesapal-logs OPEN -> HALF_OPEN: reset timeout elapsed"),
        "{log}"
    );
    assert!(
        log.contains("circuit breaker pesapal-logs HALF_OPEN -> CLOSED"),
        "{log}"
    );
    assert!(log.contains("check failed: HTTP 500"), "{log}");
    let slow = log
        .lines()
        .find(|line| line.contains("slow call: pesapal-logs took"))
        .unwrap();
    assert!(
        slow.contains("ms): dns 0, connect ") && slow.contains(", first byte "),
        "a slow check says where its time went: {slow}"
    );
    let closed = log
        .lines()
        .find(|line| line.contains("HALF_OPEN -> CLOSED"))
        .unwrap();
    assert!(
        !closed.contains("=\"\"") && !closed.contains("next_attempt"),
        "no empty fields: {closed}"
    );
    for line in log.lines().filter(|line| line.contains("check failed")) {
        let value = line
            .split("duration_ms=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no duration in {line}"));
        let digits = value.trim_start_matches(['0', '.']).replace('.', "");
        assert!(
            digits.len() <= 4 && value.parse::<f64>().is_ok(),
            "a rounded duration: {line}"
        );
    }
    // Every daemon of this test binary logs here: none may log a secret.
    let everything = captured.text();
    for secret in [
        "test-key",
        "test-secret",
        "admin-token-value",
        "at-api-key-value",
        "wa-token-value",
    ] {
        assert!(
            !everything.contains(secret),
            "secret {secret} in the log:\n{everything}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_echoes_the_request_leaks_no_secret_anywhere() {
    use crate::support::receiver::Receiver;
    let captured = captured();
    let echo = FakeProvider::start(Mode::Echo).await;
    let webhook = Receiver::start(&[]).await;
    let base = echo.url();
    let service = |name: &str, preset: &str, keys: &str| {
        format!(
            "[services.{name}]\npreset = \"{preset}\"\nbase_url = \"{base}\"\n{keys}\nevery = \"100ms\"\nfailure_threshold = 1\nreset_timeout = \"1h\"\n"
        )
    };
    let oauth = "consumer_key = \"${KEY}\"\nconsumer_secret = \"${SECRET}\"";
    let config = [
        service("echo-mpesa", "mpesa", oauth),
        service("echo-pesapal", "pesapal", oauth),
        service("echo-kcb", "kcb", oauth),
        service(
            "echo-sms",
            "africastalking",
            "username = \"${AT_USERNAME}\"\napi_key = \"${AT_API_KEY}\"",
        ),
        service(
            "echo-whatsapp",
            "whatsapp",
            "phone_number_id = \"${WA_PHONE_ID}\"\naccess_token = \"${WA_TOKEN}\"",
        ),
        format!(
            "[services.echo-http]\nkind = \"http\"\nurl = \"{base}/health?token=${{SECRET}}\"\nheaders = {{ X-Api-Key = \"${{AT_API_KEY}}\" }}\n\
             every = \"100ms\"\nfailure_threshold = 1\nreset_timeout = \"1h\"\n"
        ),
        format!(
            "[alerts]\nmin_interval = \"0s\"\n[[alerts.webhook]]\nurl = \"{}\"\n",
            webhook.url()
        ),
    ]
    .concat();
    let daemon = start_daemon(&config).await;
    let address = daemon.address();
    eventually(
        15,
        "every echoing provider's breaker opens and pages",
        || async { webhook.bodies().len() >= 6 },
    )
    .await;
    let mut shown = vec![captured.text()];
    for path in [
        "/api/v1/circuit-breakers",
        "/api/v1/circuit-breakers/health",
        "/api/v1/status",
        "/metrics",
        "/api/v1/circuit-breakers/echo-mpesa/events",
    ] {
        shown.push(crate::support::http_get(address, path).await.1);
    }
    shown.extend(webhook.received().iter().map(|r| r.body.clone()));
    let everything = shown.join("\n");
    assert!(
        everything.contains("<redacted>"),
        "the echoes are shown, redacted: {everything}"
    );
    for secret in [
        "test-key",
        "test-secret",
        "at-api-key-value",
        "wa-token-value",
        // HTTP Basic of test-key:test-secret, and each secret in base64.
        "dGVzdC1rZXk6dGVzdC1zZWNyZXQ",
        "dGVzdC1rZXk",
        "dGVzdC1zZWNyZXQ",
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_sent_through_the_proxy_appear_nowhere() {
    use crate::support::receiver::Receiver;
    let captured = captured();
    let echo = FakeProvider::start(Mode::Echo).await;
    let webhook = Receiver::start(&[]).await;
    let daemon = start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.proxied-echo]\nkind = \"http\"\nurl = \"{0}/health\"\nupstream = \"{0}\"\nevery = \"1h\"\nfailure_threshold = 2\nreset_timeout = \"1h\"\n\
         [alerts]\nmin_interval = \"0s\"\n[[alerts.webhook]]\nurl = \"{1}\"\n",
        echo.url(),
        webhook.url()
    ))
    .await;
    let proxy = daemon.proxy_address().expect("the proxy runs");
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let response = client
            .post(format!(
                "http://{proxy}/proxied-echo/v1/pay?access_token=query-credential"
            ))
            .header("authorization", "Bearer header-credential")
            .header("apiKey", "apikey-credential")
            .header("cookie", "session=cookie-credential")
            .body("{\"password\":\"body-credential\"}")
            .send()
            .await
            .expect("the proxy answers");
        // The provider's echo is the application's own answer: it passes unchanged.
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            status == 503 || body.contains("header-credential"),
            "{status} {body}"
        );
    }
    eventually(10, "the breaker opens and pages", || async {
        !webhook.bodies().is_empty()
    })
    .await;
    let mut shown = vec![captured.text()];
    for path in [
        "/api/v1/circuit-breakers",
        "/api/v1/status",
        "/metrics",
        "/api/v1/circuit-breakers/proxied-echo/events",
    ] {
        shown.push(crate::support::http_get(daemon.address(), path).await.1);
    }
    shown.extend(webhook.received().iter().map(|r| r.body.clone()));
    let everything = shown.join("\n");
    assert!(
        everything.contains("HTTP 500 on other (a real call)"),
        "the failure is shown: {everything}"
    );
    for secret in [
        "query-credential",
        "header-credential",
        "apikey-credential",
        "cookie-credential",
        "body-credential",
        "access_token",
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
    daemon.shutdown().await.expect("clean shutdown");
}

/// A logfmt line read strictly: `key=value` pairs (or bare keys) separated by single spaces,
/// a value bare (no space, `=`, `"` or `\`) or quoted with `\"`, `\\`, `\n`, `\r`, `\t`
/// escapes. `Err` says where the line stops being logfmt.
fn parse_logfmt(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = line.chars().peekable();
    while chars.peek().is_some() {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ' ' {
                break;
            }
            if c == '"' || c == '\\' || c.is_control() {
                return Err(format!("{c:?} in a key after {pairs:?}"));
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            return Err(format!("an empty key after {pairs:?}"));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('"') => value.push('"'),
                            Some('\\') => value.push('\\'),
                            Some('n') => value.push('\n'),
                            Some('r') => value.push('\r'),
                            Some('t') => value.push('\t'),
                            Some('u') => {
                                let hex: String = chars.by_ref().take(4).collect();
                                let code = u32::from_str_radix(&hex, 16)
                                    .ok()
                                    .and_then(char::from_u32)
                                    .ok_or_else(|| format!("bad \\u{hex} in {key}"))?;
                                value.push(code);
                            }
                            other => return Err(format!("bad escape {other:?} in {key}")),
                        },
                        Some(c) if c.is_control() => {
                            return Err(format!("a raw control character in {key}"));
                        }
                        Some(c) => value.push(c),
                        None => return Err(format!("{key}: a quote left open")),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ' ' {
                        break;
                    }
                    if c == '"' || c == '=' || c == '\\' {
                        return Err(format!("{c:?} in the bare value of {key}"));
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        pairs.push((key, value));
        match chars.next() {
            None => break,
            Some(' ') if chars.peek().is_some_and(|c| *c != ' ') => {}
            Some(other) => return Err(format!("{other:?} after {pairs:?}")),
        }
    }
    Ok(pairs)
}

#[test]
fn a_logfmt_parser_reads_every_line_of_a_demo_run() {
    use std::io::BufRead as _;
    let port = crate::support::closed_port();
    let mut demo = std::process::Command::new(env!("CARGO_BIN_EXE_breakerd"))
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(crate::support::scratch_dir("logfmt"))
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start breakerd demo");
    let stderr = demo.stderr.take().expect("stderr");
    // Read until the demo has opened a breaker and sent its alert (its own pace, no waiting
    // beyond it), then stop it.
    let (lines, done) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut opened = false;
    let mut alerted = false;
    while !(opened && alerted) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(line) = done.recv_timeout(left) else {
            panic!(
                "the demo did not open a breaker and alert within 60 s:\n{}",
                seen.join("\n")
            );
        };
        opened |= line.contains("CLOSED -> OPEN");
        alerted |= line.contains("alert sent");
        seen.push(line);
    }
    let _ = demo.kill();
    let _ = demo.wait();
    drop(done);
    let _ = reader.join();
    assert!(seen.len() >= 5, "{seen:?}");
    for line in &seen {
        let pairs = parse_logfmt(line).unwrap_or_else(|why| panic!("{why}\nin: {line}"));
        let keys: Vec<&str> = pairs.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys[..3], ["ts", "level", "target"], "{line}");
        assert!(keys.contains(&"msg"), "{line}");
    }
    let opened = seen
        .iter()
        .find(|line| line.contains("CLOSED -> OPEN"))
        .expect("the transition line");
    let pairs = parse_logfmt(opened).expect("logfmt");
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(field("level"), Some("WARN"));
    assert_eq!(field("reason"), Some("3 consecutive failures"), "{opened}");
    assert!(
        field("last_error").is_some_and(|error| !error.is_empty()),
        "{opened}"
    );
}

#[test]
fn the_logfmt_reader_of_these_tests_refuses_what_breaks_logfmt() {
    assert!(parse_logfmt("a=1 b=\"two words\" c").is_ok());
    assert!(
        parse_logfmt("reason=3 consecutive failures").is_ok(),
        "bare keys parse…"
    );
    assert_eq!(
        parse_logfmt("reason=3 consecutive failures").unwrap()[0],
        ("reason".to_string(), "3".to_string()),
        "…but the value is cut where it should not be: why values must be quoted"
    );
    assert!(parse_logfmt("a=\"open").is_err());
    assert!(parse_logfmt("a=b\"c").is_err());
    assert!(parse_logfmt("a=1  b=2").is_err());
}
