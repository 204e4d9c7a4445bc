//! Africa's Talking (SMS, airtime, the account). An SMS send answers HTTP 201 with a status per
//! recipient (`SMSMessageData.Recipients[*].statusCode`): an empty account (405) is our own
//! problem and the breaker's business, a recipient who blacklisted us (406) is not. A wrong
//! `apiKey` is a plain-text 401. Sources: the answers in
//! `tests/fixtures/providers/africastalking/`, each naming its page or file.

use std::time::Duration;

use futures_util::FutureExt as _;
use http::Method;

use super::check::{Call, request, text_field};
use super::{CredentialKey, Hosts, OperationSpec, Provider, Settings, SettingsSource, Thresholds};
use crate::outcome::{FailureReason, ProbeError, ProbeSuccess};

pub(super) static PROVIDER: Provider = Provider {
    name: "africastalking",
    title: "Africa's Talking",
    hosts: Hosts {
        sandbox: "https://api.sandbox.africastalking.com",
        production: "https://api.africastalking.com",
    },
    thresholds: Thresholds {
        failures: 5,
        timeout: Duration::from_secs(10),
        reset_timeout: Duration::from_secs(60),
    },
    credentials: &[
        CredentialKey {
            key: "username",
            secret: false,
        },
        CredentialKey {
            key: "api_key",
            secret: true,
        },
    ],
    basic_auth: None,
    settings: &["min_balance"],
    read_settings,
    settings_rules: |_| Vec::new(),
    service_operations: |_| Vec::new(),
    check_operation: "user",
    check_words: "`GET /version1/user?username=…` with `apiKey` and `Accept: application/json`; reports the balance, fails with `balance` below `min_balance`",
    check: |call| check(call).boxed(),
    operations: &[
        OperationSpec {
            name: "sms_send",
            method: "POST",
            path: "/version1/messaging",
        },
        OperationSpec {
            name: "sms_send",
            method: "POST",
            path: "/version1/messaging/bulk",
        },
        OperationSpec {
            name: "sms_fetch",
            method: "GET",
            path: "/version1/messaging",
        },
        OperationSpec {
            name: "user",
            method: "GET",
            path: "/version1/user",
        },
        OperationSpec {
            name: "airtime",
            method: "POST",
            path: "/version1/airtime/send",
        },
    ],
    rules: RULES,
    compiled: std::sync::LazyLock::new(|| super::compiled(&PROVIDER)),
};

const RULES: &str = r#"
[[rule]]
status = 401
outcome = "auth"
detail = "Africa's Talking refused the username and api_key (HTTP 401)"

# SMS: the account, then the recipients, then the gateway.
[[rule]]
operation = "sms_send"
json = [{ pointer = "/SMSMessageData/Recipients/*/statusCode", equals = 405 }]
outcome = "balance"
code = "/SMSMessageData/Recipients/*/status"
message = "/SMSMessageData/Message"
detail = "the SMS account is out of credit ({code}): top up the Africa's Talking account"

[[rule]]
operation = "sms_send"
json = [{ pointer = "/SMSMessageData/Message", equals = "InvalidSenderId" }]
outcome = "account"
code = "/SMSMessageData/Message"
detail = "the sender ID (from) is not approved for this account: request it on the Africa's Talking dashboard, or send without it"

[[rule]]
operation = "sms_send"
json = [{ pointer = "/SMSMessageData/Recipients/*/statusCode", one_of = [401, 402, 409] }]
outcome = "account"
code = "/SMSMessageData/Recipients/*/status"
message = "/SMSMessageData/Message"
detail = "Africa's Talking held our messages ({code}): a risk hold, a sender ID not approved, or a promotional sender ID at do-not-disturb hours; see the account on the dashboard"

[[rule]]
operation = "sms_send"
json = [{ pointer = "/SMSMessageData/Recipients/*/statusCode", one_of = [100, 101, 102] }]
outcome = "success"

[[rule]]
operation = "sms_send"
json = [{ pointer = "/SMSMessageData/Recipients/*/statusCode", one_of = [403, 404, 406, 407], every = true }]
outcome = "caller"
reason = "recipient"
code = "/SMSMessageData/Recipients/*/status"
message = "/SMSMessageData/Message"

[[rule]]
operation = "sms_send"
json = [{ pointer = "/SMSMessageData/Recipients/*/statusCode", one_of = [500, 501, 502] }]
outcome = "failure"
reason = "body"
code = "/SMSMessageData/Recipients/*/status"
message = "/SMSMessageData/Message"
detail = "Africa's Talking could not send: {code} ({message})"

[[rule]]
operation = "sms_send"
json = [{ pointer = "/SMSMessageData/Recipients/*/status", equals = "Could Not Send", every = true }]
outcome = "caller"
reason = "recipient"
code = "/SMSMessageData/Recipients/*/status"
message = "/SMSMessageData/Message"

# Airtime: a whole request turned away, or every recipient refused.
[[rule]]
operation = "airtime"
json = [{ pointer = "/errorMessage", contains = "duplicate" }]
outcome = "caller"
reason = "duplicate"
message = "/errorMessage"

[[rule]]
operation = "airtime"
json = [{ pointer = "/responses/*/status", equals = "Failed", every = true }]
outcome = "caller"
reason = "validation"
code = "/responses/*/status"
message = "/responses/*/errorMessage"
"#;

fn read_settings(source: &mut dyn SettingsSource) -> Option<Settings> {
    Some(Settings {
        min_balance: source.number("min_balance"),
        ..Settings::default()
    })
}

/// `GET /version1/user?username=U` with `apiKey` and JSON asked for (the default is XML): a 200
/// with `UserData.balance` such as `"KES 1785.50"`, at or above `min_balance`.
async fn check(call: &Call<'_>) -> Result<ProbeSuccess, ProbeError> {
    let username = call.credential("username")?;
    let api_key = call.credential("api_key")?;
    let mut url = call.endpoint("/version1/user")?;
    url.query_pairs_mut()
        .append_pair("username", username.expose());
    let answer = call
        .send(
            request(Method::GET, &url)
                .header("apiKey", api_key.expose())
                .header("Accept", "application/json"),
        )
        .await?;
    let json = answer.json();
    let Some(balance) = json
        .as_ref()
        .and_then(|json| text_field(json, "/UserData/balance"))
    else {
        return Err(answer.lacks("UserData.balance"));
    };
    let amount = balance
        .split_whitespace()
        .last()
        .and_then(|number| number.replace(',', "").parse::<f64>().ok());
    match (call.check.settings.min_balance, amount) {
        (Some(floor), Some(amount)) if amount < floor => Err(ProbeError::new(
            FailureReason::Balance,
            format!("balance {balance} is below the floor of {floor}: top up the Africa's Talking account"),
        )
        .saying(answer.judgement.said())),
        (Some(_), None) => Err(ProbeError::new(
            FailureReason::Body,
            format!("cannot read the balance \"{balance}\""),
        )),
        _ => Ok(ProbeSuccess::noting(format!("balance {balance}"))),
    }
}
