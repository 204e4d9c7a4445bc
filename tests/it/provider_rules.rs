//! Every published provider answer (`tests/fixtures/providers/`) judged on every path it can
//! reach — the provider's check, the sidecar proxy with a real HTTP client, and the outcome API
//! with the answer form — gives the verdict its fixture expects, the same on each.

use std::collections::BTreeMap;

use breakerd::outcome::Verdict;

use crate::support::fake_provider::{FakeProvider, Mode, WA_PHONE_ID};
use crate::support::fixtures::{self, Fixture};
use crate::support::{get_json, http_get, probe_for, start_daemon};

const REPORT_TOKEN: &str = "report-token-for-rules";

/// The built-in rules no published answer decides, and what each rests on: a provider's table
/// of codes without a sample body, or a safety net that does what the status says while quoting
/// the provider's own code.
const UNSAMPLED: &[(&str, &str)] = &[
    (
        "built-in mpesa rule 9",
        "the Daraja portal's C2B error table: 500.003.1001 \"Duplicate notification info\" (URLs held by the Broker platform); no sample body",
    ),
    (
        "built-in mpesa rule 17",
        "the Daraja portal's M-Pesa Express result codes: 17 (same amount to the same customer within 2 minutes); no sample query answer",
    ),
    (
        "built-in mpesa rule 18",
        "the Daraja portal's M-Pesa Express result codes: 2, 3 (amount limits), 1025 (prompt too long); no sample query answer",
    ),
    (
        "built-in mpesa rule 19",
        "the Daraja portal's M-Pesa Express result codes: 8 (till or paybill over its maximum), 2028 (not permitted by product assignment), SFC_IC0003; no sample query answer",
    ),
    (
        "built-in mpesa rule 21",
        "safety net: a 429 from Daraja is throttling, as the defaults say, with its code quoted",
    ),
    (
        "built-in mpesa rule 22",
        "safety net: a 401 or 403 with a code no table lists is the token's, as the published 401.002.01 and 404.001.03 are",
    ),
    (
        "built-in mpesa rule 23",
        "safety net: another 4xx with a Daraja code is the caller's, as the defaults say, with its code quoted",
    ),
    (
        "built-in pesapal rule 3",
        "Pesapal's GetTransactionStatus page: status_code 0 INVALID; the published INVALID answer carries payment_details_not_found and is decided by rule 2",
    ),
    (
        "built-in pesapal rule 4",
        "Pesapal's GetTransactionStatus page: status_code 1 COMPLETED, 3 REVERSED; the published COMPLETED sample (an older shape) has no status_code",
    ),
    (
        "built-in pesapal rule 10",
        "Pesapal's error types: invalid_request_error; both published bodies of that type are decided by the more specific rules 6 and 8",
    ),
    (
        "built-in pesapal rule 11",
        "Pesapal's RefundRequest and CancelOrder pages: status \"500\" means the request was turned down; no rejected body is published",
    ),
    (
        "built-in pesapal rule 12",
        "safety net: an error object in a 200 that no rule names is a failure, as Pesapal's status \"500\" says",
    ),
    (
        "built-in pesapal rule 14",
        "safety net: a 200 whose status is not 200 is a failure",
    ),
    (
        "built-in kcb rule 2",
        "safety net: the token endpoint refusing without an error field (WSO2 answers invalid_client, rule 1)",
    ),
    (
        "built-in kcb rule 6",
        "WSO2 API Manager's error-handling table: 900907, 900908, 900909, 900910, 900805 in API Manager 4's flat form; the published 900908 is in the fault form (rule 5)",
    ),
    (
        "built-in kcb rule 12",
        "KCB's funds-transfer specification: statusCode \"1\" is a refused request (the published one, a limit rule, is decided by rule 11)",
    ),
    (
        "built-in kcb rule 14",
        "safety net: a 5xx from the gateway with a fault code is a failure, as the defaults say, with its code quoted",
    ),
    (
        "built-in whatsapp rule 2",
        "Meta's error-codes table: 3 API method, 10 permission denied (the published permission answer is 200, rule 3)",
    ),
    (
        "built-in whatsapp rule 5",
        "Meta's error-codes table: 131042 business eligibility payment issue; no sample body",
    ),
    (
        "built-in whatsapp rule 10",
        "safety net: a 5xx with a Graph code no rule names is a failure, with its code quoted",
    ),
    (
        "built-in whatsapp rule 11",
        "safety net: a 429 with a code no rule names is throttling (Meta's OpenAPI gives 429 for its rate limits)",
    ),
    (
        "built-in whatsapp rule 12",
        "safety net: a 401 with a code no rule names is the token's",
    ),
    (
        "built-in whatsapp rule 13",
        "safety net: a 403 with a code no rule names is a permission (the published 403s are 200, 368, 131031)",
    ),
    (
        "built-in whatsapp rule 14",
        "safety net: another 4xx with a Graph code is the caller's, with its code quoted",
    ),
    (
        "built-in whatsapp rule 15",
        "safety net: an error object in a 200 is a failure",
    ),
];

