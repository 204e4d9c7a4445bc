//! `breakers = "per_operation"`: a Daraja B2C outage opens the B2C breaker alone while STK
//! push (customers' payments) still reaches the provider; the operations' breakers show in the
//! metrics (`operation` label) and under their service in the stats API; `check` points at a
//! bad `breakers` value and bad `[[services.NAME.operations]]` entries; an outage of every
//! operation pages once.

use std::process::Command;

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::receiver::Receiver;
use crate::support::{eventually, get_json, http_get, sample, scratch_dir, start_daemon};

const BIN: &str = env!("CARGO_BIN_EXE_breakerd");
const B2C: &str = "/mpesa/b2c/v3/paymentrequest";
const STK_PUSH: &str = "/mpesa/stkpush/v1/processrequest";

fn mpesa_config(url: &str, extra: &str) -> String {
    format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{url}\"\n\
         consumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\nevery = \"1h\"\n{extra}"
    )
}

/// Daraja's published internal error (500.003.1001), answered on B2C only.
fn b2c_down() -> Mode {
    Mode::AtPath {
        fixture: "mpesa/stk_push_internal_server_error".into(),
        method: "POST".into(),
        path: B2C.into(),
    }
}

/// POSTs `path` through the proxy to service `service`; the status.
async fn post(daemon: &breakerd::daemon::RunningDaemon, service: &str, path: &str) -> u16 {
    let proxy = daemon.proxy_address().expect("the proxy runs");
    let response = reqwest::Client::new()
        .post(format!("http://{proxy}/{service}{path}"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("the proxy answers");
    let status = response.status().as_u16();
    response.bytes().await.expect("the body");
    status
}

fn state_line(operation: Option<&str>, state: &str) -> String {
    match operation {
        Some(operation) => format!(
            "breakerd_breaker_state{{service=\"mpesa\",operation=\"{operation}\",state=\"{state}\"}}"
        ),
        None => format!("breakerd_breaker_state{{service=\"mpesa\",state=\"{state}\"}}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_b2c_outage_opens_b2c_alone_and_stk_push_still_reaches_daraja() {
    let fake = FakeProvider::start(b2c_down()).await;
    let config = mpesa_config(&fake.url(), "breakers = \"per_operation\"\n").replace(
        "[server]\n",
        "[server]\nadmin_token = \"per-operation-admin-token\"\n",
    );
    let daemon = start_daemon(&config).await;
    for _ in 0..3 {
        assert_eq!(
            post(&daemon, "mpesa", B2C).await,
            500,
            "Daraja's own answer"
        );
    }
    let b2c_seen = fake.requests().len();
    assert_eq!(
        post(&daemon, "mpesa", B2C).await,
        503,
        "the open B2C breaker answers for Daraja"
    );
    assert_eq!(
        fake.requests().len(),
        b2c_seen,
        "B2C is not called while open"
    );

    // Customers' payments go on.
    assert_eq!(post(&daemon, "mpesa", STK_PUSH).await, 200);
    assert_eq!(post(&daemon, "mpesa", STK_PUSH).await, 200);
    let stk_pushes = fake
        .requests()
        .iter()
        .skip(b2c_seen)
        .filter(|request| request.method == "POST" && request.target == STK_PUSH)
        .count();
    assert_eq!(stk_pushes, 2, "the fake upstream saw both STK pushes");

    let (_, metrics) = http_get(daemon.address(), "/metrics").await;
    assert_eq!(
        sample(&metrics, &state_line(Some("b2c"), "open")),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, &state_line(Some("b2c"), "closed")),
        Some(0.0)
    );
    assert_eq!(
        sample(&metrics, &state_line(Some("stk_push"), "closed")),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, &state_line(None, "closed")),
        Some(1.0),
        "the service's own"
    );

    let (valid, said) = crate::support::prometheus::promtool_check_metrics(&metrics);
    assert!(valid, "promtool check metrics: {said}");

    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(stats["state"], "CLOSED", "{stats}");
    assert_eq!(stats["operations"]["b2c"]["state"], "OPEN", "{stats}");
    assert_eq!(stats["operations"]["b2c"]["unit"], "mpesa/b2c");
    assert_eq!(stats["operations"]["b2c"]["failureCount"], 3);
    assert!(
        stats["operations"]["b2c"]["nextAttempt"].is_string(),
        "{stats}"
    );
    assert_eq!(stats["operations"]["stk_push"]["state"], "CLOSED");
    assert_eq!(stats["operations"]["stk_push"]["successCount"], 2);
    let all = get_json(daemon.address(), "/api/v1/circuit-breakers").await;
    assert_eq!(all["mpesa"]["operations"]["b2c"]["state"], "OPEN", "{all}");
    eventually(10, "B2C's opening is in mpesa's events", || async {
        let events = get_json(daemon.address(), "/api/v1/circuit-breakers/mpesa/events").await;
        events["transitions"].as_array().is_some_and(|all| {
            all.iter()
                .any(|t| t["service"] == "mpesa/b2c" && t["to"] == "OPEN")
        })
    })
    .await;
    let status = get_json(daemon.address(), "/api/v1/status").await;
    assert_eq!(status["services"][0]["name"], "mpesa", "{status}");
    assert_eq!(
        status["services"][0]["operations"]["b2c"]["state"], "OPEN",
        "{status}"
    );
    assert!(
        status["transitions"]
            .as_array()
            .is_some_and(|all| all.iter().any(|t| t["service"] == "mpesa/b2c")),
        "the status page lists B2C's change: {status}"
    );
    let (_, page) = http_get(daemon.address(), "/").await;
    assert!(
        page.contains("breakers per operation"),
        "the page draws them"
    );
    let performance = get_json(daemon.address(), "/api/v1/circuit-breakers/metrics").await;
    assert_eq!(
        performance["mpesa"]["operations"]["b2c"]["failures"], 3,
        "{performance}"
    );
    assert_eq!(performance["mpesa"]["operations"]["b2c"]["rejections"], 1);
    assert_eq!(
        performance["mpesa"]["operations"]["stk_push"]["successes"],
        2
    );
    assert!(
        performance["mpesa"]["latencyMs"].is_object(),
        "{performance}"
    );
    let health = get_json(daemon.address(), "/api/v1/circuit-breakers/health").await;
    // Any breaker open is an outage, an operation's too (STK push is still served).
    assert_eq!(health["status"], "unhealthy", "{health}");
    assert_eq!(health["troubledOperations"][0], "mpesa/b2c", "{health}");

    // A reset by hand closes the service's breakers, its operations' included.
    let reset = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/circuit-breakers/mpesa/reset",
            daemon.address()
        ))
        .bearer_auth("per-operation-admin-token")
        .send()
        .await
        .expect("the API answers");
    assert_eq!(reset.status().as_u16(), 200);
    let stats: serde_json::Value =
        serde_json::from_str(&reset.text().await.expect("the body")).expect("JSON");
    assert_eq!(stats["operations"]["b2c"]["state"], "CLOSED", "{stats}");
    assert_eq!(post(&daemon, "mpesa", B2C).await, 500, "B2C is tried again");
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_breaker_per_service_stays_the_default() {
    let fake = FakeProvider::start(b2c_down()).await;
    let daemon = start_daemon(&mpesa_config(&fake.url(), "")).await;
    for _ in 0..3 {
        assert_eq!(post(&daemon, "mpesa", B2C).await, 500);
    }
    assert_eq!(
        post(&daemon, "mpesa", STK_PUSH).await,
        503,
        "one breaker: B2C's outage refuses STK push too"
    );
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(stats["state"], "OPEN", "{stats}");
    assert!(stats.get("operations").is_none(), "{stats}");
    let (_, metrics) = http_get(daemon.address(), "/metrics").await;
    assert!(
        !metrics.contains("breakerd_breaker_state{service=\"mpesa\",operation="),
        "{metrics}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_every_operation_pages_once() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let webhook = Receiver::start(&[]).await;
    let config = format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.shop]\nkind = \"http\"\nurl = \"{url}/health\"\nupstream = \"{url}\"\n\
         every = \"1h\"\nfailure_threshold = 2\nreset_timeout = \"1h\"\n\
         breakers = \"per_operation\"\n\
         [[services.shop.operations]]\nname = \"orders\"\npath = \"/orders/**\"\n\
         [[services.shop.operations]]\nname = \"payments\"\npath = \"/payments/*\"\n\
         [alerts]\nstate_dir = \"{state}\"\nmin_interval = \"0s\"\n\
         [[alerts.webhook]]\nurl = \"{webhook}\"\n",
        url = fake.url(),
        state = scratch_dir("per-operation-paging").display(),
        webhook = webhook.url(),
    );
    let daemon = start_daemon(&config).await;
    for path in [
        "/orders/17",
        "/orders/17/items",
        "/payments/9",
        "/payments/9",
    ] {
        assert_eq!(post(&daemon, "shop", path).await, 500);
    }
    for path in ["/orders/1", "/payments/1"] {
        assert_eq!(post(&daemon, "shop", path).await, 503, "{path} is open");
    }
    eventually(
        breakerd::alert::OPERATION_GROUP_WAIT.as_secs() + 15,
        "the grouped page",
        || async { !webhook.bodies().is_empty() },
    )
    .await;
    let sent = webhook.bodies();
    assert_eq!(sent.len(), 1, "one page for both operations: {sent:#?}");
    assert_eq!(sent[0]["kind"], "grouped", "{sent:#?}");
    let members: Vec<(&str, &str)> = sent[0]["group"]
        .as_array()
        .expect("the group")
        .iter()
        .map(|member| {
            (
                member["service"].as_str().unwrap_or_default(),
                member["to"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [("shop/orders", "OPEN"), ("shop/payments", "OPEN")]
    );
    assert!(
        sent[0]["title"]
            .as_str()
            .unwrap_or_default()
            .starts_with("2 operations of shop are down: orders: HTTP 500"),
        "{sent:#?}"
    );
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/shop").await;
    assert!(
        stats["operations"]["orders"]["outage"].is_object(),
        "{stats}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

fn check(name: &str, text: &str) -> (String, Vec<String>) {
    let path = scratch_dir("per-operation-check").join(name);
    std::fs::write(&path, text).unwrap();
    let output = Command::new(BIN)
        .arg("check")
        .arg(&path)
        .env("KEY", "k")
        .env("SECRET", "s")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    (
        path.display().to_string(),
        stderr.lines().map(str::to_string).collect(),
    )
}

#[test]
fn check_points_at_a_bad_breakers_value() {
    let (shown, lines) = check(
        "scope.toml",
        &mpesa_config("http://127.0.0.1:9", "breakers = \"per_operaton\"\n"),
    );
    assert_eq!(
        lines,
        [format!(
            "{shown}:9:12: unknown breakers \"per_operaton\" (did you mean \"per_operation\"? allowed: per_service, per_operation)"
        )]
    );
    let (shown, lines) = check(
        "tcp.toml",
        "[services.db]\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\nbreakers = \"per_operation\"\n",
    );
    assert_eq!(
        lines,
        [format!(
            "{shown}:4:12: breakers = \"per_operation\" does not apply to kind tcp: it has no operations (presets and http services with [[services.NAME.operations]] have)"
        )]
    );
}

#[test]
fn check_points_at_bad_operations() {
    let text = "[services.shop]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/health\"\n\
                upstream = \"http://127.0.0.1:9\"\nbreakers = \"per_operation\"\n\
                [[services.shop.operations]]\nname = \"orders\"\npath = \"orders/*\"\n\
                [[services.shop.operations]]\nname = \"other\"\npath = \"/x\"\n\
                [[services.shop.operations]]\nname = \"pay ments\"\npath = \"/p\"\n\
                [[services.shop.operations]]\nname = \"refunds\"\npath = \"/r/**/x\"\n\
                [[services.shop.operations]]\nname = \"refunds\"\npath = \"/r\"\n\
                [[services.shop.operations]]\nname = \"r2\"\npath = \"/r2\"\nmethod = \"GET\"\n\
                [[services.shop.operations]]\npath = \"/nameless\"\n";
    let (shown, lines) = check("operations.toml", text);
    assert_eq!(
        lines,
        [
            format!(
                "{shown}:8:8: operations: the path pattern \"orders/*\" must start with / (e.g. \"/mpesa/stkpush/v1/processrequest\")"
            ),
            format!(
                "{shown}:10:8: operations: \"other\" is the name of whatever matches no operation; choose another"
            ),
            format!(
                "{shown}:13:8: operations: name \"pay ments\" is not allowed: use 1 to 64 letters, digits, '-' or '_'"
            ),
            format!(
                "{shown}:17:8: operations: the path pattern \"/r/**/x\" has ** before its end: ** matches the rest of a path and comes last"
            ),
            format!("{shown}:19:8: operations: \"refunds\" is named twice; each operation once"),
            format!(
                "{shown}:24:1: unknown key `method` in [[services.shop.operations]] (allowed here: name, path)"
            ),
            format!(
                "{shown}:25:1: operations: an operation needs `name` and `path` (e.g. {{ name = \"orders\", path = \"/orders/*\" }})"
            ),
        ],
    );
    let (shown, lines) = check(
        "no-operations.toml",
        "[services.shop]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/health\"\nbreakers = \"per_operation\"\n",
    );
    assert_eq!(
        lines,
        [format!(
            "{shown}:4:12: breakers = \"per_operation\" needs operations to give breakers to: add [[services.NAME.operations]] entries (name and path, e.g. {{ name = \"orders\", path = \"/orders/*\" }})"
        )]
    );
    let (shown, lines) = check(
        "preset-operations.toml",
        &mpesa_config(
            "http://127.0.0.1:9",
            "[[services.mpesa.operations]]\nname = \"x\"\npath = \"/x\"\n",
        ),
    );
    assert!(
        lines[0].starts_with(&format!(
            "{shown}:9:1: `operations` does not apply to preset mpesa"
        )),
        "{lines:?}"
    );
}

#[test]
fn check_print_shows_the_breakers_and_operations() {
    let path = scratch_dir("per-operation-print").join("print.toml");
    std::fs::write(
        &path,
        "[services.shop]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/health\"\n\
         upstream = \"http://127.0.0.1:9\"\nbreakers = \"per_operation\"\n\
         [[services.shop.operations]]\nname = \"orders\"\npath = \"/orders/*\"\n\
         [[services.shop.rules]]\noperation = \"orders\"\nstatus = 409\noutcome = \"caller\"\nreason = \"duplicate\"\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["check", "--print"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("breakers = \"per_operation\"\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[[services.shop.operations]]\nname = \"orders\"\npath = \"/orders/*\"\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("# A breaker per operation: orders; any other call and the check of none go through shop's own."),
        "{stdout}"
    );
    let reparsed = breakerd::config::Config::parse(
        &stdout,
        "printed.toml",
        &crate::support::TestEnv::with_fake_credentials(),
    )
    .expect("the printed config is valid");
    let shop = &reparsed.services[0];
    assert_eq!(shop.breakers, breakerd::config::BreakerScope::PerOperation);
    assert_eq!(shop.operations.len(), 1);
    assert_eq!(&*shop.operations[0].name, "orders");
    assert_eq!(shop.operations[0].path.as_str(), "/orders/*");
    assert_eq!(
        shop.rules.len(),
        1,
        "a rule may name the service's own operation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_feeds_the_breaker_of_the_operation_it_calls() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let config = mpesa_config(&fake.url(), "breakers = \"per_operation\"\n")
        .replace("every = \"1h\"", "every = \"50ms\"");
    let daemon = start_daemon(&config).await;
    eventually(15, "the OAuth breaker opens", || async {
        let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/mpesa").await;
        stats["operations"]["oauth"]["state"] == "OPEN"
    })
    .await;
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(stats["state"], "CLOSED", "the service's own: {stats}");
    assert_eq!(stats["failureCount"], 0, "{stats}");
    assert_eq!(stats["operations"]["stk_push"]["state"], "CLOSED");
    assert!(stats["lastCheck"]["outcome"].is_string(), "{stats}");
    daemon.shutdown().await.expect("clean shutdown");
}

/// Reports `items` to mpesa's outcome API; the status and the answer.
async fn report(
    daemon: &breakerd::daemon::RunningDaemon,
    items: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/circuit-breakers/mpesa/outcomes",
            daemon.address()
        ))
        .bearer_auth("per-operation-report-token")
        .header("content-type", "application/json")
        .body(items.to_string())
        .send()
        .await
        .expect("the API answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("the body");
    (status, serde_json::from_str(&text).expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_outcomes_feed_the_breaker_of_their_operation() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let daemon = start_daemon(&mpesa_config(
        &fake.url(),
        "breakers = \"per_operation\"\nreport_token = \"per-operation-report-token\"\n",
    ))
    .await;
    let published = crate::support::fixtures::load("mpesa/stk_push_internal_server_error");
    let answer = serde_json::json!({
        "method": "POST",
        "path": B2C,
        "status": 500,
        "body": String::from_utf8_lossy(&published.body),
        "durationMs": 40,
    });
    let (status, answered) = report(&daemon, serde_json::json!([answer, answer])).await;
    assert_eq!(status, 200, "{answered}");
    assert_eq!(answered["judged"][0]["operation"], "b2c", "{answered}");
    let verdict = serde_json::json!({"outcome": "failure", "operation": "b2c"});
    let (status, answered) = report(&daemon, serde_json::json!([verdict])).await;
    assert_eq!(status, 200, "{answered}");
    let (status, answered) = report(
        &daemon,
        serde_json::json!([{"outcome": "success", "operation": "stk_push"}]),
    )
    .await;
    assert_eq!((status, answered["accepted"].as_u64()), (200, Some(1)));

    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(stats["operations"]["b2c"]["state"], "OPEN", "{stats}");
    assert_eq!(
        stats["operations"]["stk_push"]["successCount"], 1,
        "{stats}"
    );
    assert_eq!(stats["state"], "CLOSED", "{stats}");

    let (status, answered) = report(
        &daemon,
        serde_json::json!([{"outcome": "failure", "operation": "b2b"}]),
    )
    .await;
    assert_eq!(status, 400, "{answered}");
    assert!(
        answered["error"].as_str().unwrap_or_default().starts_with(
            "[0].operation: mpesa has no operation \"b2b\" (its operations: oauth, stk_push"
        ),
        "{answered}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

/// Shop's config: its upstream `url` down, its health endpoint (another server) up.
fn shop_config(
    url: &str,
    health: &str,
    state: &std::path::Path,
    breakers: &str,
    threshold: u32,
) -> String {
    format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.shop]\nkind = \"http\"\nurl = \"{health}/health\"\nupstream = \"{url}\"\n\
         every = \"1h\"\nfailure_threshold = {threshold}\nreset_timeout = \"1h\"\n\
         breakers = \"{breakers}\"\n\
         [[services.shop.operations]]\nname = \"orders\"\npath = \"/orders/**\"\n\
         [[services.shop.operations]]\nname = \"payments\"\npath = \"/payments/*\"\n\
         [alerts]\nstate_dir = \"{}\"\n",
        state.display()
    )
}

async fn from_file(path: &std::path::Path) -> breakerd::daemon::RunningDaemon {
    breakerd::daemon::start_from_file(path, Some("127.0.0.1:0".parse().unwrap()), None)
        .await
        .expect("daemon starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_turns_breakers_per_operation_on_and_off_and_a_restart_keeps_their_state() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let health = FakeProvider::start(Mode::Healthy).await;
    let dir = scratch_dir("per-operation-reload");
    let state = dir.join("state");
    let path = dir.join("alerts.toml");
    std::fs::write(
        &path,
        shop_config(&fake.url(), &health.url(), &state, "per_service", 3),
    )
    .unwrap();
    let daemon = from_file(&path).await;
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/shop").await;
    assert!(stats.get("operations").is_none(), "{stats}");

    std::fs::write(
        &path,
        shop_config(&fake.url(), &health.url(), &state, "per_operation", 2),
    )
    .unwrap();
    let changes = daemon.reload().await.expect("the edit applies");
    assert!(
        changes.iter().any(|change| change.contains("breakers")),
        "{changes:?}"
    );
    for _ in 0..2 {
        assert_eq!(post(&daemon, "shop", "/orders/1").await, 500);
    }
    assert_eq!(
        post(&daemon, "shop", "/orders/1").await,
        503,
        "orders is open"
    );
    assert_eq!(
        post(&daemon, "shop", "/payments/1").await,
        500,
        "payments reaches it"
    );

    // Retuned in place: the operations' breakers keep their state.
    std::fs::write(
        &path,
        shop_config(&fake.url(), &health.url(), &state, "per_operation", 4),
    )
    .unwrap();
    daemon.reload().await.expect("the edit applies");
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/shop").await;
    assert_eq!(stats["operations"]["orders"]["state"], "OPEN", "{stats}");
    assert_eq!(
        stats["operations"]["orders"]["failureThreshold"], 4,
        "{stats}"
    );
    assert_eq!(post(&daemon, "shop", "/orders/1").await, 503, "still open");
    eventually(10, "the outage is booked", || async {
        let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/shop").await;
        stats["operations"]["orders"]["outage"].is_object()
    })
    .await;
    daemon.shutdown().await.expect("clean shutdown");

    // A restart finds the operation's breaker where it was.
    let daemon = from_file(&path).await;
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/shop").await;
    assert_eq!(stats["operations"]["orders"]["state"], "OPEN", "{stats}");
    assert_eq!(
        stats["operations"]["payments"]["state"], "CLOSED",
        "{stats}"
    );
    assert_eq!(
        post(&daemon, "shop", "/orders/1").await,
        503,
        "open after the restart"
    );

    // And back to one breaker: the operations' go.
    std::fs::write(
        &path,
        shop_config(&fake.url(), &health.url(), &state, "per_service", 3),
    )
    .unwrap();
    daemon.reload().await.expect("the edit applies");
    let stats = get_json(daemon.address(), "/api/v1/circuit-breakers/shop").await;
    assert!(stats.get("operations").is_none(), "{stats}");
    assert_eq!(
        post(&daemon, "shop", "/orders/1").await,
        500,
        "one breaker, closed"
    );
    daemon.shutdown().await.expect("clean shutdown");
}
