//! Bearer tokens resist guessing: wrong ones are counted per route, an address that sends 20
//! within a minute is answered 429 (with `Retry-After`) on every token-guarded route while the
//! right token from another address goes on working, and `check` refuses tokens short enough
//! to guess, at their line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::support::config_problems as problems;
use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::{http_get, sample, start_daemon};

const ADMIN: &str = "admin-token-for-the-guessing-test";
const REPORT: &str = "report-token-for-the-guessing-test";

/// A client whose connections come from `from` (another loopback address).
fn client_from(from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(from)))
        .build()
        .expect("client")
}

async fn reset(client: &reqwest::Client, daemon: SocketAddr, token: &str) -> reqwest::Response {
    client
        .post(format!(
            "http://{daemon}/api/v1/circuit-breakers/mpesa/reset"
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_five_wrong_tokens_get_429_while_the_right_one_from_elsewhere_works() {
    breakerd::probe::install_crypto_provider();
    let fake = FakeProvider::start(Mode::Healthy).await;
    let daemon = start_daemon(&format!(
        "[server]\nadmin_token = \"{ADMIN}\"\nreport_token = \"{REPORT}\"\n\
         [services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{}\"\nconsumer_key = \"k\"\nconsumer_secret = \"s\"\nevery = \"1h\"\n",
        fake.url()
    ))
    .await;
    let address = daemon.address();
    let attacker = client_from([127, 0, 0, 3]);
    let operator = client_from([127, 0, 0, 2]);
    let mut statuses = Vec::new();
    for attempt in 0..25 {
        let response = reset(&attacker, address, &format!("guess-{attempt:04}")).await;
        statuses.push(response.status().as_u16());
        if attempt == 24 {
            let retry_after: u64 = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())
                .expect("429 says when to come back");
            assert!((1..=60).contains(&retry_after), "{retry_after}");
        }
    }
    assert_eq!(statuses[..20], [401; 20]);
    assert_eq!(statuses[20..], [429; 5]);
    // Blocked on every token-guarded route, the right token included.
    assert_eq!(reset(&attacker, address, ADMIN).await.status(), 429);
    let reported = attacker
        .post(format!(
            "http://{address}/api/v1/circuit-breakers/mpesa/outcomes"
        ))
        .bearer_auth(REPORT)
        .header("content-type", "application/json")
        .body(r#"[{"outcome":"success","durationMs":5}]"#)
        .send()
        .await
        .expect("an answer");
    assert_eq!(reported.status(), 429);
    // Anyone else is unaffected.
    let answer = reset(&operator, address, ADMIN).await;
    assert_eq!(answer.status(), 200);
    // Reading stays open to all.
    assert_eq!(http_get(address, "/api/v1/circuit-breakers").await.0, 200);
    let (_, metrics) = http_get(address, "/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            "breakerd_auth_failures_total{route=\"/api/v1/circuit-breakers/{serviceName}/reset\"}"
        ),
        Some(25.0),
        "{metrics}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[test]
fn check_refuses_tokens_short_enough_to_guess_at_their_line() {
    let service = "[services.db]\nkind = \"tcp\"\naddress = \"127.0.0.1:5432\"\n";
    let advice = "a bearer token needs at least 16 so it cannot be guessed; make one with `openssl rand -hex 24`";
    assert_eq!(
        problems(&format!(
            "[server]\nadmin_token = \"0123456789\"\nreport_token = \"short\"\n{service}"
        )),
        [
            format!("alerts.toml:2:15: server.admin_token is 10 characters long: {advice}"),
            format!("alerts.toml:3:16: server.report_token is 5 characters long: {advice}"),
        ]
    );
    assert_eq!(
        problems(&format!(
            "{service}report_token = \"0123456789\"\n[services.hb]\nkind = \"heartbeat\"\nevery = \"30m\"\ntoken = \"abc\"\n"
        )),
        [
            format!("alerts.toml:4:16: report_token is 10 characters long: {advice}"),
            format!("alerts.toml:8:9: token is 3 characters long: {advice}"),
        ]
    );
    // The value itself is never shown.
    let shown = problems(&format!("[server]\nadmin_token = \"my-pass-1\"\n{service}"));
    assert!(!shown.join("\n").contains("my-pass-1"), "{shown:?}");
}
