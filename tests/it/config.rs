//! alerts.toml: the bundled file, defaults, secrets, and one exact error per validation rule.

use std::collections::BTreeMap;
use std::time::Duration;

use breakerd::config::{Check, Config, Credential, Environment, LoadError, Schedule, SmtpServer};

#[derive(Default)]
struct Env(BTreeMap<&'static str, &'static str>);

impl Environment for Env {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|value| value.to_string())
    }

    fn read_file(&self, path: &str) -> Result<String, String> {
        match path {
            "/run/secrets/token" => Ok("file-token\n".to_string()),
            _ => Err("No such file or directory (os error 2)".to_string()),
        }
    }
}

fn errors(text: &str) -> Vec<String> {
    match Config::parse(text, "alerts.toml", &Env::default()) {
        Ok(_) => vec![],
        Err(error) => error.lines(),
    }
}

const BUNDLED: &str = include_str!("../../alerts.toml");

#[test]
fn the_bundled_config_has_the_seed_services_and_thresholds() {
    let config =
        Config::parse(BUNDLED, "alerts.toml", &Env::default()).expect("bundled config is valid");
    let summary: Vec<_> = config
        .services
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.check.kind(),
                s.policy.failure_threshold,
                s.policy.timeout.as_secs(),
                s.policy.reset_timeout.as_secs(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("email", "smtp", 5, 15, 60),
            ("kcb", "kcb", 3, 30, 120),
            ("mpesa", "mpesa", 3, 30, 120),
            ("pesapal", "pesapal", 3, 30, 120),
            ("sms", "africastalking", 5, 10, 60),
            ("whatsapp", "whatsapp", 5, 15, 60),
        ]
    );
    assert!(
        config.server.admin_token.is_none(),
        "no token set: admin routes off"
    );
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:9477");
    assert_eq!(config.server.slow_call, Duration::from_secs(1));
    let Some(Check::Provider(mpesa)) = config.service("mpesa").map(|s| &s.check) else {
        panic!("mpesa preset")
    };
    assert!(matches!(
        mpesa.credential("consumer_key").unwrap(),
        Credential::Missing { key: "consumer_key", variable: Some(v) } if v == "MPESA_CONSUMER_KEY"
    ));
    let Some(Check::Smtp(email)) = config.service("email").map(|s| &s.check) else {
        panic!("smtp preset")
    };
    assert_eq!(
        email.server,
        SmtpServer::Missing {
            variable: "SMTP_SERVER".to_string()
        }
    );
    assert!(BUNDLED.contains("Daraja invalidates the previous access token"));
}

#[test]
fn secrets_come_from_the_environment_and_files_and_never_print() {
    let env = Env([
        ("MPESA_KEY", "key-value"),
        ("ADMIN", "admin-secret-0123456789"),
    ]
    .into_iter()
    .collect());
    let text = r#"
[server]
admin_token = "${ADMIN}"
[services.mpesa]
preset = "mpesa"
consumer_key = "${MPESA_KEY}"
consumer_secret = "${file:/run/secrets/token}"
"#;
    let config = Config::parse(text, "alerts.toml", &env).unwrap();
    let Check::Provider(check) = &config.services[0].check else {
        panic!("mpesa")
    };
    let Some(Credential::Set(secret)) = check.credential("consumer_secret") else {
        panic!("set from file")
    };
    assert_eq!(secret.expose(), "file-token");
    assert_eq!(
        config.server.admin_token.as_ref().map(|t| t.expose()),
        Some("admin-secret-0123456789")
    );
    let printed = format!("{config:?}");
    for value in ["key-value", "admin-secret-0123456789", "file-token"] {
        assert!(
            !printed.contains(value),
            "a secret leaked into Debug output"
        );
    }
}

