//! A DNS server on loopback (UDP) that answers from a fixed table, and fails the ways real
//! servers fail: NXDOMAIN for names it does not know, SERVFAIL for `broken.test`, silence for
//! `silent.test`.

use std::net::SocketAddr;

use tokio::net::UdpSocket;

/// One answer: a name, a type code (1 A, 28 AAAA, 5 CNAME, 15 MX, 16 TXT) and its RDATA.
pub struct Answer {
    pub name: &'static str,
    pub kind: u16,
    pub data: Vec<u8>,
}

pub struct DnsServer {
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    pub async fn start(answers: Vec<Answer>) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            while let Ok((count, peer)) = socket.recv_from(&mut buffer).await {
                if let Some(reply) = reply(&buffer[..count], &answers) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        Self { address, task }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The question's name (lowercase, no trailing dot), its type, and where the question ends.
fn question(query: &[u8]) -> Option<(String, u16, usize)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let length = usize::from(*query.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + length)?).to_lowercase());
        at += length;
    }
    let kind = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    Some((labels.join("."), kind, at + 4))
}

fn reply(query: &[u8], answers: &[Answer]) -> Option<Vec<u8>> {
    let (name, kind, end) = question(query)?;
    if name == "silent.test" {
        return None;
    }
    let known = answers.iter().any(|answer| answer.name == name);
    let rcode: u8 = match name.as_str() {
        "broken.test" => 2,
        _ if !known => 3,
        _ => 0,
    };
    let matching: Vec<&Answer> = answers
        .iter()
        .filter(|answer| answer.name == name && answer.kind == kind)
        .collect();
    let mut out = Vec::new();
    out.extend_from_slice(&query[..2]); // id
    out.extend_from_slice(&[0x81, 0x80 | rcode]); // a response, recursion desired and available
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&(matching.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..end]);
    for answer in matching {
        out.extend_from_slice(&[0xc0, 0x0c]); // the question's name
        out.extend_from_slice(&answer.kind.to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 0, 60]); // IN, TTL 60
        out.extend_from_slice(&(answer.data.len() as u16).to_be_bytes());
        out.extend_from_slice(&answer.data);
    }
    Some(out)
}

/// A TXT record's RDATA.
pub fn txt(text: &str) -> Vec<u8> {
    let mut data = vec![text.len() as u8];
    data.extend_from_slice(text.as_bytes());
    data
}
