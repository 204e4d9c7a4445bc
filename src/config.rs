//! The `alerts.toml` schema as the rest of the program sees it: parsed, validated, with
//! defaults filled in and secrets resolved. Nothing downstream sees unvalidated config.

mod channel;
mod effective;
mod errors;
mod file;
pub(crate) mod keys;
mod kinds;
mod listen;
mod maintenance;
mod notes;
pub(crate) mod raw;
mod scope;
mod secret;
mod shard;
pub(crate) mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::credential::{Credential, Secret};
pub use crate::duration::{format_duration, parse_duration};
pub(crate) use crate::text::toml_string;
pub use channel::{ChannelConfig, ChannelSettings, SettingsIdentity};
pub(crate) use effective::{redacted_headers as render_headers, smtp as render_smtp};
pub use effective::{render as render_effective, service_changes};
pub use errors::{ConfigError, LoadError};
pub(crate) use file::off_runtime as read_off_runtime;
pub use file::{FileError, MAX_CONFIG_BYTES, MAX_SECRET_BYTES, READ_TIMEOUT, read_regular};
pub use listen::{ListenError, resolve_listen};
pub use maintenance::{MAX_MAINTENANCE, MaintenanceWindow, WindowTimes};
pub use notes::{defaulted_environments, missing as unset_of, unset_credentials};
pub use scope::{BreakerScope, OperationConfig};
pub use secret::{Environment, ProcessEnvironment};
pub use shard::{MAX_SHARDS, Shard, ShardError, shard_of};
pub use url::Url;

use crate::breaker::{Policy, State};

/// Where the daemon listens when `server.listen` is not set.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9477";
/// Calls slower than this are logged and counted, unless `server.slow_call` says otherwise.
pub const DEFAULT_SLOW_CALL: Duration = Duration::from_secs(1);
/// Time in-flight checks get to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Inbound HTTP connections served at once; more are closed at once and counted.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 512;
/// Time a client has to send a request's headers.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a kept-alive connection may stay idle.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the proxy keeps an idle upstream connection (`server.proxy_pool_idle`).
pub const DEFAULT_PROXY_POOL_IDLE: Duration = Duration::from_secs(90);
/// How often a service is checked when it names no schedule.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(30);
/// Where pending notifications are kept when `alerts.state_dir` is not set.
pub const DEFAULT_STATE_DIR: &str = "breakerd-state";
/// Notifications waiting per channel before new ones are dropped (and counted).
pub const DEFAULT_QUEUE_SIZE: usize = 1024;
/// Within this long of a service's last notification, further changes are summarised.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(30);
/// Delivery attempts before a notification is given up (and kept in `dead/`).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 12;
/// Time one delivery attempt may take.
pub const DEFAULT_CHANNEL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a firing alert is re-sent to Alertmanager.
pub const DEFAULT_RESEND_EVERY: Duration = Duration::from_secs(60);
/// How long a resolved alert keeps being re-sent to Alertmanager.
pub const DEFAULT_RESOLVE_FOR: Duration = Duration::from_secs(15 * 60);

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// The longest value of each duration key: ample for any real use, and short enough that no
/// timer, deadline or sum of them can overflow. `breakerd check` enforces them.
pub const DURATION_LIMITS: &[(&str, Duration)] = &[
    ("server.slow_call", HOUR),
    ("server.shutdown_grace", Duration::from_secs(600)),
    ("server.header_read_timeout", Duration::from_secs(300)),
    ("server.idle_timeout", HOUR),
    ("server.proxy_pool_idle", HOUR),
    ("every", DAY),
    ("timeout", HOUR),
    ("reset_timeout", DAY),
    ("slow_call", HOUR),
    ("max_wait", MINUTE),
    ("backoff_max", Duration::from_secs(7 * 86_400)),
    ("alerts.min_interval", DAY),
    ("alerts.group_wait", Duration::from_secs(600)),
    ("maintenance.duration", maintenance::MAX_MAINTENANCE),
    ("alerts.reminder_every", Duration::from_secs(30 * 86_400)),
    ("alerts.webhook.timeout", Duration::from_secs(5 * 60)),
    ("alerts.email.timeout", Duration::from_secs(5 * 60)),
    ("alerts.alertmanager.timeout", Duration::from_secs(5 * 60)),
    ("alerts.alertmanager.resend_every", HOUR),
    (
        "alerts.alertmanager.resolve_for",
        Duration::from_secs(7 * 86_400),
    ),
];