#[test]
fn defaults_follow_the_preset() {
    let config = Config::parse(
        "[services.p]\npreset = \"pesapal\"\n[services.w]\npreset = \"whatsapp\"\n[services.h]\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\n",
        "alerts.toml",
        &Env::default(),
    )
    .unwrap();
    let p = config.service("p").unwrap();
    assert_eq!(
        (
            p.policy.failure_threshold,
            p.policy.timeout.as_secs(),
            p.policy.reset_timeout.as_secs()
        ),
        (3, 30, 120)
    );
    assert!(matches!(p.schedule, Schedule::Every(d) if d == Duration::from_secs(30)));
    let Check::Provider(check) = &p.check else {
        panic!("pesapal")
    };
    assert_eq!(
        check.base_url.as_str(),
        "https://cybqa.pesapal.com/pesapalv3"
    );
    let Check::Provider(w) = &config.service("w").unwrap().check else {
        panic!("whatsapp")
    };
    assert_eq!(w.settings.api_version, None, "the current default applies");
    assert_eq!(breakerd::provider::WHATSAPP_API_VERSION, "v25.0");
    assert_eq!(
        w.settings.failing_statuses.first().map(String::as_str),
        Some("DISCONNECTED")
    );
    let Check::Http(h) = &config.service("h").unwrap().check else {
        panic!("http")
    };
    assert_eq!(
        (h.method.as_str(), h.expect_status.is_empty()),
        ("GET", true)
    );
}

#[test]
fn cron_schedules_and_windows_parse() {
    let config = Config::parse(
        "[services.t]\nkind = \"tcp\"\naddress = \"127.0.0.1:25\"\nschedule = \"*/30 * * * * *\"\nfailure_rate_threshold = 50\nwindow_size = 10\nminimum_calls = 5\nbackoff_multiplier = 2.0\nbackoff_max = \"10m\"\n",
        "alerts.toml",
        &Env::default(),
    )
    .unwrap();
    let service = &config.services[0];
    assert!(
        matches!(&service.schedule, Schedule::Cron { expression, .. } if expression == "*/30 * * * * *")
    );
    let window = service.policy.window.as_ref().unwrap();
    assert_eq!(
        (
            window.size,
            window.minimum_calls,
            window.failure_rate_threshold
        ),
        (10, 5, Some(50.0))
    );
    assert_eq!(
        service.policy.backoff.as_ref().map(|b| b.max),
        Some(Duration::from_secs(600))
    );
}

