//! The email channel (`[alerts.email]`): a plain-text message per page, its title the subject,
//! sent with lettre over SMTP (plain, STARTTLS or TLS, optional AUTH) to every recipient.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::kind::{Boxed, BuildContext, Channel, ChannelKind};
use crate::alert::failure::DeliveryError;
use crate::alert::page::Page;
use crate::config::raw::RawList;
use crate::config::validate::alerts::ChannelTable;
use crate::config::{
    ChannelConfig, ChannelFilter, ChannelSettings, Check, Credential, DEFAULT_CHANNEL_TIMEOUT,
    SmtpCheck, SmtpServer, format_duration, render_smtp, toml_string,
};
use crate::redact::Redactor;

/// `[alerts.email]`.
pub(super) const KIND: ChannelKind = ChannelKind {
    key: "email",
    many: false,
    keys: crate::config::keys::fields_of::<RawEmail>,
    validate,
    build,
};

/// `[alerts.email]` as written.
#[derive(Debug, Deserialize)]
struct RawEmail {
    server: Spanned<String>,
    tls: Option<Spanned<String>>,
    from: Spanned<String>,
    to: Spanned<Vec<Spanned<String>>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    notify_on: Option<RawList>,
    services: Option<RawList>,
}

/// The email channel's settings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EmailSettings {
    /// The SMTP server to send through.
    pub(crate) smtp: SmtpCheck,
    /// The sender.
    pub(crate) from: String,
    /// The recipients.
    pub(crate) to: Vec<String>,
    /// Time one attempt may take.
    pub(crate) timeout: Duration,
    /// Which pages it takes.
    pub(crate) filter: ChannelFilter,
}

impl ChannelSettings for EmailSettings {
    fn kind(&self) -> &'static str {
        KIND.key
    }

    fn name(&self) -> &str {
        KIND.key
    }

    fn filter(&self) -> &ChannelFilter {
        &self.filter
    }

    fn render(&self) -> String {
        let mut out = String::from("[alerts.email]\n");
        render_smtp(&mut out, &self.smtp);
        let to: Vec<String> = self.to.iter().map(|to| toml_string(to)).collect();
        out.push_str(&format!(
            "from = {}\nto = [{}]\ntimeout = {}\n",
            toml_string(&self.from),
            to.join(", "),
            toml_string(&format_duration(self.timeout))
        ));
        out
    }
}

fn validate(
    table: &mut ChannelTable<'_, '_>,
    value: Spanned<DeValue<'_>>,
) -> Option<ChannelConfig> {
    let email: RawEmail = table.read(value)?;
    // The name is fixed: there is one email channel.
    let _ = table.name(None);
    let (host, port) = table.host_port("server", &email.server)?;
    let credentials = match (&email.username, &email.password) {
        (None, None) => None,
        (username, password) => Some((
            login(table, "username", username.as_ref()),
            login(table, "password", password.as_ref()),
        )),
    };
    let mut to = Vec::new();
    for address in email.to.get_ref() {
        if table.mailbox("to", address) {
            to.push(address.get_ref().clone());
        }
    }
    if to.is_empty() {
        table.problem(
            email.to.span(),
            "alerts.email.to needs at least one address",
        );
    }
    let from_ok = table.mailbox("from", &email.from);
    let tls = table.smtp_tls(email.tls.as_ref())?;
    let timeout = table.duration(
        "timeout",
        email.timeout.as_ref(),
        DEFAULT_CHANNEL_TIMEOUT,
        false,
    );
    let filter = table.filter(email.notify_on.as_ref(), email.services.as_ref());
    from_ok.then(|| {
        ChannelConfig::new(EmailSettings {
            smtp: SmtpCheck {
                server: SmtpServer::Address { host, port },
                tls,
                credentials,
                ca: None,
            },
            from: email.from.get_ref().clone(),
            to,
            timeout,
            filter,
        })
    })
}

/// `username` or `password`: both or neither, and set. A channel that cannot log in would
/// only fail at 3 a.m., so an unset one is a problem now.
fn login(
    table: &mut ChannelTable<'_, '_>,
    key: &'static str,
    raw: Option<&Spanned<String>>,
) -> Credential {
    let missing = Credential::Missing {
        key,
        variable: None,
    };
    let Some(raw) = raw else {
        let at = table.table();
        table.problem(
            at,
            format!("alerts.email needs `{key}` too: give both username and password, or neither"),
        );
        return missing;
    };
    table
        .needed_secret(key, raw, "the email channel logs in with it")
        .map_or(missing, Credential::Set)
}

fn build(config: &ChannelConfig, context: &BuildContext) -> Result<Arc<dyn Channel>, String> {
    let settings = config
        .settings_as::<EmailSettings>()
        .ok_or("not an email channel's settings")?;
    let transport = crate::transport::smtp::transport(&settings.smtp, context.transport.trust())
        .map_err(|error| error.to_string())?;
    let redactor = Redactor::of(&Check::Smtp(settings.smtp.clone()));
    Ok(Arc::new(EmailChannel {
        settings: settings.clone(),
        transport,
        redactor,
        max_attempts: context.max_attempts,
    }))
}

#[derive(Debug)]
struct EmailChannel {
    settings: EmailSettings,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The SMTP password in every form it is sent in: never in an error.
    redactor: Redactor,
    max_attempts: u32,
}

impl EmailChannel {
    fn message(&self, page: &Page<'_>) -> Result<Message, DeliveryError> {
        let parse = |address: &str| {
            address.parse::<Mailbox>().map_err(|error| {
                DeliveryError::permanent(format!("bad address {address}: {error}"))
            })
        };
        let mut builder = Message::builder()
            .from(parse(&self.settings.from)?)
            .subject(format!("[breakerd] {}", page.title));
        for recipient in &self.settings.to {
            builder = builder.to(parse(recipient)?);
        }
        builder
            .header(ContentType::TEXT_PLAIN)
            .body(page.text())
            .map_err(|error| DeliveryError::permanent(format!("cannot build the email: {error}")))
    }

    async fn send(&self, page: &Page<'_>) -> Result<(), DeliveryError> {
        let message = self.message(page)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // A permanent SMTP reply (5xx) will not change on retry; everything else may.
            Err(error) if error.is_permanent() => Err(DeliveryError::permanent(
                self.redactor.redact(&error.to_string()),
            )),
            Err(error) => Err(DeliveryError::retryable(
                self.redactor.redact(&error.to_string()),
            )),
        }
    }
}

impl Channel for EmailChannel {
    fn settings(&self) -> &dyn ChannelSettings {
        &self.settings
    }

    fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    fn deliver<'a>(&'a self, page: &'a Page<'a>) -> Boxed<'a, Result<(), DeliveryError>> {
        Box::pin(self.send(page))
    }
}
