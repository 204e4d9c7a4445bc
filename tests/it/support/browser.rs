//! A real headless Chromium (Debian's chromium and chromium-driver) driven over the W3C
//! WebDriver protocol by plain HTTP calls.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::Client,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    pub async fn start() -> Self {
        let port = super::closed_port();
        // Its own process group, so that the browsers it starts go with it (killing chromedriver
        // alone leaves Chromium running after the tests).
        let driver = Command::new("chromedriver")
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver: install Debian's chromium and chromium-driver (see .ci/debian-packages)");
        super::wait_until_listening(port, "chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let profile = super::scratch_dir("chromium");
        // A stuck chromedriver (seen once when two suites ran at the same time) fails the test
        // instead of hanging it: no WebDriver command here takes a minute.
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("WebDriver client");
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1200,1000", format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let answer = post(&client, &format!("{base}/session"), capabilities).await;
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Self {
            driver,
            base,
            session,
            client,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    pub async fn open(&self, url: &str) {
        post(&self.client, &self.url("/url"), json!({ "url": url })).await;
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        let found = post(
            &self.client,
            &self.url("/element"),
            json!({ "using": "css selector", "value": css }),
        )
        .await;
        let id = found["value"][ELEMENT].as_str()?;
        let text = get(&self.client, &self.url(&format!("/element/{id}/text"))).await;
        text["value"].as_str().map(str::to_string)
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        let found = post(
            &self.client,
            &self.url("/elements"),
            json!({ "using": "css selector", "value": css }),
        )
        .await;
        found["value"].as_array().map_or(0, Vec::len)
    }

    /// The page as a PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        let shot = get(&self.client, &self.url("/screenshot")).await;
        let encoded = shot["value"].as_str().unwrap_or_default();
        decode_base64(encoded)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.driver.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn post(client: &reqwest::Client, url: &str, body: Value) -> Value {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    let text = response
        .expect("chromedriver answers")
        .text()
        .await
        .unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_default()
}

async fn get(client: &reqwest::Client, url: &str) -> Value {
    let text = client
        .get(url)
        .send()
        .await
        .expect("chromedriver answers")
        .text()
        .await
        .unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_default()
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = text.bytes().filter_map(value).collect();
    digits
        .chunks(4)
        .flat_map(|chunk| {
            let n = chunk.iter().fold(0u32, |acc, d| (acc << 6) | u32::from(*d))
                << (6 * (4 - chunk.len()));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes[..chunk.len().saturating_sub(1)].to_vec()
        })
        .collect()
}
