//! The headers a proxy must not pass on (RFC 9110, 7.6.1): the hop-by-hop ones, those the
//! `Connection` header names, and `Host` (the upstream's own is set by the client). Everything
//! else passes unchanged, in order, including repeated headers.

use axum::http::header::{self, HeaderMap, HeaderName};

/// Hop-by-hop headers, always dropped.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// `headers` without the hop-by-hop ones (and without `Host` when `drop_host`).
pub(crate) fn end_to_end(headers: &HeaderMap, drop_host: bool) -> HeaderMap {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let hop = HOP_BY_HOP.contains(name)
            || named.contains(name)
            || name.as_str() == "proxy-connection"
            || (drop_host && name == header::HOST);
        if !hop {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn hop_by_hop_headers_stay_behind_and_the_rest_pass_in_order() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9478"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        headers.append("x-many", HeaderValue::from_static("1"));
        headers.append("x-many", HeaderValue::from_static("2"));
        let kept = end_to_end(&headers, true);
        let names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["authorization", "x-many"]);
        let many: Vec<&HeaderValue> = kept.get_all("x-many").iter().collect();
        assert_eq!(many, ["1", "2"]);
        assert!(end_to_end(&headers, false).contains_key(header::HOST));
    }
}
