//! A fake of every HTTP provider on one loopback port: each preset's real path, answering with
//! the providers' own published answers (`tests/fixtures/providers/`, each naming its source),
//! and the ways real providers fail (slow, hang, 5xx, reset, any published error answer). A
//! raw HTTP/1.1 server, so it can also reset connections.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub const KEY: &str = "test-key";
pub const SECRET: &str = "test-secret";
/// `Basic base64(test-key:test-secret)`.
const BASIC: &str = "Basic dGVzdC1rZXk6dGVzdC1zZWNyZXQ=";
pub const AT_USERNAME: &str = "sandbox";
pub const AT_API_KEY: &str = "at-api-key-value";
pub const WA_PHONE_ID: &str = "106540352242922";
pub const WA_TOKEN: &str = "wa-token-value";

/// How the fake answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// Like the real provider on a good day.
    Healthy,
    /// Healthy, after a delay.
    Slow(Duration),
    /// Reads the request and never answers.
    Hang,
    /// Answers every request with this status and a short error body.
    Status(u16),
    /// Reads the request, then resets the connection (RST).
    Reset,
    /// Answers every request with this published answer (`provider/name`, as in
    /// `tests/fixtures/providers/`): Pesapal's HTTP 200 rejection, a WhatsApp number
    /// RESTRICTED, Daraja's "being processed"…
    Fixture(String),
    /// Answers requests to this published answer's own path with it (`provider/name`), and
    /// every other request as on a good day: the check goes on passing meanwhile.
    At(String),
    /// Answers requests with this method to this path with this published answer (`provider/
    /// name`), and every other request as on a good day: one operation fails (Daraja answers
    /// its internal errors in the same envelope on each of its APIs), the others work.
    AtPath {
        fixture: String,
        method: String,
        path: String,
    },
    /// Redirects every request, path and query kept, to another origin (`http://host:port`)
    /// with this status (301, 302, 303, 307, 308).
    Redirect(u16, String),
    /// A provider that echoes the whole request back (method, target, headers, body) in an
    /// HTTP 500 — as some do in their error pages.
    Echo,
}

/// A request the fake received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct FakeState {
    mode: Mode,
    requests: Vec<Recorded>,
    in_flight: usize,
    max_in_flight: usize,
}

/// The running fake.
pub struct FakeProvider {
    address: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    task: JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeProvider {
    pub async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake provider");
        let address = listener.local_addr().expect("fake provider address");
        let state = Arc::new(Mutex::new(FakeState {
            mode,
            requests: Vec::new(),
            in_flight: 0,
            max_in_flight: 0,
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Self {
            address,
            state,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The most requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }
}

/// One connection: requests one after another (keep-alive), each answered per the mode.
async fn serve(mut stream: TcpStream, state: Arc<Mutex<FakeState>>) {
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buffer).await else {
            return;
        };
        let mode = {
            let mut state = state.lock().unwrap();
            state.requests.push(request.clone());
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
            state.mode.clone()
        };
        let _answered = InFlight(state.clone());
        let mut extra = String::new();
        let published = match &mode {
            Mode::Fixture(name) => Some(super::fixtures::load(name)),
            Mode::At(name) => {
                let fixture = super::fixtures::load(name);
                let path = request.target.split('?').next().unwrap_or_default();
                if fixture.method == request.method && fixture.path() == path {
                    Some(fixture)
                } else {
                    published(&request)
                }
            }
            Mode::AtPath {
                fixture,
                method,
                path,
            } => {
                let target = request.target.split('?').next().unwrap_or_default();
                if *method == request.method && path == target {
                    Some(super::fixtures::load(fixture))
                } else {
                    published(&request)
                }
            }
            Mode::Healthy | Mode::Slow(_) => published(&request),
            _ => None,
        };
        if let Mode::Slow(delay) = mode {
            tokio::time::sleep(delay).await;
        }
        if let Some(fixture) = published {
            if stream.write_all(&fixture.response()).await.is_err() {
                return;
            }
            continue;
        }
        let (status, body) = match mode {
            Mode::Hang => {
                // Hold the connection until the client gives up.
                let mut sink = [0u8; 64];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            Mode::Reset => {
                let _ = stream.set_zero_linger();
                return;
            }
            Mode::Status(code) => (code, format!("{{\"error\":\"upstream answered {code}\"}}")),
            Mode::Redirect(code, to) => {
                extra = format!("Location: {to}{}\r\n", request.target);
                (code, "{\"moved\":true}".to_string())
            }
            Mode::Echo => {
                let headers: Vec<String> = request
                    .headers
                    .iter()
                    .map(|(name, value)| format!("{name}: {value}"))
                    .collect();
                let echo = format!(
                    "{} {}\n{}\n\n{}",
                    request.method,
                    request.target,
                    headers.join("\n"),
                    request.body
                );
                (500, echo)
            }
            // Not a provider: a plain health endpoint of the user's own.
            _ if request.target.starts_with("/health") => (200, r#"{"status":"ok"}"#.to_string()),
            _ => (404, r#"{"error":"not found"}"#.to_string()),
        };
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: keep-alive\r\n\r\n",
            reason_phrase(status),
            body.len()
        );
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(body.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

/// Counts a request as answered when dropped (answer written, connection reset or dropped).
struct InFlight(Arc<Mutex<FakeState>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut state) = self.0.lock() {
            state.in_flight -= 1;
        }
    }
}

async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Recorded> {
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buffer.len() < body_start + length {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let body = String::from_utf8_lossy(&buffer[body_start..body_start + length]).into_owned();
    buffer.drain(..body_start + length);
    Some(Recorded {
        method,
        target,
        headers,
        body,
    })
}

/// The published answer the real provider gives this request, when it has one: the
/// success with the right credentials, the provider's own rejection without them.
fn published(request: &Recorded) -> Option<super::fixtures::Fixture> {
    let path = request.target.split('?').next().unwrap_or("");
    let auth = request.header("authorization").unwrap_or("");
    let name = match (request.method.as_str(), path) {
        ("GET", "/oauth/v1/generate") => {
            if auth == BASIC && request.target.contains("grant_type=client_credentials") {
                "mpesa/oauth_success"
            } else {
                "mpesa/oauth_invalid_credentials"
            }
        }
        ("POST", "/mpesa/stkpush/v1/processrequest") => "mpesa/stk_push_success",
        ("POST", "/api/Auth/RequestToken") => {
            let json: serde_json::Value = serde_json::from_str(&request.body).unwrap_or_default();
            if json["consumer_key"] == KEY && json["consumer_secret"] == SECRET {
                "pesapal/request_token_success"
            } else {
                "pesapal/request_token_invalid_key_secret"
            }
        }
        ("GET", "/api/URLSetup/GetIpnList") => "pesapal/ipn_list_success",
        ("POST", "/token") => {
            if auth == BASIC {
                "kcb/token_success"
            } else {
                "kcb/token_invalid_client"
            }
        }
        ("GET", "/version1/user") => {
            let good = request.header("apikey") == Some(AT_API_KEY)
                && request.target.contains(&format!("username={AT_USERNAME}"));
            if good {
                "africastalking/user_balance"
            } else {
                "africastalking/user_bad_api_key"
            }
        }
        ("GET", p) if p.ends_with(&format!("/{WA_PHONE_ID}")) => {
            if auth == format!("Bearer {WA_TOKEN}") {
                "whatsapp/phone_number_status_connected"
            } else {
                "whatsapp/messages_token_expired"
            }
        }
        _ => return None,
    };
    Some(super::fixtures::load(name))
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