thread_local! {
    /// The rules that decided some fixture's verdict (by the outcome API's `judged.rule`).
    static RULES_HIT: std::cell::RefCell<std::collections::BTreeSet<String>> =
        std::cell::RefCell::default();
}

/// The service of each provider in the table's daemon; WhatsApp's phone-number answers name
/// the number, so one service per number the fixtures use.
fn service_for(fixture: &Fixture) -> String {
    if fixture.provider == "whatsapp" {
        let id = fixture.path().split('/').nth(2).unwrap_or_default();
        if PHONE_IDS.contains(&id) {
            return format!("whatsapp-{id}");
        }
        return format!("whatsapp-{WA_PHONE_ID}");
    }
    fixture.provider.clone()
}

const PHONE_IDS: [&str; 3] = [WA_PHONE_ID, "1234567890123456", "106853218861309"];

fn config(fakes: &BTreeMap<String, FakeProvider>) -> String {
    let mut text =
        format!("[server]\nproxy_listen = \"127.0.0.1:0\"\nreport_token = \"{REPORT_TOKEN}\"\n");
    let common = "every = \"1h\"\nfailure_threshold = 10000\n";
    for (provider, fake) in fakes {
        let url = fake.url();
        match provider.as_str() {
            "whatsapp" => {
                for id in PHONE_IDS {
                    text.push_str(&format!(
                        "[services.whatsapp-{id}]\npreset = \"whatsapp\"\nbase_url = \"{url}\"\nphone_number_id = \"{id}\"\naccess_token = \"${{WA_TOKEN}}\"\n{common}"
                    ));
                }
            }
            "africastalking" => text.push_str(&format!(
                "[services.africastalking]\npreset = \"africastalking\"\nbase_url = \"{url}\"\nusername = \"${{AT_USERNAME}}\"\napi_key = \"${{AT_API_KEY}}\"\n{common}"
            )),
            preset => text.push_str(&format!(
                "[services.{preset}]\npreset = \"{preset}\"\nbase_url = \"{url}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n{common}"
            )),
        }
    }
    text
}

/// The check's credentials for a one-service config of `provider`.
fn check_config(provider: &str, url: &str) -> String {
    let credentials = match provider {
        "whatsapp" => "phone_number_id = \"${WA_PHONE_ID}\"\naccess_token = \"${WA_TOKEN}\"",
        "africastalking" => "username = \"${AT_USERNAME}\"\napi_key = \"${AT_API_KEY}\"",
        _ => "consumer_key = \"${KEY}\"\nconsumer_secret = \"${SECRET}\"",
    };
    format!("[services.p]\npreset = \"{provider}\"\nbase_url = \"{url}\"\n{credentials}\n")
}

/// The check's verdict: a pass, the caller's own outcome, or the failure's reason.
async fn by_check(fixture: &Fixture, fake: &FakeProvider) -> String {
    let probe = probe_for(&check_config(&fixture.provider, &fake.url()));
    match probe.run().await {
        Ok(success) => match success.caller {
            Some(kind) => Verdict::Caller(kind).words(),
            None => Verdict::Success.words(),
        },
        Err(failure) => Verdict::Failure(failure.reason).words(),
    }
}

