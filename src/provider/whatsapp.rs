//! The WhatsApp Cloud API (Meta's Graph API). Errors are `{"error": {"message", "type",
//! "code", "error_subcode", "error_data", "fbtrace_id"}}`; Meta's own sources disagree on the
//! HTTP status of some (400 or 429 for throttling, 404 for a missing template), so the code
//! decides. The check asks the phone number for its `status`, `quality_rating` and messaging
//! limit: a restricted or flagged number, or a RED rating, is our account's trouble even while
//! every request succeeds. Sources: the answers in `tests/fixtures/providers/whatsapp/`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use http::Method;

use super::check::{Call, request, text_field};
use super::judge::CatalogueEntry;
use super::rules::{Origin, PathPattern, Rule, compile_text};
use super::{
    CredentialKey, Hosts, OperationSpec, Provider, ProviderCheck, Settings, SettingsSource,
    Thresholds,
};
use crate::credential::Credential;
use crate::outcome::{ProbeError, ProbeSuccess};

/// The Graph API version asked when `api_version` is not set.
pub const DEFAULT_API_VERSION: &str = "v25.0";
/// Quality ratings, best first.
const QUALITIES: [&str; 3] = ["GREEN", "YELLOW", "RED"];
/// The lowest rating that passes when `min_quality` is not set.
const DEFAULT_MIN_QUALITY: &str = "YELLOW";
/// Every documented phone number status but CONNECTED: a number in one of them cannot (or may
/// soon not) send.
const DEFAULT_FAILING_STATUSES: &[&str] = &[
    "DISCONNECTED",
    "UNVERIFIED",
    "PENDING",
    "FLAGGED",
    "RESTRICTED",
    "RATE_LIMITED",
    "BANNED",
    "DELETED",
    "MIGRATED",
    "UNLINKED",
    "OFFLINE",
];

pub(super) static PROVIDER: Provider = Provider {
    name: "whatsapp",
    title: "WhatsApp Cloud API",
    hosts: Hosts {
        sandbox: "https://graph.facebook.com",
        production: "https://graph.facebook.com",
    },
    thresholds: Thresholds {
        failures: 5,
        timeout: Duration::from_secs(15),
        reset_timeout: Duration::from_secs(60),
    },
    credentials: &[
        CredentialKey {
            key: "phone_number_id",
            secret: false,
        },
        CredentialKey {
            key: "access_token",
            secret: true,
        },
    ],
    basic_auth: None,
    settings: &["api_version", "min_quality", "failing_statuses"],
    read_settings,
    settings_rules,
    service_operations,
    check_operation: "phone_number",
    check_words: "`GET /{api_version}/{phone_number_id}?fields=status,quality_rating,…` with a bearer token; a `status` in `failing_statuses` (every documented one but CONNECTED) or a `quality_rating` below `min_quality` (`YELLOW`) fails with `account`; the rating and messaging limit are reported",
    check: |call| check(call).boxed(),
    operations: &[
        OperationSpec {
            name: "messages",
            method: "POST",
            path: "/{version}/{phone_number_id}/messages",
        },
        OperationSpec {
            name: "media",
            method: "POST",
            path: "/{version}/{phone_number_id}/media",
        },
        OperationSpec {
            name: "media",
            method: "GET",
            path: "/{version}/{media_id}",
        },
        OperationSpec {
            name: "media",
            method: "DELETE",
            path: "/{version}/{media_id}",
        },
        OperationSpec {
            name: "templates",
            method: "*",
            path: "/{version}/{waba_id}/message_templates",
        },
        OperationSpec {
            name: "phone_number",
            method: "*",
            path: "/{version}/{phone_number_id}/register",
        },
    ],
    rules: RULES,
    compiled: std::sync::LazyLock::new(|| super::compiled(&PROVIDER)),
};

const RULES: &str = r#"
[[rule]]
json = [{ pointer = "/error/code", one_of = [190, 0] }]
outcome = "auth"
code = "/error/code"
message = "/error/message"
detail = "Meta refused the access token: issue a new system-user token ({code} {message})"

[[rule]]
json = [{ pointer = "/error/code", one_of = [3, 10] }]
outcome = "account"
code = "/error/code"
message = "/error/message"
detail = "the app lacks a permission: grant whatsapp_business_messaging and whatsapp_business_management to the token's system user ({code} {message})"

