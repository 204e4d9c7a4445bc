//! DNS checks against a DNS server on loopback: an answer with the expected values passes and
//! is shown; a missing name, a failing server, a missing value and a silent server each fail
//! with their own reason.

use breakerd::probe::FailureReason;

use crate::support::dns_server::{Answer, DnsServer, txt};
use crate::support::probe_for;

async fn server() -> DnsServer {
    DnsServer::start(vec![
        Answer {
            name: "api.test",
            kind: 1,
            data: vec![127, 0, 0, 7],
        },
        Answer {
            name: "api.test",
            kind: 1,
            data: vec![127, 0, 0, 8],
        },
        Answer {
            name: "api.test",
            kind: 16,
            data: txt("v=spf1 -all"),
        },
    ])
    .await
}

fn dns(server: &DnsServer, name: &str, record: &str, expect: &str) -> breakerd::probe::Probe {
    probe_for(&format!(
        "[services.d]\nkind = \"dns\"\nname = \"{name}\"\nrecord = \"{record}\"\nserver = \"{}\"\n{expect}",
        server.address
    ))
}

#[tokio::test]
async fn an_answer_with_every_expected_value_passes() {
    let server = server().await;
    let success = dns(&server, "api.test", "A", "expect = [\"127.0.0.8\"]\n")
        .run()
        .await
        .expect("the A records resolve");
    assert_eq!(
        success.note.as_deref(),
        Some("api.test A: 127.0.0.7, 127.0.0.8")
    );
    dns(&server, "api.test", "TXT", "expect = [\"v=spf1 -all\"]\n")
        .run()
        .await
        .expect("the TXT record resolves");
}

#[tokio::test]
async fn each_way_dns_fails_has_its_reason() {
    let server = server().await;
    let cases = [
        (
            "gone.test",
            "A",
            "",
            FailureReason::DnsNxdomain,
            "no such name (NXDOMAIN)",
        ),
        (
            "broken.test",
            "A",
            "",
            FailureReason::DnsServfail,
            "the server answered",
        ),
        (
            "api.test",
            "A",
            "expect = [\"127.0.0.9\"]\n",
            FailureReason::DnsMismatch,
            "expected \"127.0.0.9\"",
        ),
        (
            "api.test",
            "MX",
            "",
            FailureReason::DnsMismatch,
            "no such record",
        ),
    ];
    for (name, record, expect, reason, detail) in cases {
        let error = dns(&server, name, record, expect).run().await.unwrap_err();
        assert_eq!(error.reason, reason, "{name} {record}: {error}");
        assert!(error.detail.contains(detail), "{name} {record}: {error}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_is_cut_off_by_the_breaker_timeout() {
    let server = server().await;
    let breaker = breakerd::breaker::Breaker::builder("d")
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let probe = dns(&server, "silent.test", "A", "");
    let result = breaker.call(|| probe.run()).await;
    assert!(
        matches!(result, Err(breakerd::breaker::BreakerError::Timeout(_))),
        "{result:?}"
    );
}
