//! The heads of the fast lane's exchanges, as bytes: a client's request head read (what it
//! asks, and whether the fast lane carries it or hyper should), the head sent on to the
//! upstream, the upstream's answer head read, and the head the client is sent. Headers pass in
//! order and unchanged but for the hop-by-hop ones (RFC 9110 7.6.1) and `Host`.

use std::ops::Range;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use bytes::{BufMut, BytesMut};

use super::framing::Framing;
use crate::provider::Headers;

/// The most headers a request head may have here (more: hyper takes it, with its own limit).
const MOST_HEADERS: usize = 64;

/// The most headers an answer may have (hyper's client's own limit).
const MOST_ANSWER_HEADERS: usize = 100;

/// The longest request head the fast lane reads (longer: hyper takes it, with its own limit).
pub(crate) const LONGEST_HEAD: usize = 16 * 1024;

/// The longest request body the fast lane holds (longer: hyper streams it).
pub(crate) const LONGEST_BODY: usize = 64 * 1024;

/// The longest answer head an upstream may send.
pub(crate) const LONGEST_ANSWER_HEAD: usize = 64 * 1024;

/// The headers the fast lane reads or drops, by name; any other passes as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    ContentLength,
    TransferEncoding,
    Connection,
    Host,
    Expect,
    Upgrade,
    /// Another hop-by-hop header (RFC 9110 7.6.1): no proxy passes it on.
    HopByHop,
    Other,
}

/// What header `name` is to the fast lane (its length first, so most names are told at once).
fn known(name: &str) -> Known {
    let is = |known: &str| name.eq_ignore_ascii_case(known);
    match name.len() {
        2 if is("te") => Known::HopByHop,
        4 if is("host") => Known::Host,
        6 if is("expect") => Known::Expect,
        7 if is("upgrade") => Known::Upgrade,
        7 if is("trailer") => Known::HopByHop,
        10 if is("connection") => Known::Connection,
        10 if is("keep-alive") => Known::HopByHop,
        14 if is("content-length") => Known::ContentLength,
        16 if is("proxy-connection") => Known::HopByHop,
        17 if is("transfer-encoding") => Known::TransferEncoding,
        18 if is("proxy-authenticate") => Known::HopByHop,
        19 if is("proxy-authorization") => Known::HopByHop,
        _ => Known::Other,
    }
}

/// A header's name and value, where they are in the buffer read.
pub(crate) type Spans = (Range<usize>, Range<usize>);

/// A client's request head, read.
#[derive(Debug)]
pub(crate) struct Asked {
    pub(crate) method: Method,
    /// The request target, as sent (origin form).
    pub(crate) target: Range<usize>,
    /// Where the body starts, and how long it is.
    pub(crate) head_len: usize,
    pub(crate) body_len: usize,
    /// The client asked to close the connection after the answer.
    pub(crate) close: bool,
    /// The headers passed on.
    pub(crate) kept: Vec<Spans>,
}

/// What a look at the bytes a client has sent finds.
#[derive(Debug)]
pub(crate) enum Reading {
    /// Not a whole request yet.
    Partial,
    /// A whole request the fast lane carries.
    Whole(Asked),
    /// Something hyper should take: another version, a body that streams or is announced
    /// otherwise, an upgrade, `Expect`, a head or body longer than the fast lane holds, or a
    /// head it cannot read (hyper answers that one).
    Hyper,
}

