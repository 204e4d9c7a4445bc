//! The `breakerd` command line: parse flags, start logging, call into the library, turn an
//! error into an exit code.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use breakerd::config::{Config, parse_duration, resolve_listen};
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

/// Circuit breakers, synthetic checks, Prometheus metrics and alerts for the external providers
/// a business depends on.
#[derive(Debug, Parser)]
#[command(name = "breakerd", version, about, after_help = ENVIRONMENT)]
struct Cli {
    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// What every subcommand's help ends with.
const ENVIRONMENT: &str = "\
Environment:
  RUST_LOG       what to log, e.g. RUST_LOG=debug or RUST_LOG=info,breakerd::alert=debug
                 (default info)
  NO_COLOR       set to anything: no colour in text logs (colour is used only when stderr is a
                 terminal anyway)
  TOKIO_WORKER_THREADS  async worker threads of the API and alerts, and the proxy's threads
                 (default one per core); checks run on threads of their own
                 (server.check_threads)
  ${VAR}, ${file:/path} in alerts.toml are read from the environment and from secret files

Exit codes:
  run     0 stopped by SIGTERM or Ctrl-C; 1 the config is invalid or the daemon could not start
  check   0 valid; 1 invalid (one PATH:LINE:COL line per problem); 2 the file cannot be read
  explain 0 explained; 1 unknown service or bad --header; 2 the config or body cannot be read
  health  0 the daemon answered 2xx; 1 it did not";

/// What `run --help` adds: how a running daemon is controlled.
const RUN_HELP: &str = "\
While it runs:
  SIGHUP or POST /-/reload (admin token)   reload alerts.toml; saving the file also reloads it.
                                           A bad edit changes nothing and is logged.
  SIGTERM or Ctrl-C                        stop: listeners close, running checks get
                                           server.shutdown_grace, then are cancelled
  GET /-/healthy, GET /-/ready             liveness and readiness (`breakerd health`)";

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (SIGHUP reloads the config; SIGTERM or Ctrl-C stops it gracefully).
    #[command(after_help = format!("{RUN_HELP}\n\n{ENVIRONMENT}"))]
    Run {
        /// The config file.
        #[arg(long, default_value = "alerts.toml")]
        config: PathBuf,
        /// Listen here instead of at `server.listen`: IP:PORT or HOST:PORT (e.g.
        /// localhost:9477, resolved at start).
        #[arg(long, value_parser = resolve_listen)]
        listen: Option<SocketAddr>,
        /// Run only shard N of M (0-based, e.g. 1/3): the services whose name hashes to it;
        /// overrides `server.shard`. Several replicas of one shard give HA through Alertmanager.
        #[arg(long, value_name = "N/M")]
        shard: Option<breakerd::config::Shard>,
    },
    /// Run the daemon against simulated providers on loopback, printing every alert: breakers
    /// open, half-open and close within a minute, with no credentials and no internet.
    Demo {
        /// Where to serve the status page, `/metrics` and the API (not 9477, so that the demo
        /// and `breakerd run` can run side by side).
        #[arg(long, default_value = DEMO_LISTEN, value_parser = resolve_listen)]
        listen: SocketAddr,
    },
    /// Ask a running daemon whether it is healthy, for container health checks: exit 0 when it
    /// answers 2xx, 1 when it does not (or does not answer within the timeout).
    Health {
        /// What to ask: `/-/healthy` (alive) or `/-/ready` (started and not stopping).
        #[arg(long, default_value = "http://127.0.0.1:9477/-/healthy")]
        url: String,
        /// How long to wait for the answer.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Say how a service's rules judge one answer: its operation, the rule that decides (its
    /// place in the file or in the built-in list) and the outcome.
    Explain {
        /// The config file.
        #[arg(long, default_value = "alerts.toml")]
        config: PathBuf,
        /// The service, as named in the config.
        service: String,
        /// The request's method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The request's path below the provider's base URL (a whole URL works too).
        #[arg(long)]
        path: String,
        /// The answer's HTTP status.
        #[arg(long, value_parser = clap::value_parser!(u16).range(100..=599))]
        status: u16,
        /// A file holding the answer's body (its first 64 KiB are read).
        #[arg(long)]
        body: Option<PathBuf>,
        /// An answer header, `NAME: VALUE` (repeat for more), e.g. `Retry-After: 30`.
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
    /// Print every provider's operations and answer rules as README's Markdown tables.
    Rules {
        /// Markdown (the only format so far).
        #[arg(long)]
        markdown: bool,
    },
    /// Validate a config file without starting anything: exit 0 when valid, 1 with one
    /// `PATH:LINE:COL: problem` line each when not, 2 when the file cannot be read.
    Check {
        /// The config file.
        path: PathBuf,
        /// Also print the effective config: every default filled in, secrets redacted.
        #[arg(long)]
        print: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Check { path, print } => check(&path, print),
        Command::Run {
            config,
            listen,
            shard,
        } => run(&config, listen, shard),
        Command::Demo { listen } => demo(listen),
        Command::Health { url, timeout } => health(&url, timeout),
        Command::Explain {
            config,
            service,
            method,
            path,
            status,
            body,
            headers,
        } => explain(
            &config,
            &service,
            &method,
            &path,
            status,
            body.as_deref(),
            &headers,
        ),
        Command::Rules { .. } => {
            let _ = write!(
                std::io::stdout().lock(),
                "{}",
                breakerd::provider::markdown()
            );
            ExitCode::SUCCESS
        }
    }
}

/// `breakerd explain`: exit 0 with the explanation, 1 for an unknown service or a bad header,
/// 2 when the config or the body cannot be read.
fn explain(
    config: &std::path::Path,
    name: &str,
    method: &str,
    path: &str,
    status: u16,
    body: Option<&std::path::Path>,
    headers: &[String],
) -> ExitCode {
    let config = match Config::load(config) {
        Ok(config) => config,
        Err(error) => {
            for line in error.lines() {
                eprintln!("{line}");
            }
            return ExitCode::from(2);
        }
    };
    let Some(service) = config.service(name) else {
        let known: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "breakerd explain: no service \"{name}\" (services: {})",
            known.join(", ")
        );
        return ExitCode::from(1);
    };
    let mut answer_headers = Vec::new();
    for header in headers {
        let Some((name, value)) = header.split_once(':') else {
            eprintln!(
                "breakerd explain: --header \"{header}\" is not NAME: VALUE (e.g. \"Retry-After: 30\")"
            );
            return ExitCode::from(1);
        };
        answer_headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let body = match body.map(read_start) {
        None => None,
        Some(Ok(bytes)) => bytes,
        Some(Err(error)) => {
            eprintln!("breakerd explain: {error}");
            return ExitCode::from(2);
        }
    };
    let judge = breakerd::registry::judge_of(service);
    let text = breakerd::provider::explain(
        &judge,
        &method.to_ascii_uppercase(),
        path,
        status,
        &answer_headers,
        body.as_deref(),
    );
    let text = breakerd::probe::redact_secrets(&service.check, &text);
    let _ = write!(std::io::stdout().lock(), "{text}");
    ExitCode::SUCCESS
}

/// The start of a body file: its bytes when it is at most what the rules read, `None` when it
/// is longer (it is then judged without its body, as the proxy would).
fn read_start(path: &std::path::Path) -> anyhow::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let limit = breakerd::provider::MAX_JUDGED_BODY;
    let file = std::fs::File::open(path).map_err(|error| {
        anyhow::anyhow!("cannot read the body file {}: {error}", path.display())
    })?;
    let mut bytes = Vec::new();
    file.take(u64::try_from(limit).unwrap_or(u64::MAX) + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| {
            anyhow::anyhow!("cannot read the body file {}: {error}", path.display())
        })?;
    Ok((bytes.len() <= limit).then_some(bytes))
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_wanted())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.event_format(breakerd::logfmt::Logfmt).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Colour only for a person at a terminal: never into a file, a pipe or journald, and never
/// when `NO_COLOR` is set to anything (<https://no-color.org>).
fn colour_wanted() -> bool {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    std::io::stderr().is_terminal() && !no_color
}

fn check(path: &std::path::Path, print: bool) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            // What `run` and a reload build from a valid file, refused here too.
            if let Err(problems) = breakerd::daemon::preflight(&config) {
                for problem in problems {
                    eprintln!("{}: {problem}", path.display());
                }
                return ExitCode::from(1);
            }
            // Written, not printed: `breakerd check alerts.toml | head -1` closing the pipe
            // early is not an error worth a panic.
            let mut out = std::io::stdout().lock();
            if print {
                let _ = write!(out, "{}", breakerd::config::render_effective(&config));
                return ExitCode::SUCCESS;
            }
            let count = config.services.len();
            let noun = if count == 1 { "service" } else { "services" };
            let _ = writeln!(out, "{}: valid ({count} {noun})", path.display());
            for note in breakerd::config::unset_credentials(&config)
                .into_iter()
                .chain(breakerd::config::defaulted_environments(&config))
            {
                let _ = writeln!(out, "note: {note}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            for line in error.lines() {
                eprintln!("{line}");
            }
            match error {
                breakerd::config::LoadError::Read { .. } => ExitCode::from(2),
                breakerd::config::LoadError::Invalid(_) => ExitCode::from(1),
            }
        }
    }
}

