//! M-Pesa Daraja (Safaricom). Errors come as `{"requestId", "errorCode", "errorMessage"}`,
//! mostly with HTTP 500 whoever is at fault: the same `500.001.1001` means "being processed"
//! (the customer has not typed the PIN yet), "Merchant does not exist" or "Wrong credentials",
//! so the message decides. STK query results (`ResultCode`) are the customer's outcome.
//! Sources: the answers in `tests/fixtures/providers/mpesa/`, each naming its page or thread.

use futures_util::FutureExt as _;
use http::Method;

use super::check::{Call, request, text_field};
use super::{Hosts, OperationSpec, Provider, Settings};
use crate::outcome::{ProbeError, ProbeSuccess};

pub(super) static PROVIDER: Provider = Provider {
    name: "mpesa",
    title: "M-Pesa Daraja",
    hosts: Hosts {
        sandbox: "https://sandbox.safaricom.co.ke",
        production: "https://api.safaricom.co.ke",
    },
    thresholds: super::PAYMENT_THRESHOLDS,
    credentials: super::CONSUMER_KEY_AND_SECRET,
    basic_auth: Some(("consumer_key", "consumer_secret")),
    settings: &[],
    read_settings: |_| Some(Settings::default()),
    settings_rules: |_| Vec::new(),
    service_operations: |_| Vec::new(),
    check_operation: "oauth",
    check_words: "`GET /oauth/v1/generate?grant_type=client_credentials` with HTTP Basic; needs `access_token` in a 200",
    check: |call| check(call).boxed(),
    operations: &[
        OperationSpec {
            name: "oauth",
            method: "GET",
            path: "/oauth/v1/generate",
        },
        OperationSpec {
            name: "stk_push",
            method: "POST",
            path: "/mpesa/stkpush/v1/processrequest",
        },
        OperationSpec {
            name: "stk_query",
            method: "POST",
            path: "/mpesa/stkpushquery/v1/query",
        },
        OperationSpec {
            name: "c2b_register",
            method: "POST",
            path: "/mpesa/c2b/{version}/registerurl",
        },
        OperationSpec {
            name: "b2c",
            method: "POST",
            path: "/mpesa/b2c/{version}/paymentrequest",
        },
        OperationSpec {
            name: "transaction_status",
            method: "POST",
            path: "/mpesa/transactionstatus/v1/query",
        },
        OperationSpec {
            name: "account_balance",
            method: "POST",
            path: "/mpesa/accountbalance/v1/query",
        },
        OperationSpec {
            name: "reversal",
            method: "POST",
            path: "/mpesa/reversal/v1/request",
        },
    ],
    rules: RULES,
    compiled: std::sync::LazyLock::new(|| super::compiled(&PROVIDER)),
};

/// Daraja's answers, most specific first.
const RULES: &str = r#"
# The standard answer to an STK query while the customer has not typed the PIN
# (safaricom/LNMOnlineAndroidSample#13): HTTP 500, yet no fault.
[[rule]]
json = [{ pointer = "/errorCode", equals = "500.001.1001" },
        { pointer = "/errorMessage", contains = "is being processed" }]
outcome = "caller"
reason = "pending"
code = "/errorCode"
message = "/errorMessage"
detail = "payment still being processed (the customer has not answered the prompt yet): {code} {message}"

[[rule]]
json = [{ pointer = "/errorCode", equals = "500.001.1001" },
        { pointer = "/errorMessage", contains = "unable to lock subscriber" }]
outcome = "caller"
reason = "duplicate"
code = "/errorCode"
message = "/errorMessage"
detail = "the customer already has a payment prompt open: {code} {message}"

[[rule]]
json = [{ pointer = "/errorCode", equals = "500.001.1001" },
        { pointer = "/errorMessage", contains = "merchant does not exist" }]
outcome = "account"
code = "/errorCode"
message = "/errorMessage"
detail = "Daraja does not know the short code: check BusinessShortCode and that this app has the product on this environment ({code} {message})"

[[rule]]
json = [{ pointer = "/errorCode", equals = "500.001.1001" },
        { pointer = "/errorMessage", contains = "wrong credentials" }]
outcome = "auth"
code = "/errorCode"
message = "/errorMessage"
detail = "Daraja refused the STK password (short code, passkey and timestamp): check the passkey ({code} {message})"

[[rule]]
json = [{ pointer = "/errorCode", one_of = ["500.003.02", "500.003.03"] }]
outcome = "throttled"
code = "/errorCode"
message = "/errorMessage"
detail = "Daraja is rate-limiting this app (spike arrest or quota): {code} {message}"

[[rule]]
json = [{ pointer = "/errorMessage", contains = "duplicate originatorconversationid" }]
outcome = "caller"
reason = "duplicate"
code = "/errorCode"
message = "/errorMessage"

