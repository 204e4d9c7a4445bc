//! The API's one error type: each variant becomes a JSON answer with the right status. An
//! internal failure is logged in full and shown to the client in brief.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::error;

/// What can go wrong answering a request.
#[derive(Debug)]
pub enum ApiError {
    /// No service of that name; lists the ones there are.
    UnknownService {
        /// The name asked for.
        name: String,
        /// The configured names.
        known: Vec<String>,
    },
    /// The request is malformed or a value is out of bounds.
    BadRequest(String),
    /// The body is larger than the API accepts.
    PayloadTooLarge(String),
    /// The body is not JSON.
    UnsupportedMediaType(String),
    /// No or wrong bearer token on an admin route.
    Unauthorized,
    /// Admin routes are off because no token is configured.
    AdminDisabled,
    /// Outcome reports for this service are off: no report token applies.
    ReportsDisabled(String),
    /// No or wrong report token.
    WrongReportToken,
    /// No or wrong heartbeat token.
    WrongHeartbeatToken,
    /// The client's address presented too many wrong tokens lately: refused until
    /// `retry_after` seconds have passed.
    TooManyFailures {
        /// Seconds until the address is heard again.
        retry_after: u64,
    },
    /// No such route.
    NoRoute(String),
    /// The route exists; the thing it names does not (e.g. an ended silence).
    NotFound(String),
    /// The route exists, not for this method (`METHOD /path` as asked); the router adds the
    /// `Allow` header.
    MethodNotAllowed(String),
    /// A reload found problems in the config file; the running config is unchanged.
    InvalidConfig(Vec<String>),
    /// The daemon serves as many of these as it will; try later or another way.
    Unavailable(String),
    /// Something broke inside; the detail goes to the log only.
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::UnknownService { name, known } => (
                StatusCode::NOT_FOUND,
                json!({
                    "error": format!("unknown service \"{name}\"; known services: {}", known.join(", ")),
                    "knownServices": known,
                }),
            ),
            ApiError::BadRequest(message) => (StatusCode::BAD_REQUEST, json!({ "error": message })),
            ApiError::PayloadTooLarge(message) => {
                (StatusCode::PAYLOAD_TOO_LARGE, json!({ "error": message }))
            }
            ApiError::UnsupportedMediaType(message) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({ "error": message }),
            ),
            ApiError::Unauthorized => {
                return bearer_challenge(
                    "admin route: send the admin token as `Authorization: Bearer <token>`",
                );
            }
            ApiError::ReportsDisabled(service) => (
                StatusCode::FORBIDDEN,
                json!({ "error": format!("outcome reports for {service} are off: set report_token on the service or server.report_token to turn them on") }),
            ),
            ApiError::WrongReportToken => {
                return bearer_challenge(
                    "outcome reports: send the report token as `Authorization: Bearer <token>` (the admin token does not work here)",
                );
            }
            ApiError::WrongHeartbeatToken => {
                return bearer_challenge(
                    "heartbeat: send the service's token as `Authorization: Bearer <token>` or `?token=`",
                );
            }
            ApiError::TooManyFailures { retry_after } => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({ "error": format!(
                        "too many wrong tokens from this address: token-guarded routes refuse it for {retry_after} s more"
                    ) })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                return response;
            }
            ApiError::AdminDisabled => (
                StatusCode::FORBIDDEN,
                json!({ "error": "admin routes are off: set server.admin_token in the config to turn them on" }),
            ),
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, json!({ "error": message })),
            ApiError::NoRoute(route) => (
                StatusCode::NOT_FOUND,
                json!({ "error": format!("no route {route}") }),
            ),
            ApiError::MethodNotAllowed(route) => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "error": format!("{route}: method not allowed on this route (its Allow header lists the methods it takes)") }),
            ),
            ApiError::InvalidConfig(problems) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({
                    "error": "the config file has problems; the running config is unchanged",
                    "problems": problems,
                }),
            ),
            ApiError::Unavailable(message) => {
                (StatusCode::SERVICE_UNAVAILABLE, json!({ "error": message }))
            }
            ApiError::Internal(detail) => {
                error!("internal error answering a request: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": "internal error; see the daemon's log" }),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(format!(
                "request body is larger than {} bytes",
                super::MAX_BODY_BYTES
            )),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".to_string(),
            ),
            _ => ApiError::BadRequest(format!("malformed JSON body: {}", rejection.body_text())),
        }
    }
}

/// A 401 that says which token to send, with the `WWW-Authenticate: Bearer` challenge.
fn bearer_challenge(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": message })),
    )
        .into_response()
}
