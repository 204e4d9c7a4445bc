//! A webhook receiver on loopback: answers with scripted statuses (then 200) and records what
//! it was sent, when.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::task::JoinHandle;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
    pub status: u16,
    pub at: SystemTime,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

#[derive(Default)]
struct Script {
    statuses: Vec<u16>,
    always: Option<u16>,
    received: Vec<Received>,
}

pub struct Receiver {
    pub address: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Starts on a free port; the first requests get `statuses`, the rest 200.
    pub async fn start(statuses: &[u16]) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), statuses).await
    }

    /// Starts on `address`.
    pub async fn start_on(address: SocketAddr, statuses: &[u16]) -> Self {
        let script = Arc::new(Mutex::new(Script {
            statuses: statuses.iter().rev().copied().collect(),
            ..Script::default()
        }));
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .expect("bind receiver");
        let address = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/{*path}", post(receive))
            .route("/", post(receive))
            .with_state(script.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            script,
            task,
        }
    }

    /// Answers every further request with `status`.
    pub fn always(&self, status: u16) {
        self.script.lock().unwrap().always = Some(status);
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Everything received, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// What was accepted (answered 2xx).
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.status < 300)
            .collect()
    }

    /// The bodies of what was accepted, as JSON.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.accepted().iter().map(Received::json).collect()
    }

    /// What Alertmanager sent this receiver with `status` (`firing` or `resolved`).
    pub fn alertmanager_said(&self, status: &str) -> Vec<serde_json::Value> {
        self.bodies()
            .into_iter()
            .filter(|n| n["status"] == status)
            .collect()
    }
}

/// Each notification's `(from, to)`.
pub fn changes(notifications: &[serde_json::Value]) -> Vec<(String, String)> {
    notifications
        .iter()
        .map(|n| {
            let state = |key: &str| n[key].as_str().unwrap_or_default().to_string();
            (state("from"), state("to"))
        })
        .collect()
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = SystemTime::now();
    let mut script = script.lock().unwrap();
    let status = script.statuses.pop().or(script.always).unwrap_or(200);
    script.received.push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
        at,
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}
