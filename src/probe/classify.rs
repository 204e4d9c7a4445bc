//! Turns transport errors (hyper, rustls, I/O, lettre) into a bounded reason and a sentence that
//! carries no URL, so no query-string secret can leak into logs or the API.

use std::error::Error as StdError;
use std::io;

use crate::outcome::{FailureReason, ProbeError};
use crate::transport::connection::TransportError;
use crate::transport::reason::{io_reason, reason_in_chain};

/// The sentence for an error: its chain joined with ": ", without repeats.
fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    let text = parts.join(": ");
    // rustls' certificate errors reach us as text (the HTTP stack wraps them): say which.
    match text.split_once("invalid peer certificate: ") {
        Some((before, problem)) => {
            let words = if problem.starts_with("UnknownIssuer") {
                certificate_problem(&rustls::CertificateError::UnknownIssuer)
            } else if problem.starts_with("Expired") || problem.contains("expired") {
                certificate_problem(&rustls::CertificateError::Expired)
            } else if problem.starts_with("NotValidYet") {
                certificate_problem(&rustls::CertificateError::NotValidYet)
            } else if problem.starts_with("NotValidForName")
                || problem.contains("not valid for name")
            {
                certificate_problem(&rustls::CertificateError::NotValidForName)
            } else {
                format!("the server's certificate is not trusted: {problem}")
            };
            format!("{before}{words}")
        }
        None => text,
    }
}

/// What is wrong with a server's certificate, in words.
fn certificate_problem(problem: &rustls::CertificateError) -> String {
    use rustls::CertificateError as Problem;
    match problem {
        Problem::Expired | Problem::ExpiredContext { .. } => {
            "the server's certificate has expired".to_string()
        }
        Problem::NotValidYet | Problem::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet (or this machine's clock is wrong)"
                .to_string()
        }
        Problem::UnknownIssuer => "the server's certificate is not trusted: unknown issuer \
            (for a private CA, set ca_file)"
            .to_string(),
        Problem::NotValidForName | Problem::NotValidForNameContext { .. } => {
            "the server's certificate is not valid for this host name".to_string()
        }
        Problem::Revoked => "the server's certificate has been revoked".to_string(),
        other => format!("the server's certificate is not trusted: {other:?}"),
    }
}

/// A proxied request's failure (connect, TLS, the exchange) as a probe failure, named by host.
pub(crate) fn upstream_error(
    error: &crate::transport::upstream::UpstreamError,
    host: &str,
) -> ProbeError {
    ProbeError::new(error.reason(), format!("{host}: {}", describe(error)))
}

/// A proxied answer's body that broke off, as a probe failure named by host.
pub(crate) fn body_error(error: &hyper::Error, host: &str) -> ProbeError {
    ProbeError::new(
        crate::transport::reason::hyper_reason(error),
        format!("{host}: {}", describe(error)),
    )
}

/// A failure of a check's connection as a probe failure, named by host only.
pub(crate) fn transport_failure(error: &TransportError, host: &str) -> ProbeError {
    ProbeError::new(error.reason(), format!("{host}: {}", describe(error)))
}

/// An I/O failure (TCP connect) as a probe failure.
pub(crate) fn io_error(error: &io::Error, address: &str) -> ProbeError {
    let reason = io_reason(error.kind()).unwrap_or_else(|| {
        let text = error.to_string();
        if text.contains("failed to lookup address") || text.contains("Name or service not known") {
            FailureReason::Dns
        } else {
            FailureReason::Connect
        }
    });
    ProbeError::new(reason, format!("{address}: {error}"))
}

