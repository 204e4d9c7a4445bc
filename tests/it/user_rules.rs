//! A service's own rules in `alerts.toml`: tried before its provider's, checked at their place
//! by `breakerd check`, shown in order by `check --print`, and `breakerd explain` says which
//! rule decides an answer.

use std::process::Command;

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::{get_json, scratch_dir, start_daemon};

const BIN: &str = env!("CARGO_BIN_EXE_breakerd");

/// An mpesa service whose operator counts "being processed" against Daraja (say, a
/// reconciliation job that only queries long-finished payments), and an http service whose
/// provider says "maintenance" in a 503's body.
const RULES: &str = r#"[server]
proxy_listen = "127.0.0.1:0"
report_token = "report-token-of-user-rules"

[services.mpesa]
preset = "mpesa"
environment = "sandbox"
base_url = "BASE"
consumer_key = "${KEY}"
consumer_secret = "${SECRET}"
every = "1h"

[[services.mpesa.rules]]
operation = "stk_query"
json = [{ pointer = "/errorCode", equals = "500.001.1001" }]
outcome = "failure"
reason = "http_status"
code = "/errorCode"
detail = "a query of a finished payment must not be pending: {code}"

[services.app]
kind = "http"
url = "http://127.0.0.1:9/health"
upstream = "http://127.0.0.1:9"
every = "1h"

[[services.app.rules]]
status = 503
json = [{ pointer = "/maintenance", equals = true }]
outcome = "caller"
reason = "pending"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_of_the_service_overrides_its_provider_s() {
    let fake = FakeProvider::start(Mode::At("mpesa/stk_query_pending".into())).await;
    let text = RULES.replace("BASE", &fake.url());
    let daemon = start_daemon(&text).await;
    let client = reqwest::Client::new();
    let proxied = client
        .post(format!(
            "http://{}/mpesa/mpesa/stkpushquery/v1/query",
            daemon.proxy_address().unwrap()
        ))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 500);
    proxied.bytes().await.unwrap();
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(
        stats["failureCount"], 1,
        "the service's rule counts it: {stats}"
    );
    assert_eq!(
        stats["cause"]["detail"],
        "a query of a finished payment must not be pending: 500.001.1001 (a real call)",
        "{stats}"
    );
    let report = serde_json::json!([
        {"method": "POST", "path": "/mpesa/stkpushquery/v1/query", "status": 500,
         "body": "{\"errorCode\":\"500.001.1001\",\"errorMessage\":\"The transaction is being processed\"}"},
        {"method": "GET", "path": "/anything", "status": 503, "body": "{\"maintenance\":true}"}
    ]);
    let answer = report_to(&daemon, "mpesa", &report[0]).await;
    assert_eq!(answer["judged"][0]["class"], "failure", "{answer}");
    assert_eq!(answer["judged"][0]["rule"], "test.toml:13:1", "{answer}");
    let answer = report_to(&daemon, "app", &report[1]).await;
    assert_eq!(answer["judged"][0]["class"], "caller", "{answer}");
    assert_eq!(answer["judged"][0]["reason"], "pending", "{answer}");
    daemon.shutdown().await.unwrap();
}

async fn report_to(
    daemon: &breakerd::daemon::RunningDaemon,
    service: &str,
    item: &serde_json::Value,
) -> serde_json::Value {
    let text = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/circuit-breakers/{service}/outcomes",
            daemon.address()
        ))
        .bearer_auth("report-token-of-user-rules")
        .header("content-type", "application/json")
        .body(serde_json::json!([item]).to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let path = scratch_dir("rules").join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_bad_rule_is_reported_at_its_line_with_what_is_allowed() {
    let text = RULES.replace("BASE", "http://127.0.0.1:9").replace(
        "outcome = \"caller\"\nreason = \"pending\"",
        "outcome = \"caller\"\nreason = \"pendng\"\nstatus_code = 503",
    );
    let path = write("bad.toml", &text);
    let output = Command::new(BIN).arg("check").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = path.display().to_string();
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            format!(
                "{shown}:31:10: rules: unknown caller reason \"pendng\" (did you mean \"pending\"? allowed: pending, declined, customer_funds, recipient, validation, duplicate, not_found, client)"
            ),
            format!(
                "{shown}:32:1: unknown key `status_code` in [[services.app.rules]] (allowed here: operation, method, path, status, header, json, outcome, reason, code, message, detail, retry_after)"
            ),
        ],
        "{stderr}"
    );
}