#[test]
fn each_rule_has_its_exact_error_at_its_place() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[services.mpesa]\npreset = \"mpesa\"\nfailure_treshold = 3\n",
            &[
                "alerts.toml:3:1: unknown key `failure_treshold` in [services.mpesa]; did you mean `failure_threshold`?",
            ],
        ),
        (
            "[services.mpesa]\npreset = \"mpsea\"\n",
            &[
                "alerts.toml:2:10: unknown preset \"mpsea\" (did you mean \"mpesa\"? allowed: mpesa, pesapal, kcb, africastalking, whatsapp, smtp)",
            ],
        ),
        (
            "[services.x]\nkind = \"ftp\"\n",
            &[
                "alerts.toml:2:8: unknown kind \"ftp\" (did you mean \"http\"? allowed: http, smtp, tcp, dns, heartbeat)",
            ],
        ),
        (
            "[services.x]\nevery = \"30s\"\n",
            &[
                "alerts.toml:1:1: service x needs `preset` (mpesa, pesapal, kcb, africastalking, whatsapp, smtp) or `kind` (http, smtp, tcp, dns, heartbeat)",
            ],
        ),
        (
            "[services.x]\npreset = \"kcb\"\nkind = \"http\"\n",
            &["alerts.toml:3:8: set either `preset` or `kind`, not both"],
        ),
        (
            "[services.x]\npreset = \"kcb\"\nurl = \"http://127.0.0.1/\"\n",
            &[
                "alerts.toml:3:7: `url` does not apply to preset kcb (its keys: consumer_key, consumer_secret, environment, base_url, ca_file, reuse_connections, rules)",
            ],
        ),
        (
            "[services.x]\npreset = \"kcb\"\nevery = \"30x\"\n",
            &[
                "alerts.toml:3:9: every: bad duration \"30x\": unknown unit \"x\" (write a number and a unit: ms, s, m, h, d, e.g. \"30s\" or \"1m30s\")",
            ],
        ),
        (
            "[services.x]\npreset = \"kcb\"\ntimeout = \"0s\"\n",
            &["alerts.toml:3:11: timeout must be longer than 0s"],
        ),
        (
            "[services.x]\npreset = \"kcb\"\nschedule = \"every minute\"\n",
            &[
                "alerts.toml:3:13: bad cron schedule \"every minute\": it has 2 fields; write six fields, seconds first, and an optional year, e.g. \"0 */5 * * * *\"",
            ],
        ),
        (
            "[services.d]\nkind = \"dns\"\nrecord = \"A\"\n",
            &["alerts.toml:1:1: a dns check needs `name`: the host name to look up"],
        ),
        (
            "[services.d]\nkind = \"dns\"\nname = \"x.test\"\nrecord = \"SRV\"\n",
            &["alerts.toml:4:10: unknown record \"SRV\" (allowed: A, AAAA, CNAME, MX, TXT)"],
        ),
        (
            "[services.d]\nkind = \"dns\"\nname = \"x.test\"\nserver = \"dns.google\"\n",
            &["alerts.toml:4:10: server \"dns.google\" is not an address: write IP or IP:PORT"],
        ),
        (
            "[services.hb]\nkind = \"heartbeat\"\ntoken = \"hb-token-0123456789\"\n",
            &[
                "alerts.toml:1:1: a heartbeat needs `every`: the longest expected gap between two beats, e.g. \"30m\"",
            ],
        ),
        (
            "[services.hb]\nkind = \"heartbeat\"\nevery = \"30m\"\n",
            &["alerts.toml:1:1: a heartbeat needs `token`: the bearer token its beats carry"],
        ),
        (
            "[services.hb]\nkind = \"heartbeat\"\ntoken = \"hb-token-0123456789\"\nschedule = \"0 * * * * *\"\n",
            &[
                "alerts.toml:4:12: a heartbeat takes `every` (the longest expected gap between beats), not a cron `schedule`",
            ],
        ),
        (
            "[services.hb]\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\ngrace = \"1m\"\n",
            &["alerts.toml:4:9: `grace` does not apply to kind tcp (its keys: address)"],
        ),
        (
            "[services.x]\npreset = \"kcb\"\nschedule = \"*/30 * 99 * * *\"\n",
            &[
                "alerts.toml:3:20: bad cron schedule: the hours field \"99\" is not valid (hours: 0-23; each field is *, a value, a list a,b, a range a-b or a step */n)",
            ],
        ),
        (
            "[services.x]\npreset = \"kcb\"\nschedule = '0 0 9 * FOO MON-FRI'\n",
            &[
                "alerts.toml:3:21: bad cron schedule: the month field \"FOO\" is not valid (month: 1-12 or JAN-DEC;",
            ],
        ),
        (
            "[services.x]\npreset = \"kcb\"\nevery = \"1s\"\nschedule = \"* * * * * *\"\n",
            &["alerts.toml:4:12: set either `every` or `schedule`, not both"],
        ),
        (
            "[server]\nproxy_pool_idle = \"2h\"\n[services.x]\npreset = \"kcb\"\n",
            &["alerts.toml:2:19: server.proxy_pool_idle is 2h, the longest allowed is 1h"],
        ),
        (
            "[server]\nproxy_pool_idle = \"0s\"\n[services.x]\npreset = \"kcb\"\n",
            &["alerts.toml:2:19: server.proxy_pool_idle"],
        ),
        (
            "[services.x]\npreset = \"kcb\"\nfailure_threshold = 0\n",
            &[
                "alerts.toml:3:21: failure_threshold is 0, allowed is a whole number from 1 to 10000",
            ],
        ),
        (
            "[services.x]\npreset = \"kcb\"\nfailure_rate_threshold = 150\n",
            &[
                "alerts.toml:3:26: failure_rate_threshold is 150, allowed is a percentage above 0 and at most 100",
            ],
        ),
        (
            "[services.x]\npreset = \"kcb\"\nwindow_size = 5\nminimum_calls = 9\nfailure_rate_threshold = 50\n",
            &["alerts.toml:4:17: minimum_calls (9) is larger than window_size (5)"],
        ),
        (
            "[services.x]\npreset = \"kcb\"\nbackoff_multiplier = 0.5\n",
            &[
                "alerts.toml:3:22: backoff_multiplier is 0.5, allowed is a finite number from 1 to 1000",
            ],
        ),
        (
            "[services.\"bad name\"]\npreset = \"kcb\"\n",
            &[
                "alerts.toml:1:11: service name \"bad name\" is not allowed: use 1 to 64 letters, digits, '-', '_' or '.'",
            ],
        ),
        (
            "[services.health]\npreset = \"kcb\"\n",
            &[
                "alerts.toml:1:11: service name \"health\" is reserved by the API (reserved: health, metrics, reset-all); choose another",
            ],
        ),
        (
            "[services.x]\nkind = \"http\"\nurl = \"ftp://example.com\"\n",
            &["alerts.toml:3:7: url must be an http:// or https:// URL with a host, not \"ftp\""],
        ),
        (
            "[services.x]\nkind = \"http\"\nurl = \"${NOPE}/health\"\n",
            &["alerts.toml:3:7: url: environment variable NOPE is not set"],
        ),
        (
            "[services.x]\nkind = \"http\"\nurl = \"http://127.0.0.1/\"\nmethod = \"FETCH\"\nexpect_status = [200, 999]\n",
            &[
                "alerts.toml:4:10: unknown method \"FETCH\" (allowed: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)",
            ],
        ),
        (
            "[services.x]\nkind = \"http\"\nurl = \"http://127.0.0.1/\"\nexpect_status = [200, 999]\n",
            &["alerts.toml:4:23: expect_status 999 is not an HTTP status code (100 to 599)"],
        ),
        (
            "[services.x]\nkind = \"tcp\"\naddress = \"localhost\"\n",
            &[
                "alerts.toml:3:11: address \"localhost\" is not HOST:PORT (e.g. \"smtp.example.com:587\")",
            ],
        ),
        (
            "[services.x]\nkind = \"tcp\"\n",
            &["alerts.toml:1:1: a tcp check needs `address` (HOST:PORT)"],
        ),
        (
            "[services.x]\npreset = \"smtp\"\nserver = \"smtp.example.com:587\"\ntls = \"ssl\"\n",
            &["alerts.toml:4:7: unknown tls \"ssl\" (allowed: none, starttls, tls)"],
        ),
        (
            "[server]\nlisten = \"localhost:80:80\"\n",
            &[
                "alerts.toml:2:10: server.listen \"localhost:80:80\" is not an address: write HOST:PORT or IP:PORT, e.g. \"127.0.0.1:9477\" or \"localhost:9477\"",
            ],
        ),
        (
            "[server]\nproxy_listen = \"localhost:http\"\n",
            &[
                "alerts.toml:2:16: server.proxy_listen \"localhost:http\" is not an address: write HOST:PORT or IP:PORT",
            ],
        ),
        (
            "[server]\nadmin_token = \"${file:/missing}\"\n",
            &[
                "alerts.toml:2:15: server.admin_token: cannot read secret file /missing: No such file or directory (os error 2)",
            ],
        ),
        (
            "[services.x]\npreset = \"kcb\"\n[services.x]\npreset = \"mpesa\"\n",
            &[
                "alerts.toml:3:11: duplicate key (each service name and each key may appear only once)",
            ],
        ),
        (
            "[alerts.email]\nserver = \"smtp.example.com:587\"\nfrom = \"not an address\"\nto = []\n",
            &[
                "alerts.toml:3:8: alerts.email.from \"not an address\" is not an email address (e.g. \"oncall@example.com\" or \"On call <oncall@example.com>\")",
                "alerts.toml:4:6: alerts.email.to needs at least one address",
            ],
        ),
        (
            "[[alerts.webhook]]\nurl = \"not a url\"\n",
            &[
                "alerts.toml:2:7: alerts.webhook.url \"not a url\" is not a URL: relative URL without a base (e.g. \"https://api.example.com\")",
            ],
        ),
        (
            "[[alerts.webhook]]\nurl = \"https://hooks.example.com/b\"\nsecrett = \"s\"\n",
            &[
                "alerts.toml:3:1: unknown key `secrett` in [[alerts.webhook]]; did you mean `secret`?",
            ],
        ),
        (
            "[[alerts.pagerdty]]\nrouting_key = \"k\"\n",
            &[
                "alerts.toml:1:10: unknown key `pagerdty` in [alerts]; did you mean `pagerduty`? (alert channels: email, webhook, alertmanager, pagerduty, telegram)",
            ],
        ),
        (
            "[[alerts.pagerduty]]\nseverity = \"page\"\n",
            &[
                "alerts.toml:1:1: alerts.pagerduty needs `routing_key`: the integration key of an Events API v2 integration, e.g. \"${PAGERDUTY_ROUTING_KEY}\"",
            ],
        ),
        (
            "[[alerts.pagerduty]]\nrouting_key = \"${BREAKERD_TEST_NEVER_SET_PD}\"\nseverity = \"page\"\n",
            &[
                "alerts.toml:2:15: alerts.pagerduty.routing_key: environment variable BREAKERD_TEST_NEVER_SET_PD is not set; PagerDuty takes events only with it: set it or remove the key",
            ],
        ),
        (
            "[[alerts.pagerduty]]\nrouting_key = \"k\"\nseverity = \"page\"\n",
            &[
                "alerts.toml:3:12: unknown alerts.pagerduty.severity \"page\" (allowed: critical, error, warning, info)",
            ],
        ),
        (
            "[[alerts.telegram]]\nbot_token = \"1:x\"\n",
            &[
                "alerts.toml:1:1: alerts.telegram needs `bot_token` (from @BotFather, e.g. \"${TELEGRAM_BOT_TOKEN}\") and `chat_id` (the chat's id, e.g. \"-1001234567890\", or a channel's \"@name\")",
            ],
        ),
        (
            "[alerts.email]\nserver = \"smtp.example.com:587\"\nfrom = \"b@example.com\"\nto = [\"o@example.com\"]\n[[alerts.webhook]]\nname = \"email\"\nurl = \"https://hooks.example.com/b\"\n",
            &[
                "alerts.toml:6:8: alert channel name \"email\" is empty or used twice (give each channel its own `name`)",
            ],
        ),
    ];
    let mut mismatches = Vec::new();
    for (text, expected) in cases {
        // A file needs a service; cases about other tables get one after their own lines.
        let text = if text.contains("[services.") {
            text.to_string()
        } else {
            format!("{text}[services.ok]\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n")
        };
        let got = errors(&text);
        let matches = got.len() == expected.len()
            && got
                .iter()
                .zip(expected.iter())
                .all(|(line, prefix)| line.starts_with(prefix));
        if !matches {
            mismatches.push(format!("for {text:?}\n got: {got:#?}\nwant: {expected:#?}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let got = errors(
        "[services.a]\npreset = \"kcb\"\ntimeout = \"soon\"\n[services.b]\npreset = \"nope\"\n",
    );
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got[0].starts_with("alerts.toml:3:11: timeout: bad duration \"soon\""));
    assert!(got[1].starts_with("alerts.toml:5:10: unknown preset \"nope\""));
}

#[test]
fn misspelt_keys_do_not_hide_each_other_or_any_other_problem() {
    let got = errors(
        r#"[server]
slow_cal = "2s"
[services.mpesa]
preset = "mpesa"
failur_threshold = 3
timeout = "soon"
[services.kcb]
preset = "kcb"
failure_threshold = "three"
reset_timout = "1m"
[services.sms]
preset = "africastalking"
min_balanse = 10
sandbox = true
every = "0s"
[alerts]
min_intervl = "1m"
"#,
    );
    assert_eq!(
        got,
        [
            "alerts.toml:2:1: unknown key `slow_cal` in [server]; did you mean `slow_call`?",
            "alerts.toml:5:1: unknown key `failur_threshold` in [services.mpesa]; did you mean `failure_threshold`?",
            "alerts.toml:6:11: timeout: bad duration \"soon\": a number must come first (write a number and a unit: ms, s, m, h, d, e.g. \"30s\" or \"1m30s\")",
            "alerts.toml:9:21: failure_threshold: expected a whole number, e.g. 5, found string \"three\"",
            "alerts.toml:10:1: unknown key `reset_timout` in [services.kcb]; did you mean `reset_timeout`?",
            "alerts.toml:13:1: unknown key `min_balanse` in [services.sms]; did you mean `min_balance`?",
            "alerts.toml:14:1: unknown key `sandbox` in [services.sms]: \"africastalking\" takes username, api_key, min_balance, environment, base_url, ca_file, reuse_connections, rules, besides the schedule, breaker and alert keys every service takes (README, \"Configuration: alerts.toml\")",
            "alerts.toml:15:9: every must be longer than 0s",
            "alerts.toml:17:1: unknown key `min_intervl` in [alerts]; did you mean `min_interval`?",
        ],
        "every problem, in file order"
    );
}

#[test]
fn an_unreadable_file_names_the_path() {
    let error = Config::load(std::path::Path::new("/nonexistent/alerts.toml")).unwrap_err();
    assert!(matches!(error, LoadError::Read { .. }));
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/alerts.toml: cannot read the config file:")
    );
}

