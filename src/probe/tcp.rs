//! The TCP check: a connection is made (and closed at once).

use tokio::net::TcpStream;

use super::classify::io_error;
use super::{ProbeError, ProbeSuccess};
use crate::config::TcpCheck;

pub(crate) async fn check(check: &TcpCheck) -> Result<ProbeSuccess, ProbeError> {
    match TcpStream::connect(&check.address).await {
        Ok(_stream) => Ok(ProbeSuccess::default()),
        Err(error) => Err(io_error(&error, &check.address)),
    }
}
