//! The TLS settings HTTP checks connect with: the one root store's (see [`crate::transport`]),
//! no session resumption (so every new connection shows and verifies the server's
//! certificate), and an observer reporting the chain the server presented, for its earliest
//! expiry, into the run's observation slot.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::observed;
use crate::transport::{Alpn, ClientError, Sessions, Trust, client_config};

/// The settings of checks' connections: `trust`'s roots, HTTP/1.1, full handshakes, the
/// presented chain observed.
pub(crate) fn check_config(trust: &Trust) -> Result<rustls::ClientConfig, ClientError> {
    let reader = Arc::new(ChainReader(Arc::clone(trust.verifier())));
    client_config(reader, Alpn::Http1, Sessions::Full)
}

/// The root store's verifier, reading the presented chain first: the leaf's issuer and subject,
/// and the earliest expiry of any certificate in it (recorded before verifying, so an
/// expired or untrusted chain is seen too).
#[derive(Debug)]
struct ChainReader(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for ChainReader {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(mut leaf) = super::certificate::parse(end_entity) {
            let earliest = intermediates
                .iter()
                .filter_map(|certificate| super::certificate::parse(certificate))
                .map(|certificate| certificate.not_after)
                .min();
            if let Some(earliest) = earliest {
                leaf.not_after = leaf.not_after.min(earliest);
            }
            observed::certificate(leaf);
        }
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.0.root_hint_subjects()
    }
}