/// The largest value of each whole-number key. `breakerd check` enforces them.
pub const COUNT_LIMITS: &[(&str, u32)] = &[
    ("server.max_connections", 100_000),
    (
        "server.check_threads",
        crate::check_threads::MAX_CHECK_THREADS,
    ),
    ("failure_threshold", 10_000),
    ("half_open_max_calls", crate::breaker::MAX_HALF_OPEN_COUNT),
    ("success_threshold", crate::breaker::MAX_HALF_OPEN_COUNT),
    ("window_size", crate::breaker::MAX_WINDOW_SIZE),
    ("minimum_calls", crate::breaker::MAX_WINDOW_SIZE),
    ("alerts.max_attempts", 1000),
    ("max_concurrent", MAX_CONCURRENT),
];

/// The largest `max_concurrent`: more calls in flight to one service than the proxy's whole
/// share of descriptors could ever carry on a large machine.
pub const MAX_CONCURRENT: u32 = 100_000;

/// The largest `alerts.queue_size`.
pub const MAX_QUEUE_SIZE: usize = 1_000_000;

/// The limit of duration key `key` (every key has one; the shortest applies to an unknown one).
pub(crate) fn duration_limit(key: &str) -> Duration {
    DURATION_LIMITS
        .iter()
        .find(|(name, _)| *name == key)
        .map_or(MINUTE, |(_, limit)| *limit)
}

/// The limit of whole-number key `key`.
pub(crate) fn count_limit(key: &str) -> u32 {
    COUNT_LIMITS
        .iter()
        .find(|(name, _)| *name == key)
        .map_or(1000, |(_, limit)| *limit)
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[services.*]`, sorted by name.
    pub services: Vec<ServiceConfig>,
    /// `[alerts]`.
    pub alerts: AlertsConfig,
    /// `[[maintenance]]`: when pages are held.
    pub maintenance: Vec<MaintenanceWindow>,
}

/// `[server]`: the HTTP listener and daemon-wide settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Address of `/metrics` and `/api/v1`.
    pub listen: SocketAddr,
    /// Bearer token of the admin routes; they are off when this is `None`.
    pub admin_token: Option<Secret>,
    /// Calls slower than this are logged at WARN and counted.
    pub slow_call: Duration,
    /// Time in-flight checks get to finish on SIGTERM or Ctrl-C.
    pub shutdown_grace: Duration,
    /// Inbound HTTP connections served at once (fewer when the descriptor limit asks).
    pub max_connections: u32,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may stay idle.
    pub idle_timeout: Duration,
    /// Where the sidecar proxy listens; off when `None`.
    pub proxy_listen: Option<SocketAddr>,
    /// How long the proxy keeps an idle upstream connection (read at start).
    pub proxy_pool_idle: Duration,
    /// The bearer token applications report outcomes with, for every service without its own.
    pub report_token: Option<Secret>,
    /// The connectivity guard (`connectivity`): breakerd is online while any of these answers;
    /// when none does, provider pages are held and one "offline" notification goes out.
    pub connectivity: Vec<ConnectivityTarget>,
    /// The shard this replica runs (`shard = "N/M"`, or `--shard`): only the services whose
    /// name hashes to it; all of them when `None`.
    pub shard: Option<Shard>,
    /// How many threads run the checks (`check_threads`, default 1; read at start).
    pub check_threads: u32,
}

/// The most entries `server.connectivity` takes.
pub const MAX_CONNECTIVITY_TARGETS: usize = 16;

/// One entry of `server.connectivity`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectivityTarget {
    /// `tcp://HOST:PORT`: reachable when a TCP connection opens.
    Tcp {
        /// The host.
        host: String,
        /// The port.
        port: u16,
    },
    /// A configured service: reachable while its breaker is not in an outage.
    Service(String),
}

