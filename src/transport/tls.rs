//! The one TLS root store every outgoing connection verifies servers with — the platform's
//! trusted roots, read once, plus a service's or channel's `ca_file` — and the rustls (ring)
//! client settings built from it.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionStore, Resumption, Tls12ClientSessionValue};
use rustls::client::{Tls12Resumption, Tls13ClientSessionValue, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, NamedGroup, RootCertStore,
    SignatureScheme,
};

use super::ClientError;

/// The certificate authorities servers are verified against: the platform's (read once, by
/// [`Trust::platform`]) and, where configured, a `ca_file`'s ([`Trust::with_roots`], which
/// reads nothing). Cheap to clone.
#[derive(Clone)]
pub struct Trust {
    platform: Arc<Platform>,
    /// The `ca_file` roots, if any.
    extra: Vec<CertificateDer<'static>>,
    verifier: Arc<dyn ServerCertVerifier>,
}

/// The platform's roots, as read, and the verifier over them.
struct Platform {
    certificates: Vec<CertificateDer<'static>>,
    verifier: Arc<WebPkiServerVerifier>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("platform_roots", &self.platform.certificates.len())
            .field("extra_roots", &self.extra.len())
            .finish()
    }
}

impl Trust {
    /// The platform's trusted roots (`SSL_CERT_FILE`/`SSL_CERT_DIR` where set, else the
    /// system's store). Reads files: call it at startup or off the async runtime, once.
    ///
    /// # Errors
    /// The platform has no root rustls can use.
    pub fn platform() -> Result<Self, ClientError> {
        super::install_crypto_provider();
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!("a platform CA certificate could not be read: {error}");
        }
        let mut store = RootCertStore::empty();
        let (_, ignored) = store.add_parsable_certificates(loaded.certs.iter().cloned());
        if ignored > 0 {
            tracing::warn!("{ignored} platform CA certificates were ignored as unusable");
        }
        if store.is_empty() {
            return Err(ClientError::NoPlatformRoots);
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider())
            .build()
            .map_err(|error| ClientError::Verifier(error.to_string()))?;
        let platform = Arc::new(Platform {
            certificates: loaded.certs,
            verifier,
        });
        Ok(Self {
            verifier: Arc::clone(&platform.verifier) as Arc<dyn ServerCertVerifier>,
            platform,
            extra: Vec::new(),
        })
    }

    /// The platform's roots and `roots` (a `ca_file`'s); the platform's are shared, not read
    /// again, so this does no I/O.
    ///
    /// # Errors
    /// A certificate rustls will not take as a root.
    pub fn with_roots(&self, roots: &[CertificateDer<'static>]) -> Result<Self, ClientError> {
        if roots.is_empty() {
            return Ok(self.without_extra());
        }
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root.clone())?;
        }
        let own = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider())
            .build()
            .map_err(|error| ClientError::Verifier(error.to_string()))?;
        Ok(Self {
            verifier: Arc::new(Layered {
                own,
                platform: Arc::clone(&self.platform.verifier),
            }),
            platform: Arc::clone(&self.platform),
            extra: roots.to_vec(),
        })
    }

    /// The platform's roots alone.
    fn without_extra(&self) -> Self {
        Self {
            verifier: Arc::clone(&self.platform.verifier) as Arc<dyn ServerCertVerifier>,
            platform: Arc::clone(&self.platform),
            extra: Vec::new(),
        }
    }

    /// The verifier of server certificates over these roots.
    pub(crate) fn verifier(&self) -> &Arc<dyn ServerCertVerifier> {
        &self.verifier
    }

    /// Every root, the platform's then the `ca_file`'s (for TLS stacks that take a list).
    pub(crate) fn certificates(&self) -> impl Iterator<Item = &CertificateDer<'static>> {
        self.platform.certificates.iter().chain(&self.extra)
    }
}

/// The ring provider every TLS setting uses.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The application protocols a client offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// HTTP/1.1 only: what checks speak.
    Http1,
    /// HTTP/2 or HTTP/1.1, the server's choice (reqwest's clients).
    Any,
}

/// Whether TLS sessions are resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sessions {
    /// Never: every handshake is a full one and shows the server's certificate (checks, so each
    /// sees and verifies the chain).
    Full,
    /// As rustls does by default (the proxy's many connections to one upstream).
    Resumed,
}

/// A client configuration verifying servers with `verifier`.
pub(crate) fn client_config(
    verifier: Arc<dyn ServerCertVerifier>,
    alpn: Alpn,
    sessions: Sessions,
) -> Result<rustls::ClientConfig, ClientError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    if sessions == Sessions::Full {
        config.resumption =
            Resumption::store(Arc::new(NoResumption)).tls12_resumption(Tls12Resumption::Disabled);
    }
    config.alpn_protocols = match alpn {
        Alpn::Http1 => vec![b"http/1.1".to_vec()],
        Alpn::Any => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(config)
}

/// A `ca_file`'s roots first, then the platform's: a certificate the `ca_file` does not know
/// the issuer of is verified as any other; anything else the `ca_file`'s verifier says (an
/// expired certificate from the private CA, a wrong name) stands.
#[derive(Debug)]
struct Layered {
    own: Arc<WebPkiServerVerifier>,
    platform: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for Layered {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.own.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => self
                .platform
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            verified => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.platform
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.platform
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.platform.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        None
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
