//! A fake SMTP relay that answers one stage of a session (the greeting, EHLO, STARTTLS, AUTH,
//! NOOP or QUIT) with a published reply (`tests/fixtures/providers/smtp/*.smtp`) and every other
//! stage as a relay on a good day. The real server of the happy path is aiosmtpd
//! (`smtp_server`); this one fails the ways real relays do.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::fixtures;

/// One published SMTP reply.
#[derive(Clone, Debug)]
pub struct SmtpFixture {
    pub name: String,
    pub sources: Vec<String>,
    /// CONNECT, EHLO, STARTTLS, AUTH, NOOP or QUIT.
    pub stage: String,
    pub expect: String,
    /// The reply's lines, as sent.
    pub reply: Vec<String>,
}

/// Every `.smtp` fixture.
pub fn all() -> Vec<SmtpFixture> {
    let folder = fixtures::root().join("smtp");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .expect("smtp fixtures")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "smtp"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read fixture");
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            let mut fixture = SmtpFixture {
                name,
                sources: Vec::new(),
                stage: String::new(),
                expect: String::new(),
                reply: Vec::new(),
            };
            for line in text.lines() {
                match line
                    .strip_prefix("# ")
                    .and_then(|meta| meta.split_once(": "))
                {
                    Some(("source", value)) => fixture.sources.push(value.to_string()),
                    Some(("stage", value)) => fixture.stage = value.trim().to_string(),
                    Some(("expect", value)) => fixture.expect = value.trim().to_string(),
                    Some(_) => {}
                    None if line.starts_with('#') || line.trim().is_empty() => {}
                    None => fixture.reply.push(line.to_string()),
                }
            }
            fixture
        })
        .collect()
}

/// A relay answering `fixture`'s stage with its reply.
pub struct SmtpFake {
    pub address: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for SmtpFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpFake {
    pub async fn start(fixture: &SmtpFixture) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let fixture = fixture.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, fixture.clone()));
            }
        });
        Self { address, task }
    }
}

async fn session(stream: tokio::net::TcpStream, fixture: SmtpFixture) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let reply = |stage: &str, normal: &str| -> String {
        if fixture.stage == stage {
            fixture.reply.join("\r\n") + "\r\n"
        } else {
            normal.to_string()
        }
    };
    let closes = |text: &str| text.starts_with("421") || text.starts_with("554");
    let greeting = reply("CONNECT", "220 relay.example ESMTP ready\r\n");
    if write.write_all(greeting.as_bytes()).await.is_err() || closes(&greeting) {
        return;
    }
    let starttls = if fixture.stage == "STARTTLS" {
        "250-STARTTLS\r\n"
    } else {
        ""
    };
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" | "HELO" => reply(
                "EHLO",
                &format!("250-relay.example\r\n{starttls}250 AUTH PLAIN LOGIN\r\n"),
            ),
            "STARTTLS" => reply(
                "STARTTLS",
                "454 TLS not available due to temporary reason\r\n",
            ),
            "AUTH" => reply("AUTH", "235 2.7.0 Authentication successful\r\n"),
            "NOOP" => reply("NOOP", "250 2.0.0 OK\r\n"),
            "QUIT" => reply("QUIT", "221 2.0.0 Bye\r\n"),
            _ => "502 5.5.2 Command not recognized\r\n".to_string(),
        };
        if write.write_all(answer.as_bytes()).await.is_err() || verb == "QUIT" || closes(&answer) {
            return;
        }
    }
}