/// What `/metrics` and the stats say of one service, to tell what a proxied call did.
#[derive(Debug, PartialEq)]
struct Counts {
    success: f64,
    failure: f64,
    caller: BTreeMap<String, f64>,
}

fn counts(metrics: &str, service: &str) -> Counts {
    let calls = |outcome: &str| -> f64 {
        let head = format!("breakerd_calls_total{{service=\"{service}\",operation=\"");
        let tail = format!(",outcome=\"{outcome}\",source=\"traffic\"}} ");
        metrics
            .lines()
            .filter(|line| line.starts_with(&head) && line.contains(&tail))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let head = format!("breakerd_caller_outcomes_total{{service=\"{service}\",");
    let mut caller = BTreeMap::new();
    for line in metrics.lines().filter(|line| line.starts_with(&head)) {
        let kind = line
            .split("kind=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string();
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *caller.entry(kind).or_default() += value;
    }
    Counts {
        success: calls("success"),
        failure: calls("failure"),
        caller,
    }
}

/// The proxy's verdict, from what the call moved: a success, a failure (and the cause's
/// reason), or a caller outcome (and its kind).
async fn by_proxy(fixture: &Fixture, daemon: &breakerd::daemon::RunningDaemon) -> String {
    let service = service_for(fixture);
    let before = counts(&http_get(daemon.address(), "/metrics").await.1, &service);
    let url = format!(
        "http://{}/{service}{}",
        daemon.proxy_address().expect("the proxy runs"),
        fixture.target
    );
    let method = reqwest::Method::from_bytes(fixture.method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new().request(method.clone(), &url);
    if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
        request = request
            .header("content-type", "application/json")
            .body("{}");
    }
    let response = request.send().await.expect("the proxy answers");
    assert_eq!(
        response.status().as_u16(),
        fixture.status,
        "{}: the application gets the provider's own status",
        fixture.name
    );
    let body = response.bytes().await.expect("the body");
    assert_eq!(
        body.as_ref(),
        fixture.body.as_slice(),
        "{}: the body passes unchanged",
        fixture.name
    );
    let after = counts(&http_get(daemon.address(), "/metrics").await.1, &service);
    if after.success > before.success {
        return Verdict::Success.words();
    }
    if after.failure > before.failure {
        let stats = get_json(
            daemon.address(),
            &format!("/api/v1/circuit-breakers/{service}"),
        )
        .await;
        let reason = stats["cause"]["reason"].as_str().unwrap_or("?");
        let reason = breakerd::outcome::FailureReason::parse(reason).expect("a reason");
        return Verdict::Failure(reason).words();
    }
    for (kind, count) in &after.caller {
        if *count > before.caller.get(kind).copied().unwrap_or(0.0) {
            return format!("caller {kind}");
        }
    }
    panic!(
        "{}: the proxied call moved nothing: {before:?} → {after:?}",
        fixture.name
    )
}

/// The outcome API's verdict on the answer reported as it is.
async fn by_report(fixture: &Fixture, daemon: &breakerd::daemon::RunningDaemon) -> String {
    let service = service_for(fixture);
    let headers: serde_json::Map<String, serde_json::Value> = fixture
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
        .collect();
    let report = serde_json::json!([{
        "method": fixture.method,
        "path": fixture.target,
        "status": fixture.status,
        "headers": headers,
        "body": String::from_utf8_lossy(&fixture.body),
        "durationMs": 120,
    }]);
    let text = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/circuit-breakers/{service}/outcomes",
            daemon.address()
        ))
        .bearer_auth(REPORT_TOKEN)
        .header("content-type", "application/json")
        .body(report.to_string())
        .send()
        .await
        .expect("the API answers")
        .text()
        .await
        .expect("a body");
    let answer: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{}: not JSON: {text}", fixture.name));
    let judged = &answer["judged"][0];
    if let Some(rule) = judged["rule"].as_str() {
        RULES_HIT.with(|hit| hit.borrow_mut().insert(rule.to_string()));
    }
    match (judged["class"].as_str(), judged["reason"].as_str()) {
        (Some("failure"), Some(reason)) => format!("failure {reason}"),
        (Some("caller"), Some(kind)) => format!("caller {kind}"),
        (Some(class), _) => class.to_string(),
        _ => panic!("{}: no judgement in {answer}", fixture.name),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_answer_gets_its_verdict_on_every_path() {
    let all = fixtures::all();
    assert!(all.len() >= 100, "{} fixtures", all.len());
    let mut fakes = BTreeMap::new();
    for fixture in &all {
        if !fakes.contains_key(&fixture.provider) {
            fakes.insert(
                fixture.provider.clone(),
                FakeProvider::start(Mode::Healthy).await,
            );
        }
    }
    let text = config(&fakes);
    let configured = crate::support::test_config(&text);
    let daemon = start_daemon(&text).await;
    let mut wrong = Vec::new();
    let mut checked = 0;
    for fixture in &all {
        assert!(
            Verdict::parse_words(&fixture.expect).is_some(),
            "{}: expect \"{}\" is not a verdict",
            fixture.name,
            fixture.expect
        );
        let fake = &fakes[&fixture.provider];
        fake.set_mode(Mode::Fixture(fixture.name.clone()));
        let provider = breakerd::provider::find(&fixture.provider).expect("a provider");
        let service = configured
            .service(&service_for(fixture))
            .expect("its service");
        let judge = breakerd::registry::judge_of(service);
        let operation = judge.operation(&fixture.method, fixture.path()).name;
        let mut verdicts = Vec::new();
        if fixture.paths.iter().any(|path| path == "check")
            && *operation == *provider.check_operation
        {
            verdicts.push(("check", by_check(fixture, fake).await));
            checked += 1;
        }
        if fixture.paths.iter().any(|path| path == "proxy") {
            verdicts.push(("proxy", by_proxy(fixture, &daemon).await));
        }
        if fixture.paths.iter().any(|path| path == "report") {
            verdicts.push(("report", by_report(fixture, &daemon).await));
        }
        for (path, verdict) in verdicts {
            // A check built its request itself: the caller's own outcome is the check's failure.
            let expected = if path == "check" && fixture.expect.starts_with("caller") {
                "failure http_status"
            } else {
                fixture.expect.as_str()
            };
            if verdict != expected {
                wrong.push(format!(
                    "{} ({operation}) by {path}: {verdict}, expected {expected}",
                    fixture.name
                ));
            }
        }
    }
    daemon.shutdown().await.expect("clean shutdown");
    let hit = RULES_HIT.with(|hit| hit.borrow().clone());
    let mut unproven = Vec::new();
    for provider in breakerd::provider::PROVIDERS {
        for rule in provider.rules() {
            let name = rule.origin().to_string();
            if !hit.contains(&name) {
                unproven.push(format!("{name}: {}", rule.summary()));
            }
        }
    }
    let excused: Vec<&str> = UNSAMPLED.iter().map(|(rule, _)| *rule).collect();
    let unproven: Vec<&String> = unproven
        .iter()
        .filter(|rule| {
            !excused
                .iter()
                .any(|name| rule.starts_with(&format!("{name}: ")))
        })
        .collect();
    assert!(
        unproven.is_empty(),
        "built-in rules no published answer decides (add its fixture, or say in UNSAMPLED what it rests on):\n{unproven:#?}"
    );
    assert!(checked >= 20, "the checks judged {checked} answers");
    assert!(
        wrong.is_empty(),
        "{} wrong verdicts:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn every_fixture_names_its_source_and_a_request_of_its_provider() {
    for fixture in fixtures::all() {
        assert!(
            fixture
                .sources
                .iter()
                .all(|source| source.starts_with("http")
                    || source.starts_with("github:")
                    || source.contains("RFC")),
            "{}: {:?}",
            fixture.name,
            fixture.sources
        );
        assert!(fixture.target.starts_with('/'), "{}", fixture.name);
    }
}
