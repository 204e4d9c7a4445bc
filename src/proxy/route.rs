//! Where a proxied request goes: `/<service>/<rest>?<query>` to the service's upstream with
//! `<rest>` and the query appended — and nowhere else. Only configured services, only their
//! upstream's origin; absolute-form targets, `CONNECT`, and paths that try to climb out of
//! the upstream's path (`..`, `.`, encoded slashes or backslashes) are refused.

use std::sync::Arc;

use axum::http::uri::PathAndQuery;
use axum::http::{Method, Uri};

use crate::registry::{Registry, Service};
use crate::transport::upstream::Upstream;

/// Why a request cannot be proxied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The request is not one a sidecar forwards (400).
    BadRequest(String),
    /// No such service, or one without an upstream (404).
    NotFound(String),
}

/// A request's destination.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) service: Arc<Service>,
    /// Where, in the request's path, the path below the service's base URL starts.
    path_start: usize,
}

impl Route {
    /// The path below the service's base URL (`/mpesa/stkpush/v1/processrequest`), as the
    /// catalogue and the rules read it, from the request's path `uri_path`.
    pub(crate) fn path_in<'u>(&self, uri_path: &'u str) -> &'u str {
        uri_path
            .get(self.path_start..)
            .filter(|rest| rest.len() > 1)
            .unwrap_or("/")
    }
}

impl Route {
    /// Where the request goes: the service's upstream (every route's service has one).
    pub(crate) fn upstream(&self) -> Option<&Upstream> {
        self.service.upstream()
    }

    /// The request's target at the upstream, in origin form, in pieces to be written one after
    /// the other: the upstream's path, `/`, the rest of the request's `path`, then `?` and its
    /// `query` if it has one.
    pub(crate) fn target<'a>(&'a self, path: &'a str, query: Option<&'a str>) -> [&'a str; 5] {
        let base = self
            .service
            .config
            .upstream
            .as_ref()
            .map_or("", |upstream| upstream.path().trim_end_matches('/'));
        let below = path.get(self.path_start..).unwrap_or("");
        let rest = below.strip_prefix('/').unwrap_or(below);
        let mark = if query.is_some() { "?" } else { "" };
        [base, "/", rest, mark, query.unwrap_or("")]
    }

    /// The same target as a URI, or the refusal of one that is none.
    pub(crate) fn target_uri(&self, path: &str, query: Option<&str>) -> Result<Uri, Refusal> {
        PathAndQuery::try_from(self.target(path, query).concat())
            .map(Uri::from)
            .map_err(|_| Refusal::BadRequest("the path leaves the service's upstream".into()))
    }
}

/// The route of a request with `method` and `uri` among `registry`'s services.
pub(crate) fn resolve(method: &Method, uri: &Uri, registry: &Registry) -> Result<Route, Refusal> {
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(Refusal::BadRequest(
            "absolute-form request targets are not proxied: send /<service>/<path> to the proxy"
                .into(),
        ));
    }
    resolve_target(method, uri.path(), registry)
}