#[test]
fn check_print_shows_every_rule_in_the_order_they_are_tried() {
    let path = write("good.toml", &RULES.replace("BASE", "http://127.0.0.1:9"));
    let output = Command::new(BIN)
        .args(["check", "--print"])
        .arg(&path)
        .env("KEY", "k")
        .env("SECRET", "s")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    let mpesa = &printed[printed.find("[services.mpesa]").expect("mpesa")..];
    let own = mpesa
        .find("[[services.mpesa.rules]]")
        .expect("the service's own rule");
    let builtin = mpesa
        .find("# built-in mpesa rule 1: ")
        .expect("the built-in ones");
    let default = mpesa
        .find("# default rule 5: any answer → success")
        .expect("the defaults");
    assert!(own < builtin && builtin < default, "{printed}");
    assert!(printed.contains(
        "# built-in mpesa rule 1: /errorCode = \"500.001.1001\", /errorMessage contains \"is being processed\" → caller pending"
    ), "{printed}");
    // What --print shows is a config that reads back the same.
    let again = write("again.toml", &printed);
    let reread = Command::new(BIN).arg("check").arg(&again).output().unwrap();
    assert_eq!(
        reread.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&reread.stderr)
    );
}

#[test]
fn explain_names_the_operation_the_rule_and_the_outcome() {
    let path = write("explain.toml", &RULES.replace("BASE", "http://127.0.0.1:9"));
    let fixture = crate::support::fixtures::load("mpesa/stk_query_pending");
    let body = write("body.json", &String::from_utf8_lossy(&fixture.body));
    let explain = |service: &str, extra: &[&str]| {
        let output = Command::new(BIN)
            .args(["explain", "--config"])
            .arg(&path)
            .arg(service)
            .args(extra)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stdout, _) = explain(
        "mpesa",
        &[
            "--method",
            "POST",
            "--path",
            "/mpesa/stkpushquery/v1/query",
            "--status",
            "500",
            "--body",
            body.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "operation: stk_query (POST /mpesa/stkpushquery/v1/query)"
    );
    assert_eq!(
        lines[2],
        format!(
            "rule: {}:13:1: operation stk_query, /errorCode = \"500.001.1001\" → failure http_status",
            path.display()
        )
    );
    assert_eq!(lines[3], "outcome: failure http_status");
    // Without the service's own rule, the built-in one decides.
    let (_, stdout, _) = explain(
        "mpesa",
        &[
            "--method",
            "POST",
            "--path",
            "https://sandbox.safaricom.co.ke/mpesa/stkpushquery/v1/query",
            "--status",
            "200",
            "--body",
            write(
                "query.json",
                "{\"ResultCode\":\"1032\",\"ResultDesc\":\"Request cancelled by user\"}",
            )
            .to_str()
            .unwrap(),
        ],
    );
    assert!(stdout.contains("rule: built-in mpesa rule "), "{stdout}");
    assert!(stdout.contains("outcome: caller declined"), "{stdout}");
    assert!(
        stdout.contains("effect: counts for nothing against the provider"),
        "{stdout}"
    );
    let (_, stdout, _) = explain(
        "app",
        &[
            "--path",
            "/x",
            "--status",
            "429",
            "--header",
            "Retry-After: 30",
        ],
    );
    assert!(stdout.contains("outcome: throttled"), "{stdout}");
    assert!(
        stdout.contains("retry after: 30s (no trial call before then)"),
        "{stdout}"
    );
    let (code, _, stderr) = explain("nope", &["--path", "/x", "--status", "200"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("no service \"nope\" (services: app, mpesa)"),
        "{stderr}"
    );
}
