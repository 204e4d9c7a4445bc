//! The SMTP check: connect, EHLO, STARTTLS or implicit TLS, AUTH, NOOP, QUIT (lettre's
//! `test_connection`), over the transport [`crate::transport`] built with the service.

use lettre::{AsyncSmtpTransport, Tokio1Executor};

use super::classify::smtp_error;
use super::{FailureReason, ProbeError, ProbeSuccess};
use crate::config::{SmtpCheck, SmtpServer};

/// An SMTP check's transport, built once with its service, or why none could be.
pub(crate) type Built = Result<AsyncSmtpTransport<Tokio1Executor>, ProbeError>;

pub(crate) async fn check(
    check: &SmtpCheck,
    transport: &Built,
) -> Result<ProbeSuccess, ProbeError> {
    let transport = transport.as_ref().map_err(Clone::clone)?;
    let server = match &check.server {
        SmtpServer::Address { host, port } => format!("{host}:{port}"),
        SmtpServer::Missing { variable } => variable.clone(),
    };
    match transport.test_connection().await {
        Ok(true) => Ok(ProbeSuccess::default()),
        Ok(false) => Err(ProbeError::new(
            FailureReason::Protocol,
            format!("{server}: NOOP was not accepted"),
        )),
        Err(error) => Err(smtp_error(&error, &server)),
    }
}