#[test]
fn a_config_without_services_is_an_error_not_a_daemon_that_does_nothing() {
    for text in [
        "",
        "# only a comment\n",
        "[server]\nslow_call = \"2s\"\n",
        "[services]\n",
    ] {
        assert_eq!(
            errors(text),
            vec![
                "alerts.toml:1:1: no services are configured: add at least one [services.NAME] table (see the bundled alerts.toml)"
                    .to_string()
            ],
            "{text:?}"
        );
    }
}

#[test]
fn bytes_that_are_not_utf8_are_a_problem_at_their_place() {
    let bytes = b"[services.mpesa]\npreset = \"mp\xffesa\"\n";
    let lines = Config::parse_bytes(bytes, "alerts.toml", &Env::default())
        .unwrap_err()
        .lines();
    assert_eq!(
        lines,
        vec!["alerts.toml:2:13: byte 0xff is not UTF-8 text; save the file as UTF-8".to_string()]
    );
}

#[test]
fn every_value_out_of_its_range_is_rejected_at_its_place() {
    let text = r#"[server]
shutdown_grace = "1000000d"
slow_call = "9223372036854775807s"
[services.x]
preset = "kcb"
every = "2d"
timeout = "2h"
reset_timeout = "1000000d"
failure_threshold = 100000
backoff_multiplier = 1e300
backoff_max = "30d"
slow_call = "2h"
[services.z]
preset = "africastalking"
min_balance = inf
[alerts]
min_interval = "1000000d"
reminder_every = "9223372036854775807s"
max_attempts = 100000
queue_size = 0
[[alerts.alertmanager]]
url = "http://127.0.0.1:9093"
resend_every = "2h"
resolve_for = "30d"
timeout = "1h"
"#;
    assert_eq!(
        errors(text),
        [
            "alerts.toml:2:18: server.shutdown_grace is 1000000d, the longest allowed is 10m",
            "alerts.toml:3:13: server.slow_call is 9223372036854775807s, the longest allowed is 1h",
            "alerts.toml:6:9: every is 2d, the longest allowed is 1d",
            "alerts.toml:7:11: timeout is 2h, the longest allowed is 1h",
            "alerts.toml:8:17: reset_timeout is 1000000d, the longest allowed is 1d",
            "alerts.toml:9:21: failure_threshold is 100000, allowed is a whole number from 1 to 10000",
            "alerts.toml:10:22: backoff_multiplier is 1e300, allowed is a finite number from 1 to 1000",
            "alerts.toml:11:15: backoff_max is 30d, the longest allowed is 7d",
            "alerts.toml:12:13: slow_call is 2h, the longest allowed is 1h",
            "alerts.toml:15:15: min_balance is inf, allowed is a finite number",
            "alerts.toml:17:16: alerts.min_interval is 1000000d, the longest allowed is 1d",
            "alerts.toml:18:18: alerts.reminder_every is 9223372036854775807s, the longest allowed is 30d",
            "alerts.toml:19:16: alerts.max_attempts is 100000, allowed is a whole number from 1 to 1000",
            "alerts.toml:20:14: alerts.queue_size is 0, allowed is 1 to 1000000",
            "alerts.toml:23:16: alerts.alertmanager.resend_every is 2h, the longest allowed is 1h",
            "alerts.toml:24:15: alerts.alertmanager.resolve_for is 30d, the longest allowed is 7d",
            "alerts.toml:25:11: alerts.alertmanager.timeout is 1h, the longest allowed is 5m",
        ]
        .map(str::to_string)
    );
    // At the limits themselves, everything is accepted.
    let limits = r#"[server]
shutdown_grace = "10m"
[services.x]
preset = "kcb"
every = "1d"
timeout = "1h"
reset_timeout = "1d"
failure_threshold = 10000
backoff_multiplier = 1000
backoff_max = "7d"
[alerts]
min_interval = "1d"
reminder_every = "30d"
max_attempts = 1000
"#;
    assert_eq!(errors(limits), Vec::<String>::new());
}