impl std::fmt::Display for ConnectivityTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectivityTarget::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            ConnectivityTarget::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            ConnectivityTarget::Service(name) => f.write_str(name),
        }
    }
}

/// One `[services.NAME]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConfig {
    /// The table name: the breaker's name and the `service` label.
    pub name: String,
    /// The breaker's policy.
    pub policy: Policy,
    /// When the synthetic check runs.
    pub schedule: Schedule,
    /// What the synthetic check does.
    pub check: Check,
    /// Which changes of this service notify (default: `alerts.notify_on`).
    pub notify_on: Option<Vec<NotifyOn>>,
    /// Where the proxy forwards this service's real calls: a preset's `base_url`, an `http`
    /// service's `upstream`; `None` for services the proxy cannot carry.
    pub upstream: Option<Url>,
    /// Whether scheduled checks run while real traffic is flowing.
    pub checks: Checks,
    /// The bearer token applications report this service's outcomes with (else the server's).
    pub report_token: Option<Secret>,
    /// The breaker starts (and stays, until reset) DISABLED: every call goes through and is
    /// counted, nothing trips it, no outage is paged.
    pub disabled: bool,
    /// Certificate authorities trusted besides the system's, for this service's HTTPS checks
    /// (`ca_file`: a private CA).
    pub ca: Option<CaBundle>,
    /// HTTP checks keep their connection between runs (`reuse_connections = true`) instead of
    /// opening a fresh one each time.
    pub reuse_connections: bool,
    /// Services this one depends on (`depends_on`): while one of them is in an outage, this
    /// one's outage is booked but not paged separately.
    pub depends_on: Vec<String>,
    /// The service's own answer rules (`[[services.NAME.rules]]`), tried before its
    /// provider's.
    pub rules: Vec<crate::provider::rules::Rule>,
    /// The cap on proxied calls in flight to it (`max_concurrent`, `max_wait`), if any.
    pub bulkhead: Option<BulkheadConfig>,
    /// The service the proxy sends a call to when this one's breaker refuses it
    /// (`fallback`): one hop, never a chain.
    pub fallback: Option<String>,
    /// One breaker for the service, or one per operation (`breakers`).
    pub breakers: BreakerScope,
    /// An `http` service's operations (`[[services.NAME.operations]]`), in file order.
    pub operations: Vec<OperationConfig>,
}

/// `max_concurrent` and `max_wait`: at most `max_concurrent` proxied calls in flight to a
/// service; the next waits up to `max_wait` for a slot, then is refused with reason `capacity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkheadConfig {
    /// Calls in flight at most (1 to [`MAX_CONCURRENT`]).
    pub max_concurrent: u32,
    /// How long a call waits for a slot (0: refused at once; at most a minute).
    pub max_wait: Duration,
}

/// The certificates read from a `ca_file` (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaBundle {
    /// The file, as configured.
    pub path: String,
    /// Its certificates, DER (at least one).
    pub certificates: Vec<rustls::pki_types::CertificateDer<'static>>,
}

/// When a service's scheduled checks run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Checks {
    /// On every tick.
    #[default]
    Always,
    /// Only when no real call has given the breaker an outcome within the last period, so a
    /// busy service spends no provider quota on checks.
    WhenIdle,
}

impl Checks {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Checks::Always => "always",
            Checks::WhenIdle => "when_idle",
        }
    }
}

/// A change of state that can notify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    /// The breaker opened (by its policy or by hand).
    Open,
    /// The breaker half-opened to try the provider.
    HalfOpen,
    /// The breaker closed again (recovery).
    Closed,
    /// The breaker was disabled by hand.
    Disabled,
}

