//! The provider presets: the request each provider's real endpoint expects, and a judge that
//! reads the answer the way that provider really answers (DESIGN.md, "Provider facts").

use http::{Method, StatusCode};

use super::http::{Answer, HttpClient, json_path};
use super::request::CheckRequest;
use super::{FailureReason, ProbeError, ProbeSuccess, credential};
use crate::config::{AfricasTalkingCheck, OAuthCheck, Url, WhatsAppCheck};

/// Meta's error codes that mean "slow down".
const WHATSAPP_THROTTLING_CODES: [i64; 3] = [4, 80007, 130429];
/// Meta's error code for an invalid or expired access token.
const WHATSAPP_AUTH_CODE: i64 = 190;

/// `base` with `path` appended (keeping any path prefix of `base`, as Pesapal's has).
fn endpoint(base: &Url, path: &str) -> Result<Url, ProbeError> {
    let joined = format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    Url::parse(&joined).map_err(|error| {
        ProbeError::new(
            FailureReason::Protocol,
            format!("bad URL {joined}: {error}"),
        )
    })
}

/// M-Pesa Daraja: `GET /oauth/v1/generate?grant_type=client_credentials`, HTTP Basic.
pub(crate) async fn mpesa(
    client: &HttpClient,
    check: &OAuthCheck,
) -> Result<ProbeSuccess, ProbeError> {
    let key = credential(&check.consumer_key)?;
    let secret = credential(&check.consumer_secret)?;
    let url = endpoint(
        &check.base_url,
        "/oauth/v1/generate?grant_type=client_credentials",
    )?;
    let request = CheckRequest::new(Method::GET, &url).basic_auth(key.expose(), secret.expose());
    judge_oauth_token(&client.send(request).await?)
}

/// KCB Buni: `POST /token?grant_type=client_credentials`, HTTP Basic.
pub(crate) async fn kcb(
    client: &HttpClient,
    check: &OAuthCheck,
) -> Result<ProbeSuccess, ProbeError> {
    let key = credential(&check.consumer_key)?;
    let secret = credential(&check.consumer_secret)?;
    let url = endpoint(&check.base_url, "/token?grant_type=client_credentials")?;
    let request = CheckRequest::new(Method::POST, &url)
        .basic_auth(key.expose(), secret.expose())
        .header("Content-Type", "application/x-www-form-urlencoded");
    judge_oauth_token(&client.send(request).await?)
}

/// Daraja and Buni: 200 with a non-empty `access_token`.
fn judge_oauth_token(answer: &Answer) -> Result<ProbeSuccess, ProbeError> {
    status_failure(answer, "check consumer_key and consumer_secret")?;
    let token = answer.json().and_then(|json| {
        json.get("access_token")
            .and_then(|t| t.as_str().map(str::to_owned))
    });
    match token {
        Some(token) if !token.is_empty() => Ok(ProbeSuccess::default()),
        _ => Err(ProbeError::new(
            FailureReason::Body,
            format!("HTTP 200 without an access_token: {}", answer.excerpt()),
        )),
    }
}

/// Pesapal 3.0: `POST /api/Auth/RequestToken` with JSON credentials. Pesapal answers 200 even
/// when it rejects them, with `"error": {...}` and `"status": "500"`: the body decides.
pub(crate) async fn pesapal(
    client: &HttpClient,
    check: &OAuthCheck,
) -> Result<ProbeSuccess, ProbeError> {
    let key = credential(&check.consumer_key)?;
    let secret = credential(&check.consumer_secret)?;
    let url = endpoint(&check.base_url, "/api/Auth/RequestToken")?;
    let body =
        serde_json::json!({ "consumer_key": key.expose(), "consumer_secret": secret.expose() });
    let request = CheckRequest::new(Method::POST, &url)
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body(body.to_string());
    judge_pesapal(&client.send(request).await?)
}

