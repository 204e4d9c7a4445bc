//! A minimal local HTTP target for `scripts/load_test.py`, on the address given as the first
//! argument: `GET /health` answers a small JSON body; `GET /flap` hangs (never answers) for 20 s,
//! then answers for 20 s, and so on — a provider that keeps going down and coming back.
//! For `scripts/proxy_bench.py`: `GET /download/{bytes}` streams that many bytes in 64 KiB
//! chunks, and `POST /upload` reads a body of any size as it arrives and answers its length.
//! With `--tls DIR` it serves HTTPS instead, with a certificate for 127.0.0.1 from a private CA
//! it makes at start and writes to `DIR/ca.pem` (for `scripts/scale_test.py`'s handshake cost).

use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::routing::{get, post};
use futures_util::StreamExt;

/// One chunk of a download.
const CHUNK: usize = 64 * 1024;

fn main() -> std::io::Result<()> {
    let address: SocketAddr = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 18080)));
    let tls_dir = std::env::args().skip_while(|arg| arg != "--tls").nth(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = Router::new()
            .route("/health", get(|| async { r#"{"status":"ok"}"# }))
            .route("/flap", get(flap))
            .route("/download/{bytes}", get(download))
            .route("/upload", post(upload));
        let listener = tokio::net::TcpListener::bind(address).await?;
        match tls_dir {
            Some(dir) => serve_https(listener, app, FsPath::new(&dir)).await,
            None => axum::serve(listener, app).await,
        }
    })
}

/// Serves `app` over TLS with a fresh private CA's certificate for 127.0.0.1, the CA written
/// to `dir/ca.pem`.
async fn serve_https(
    listener: tokio::net::TcpListener,
    app: Router,
    dir: &FsPath,
) -> std::io::Result<()> {
    let invalid = |error: rcgen::Error| std::io::Error::other(error.to_string());
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(invalid)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "load target CA");
    let ca_key = rcgen::KeyPair::generate().map_err(invalid)?;
    let ca = ca_params.self_signed(&ca_key).map_err(invalid)?;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string()]).map_err(invalid)?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    let key = rcgen::KeyPair::generate().map_err(invalid)?;
    let certificate = params.signed_by(&key, &ca, &ca_key).map_err(invalid)?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let key_der = tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(vec![certificate.der().clone()], key_der.into())
        })
        .map_err(std::io::Error::other)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        let (stream, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn flap() -> &'static str {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    if (seconds / 20) % 2 == 0 {
        std::future::pending::<()>().await;
    }
    r#"{"status":"ok"}"#
}

async fn download(Path(bytes): Path<usize>) -> axum::response::Response {
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let chunks = futures_util::stream::unfold(0usize, move |sent| {
        let chunk = chunk.clone();
        async move {
            (sent < bytes).then(|| {
                let size = CHUNK.min(bytes - sent);
                (Ok::<_, std::io::Error>(chunk.slice(..size)), sent + size)
            })
        }
    });
    axum::response::Response::builder()
        .header("content-length", bytes)
        .body(Body::from_stream(chunks))
        .unwrap_or_default()
}

async fn upload(body: Body) -> String {
    let mut stream = body.into_data_stream();
    let mut length = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        length += chunk.len();
    }
    format!("{{\"bytes\":{length}}}")
}
