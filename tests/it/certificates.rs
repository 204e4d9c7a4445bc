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
    // What was presented is shown even when it fails: the expired date, the stranger's issuer.
    let (_, text) = http_get(address, "/metrics").await;
    assert_eq!(
        sample(
            &text,
            "breakerd_tls_cert_not_after_timestamp_seconds{service=\"expired\"}"
        ),
        Some(expired.not_after.unix_timestamp() as f64)
    );
    assert_eq!(
        sample(
            &text,
            "breakerd_tls_cert_not_after_timestamp_seconds{service=\"untrusted\"}"
        ),
        Some(stranger.not_after.unix_timestamp() as f64)
    );
    let stats = get_json(address, "/api/v1/circuit-breakers/untrusted").await;
    assert_eq!(
        stats["lastCheck"]["tls"]["issuer"], "CN=someone else",
        "{stats}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_earliest_expiry_in_the_chain_counts_and_the_handshake_is_its_own_phase() {
    let root = Authority::new("breakerd test root");
    let ca_file = scratch_dir("ca-chain").join("ca.pem");
    std::fs::write(&ca_file, root.pem()).unwrap();
    // The intermediate lapses long before the server's own certificate.
    let soon = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        + time::Duration::days(5);
    let intermediate = root.intermediate("breakerd test intermediate", soon);
    let server = TlsServer::start(&intermediate, "chain.test", time::Duration::days(60)).await;
    let daemon = start_daemon(&format!(
        "{}{}reuse_connections = true\n",
        service("fresh", &server, Some(&ca_file)),
        service("pooled", &server, Some(&ca_file)),
    ))
    .await;
    let address = daemon.address();
    let expected = Some(soon.unix_timestamp() as f64);
    let metric = |name: String| async move {
        let (_, text) = http_get(address, "/metrics").await;
        sample(&text, &name)
    };
    let expiry = |service: &str| {
        format!("breakerd_tls_cert_not_after_timestamp_seconds{{service=\"{service}\"}}")
    };
    eventually(10, "both services have checked three times", || async {
        let fresh = get_json(address, "/api/v1/circuit-breakers/fresh").await;
        let pooled = get_json(address, "/api/v1/circuit-breakers/pooled").await;
        fresh["successCount"].as_u64() >= Some(3) && pooled["successCount"].as_u64() >= Some(3)
    })
    .await;
    assert_eq!(metric(expiry("fresh")).await, expected);
    // A reused connection shows no certificate; the last reading stays.
    assert_eq!(metric(expiry("pooled")).await, expected);
    let stats = get_json(address, "/api/v1/circuit-breakers/fresh").await;
    let check = &stats["lastCheck"];
    assert_eq!(check["tls"]["subject"], "CN=chain.test", "{stats}");
    assert_eq!(check["tls"]["issuer"], "CN=breakerd test intermediate");
    assert!(check["phases"]["tlsMs"].as_f64() > Some(0.0), "{stats}");
    assert!(check["phases"]["connectMs"].as_f64() > Some(0.0), "{stats}");
    let tls =
        metric("breakerd_probe_phase_seconds{service=\"fresh\",phase=\"tls\"}".to_string()).await;
    assert!(tls > Some(0.0), "{tls:?}");
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_checks_trust_their_ca_file() {
    let authority = Authority::new("breakerd mail CA");
    let dir = scratch_dir("smtps");
    let (certificate, key) = authority.issue_files("mail.test", &dir);
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, authority.pem()).unwrap();
    let server = crate::support::smtp_server::SmtpServer::start_smtps(&certificate, &key);
    let service = |name: &str, extra: &str| {
        format!(
            "[services.{name}]\nkind = \"smtp\"\nserver = \"127.0.0.1:{}\"\ntls = \"tls\"\nevery = \"100ms\"\nfailure_threshold = 100\n{extra}",
            server.port
        )
    };
    let daemon = start_daemon(&format!(
        "{}{}",
        service("trusted", &format!("ca_file = \"{}\"\n", ca_file.display())),
        service("stranger", "")
    ))
    .await;
    let address = daemon.address();
    let last = |service: &'static str| async move {
        get_json(address, &format!("/api/v1/circuit-breakers/{service}")).await["lastCheck"].clone()
    };
    eventually(10, "both SMTP services have checked", || async {
        last("trusted").await["outcome"].is_string()
            && last("stranger").await["outcome"].is_string()
    })
    .await;
    let trusted = last("trusted").await;
    assert_eq!(trusted["outcome"], "success", "{trusted}");
    let stranger = last("stranger").await;
    assert_eq!(stranger["reason"], "tls", "{stranger}");
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

/// A service behind the proxy whose upstream is `server`, trusting `ca_file` if given.
fn proxied(name: &str, server: &TlsServer, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file
        .map(|path| format!("ca_file = \"{}\"\n", path.display()))
        .unwrap_or_default();
    format!(
        "[services.{name}]\nkind = \"http\"\nurl = \"{}\"\nupstream = \"https://{}/\"\n\
         every = \"1h\"\nfailure_threshold = 100\n{ca}",
        server.url(),
        server.address
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_trusts_its_services_ca_file() {
    let authority = Authority::new("breakerd proxy test CA");
    let ca_file = scratch_dir("proxy-ca").join("ca.pem");
    std::fs::write(&ca_file, authority.pem()).unwrap();
    let server = TlsServer::start(&authority, "upstream.test", time::Duration::days(10)).await;
    let daemon = start_daemon(&format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n{}{}",
        proxied("trusted", &server, Some(&ca_file)),
        proxied("untrusted", &server, None),
    ))
    .await;
    let proxy = daemon.proxy_address().expect("the proxy runs");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();

    let answer = client
        .get(format!("http://{proxy}/trusted/health"))
        .send()
        .await
        .expect("the proxy answers");
    assert_eq!(answer.status(), 200, "ca_file names the upstream's CA");
    assert_eq!(answer.text().await.unwrap(), "ok");

    let answer = client
        .get(format!("http://{proxy}/untrusted/health"))
        .send()
        .await
        .expect("the proxy answers");
    assert_eq!(
        answer.status(),
        502,
        "no ca_file: the private CA is not trusted"
    );
    let body: serde_json::Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(body["reason"], "tls", "{body}");
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/untrusted").await;
    let detail = stats["lastFailure"].to_string();
    assert!(detail.contains("unknown issuer"), "{stats}");
    daemon.shutdown().await.unwrap();
}
