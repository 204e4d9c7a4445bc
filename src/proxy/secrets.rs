//! The credentials a proxied request carries (its `Authorization` and API-key headers), kept
//! by reference while the call runs so that nothing the provider echoes back — in a message a
//! rule quotes — shows them in a cause, a page or a log. Nothing is copied unless a failure
//! needs redacting.

use axum::http::{HeaderMap, HeaderValue, header};

/// The request headers whose values are credentials.
const API_KEY_HEADERS: [&str; 3] = ["apikey", "api-key", "x-api-key"];

/// A request's credential headers.
#[derive(Debug, Default)]
pub(crate) struct RequestSecrets {
    authorization: Option<HeaderValue>,
    api_key: Option<HeaderValue>,
}

impl RequestSecrets {
    /// The credentials among `headers` (shared, not copied).
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        Self {
            authorization: headers.get(header::AUTHORIZATION).cloned(),
            api_key: API_KEY_HEADERS
                .iter()
                .find_map(|name| headers.get(*name))
                .cloned(),
        }
    }

    /// Each secret as text: a bearer token, a Basic pair and its two halves, an API key.
    pub(crate) fn values(&self) -> Vec<String> {
        let mut values = Vec::new();
        if let Some(authorization) = self.authorization.as_ref().and_then(|v| v.to_str().ok()) {
            let (scheme, credentials) =
                authorization.split_once(' ').unwrap_or(("", authorization));
            let credentials = credentials.trim();
            values.push(credentials.to_string());
            if scheme.eq_ignore_ascii_case("basic") {
                use base64::Engine as _;
                if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials)
                    && let Ok(pair) = String::from_utf8(decoded)
                {
                    if let Some((user, password)) = pair.split_once(':') {
                        values.push(user.to_string());
                        values.push(password.to_string());
                    }
                    values.push(pair);
                }
            }
        }
        if let Some(key) = self.api_key.as_ref().and_then(|v| v.to_str().ok()) {
            values.push(key.to_string());
        }
        values.retain(|value| !value.is_empty());
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_basic_and_api_keys_are_found() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dGVzdC1rZXk6dGVzdC1zZWNyZXQ="),
        );
        headers.insert("apiKey", HeaderValue::from_static("at-key-1"));
        let values = RequestSecrets::of(&headers).values();
        assert_eq!(
            values,
            [
                "dGVzdC1rZXk6dGVzdC1zZWNyZXQ=",
                "test-key",
                "test-secret",
                "test-key:test-secret",
                "at-key-1"
            ]
        );
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer eyJ.abc"),
        );
        assert_eq!(RequestSecrets::of(&bearer).values(), ["eyJ.abc"]);
        assert!(RequestSecrets::of(&HeaderMap::new()).values().is_empty());
    }
}
