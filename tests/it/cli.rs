//! The `breakerd` binary as an operator runs it: `check` with its exit codes, and `run`
//! stopping cleanly on SIGTERM.

use std::process::{Command, Stdio};

use crate::support::{closed_port, scratch_dir, wait_until_listening};

const BIN: &str = env!("CARGO_BIN_EXE_breakerd");

fn check(path: &std::path::Path) -> (i32, String, String) {
    let output = Command::new(BIN)
        .arg("check")
        .arg(path)
        .output()
        .expect("run breakerd check");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Starts `breakerd [global args] run --config CONFIG` on a free port, logging to a pipe, and
/// waits until it serves.
fn spawn_run(global: &[&str], config: &std::path::Path) -> std::process::Child {
    let port = closed_port();
    let daemon = Command::new(BIN)
        .args(global)
        .args(["run", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        // The default state directory is relative: keep it out of the source tree.
        .current_dir(scratch_dir("run"))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start breakerd run");
    wait_until_listening(port, "breakerd");
    daemon
}

fn signal(daemon: &std::process::Child, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} failed");
}

#[test]
fn check_accepts_the_bundled_config() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts.toml");
    let (code, stdout, _) = check(&path);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("alerts.toml: valid (6 services)\n"),
        "{stdout}"
    );
}

#[test]
fn check_prints_one_line_per_problem_and_exits_1() {
    let path = scratch_dir("check").join("bad.toml");
    std::fs::write(
        &path,
        "[services.mpesa]\npreset = \"mpesa\"\ntimeout = \"30x\"\n[services.x]\nkind = \"tcp\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    let lines: Vec<&str> = stderr.lines().collect();
    let shown = path.display().to_string();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("{shown}:3:11: timeout: bad duration \"30x\"")),
        "{stderr}"
    );
    assert_eq!(
        lines[1],
        format!("{shown}:4:1: a tcp check needs `address` (HOST:PORT)")
    );
}

#[test]
fn check_exits_2_when_the_file_cannot_be_read() {
    let (code, _, stderr) = check(std::path::Path::new("/nonexistent/alerts.toml"));
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("/nonexistent/alerts.toml: cannot read the config file:"),
        "{stderr}"
    );
}

#[test]
fn run_refuses_a_bad_config_and_stops_cleanly_on_sigterm() {
    let bad = scratch_dir("run").join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = \"nowhere\"\n").unwrap();
    let output = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not started; fix the config"));

    let bundled = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts.toml"));
    let daemon = spawn_run(&[], bundled);
    signal(&daemon, "-TERM");
    let output = daemon.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}: {log}", output.status);
    assert!(
        log.contains("shutting down") && log.contains("breakerd stopped"),
        "{log}"
    );
}