/// The route of a request with `method` on `path` (its target's, in origin form) among
/// `registry`'s services.
pub(crate) fn resolve_target(
    method: &Method,
    path: &str,
    registry: &Registry,
) -> Result<Route, Refusal> {
    if method == Method::CONNECT {
        return Err(Refusal::BadRequest(
            "CONNECT is not proxied: breakerd forwards requests to configured services only".into(),
        ));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(Refusal::BadRequest("the path must start with /".into()));
    };
    let (name, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if name.is_empty() {
        return Err(Refusal::NotFound(format!(
            "name a service first: /<service>/<path> (services: {})",
            registry.names().join(", ")
        )));
    }
    let Some(service) = registry.get(name) else {
        return Err(Refusal::NotFound(format!(
            "unknown service \"{name}\"; known services: {}",
            registry.names().join(", ")
        )));
    };
    if service.upstream().is_none() {
        return Err(Refusal::NotFound(format!(
            "service \"{name}\" has no upstream to proxy to (give a kind http service `upstream`; smtp and tcp services carry no HTTP)"
        )));
    }
    check_segments(rest)?;
    // `/<name>` comes first; what follows starts with its own `/`.
    to(service, rest, 1 + name.len())
}

impl Route {
    /// The same request (on `path`) sent to `fallback` instead (its upstream, the same path
    /// below it and query); `None` when the fallback has no upstream (a reload took it away).
    pub(crate) fn to_fallback(&self, fallback: &Arc<Service>, path: &str) -> Option<Route> {
        fallback.upstream()?;
        let below = path.get(self.path_start..)?;
        let rest = below.strip_prefix('/').unwrap_or(below);
        to(fallback, rest, self.path_start).ok()
    }
}

/// The route to `service` (which has an upstream) for a request whose path below the service starts at
/// `path_start`, its `rest` (after that) already checked.
fn to(service: &Arc<Service>, rest: &str, path_start: usize) -> Result<Route, Refusal> {
    if rest.contains('#') {
        return Err(Refusal::BadRequest(
            "the path leaves the service's upstream".into(),
        ));
    }
    Ok(Route {
        service: Arc::clone(service),
        path_start,
    })
}

/// Refuses a path that could climb out of the upstream's path once decoded.
fn check_segments(rest: &str) -> Result<(), Refusal> {
    let encoded = |code: &[u8]| {
        rest.as_bytes()
            .windows(3)
            .any(|window| window.eq_ignore_ascii_case(code))
    };
    if rest.contains('\\') || encoded(b"%2f") || encoded(b"%5c") {
        return Err(Refusal::BadRequest(
            "encoded slashes and backslashes are not proxied".into(),
        ));
    }
    if rest.split('/').any(is_dot_segment) {
        return Err(Refusal::BadRequest(
            "dot segments (. and ..) are not proxied: they would leave the service's upstream"
                .into(),
        ));
    }
    Ok(())
}

/// Whether `segment` is `.` or `..` once `%2e` is decoded.
fn is_dot_segment(segment: &str) -> bool {
    let mut dots = 0;
    let mut rest = segment.as_bytes();
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        let config = crate::config::Config::parse(
            "[services.mpesa]\npreset = \"mpesa\"\nbase_url = \"https://sandbox.safaricom.co.ke\"\n\
             [services.api]\nkind = \"http\"\nurl = \"https://api.example.com/health\"\nupstream = \"https://api.example.com/v2/\"\n\
             [services.mail]\npreset = \"smtp\"\nserver = \"smtp.example.com:587\"\n",
            "t.toml",
            &crate::config::ProcessEnvironment,
        )
        .unwrap();
        let metrics = crate::metrics::Metrics::new();
        let client = crate::probe::HttpClient::new().unwrap();
        Registry::build(&config, &client, &metrics).unwrap()
    }

    fn route(method: &str, target: &str) -> Result<String, Refusal> {
        let uri: Uri = target.parse().unwrap();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        resolve(&method, &uri, &registry()).map(|route| {
            let upstream = route.service.config.upstream.as_ref().unwrap();
            let target = route.target(uri.path(), uri.query()).concat();
            format!("{}{target}", &upstream[..url::Position::BeforePath])
        })
    }

    #[test]
    fn a_service_path_and_query_reach_its_upstream() {
        assert_eq!(
            route("POST", "/mpesa/mpesa/stkpush/v1/processrequest?x=1&y=%20"),
            Ok("https://sandbox.safaricom.co.ke/mpesa/stkpush/v1/processrequest?x=1&y=%20".into())
        );
        assert_eq!(
            route("GET", "/api/orders/7"),
            Ok("https://api.example.com/v2/orders/7".into()),
            "the upstream's own path is kept"
        );
        assert_eq!(
            route("GET", "/mpesa"),
            Ok("https://sandbox.safaricom.co.ke/".into())
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let bad = |method: &str, target: &str| match route(method, target) {
            Err(Refusal::BadRequest(_)) => true,
            other => panic!("{method} {target}: {other:?}"),
        };
        bad("GET", "http://evil.example.com/steal");
        bad("CONNECT", "/mpesa/");
        bad("GET", "/mpesa/../../etc/passwd");
        bad("GET", "/mpesa/a/%2e%2E/b");
        bad("GET", "/mpesa/a%2Fb");
        bad("GET", "/mpesa/a%5cb");
        bad("GET", "/mpesa/./x");
        let missing = |target: &str| matches!(route("GET", target), Err(Refusal::NotFound(_)));
        assert!(missing("/nope/x"), "unknown service");
        assert!(missing("/mail/x"), "an smtp service has no upstream");
        assert!(missing("/"), "no service named");
    }
}
