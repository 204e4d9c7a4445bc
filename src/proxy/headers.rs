//! The headers a proxy must not pass on (RFC 9110, 7.6.1): the hop-by-hop ones, those the
//! `Connection` header names, and `Host` (the upstream's own is set by the client). Everything
//! else passes unchanged, in order, including repeated headers.

use axum::http::HeaderValue;
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

/// Removes the hop-by-hop headers from `headers`, and sets `Host` to `host` where it is given
/// (in place: the header keeps its position) or removes it where not; the rest stay, in order,
/// repeated headers included. Headers without a hop-by-hop one are not copied.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, host: Option<HeaderValue>) {
    match host {
        Some(host) => {
            headers.insert(header::HOST, host);
        }
        None if headers.contains_key(header::HOST) => {
            drop_where(headers, |name| name == header::HOST);
        }
        None => {}
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let hop = |name: &HeaderName| {
        HOP_BY_HOP.contains(name) || named.contains(name) || name.as_str() == "proxy-connection"
    };
    if headers.keys().any(hop) {
        drop_where(headers, hop);
    }
}

/// Drops the headers named so (every value), keeping the others in order (a removal in place
/// would move the last header into the gap).
fn drop_where(headers: &mut HeaderMap, drop: impl Fn(&HeaderName) -> bool) {
    let mut kept = HeaderMap::with_capacity(headers.len());
    let mut current: Option<(HeaderName, bool)> = None;
    for (name, value) in headers.drain() {
        if let Some(name) = name {
            let dropped = drop(&name);
            current = Some((name, dropped));
        }
        if let Some((name, false)) = &current {
            kept.append(name.clone(), value);
        }
    }
    *headers = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut kept = headers.clone();
        strip_hop_by_hop(&mut kept, None);
        let names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["authorization", "x-many"]);
        let many: Vec<&HeaderValue> = kept.get_all("x-many").iter().collect();
        assert_eq!(many, ["1", "2"]);
        let mut upstream = headers.clone();
        strip_hop_by_hop(
            &mut upstream,
            Some(HeaderValue::from_static("up.example:8443")),
        );
        let names: Vec<&str> = upstream.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            ["host", "authorization", "x-many"],
            "Host keeps its place"
        );
        assert_eq!(upstream[header::HOST], "up.example:8443");
    }

    #[test]
    fn headers_without_a_hop_by_hop_one_stay_as_they_are() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        headers.append("x-many", HeaderValue::from_static("1"));
        headers.append("x-many", HeaderValue::from_static("2"));
        headers.insert(header::USER_AGENT, HeaderValue::from_static("wrk"));
        let before = headers.clone();
        strip_hop_by_hop(&mut headers, None);
        assert_eq!(headers, before);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["accept", "x-many", "user-agent"]);
    }
}