#[test]
fn check_print_shows_the_effective_config_with_secrets_redacted() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/alerts.toml");
    let output = Command::new(BIN)
        .args(["check", "--print", path])
        .env("MPESA_CONSUMER_KEY", "supersecret-key")
        .env("BREAKERD_ADMIN_TOKEN", "supersecret-token")
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        !printed.contains("supersecret"),
        "a secret was printed:\n{printed}"
    );
    for line in [
        "admin_token = \"<redacted bearer token>\"",
        "[services.mpesa]",
        "consumer_key = \"<redacted>\"",
        "consumer_secret = \"<unset: variable MPESA_CONSUMER_SECRET>\"",
        "half_open_max_calls = 1",
        "reset_timeout = \"2m\"",
        "[alerts]",
        "notify_on = [\"open\", \"closed\"]",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "missing {line:?} in\n{printed}"
        );
    }
    // With every value set, the printed config is itself a valid config.
    let simple = crate::support::scratch_dir("print").join("simple.toml");
    std::fs::write(
        &simple,
        "[server]\nproxy_listen = \"127.0.0.1:9478\"\nconnectivity = [\"tcp://1.1.1.1:443\", \"t\"]\n\
         [services.t]\nkind = \"tcp\"\naddress = \"127.0.0.1:25\"\nevery = \"90s\"\n\
         [services.h]\nkind = \"http\"\nurl = \"https://api.example.com/health\"\nupstream = \"https://api.example.com/v2\"\nchecks = \"when_idle\"\ndepends_on = [\"t\"]\n\
         [[maintenance]]\nservices = [\"h\"]\nschedule = \"0 0 22 * * Sun\"\nduration = \"2h\"\nreason = \"Sunday window\"\n\
         [[maintenance]]\nstart = \"2026-12-01T22:00:00+03:00\"\nend = \"2026-12-02T01:00:00+03:00\"\n\
         [alerts]\ngroup_wait = \"10s\"\n",
    )
    .unwrap();
    let hooked = simple.with_file_name("webhook.toml");
    std::fs::write(
        &hooked,
        "[services.t]\nkind = \"tcp\"\naddress = \"127.0.0.1:25\"\n\
         [[alerts.webhook]]\nurl = \"https://hooks.example.com/x\"\nformat = \"slack\"\nheaders = { X-Team = \"payments-secret\" }\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["check", "--print"])
        .arg(&hooked)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    for line in [
        "format = \"slack\"",
        "headers = { X-Team = \"<redacted>\" }",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "missing {line:?} in\n{printed}"
        );
    }
    assert!(!printed.contains("payments-secret"), "{printed}");
    let output = Command::new(BIN)
        .args(["check", "--print"])
        .arg(&simple)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    for line in [
        "proxy_listen = \"127.0.0.1:9478\"",
        "upstream = \"https://api.example.com/v2\"",
        "checks = \"when_idle\"",
        "depends_on = [\"t\"]",
        "connectivity = [\"tcp://1.1.1.1:443\", \"t\"]",
        "group_wait = \"10s\"",
        "schedule = \"0 0 22 * * Sun\"",
        "start = \"2026-12-01T19:00:00.000Z\"",
        "reason = \"maintenance\"",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "missing {line:?} in\n{printed}"
        );
    }
    let reparsed = breakerd::config::Config::parse(
        &printed,
        "printed.toml",
        &crate::support::TestEnv::default(),
    )
    .unwrap_or_else(|error| panic!("the printed config does not parse:\n{error}\n{printed}"));
    let original = breakerd::config::Config::parse(
        &std::fs::read_to_string(&simple).unwrap(),
        "simple.toml",
        &crate::support::TestEnv::default(),
    )
    .unwrap();
    assert_eq!(reparsed.maintenance, original.maintenance);
    assert_eq!(reparsed.server.connectivity, original.server.connectivity);
    assert_eq!(reparsed.alerts.group_wait, original.alerts.group_wait);
    assert_eq!(reparsed.services, original.services);
}

#[test]
fn sighup_reloads_and_json_logs_are_one_object_per_line() {
    let dir = scratch_dir("sighup");
    let config = dir.join("alerts.toml");
    std::fs::write(
        &config,
        "[services.t]\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\nevery = \"1h\"\n",
    )
    .unwrap();
    let mut daemon = spawn_run(&["--log-format", "json"], &config);
    signal(&daemon, "-HUP");
    // Read the log until the reload is reported, then stop the daemon.
    let mut stderr = std::io::BufReader::new(daemon.stderr.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let read = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(
            read > 0,
            "the daemon stopped logging before the reload: {lines:#?}"
        );
        let entry: serde_json::Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        let message = entry["message"].as_str().unwrap_or_default().to_string();
        lines.push(message.clone());
        if message == "config reloaded: nothing changed" {
            break;
        }
    }
    assert!(
        lines
            .iter()
            .any(|m| m == "SIGHUP: reloading the config file"),
        "{lines:#?}"
    );
    signal(&daemon, "-TERM");
    assert!(daemon.wait().unwrap().success());
}

