//! Pesapal API 3.0. Pesapal answers HTTP 200 to nearly everything and says what happened in
//! the body: an `error` object with `error_type`, `code` and `message` beside `"status": "500"`
//! is a rejection, while a success may carry an `error` object whose fields are all null. A
//! transaction status (`status_code` 0 INVALID, 1 COMPLETED, 2 FAILED, 3 REVERSED) is the
//! payment's state — the customer's outcome, never Pesapal's health. Sources: the answers in
//! `tests/fixtures/providers/pesapal/`, each naming its page or file.

use futures_util::FutureExt as _;
use http::Method;

use super::check::{Call, request, text_field};
use super::{Hosts, OperationSpec, Provider, Settings, SettingsSource};
use crate::outcome::{FailureReason, ProbeError, ProbeSuccess};

pub(super) static PROVIDER: Provider = Provider {
    name: "pesapal",
    title: "Pesapal",
    hosts: Hosts {
        sandbox: "https://cybqa.pesapal.com/pesapalv3",
        production: "https://pay.pesapal.com/v3",
    },
    thresholds: super::PAYMENT_THRESHOLDS,
    credentials: super::CONSUMER_KEY_AND_SECRET,
    basic_auth: None,
    settings: &["ipn_id"],
    read_settings,
    settings_rules: |_| Vec::new(),
    service_operations: |_| Vec::new(),
    check_operation: "request_token",
    check_words: "`POST /api/Auth/RequestToken` with JSON credentials; Pesapal answers 200 even when it rejects them, so the body decides; with `ipn_id`, also `GET /api/URLSetup/GetIpnList` must still list that IPN (else `account`)",
    check: |call| check(call).boxed(),
    operations: &[
        OperationSpec {
            name: "request_token",
            method: "POST",
            path: "/api/Auth/RequestToken",
        },
        OperationSpec {
            name: "register_ipn",
            method: "POST",
            path: "/api/URLSetup/RegisterIPN",
        },
        OperationSpec {
            name: "ipn_list",
            method: "GET",
            path: "/api/URLSetup/GetIpnList",
        },
        OperationSpec {
            name: "submit_order",
            method: "POST",
            path: "/api/Transactions/SubmitOrderRequest",
        },
        OperationSpec {
            name: "transaction_status",
            method: "GET",
            path: "/api/Transactions/GetTransactionStatus",
        },
        OperationSpec {
            name: "refund",
            method: "POST",
            path: "/api/Transactions/RefundRequest",
        },
        OperationSpec {
            name: "cancel",
            method: "POST",
            path: "/api/Transactions/CancelOrder",
        },
    ],
    rules: RULES,
    compiled: std::sync::LazyLock::new(|| super::compiled(&PROVIDER)),
};

const RULES: &str = r#"
# A transaction's status is the payment's state: the customer's outcome.
[[rule]]
operation = "transaction_status"
json = [{ pointer = "/status_code", equals = 2 }]
outcome = "caller"
reason = "declined"
code = "/payment_status_description"
message = "/description"
detail = "payment failed: {code} {message}"

[[rule]]
operation = "transaction_status"
json = [{ pointer = "/error/code", equals = "payment_details_not_found" }]
outcome = "caller"
reason = "pending"
code = "/error/code"
message = "/error/message"

[[rule]]
operation = "transaction_status"
json = [{ pointer = "/status_code", equals = 0 }]
outcome = "caller"
reason = "pending"
code = "/payment_status_description"
message = "/description"

[[rule]]
operation = "transaction_status"
json = [{ pointer = "/status_code", one_of = [1, 3] }]
outcome = "success"

# Our own credentials and setup.
[[rule]]
json = [{ pointer = "/error/error_type", equals = "authentication_error" }]
outcome = "auth"
code = "/error/code"
message = "/error/message"
detail = "Pesapal refused the access token: request a new one with this merchant's consumer key and secret ({code} {message})"

[[rule]]
operation = "request_token"
json = [{ pointer = "/error/code", one_of = ["invalid_consumer_key_or_secret_provided", "invalid_api_request_parameters", "consumer_key_unknown"] }]
outcome = "auth"
code = "/error/code"
message = "/error/message"
detail = "Pesapal refused the consumer key and secret: {code} {message}"