[[rule]]
json = [{ pointer = "/error/code", between = [200, 299] }]
outcome = "account"
code = "/error/code"
message = "/error/message"
detail = "the app lacks a permission: grant whatsapp_business_messaging and whatsapp_business_management to the token's system user ({code} {message})"

[[rule]]
json = [{ pointer = "/error/code", one_of = [4, 17, 613, 80007, 130429, 133016] }]
outcome = "throttled"
code = "/error/code"
message = "/error/message"

[[rule]]
json = [{ pointer = "/error/code", equals = 131042 }]
outcome = "balance"
code = "/error/code"
message = "/error/message"
detail = "Meta will not bill this account: attach a payment method or raise the credit line in WhatsApp Manager ({code} {message})"

[[rule]]
json = [{ pointer = "/error/code", one_of = [33, 368, 130497, 131005, 131031, 131037, 131045, 131048, 133000, 133005, 133006, 133008, 133009, 133010, 133015, 134011] }]
outcome = "account"
code = "/error/code"
message = "/error/message"
detail = "the WhatsApp account or number cannot send ({code} {message}): see WhatsApp Manager"

[[rule]]
json = [{ pointer = "/error/code", one_of = [130472, 131021, 131026, 131047, 131049, 131050, 131056] }]
outcome = "caller"
reason = "recipient"
code = "/error/code"
message = "/error/message"

[[rule]]
json = [{ pointer = "/error/code", one_of = [100, 131008, 131009, 131051, 131052, 131053, 132000, 132001, 132005, 132007, 132012, 132015, 132016, 135000] }]
outcome = "caller"
reason = "validation"
code = "/error/code"
message = "/error/message"

[[rule]]
json = [{ pointer = "/error/code", one_of = [1, 2, 131000, 131016, 131057, 133004] }]
outcome = "failure"
reason = "http_status"
code = "/error/code"
message = "/error/message"

[[rule]]
status = "5xx"
json = [{ pointer = "/error/code", exists = true }]
outcome = "failure"
reason = "http_status"
code = "/error/code"
message = "/error/message"

[[rule]]
status = 429
outcome = "throttled"
code = "/error/code"
message = "/error/message"

[[rule]]
status = 401
outcome = "auth"
code = "/error/code"
message = "/error/message"

[[rule]]
status = 403
outcome = "account"
code = "/error/code"
message = "/error/message"

[[rule]]
status = "4xx"
json = [{ pointer = "/error/code", exists = true }]
outcome = "caller"
reason = "validation"
code = "/error/code"
message = "/error/message"

[[rule]]
status = "2xx"
json = [{ pointer = "/error", all_null = false }]
outcome = "failure"
reason = "body"
code = "/error/code"
message = "/error/message"
"#;