/// The daemon's first log lines, up to the one that says it is serving, with stderr a pipe or
/// a terminal (a pseudo-terminal), and `NO_COLOR` set or not.
fn first_log_lines(terminal: bool, no_color: bool) -> String {
    use std::io::Read as _;
    use std::os::fd::FromRawFd as _;

    let dir = scratch_dir("colour");
    let config = dir.join("alerts.toml");
    std::fs::write(
        &config,
        format!(
            "[services.x]\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\nevery = \"1h\"\n",
            closed_port()
        ),
    )
    .unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .current_dir(&dir)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR");
    if no_color {
        command.env("NO_COLOR", "1");
    }
    let reader: Box<dyn std::io::Read + Send> = if terminal {
        let (mut leader, mut follower) = (0, 0);
        // SAFETY: openpty writes two new descriptors, which are owned below.
        let opened = unsafe {
            libc::openpty(
                &mut leader,
                &mut follower,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(opened, 0, "openpty failed");
        // SAFETY: both descriptors were just opened and nothing else owns them.
        command.stderr(unsafe { Stdio::from_raw_fd(follower) });
        Box::new(unsafe { std::fs::File::from_raw_fd(leader) })
    } else {
        command.stderr(Stdio::piped());
        Box::new(std::io::empty())
    };
    let mut daemon = command.spawn().expect("start breakerd run");
    let mut reader = match daemon.stderr.take() {
        Some(pipe) => Box::new(pipe) as Box<dyn std::io::Read + Send>,
        None => reader,
    };
    drop(command); // closes this process's copy of the terminal's follower side
    let (lines, read) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(count) = reader.read(&mut buffer) {
            if count == 0 {
                break;
            }
            text.extend_from_slice(&buffer[..count]);
            if String::from_utf8_lossy(&text).contains("is serving") {
                break;
            }
        }
        let _ = lines.send(String::from_utf8_lossy(&text).into_owned());
    });
    let text = read
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the daemon logs that it is serving");
    signal(&daemon, "-TERM");
    let _ = daemon.wait();
    assert!(text.contains("is serving"), "{text}");
    text
}

#[test]
fn log_lines_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    const ESCAPE: char = '\u{1b}';
    let piped = first_log_lines(false, false);
    assert!(!piped.contains(ESCAPE), "colour into a pipe: {piped:?}");
    let terminal = first_log_lines(true, false);
    assert!(
        terminal.contains(ESCAPE),
        "no colour on a terminal: {terminal:?}"
    );
    let no_color = first_log_lines(true, true);
    assert!(
        !no_color.contains(ESCAPE),
        "colour despite NO_COLOR: {no_color:?}"
    );
}

/// A child process that is killed when the test ends, even when it fails.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn health_exits_0_for_a_running_daemon_and_1_when_none_answers() {
    let port = closed_port();
    let bundled = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts.toml"));
    let daemon = Stopped(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(bundled)
            // A host name, resolved at start, as Prometheus accepts one.
            .args(["--listen", &format!("localhost:{port}")])
            .current_dir(scratch_dir("health"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start breakerd run"),
    );
    wait_until_listening(port, "breakerd");
    let health = |url: String| {
        let output = Command::new(BIN)
            .args(["health", "--timeout", "5s", "--url", &url])
            .output()
            .expect("run breakerd health");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stdout, _) = health(format!("http://127.0.0.1:{port}/-/ready"));
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("200 OK breakerd is Ready."), "{stdout}");
    let (code, _, _) = health(format!("http://127.0.0.1:{port}/-/healthy"));
    assert_eq!(code, Some(0));
    let (code, stdout, _) = health(format!("http://127.0.0.1:{port}/-/nothing-here"));
    assert_eq!(code, Some(1), "a 404 is not healthy: {stdout}");
    drop(daemon);
    let (code, _, stderr) = health(format!("http://127.0.0.1:{}/-/healthy", closed_port()));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no answer"), "{stderr}");
}

