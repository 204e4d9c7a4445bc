//! The SMTP check: connect, EHLO, STARTTLS or implicit TLS, AUTH, NOOP, QUIT (lettre's
//! `test_connection`). The same transport settings serve the email alert channel.

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use super::classify::smtp_error;
use super::{FailureReason, ProbeError, ProbeSuccess, credential, install_crypto_provider};
use crate::config::{SmtpCheck, SmtpServer, SmtpTls};

/// A transport for `check`'s server, or why none can be built.
pub(crate) fn transport(
    check: &SmtpCheck,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, ProbeError> {
    install_crypto_provider();
    let (host, port) = match &check.server {
        SmtpServer::Address { host, port } => (host.as_str(), *port),
        SmtpServer::Missing { variable } => {
            // An unset variable is a missing credential, as for every other preset.
            return Err(ProbeError::new(
                FailureReason::Auth,
                format!("server is not set: environment variable {variable} is empty or unset"),
            ));
        }
    };
    let tls = match check.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::StartTls | SmtpTls::Tls => {
            let tls_error = |error: lettre::transport::smtp::Error| {
                ProbeError::new(FailureReason::Tls, format!("{host}: {error}"))
            };
            let mut parameters = TlsParameters::builder(host.to_string());
            for certificate in check.ca.iter().flat_map(|ca| &ca.certificates) {
                parameters = parameters.add_root_certificate(
                    lettre::transport::smtp::client::Certificate::from_der(certificate.to_vec())
                        .map_err(tls_error)?,
                );
            }
            let parameters = parameters.build_rustls().map_err(tls_error)?;
            if check.tls == SmtpTls::Tls {
                Tls::Wrapper(parameters)
            } else {
                Tls::Required(parameters)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        // The breaker's timeout cancels a hung check; this only bounds single reads.
        .timeout(None);
    if let Some((username, password)) = &check.credentials {
        let username = credential(username)?;
        let password = credential(password)?;
        builder = builder.credentials(Credentials::new(
            username.expose().to_string(),
            password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}

pub(crate) async fn check(check: &SmtpCheck) -> Result<ProbeSuccess, ProbeError> {
    let transport = transport(check)?;
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