fn read_settings(source: &mut dyn SettingsSource) -> Option<Settings> {
    let mut good = true;
    let api_version = source.text("api_version");
    if let Some(version) = &api_version {
        let shaped = version
            .strip_prefix('v')
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(major, minor)| {
                !major.is_empty()
                    && !minor.is_empty()
                    && major.bytes().all(|b| b.is_ascii_digit())
                    && minor.bytes().all(|b| b.is_ascii_digit())
            });
        if !shaped {
            source.problem(
                "api_version",
                format!("api_version \"{version}\" is not a Graph API version (e.g. \"{DEFAULT_API_VERSION}\")"),
            );
            good = false;
        }
    }
    let min_quality = source.text("min_quality");
    if let Some(quality) = &min_quality
        && !QUALITIES.contains(&quality.as_str())
    {
        source.problem(
            "min_quality",
            format!(
                "min_quality \"{quality}\" is not a quality rating (allowed: {})",
                QUALITIES.join(", ")
            ),
        );
        good = false;
    }
    let failing_statuses = source.list("failing_statuses");
    if let Some(statuses) = &failing_statuses
        && let Some(bad) = statuses.iter().find(|status| {
            status.is_empty()
                || !status
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
    {
        source.problem(
            "failing_statuses",
            format!(
                "failing_statuses: \"{bad}\" is not a phone number status as Meta writes them (e.g. {})",
                DEFAULT_FAILING_STATUSES.join(", ")
            ),
        );
        good = false;
    }
    good.then(|| Settings {
        api_version,
        min_quality,
        failing_statuses: failing_statuses.unwrap_or_else(|| {
            DEFAULT_FAILING_STATUSES
                .iter()
                .map(|status| (*status).to_string())
                .collect()
        }),
        ..Settings::default()
    })
}

/// The phone number's own status and rating, judged as `failing_statuses` and `min_quality`
/// say, wherever the answer is seen.
fn settings_rules(settings: &Settings) -> Vec<Rule> {
    let quoted = |values: &[String]| {
        values
            .iter()
            .map(|value| format!("\"{value}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let min_quality = settings
        .min_quality
        .as_deref()
        .unwrap_or(DEFAULT_MIN_QUALITY);
    let below: Vec<String> = QUALITIES
        .iter()
        .skip_while(|quality| **quality != min_quality)
        .skip(1)
        .map(|quality| (*quality).to_string())
        .collect();
    let mut rules = Vec::new();
    let mut add = |key: &'static str, text: String| {
        let names = PROVIDER.operation_names();
        match compile_text(&text, "whatsapp settings", &names, &|_| Origin::Setting {
            provider: "whatsapp",
            key,
        }) {
            Ok(compiled) => rules.extend(compiled),
            Err(problems) => tracing::error!(?problems, "whatsapp setting rules do not compile"),
        }
    };
    if !settings.failing_statuses.is_empty() {
        add(
            "failing_statuses",
            format!(
                "[[rule]]\noperation = \"phone_number\"\njson = [{{ pointer = \"/status\", one_of = [{}] }}]\noutcome = \"account\"\ncode = \"/status\"\ndetail = \"the WhatsApp number is {{code}}: it cannot send as it should; see the number in WhatsApp Manager\"\n",
                quoted(&settings.failing_statuses)
            ),
        );
    }
    if !below.is_empty() {
        add(
            "min_quality",
            format!(
                "[[rule]]\noperation = \"phone_number\"\njson = [{{ pointer = \"/quality_rating\", one_of = [{}] }}]\noutcome = \"account\"\ncode = \"/quality_rating\"\ndetail = \"the WhatsApp number's quality rating is {{code}} (below min_quality {min_quality}): Meta may lower its messaging limit or restrict it\"\n",
                quoted(&below)
            ),
        );
    }
    rules
}

/// `GET /{version}/{phone_number_id}` is the phone number itself (any other id is media).
fn service_operations(check: &ProviderCheck) -> Vec<CatalogueEntry> {
    let Some(Credential::Set(phone)) = check.credential("phone_number_id") else {
        return Vec::new();
    };
    let id = phone.expose();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Vec::new();
    }
    PathPattern::parse(&format!("/{{version}}/{id}"))
        .map(|path| {
            vec![CatalogueEntry {
                name: Arc::from("phone_number"),
                method: None,
                path,
            }]
        })
        .unwrap_or_default()
}

/// `GET /{version}/{phone_number_id}?fields=…` with a bearer token: the rules judge its status
/// and rating; the rating and messaging limit are reported.
async fn check(call: &Call<'_>) -> Result<ProbeSuccess, ProbeError> {
    let phone = call.credential("phone_number_id")?;
    let token = call.credential("access_token")?;
    let version = call
        .check
        .settings
        .api_version
        .as_deref()
        .unwrap_or(DEFAULT_API_VERSION);
    let mut url = call.endpoint(&format!("/{version}/{}", phone.expose()))?;
    url.query_pairs_mut().append_pair(
        "fields",
        "status,quality_rating,whatsapp_business_manager_messaging_limit,display_phone_number,verified_name",
    );
    let answer = call
        .send(request(Method::GET, &url).bearer_auth(token.expose()))
        .await?;
    let json = answer.json();
    let field = |pointer: &str| json.as_ref().and_then(|json| text_field(json, pointer));
    let Some(status) = field("/status") else {
        return Err(answer.lacks("the phone number's status"));
    };
    let mut note = vec![format!("status {status}")];
    if let Some(quality) = field("/quality_rating") {
        note.push(format!("quality_rating {quality}"));
    }
    if let Some(limit) = field("/whatsapp_business_manager_messaging_limit") {
        note.push(format!("messaging limit {limit}"));
    }
    Ok(ProbeSuccess::noting(note.join(", ")))
}