#[test]
fn help_names_the_signals_the_reload_route_rust_log_and_the_exit_codes() {
    for args in [&["--help"][..], &["run", "--help"][..]] {
        let output = Command::new(BIN).args(args).output().unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        for needle in [
            "RUST_LOG",
            "NO_COLOR",
            "Exit codes",
            "check   0 valid; 1 invalid",
        ] {
            assert!(help.contains(needle), "{args:?} lacks {needle}:\n{help}");
        }
    }
    let output = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in ["SIGHUP", "POST /-/reload", "SIGTERM", "/-/ready"] {
        assert!(help.contains(needle), "run --help lacks {needle}:\n{help}");
    }
}

#[test]
fn check_notes_each_unset_credential_and_counts_in_words() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts.toml");
    let output = Command::new(BIN)
        .arg("check")
        .arg(&path)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let notes: Vec<&str> = stdout.lines().filter(|l| l.starts_with("note: ")).collect();
    assert_eq!(notes.len(), 13, "{stdout}");
    assert!(
        notes.contains(
            &"note: mpesa: MPESA_CONSUMER_KEY is not set; the check will fail with reason auth"
        ),
        "{stdout}"
    );
    assert!(
        notes
            .iter()
            .any(|l| l.contains("email: SMTP_SERVER is not set"))
    );
    let one = scratch_dir("check-one").join("one.toml");
    std::fs::write(
        &one,
        "[services.x]\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n",
    )
    .unwrap();
    let (code, stdout, _) = check(&one);
    assert_eq!(code, 0);
    assert!(
        stdout.ends_with("one.toml: valid (1 service)\n"),
        "{stdout}"
    );
}

/// Where `needle` starts in `text`, as `LINE:COL` (both from 1).
fn place_of(text: &str, needle: &str) -> String {
    let at = text.find(needle).expect("the needle is in the text");
    let line = text[..at].matches('\n').count() + 1;
    let column = at - text[..at].rfind('\n').map_or(0, |newline| newline + 1) + 1;
    format!("{line}:{column}")
}