/// Reads the request at the start of `buffer`.
pub(crate) fn read_request(buffer: &[u8], kept: Vec<Spans>) -> Reading {
    let mut headers = [httparse::EMPTY_HEADER; MOST_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buffer.len() < LONGEST_HEAD => return Reading::Partial,
        _ => return Reading::Hyper,
    };
    let (Some(method), Some(target), Some(1)) = (request.method, request.path, request.version)
    else {
        return Reading::Hyper;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Reading::Hyper;
    };
    if !target.starts_with('/') {
        return Reading::Hyper;
    }
    let mut asked = Asked {
        method,
        target: span(buffer, target.as_bytes()),
        head_len,
        body_len: 0,
        close: false,
        kept,
    };
    asked.kept.clear();
    let mut length = None;
    for header in request.headers.iter() {
        match known(header.name) {
            Known::ContentLength => {
                let Some(value) =
                    decimal(header.value).filter(|value| *value <= LONGEST_BODY as u64)
                else {
                    return Reading::Hyper;
                };
                if length.is_some_and(|seen| seen != value) {
                    return Reading::Hyper;
                }
                length = Some(value);
            }
            Known::TransferEncoding | Known::Expect | Known::Upgrade => return Reading::Hyper,
            Known::Connection => {
                for option in header.value.split(|byte| *byte == b',') {
                    let option = option.trim_ascii();
                    if option.eq_ignore_ascii_case(b"close") {
                        asked.close = true;
                    } else if !option.is_empty() && !option.eq_ignore_ascii_case(b"keep-alive") {
                        // It names headers of its own to drop, or an upgrade: hyper's work.
                        return Reading::Hyper;
                    }
                }
                continue;
            }
            Known::Host | Known::HopByHop => continue,
            Known::Other => {}
        }
        asked.kept.push((
            span(buffer, header.name.as_bytes()),
            span(buffer, header.value),
        ));
    }
    asked.body_len = length.map_or(0, |length| length as usize);
    if buffer.len() < head_len + asked.body_len {
        return Reading::Partial;
    }
    Reading::Whole(asked)
}

/// Whether the request head at the start of `buffer` is whole.
pub(crate) fn head_is_whole(buffer: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; MOST_HEADERS];
    matches!(
        httparse::Request::new(&mut headers).parse(buffer),
        Ok(httparse::Status::Complete(_))
    )
}

impl Asked {
    /// The request's path and query, read from `buffer` (text: the parser took only that).
    pub(crate) fn path_and_query<'b>(&self, buffer: &'b [u8]) -> (&'b str, Option<&'b str>) {
        let target = std::str::from_utf8(&buffer[self.target.clone()]).unwrap_or("/");
        target
            .split_once('?')
            .map_or((target, None), |(path, query)| (path, Some(query)))
    }

    /// The request's headers as a map (for what reads them by name: the request's secrets).
    pub(crate) fn header_map(&self, buffer: &[u8]) -> HeaderMap {
        header_map(buffer, &self.kept)
    }
}

/// Writes the head of `asked` (read from `buffer`) for the upstream: `target` there (in
/// pieces), its `host`, the headers kept; then the body.
pub(crate) fn write_request(
    out: &mut BytesMut,
    buffer: &[u8],
    asked: &Asked,
    target: &[&str],
    host: &HeaderValue,
) {
    out.put_slice(asked.method.as_str().as_bytes());
    out.put_u8(b' ');
    for piece in target {
        out.put_slice(piece.as_bytes());
    }
    out.put_slice(b" HTTP/1.1\r\nhost: ");
    out.put_slice(host.as_bytes());
    out.put_slice(b"\r\n");
    put_headers(out, buffer, &asked.kept);
    out.put_slice(b"\r\n");
    out.put_slice(&buffer[asked.head_len..asked.head_len + asked.body_len]);
}

/// An upstream's answer head, read.
#[derive(Debug)]
pub(crate) struct Answered {
    pub(crate) status: u16,
    pub(crate) head_len: usize,
    pub(crate) framing: Framing,
    /// The upstream will close the connection after this answer (or it is HTTP/1.0).
    pub(crate) closes: bool,
    /// Its `Content-Length`, if it says one.
    pub(crate) length: Option<u64>,
    /// The headers passed on.
    pub(crate) kept: Vec<Spans>,
}