impl NotifyOn {
    /// Every value, as written in the config.
    pub const ALL: [(&'static str, NotifyOn); 4] = [
        ("open", NotifyOn::Open),
        ("half_open", NotifyOn::HalfOpen),
        ("closed", NotifyOn::Closed),
        ("disabled", NotifyOn::Disabled),
    ];

    /// The value that a change into `state` matches.
    pub fn of(state: State) -> NotifyOn {
        match state {
            State::Open | State::ForcedOpen => NotifyOn::Open,
            State::HalfOpen => NotifyOn::HalfOpen,
            State::Closed => NotifyOn::Closed,
            State::Disabled => NotifyOn::Disabled,
        }
    }
}

/// When a service's check runs.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// At a fixed interval (`every = "30s"`).
    Every(Duration),
    /// On a cron schedule with seconds (`schedule = "*/30 * * * * *"`).
    Cron {
        /// The expression as written.
        expression: String,
        /// The parsed schedule.
        schedule: Box<cron::Schedule>,
    },
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Schedule::Every(a), Schedule::Every(b)) => a == b,
            (Schedule::Cron { expression: a, .. }, Schedule::Cron { expression: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// What a service's synthetic check does.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// A provider's own check (M-Pesa, Pesapal, KCB, Africa's Talking, WhatsApp), judged by
    /// its rules.
    Provider(crate::provider::ProviderCheck),
    /// An SMTP server: connect, EHLO, TLS, AUTH, NOOP, QUIT.
    Smtp(SmtpCheck),
    /// Any HTTP endpoint.
    Http(HttpCheck),
    /// A TCP connect.
    Tcp(TcpCheck),
    /// A DNS lookup: the name must resolve (to the expected values).
    Dns(DnsCheck),
    /// Beats the application sends (`POST /api/v1/heartbeat/:service`); a gap longer than
    /// `every` + `grace` fails.
    Heartbeat(HeartbeatCheck),
}

impl Check {
    /// The provider's host, for the HTTP presets.
    pub fn base_url(&self) -> Option<&Url> {
        match self {
            Check::Provider(check) => Some(&check.base_url),
            Check::Smtp(_)
            | Check::Http(_)
            | Check::Tcp(_)
            | Check::Dns(_)
            | Check::Heartbeat(_) => None,
        }
    }

    /// The preset or kind name: `mpesa`, `pesapal`, `kcb`, `africastalking`, `whatsapp`,
    /// `smtp`, `http`, `tcp`, `dns` or `heartbeat`.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Provider(check) => check.provider.name,
            Check::Smtp(_) => "smtp",
            Check::Http(_) => "http",
            Check::Tcp(_) => "tcp",
            Check::Dns(_) => "dns",
            Check::Heartbeat(_) => "heartbeat",
        }
    }

    /// The provider check, for presets that have one.
    pub fn provider(&self) -> Option<&crate::provider::ProviderCheck> {
        match self {
            Check::Provider(check) => Some(check),
            _ => None,
        }
    }
}

/// The record types a DNS check asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsRecord {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// An alias.
    Cname,
    /// Mail servers.
    Mx,
    /// Text.
    Txt,
}

impl DnsRecord {
    /// Every type, as the config spells it.
    pub const ALL: [(&'static str, DnsRecord); 5] = [
        ("A", DnsRecord::A),
        ("AAAA", DnsRecord::Aaaa),
        ("CNAME", DnsRecord::Cname),
        ("MX", DnsRecord::Mx),
        ("TXT", DnsRecord::Txt),
    ];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, record)| *record == self)
            .map_or("A", |(name, _)| name)
    }
}

/// A DNS check.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsCheck {
    /// The name looked up.
    pub name: String,
    /// The record type.
    pub record: DnsRecord,
    /// The server asked (`None`: the system's resolvers, from /etc/resolv.conf).
    pub server: Option<SocketAddr>,
    /// Values that must all be in the answer (none: any answer passes).
    pub expect: Vec<String>,
}

