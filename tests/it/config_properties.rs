//! Properties of the config loader, over generated input: arbitrary bytes never panic it, and
//! a config it accepts is one the daemon can run — its breakers build, its effective form
//! reads back as valid, and its durations can be added to the clock without overflowing.
//! Bounded: a fixed number of cases, so CI time stays fixed.

use proptest::prelude::*;

use breakerd::config::{Config, render_effective};
use breakerd::metrics::Metrics;
use breakerd::probe::HttpClient;
use breakerd::registry::Registry;

use crate::support::TestEnv;

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A duration as people write them: mostly sensible, sometimes zero, absurd or misspelt.
fn duration() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            40 => 1u64..60,
            1 => Just(0u64),
            1 => 100u64..100_000,
            1 => Just(u64::MAX / 2),
        ],
        prop_oneof![
            20 => Just("s"),
            10 => Just("ms"),
            4 => Just("m"),
            1 => Just("h"),
            1 => Just("d"),
            1 => Just("x"),
        ],
    )
        .prop_map(|(value, unit)| format!("\"{value}{unit}\""))
}

/// A number: mostly small and whole, sometimes nonsense or huge.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => (1i64..50).prop_map(|n| n.to_string()),
        1 => Just("0".to_string()),
        1 => Just("-1".to_string()),
        1 => Just("1000000".to_string()),
        1 => Just("9223372036854775807".to_string()),
        1 => Just("1e300".to_string()),
        1 => Just("inf".to_string()),
        1 => Just("nan".to_string()),
    ]
}

/// Some of `keys`, each once, with values of their kind.
fn lines(
    durations: &'static [&'static str],
    numbers: &'static [&'static str],
) -> impl Strategy<Value = String> {
    let timed =
        prop::sample::subsequence(durations, 0..=durations.len().min(3)).prop_flat_map(|keys| {
            prop::collection::vec(duration(), keys.len()).prop_map(move |values| {
                keys.iter()
                    .zip(values)
                    .map(|(key, value)| format!("{key} = {value}\n"))
                    .collect::<String>()
            })
        });
    let counted =
        prop::sample::subsequence(numbers, 0..=numbers.len().min(3)).prop_flat_map(|keys| {
            prop::collection::vec(number(), keys.len()).prop_map(move |values| {
                keys.iter()
                    .zip(values)
                    .map(|(key, value)| format!("{key} = {value}\n"))
                    .collect::<String>()
            })
        });
    (timed, counted).prop_map(|(a, b)| a + &b)
}

/// A config made of valid tables with generated values.
fn config() -> impl Strategy<Value = String> {
    (
        lines(
            &[
                "slow_call",
                "shutdown_grace",
                "header_read_timeout",
                "idle_timeout",
                "proxy_pool_idle",
            ],
            &["max_connections", "check_threads"],
        ),
        lines(
            &["every", "timeout", "reset_timeout", "slow_call", "backoff_max"],
            &["failure_threshold", "half_open_max_calls", "success_threshold", "backoff_multiplier"],
        ),
        lines(&["min_interval", "reminder_every"], &["queue_size", "max_attempts"]),
        prop::bool::ANY,
    )
        .prop_map(|(server, service, alerts, preset)| {
            let kind = if preset {
                "preset = \"kcb\"\nconsumer_key = \"${KEY}\"\nconsumer_secret = \"${SECRET}\"\n"
            } else {
                "kind = \"tcp\"\naddress = \"127.0.0.1:9\"\n"
            };
            format!(
                "[server]\n{server}[services.generated]\n{kind}{service}[alerts]\nstate_dir = \"/tmp/never-used\"\n{alerts}"
            )
        })
}

