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