/// The demo's default address: beside, not on, the daemon's 9477 and the proxy's 9478.
const DEMO_LISTEN: &str = "127.0.0.1:9479";

fn health(url: &str, timeout: Duration) -> ExitCode {
    // Reads the platform's roots: before the runtime starts.
    let client = match breakerd::transport::command_line_client(timeout) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("breakerd health: cannot build an HTTP client: {error}");
            return ExitCode::FAILURE;
        }
    };
    let ask = async move {
        let answer = client
            .get(url)
            .send()
            .await
            .map_err(|error| anyhow::anyhow!("{url}: no answer: {error}"))?;
        let status = answer.status();
        let body = answer.text().await.unwrap_or_default();
        println!("{url}: {status} {}", body.trim());
        anyhow::ensure!(status.is_success(), "{url} answered {status}");
        Ok(())
    };
    block_on("breakerd health", ask)
}

fn demo(listen: SocketAddr) -> ExitCode {
    block_on("breakerd demo", breakerd::demo::run(listen))
}

/// Runs `work` on a multi-threaded runtime; an error becomes a message and a failure exit.
fn block_on(what: &str, work: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{what}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{what}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    path: &std::path::Path,
    listen: Option<SocketAddr>,
    shard: Option<breakerd::config::Shard>,
) -> ExitCode {
    let loaded = match Config::load_bytes(path) {
        Ok(loaded) => loaded,
        Err(error) => {
            for line in error.lines() {
                eprintln!("{line}");
            }
            eprintln!(
                "breakerd: not started; fix the config (check it with `breakerd check {}`)",
                path.display()
            );
            return ExitCode::from(1);
        }
    };
    block_on(
        "breakerd",
        breakerd::daemon::run(path, loaded, listen, shard),
    )
}