fn judge_pesapal(answer: &Answer) -> Result<ProbeSuccess, ProbeError> {
    status_failure(answer, "check consumer_key and consumer_secret")?;
    let Some(json) = answer.json() else {
        return Err(ProbeError::new(
            FailureReason::Body,
            format!("body is not JSON: {}", answer.excerpt()),
        ));
    };
    let error = json.get("error").filter(|error| !error.is_null());
    let status = json.get("status").and_then(|s| {
        s.as_str()
            .map(str::to_owned)
            .or_else(|| s.as_i64().map(|n| n.to_string()))
    });
    if error.is_some() || status.as_deref().is_some_and(|status| status != "200") {
        let code = error
            .and_then(|e| e.get("code"))
            .and_then(|c| c.as_str())
            .unwrap_or("");
        let message = error
            .and_then(|e| e.get("message"))
            .or_else(|| json.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or("no message");
        let reason =
            if code.contains("consumer") || code.contains("credential") || code.contains("auth") {
                FailureReason::Auth
            } else {
                FailureReason::Body
            };
        let shown_status = status.unwrap_or_else(|| "none".to_string());
        return Err(ProbeError::new(
            reason,
            format!("HTTP 200 with error {code} (status {shown_status}): {message}"),
        ));
    }
    match json.get("token").and_then(|t| t.as_str()) {
        Some(token) if !token.is_empty() => Ok(ProbeSuccess::default()),
        _ => Err(ProbeError::new(
            FailureReason::Body,
            "HTTP 200 without a token",
        )),
    }
}

/// Africa's Talking: `GET /version1/user?username=U` with `apiKey` and JSON requested (the
/// default is XML); 200 with `UserData.balance` such as `"KES 1234.5000"`.
pub(crate) async fn africastalking(
    client: &HttpClient,
    check: &AfricasTalkingCheck,
) -> Result<ProbeSuccess, ProbeError> {
    let username = credential(&check.username)?;
    let api_key = credential(&check.api_key)?;
    let mut url = endpoint(&check.base_url, "/version1/user")?;
    url.query_pairs_mut()
        .append_pair("username", username.expose());
    let request = CheckRequest::new(Method::GET, &url)
        .header("apiKey", api_key.expose())
        .header("Accept", "application/json");
    judge_africastalking(&client.send(request).await?, check.min_balance)
}

fn judge_africastalking(
    answer: &Answer,
    min_balance: Option<f64>,
) -> Result<ProbeSuccess, ProbeError> {
    status_failure(answer, "check username and api_key")?;
    let balance = answer.json().and_then(|json| {
        json_path(&json, "UserData.balance").and_then(|b| b.as_str().map(str::to_owned))
    });
    let Some(balance) = balance else {
        return Err(ProbeError::new(
            FailureReason::Body,
            format!("HTTP 200 without UserData.balance: {}", answer.excerpt()),
        ));
    };
    let amount = balance
        .split_whitespace()
        .last()
        .and_then(|n| n.replace(',', "").parse::<f64>().ok());
    match (min_balance, amount) {
        (Some(floor), Some(amount)) if amount < floor => Err(ProbeError::new(
            FailureReason::Balance,
            format!("balance {balance} is below the floor of {floor}"),
        )),
        (Some(_), None) => Err(ProbeError::new(
            FailureReason::Body,
            format!("cannot read the balance \"{balance}\""),
        )),
        _ => Ok(ProbeSuccess {
            note: Some(format!("balance {balance}")),
        }),
    }
}

/// WhatsApp Cloud API: `GET /{version}/{phone_number_id}` with a bearer token; 200 with
/// `quality_rating`. A rating other than GREEN passes but is reported.
pub(crate) async fn whatsapp(
    client: &HttpClient,
    check: &WhatsAppCheck,
) -> Result<ProbeSuccess, ProbeError> {
    let phone = credential(&check.phone_number_id)?;
    let token = credential(&check.access_token)?;
    let mut url = endpoint(
        &check.base_url,
        &format!("/{}/{}", check.api_version, phone.expose()),
    )?;
    url.query_pairs_mut().append_pair(
        "fields",
        "quality_rating,display_phone_number,verified_name",
    );
    let request = CheckRequest::new(Method::GET, &url).bearer_auth(token.expose());
    judge_whatsapp(&client.send(request).await?)
}

fn judge_whatsapp(answer: &Answer) -> Result<ProbeSuccess, ProbeError> {
    let json = answer.json();
    // `"error": null` is no error: only an error object is.
    if let Some(error) = json
        .as_ref()
        .and_then(|json| json.get("error"))
        .filter(|error| !error.is_null())
    {
        let code = error.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
        let message = error
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("no message");
        let reason = if WHATSAPP_THROTTLING_CODES.contains(&code) {
            FailureReason::Throttled
        } else if code == WHATSAPP_AUTH_CODE || matches!(answer.status, StatusCode::UNAUTHORIZED) {
            FailureReason::Auth
        } else if answer.status.is_success() {
            FailureReason::Body
        } else {
            FailureReason::HttpStatus
        };
        return Err(ProbeError::new(
            reason,
            format!(
                "HTTP {} error code {code}: {message}",
                answer.status.as_u16()
            ),
        ));
    }
    status_failure(answer, "check access_token")?;
    let rating = json
        .as_ref()
        .and_then(|json| json.get("quality_rating"))
        .and_then(|r| r.as_str().map(str::to_owned));
    match rating.as_deref() {
        Some("GREEN") => Ok(ProbeSuccess::default()),
        Some(other) => Ok(ProbeSuccess {
            note: Some(format!("quality_rating {other}")),
        }),
        None => Err(ProbeError::new(
            FailureReason::Body,
            format!("HTTP 200 without quality_rating: {}", answer.excerpt()),
        )),
    }
}

/// The failure an HTTP status means for a token endpoint, if any: 401/403 (and Daraja's 400
/// for bad credentials) are `auth`, 429 is `throttled`, any other non-2xx is `http_status`.
fn status_failure(answer: &Answer, hint: &str) -> Result<(), ProbeError> {
    let status = answer.status;
    if status.is_success() {
        return Ok(());
    }
    if let Some(redirect) = answer.redirect_failure() {
        return Err(redirect);
    }
    let code = status.as_u16();
    let (reason, advice) = match code {
        400 | 401 | 403 => (FailureReason::Auth, format!(" ({hint})")),
        429 => (FailureReason::Throttled, String::new()),
        _ => (FailureReason::HttpStatus, String::new()),
    };
    Err(ProbeError::new(
        reason,
        format!("HTTP {code}{advice}: {}", answer.excerpt()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::http::answer;

    #[test]
    fn daraja_and_buni_need_an_access_token() {
        assert!(
            judge_oauth_token(&answer(
                200,
                r#"{"access_token":"abc","expires_in":"3599"}"#
            ))
            .is_ok()
        );
        assert_eq!(
            judge_oauth_token(&answer(200, "{}")).unwrap_err().reason,
            FailureReason::Body
        );
        let auth = judge_oauth_token(&answer(400, r#"{"errorMessage":"Invalid Credentials"}"#))
            .unwrap_err();
        assert_eq!(auth.reason, FailureReason::Auth);
        assert!(
            auth.detail
                .contains("check consumer_key and consumer_secret")
        );
        assert_eq!(
            judge_oauth_token(&answer(503, "")).unwrap_err().reason,
            FailureReason::HttpStatus
        );
        assert_eq!(
            judge_oauth_token(&answer(429, "")).unwrap_err().reason,
            FailureReason::Throttled
        );
    }

    #[test]
    fn pesapal_is_judged_by_its_body_not_its_status() {
        let ok = r#"{"token":"eyJ","expiryDate":"2026-11-27T10:00:00Z","error":null,"status":"200","message":"Request processed successfully"}"#;
        assert!(judge_pesapal(&answer(200, ok)).is_ok());
        let rejected = r#"{"token":null,"expiryDate":null,"error":{"error_type":"api_error","code":"invalid_consumer_key_or_secret_provided","message":"Invalid consumer_key or consumer_secret provided"},"status":"500","message":null}"#;
        let error = judge_pesapal(&answer(200, rejected)).unwrap_err();
        assert_eq!(error.reason, FailureReason::Auth);
        assert_eq!(
            error.detail,
            "HTTP 200 with error invalid_consumer_key_or_secret_provided (status 500): Invalid consumer_key or consumer_secret provided"
        );
        let other = r#"{"token":null,"error":{"code":"internal_error","message":"try later"},"status":"500"}"#;
        assert_eq!(
            judge_pesapal(&answer(200, other)).unwrap_err().reason,
            FailureReason::Body
        );
    }

    #[test]
    fn africastalking_balance_has_a_floor() {
        let body = r#"{"UserData":{"balance":"KES 1,234.5000"}}"#;
        assert_eq!(
            judge_africastalking(&answer(200, body), None)
                .unwrap()
                .note
                .as_deref(),
            Some("balance KES 1,234.5000")
        );
        assert!(judge_africastalking(&answer(200, body), Some(1000.0)).is_ok());
        let low = judge_africastalking(&answer(200, body), Some(5000.0)).unwrap_err();
        assert_eq!(low.reason, FailureReason::Balance);
        assert_eq!(
            low.detail,
            "balance KES 1,234.5000 is below the floor of 5000"
        );
        assert_eq!(
            judge_africastalking(&answer(401, "The supplied authentication is invalid"), None)
                .unwrap_err()
                .reason,
            FailureReason::Auth
        );
        assert_eq!(
            judge_africastalking(&answer(200, "<xml/>"), None)
                .unwrap_err()
                .reason,
            FailureReason::Body
        );
    }

    #[test]
    fn whatsapp_reports_quality_and_throttling() {
        assert_eq!(
            judge_whatsapp(&answer(200, r#"{"quality_rating":"GREEN","id":"1"}"#))
                .unwrap()
                .note,
            None
        );
        assert_eq!(
            judge_whatsapp(&answer(200, r#"{"quality_rating":"YELLOW"}"#))
                .unwrap()
                .note
                .as_deref(),
            Some("quality_rating YELLOW")
        );
        for code in WHATSAPP_THROTTLING_CODES {
            let body = format!(r#"{{"error":{{"message":"rate","code":{code}}}}}"#);
            assert_eq!(
                judge_whatsapp(&answer(400, &body)).unwrap_err().reason,
                FailureReason::Throttled
            );
        }
        let body = r#"{"error":{"message":"Error validating access token","type":"OAuthException","code":190}}"#;
        assert_eq!(
            judge_whatsapp(&answer(401, body)).unwrap_err().reason,
            FailureReason::Auth
        );
        assert_eq!(
            judge_whatsapp(&answer(500, "")).unwrap_err().reason,
            FailureReason::HttpStatus
        );
        let null_error = r#"{"error":null,"quality_rating":"GREEN","id":"1"}"#;
        assert!(
            judge_whatsapp(&answer(200, null_error)).is_ok(),
            "\"error\": null is no error"
        );
    }

    #[test]
    fn endpoints_keep_the_base_path() {
        let base = Url::parse("https://cybqa.pesapal.com/pesapalv3/").unwrap();
        assert_eq!(
            endpoint(&base, "/api/Auth/RequestToken").unwrap().as_str(),
            "https://cybqa.pesapal.com/pesapalv3/api/Auth/RequestToken"
        );
    }
}
