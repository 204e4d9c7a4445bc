//! Certificates through the running daemon, against HTTPS servers on loopback whose
//! certificates a private CA (`ca_file`) signed: expiry, issuer and subject are exported and
//! shown; an expired or untrusted certificate fails with reason `tls` and says which.

use crate::support::tls::{Authority, TlsServer};
use crate::support::{eventually, get_json, http_get, sample, scratch_dir, start_daemon};

fn service(name: &str, server: &TlsServer, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file
        .map(|path| format!("ca_file = \"{}\"\n", path.display()))
        .unwrap_or_default();
    format!(
        "[services.{name}]\nkind = \"http\"\nurl = \"{}\"\nevery = \"100ms\"\nfailure_threshold = 100\n{ca}",
        server.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_read_expired_and_untrusted_ones_fail_as_tls() {
    let authority = Authority::new("breakerd test CA");
    let ca_file = scratch_dir("ca").join("ca.pem");
    std::fs::write(&ca_file, authority.pem()).unwrap();
    let good = TlsServer::start(&authority, "internal.test", time::Duration::days(10)).await;
    let expired = TlsServer::start(&authority, "old.test", time::Duration::days(-2)).await;
    let stranger = TlsServer::start(
        &Authority::new("someone else"),
        "other.test",
        time::Duration::days(90),
    )
    .await;
    let daemon = start_daemon(&format!(
        "{}{}{}",
        service("internal", &good, Some(&ca_file)),
        service("expired", &expired, Some(&ca_file)),
        service("untrusted", &stranger, None),
    ))
    .await;
    let address = daemon.address();
    let expected = good.not_after.unix_timestamp() as f64;
    eventually(10, "the certificate's expiry is exported", || async {
        let (_, text) = http_get(address, "/metrics").await;
        sample(
            &text,
            "breakerd_tls_cert_not_after_timestamp_seconds{service=\"internal\"}",
        ) == Some(expected)
    })
    .await;
    let stats = get_json(address, "/api/v1/circuit-breakers/internal").await;
    let check = &stats["lastCheck"];
    assert_eq!(check["outcome"], "success", "{stats}");
    assert_eq!(check["httpStatus"], 200);
    assert_eq!(check["tls"]["issuer"], "CN=breakerd test CA");
    assert_eq!(check["tls"]["subject"], "CN=internal.test");
    let not_after = humantime::parse_rfc3339(check["tls"]["notAfter"].as_str().unwrap()).unwrap();
    assert_eq!(
        not_after
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64(),
        expected
    );

    let failure = |service: &'static str| async move {
        let stats = get_json(address, &format!("/api/v1/circuit-breakers/{service}")).await;
        (
            stats["lastCheck"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            stats["lastCheck"]["detail"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    eventually(10, "both bad certificates have been checked", || async {
        !failure("expired").await.0.is_empty() && !failure("untrusted").await.0.is_empty()
    })
    .await;
    let (reason, detail) = failure("expired").await;
    assert_eq!(reason, "tls", "{detail}");
    assert!(detail.contains("expired"), "{detail}");
    let (reason, detail) = failure("untrusted").await;
    assert_eq!(reason, "tls", "{detail}");
    assert!(detail.contains("not trusted"), "{detail}");
    let (_, text) = http_get(address, "/metrics").await;
    assert!(
        !text.contains("breakerd_tls_cert_not_after_timestamp_seconds{service=\"untrusted\"}"),
        "no expiry without a trusted handshake"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[test]
fn a_ca_file_without_certificates_is_a_config_error_at_its_place() {
    let file = scratch_dir("ca-bad").join("ca.pem");
    std::fs::write(&file, "not a certificate\n").unwrap();
    let text = format!(
        "[services.x]\nkind = \"http\"\nurl = \"https://127.0.0.1:1/\"\nca_file = \"{}\"\n",
        file.display()
    );
    let error = breakerd::config::Config::parse(
        &text,
        "alerts.toml",
        &breakerd::config::ProcessEnvironment,
    )
    .unwrap_err();
    assert_eq!(
        error.lines(),
        [format!(
            "alerts.toml:4:11: ca_file: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            file.display()
        )]
    );
}
