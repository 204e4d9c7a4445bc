//! Turns transport errors (hyper, rustls, I/O, lettre) into a bounded reason and a sentence that
//! carries no URL, so no query-string secret can leak into logs or the API.

use std::error::Error as StdError;
use std::io;

use super::transport::TransportError;
use super::{FailureReason, ProbeError};

/// The reason of an I/O error kind, if it says something specific.
pub(crate) fn io_reason(kind: io::ErrorKind) -> Option<FailureReason> {
    match kind {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable => Some(FailureReason::Connect),
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Some(FailureReason::Reset),
        io::ErrorKind::TimedOut => Some(FailureReason::Timeout),
        _ => None,
    }
}

/// Walks an error's sources for the most specific reason.
pub(crate) fn reason_in_chain(error: &(dyn StdError + 'static)) -> Option<FailureReason> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(io_error) = error.downcast_ref::<io::Error>() {
            if let Some(reason) = io_reason(io_error.kind()) {
                return Some(reason);
            }
            // An I/O error's `source` skips the error it wraps; look inside it too.
            if let Some(reason) = io_error.get_ref().and_then(|inner| reason_in_chain(inner)) {
                return Some(reason);
            }
        }
        if error.downcast_ref::<rustls::Error>().is_some() {
            return Some(FailureReason::Tls);
        }
        let text = error.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return Some(FailureReason::Dns);
        }
        if text.contains("connection closed before message completed") {
            return Some(FailureReason::Reset);
        }
        current = error.source();
    }
    None
}

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

/// A reqwest failure as a probe failure, named by host only.
pub(crate) fn http_error(error: reqwest::Error, host: &str) -> ProbeError {
    let error = error.without_url();
    let reason = if error.is_timeout() {
        FailureReason::Timeout
    } else {
        reason_in_chain(&error).unwrap_or(if error.is_connect() {
            FailureReason::Connect
        } else {
            FailureReason::Protocol
        })
    };
    ProbeError::new(reason, format!("{host}: {}", describe(&error)))
}

/// The reason of an HTTP/1.1 failure on a check's connection.
pub(crate) fn hyper_reason(error: &hyper::Error) -> FailureReason {
    if error.is_timeout() {
        FailureReason::Timeout
    } else if let Some(reason) = reason_in_chain(error) {
        reason
    } else if error.is_incomplete_message() || error.is_canceled() || error.is_closed() {
        FailureReason::Reset
    } else {
        FailureReason::Protocol
    }
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
    let reason = if matches!(code.as_deref(), Some("530" | "534" | "535" | "538")) {
        FailureReason::Auth
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
    ProbeError::new(reason, format!("{server}: {}", describe(error)))
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
