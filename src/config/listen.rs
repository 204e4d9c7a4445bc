//! Listen addresses as operators write them: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT`, a host
//! name resolved when the config is loaded (IPv4 first, as Prometheus' `localhost:9090` binds).

use std::net::{SocketAddr, ToSocketAddrs as _};

use thiserror::Error;

/// Why a listen address cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ListenError {
    /// Not `HOST:PORT`.
    #[error(
        "\"{0}\" is not an address: write HOST:PORT or IP:PORT, e.g. \"127.0.0.1:9477\" or \"localhost:9477\""
    )]
    Shape(String),
    /// The host name did not resolve.
    #[error("\"{text}\": the host name does not resolve ({reason})")]
    Unresolved {
        /// The address as written.
        text: String,
        /// What the resolver said.
        reason: String,
    },
}

/// The socket address `text` names; a host name is resolved now (this may block: call it off
/// the async runtime).
pub fn resolve_listen(text: &str) -> Result<SocketAddr, ListenError> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let shape = || ListenError::Shape(text.to_string());
    let (host, port) = text.rsplit_once(':').ok_or_else(shape)?;
    let port: u16 = port.parse().map_err(|_| shape())?;
    let is_host_name = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !is_host_name {
        return Err(shape());
    }
    let unresolved = |reason: String| ListenError::Unresolved {
        text: text.to_string(),
        reason,
    };
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|error| unresolved(error.to_string()))?
        .collect();
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
        .ok_or_else(|| unresolved("no addresses".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_host_names_resolve() {
        assert_eq!(
            resolve_listen("127.0.0.1:9477").unwrap(),
            "127.0.0.1:9477".parse().unwrap()
        );
        assert_eq!(
            resolve_listen("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert_eq!(
            resolve_listen("localhost:9477").unwrap(),
            "127.0.0.1:9477".parse().unwrap(),
            "IPv4 first"
        );
    }

    #[test]
    fn bad_shapes_say_what_to_write() {
        for text in [
            "localhost",
            "localhost:80:80",
            ":80",
            "host name:80",
            "localhost:99999",
        ] {
            assert_eq!(
                resolve_listen(text),
                Err(ListenError::Shape(text.to_string())),
                "{text}"
            );
        }
        // Names that do not resolve are not tried here: finding out would ask a DNS server.
    }
}
