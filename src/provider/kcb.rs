//! KCB Buni, behind a WSO2 API Manager gateway. The gateway's own answers carry its codes —
//! `900901` bad token, `900908` not subscribed, `9008xx` throttled — either flat
//! (`{"code": "900800", ...}`, API Manager 4) or wrapped (`{"fault": {"code": 900802, ...}}`);
//! Buni's STK push and funds transfer answer with their own `statusCode`. KCB publishes
//! little: most answers rest on WSO2's documentation and third-party SDKs, as each fixture in
//! `tests/fixtures/providers/kcb/` says.

use futures_util::FutureExt as _;
use http::Method;

use super::check::{Call, request, text_field};
use super::{Hosts, OperationSpec, Provider, Settings};
use crate::outcome::{ProbeError, ProbeSuccess};

pub(super) static PROVIDER: Provider = Provider {
    name: "kcb",
    title: "KCB Buni",
    hosts: Hosts {
        sandbox: "https://uat.buni.kcbgroup.com",
        production: "https://api.buni.kcbgroup.com",
    },
    thresholds: super::PAYMENT_THRESHOLDS,
    credentials: super::CONSUMER_KEY_AND_SECRET,
    basic_auth: Some(("consumer_key", "consumer_secret")),
    settings: &[],
    read_settings: |_| Some(Settings::default()),
    settings_rules: |_| Vec::new(),
    service_operations: |_| Vec::new(),
    check_operation: "token",
    check_words: "`POST /token?grant_type=client_credentials` with HTTP Basic; needs `access_token`",
    check: |call| check(call).boxed(),
    operations: &[
        OperationSpec {
            name: "token",
            method: "POST",
            path: "/token",
        },
        OperationSpec {
            name: "stk_push",
            method: "POST",
            path: "/mm/api/request/1.0.0/stkpush",
        },
        OperationSpec {
            name: "funds_transfer",
            method: "POST",
            path: "/fundstransfer/1.0.0/api/v1/transfer",
        },
        OperationSpec {
            name: "mpesa_transaction_info",
            method: "POST",
            path: "/mpesa/transactioninfo/1.0.0",
        },
        OperationSpec {
            name: "query_core_transaction_status",
            method: "POST",
            path: "/v1/core/t24/querytransaction/1.0.0/**",
        },
        OperationSpec {
            name: "validate_external_bill",
            method: "POST",
            path: "/kcb/vpi/api/v1/validate-external-bill/1.0.0/execute",
        },
        OperationSpec {
            name: "vending_gateway",
            method: "POST",
            path: "/kcb/vendingGateway/v1/1.0.0",
        },
    ],
    rules: RULES,
    compiled: std::sync::LazyLock::new(|| super::compiled(&PROVIDER)),
};

const RULES: &str = r#"
# The token endpoint (WSO2): a client it does not know, or a wrong secret.
[[rule]]
json = [{ pointer = "/error", equals = "invalid_client" }]
outcome = "auth"
code = "/error"
message = "/error_description"
detail = "Buni refused the consumer key and secret: {code} {message}"

[[rule]]
operation = "token"
status = [400, 401, 403]
outcome = "auth"
detail = "Buni refused the consumer key and secret (HTTP {status})"

# The gateway's codes, wrapped in "fault" (KCB's 2023 documents) or flat (API Manager 4).
[[rule]]
json = [{ pointer = "/fault/code", one_of = [900901, 900902, 900904, 900905] }]
outcome = "auth"
code = "/fault/code"
message = "/fault/message"
detail = "the Buni gateway refused the access token: fetch a new one ({code} {message})"

[[rule]]
json = [{ pointer = "/code", one_of = ["900901", "900902", "900904", "900905"] }]
outcome = "auth"
code = "/code"
message = "/message"
detail = "the Buni gateway refused the access token: fetch a new one ({code} {message})"

[[rule]]
json = [{ pointer = "/fault/code", one_of = [900907, 900908, 900909, 900910, 900805] }]
outcome = "account"
code = "/fault/code"
message = "/fault/message"
detail = "this app may not call the API (not subscribed, blocked or out of scope): subscribe it on the Buni portal ({code} {message})"

[[rule]]
json = [{ pointer = "/code", one_of = ["900907", "900908", "900909", "900910", "900805"] }]
outcome = "account"
code = "/code"
message = "/message"
detail = "this app may not call the API (not subscribed, blocked or out of scope): subscribe it on the Buni portal ({code} {message})"

[[rule]]
json = [{ pointer = "/fault/code", one_of = [900800, 900801, 900802, 900803, 900804, 900806, 900807] }]
outcome = "throttled"
code = "/fault/code"
message = "/fault/description"

[[rule]]
json = [{ pointer = "/code", one_of = ["900800", "900801", "900802", "900803", "900804", "900806", "900807"] }]
outcome = "throttled"
code = "/code"
message = "/description"

# A path the gateway does not know: the caller's request (the safe side; in API Manager 4 it
# can also mean the gateway lost its key manager).
[[rule]]
json = [{ pointer = "/fault/code", equals = 900906 }]
outcome = "caller"
reason = "validation"
code = "/fault/code"
message = "/fault/message"

# API Manager 4's own 404 ("Status report"): no API at the path we called, our request.
[[rule]]
status = 404
json = [{ pointer = "/type", equals = "Status report" }]
outcome = "caller"
reason = "validation"
code = "/code"
message = "/description"

# Funds transfer: a limit set on our own portal.
[[rule]]
operation = "funds_transfer"
json = [{ pointer = "/statusCode", equals = "1" }, { pointer = "/statusDescription", contains = "limit rule" }]
outcome = "account"
code = "/statusCode"
message = "/statusDescription"
detail = "the transfer is over a limit set for this account: raise it on the funds-transfer portal ({message})"

[[rule]]
operation = "funds_transfer"
json = [{ pointer = "/statusCode", equals = "1" }]
outcome = "caller"
reason = "validation"
code = "/statusCode"
message = "/statusDescription"

# STK push through Buni: header.statusCode "1" is a rejected request.
[[rule]]
operation = "stk_push"
status = "200-499"
json = [{ pointer = "/header/statusCode", equals = "1" }]
outcome = "caller"
reason = "validation"
code = "/header/statusCode"
message = "/header/statusDescription"

[[rule]]
status = "5xx"
json = [{ pointer = "/fault/code", exists = true }]
outcome = "failure"
reason = "http_status"
code = "/fault/code"
message = "/fault/message"
"#;

/// `POST /token?grant_type=client_credentials` with HTTP Basic: a 200 with an `access_token`.
async fn check(call: &Call<'_>) -> Result<ProbeSuccess, ProbeError> {
    let key = call.credential("consumer_key")?;
    let secret = call.credential("consumer_secret")?;
    let url = call.endpoint("/token?grant_type=client_credentials")?;
    let answer = call
        .send(
            request(Method::POST, &url)
                .basic_auth(key.expose(), secret.expose())
                .header("Content-Type", "application/x-www-form-urlencoded"),
        )
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
