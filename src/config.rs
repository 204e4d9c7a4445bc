//! The `alerts.toml` schema as the rest of the program sees it: parsed, validated, with
//! defaults filled in and secrets resolved. Nothing downstream sees unvalidated config.

mod duration;
mod errors;
mod raw;
mod secret;
mod validate;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub use duration::{format_duration, parse_duration};
pub use errors::{ConfigError, LoadError};
pub use secret::{Environment, ProcessEnvironment, Secret};
pub use url::Url;

use crate::breaker::Policy;

/// Where the daemon listens when `server.listen` is not set.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9477";
/// Calls slower than this are logged and counted, unless `server.slow_call` says otherwise.
pub const DEFAULT_SLOW_CALL: Duration = Duration::from_secs(1);
/// Time in-flight checks get to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often a service is checked when it names no schedule.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(30);

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[services.*]`, sorted by name.
    pub services: Vec<ServiceConfig>,
    /// `[alerts]`.
    pub alerts: AlertsConfig,
}

/// `[server]`: the HTTP listener and daemon-wide settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address of `/metrics` and `/api/v1`.
    pub listen: SocketAddr,
    /// Bearer token of the admin routes; they are off when this is `None`.
    pub admin_token: Option<Secret>,
    /// Calls slower than this are logged at WARN and counted.
    pub slow_call: Duration,
    /// Time in-flight checks get to finish on SIGTERM or Ctrl-C.
    pub shutdown_grace: Duration,
}

/// One `[services.NAME]` table.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The table name: the breaker's name and the `service` label.
    pub name: String,
    /// The breaker's policy.
    pub policy: Policy,
    /// When the synthetic check runs.
    pub schedule: Schedule,
    /// What the synthetic check does.
    pub check: Check,
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

/// A provider credential: set, or missing (the check then fails with reason `auth`, and the
/// rest of the daemon runs).
#[derive(Clone, Debug)]
pub enum Credential {
    /// The value.
    Set(Secret),
    /// Not available; the check reports what to set.
    Missing {
        /// The config key.
        key: &'static str,
        /// The environment variable it names, if any.
        variable: Option<String>,
    },
}

impl Credential {
    /// The value, or a sentence saying what to set.
    pub fn value(&self) -> Result<&Secret, String> {
        match self {
            Credential::Set(secret) => Ok(secret),
            Credential::Missing {
                key,
                variable: Some(variable),
            } => Err(format!(
                "{key} is not set: environment variable {variable} is empty or unset"
            )),
            Credential::Missing {
                key,
                variable: None,
            } => Err(format!("{key} is not configured")),
        }
    }
}

/// What a service's synthetic check does.
#[derive(Clone, Debug)]
pub enum Check {
    /// M-Pesa Daraja: an OAuth token request.
    Mpesa(OAuthCheck),
    /// Pesapal 3.0: a token request, judged by its body.
    Pesapal(OAuthCheck),
    /// KCB Buni: an OAuth token request.
    Kcb(OAuthCheck),
    /// Africa's Talking: the account's user data and balance.
    AfricasTalking(AfricasTalkingCheck),
    /// WhatsApp Cloud API: the phone number's status and quality rating.
    WhatsApp(WhatsAppCheck),
    /// An SMTP server: connect, EHLO, TLS, AUTH, NOOP, QUIT.
    Smtp(SmtpCheck),
    /// Any HTTP endpoint.
    Http(HttpCheck),
    /// A TCP connect.
    Tcp(TcpCheck),
}

impl Check {
    /// The preset or kind name: `mpesa`, `pesapal`, `kcb`, `africastalking`, `whatsapp`,
    /// `smtp`, `http` or `tcp`.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Mpesa(_) => "mpesa",
            Check::Pesapal(_) => "pesapal",
            Check::Kcb(_) => "kcb",
            Check::AfricasTalking(_) => "africastalking",
            Check::WhatsApp(_) => "whatsapp",
            Check::Smtp(_) => "smtp",
            Check::Http(_) => "http",
            Check::Tcp(_) => "tcp",
        }
    }
}

/// A consumer-key/consumer-secret token request (M-Pesa, Pesapal, KCB).
#[derive(Clone, Debug)]
pub struct OAuthCheck {
    /// The provider's host (sandbox by default).
    pub base_url: Url,
    /// The consumer key.
    pub consumer_key: Credential,
    /// The consumer secret.
    pub consumer_secret: Credential,
}

/// Africa's Talking account check.
#[derive(Clone, Debug)]
pub struct AfricasTalkingCheck {
    /// The API host (sandbox by default).
    pub base_url: Url,
    /// The account's username.
    pub username: Credential,
    /// The API key.
    pub api_key: Credential,
    /// A balance below this fails the check with reason `balance`.
    pub min_balance: Option<f64>,
}

/// WhatsApp Cloud API phone-number check.
#[derive(Clone, Debug)]
pub struct WhatsAppCheck {
    /// The Graph API host.
    pub base_url: Url,
    /// The Graph API version, like `v21.0`.
    pub api_version: String,
    /// The phone number's ID.
    pub phone_number_id: Credential,
    /// The access token.
    pub access_token: Credential,
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
#[derive(Clone, Debug)]
pub struct SmtpCheck {
    /// The server.
    pub server: SmtpServer,
    /// Transport security.
    pub tls: SmtpTls,
    /// AUTH user and password, when the server needs them.
    pub credentials: Option<(Credential, Credential)>,
}

/// A generic HTTP check.
#[derive(Clone, Debug)]
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
#[derive(Clone, Debug)]
pub struct TcpCheck {
    /// `host:port`.
    pub address: String,
}

/// `[alerts]`: where state changes are sent.
#[derive(Clone, Debug, Default)]
pub struct AlertsConfig {
    /// `[[alerts.webhook]]`.
    pub webhooks: Vec<WebhookConfig>,
    /// `[alerts.email]`.
    pub email: Option<EmailConfig>,
    /// `[[alerts.alertmanager]]`.
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One webhook receiver.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: Url,
}

/// The email channel.
#[derive(Clone, Debug)]
pub struct EmailConfig {
    /// The SMTP server to send through.
    pub smtp: SmtpCheck,
    /// The sender.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

/// One Alertmanager instance.
#[derive(Clone, Debug)]
pub struct AlertmanagerConfig {
    /// Its base URL.
    pub url: Url,
}

impl Config {
    /// Reads and validates the file at `path` with secrets from the process environment.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: display.clone(),
            source,
        })?;
        Self::parse(&text, &display, &ProcessEnvironment)
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
        self.services.iter().find(|service| service.name == name)
    }
}
