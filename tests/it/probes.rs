//! Each preset against a fake that answers like the real provider, and every kind of failure
//! the real providers show, with its bounded reason.

use std::time::Duration;

use breakerd::probe::FailureReason;

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::{closed_port, probe_for};

fn preset(name: &str, base: &str, extra: &str) -> String {
    format!("[services.p]\npreset = \"{name}\"\nbase_url = \"{base}\"\n{extra}\n")
}

const OAUTH: &str = "consumer_key = \"${KEY}\"\nconsumer_secret = \"${SECRET}\"";

#[tokio::test]
async fn mpesa_requests_a_token_with_basic_auth() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let probe = probe_for(&preset("mpesa", &fake.url(), OAUTH));
    probe.run().await.expect("healthy Daraja");
    let request = &fake.requests()[0];
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.target,
        "/oauth/v1/generate?grant_type=client_credentials"
    );
    assert!(
        request
            .header("authorization")
            .is_some_and(|v| v.starts_with("Basic "))
    );
}

#[tokio::test]
async fn wrong_credentials_fail_as_auth() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let wrong = "consumer_key = \"nope\"\nconsumer_secret = \"nope\"";
    for name in ["mpesa", "kcb", "pesapal"] {
        let error = probe_for(&preset(name, &fake.url(), wrong))
            .run()
            .await
            .unwrap_err();
        assert_eq!(error.reason, FailureReason::Auth, "{name}: {error}");
        assert!(
            !error.detail.contains("nope"),
            "a credential leaked into the detail: {error}"
        );
    }
}

#[tokio::test]
async fn pesapal_posts_json_and_its_200_error_body_is_a_failure() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let probe = probe_for(&preset("pesapal", &fake.url(), OAUTH));
    probe.run().await.expect("healthy Pesapal");
    let request = &fake.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.target.as_str()),
        ("POST", "/api/Auth/RequestToken")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    fake.set_mode(Mode::Fixture(
        "pesapal/request_token_invalid_key_secret".into(),
    ));
    let error = probe.run().await.unwrap_err();
    assert_eq!(error.reason, FailureReason::Auth);
    assert!(
        error.detail.starts_with(
            "Pesapal refused the consumer key and secret: invalid_consumer_key_or_secret_provided; these credentials were sent to base_url http://127.0.0.1:"
        ),
        "{error}"
    );
    let said = error.said.as_deref().expect("what Pesapal said");
    assert_eq!(said.operation.as_deref(), Some("request_token"));
    assert_eq!(
        said.code.as_deref(),
        Some("invalid_consumer_key_or_secret_provided")
    );
}

#[tokio::test]
async fn pesapal_confirms_its_ipn_is_still_registered() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    // The IPN ids of Pesapal's published GetIpnList sample.
    let registered = format!("{OAUTH}\nipn_id = \"e32182ca-0983-4fa0-91bc-c3bb813ba750\"");
    probe_for(&preset("pesapal", &fake.url(), &registered))
        .run()
        .await
        .expect("the IPN is listed");
    let requests = fake.requests();
    assert_eq!(requests[1].target, "/api/URLSetup/GetIpnList");
    assert!(
        requests[1]
            .header("authorization")
            .is_some_and(|auth| auth.starts_with("Bearer eyJ")),
        "with the token just requested"
    );
    let gone = format!("{OAUTH}\nipn_id = \"0b1e2f3a-1111-2222-3333-444455556666\"");
    let error = probe_for(&preset("pesapal", &fake.url(), &gone))
        .run()
        .await
        .unwrap_err();
    assert_eq!(error.reason, FailureReason::Account, "{error}");
    assert!(
        error.detail.starts_with("IPN 0b1e2f3a-1111-2222-3333-444455556666 is not registered with this merchant any more (GetIpnList lists e32182ca-0983-4fa0-91bc-c3bb813ba750, c3bb813ba750-0983-4fa0-91bc-e32182ca)"),
        "{error}"
    );
}

#[tokio::test]
async fn kcb_posts_to_its_token_endpoint() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    probe_for(&preset("kcb", &fake.url(), OAUTH))
        .run()
        .await
        .expect("healthy Buni");
    let request = &fake.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.target.as_str()),
        ("POST", "/token?grant_type=client_credentials")
    );
}

