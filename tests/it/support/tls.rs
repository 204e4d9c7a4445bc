//! A private certificate authority (rcgen) and an HTTPS server on loopback (tokio-rustls) that
//! presents a certificate it signed, valid for 127.0.0.1, expiring when the test says.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA that signs server certificates.
pub struct Authority {
    certificate: rcgen::Certificate,
    key: KeyPair,
    /// What a server it signed for presents after its own certificate: the intermediates up
    /// to (not including) the root.
    chain: Vec<CertificateDer<'static>>,
}

impl Authority {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        Self {
            certificate,
            key,
            chain: Vec::new(),
        }
    }

    /// An intermediate CA signed by `self`, valid until `not_after`.
    pub fn intermediate(&self, name: &str, not_after: time::OffsetDateTime) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before =
            not_after.min(time::OffsetDateTime::now_utc()) - time::Duration::days(30);
        params.not_after = not_after;
        let key = KeyPair::generate().unwrap();
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .unwrap();
        let mut chain = vec![certificate.der().clone()];
        chain.extend(self.chain.iter().cloned());
        Self {
            certificate,
            key,
            chain,
        }
    }

    /// The CA certificate as PEM, for a `ca_file`.
    pub fn pem(&self) -> String {
        self.certificate.pem()
    }

    /// A server certificate for 127.0.0.1 named `name`, valid for 30 days, and its key, as PEM
    /// files in `dir` (for servers that read files).
    pub fn issue_files(
        &self,
        name: &str,
        dir: &std::path::Path,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        let now = time::OffsetDateTime::now_utc();
        let (certificate, key) = self.issue(
            name,
            now - time::Duration::days(1),
            now + time::Duration::days(30),
        );
        let certificate_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&certificate_path, certificate.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (certificate_path, key_path)
    }

    /// A server certificate for 127.0.0.1 named `name`, valid from `not_before` to `not_after`.
    fn sign(
        &self,
        name: &str,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let (certificate, key) = self.issue(name, not_before, not_after);
        (
            certificate.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }

    fn issue(
        &self,
        name: &str,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> (rcgen::Certificate, KeyPair) {
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().unwrap();
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .unwrap();
        (certificate, key)
    }
}

/// An HTTPS server answering every request `200 ok`.
pub struct TlsServer {
    pub address: SocketAddr,
    /// When its certificate expires, to the second.
    pub not_after: time::OffsetDateTime,
    task: tokio::task::JoinHandle<()>,
}

impl TlsServer {
    /// Serves a certificate of `authority` that expires `valid_for` from now (negative: expired).
    pub async fn start(authority: &Authority, name: &str, valid_for: time::Duration) -> Self {
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap();
        let not_after = now + valid_for;
        let not_before = now.min(not_after) - time::Duration::days(30);
        let (certificate, key) = authority.sign(name, not_before, not_after);
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                std::iter::once(certificate)
                    .chain(authority.chain.iter().cloned())
                    .collect(),
                key,
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16_384 {
                        match tls.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(count) => request.extend_from_slice(&buffer[..count]),
                        }
                    }
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self {
            address,
            not_after,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}/health", self.address)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
