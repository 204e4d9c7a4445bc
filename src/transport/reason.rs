//! The bounded reason of a failed connection or exchange, read from the error itself (I/O
//! kinds, rustls, hyper, and the texts the HTTP stacks wrap them in): the words checks, the
//! proxy and channels report a transport failure with.

use std::error::Error as StdError;
use std::io;

use crate::outcome::FailureReason;

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