/// What running needs of an accepted config, short of opening sockets.
fn runs(config: &Config) {
    let metrics = Metrics::new();
    let client = HttpClient::new().expect("HTTP client");
    let registry =
        Registry::build(config, &client, &metrics).expect("an accepted config builds its breakers");
    assert_eq!(registry.len(), config.services.len());
    assert!(
        (1..=breakerd::check_threads::MAX_CHECK_THREADS).contains(&config.server.check_threads)
    );
    let now = std::time::Instant::now();
    let far = std::time::Duration::from_secs(3 * 86_400 * 366);
    let alerts = &config.alerts;
    for duration in [
        config.server.shutdown_grace,
        config.server.header_read_timeout,
        config.server.idle_timeout,
        config.server.proxy_pool_idle,
        alerts.min_interval,
        alerts.reminder_every.unwrap_or_default(),
    ]
    .into_iter()
    .chain(config.services.iter().flat_map(|s| {
        [
            s.policy.timeout,
            s.policy.reset_timeout,
            s.policy.backoff.as_ref().map(|b| b.max).unwrap_or_default(),
        ]
    })) {
        assert!(duration <= far, "{duration:?} is beyond every bound");
        assert!(now.checked_add(duration).is_some());
    }
    let printed = render_effective(config);
    let again = Config::parse(&printed, "printed.toml", &TestEnv::with_fake_credentials());
    assert!(
        again.is_ok(),
        "check --print of an accepted config is accepted:\n{printed}\n{:?}",
        again.err()
    );
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn arbitrary_bytes_never_panic_the_loader(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Config::parse_bytes(&bytes, "fuzz.toml", &TestEnv::with_fake_credentials());
    }

    #[test]
    fn a_toml_shaped_file_never_panics_the_loader(text in "[a-z_\\[\\]. =\"\\n0-9${}:]{0,200}") {
        let _ = Config::parse(&text, "fuzz.toml", &TestEnv::with_fake_credentials());
    }
}

#[test]
fn an_accepted_config_is_one_the_daemon_runs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    // A fixed seed: the same configs every run, so the count below is stable.
    let mut runner = TestRunner::new_with_rng(
        cases(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = config();
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..cases().cases {
        let text = strategy.new_tree(&mut runner).expect("a case").current();
        match Config::parse(&text, "generated.toml", &TestEnv::with_fake_credentials()) {
            Ok(config) => {
                runs(&config);
                accepted += 1;
            }
            Err(_) => rejected += 1,
        }
    }
    assert!(
        accepted > 20 && rejected > 20,
        "the generator covers both sides: {accepted} accepted, {rejected} rejected"
    );
}

/// The parts of a file where `check` and `run` used to disagree, each with its bad variants.
#[derive(Clone, Debug)]
struct Deployment {
    state_dir: usize,
    proxy: usize,
    email: usize,
    heartbeat: usize,
    report_token: usize,
    ca_file: usize,
    /// A service's own lines (durations and counts, some out of bounds).
    service: String,
}

/// An index into a list of variants whose first `good` are sound: mostly one of those.
fn variant(good: usize, all: usize) -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0..good, 1 => good..all]
}

fn deployment() -> impl Strategy<Value = Deployment> {
    (
        (variant(2, 4), variant(2, 4), variant(2, 4)),
        (variant(2, 4), variant(2, 3), variant(2, 3)),
        lines(&["every", "timeout"], &["failure_threshold"]),
    )
        .prop_map(
            |((state_dir, proxy, email), (heartbeat, report_token, ca_file), service)| Deployment {
                state_dir,
                proxy,
                email,
                heartbeat,
                report_token,
                ca_file,
                service,
            },
        )
}

