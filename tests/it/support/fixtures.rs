//! The providers' published answers in `tests/fixtures/providers/` (format in that folder's
//! README): read for the fake providers to serve and for the rule tests to judge.

use std::path::{Path, PathBuf};

/// The folder of every provider's fixtures.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/providers")
}

/// One published HTTP answer.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// `mpesa/stk_query_pending`.
    pub name: String,
    pub provider: String,
    pub sources: Vec<String>,
    pub method: String,
    /// The path (and query) below the base URL.
    pub target: String,
    /// The verdict in words: `success`, `failure http_status`, `caller pending`, …
    pub expect: String,
    /// The paths that judge it: `check`, `proxy`, `report` (all three unless the file says).
    pub paths: Vec<String>,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Fixture {
    /// The path without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }

    /// The answer as the fake sends it: status line, the file's headers (framing ones
    /// replaced), `Content-Length`, the body.
    pub fn response(&self) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for (name, value) in &self.headers {
            let lower = name.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "content-length" | "transfer-encoding" | "connection"
            ) {
                continue;
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// The fixture `provider/name` (without `.http`).
pub fn load(name: &str) -> Fixture {
    let path = root().join(format!("{name}.http"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    parse(name, &text).unwrap_or_else(|problem| panic!("{}: {problem}", path.display()))
}

/// Every HTTP fixture of every provider, by name.
pub fn all() -> Vec<Fixture> {
    let mut names = Vec::new();
    for provider in std::fs::read_dir(root()).expect("fixtures folder") {
        let provider = provider.expect("entry").path();
        if !provider.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&provider).expect("provider folder") {
            let file = file.expect("entry").path();
            if file.extension().is_some_and(|ext| ext == "http") {
                let provider_name = provider.file_name().unwrap().to_string_lossy().to_string();
                let stem = file.file_stem().unwrap().to_string_lossy().to_string();
                names.push(format!("{provider_name}/{stem}"));
            }
        }
    }
    names.sort();
    names.iter().map(|name| load(name)).collect()
}

fn parse(name: &str, text: &str) -> Result<Fixture, String> {
    let (provider, _) = name.split_once('/').ok_or("name is provider/file")?;
    let mut sources = Vec::new();
    let mut request = None;
    let mut expect = None;
    let mut paths = vec![
        "check".to_string(),
        "proxy".to_string(),
        "report".to_string(),
    ];
    let mut lines = text.split_inclusive('\n');
    let mut status_line = None;
    for line in lines.by_ref() {
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if let Some(meta) = trimmed.strip_prefix("# ") {
            let Some((key, value)) = meta.split_once(": ") else {
                continue;
            };
            match key {
                "source" => sources.push(value.to_string()),
                "request" => request = Some(value.to_string()),
                "expect" => expect = Some(value.trim().to_string()),
                "paths" => paths = value.split_whitespace().map(str::to_string).collect(),
                _ => {}
            }
            continue;
        }
        if trimmed.is_empty() && status_line.is_none() {
            continue;
        }
        status_line = Some(trimmed.to_string());
        break;
    }
    let status_line = status_line.ok_or("no status line")?;
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next();
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .ok_or("bad status line")?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    let mut body = String::new();
    let mut in_body = false;
    for line in lines {
        if in_body {
            body.push_str(line);
            continue;
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            in_body = true;
            continue;
        }
        let (name, value) = trimmed.split_once(':').ok_or("bad header line")?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let body = body.strip_suffix('\n').unwrap_or(&body).to_string();
    let request = request.ok_or("no request line")?;
    let (method, target) = request.split_once(' ').ok_or("request is METHOD /path")?;
    if sources.is_empty() {
        return Err("no source line".into());
    }
    Ok(Fixture {
        name: name.to_string(),
        provider: provider.to_string(),
        sources,
        method: method.to_string(),
        target: target.trim().to_string(),
        expect: expect.ok_or("no expect line")?,
        paths,
        status,
        reason,
        headers,
        body: body.into_bytes(),
    })
}

/// The alert channels' published answers in `tests/fixtures/channels/` (same format).
pub fn channel_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/channels")
}

/// The channel fixture `kind/name` (without `.http`).
pub fn load_channel(name: &str) -> Fixture {
    let path = channel_root().join(format!("{name}.http"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    parse(name, &text).unwrap_or_else(|problem| panic!("{}: {problem}", path.display()))
}