/// An upstream's answer head the proxy cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadAnswer {
    /// Not an HTTP/1.x answer head.
    Malformed,
    /// A head longer than [`LONGEST_ANSWER_HEAD`].
    TooLong,
    /// 101, to a request that asked for no upgrade.
    Switching,
    /// `Content-Length` and `Transfer-Encoding` both, or lengths that differ.
    Length,
}

impl BadAnswer {
    /// What the failure says.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            BadAnswer::Malformed => "the answer's head is malformed",
            BadAnswer::TooLong => "the answer's head is longer than 64 KiB",
            BadAnswer::Switching => {
                "the answer switches protocols, which the proxy never asked for"
            }
            BadAnswer::Length => {
                "the answer's length is unclear (Content-Length and Transfer-Encoding disagree)"
            }
        }
    }
}

/// Reads the answer at the start of `buffer` to a request of `method`: `None` while partial.
/// Informational answers (1xx) come back as read too: the caller skips them.
pub(crate) fn read_answer(
    buffer: &[u8],
    method: &Method,
    kept: Vec<Spans>,
) -> Result<Option<Answered>, BadAnswer> {
    let mut headers = [httparse::EMPTY_HEADER; MOST_ANSWER_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buffer.len() < LONGEST_ANSWER_HEAD => return Ok(None),
        Ok(httparse::Status::Partial) => return Err(BadAnswer::TooLong),
        Err(_) => return Err(BadAnswer::Malformed),
    };
    let (Some(status), Some(version)) = (response.code, response.version) else {
        return Err(BadAnswer::Malformed);
    };
    if status == 101 {
        return Err(BadAnswer::Switching);
    }
    let mut answered = Answered {
        status,
        head_len,
        framing: Framing::UntilClose,
        closes: version == 0,
        length: None,
        kept,
    };
    answered.kept.clear();
    let mut chunked = None;
    let mut named: Vec<&str> = Vec::new();
    for header in response.headers.iter() {
        let name = header.name;
        match known(name) {
            Known::ContentLength => {
                let value = decimal(header.value).ok_or(BadAnswer::Malformed)?;
                if answered.length.is_some_and(|seen| seen != value) {
                    return Err(BadAnswer::Length);
                }
                answered.length = Some(value);
            }
            Known::TransferEncoding => {
                let last = header.value.rsplit(|byte| *byte == b',').next();
                chunked =
                    Some(last.is_some_and(|coding| {
                        coding.trim_ascii().eq_ignore_ascii_case(b"chunked")
                    }));
            }
            Known::Connection => {
                let value = std::str::from_utf8(header.value).map_err(|_| BadAnswer::Malformed)?;
                for option in value.split(',').map(str::trim) {
                    if option.eq_ignore_ascii_case("close") {
                        answered.closes = true;
                    } else if option.eq_ignore_ascii_case("keep-alive") && version == 0 {
                        answered.closes = false;
                    } else if !option.is_empty() {
                        named.push(option);
                    }
                }
                continue;
            }
            Known::HopByHop | Known::Upgrade => continue,
            Known::Host | Known::Expect | Known::Other => {}
        }
        if named.iter().any(|drop| name.eq_ignore_ascii_case(drop)) {
            continue;
        }
        answered
            .kept
            .push((span(buffer, name.as_bytes()), span(buffer, header.value)));
    }
    if !named.is_empty() {
        // `Connection` may come after the headers it names.
        answered.kept.retain(|(name, _)| {
            let name = &buffer[name.clone()];
            !named
                .iter()
                .any(|drop| name.eq_ignore_ascii_case(drop.as_bytes()))
        });
    }
    answered.framing = if *method == Method::HEAD || status == 204 || status == 304 || status < 200
    {
        Framing::Empty
    } else {
        match (chunked, answered.length) {
            (Some(_), Some(_)) => return Err(BadAnswer::Length),
            (Some(true), None) => Framing::chunked(),
            (Some(false), None) => Framing::UntilClose,
            (None, Some(length)) => Framing::Length(length),
            (None, None) => Framing::UntilClose,
        }
    };
    if answered.framing == Framing::UntilClose {
        answered.closes = true;
    }
    Ok(Some(answered))
}