/// An SMTP failure as a probe failure: 535 and friends are `auth`, other replies `protocol`.
pub(crate) fn smtp_error(error: &lettre::transport::smtp::Error, server: &str) -> ProbeError {
    let code = error.status().map(|code| code.to_string());
    let words = describe(error);
    // lettre writes a reply as `transient error (421): 4.7.0 Try again later, …`.
    let reply = words.split_once("): ").map_or("", |(_, text)| text);
    let reason = if let Some(reason) = smtp_reply_reason(code.as_deref(), reply) {
        reason
    } else if error.is_timeout() {
        FailureReason::Timeout
    } else if error.is_tls() || (error.is_client() && error.to_string().contains("TLS")) {
        // lettre reports a server without STARTTLS as a client error.
        FailureReason::Tls
    } else if let Some(reason) = reason_in_chain(error) {
        reason
    } else if error.is_response()
        || error.is_permanent()
        || error.is_transient()
        || error.is_client()
    {
        FailureReason::Protocol
    } else {
        FailureReason::Connect
    };
    let said = code.map(|code| {
        let enhanced = enhanced_code(reply);
        crate::outcome::Said {
            operation: None,
            code: Some(match enhanced {
                Some(enhanced) => format!("{code} {enhanced}"),
                None => code,
            }),
            message: Some(crate::provider::rules::quote(
                reply
                    .trim_start_matches(enhanced.unwrap_or_default())
                    .trim(),
            ))
            .filter(|message| !message.is_empty()),
        }
    });
    let failure = ProbeError::new(reason, format!("{server}: {words}"));
    match said {
        Some(said) => failure.saying(said),
        None => failure,
    }
}

/// The enhanced status code (RFC 3463) a reply's text starts with: `4.7.0`.
fn enhanced_code(reply: &str) -> Option<&str> {
    let first = reply.split_whitespace().next()?;
    let mut parts = first.split('.');
    let class = parts.next()?;
    let valid = matches!(class, "2" | "4" | "5")
        && parts.clone().count() == 2
        && parts.all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    valid.then_some(first)
}

/// What an SMTP reply means, from its code, enhanced code and text, where the relays' published
/// replies say (`tests/fixtures/providers/smtp/`): a temporary 4.7.0 refusal ("try again
/// later", "too many login attempts") is throttling; 530 wanting STARTTLS is TLS; 534 and 535
/// are the credentials, but 535 5.7.139 (SMTP AUTH switched off for the tenant) and SendGrid's
/// 451 "Maximum credits exceeded" are our account's settings.
fn smtp_reply_reason(code: Option<&str>, reply: &str) -> Option<FailureReason> {
    let text = reply.to_ascii_lowercase();
    let enhanced = enhanced_code(reply);
    Some(match code? {
        "421" | "450" | "451" | "454" if enhanced == Some("4.7.0") || text.contains("too many") => {
            FailureReason::Throttled
        }
        "454" if text.contains("tls") => FailureReason::Tls,
        "530" if text.contains("starttls") => FailureReason::Tls,
        "535" if enhanced == Some("5.7.139") => FailureReason::Account,
        "530" | "534" | "535" | "538" => FailureReason::Auth,
        "451" if text.contains("credits") => FailureReason::Account,
        "554" if text.contains("no smtp service") => FailureReason::Connect,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds_map_to_reasons() {
        assert_eq!(
            io_reason(io::ErrorKind::ConnectionRefused),
            Some(FailureReason::Connect)
        );
        assert_eq!(
            io_reason(io::ErrorKind::ConnectionReset),
            Some(FailureReason::Reset)
        );
        assert_eq!(
            io_reason(io::ErrorKind::UnexpectedEof),
            Some(FailureReason::Reset)
        );
        assert_eq!(
            io_reason(io::ErrorKind::TimedOut),
            Some(FailureReason::Timeout)
        );
        assert_eq!(io_reason(io::ErrorKind::InvalidData), None);
    }

    #[test]
    fn descriptions_follow_the_chain_without_repeats() {
        let inner = io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer");
        let outer = io::Error::other(inner);
        assert_eq!(describe(&outer), "connection reset by peer");
        assert_eq!(reason_in_chain(&outer), Some(FailureReason::Reset));
    }
}