/// The file `deployment` describes, in `dir` (which holds `a-file`, `empty`, `good-ca.pem`
/// and `bogus-ca.pem`). `PATH` stands for a variable that is set, `NEVER` for one that is not.
fn deployment_file(deployment: &Deployment, dir: &std::path::Path) -> String {
    const NEVER: &str = "${BREAKERD_TEST_NEVER_SET_9D2E}";
    let at = |name: &str| dir.join(name).display().to_string();
    let state_dir = [
        at("state"),
        at("not/yet/made"),
        at("a-file"),
        at("a-file/state"),
    ][deployment.state_dir]
        .clone();
    let proxy = [
        String::new(),
        "proxy_listen = \"127.0.0.1:0\"\n".to_string(),
        "proxy_listen = \"127.0.0.1:19477\"\n".to_string(),
        "proxy_listen = \"0.0.0.0:19477\"\n".to_string(),
    ][deployment.proxy]
        .clone();
    let login = [
        None,
        Some("username = \"pager\"\npassword = \"${PATH}\"\n".to_string()),
        Some(format!("username = \"pager\"\npassword = \"{NEVER}\"\n")),
        Some("username = \"pager\"\n".to_string()),
    ][deployment.email]
        .clone();
    let email = login.map_or_else(String::new, |login| {
        format!(
            "[alerts.email]\nserver = \"127.0.0.1:25\"\ntls = \"none\"\n{login}from = \"b@example.com\"\nto = [\"oncall@example.com\"]\n"
        )
    });
    let heartbeat = [
        None,
        Some("${PATH}".to_string()),
        Some(NEVER.to_string()),
        Some(format!("${{file:{}}}", at("empty"))),
    ][deployment.heartbeat]
        .clone()
        .map_or_else(String::new, |token| {
            format!(
                "[services.callbacks]\nkind = \"heartbeat\"\nevery = \"30m\"\ntoken = \"{token}\"\n"
            )
        });
    let report_token = [
        "",
        "report_token = \"${PATH}\"\n",
        &format!("report_token = \"{NEVER}\"\n"),
    ][deployment.report_token]
        .to_string();
    let ca_file = [
        String::new(),
        format!("ca_file = \"{}\"\n", at("good-ca.pem")),
        format!("ca_file = \"{}\"\n", at("bogus-ca.pem")),
    ][deployment.ca_file]
        .clone();
    format!(
        "[server]\nlisten = \"127.0.0.1:19477\"\n{proxy}{report_token}[alerts]\nstate_dir = \"{state_dir}\"\n{email}[services.generated]\nkind = \"http\"\nurl = \"https://127.0.0.1:9/health\"\n{ca_file}{}{heartbeat}",
        deployment.service
    )
}

/// Over generated deployments, `breakerd check` (the file's validation and the build every
/// start and reload runs) accepts a file exactly when `run` starts on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_accepts_exactly_the_files_run_starts_with() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::new_with_rng(
        cases(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = deployment();
    let (mut started, mut refused) = (0, 0);
    for case in 0..64 {
        let dir = crate::support::scratch_dir(&format!("check-run-{case}"));
        std::fs::write(dir.join("a-file"), "not a directory").unwrap();
        std::fs::write(dir.join("empty"), "").unwrap();
        std::fs::write(
            dir.join("good-ca.pem"),
            crate::support::tls::Authority::new("check-run").pem(),
        )
        .unwrap();
        std::fs::write(
            dir.join("bogus-ca.pem"),
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let deployment = strategy.new_tree(&mut runner).expect("a case").current();
        let text = deployment_file(&deployment, &dir);
        let path = dir.join("alerts.toml");
        std::fs::write(&path, &text).unwrap();
        let checked = match Config::load(&path) {
            Ok(config) => breakerd::daemon::preflight(&config),
            Err(error) => Err(error.lines()),
        };
        let run =
            breakerd::daemon::start_from_file(&path, Some("127.0.0.1:0".parse().unwrap()), None)
                .await;
        match (&checked, run) {
            (Ok(()), Ok(daemon)) => {
                started += 1;
                daemon.shutdown().await.expect("clean shutdown");
            }
            (Err(_), Err(_)) => refused += 1,
            (Ok(()), Err(failure)) => {
                panic!("check accepted what run refuses ({failure:#}):\n{text}")
            }
            (Err(problems), Ok(daemon)) => {
                daemon.shutdown().await.expect("clean shutdown");
                panic!("check refused what run starts ({problems:?}):\n{text}");
            }
        }
    }
    assert!(
        started > 5 && refused > 5,
        "the generator covers both sides: {started} started, {refused} refused"
    );
}