[[rule]]
json = [{ pointer = "/errorMessage", contains = "already registered" }]
outcome = "caller"
reason = "duplicate"
code = "/errorCode"
message = "/errorMessage"

[[rule]]
operation = "c2b_register"
json = [{ pointer = "/ResponseDescription", contains = "already registered" }]
outcome = "caller"
reason = "duplicate"
message = "/ResponseDescription"

[[rule]]
json = [{ pointer = "/errorMessage", contains = "duplicate notification info" }]
outcome = "account"
code = "/errorCode"
message = "/errorMessage"
detail = "the short code's URLs are held by another platform: ask Safaricom to release them ({code})"

[[rule]]
operation = "c2b_register"
json = [{ pointer = "/Envelope/Body/Fault/faultstring", contains = "AddURLVault" },
        { pointer = "/Envelope/Body/Fault/faultstring", contains = "409" }]
outcome = "account"
message = "/Envelope/Body/Fault/faultstring"
detail = "Daraja would not store the URLs (a conflict in its URL vault): ask Safaricom support"

[[rule]]
json = [{ pointer = "/errorCode", one_of = ["404.001.03", "404.001.04", "400.003.01", "401.002.01", "400.008.01", "400.008.02"] }]
outcome = "auth"
code = "/errorCode"
message = "/errorMessage"
detail = "Daraja refused the access token or its header: fetch a new token with this app's consumer key and secret ({code} {message})"

[[rule]]
operation = "oauth"
status = [400, 401, 403]
outcome = "auth"
detail = "Daraja refused the consumer key and secret (HTTP {status})"

[[rule]]
json = [{ pointer = "/errorCode", one_of = ["400.002.02", "400.002.05", "400.003.02"] }]
outcome = "caller"
reason = "validation"
code = "/errorCode"
message = "/errorMessage"

# STK query results: the customer's outcome, not Daraja's health.
[[rule]]
operation = "stk_query"
json = [{ pointer = "/ResultCode", equals = "0" }]
outcome = "success"

[[rule]]
operation = "stk_query"
json = [{ pointer = "/ResultCode", one_of = ["1", "4"] }]
outcome = "caller"
reason = "customer_funds"
code = "/ResultCode"
message = "/ResultDesc"

[[rule]]
operation = "stk_query"
json = [{ pointer = "/ResultCode", one_of = ["1032", "1037", "1019", "2001", "8006"] }]
outcome = "caller"
reason = "declined"
code = "/ResultCode"
message = "/ResultDesc"

[[rule]]
operation = "stk_query"
json = [{ pointer = "/ResultCode", equals = "17" }]
outcome = "caller"
reason = "duplicate"
code = "/ResultCode"
message = "/ResultDesc"

[[rule]]
operation = "stk_query"
json = [{ pointer = "/ResultCode", one_of = ["2", "3", "1025"] }]
outcome = "caller"
reason = "validation"
code = "/ResultCode"
message = "/ResultDesc"

[[rule]]
operation = "stk_query"
json = [{ pointer = "/ResultCode", one_of = ["8", "2028", "SFC_IC0003"] }]
outcome = "account"
code = "/ResultCode"
message = "/ResultDesc"
detail = "the till or paybill cannot take this payment: {code} {message}"

# Anything else Daraja names: its code and message on the page.
[[rule]]
status = "5xx"
json = [{ pointer = "/errorCode", exists = true }]
outcome = "failure"
reason = "http_status"
code = "/errorCode"
message = "/errorMessage"

[[rule]]
status = 429
outcome = "throttled"
code = "/errorCode"
message = "/errorMessage"

[[rule]]
status = [401, 403]
outcome = "auth"
code = "/errorCode"
message = "/errorMessage"

[[rule]]
status = "4xx"
json = [{ pointer = "/errorCode", exists = true }]
outcome = "caller"
reason = "validation"
code = "/errorCode"
message = "/errorMessage"
"#;

/// `GET /oauth/v1/generate?grant_type=client_credentials` with HTTP Basic: a 200 with an
/// `access_token`.
async fn check(call: &Call<'_>) -> Result<ProbeSuccess, ProbeError> {
    let key = call.credential("consumer_key")?;
    let secret = call.credential("consumer_secret")?;
    let url = call.endpoint("/oauth/v1/generate?grant_type=client_credentials")?;
    let answer = call
        .send(request(Method::GET, &url).basic_auth(key.expose(), secret.expose()))
        .await?;
    match answer
        .json()
        .as_ref()
        .and_then(|json| text_field(json, "/access_token"))
    {
        Some(_) => Ok(ProbeSuccess::default()),
        None => Err(answer.lacks("an access_token")),
    }
}
