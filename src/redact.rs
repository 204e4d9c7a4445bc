//! Secrets out of what a check reports and what a channel sends. Every secret a check sends — and the forms it is sent
//! in: HTTP Basic, base64 alone, SMTP AUTH PLAIN, URL and JSON encoding — is replaced by
//! `<redacted>` in failure details and notes before they leave the probe, so a provider that
//! echoes the request back cannot put a credential into the API, the logs or an alert.

use crate::config::{Check, Credential, Secret};

/// What replaces a secret.
pub(crate) const REDACTED: &str = "<redacted>";
/// Values shorter than this are not searched for: they would mangle every detail.
const MIN_SECRET_CHARS: usize = 4;

/// The secrets of one check, in every form they travel in, longest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// Everything `check` sends that must never be shown.
    pub(crate) fn of(check: &Check) -> Self {
        let mut redactor = Self::default();
        let set = |credential: &Credential| match credential {
            Credential::Set(secret) => Some(secret.expose().to_string()),
            Credential::Missing { .. } => None,
        };
        match check {
            Check::Provider(check) => {
                let provider = check.provider;
                if let Some((user, password)) = provider.basic_auth {
                    let pair = check
                        .credential(user)
                        .and_then(set)
                        .zip(check.credential(password).and_then(set));
                    if let Some((user, password)) = pair {
                        redactor.add_raw(&base64(format!("{user}:{password}").as_bytes()));
                    }
                }
                redactor.add_all(
                    provider
                        .credentials
                        .iter()
                        .zip(&check.credentials)
                        .filter(|(key, _)| key.secret)
                        .filter_map(|(_, credential)| set(credential)),
                );
            }
            Check::Smtp(smtp) => {
                if let Some((user, password)) = &smtp.credentials {
                    let (user, password) = (set(user), set(password));
                    if let (Some(user), Some(password)) = (&user, &password) {
                        redactor.add_raw(&base64(format!("\0{user}\0{password}").as_bytes()));
                        redactor.add_raw(&base64(format!("{user}\0{user}\0{password}").as_bytes()));
                    }
                    redactor.add_all(password);
                }
            }
            Check::Http(http) => {
                redactor.add_all(http.headers.iter().map(|(_, value)| secret_text(value)));
                // A token may ride in the query string or the body: keep both out of sight.
                redactor.add_all(http.url.query_pairs().map(|(_, value)| value.into_owned()));
                redactor.add_all(http.body.clone());
            }
            Check::Tcp(_) | Check::Dns(_) => {}
            Check::Heartbeat(heartbeat) => redactor.add_all([secret_text(&heartbeat.token)]),
        }
        redactor
            .needles
            .sort_by_key(|needle| std::cmp::Reverse(needle.len()));
        redactor.needles.dedup();
        redactor
    }

    /// A redactor of `values` (secrets a request carried), in every form they travel in.
    pub(crate) fn of_values(values: &[String]) -> Self {
        let mut redactor = Self::default();
        redactor.add_all(values.iter().cloned());
        redactor
            .needles
            .sort_by_key(|needle| std::cmp::Reverse(needle.len()));
        redactor
    }

    /// Adds `secret` and the forms it is encoded in.
    fn add_all(&mut self, secrets: impl IntoIterator<Item = String>) {
        for secret in secrets {
            if secret.chars().count() < MIN_SECRET_CHARS {
                continue;
            }
            let url_encoded: String =
                url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            let json = serde_json::to_string(&secret).unwrap_or_default();
            let json_escaped = json.trim_matches('"').to_string();
            self.add_raw(&base64(secret.as_bytes()));
            self.add_raw(&url_encoded);
            self.add_raw(&url_encoded.replace('+', "%20"));
            self.add_raw(&json_escaped);
            self.add_raw(&secret);
        }
    }

    fn add_raw(&mut self, needle: &str) {
        if needle.chars().count() >= MIN_SECRET_CHARS && !self.needles.iter().any(|n| n == needle) {
            self.needles.push(needle.to_string());
        }
    }

    /// What a provider said, with every secret replaced.
    pub(crate) fn redact_said(&self, said: &mut crate::outcome::Said) {
        for text in [&mut said.code, &mut said.message].into_iter().flatten() {
            *text = self.redact(text);
        }
    }

    /// `text` with every secret replaced.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), REDACTED);
            }
        }
        text
    }
}

fn secret_text(secret: &Secret) -> String {
    secret.expose().to_string()
}

/// Standard base64 with padding (RFC 4648, section 4), as HTTP Basic and SMTP AUTH use.
pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Url;

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(
            base64(b"test-key:test-secret"),
            "dGVzdC1rZXk6dGVzdC1zZWNyZXQ=",
            "the fake provider's Basic credentials"
        );
    }

    #[test]
    fn every_form_of_a_secret_is_redacted() {
        let check = Check::Provider(crate::provider::ProviderCheck {
            provider: crate::provider::find("mpesa").unwrap(),
            environment: crate::provider::Environment::Sandbox,
            environment_set: false,
            base_url: Url::parse("https://sandbox.safaricom.co.ke").unwrap(),
            credentials: vec![
                Credential::Set(Secret::new("my key+1")),
                Credential::Set(Secret::new("s3cr\"et/")),
            ],
            settings: crate::provider::Settings::default(),
        });
        let redactor = Redactor::of(&check);
        let echoed = format!(
            "Authorization: Basic {} | key={} | json {{\"k\":\"{}\"}} | raw {} | b64 {}",
            base64(b"my key+1:s3cr\"et/"),
            "my+key%2B1",
            "s3cr\\\"et/",
            "my key+1",
            base64(b"s3cr\"et/"),
        );
        let shown = redactor.redact(&echoed);
        assert_eq!(
            shown,
            "Authorization: Basic <redacted> | key=<redacted> | json {\"k\":\"<redacted>\"} | raw <redacted> | b64 <redacted>"
        );
        assert_eq!(
            redactor.redact("HTTP 500: upstream down"),
            "HTTP 500: upstream down"
        );
    }

    #[test]
    fn smtp_passwords_are_redacted_in_their_auth_forms() {
        use crate::config::{SmtpCheck, SmtpServer, SmtpTls};
        let check = Check::Smtp(SmtpCheck {
            server: SmtpServer::Address {
                host: "smtp.example.com".into(),
                port: 587,
            },
            tls: SmtpTls::StartTls,
            credentials: Some((
                Credential::Set(Secret::new("alerts@example.com")),
                Credential::Set(Secret::new("hunter22")),
            )),
            ca: None,
        });
        let redactor = Redactor::of(&check);
        let plain = base64(b"\0alerts@example.com\0hunter22");
        let login = base64(b"hunter22");
        let said = format!("535 rejected: AUTH PLAIN {plain} / {login} / hunter22");
        assert_eq!(
            redactor.redact(&said),
            "535 rejected: AUTH PLAIN <redacted> / <redacted> / <redacted>"
        );
    }
}