/// A heartbeat: the application says it is alive (say, each time an M-Pesa callback arrives).
#[derive(Clone, Debug, PartialEq)]
pub struct HeartbeatCheck {
    /// The longest expected gap between two beats.
    pub every: Duration,
    /// How much later than `every` a beat may come before it counts as missed.
    pub grace: Duration,
    /// The bearer token beats must carry.
    pub token: Secret,
    /// Where the last beat's time is kept across restarts (`state_dir/heartbeats/NAME`).
    pub state_file: PathBuf,
}

impl HeartbeatCheck {
    /// How often the gap is checked: every `grace` (at least 1 s, at most `every`), so a
    /// missed beat is seen within `grace` of its deadline.
    pub fn check_period(&self) -> Duration {
        self.grace
            .max(Duration::from_secs(1))
            .min(self.every.max(Duration::from_secs(1)))
    }
}

/// How an SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text.
    None,
    /// Plain text upgraded with STARTTLS (required).
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

impl SmtpTls {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
        }
    }
}

/// Where an SMTP server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmtpServer {
    /// Host name or address, and port.
    Address {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// Named by an environment variable that is unset; the check fails and says so.
    Missing {
        /// The variable.
        variable: String,
    },
}

/// An SMTP server to check (or, for alerts, to send through).
#[derive(Clone, Debug, PartialEq)]
pub struct SmtpCheck {
    /// The server.
    pub server: SmtpServer,
    /// Transport security.
    pub tls: SmtpTls,
    /// AUTH user and password, when the server needs them.
    pub credentials: Option<(Credential, Credential)>,
    /// Certificate authorities trusted besides the system's (the service's `ca_file`).
    pub ca: Option<CaBundle>,
}

/// A generic HTTP check.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpCheck {
    /// Request method.
    pub method: String,
    /// Request URL.
    pub url: Url,
    /// Request headers; values may hold secrets.
    pub headers: Vec<(String, Secret)>,
    /// Request body.
    pub body: Option<String>,
    /// Status codes that pass (default: any 2xx).
    pub expect_status: Vec<u16>,
    /// Text the body must contain.
    pub body_contains: Option<String>,
    /// A JSON field (dotted path) that must be present.
    pub json_field: Option<String>,
    /// The value that field must have.
    pub json_equals: Option<serde_json::Value>,
}

/// A TCP connect check.
#[derive(Clone, Debug, PartialEq)]
pub struct TcpCheck {
    /// `host:port`.
    pub address: String,
}

/// `[alerts]`: where state changes are sent, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertsConfig {
    /// Directory of the outbox of pending notifications.
    pub state_dir: PathBuf,
    /// Which changes notify, unless a service says otherwise (default: open and closed).
    pub notify_on: Vec<NotifyOn>,
    /// Changes of one service within this long of its last notification are summarised.
    pub min_interval: Duration,
    /// Reminders while a breaker stays open; off when `None`.
    pub reminder_every: Option<Duration>,
    /// Outages that start (or end) within this long of each other are sent as one
    /// notification per channel; off when `None`.
    pub group_wait: Option<Duration>,
    /// Notifications waiting per channel before new ones are dropped.
    pub queue_size: usize,
    /// Delivery attempts before a notification is given up.
    pub max_attempts: u32,
    /// A link to the dashboard, put in notifications.
    pub dashboard_url: Option<Url>,
    /// The API's base URL as the on-call person reaches it, put in notifications.
    pub api_url: Option<Url>,
    /// The runbook's page as the on-call person reaches it, linked from every page (default:
    /// `api_url` + `/runbook`, the one this daemon serves).
    pub runbook_url: Option<Url>,
    /// Every channel (`[alerts.email]`, `[[alerts.webhook]]`, `[[alerts.pagerduty]]`, …), in
    /// the order of the file.
    pub channels: Vec<ChannelConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            notify_on: vec![NotifyOn::Open, NotifyOn::Closed],
            min_interval: DEFAULT_MIN_INTERVAL,
            reminder_every: None,
            group_wait: None,
            queue_size: DEFAULT_QUEUE_SIZE,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            dashboard_url: None,
            api_url: None,
            runbook_url: None,
            channels: Vec::new(),
        }
    }
}

