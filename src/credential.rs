//! The values breakerd must never show: a [`Secret`] (redacted wherever it is printed) and a
//! provider's [`Credential`] (a secret, or what to set when it is missing).

use std::fmt;

/// A value that must never reach a log, an API answer, a metric or an error.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it to its provider.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A provider credential: set, or missing (the check then fails with reason `auth`, and the
/// rest of the daemon runs).
#[derive(Clone, Debug, PartialEq)]
pub enum Credential {
    /// The value.
    Set(Secret),
    /// Not available; the check reports what to set.
    Missing {
        /// The config key.
        key: &'static str,
        /// The environment variable it names, if any.
        variable: Option<String>,
    },
}

impl Credential {
    /// The value, or a sentence saying what to set.
    pub fn value(&self) -> Result<&Secret, String> {
        match self {
            Credential::Set(secret) => Ok(secret),
            Credential::Missing {
                key,
                variable: Some(variable),
            } => Err(format!(
                "{key} is not set: environment variable {variable} is empty or unset"
            )),
            Credential::Missing {
                key,
                variable: None,
            } => Err(format!("{key} is not configured")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(
            format!("{secret} {secret:?}"),
            "<redacted> Secret(<redacted>)"
        );
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn a_missing_credential_says_what_to_set() {
        let missing = Credential::Missing {
            key: "consumer_key",
            variable: Some("MPESA_KEY".into()),
        };
        assert_eq!(
            missing.value().unwrap_err(),
            "consumer_key is not set: environment variable MPESA_KEY is empty or unset"
        );
        let set = Credential::Set(Secret::new("k"));
        assert_eq!(set.value().map(Secret::expose), Ok("k"));
    }
}
