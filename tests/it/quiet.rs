//! Quiet when it should be: a maintenance window holds pages (and Alertmanager) and an outage
//! still open at its end pages once with its cause; a silence made through the API holds pages
//! across a restart and ends on time; a service whose upstream is down is not paged
//! separately, and the upstream's page names it; an offline breakerd says so once instead of
//! paging every provider; `breakerd check` points at bad windows and dependency cycles.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::support::alertmanager::Alertmanager;
use crate::support::config_problems as problems;
use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::receiver::{Receiver, changes};
use crate::support::{
    closed_port, eventually, get_json, http_get, pair, sample, scratch_dir, start_daemon,
};

const TOKEN: &str = "admin-token-value";

/// mpesa checked every 50 ms, open on the first failure, trial after 300 ms.
fn mpesa(fake: &FakeProvider, extra: &str) -> String {
    format!(
        "[services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"50ms\"\nfailure_threshold = 1\ntimeout = \"2s\"\nreset_timeout = \"300ms\"\n{extra}",
        fake.url()
    )
}

fn alerts(state_dir: &std::path::Path, webhook: &Receiver) -> String {
    format!(
        "[alerts]\nstate_dir = \"{}\"\nmin_interval = \"0s\"\n[[alerts.webhook]]\nurl = \"{}\"\n",
        state_dir.display(),
        webhook.url()
    )
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

async fn failed_trials(address: SocketAddr, service: &str) -> usize {
    let events = get_json(
        address,
        &format!("/api/v1/circuit-breakers/{service}/events"),
    )
    .await;
    events["transitions"].as_array().map_or(0, |all| {
        all.iter()
            .filter(|t| t["from"] == "HALF_OPEN" && t["to"] == "OPEN")
            .count()
    })
}

async fn gauge(address: SocketAddr, series: &str) -> Option<f64> {
    let (_, text) = http_get(address, "/metrics").await;
    sample(&text, series)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_during_a_maintenance_window_and_one_at_its_end_for_an_outage_still_open() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let webhook = Receiver::start(&[]).await;
    let am_hook = Receiver::start(&[]).await;
    let alertmanager = Alertmanager::start(&am_hook.url(), "1s");
    let now = SystemTime::now();
    let end = now + Duration::from_secs(6);
    let config = format!(
        "{}{}[[alerts.alertmanager]]\nurl = \"{}\"\nresend_every = \"1s\"\n\
         [[maintenance]]\nservices = [\"mpesa\"]\nstart = \"{}\"\nend = \"{}\"\nreason = \"Safaricom M-Pesa maintenance\"\n",
        mpesa(&fake, ""),
        alerts(&scratch_dir("maintenance"), &webhook),
        alertmanager.url(),
        rfc3339(now - Duration::from_secs(60)),
        rfc3339(end),
    );
    let daemon = start_daemon(&config).await;
    let address = daemon.address();
    eventually(5, "the breaker opened and trials failed", || async {
        failed_trials(address, "mpesa").await >= 2
    })
    .await;
    let stats = get_json(address, "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(stats["held"][0]["kind"], "maintenance", "{stats}");
    assert_eq!(stats["held"][0]["reason"], "Safaricom M-Pesa maintenance");
    assert_eq!(
        gauge(address, "breakerd_maintenance{service=\"mpesa\"}").await,
        Some(1.0)
    );
    let status = get_json(address, "/api/v1/status").await;
    assert_eq!(status["services"][0]["held"][0]["kind"], "maintenance");
    assert!(
        SystemTime::now() < end,
        "the window must still be open here; the machine is too slow for this test"
    );
    assert!(webhook.bodies().is_empty(), "{:#?}", webhook.bodies());
    assert!(
        alertmanager.alerts().await.is_empty(),
        "Alertmanager hears of it only when the page goes out"
    );

    eventually(15, "the outage is paged when the window ends", || async {
        !webhook.bodies().is_empty()
    })
    .await;
    assert!(SystemTime::now() >= end, "not before the window's end");
    let sent = webhook.bodies();
    assert_eq!(changes(&sent), pair(&[("CLOSED", "OPEN")]), "{sent:#?}");
    assert_eq!(sent[0]["cause"]["reason"], "http_status");
    assert!(
        sent[0]["cause"]["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("500")),
        "{sent:#?}"
    );
    eventually(15, "Alertmanager has the alert", || async {
        !alertmanager.alerts().await.is_empty()
    })
    .await;
    assert_eq!(
        gauge(address, "breakerd_maintenance{service=\"mpesa\"}").await,
        Some(0.0)
    );
    let events = get_json(address, "/api/v1/circuit-breakers/mpesa/events").await;
    let holds = &events["holds"];
    assert_eq!(holds[0]["held"], true, "{events}");
    assert!(
        holds[0]["why"]
            .as_str()
            .is_some_and(|why| why.starts_with("maintenance (Safaricom M-Pesa maintenance) until ")),
        "{events}"
    );
    assert_eq!(holds[1]["held"], false, "{events}");
    fake.set_mode(Mode::Healthy);
    eventually(15, "the recovery is paged", || async {
        webhook.bodies().len() >= 2
    })
    .await;
    assert_eq!(
        changes(&webhook.bodies()),
        pair(&[("CLOSED", "OPEN"), ("HALF_OPEN", "CLOSED")])
    );
    daemon.shutdown().await.expect("clean shutdown");
}

async fn admin(
    method: reqwest::Method,
    address: SocketAddr,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut request = client.request(method, format!("http://{address}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("daemon answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_made_through_the_api_survives_a_restart_and_ends_on_time() {
    // Healthy until the silence is made.
    let fake = FakeProvider::start(Mode::Healthy).await;
    let webhook = Receiver::start(&[]).await;
    let state_dir = scratch_dir("silence");
    let config = format!(
        "[server]\nadmin_token = \"${{ADMIN_TOKEN}}\"\n{}[services.kcb]\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\nevery = \"1h\"\n{}",
        mpesa(&fake, ""),
        closed_port(),
        alerts(&state_dir, &webhook)
    );
    let first = start_daemon(&config).await;
    let address = first.address();
    let post = |body: Value, token: Option<&'static str>| {
        admin(
            reqwest::Method::POST,
            address,
            "/api/v1/silences",
            Some(body),
            token,
        )
    };
    // Bad requests say what is wrong; no token, no silence.
    let (status, _) = post(
        json!({"services": ["mpesa"], "for": "1h", "comment": "x"}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = post(
        json!({"services": ["mpsea"], "for": "1h", "comment": "x"}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "services: unknown \"mpsea\" (known services: kcb, mpesa)"
    );
    let (status, body) = post(
        json!({"services": ["mpesa"], "for": "31d", "comment": "x"}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("a silence lasts at most 30d"),
        "{body}"
    );
    let (status, body) = post(json!({"services": ["mpesa"], "for": "1h"}), Some(TOKEN)).await;
    assert_eq!(status, 400, "a comment is required: {body}");

    let (status, made) = post(
        json!({"services": ["mpesa"], "for": "4s", "comment": "Safaricom ticket 4471"}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().expect("an id").to_string();
    let until = humantime::parse_rfc3339(made["until"].as_str().unwrap()).unwrap();
    fake.set_mode(Mode::Status(500));
    eventually(5, "the breaker opened and trials failed", || async {
        failed_trials(address, "mpesa").await >= 1
    })
    .await;
    assert_eq!(
        gauge(address, "breakerd_silenced{service=\"mpesa\"}").await,
        Some(1.0)
    );
    assert_eq!(
        gauge(address, "breakerd_silenced{service=\"kcb\"}").await,
        Some(0.0)
    );
    first.shutdown().await.expect("clean shutdown");

    let second = start_daemon(&config).await;
    let address = second.address();
    let listed = get_json(address, "/api/v1/silences").await;
    assert_eq!(listed["silences"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed["silences"][0]["comment"], "Safaricom ticket 4471");
    let stats = get_json(address, "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(stats["held"][0]["kind"], "silenced", "{stats}");
    assert!(
        SystemTime::now() < until,
        "the machine is too slow for this test"
    );
    assert!(webhook.bodies().is_empty(), "{:#?}", webhook.bodies());

    eventually(15, "the outage is paged when the silence ends", || async {
        !webhook.bodies().is_empty()
    })
    .await;
    assert!(SystemTime::now() >= until, "not before the silence's end");
    assert_eq!(changes(&webhook.bodies()), pair(&[("CLOSED", "OPEN")]));
    eventually(5, "the expired silence is dropped", || async {
        get_json(address, "/api/v1/silences").await["silences"] == json!([])
    })
    .await;
    let kept = std::fs::read_to_string(state_dir.join("silences.json")).unwrap();
    assert!(!kept.contains(&id), "{kept}");

    // Ending one by hand; an unknown id is a 404.
    let (status, made) = admin(
        reqwest::Method::POST,
        address,
        "/api/v1/silences",
        Some(json!({"services": ["kcb"], "until": rfc3339(SystemTime::now() + Duration::from_secs(3600)), "comment": "moving racks"})),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let path = format!("/api/v1/silences/{}", made["id"].as_str().unwrap());
    let (status, _) = admin(reqwest::Method::DELETE, address, &path, None, Some(TOKEN)).await;
    assert_eq!(status, 200);
    let (status, body) = admin(reqwest::Method::DELETE, address, &path, None, Some(TOKEN)).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        get_json(address, "/api/v1/silences").await["silences"],
        json!([])
    );
    second.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_upstream_is_down_is_not_paged_separately() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let webhook = Receiver::start(&[]).await;
    let network_port = closed_port();
    let config = format!(
        "[services.network]\nkind = \"tcp\"\naddress = \"127.0.0.1:{network_port}\"\nevery = \"50ms\"\nfailure_threshold = 1\nreset_timeout = \"300ms\"\n\
         [services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"100ms\"\nfailure_threshold = 5\ntimeout = \"2s\"\nreset_timeout = \"300ms\"\ndepends_on = [\"network\"]\n{}",
        fake.url(),
        alerts(&scratch_dir("dependency"), &webhook)
    );
    let daemon = start_daemon(&config).await;
    let address = daemon.address();
    eventually(10, "mpesa opened too and its trials fail", || async {
        failed_trials(address, "mpesa").await >= 2
    })
    .await;
    let stats = get_json(address, "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(
        stats["held"],
        json!([{"kind": "dependency", "upstream": "network"}]),
        "{stats}"
    );
    let sent = webhook.bodies();
    assert_eq!(changes(&sent), pair(&[("CLOSED", "OPEN")]), "{sent:#?}");
    assert_eq!(sent[0]["service"], "network");
    assert_eq!(sent[0]["dependants"], json!(["mpesa"]));

    // The network comes back; mpesa is still down, so now it pages, with its own cause.
    let _listener = std::net::TcpListener::bind(("127.0.0.1", network_port)).unwrap();
    eventually(15, "network recovers and mpesa pages", || async {
        webhook.bodies().len() >= 3
    })
    .await;
    let sent = webhook.bodies();
    let pages: Vec<(String, String, String)> = sent
        .iter()
        .map(|page| {
            (
                page["service"].as_str().unwrap_or_default().to_string(),
                page["from"].as_str().unwrap_or_default().to_string(),
                page["to"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        pages,
        [
            ("network".into(), "CLOSED".into(), "OPEN".into()),
            ("network".into(), "HALF_OPEN".into(), "CLOSED".into()),
            ("mpesa".into(), "CLOSED".into(), "OPEN".into()),
        ],
        "{sent:#?}"
    );
    assert_eq!(sent[2]["cause"]["reason"], "http_status");
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connectivity_guard_sends_one_offline_notice_and_no_provider_pages() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let webhook = Receiver::start(&[]).await;
    let guard_port = closed_port();
    let provider = |name: &str| {
        format!(
            "[services.{name}]\nkind = \"http\"\nurl = \"{}/health\"\nevery = \"50ms\"\nfailure_threshold = 1\nreset_timeout = \"300ms\"\n",
            fake.url()
        )
    };
    let config = format!(
        "[server]\nconnectivity = [\"tcp://127.0.0.1:{guard_port}\"]\n{}{}{}{}",
        provider("mpesa"),
        provider("kcb"),
        provider("sms"),
        alerts(&scratch_dir("offline"), &webhook)
    );
    let daemon = start_daemon(&config).await;
    let address = daemon.address();
    eventually(10, "every provider opened and failed a trial", || async {
        for name in ["mpesa", "kcb", "sms"] {
            if failed_trials(address, name).await < 1 {
                return false;
            }
        }
        true
    })
    .await;
    let sent = webhook.bodies();
    assert_eq!(sent.len(), 1, "one notice, no provider page: {sent:#?}");
    assert_eq!(sent[0]["kind"], "offline");
    assert_eq!(sent[0]["service"], "breakerd");
    assert!(
        sent[0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains(&format!("tcp://127.0.0.1:{guard_port}"))),
        "{sent:#?}"
    );
    assert_eq!(gauge(address, "breakerd_offline").await, Some(1.0));
    let status = get_json(address, "/api/v1/status").await;
    assert!(status["offline"]["since"].is_string(), "{status}");
    let stats = get_json(address, "/api/v1/circuit-breakers/kcb").await;
    assert_eq!(stats["held"][0]["kind"], "offline", "{stats}");

    // Back online: one notice, then each provider still down pages, with its cause.
    let _guard = std::net::TcpListener::bind(("127.0.0.1", guard_port)).unwrap();
    eventually(20, "online again, and the providers page", || async {
        webhook.bodies().len() >= 5
    })
    .await;
    let sent = webhook.bodies();
    assert_eq!(sent[1]["kind"], "online", "{sent:#?}");
    let mut paged: Vec<&str> = sent[2..]
        .iter()
        .map(|page| page["service"].as_str().unwrap_or_default())
        .collect();
    paged.sort_unstable();
    assert_eq!(paged, ["kcb", "mpesa", "sms"], "{sent:#?}");
    assert!(
        sent[2..]
            .iter()
            .all(|page| page["to"] == "OPEN" && page["cause"]["reason"] == "http_status")
    );
    assert_eq!(gauge(address, "breakerd_offline").await, Some(0.0));
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_outages_within_the_group_wait_make_one_notification_per_channel() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let webhook = Receiver::start(&[]).await;
    let smtp = crate::support::smtp_server::SmtpServer::start();
    let provider = |name: &str| {
        format!(
            "[services.{name}]\nkind = \"http\"\nurl = \"{}/health\"\nevery = \"50ms\"\nfailure_threshold = 1\nreset_timeout = \"300ms\"\n",
            fake.url()
        )
    };
    let config = format!(
        "{}{}{}[alerts]\nstate_dir = \"{}\"\nmin_interval = \"0s\"\ngroup_wait = \"2s\"\n\
         [[alerts.webhook]]\nurl = \"{}\"\n\
         [alerts.email]\nserver = \"127.0.0.1:{}\"\ntls = \"none\"\nfrom = \"breakerd@example.com\"\nto = [\"oncall@example.com\"]\n",
        provider("mpesa"),
        provider("kcb"),
        provider("sms"),
        scratch_dir("grouping").display(),
        webhook.url(),
        smtp.port,
    );
    let daemon = start_daemon(&config).await;
    eventually(15, "the grouped page arrives on both channels", || async {
        !webhook.bodies().is_empty() && !smtp.messages().is_empty()
    })
    .await;
    let sent = webhook.bodies();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["kind"], "grouped");
    let members: Vec<(&str, &str, &str)> = sent[0]["group"]
        .as_array()
        .expect("the group")
        .iter()
        .map(|member| {
            (
                member["service"].as_str().unwrap_or_default(),
                member["to"].as_str().unwrap_or_default(),
                member["cause"]["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            ("kcb", "OPEN", "http_status"),
            ("mpesa", "OPEN", "http_status"),
            ("sms", "OPEN", "http_status"),
        ]
    );
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "{mail:#?}");
    assert!(
        mail[0].contains("Subject: [breakerd] 3 services are down: kcb: HTTP 500"),
        "{}",
        mail[0]
    );
    for service in ["kcb", "mpesa", "sms"] {
        assert!(
            mail[0].contains(&format!("\n{service} is down: HTTP 500")),
            "{service} in {}",
            mail[0]
        );
    }

    // They recover together: one more notification per channel.
    fake.set_mode(Mode::Healthy);
    eventually(
        15,
        "the grouped recovery arrives on both channels",
        || async { webhook.bodies().len() >= 2 && smtp.messages().len() >= 2 },
    )
    .await;
    let sent = webhook.bodies();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[1]["kind"], "grouped");
    assert_eq!(sent[1]["group"].as_array().map(Vec::len), Some(3));
    assert!(
        sent[1]["group"]
            .as_array()
            .unwrap()
            .iter()
            .all(|member| member["to"] == "CLOSED")
    );
    let mail = smtp.messages();
    assert_eq!(mail.len(), 2);
    assert!(
        mail[1].contains("Subject: [breakerd] 3 services recovered: kcb (after"),
        "{}",
        mail[1]
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[test]
fn check_points_at_bad_windows_and_dependency_cycles() {
    let services = "[services.a]\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\ndepends_on = [\"b\"]\n\
                    [services.b]\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\ndepends_on = [\"c\"]\n\
                    [services.c]\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\ndepends_on = [\"a\"]\n";
    assert_eq!(
        problems(services),
        [
            "alerts.toml:12:15: depends_on makes a cycle: a -> b -> c -> a (a service cannot wait on itself)"
        ]
    );
    let one = "[services.a]\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n";
    assert_eq!(
        problems(&format!("{one}depends_on = [\"a\", \"zz\"]\n")),
        [
            "alerts.toml:4:15: a service cannot depend on itself",
            "alerts.toml:4:20: unknown service \"zz\" (did you mean \"a\"? allowed: a)",
        ]
    );
    assert_eq!(
        problems(&format!(
            "{one}[[maintenance]]\nservices = [\"b\"]\nschedule = \"0 0 61 * * *\"\nduration = \"2h\"\n"
        )),
        [
            "alerts.toml:5:13: unknown service \"b\" (did you mean \"a\"? allowed: a)",
            "alerts.toml:6:17: bad cron schedule: the hours field \"61\" is not valid (hours: 0-23; each field is *, a value, a list a,b, a range a-b or a step */n)",
        ]
    );
    assert_eq!(
        problems(&format!(
            "{one}[[maintenance]]\nschedule = \"0 0 22 * * *\"\n"
        )),
        [
            "alerts.toml:4:1: a [[maintenance]] window needs either `schedule` (cron, seconds first, UTC) and `duration`, or `start` and `end` (RFC 3339, e.g. \"2026-12-01T22:00:00+03:00\")"
        ]
    );
    assert_eq!(
        problems(&format!(
            "{one}[[maintenance]]\nstart = \"2026-12-01 22:00\"\nend = \"2026-12-01T21:00:00Z\"\n"
        )),
        [
            "alerts.toml:5:9: \"2026-12-01 22:00\" is not an RFC 3339 time (premature end of input); write e.g. \"2026-12-01T22:00:00+03:00\""
        ]
    );
    assert_eq!(
        problems(&format!(
            "{one}[[maintenance]]\nstart = \"2026-12-01T22:00:00Z\"\nend = \"2026-12-01T21:00:00Z\"\n"
        )),
        ["alerts.toml:6:7: end must be after start"]
    );
    assert_eq!(
        problems(&format!(
            "[server]\nconnectivity = [\"tcp://1.1.1.1\", \"nosuch\", \"a\"]\n{one}"
        )),
        [
            "alerts.toml:2:17: server.connectivity \"1.1.1.1\" is not HOST:PORT (e.g. \"smtp.example.com:587\")",
            "alerts.toml:2:34: server.connectivity: \"nosuch\" is neither tcp://HOST:PORT (e.g. \"tcp://1.1.1.1:443\") nor a configured service (a)",
        ]
    );
    assert_eq!(
        problems(&format!(
            "{one}[[maintenance]]\nschedule = \"0 0 22 * * *\"\nduration = \"8d\"\nreasn = \"x\"\n"
        ))
        .len(),
        2,
        "a too long duration and an unknown key"
    );
}
