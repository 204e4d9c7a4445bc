//! The TLS settings HTTP checks connect with: the platform's trusted roots (plus a service's
//! `ca_file`), no session resumption (so every new connection shows and verifies the server's
//! certificate), and an observer reporting the chain the server presented, for its earliest
//! expiry, into the run's observation slot.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionStore, Resumption, Tls12ClientSessionValue};
use rustls::client::{Tls12Resumption, Tls13ClientSessionValue};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, DistinguishedName, NamedGroup, SignatureScheme};

use super::observed;

/// The application protocols a client offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// HTTP/1.1 only: what checks speak.
    Http1,
    /// HTTP/2 or HTTP/1.1, the server's choice (alert channels, through reqwest).
    Any,
}

/// A client configuration for checks, trusting the platform's roots and `extra_roots`.
pub(crate) fn client_config(
    extra_roots: Vec<CertificateDer<'static>>,
    alpn: Alpn,
) -> Result<rustls::ClientConfig, rustls::Error> {
    client_config_with(&verifier(extra_roots)?, alpn)
}

/// The verifier of server certificates: the platform's roots and `extra_roots` (loading the
/// platform's roots takes milliseconds: build it once and share it).
pub(crate) fn verifier(
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<Arc<dyn ServerCertVerifier>, rustls::Error> {
    super::install_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let platform = rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider)?;
    Ok(Arc::new(ChainReader(platform)))
}

/// A client configuration verifying servers with `verifier`.
pub(crate) fn client_config_with(
    verifier: &Arc<dyn ServerCertVerifier>,
    alpn: Alpn,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(verifier))
        .with_no_client_auth();
    config.resumption =
        Resumption::store(Arc::new(NoResumption)).tls12_resumption(Tls12Resumption::Disabled);
    config.alpn_protocols = match alpn {
        Alpn::Http1 => vec![b"http/1.1".to_vec()],
        Alpn::Any => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(config)
}

/// The platform's verifier, reading the presented chain first: the leaf's issuer and subject,
/// and the earliest expiry of any certificate in it (recorded before verifying, so an
/// expired or untrusted chain is seen too).
#[derive(Debug)]
struct ChainReader(rustls_platform_verifier::Verifier);

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

/// A session store that keeps nothing, so that every handshake is a full one.
#[derive(Debug)]
struct NoResumption;

impl ClientSessionStore for NoResumption {
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }

    fn set_tls12_session(&self, _: ServerName<'static>, _: Tls12ClientSessionValue) {}

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        None
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(&self, _: ServerName<'static>, _: Tls13ClientSessionValue) {}

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        None
    }
}
