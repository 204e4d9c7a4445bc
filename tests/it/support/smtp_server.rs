//! A real SMTP server for the tests: aiosmtpd (Debian's python3-aiosmtpd) with a Mailbox
//! handler, started on a free loopback port and stopped on drop.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpServer {
    pub port: u16,
    /// The Maildir the server delivers into.
    pub mailbox: std::path::PathBuf,
    child: Child,
}

impl SmtpServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// An SMTPS server (TLS from the first byte) presenting `certificate` (PEM files).
    pub fn start_smtps(certificate: &std::path::Path, key: &std::path::Path) -> Self {
        Self::start_with(&[
            "--smtpscert".as_ref(),
            certificate.as_os_str(),
            "--smtpskey".as_ref(),
            key.as_os_str(),
        ])
    }

    fn start_with(extra: &[&std::ffi::OsStr]) -> Self {
        let port = super::closed_port();
        let mailbox = super::scratch_dir("mailbox").join("maildir");
        let child = Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .args(extra)
            .arg(&mailbox)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd: install Debian's python3-aiosmtpd (see .ci/debian-packages)");
        let server = Self {
            port,
            mailbox,
            child,
        };
        super::wait_until_listening(port, "aiosmtpd");
        server
    }
}

impl SmtpServer {
    /// Every message delivered so far, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let Ok(listing) = std::fs::read_dir(self.mailbox.join("new")) else {
            return Vec::new();
        };
        let mut paths: Vec<_> = listing
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .collect();
        paths.sort();
        paths
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until something accepts connections on `port`, or fails the test after 20 s.
pub fn wait_until_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on port {port}"
        );
        std::thread::yield_now();
    }
}