impl AlertsConfig {
    /// Whether any channel is configured.
    pub fn has_channels(&self) -> bool {
        !self.channels.is_empty()
    }

    /// The runbook pages link to: `runbook_url`, else this daemon's own under `api_url`.
    pub fn runbook(&self) -> Option<String> {
        self.runbook_url
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| {
                self.api_url
                    .as_ref()
                    .map(|base| format!("{}/runbook", base.as_str().trim_end_matches('/')))
            })
    }
}

/// Which notifications a channel takes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelFilter {
    /// Only these changes (default: whatever the service notifies on).
    pub notify_on: Option<Vec<NotifyOn>>,
    /// Only these services (default: all).
    pub services: Option<Vec<String>>,
}

impl Config {
    /// The config this replica runs: only the services of its shard — `chosen` (`--shard`)
    /// or else `server.shard` —, all of them unsharded.
    pub fn sharded(mut self, chosen: Option<Shard>) -> Self {
        let shard = chosen.or(self.server.shard);
        if let Some(shard) = shard {
            self.services.retain(|service| shard.owns(&service.name));
        }
        self.server.shard = shard;
        self
    }

    /// Reads and validates the file at `path` with secrets from the process environment.
    /// Blocking: the daemon calls [`Config::load_off_runtime`].
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        Self::load_bytes(path).map(|(config, _)| config)
    }

    /// [`Config::load`], also returning the bytes it validated.
    pub fn load_bytes(path: &Path) -> Result<(Config, Vec<u8>), LoadError> {
        let display = path.display().to_string();
        let bytes = read_regular(path, MAX_CONFIG_BYTES).map_err(|source| LoadError::Read {
            path: display.clone(),
            source,
        })?;
        let config = Self::parse_bytes(&bytes, &display, &ProcessEnvironment)?;
        Ok((config, bytes))
    }

    /// [`Config::load_bytes`] on the blocking pool, given up after [`READ_TIMEOUT`]: a config or
    /// secret file that never finishes reading cannot freeze the runtime.
    pub async fn load_off_runtime(path: &Path) -> Result<(Config, Vec<u8>), LoadError> {
        let owned = path.to_path_buf();
        match file::off_runtime(move || Self::load_bytes(&owned)).await {
            Ok(result) => result,
            Err(source) => Err(LoadError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Validates `bytes`, which must be UTF-8; an invalid byte is a problem at its place.
    pub fn parse_bytes(
        bytes: &[u8],
        path: &str,
        environment: &dyn Environment,
    ) -> Result<Config, LoadError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::parse(text, path, environment),
            Err(error) => {
                let valid = String::from_utf8_lossy(&bytes[..error.valid_up_to()]);
                let (line, column) = crate::text::line_and_column(&valid, valid.len());
                Err(LoadError::Invalid(vec![ConfigError {
                    path: path.to_string(),
                    line,
                    column,
                    message: format!(
                        "byte 0x{:02x} is not UTF-8 text; save the file as UTF-8",
                        bytes[error.valid_up_to()]
                    ),
                }]))
            }
        }
    }

    /// Validates `text`, naming `path` in errors, with secrets from `environment`.
    pub fn parse(
        text: &str,
        path: &str,
        environment: &dyn Environment,
    ) -> Result<Config, LoadError> {
        validate::validate(text, path, environment)
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        // Validation sorts them by name.
        self.services
            .binary_search_by(|service| service.name.as_str().cmp(name))
            .ok()
            .map(|index| &self.services[index])
    }
}