#[tokio::test]
async fn africastalking_asks_for_json_and_reports_the_balance() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let creds = "username = \"${AT_USERNAME}\"\napi_key = \"${AT_API_KEY}\"";
    let success = probe_for(&preset("africastalking", &fake.url(), creds))
        .run()
        .await
        .expect("healthy AT");
    assert_eq!(success.note.as_deref(), Some("balance KES 1785.50"));
    let request = &fake.requests()[0];
    assert_eq!(request.target, "/version1/user?username=sandbox");
    assert_eq!(request.header("accept"), Some("application/json"));
    let floor = format!("{creds}\nmin_balance = 5000.0");
    let error = probe_for(&preset("africastalking", &fake.url(), &floor))
        .run()
        .await
        .unwrap_err();
    assert_eq!(error.reason, FailureReason::Balance);
}

#[tokio::test]
async fn whatsapp_sees_the_number_s_status_rating_and_throttling() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let creds = "phone_number_id = \"${WA_PHONE_ID}\"\naccess_token = \"${WA_TOKEN}\"";
    let probe = probe_for(&preset("whatsapp", &fake.url(), creds));
    assert_eq!(
        probe.run().await.expect("CONNECTED").note.as_deref(),
        Some("status CONNECTED")
    );
    let target = &fake.requests()[0].target;
    assert!(
        target.starts_with("/v25.0/106540352242922?fields=status%2Cquality_rating%2Cwhatsapp_business_manager_messaging_limit"),
        "{target}"
    );
    for (published, reason) in [
        ("whatsapp/phone_number_restricted", FailureReason::Account),
        ("whatsapp/phone_number_flagged", FailureReason::Account),
        ("whatsapp/phone_number_quality_red", FailureReason::Account),
        ("whatsapp/messages_rate_limit", FailureReason::Throttled),
        ("whatsapp/messages_permission", FailureReason::Account),
    ] {
        fake.set_mode(Mode::Fixture(published.into()));
        let error = probe.run().await.unwrap_err();
        assert_eq!(error.reason, reason, "{published}: {error}");
    }
    fake.set_mode(Mode::Fixture("whatsapp/phone_number_restricted".into()));
    let error = probe.run().await.unwrap_err();
    assert_eq!(
        error.detail,
        "the WhatsApp number is RESTRICTED: it cannot send as it should; see the number in WhatsApp Manager"
    );
    // Which statuses fail, and the lowest rating that passes, are the operator's to say.
    let lenient = format!("{creds}\nfailing_statuses = [\"BANNED\"]\nmin_quality = \"RED\"");
    let lenient = probe_for(&preset("whatsapp", &fake.url(), &lenient));
    let passed = lenient
        .run()
        .await
        .expect("RESTRICTED is not in failing_statuses");
    assert_eq!(
        passed.note.as_deref(),
        Some("status RESTRICTED, quality_rating GREEN")
    );
    fake.set_mode(Mode::Fixture("whatsapp/phone_number_quality_red".into()));
    assert!(
        lenient.run().await.is_ok(),
        "RED passes with min_quality = RED"
    );
    fake.set_mode(Mode::Healthy);
    let bad = "phone_number_id = \"${WA_PHONE_ID}\"\naccess_token = \"expired\"";
    assert_eq!(
        probe_for(&preset("whatsapp", &fake.url(), bad))
            .run()
            .await
            .unwrap_err()
            .reason,
        FailureReason::Auth
    );
}

#[tokio::test]
async fn unset_credentials_fail_as_auth_naming_the_variable() {
    let probe = probe_for(
        "[services.p]\npreset = \"mpesa\"\nconsumer_key = \"${UNSET_KEY}\"\nconsumer_secret = \"x\"\n",
    );
    let error = probe.run().await.unwrap_err();
    assert_eq!(error.reason, FailureReason::Auth);
    assert_eq!(
        error.detail,
        "consumer_key is not set: environment variable UNSET_KEY is empty or unset"
    );
}

#[tokio::test]
async fn server_errors_resets_and_refusals_have_their_reasons() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let probe = probe_for(&preset("mpesa", &fake.url(), OAUTH));
    let error = probe.run().await.unwrap_err();
    assert_eq!(error.reason, FailureReason::HttpStatus);
    assert!(error.detail.starts_with("HTTP 500"), "{error}");
    fake.set_mode(Mode::Reset);
    assert_eq!(probe.run().await.unwrap_err().reason, FailureReason::Reset);
    let refused = probe_for(&preset(
        "mpesa",
        &format!("http://127.0.0.1:{}", closed_port()),
        OAUTH,
    ));
    let error = refused.run().await.unwrap_err();
    assert_eq!(error.reason, FailureReason::Connect, "{error}");
    assert!(
        !error.detail.contains("oauth"),
        "the URL path must not be in the detail: {error}"
    );
}