/// `check` refuses what `run` (or a reload) would refuse or silently drop, each at the place
/// in the file: a channel that cannot log in, a state directory breakerd cannot write, a proxy
/// on the API's own port, a heartbeat or report token that is unset or empty, a CA file TLS
/// will not trust. `run` refuses the same files before it serves.
#[test]
fn check_refuses_exactly_what_run_refuses_and_says_where() {
    let dir = scratch_dir("check-run");
    std::fs::write(dir.join("a-file"), "not a directory").unwrap();
    std::fs::write(dir.join("empty"), "").unwrap();
    std::fs::write(
        dir.join("bogus-ca.pem"),
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let unset = "BREAKERD_TEST_NEVER_SET_C41B";
    let port = closed_port();
    let state = dir.join("state").display().to_string();
    let base = |server: &str, alerts: &str, service: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n{server}[alerts]\nstate_dir = \"{state}\"\n{alerts}[services.tcp]\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n{service}"
        )
    };
    let email = |login: &str| {
        format!(
            "[alerts.email]\nserver = \"127.0.0.1:25\"\ntls = \"none\"\n{login}from = \"breakerd@example.com\"\nto = [\"oncall@example.com\"]\n"
        )
    };
    let heartbeat = |token: &str| {
        format!(
            "[services.callbacks]\nkind = \"heartbeat\"\nevery = \"30m\"\ntoken = \"{token}\"\n"
        )
    };
    let cases = [
        (
            base(
                "",
                &email(&format!(
                    "username = \"pager\"\npassword = \"${{{unset}}}\"\n"
                )),
                "",
            ),
            format!("\"${{{unset}}}\"\nfrom"),
            format!("alerts.email.password: environment variable {unset} is not set"),
        ),
        (
            base("", &email("username = \"pager\"\n"), ""),
            "[alerts.email]".to_string(),
            "alerts.email needs `password` too".to_string(),
        ),
        (
            base("", "", "").replace(&state, &dir.join("a-file").display().to_string()),
            format!("\"{}", dir.join("a-file").display()),
            "it is not a directory".to_string(),
        ),
        (
            base("", "", "").replace(&state, &dir.join("a-file/state").display().to_string()),
            format!("\"{}", dir.join("a-file").display()),
            format!("{} is not a directory", dir.join("a-file").display()),
        ),
        (
            base(&format!("proxy_listen = \"127.0.0.1:{port}\"\n"), "", ""),
            format!("\"127.0.0.1:{port}\"\n["),
            "server.proxy_listen".to_string(),
        ),
        (
            base("", "", &heartbeat(&format!("${{{unset}}}"))),
            format!("\"${{{unset}}}\""),
            format!("token: environment variable {unset} is not set"),
        ),
        (
            base(
                "",
                "",
                &heartbeat(&format!("${{file:{}}}", dir.join("empty").display())),
            ),
            "\"${file:".to_string(),
            "token is empty".to_string(),
        ),
        (
            base(&format!("report_token = \"${{{unset}}}\"\n"), "", ""),
            format!("\"${{{unset}}}\""),
            format!("server.report_token: environment variable {unset} is not set"),
        ),
        (
            base(
                "",
                "",
                &format!("ca_file = \"{}\"\n", dir.join("bogus-ca.pem").display()),
            ),
            format!("\"{}", dir.join("bogus-ca.pem").display()),
            "ca_file: certificate 1 of".to_string(),
        ),
    ];
    for (index, (text, at, why)) in cases.iter().enumerate() {
        let path = dir.join(format!("case-{index}.toml"));
        std::fs::write(&path, text).unwrap();
        let (code, _, stderr) = check(&path);
        assert_eq!(code, 1, "{why}: {stderr}");
        let expected = format!("{}:{}: ", path.display(), place_of(text, at));
        let line = stderr
            .lines()
            .find(|line| line.contains(why.as_str()))
            .unwrap_or_else(|| panic!("{why}: {stderr}"));
        assert!(
            line.starts_with(&expected),
            "{why}: {line} (expected {expected})"
        );
        // `run` refuses the same file, before it serves.
        let run = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&path)
            .current_dir(&dir)
            .stderr(Stdio::piped())
            .output()
            .expect("run breakerd run");
        assert_eq!(run.status.code(), Some(1), "{why}");
        assert!(
            String::from_utf8_lossy(&run.stderr).contains(why.as_str()),
            "{why}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

#[test]
fn health_says_degraded_on_the_bundled_config_without_credentials() {
    let bundled = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts.toml"));
    breakerd::probe::install_crypto_provider();
    let port = closed_port();
    let daemon = Command::new(BIN)
        .args(["run", "--config"])
        .arg(bundled)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .current_dir(scratch_dir("health"))
        // No credential of any provider is set.
        .env_clear()
        .stderr(Stdio::null())
        .spawn()
        .expect("start breakerd run");
    // Killed however the test ends, so it never outlives it.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let daemon = Killed(daemon);
    wait_until_listening(port, "breakerd");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let health = runtime.block_on(crate::support::get_json(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        "/api/v1/circuit-breakers/health",
    ));
    drop(daemon);
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(
        health["states"]["closed"], 6,
        "no breaker has opened yet: {health}"
    );
    let concerns = health["degradedServices"].as_array().expect("a list");
    let mpesa = concerns
        .iter()
        .find(|concern| concern["service"] == "mpesa")
        .expect("mpesa is listed");
    assert!(
        mpesa["why"]
            .as_str()
            .is_some_and(|why| why.contains("MPESA_CONSUMER_KEY")),
        "{mpesa}"
    );
    assert_eq!(
        concerns.len(),
        6,
        "every provider waits for credentials: {health}"
    );
}
