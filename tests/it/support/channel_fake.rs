//! A paging service's API on loopback (PagerDuty's Events API, Telegram's Bot API): answers
//! each request with the next of its scripted published answers (`tests/fixtures/channels/`),
//! then with its usual one, and records what it was sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Response, StatusCode, Uri};
use axum::routing::post;
use tokio::task::JoinHandle;

use super::fixtures::{Fixture, load_channel};

/// One request the fake got, and the status it answered.
#[derive(Clone, Debug)]
pub struct Sent {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
    pub status: u16,
}

impl Sent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

struct Script {
    next: Vec<Fixture>,
    usual: Fixture,
    sent: Vec<Sent>,
}

pub struct ChannelFake {
    pub address: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

impl Drop for ChannelFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ChannelFake {
    /// Answers with the fixtures `first` in turn, then always with `usual` (names as
    /// `kind/answer`).
    pub async fn start(usual: &str, first: &[&str]) -> Self {
        let script = Arc::new(Mutex::new(Script {
            next: first.iter().rev().map(|name| load_channel(name)).collect(),
            usual: load_channel(usual),
            sent: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the channel fake");
        let address = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/{*path}", post(answer))
            .with_state(Arc::clone(&script));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            script,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Everything sent to it, oldest first.
    pub fn sent(&self) -> Vec<Sent> {
        self.script.lock().unwrap().sent.clone()
    }

    /// The bodies it took (answered 2xx), as JSON.
    pub fn taken(&self) -> Vec<serde_json::Value> {
        self.sent()
            .iter()
            .filter(|sent| sent.status < 300)
            .map(Sent::json)
            .collect()
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let mut script = script.lock().unwrap();
    let fixture = script.next.pop().unwrap_or_else(|| script.usual.clone());
    script.sent.push(Sent {
        path: uri.path().to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        status: fixture.status,
    });
    let mut response = Response::builder()
        .status(StatusCode::from_u16(fixture.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (name, value) in &fixture.headers {
        if !name.eq_ignore_ascii_case("content-length") {
            response = response.header(name.as_str(), value.as_str());
        }
    }
    response.body(Body::from(fixture.body.clone())).unwrap()
}
