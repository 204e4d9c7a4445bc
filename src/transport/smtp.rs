//! The SMTP transport (lettre, rustls with ring) of an SMTP check and of the email channel:
//! its server, STARTTLS or implicit TLS verified against the one root store, and its login.

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use super::Trust;
use crate::config::{Credential, Secret, SmtpCheck, SmtpServer, SmtpTls};
use crate::outcome::{FailureReason, ProbeError};

/// A transport for `check`'s server trusting `trust`'s roots and `check`'s `ca_file`, or why
/// none can be built. Reads nothing: build it once, with the service or channel.
pub(crate) fn transport(
    check: &SmtpCheck,
    trust: &Trust,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, ProbeError> {
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
            // lettre takes roots, not a verifier: the same roots, as a list.
            let mut parameters =
                TlsParameters::builder(host.to_string()).certificate_store(CertificateStore::None);
            let own = check.ca.iter().flat_map(|ca| &ca.certificates);
            for certificate in trust.certificates().chain(own) {
                parameters = parameters.add_root_certificate(
                    Certificate::from_der(certificate.to_vec()).map_err(tls_error)?,
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

/// A credential's value, or an `auth` failure saying what to set.
pub(crate) fn credential(credential: &Credential) -> Result<&Secret, ProbeError> {
    credential
        .value()
        .map_err(|why| ProbeError::new(FailureReason::Auth, why))
}
