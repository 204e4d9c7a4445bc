//! The SMTP check against a real SMTP server (aiosmtpd).

use breakerd::probe::FailureReason;

use crate::support::probe_for;
use crate::support::smtp_server::SmtpServer;

#[tokio::test]
async fn the_smtp_check_passes_against_a_real_server() {
    let server = SmtpServer::start();
    let probe = probe_for(&format!(
        "[services.email]\npreset = \"smtp\"\nserver = \"127.0.0.1:{}\"\ntls = \"none\"\n",
        server.port
    ));
    probe
        .run()
        .await
        .expect("EHLO, NOOP, QUIT against aiosmtpd");
}

#[tokio::test]
async fn required_starttls_fails_against_a_server_without_it() {
    let server = SmtpServer::start();
    let probe = probe_for(&format!(
        "[services.email]\npreset = \"smtp\"\nserver = \"127.0.0.1:{}\"\ntls = \"starttls\"\n",
        server.port
    ));
    let error = probe.run().await.unwrap_err();
    assert_eq!(error.reason, FailureReason::Tls, "{error}");
    assert!(
        error.detail.contains("STARTTLS is not supported"),
        "{error}"
    );
}

#[tokio::test]
async fn a_closed_smtp_port_fails_as_connect() {
    let port = crate::support::closed_port();
    let probe = probe_for(&format!(
        "[services.email]\npreset = \"smtp\"\nserver = \"127.0.0.1:{port}\"\ntls = \"none\"\n"
    ));
    let error = probe.run().await.unwrap_err();
    assert_eq!(error.reason, FailureReason::Connect, "{error}");
}

#[tokio::test]
async fn an_unset_smtp_server_fails_as_auth_like_every_unset_credential() {
    // The fake credentials name no SMTP_SERVER: the variable is unset.
    let probe = probe_for(
        "[services.email]\npreset = \"smtp\"\nserver = \"${SMTP_SERVER_UNSET}\"\ntls = \"starttls\"\n",
    );
    let error = probe.run().await.unwrap_err();
    assert_eq!(error.reason, FailureReason::Auth, "{error}");
    assert!(
        error.detail.contains("SMTP_SERVER_UNSET is empty or unset"),
        "{error}"
    );
}

/// Every published SMTP reply (`tests/fixtures/providers/smtp/`) at its stage of a real check
/// gives the check the verdict its fixture expects. STARTTLS successes need a TLS handshake
/// after them and are left to the real server's tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_reply_gets_its_verdict_from_the_check() {
    use crate::support::smtp_fake::{SmtpFake, all};
    let fixtures = all();
    assert!(fixtures.len() >= 40, "{} SMTP fixtures", fixtures.len());
    let mut wrong = Vec::new();
    let mut judged = 0;
    for fixture in &fixtures {
        assert!(!fixture.sources.is_empty(), "{}: no source", fixture.name);
        assert!(
            breakerd::outcome::Verdict::parse_words(&fixture.expect).is_some(),
            "{}: expect {}",
            fixture.name,
            fixture.expect
        );
        if fixture.stage == "STARTTLS" && fixture.expect == "success" {
            continue;
        }
        let fake = SmtpFake::start(fixture).await;
        let tls = if fixture.stage == "STARTTLS" {
            "starttls"
        } else {
            "none"
        };
        // AUTH only where the fixture's stage needs it: a published EHLO may list no mechanism.
        let credentials = if matches!(fixture.stage.as_str(), "AUTH" | "NOOP" | "QUIT") {
            "username = \"alerts@example.com\"\npassword = \"relay-password-1\"\n"
        } else {
            ""
        };
        let probe = probe_for(&format!(
            "[services.email]\npreset = \"smtp\"\nserver = \"{}\"\ntls = \"{tls}\"\n{credentials}",
            fake.address
        ));
        let verdict = match probe.run().await {
            Ok(_) => "success".to_string(),
            Err(failure) => {
                assert!(
                    !failure.detail.contains("relay-password-1"),
                    "{}: {failure}",
                    fixture.name
                );
                breakerd::outcome::Verdict::Failure(failure.reason).words()
            }
        };
        judged += 1;
        if verdict != fixture.expect {
            wrong.push(format!(
                "{} ({}): {verdict}, expected {}",
                fixture.name, fixture.stage, fixture.expect
            ));
        }
    }
    assert!(judged >= 35, "{judged} judged");
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
