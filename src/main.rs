//! The `breakerd` command line: parse flags, start logging, call into the library, turn an
//! error into an exit code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use breakerd::config::Config;
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

/// Circuit breakers, synthetic checks, Prometheus metrics and alerts for the external providers
/// a business depends on.
#[derive(Debug, Parser)]
#[command(name = "breakerd", version, about)]
struct Cli {
    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (SIGTERM or Ctrl-C stops it gracefully).
    Run {
        /// The config file.
        #[arg(long, default_value = "alerts.toml")]
        config: PathBuf,
        /// Listen here instead of at `server.listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Run the daemon against simulated providers on loopback, printing every alert: breakers
    /// open, half-open and close within a minute, with no credentials and no internet.
    Demo {
        /// Where to serve the status page, `/metrics` and the API.
        #[arg(long, default_value = "127.0.0.1:9477")]
        listen: SocketAddr,
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
        Command::Run { config, listen } => run(&config, listen),
        Command::Demo { listen } => demo(listen),
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn check(path: &std::path::Path, print: bool) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            if print {
                print!("{}", breakerd::config::render_effective(&config));
                return ExitCode::SUCCESS;
            }
            println!(
                "{}: valid ({} services)",
                path.display(),
                config.services.len()
            );
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

fn run(path: &std::path::Path, listen: Option<SocketAddr>) -> ExitCode {
    if let Err(error) = Config::load(path) {
        for line in error.lines() {
            eprintln!("{line}");
        }
        eprintln!(
            "breakerd: not started; fix the config (check it with `breakerd check {}`)",
            path.display()
        );
        return ExitCode::from(1);
    }
    block_on("breakerd", breakerd::daemon::run(path, listen))
}