#[tokio::test]
async fn a_hung_provider_is_cut_off_by_the_breaker_timeout() {
    let fake = FakeProvider::start(Mode::Hang).await;
    let config = crate::support::test_config(&format!(
        "[services.p]\npreset = \"mpesa\"\nbase_url = \"{}\"\n{OAUTH}\ntimeout = \"300ms\"\n",
        fake.url()
    ));
    let service = &config.services[0];
    let breaker = breakerd::breaker::Breaker::new("p", service.policy.clone()).unwrap();
    let probe = breakerd::probe::Probe::new(
        service.check.clone(),
        breakerd::probe::HttpClient::new().unwrap(),
        breakerd::registry::judge_of(service),
    );
    let started = std::time::Instant::now();
    let error = breaker.call(|| probe.run()).await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_eq!(error.to_string(), "Circuit breaker p timeout after 300ms");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn generic_http_and_tcp_checks() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let http = format!(
        "[services.p]\nkind = \"http\"\nurl = \"{}/health\"\nexpect_status = [200]\njson_field = \"status\"\njson_equals = \"ok\"\nheaders = {{ Authorization = \"Bearer ${{KEY}}\" }}\n",
        fake.url()
    );
    probe_for(&http).run().await.expect("health endpoint");
    assert_eq!(
        fake.requests()[0].header("authorization"),
        Some("Bearer test-key")
    );
    let tcp_ok = format!(
        "[services.p]\nkind = \"tcp\"\naddress = \"{}\"\n",
        fake.address()
    );
    probe_for(&tcp_ok).run().await.expect("tcp connect");
    let tcp_refused = format!(
        "[services.p]\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n",
        closed_port()
    );
    assert_eq!(
        probe_for(&tcp_refused).run().await.unwrap_err().reason,
        FailureReason::Connect
    );
}

/// Every preset and an `http` check with a secret header, as the daemon configures them.
fn every_check_with_secrets(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("mpesa", preset("mpesa", base, OAUTH)),
        ("pesapal", preset("pesapal", base, OAUTH)),
        ("kcb", preset("kcb", base, OAUTH)),
        (
            "africastalking",
            preset(
                "africastalking",
                base,
                "username = \"${AT_USERNAME}\"\napi_key = \"${AT_API_KEY}\"",
            ),
        ),
        (
            "whatsapp",
            preset(
                "whatsapp",
                base,
                "phone_number_id = \"${WA_PHONE_ID}\"\naccess_token = \"${WA_TOKEN}\"",
            ),
        ),
        (
            "http",
            format!(
                "[services.p]\nkind = \"http\"\nurl = \"{base}/health?token=${{SECRET}}\"\nmethod = \"POST\"\nbody = \"{{\\\"secret\\\":\\\"${{SECRET}}\\\"}}\"\nheaders = {{ Authorization = \"Bearer ${{WA_TOKEN}}\", X-Api-Key = \"${{AT_API_KEY}}\" }}\n"
            ),
        ),
    ]
}

#[tokio::test]
async fn no_check_follows_a_redirect_so_no_secret_reaches_another_host() {
    let elsewhere = FakeProvider::start(Mode::Healthy).await;
    for status in [301, 302, 303, 307, 308] {
        let redirecting = FakeProvider::start(Mode::Redirect(status, elsewhere.url())).await;
        for (name, config) in every_check_with_secrets(&redirecting.url()) {
            let error = probe_for(&config).run().await.unwrap_err();
            assert_eq!(
                error.reason,
                FailureReason::Redirect,
                "{name} {status}: {error}"
            );
            assert_eq!(
                error.detail,
                format!(
                    "HTTP {status} redirect to {}, not followed (a check never carries its credentials elsewhere)",
                    elsewhere.url()
                ),
                "{name}"
            );
            let sent = &redirecting.requests()[0];
            assert_eq!(sent.header("referer"), None, "{name}: no Referer");
        }
    }
    let reached = elsewhere.requests();
    assert!(reached.is_empty(), "the other host got {reached:#?}");
}

#[tokio::test]
async fn a_check_whose_own_request_is_refused_fails_and_says_what_to_check() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    // A base_url with a path the provider does not serve: every request is a 404.
    let wrong = format!("{}/wrong-prefix", fake.url());
    let error = probe_for(&preset("mpesa", &wrong, OAUTH))
        .run()
        .await
        .unwrap_err();
    assert_eq!(error.reason, FailureReason::HttpStatus, "{error}");
    assert!(
        error.detail.ends_with(
            "the provider refused the check's own request (not_found): check base_url and the service's credentials and ids"
        ),
        "{error}"
    );
}
