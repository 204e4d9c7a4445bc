//! A fake of every HTTP provider on one loopback port: each preset's real path, headers and
//! answer bodies, and the ways real providers fail (slow, hang, 5xx, reset, Pesapal's HTTP 200
//! error body, WhatsApp throttling). A raw HTTP/1.1 server, so it can also reset connections.

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
    /// Pesapal rejecting the credentials: HTTP 200 with an error body.
    PesapalRejects,
    /// WhatsApp rate-limiting: HTTP 400 with Meta error code 130429.
    WhatsAppThrottled,
    /// WhatsApp with a quality rating other than GREEN.
    WhatsAppQuality(&'static str),
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
            Mode::Slow(delay) => {
                tokio::time::sleep(delay).await;
                answer(&request, &Mode::Healthy)
            }
            other => answer(&request, &other),
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

/// What the real provider answers at this path.
fn answer(request: &Recorded, mode: &Mode) -> (u16, String) {
    let path = request.target.split('?').next().unwrap_or("");
    let auth = request.header("authorization").unwrap_or("");
    match (request.method.as_str(), path) {
        ("GET", "/oauth/v1/generate") => {
            if auth != BASIC || !request.target.contains("grant_type=client_credentials") {
                return (400, r#"{"requestId":"","errorCode":"400.008.01","errorMessage":"Invalid Authentication passed"}"#.into());
            }
            (
                200,
                r#"{"access_token":"c9SQxWWhmdVRlyh0zh8gZDTkubVF","expires_in":"3599"}"#.into(),
            )
        }
        ("POST", "/api/Auth/RequestToken") => {
            let json: serde_json::Value = serde_json::from_str(&request.body).unwrap_or_default();
            let good = json["consumer_key"] == KEY && json["consumer_secret"] == SECRET;
            if !good || *mode == Mode::PesapalRejects {
                return (200, r#"{"token":null,"expiryDate":"0001-01-01T00:00:00","error":{"error_type":"api_error","code":"invalid_consumer_key_or_secret_provided","message":"Invalid consumer_key or consumer_secret provided"},"status":"500","message":null}"#.into());
            }
            (200, r#"{"token":"eyJhbGciOiJIUzI1NiJ9","expiryDate":"2026-11-27T10:00:00Z","error":null,"status":"200","message":"Request processed successfully"}"#.into())
        }
        ("POST", "/token") => {
            if auth != BASIC {
                return (401, r#"{"fault":{"code":900901,"message":"Invalid Credentials","description":"Invalid Credentials. Make sure you have provided the correct security credentials"}}"#.into());
            }
            (200, r#"{"access_token":"eyJ4NXQiOiJNell","scope":"default","token_type":"Bearer","expires_in":3600}"#.into())
        }
        ("GET", "/version1/user") => {
            if request.header("apikey") != Some(AT_API_KEY)
                || !request.target.contains(&format!("username={AT_USERNAME}"))
            {
                return (401, "The supplied authentication is invalid".into());
            }
            if request.header("accept") != Some("application/json") {
                return (200, "<AfricasTalkingResponse><UserData><balance>KES 1234.5000</balance></UserData></AfricasTalkingResponse>".into());
            }
            (200, r#"{"UserData":{"balance":"KES 1234.5000"}}"#.into())
        }
        ("GET", p) if p == format!("/v21.0/{WA_PHONE_ID}") => {
            if auth != format!("Bearer {WA_TOKEN}") {
                return (401, r#"{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"A1"}}"#.into());
            }
            match mode {
                Mode::WhatsAppThrottled => (400, r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"A2"}}"#.into()),
                Mode::WhatsAppQuality(rating) => (200, format!(r#"{{"quality_rating":"{rating}","display_phone_number":"+254 700 000000","verified_name":"Haven","id":"{WA_PHONE_ID}"}}"#)),
                _ => (200, format!(r#"{{"quality_rating":"GREEN","display_phone_number":"+254 700 000000","verified_name":"Haven","id":"{WA_PHONE_ID}"}}"#)),
            }
        }
        ("GET", "/health") => (200, r#"{"status":"ok"}"#.into()),
        _ => (404, r#"{"error":"not found"}"#.into()),
    }
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