#[test]
fn a_reload_names_what_changed_and_never_a_secret_value() {
    let parse = |key: &'static str, text: &str| {
        let env = Env(BTreeMap::from([("KEY", key), ("SECRET", "s3cr3t-value")]));
        Config::parse(text, "alerts.toml", &env)
            .unwrap()
            .services
            .remove(0)
    };
    let old = parse(
        "first-key-value",
        "[services.mpesa]\npreset = \"mpesa\"\nconsumer_key = \"${KEY}\"\nconsumer_secret = \"${SECRET}\"\n",
    );
    let new = parse(
        "first-key-value",
        "[services.mpesa]\npreset = \"mpesa\"\nconsumer_key = \"${KEY}\"\nconsumer_secret = \"${SECRET}\"\nfailure_threshold = 5\nevery = \"1m\"\n",
    );
    assert_eq!(
        breakerd::config::service_changes(&old, &new),
        ["every \"30s\" → \"1m\"", "failure_threshold 3 → 5"]
    );
    let rotated = parse(
        "second-key-value",
        "[services.mpesa]\npreset = \"mpesa\"\nconsumer_key = \"${KEY}\"\nconsumer_secret = \"${SECRET}\"\n",
    );
    let changes = breakerd::config::service_changes(&old, &rotated);
    assert_eq!(
        changes,
        ["a secret or a request detail changed (values not shown)"]
    );
    let unset = parse(
        "",
        "[services.mpesa]\npreset = \"mpesa\"\nconsumer_key = \"${KEY}\"\nconsumer_secret = \"${SECRET}\"\n",
    );
    let changes = breakerd::config::service_changes(&old, &unset).join(", ");
    assert_eq!(changes, "consumer_key changed");
    assert!(!changes.contains("first-key-value") && !changes.contains("s3cr3t"));
}

#[test]
fn check_threads_are_bounded_and_default_to_one() {
    let text = |threads: &str| {
        format!(
            "[server]\ncheck_threads = {threads}\n[services.x]\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n"
        )
    };
    for bad in ["0", "65", "-1"] {
        assert_eq!(
            errors(&text(bad)),
            [format!(
                "alerts.toml:2:17: server.check_threads is {bad}, allowed is a whole number from 1 to 64"
            )]
        );
    }
    let config = |text: &str| Config::parse(text, "alerts.toml", &Env::default()).expect("valid");
    assert_eq!(config(&text("64")).server.check_threads, 64);
    assert_eq!(
        config("[services.x]\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n")
            .server
            .check_threads,
        1
    );
}
