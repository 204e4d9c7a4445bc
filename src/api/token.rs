//! Bearer tokens: reading one from `Authorization`, and comparing it without leaking through
//! timing where it differs.

use axum::http::{HeaderMap, header};

use crate::config::Secret;

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 9110, 11.1) and may be followed by more than one space.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// Compares without stopping at the first difference, so timing tells nothing about the
/// token but its length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Whether `headers` carry `Authorization: Bearer <token>` with exactly `token`.
pub(crate) fn presents(headers: &HeaderMap, token: &Secret) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or("");
    constant_time_eq(presented.as_bytes(), token.expose().as_bytes())
}

/// Whether `presented` (say, a `?token=` value) is exactly `token`.
pub(crate) fn matches(presented: &str, token: &Secret) -> bool {
    constant_time_eq(presented.as_bytes(), token.expose().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_content_and_length() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn only_the_bearer_scheme_carries_a_token() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        let mut headers = HeaderMap::new();
        let token = Secret::new("abc");
        assert!(!presents(&headers, &token), "no header");
        headers.insert(header::AUTHORIZATION, "BEARER abc".parse().unwrap());
        assert!(presents(&headers, &token));
    }
}