/// The headers of an answer read from `buffer`, for the rules that read them by name.
pub(crate) struct AnswerHeaders<'a> {
    pub(crate) buffer: &'a [u8],
    pub(crate) kept: &'a [Spans],
}

impl Headers for AnswerHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.kept
            .iter()
            .find(|(found, _)| self.buffer[found.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|(_, value)| std::str::from_utf8(&self.buffer[value.clone()]).ok())
    }
}

impl Answered {
    /// The answer's headers as a map (kept while its body arrives, for a verdict that waits on
    /// it).
    pub(crate) fn header_map(&self, buffer: &[u8]) -> HeaderMap {
        header_map(buffer, &self.kept)
    }
}

/// Writes the head the client is sent for `answered` (read from `buffer`): its status, the
/// headers kept, then `extra` ones (the proxy's own).
pub(crate) fn write_answer(
    out: &mut BytesMut,
    buffer: &[u8],
    answered: &Answered,
    extra: &[(&str, &[u8])],
) {
    write_status(out, answered.status);
    put_headers(out, buffer, &answered.kept);
    for (name, value) in extra {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
}

/// Writes the head of one of the proxy's own answers: `status`, `headers`, its body's
/// `length`, and `Connection: close` when the connection ends after it.
pub(crate) fn write_own(
    out: &mut BytesMut,
    status: StatusCode,
    headers: &HeaderMap,
    length: usize,
    close: bool,
) {
    write_status(out, status.as_u16());
    for (name, value) in headers {
        if name == axum::http::header::CONNECTION || name == axum::http::header::CONTENT_LENGTH {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"content-length: ");
    out.put_slice(length.to_string().as_bytes());
    out.put_slice(b"\r\n");
    if close {
        out.put_slice(b"connection: close\r\n");
    }
    out.put_slice(b"\r\n");
}

/// The status line for `status`, with its reason where it has a known one.
fn write_status(out: &mut BytesMut, status: u16) {
    out.put_slice(b"HTTP/1.1 ");
    // httparse reads three digits, and the proxy's own statuses have three.
    let digit = |place: u16| b'0' + u8::try_from(status / place % 10).unwrap_or(0);
    out.put_slice(&[digit(100), digit(10), digit(1), b' ']);
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason());
    out.put_slice(reason.unwrap_or("").as_bytes());
    out.put_slice(b"\r\n");
}

fn put_headers(out: &mut BytesMut, buffer: &[u8], kept: &[Spans]) {
    for (name, value) in kept {
        out.put_slice(&buffer[name.clone()]);
        out.put_slice(b": ");
        out.put_slice(&buffer[value.clone()]);
        out.put_slice(b"\r\n");
    }
}

fn header_map(buffer: &[u8], kept: &[Spans]) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(kept.len());
    for (name, value) in kept {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&buffer[name.clone()]),
            HeaderValue::from_bytes(&buffer[value.clone()]),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// Where `part` (a slice of `buffer`) sits in it.
fn span(buffer: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(buffer.as_ptr() as usize);
    start..start + part.len()
}

/// A decimal length: digits only, surrounding whitespace allowed.
fn decimal(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(wire: &[u8]) -> Asked {
        match read_request(wire, Vec::new()) {
            Reading::Whole(asked) => asked,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(wire)),
        }
    }

    fn names(buffer: &[u8], kept: &[Spans]) -> Vec<String> {
        kept.iter()
            .map(|(name, _)| String::from_utf8_lossy(&buffer[name.clone()]).into_owned())
            .collect()
    }

    #[test]
    fn a_plain_request_goes_on_with_its_headers_in_order_and_the_upstreams_host() {
        let wire = b"POST /mpesa/x?a=1 HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer t\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nContent-Length: 2\r\nX-Many: 1\r\nX-Many: 2\r\n\r\n{}GET";
        let asked = whole(wire);
        assert_eq!(asked.method, Method::POST);
        assert_eq!(&wire[asked.target.clone()], b"/mpesa/x?a=1");
        assert_eq!(asked.body_len, 2);
        assert!(!asked.close);
        assert_eq!(
            names(wire, &asked.kept),
            ["Authorization", "Content-Length", "X-Many", "X-Many"]
        );
        let mut out = BytesMut::new();
        write_request(
            &mut out,
            wire,
            &asked,
            &["/v1", "/", "x", "?", "a=1"],
            &HeaderValue::from_static("up:8080"),
        );
        assert_eq!(
            &out[..],
            b"POST /v1/x?a=1 HTTP/1.1\r\nhost: up:8080\r\nAuthorization: Bearer t\r\nContent-Length: 2\r\nX-Many: 1\r\nX-Many: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn what_hyper_should_take_is_left_to_it() {
        for wire in [
            &b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            b"GET /a HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET /a HTTP/1.1\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\n",
            b"GET /a HTTP/1.0\r\n\r\n",
            b"GET http://elsewhere/a HTTP/1.1\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"POST /a HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET /a HTTP/1.1\r\nBad Header\r\n\r\n",
        ] {
            assert!(
                matches!(read_request(wire, Vec::new()), Reading::Hyper),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        assert!(matches!(
            read_request(b"GET /a HTTP/1.1\r\nHo", Vec::new()),
            Reading::Partial
        ));
        assert!(matches!(
            read_request(
                b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nab",
                Vec::new()
            ),
            Reading::Partial
        ));
        assert!(whole(b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n").close);
    }

    #[test]
    fn an_answer_keeps_its_end_to_end_headers_and_says_how_its_body_ends() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: x-gone, keep-alive\r\nX-Gone: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let answered = read_answer(wire, &Method::GET, Vec::new())
            .unwrap()
            .unwrap();
        assert_eq!(answered.status, 200);
        assert_eq!(answered.framing, Framing::chunked());
        assert!(!answered.closes);
        assert_eq!(
            names(wire, &answered.kept),
            ["Content-Type", "Transfer-Encoding"]
        );
        let headers = AnswerHeaders {
            buffer: wire,
            kept: &answered.kept,
        };
        assert_eq!(headers.header("content-type"), Some("application/json"));
        let mut out = BytesMut::new();
        write_answer(&mut out, wire, &answered, &[("x-breakerd-fallback", b"b")]);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nx-breakerd-fallback: b\r\n\r\n"
        );

        let framing = |wire: &[u8], method| {
            read_answer(wire, &method, Vec::new())
                .unwrap()
                .unwrap()
                .framing
        };
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::GET),
            Framing::Length(5)
        );
        assert_eq!(
            framing(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                Method::HEAD
            ),
            Framing::Empty
        );
        assert_eq!(
            framing(b"HTTP/1.1 204 No Content\r\n\r\n", Method::GET),
            Framing::Empty
        );
        let close = read_answer(b"HTTP/1.1 200 OK\r\n\r\n", &Method::GET, Vec::new())
            .unwrap()
            .unwrap();
        assert_eq!((close.framing, close.closes), (Framing::UntilClose, true));
        assert!(
            read_answer(
                b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
                &Method::GET,
                Vec::new()
            )
            .unwrap()
            .unwrap()
            .closes
        );
        assert!(
            read_answer(b"HTTP/1.1 200 OK\r\nConte", &Method::GET, Vec::new())
                .unwrap()
                .is_none()
        );
        let bad = |wire: &[u8]| read_answer(wire, &Method::GET, Vec::new()).unwrap_err();
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            BadAnswer::Length
        );
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            BadAnswer::Length
        );
        assert_eq!(
            bad(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            BadAnswer::Switching
        );
        assert_eq!(bad(b"NOT HTTP\r\n\r\n"), BadAnswer::Malformed);
    }
}
