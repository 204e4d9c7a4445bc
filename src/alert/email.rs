//! The email channel: a plain-text message per notification, sent with lettre over SMTP
//! (plain, STARTTLS or TLS, optional AUTH) to every recipient.

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::failure::DeliveryError;
use super::notification::Notification;
use crate::config::{Check, EmailConfig};
use crate::probe::{Redactor, smtp_transport};

#[derive(Debug)]
pub(crate) struct EmailChannel {
    pub(crate) config: EmailConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The SMTP password in every form it is sent in: never in an error.
    redactor: Redactor,
}

impl EmailChannel {
    pub(crate) fn new(config: EmailConfig) -> Result<Self, String> {
        let transport = smtp_transport(&config.smtp).map_err(|error| error.to_string())?;
        let redactor = Redactor::of(&Check::Smtp(config.smtp.clone()));
        Ok(Self {
            config,
            transport,
            redactor,
        })
    }

    pub(crate) fn message(&self, notification: &Notification) -> Result<Message, DeliveryError> {
        let parse = |address: &str| {
            address.parse::<Mailbox>().map_err(|error| {
                DeliveryError::permanent(format!("bad address {address}: {error}"))
            })
        };
        let mut builder = Message::builder()
            .from(parse(&self.config.from)?)
            .subject(notification.subject());
        for recipient in &self.config.to {
            builder = builder.to(parse(recipient)?);
        }
        builder
            .header(ContentType::TEXT_PLAIN)
            .body(notification.text_body())
            .map_err(|error| DeliveryError::permanent(format!("cannot build the email: {error}")))
    }

    pub(crate) async fn deliver(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let message = self.message(notification)?;
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
