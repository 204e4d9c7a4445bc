//! The credentials a proxied request carries (its `Authorization` and API-key headers, and
//! query parameters named like a credential, as Graph's `access_token`), kept by reference
//! while the call runs so that nothing the provider echoes back — in a message a rule quotes —
//! shows them in a cause, a page or a log. Nothing is copied unless the request has a query
//! naming a credential, or a failure needs redacting.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// The request headers whose values are credentials.
const API_KEY_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("apikey"),
    HeaderName::from_static("api-key"),
    HeaderName::from_static("x-api-key"),
];

/// Words that mark a query parameter as a credential.
const CREDENTIAL_WORDS: [&str; 5] = ["token", "key", "secret", "password", "signature"];

/// A request's credential headers and query.
#[derive(Debug, Default)]
pub(crate) struct RequestSecrets {
    authorization: Option<HeaderValue>,
    api_key: Option<HeaderValue>,
    /// The query, when a parameter of it is named like a credential.
    query: Option<String>,
}

impl RequestSecrets {
    /// The credentials among `headers` (shared, not copied) and in `query`.
    pub(crate) fn of(headers: &HeaderMap, query: Option<&str>) -> Self {
        let lowered = query.map(str::to_ascii_lowercase).unwrap_or_default();
        let query = query.filter(|_| CREDENTIAL_WORDS.iter().any(|word| lowered.contains(word)));
        Self {
            authorization: headers.get(header::AUTHORIZATION).cloned(),
            api_key: API_KEY_HEADERS
                .iter()
                .find_map(|name| headers.get(name))
                .cloned(),
            query: query.map(str::to_string),
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
        if let Some(query) = &self.query {
            for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
                let name = name.to_ascii_lowercase();
                if CREDENTIAL_WORDS.iter().any(|word| name.contains(word)) {
                    values.push(value.into_owned());
                }
            }
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
        let values =
            RequestSecrets::of(&headers, Some("fields=status&access_token=EAAG123")).values();
        assert_eq!(
            values,
            [
                "dGVzdC1rZXk6dGVzdC1zZWNyZXQ=",
                "test-key",
                "test-secret",
                "test-key:test-secret",
                "at-key-1",
                "EAAG123"
            ]
        );
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer eyJ.abc"),
        );
        assert_eq!(
            RequestSecrets::of(&bearer, Some("page=2")).values(),
            ["eyJ.abc"]
        );
        assert!(
            RequestSecrets::of(&HeaderMap::new(), None)
                .values()
                .is_empty()
        );
    }
}