[[rule]]
json = [{ pointer = "/error/code", equals = "invalid_call_back_url_id" }]
outcome = "account"
code = "/error/code"
message = "/error/message"
detail = "the IPN id (notification_id) is not registered with this merchant: register it with RegisterIPN ({code})"

[[rule]]
json = [{ pointer = "/error/message", contains = "invalid ipn url id" }]
outcome = "account"
code = "/error/code"
message = "/error/message"
detail = "the IPN id (notification_id) is not registered with this merchant: register it with RegisterIPN ({message})"

# The caller's own request.
[[rule]]
json = [{ pointer = "/error/code", contains = "missing_mandatory" }]
outcome = "caller"
reason = "validation"
code = "/error/code"
message = "/error/message"

[[rule]]
json = [{ pointer = "/error/error_type", equals = "invalid_request_error" }]
outcome = "caller"
reason = "validation"
code = "/error/code"
message = "/error/message"

# A refund or cancellation Pesapal turns down is the order's state, not an outage.
[[rule]]
operation = ["refund", "cancel"]
json = [{ pointer = "/status", equals = "500" }]
outcome = "caller"
reason = "validation"
code = "/error/code"
message = "/message"

# Any other error object that says something in a 200, or a status other than 200: Pesapal
# failed. (An HTTP 5xx is a failure by the defaults.)
[[rule]]
status = "2xx"
json = [{ pointer = "/error", all_null = false }]
outcome = "failure"
reason = "body"
code = "/error/code"
message = "/error/message"

[[rule]]
status = "2xx"
json = [{ pointer = "/status", one_of = ["200", "201", "202"] }]
outcome = "success"

[[rule]]
status = "2xx"
json = [{ pointer = "/status", exists = true }]
outcome = "failure"
reason = "body"
code = "/status"
message = "/message"
"#;

fn read_settings(source: &mut dyn SettingsSource) -> Option<Settings> {
    Some(Settings {
        ipn_id: source.text("ipn_id"),
        ..Settings::default()
    })
}

/// `POST /api/Auth/RequestToken` with JSON credentials: a token; with `ipn_id`, that IPN must
/// still be in `GetIpnList`.
async fn check(call: &Call<'_>) -> Result<ProbeSuccess, ProbeError> {
    let key = call.credential("consumer_key")?;
    let secret = call.credential("consumer_secret")?;
    let url = call.endpoint("/api/Auth/RequestToken")?;
    let body =
        serde_json::json!({ "consumer_key": key.expose(), "consumer_secret": secret.expose() });
    let answer = call
        .send(
            request(Method::POST, &url)
                .header("Accept", "application/json")
                .header("Content-Type", "application/json")
                .body(body.to_string()),
        )
        .await?;
    let json = answer.json();
    let Some(token) = json.as_ref().and_then(|json| text_field(json, "/token")) else {
        return Err(answer.lacks("a token"));
    };
    let Some(ipn_id) = &call.check.settings.ipn_id else {
        return Ok(ProbeSuccess::default());
    };
    let list = call.endpoint("/api/URLSetup/GetIpnList")?;
    let listed = call
        .send(
            request(Method::GET, &list)
                .header("Accept", "application/json")
                .bearer_auth(token),
        )
        .await?;
    let ids: Vec<String> = listed
        .json()
        .as_ref()
        .and_then(serde_json::Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|entry| text_field(entry, "/ipn_id").map(str::to_owned))
                .collect()
        })
        .ok_or_else(|| listed.lacks("a list of IPNs"))?;
    if ids.iter().any(|id| id == ipn_id) {
        return Ok(ProbeSuccess::default());
    }
    /// The most IPN ids a failure names.
    const SHOWN_IDS: usize = 5;
    let listed = match ids.len() {
        0 => "none".to_string(),
        count if count <= SHOWN_IDS => ids.join(", "),
        count => format!(
            "{}, and {} more",
            ids[..SHOWN_IDS].join(", "),
            count - SHOWN_IDS
        ),
    };
    Err(ProbeError::new(
        FailureReason::Account,
        format!(
            "IPN {ipn_id} is not registered with this merchant any more (GetIpnList lists {listed}): register the IPN URL again with RegisterIPN and update notification_id"
        ),
    )
    .saying(crate::outcome::Said {
        operation: Some("ipn_list".into()),
        code: None,
        message: None,
    }))
}
