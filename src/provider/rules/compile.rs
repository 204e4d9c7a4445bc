//! Reading rules: the raw tables as written (in `alerts.toml`'s `[[services.NAME.rules]]` or a
//! provider's built-in list), checked key by key into [`Rule`]s. Every problem is reported at
//! its place in the text, saying what is allowed.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::{
    HeaderCondition, HeaderTest, JsonCondition, JsonTest, MAX_CONDITIONS, MAX_LIST,
    MAX_RETRY_AFTER, Origin, PathPattern, Pointer, Rule, Template,
};
use crate::config::{line_and_column, nearest, parse_duration};
use crate::outcome::{CallerKind, FailureReason, Verdict};

/// The outcome words a rule may give.
const OUTCOMES: &[&str] = &[
    "success",
    "failure",
    "throttled",
    "balance",
    "auth",
    "account",
    "caller",
];

/// One rule as written.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawRule {
    /// An operation of the provider's catalogue, or a list of them.
    pub(crate) operation: Option<Spanned<toml::Value>>,
    /// A method, or a list.
    pub(crate) method: Option<Spanned<toml::Value>>,
    /// A path pattern.
    pub(crate) path: Option<Spanned<String>>,
    /// A status (`500`), a class (`"5xx"`), a range (`"500-599"`), or a list of them.
    pub(crate) status: Option<Spanned<toml::Value>>,
    /// A condition on one header.
    pub(crate) header: Option<Spanned<RawHeader>>,
    /// Conditions on the JSON body, all of which must hold.
    pub(crate) json: Option<Spanned<Vec<Spanned<RawJson>>>>,
    /// The class: success, failure, throttled, balance, auth, account or caller.
    pub(crate) outcome: Option<Spanned<String>>,
    /// For failure, the reason; for caller, the kind.
    pub(crate) reason: Option<Spanned<String>>,
    /// A JSON pointer to the provider's own code.
    pub(crate) code: Option<Spanned<String>>,
    /// A JSON pointer to the provider's own message.
    pub(crate) message: Option<Spanned<String>>,
    /// The detail sentence (a template).
    pub(crate) detail: Option<Spanned<String>>,
    /// For throttled: the wait when the answer has no `Retry-After`.
    pub(crate) retry_after: Option<Spanned<String>>,
}

/// A header condition as written.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawHeader {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) exists: Option<Spanned<bool>>,
    pub(crate) equals: Option<Spanned<String>>,
    pub(crate) one_of: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) contains: Option<Spanned<String>>,
}

/// A JSON condition as written.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawJson {
    pub(crate) pointer: Option<Spanned<String>>,
    pub(crate) equals: Option<Spanned<toml::Value>>,
    pub(crate) one_of: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    pub(crate) contains: Option<Spanned<String>>,
    pub(crate) between: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    pub(crate) exists: Option<Spanned<bool>>,
    pub(crate) all_null: Option<Spanned<bool>>,
    pub(crate) every: Option<Spanned<bool>>,
}

/// A provider's built-in list: `[[rule]]` tables.
#[derive(Debug, Deserialize)]
pub(crate) struct RawRules {
    #[serde(default)]
    pub(crate) rule: Vec<Spanned<RawRule>>,
}

/// The keys of a rule, of its `header` table and of each `json` table, for the unknown-key
/// pass of the config.
pub(crate) fn key_names() -> [&'static [&'static str]; 3] {
    [
        &[
            "operation",
            "method",
            "path",
            "status",
            "header",
            "json",
            "outcome",
            "reason",
            "code",
            "message",
            "detail",
            "retry_after",
        ],
        &["name", "exists", "equals", "one_of", "contains"],
        &[
            "pointer", "equals", "one_of", "contains", "between", "exists", "all_null", "every",
        ],
    ]
}

/// The longest text a rule compares with (an `equals`, a `contains`, a header value), in bytes.
pub(crate) const MAX_VALUE_BYTES: usize = 512;

/// Where problems go: a place in the text and what is wrong there.
type Report<'a> = dyn FnMut(Range<usize>, String) + 'a;

/// Checks one rule; `operations` are the names its `operation` may take. Returns `None`
/// after reporting every problem it has.
pub(crate) fn compile(
    raw: &Spanned<RawRule>,
    operations: &[&str],
    origin: Origin,
    report: &mut Report<'_>,
) -> Option<Rule> {
    let table = raw.span();
    let raw = raw.get_ref();
    let mut ok = true;
    let mut problem = |span: Range<usize>, message: String| {
        ok = false;
        report(span, message);
    };
    let operations_wanted = raw
        .operation
        .as_ref()
        .map(|value| {
            names(value, "operation", &mut problem)
                .into_iter()
                .filter_map(|(name, span)| {
                    if operations.contains(&name.as_str()) {
                        return Some(name);
                    }
                    let hint = nearest(&name, operations.iter().copied())
                        .map(|near| format!("did you mean \"{near}\"? "))
                        .unwrap_or_default();
                    problem(
                        span,
                        format!(
                            "unknown operation \"{name}\" ({hint}this service's operations: {})",
                            operations.join(", ")
                        ),
                    );
                    None
                })
                .collect()
        })
        .unwrap_or_default();
    let methods = raw
        .method
        .as_ref()
        .map(|value| {
            names(value, "method", &mut problem)
                .into_iter()
                .filter_map(|(name, span)| {
                    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphabetic()) {
                        Some(name.to_ascii_uppercase())
                    } else {
                        problem(
                            span,
                            format!("method \"{name}\" is not an HTTP method (e.g. \"POST\")"),
                        );
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let path = raw.path.as_ref().and_then(|path| {
        PathPattern::parse(path.get_ref())
            .map_err(|why| problem(path.span(), why))
            .ok()
    });
    let status = raw
        .status
        .as_ref()
        .map(|value| statuses(value, &mut problem))
        .unwrap_or_default();
    let header = raw
        .header
        .as_ref()
        .and_then(|header| header_condition(header, &mut problem));
    let mut json = Vec::new();
    if let Some(conditions) = &raw.json {
        if conditions.get_ref().len() > MAX_CONDITIONS {
            problem(
                conditions.span(),
                format!(
                    "a rule has at most {MAX_CONDITIONS} json conditions, this one has {}",
                    conditions.get_ref().len()
                ),
            );
        }
        for condition in conditions.get_ref() {
            if let Some(condition) = json_condition(condition, &mut problem) {
                json.push(condition);
            }
        }
    }
    let verdict = verdict(raw, table.clone(), json.is_empty(), &mut problem);
    let pointer = |value: &Option<Spanned<String>>, problem: &mut Report<'_>| {
        value.as_ref().and_then(|text| {
            Pointer::parse(text.get_ref())
                .map_err(|why| problem(text.span(), why))
                .ok()
        })
    };
    let code = pointer(&raw.code, &mut problem);
    let message = pointer(&raw.message, &mut problem);
    let detail = raw.detail.as_ref().and_then(|detail| {
        Template::parse(detail.get_ref())
            .map_err(|why| problem(detail.span(), why))
            .ok()
    });
    let retry_after = raw.retry_after.as_ref().and_then(|wait| {
        if verdict != Some(Verdict::Failure(FailureReason::Throttled)) {
            problem(
                wait.span(),
                "retry_after applies to outcome = \"throttled\" only".to_string(),
            );
            return None;
        }
        match parse_duration(wait.get_ref()) {
            Ok(duration) if duration <= MAX_RETRY_AFTER => Some(duration),
            Ok(_) => {
                problem(
                    wait.span(),
                    "retry_after is longer than 1h, the longest allowed".to_string(),
                );
                None
            }
            Err(why) => {
                problem(wait.span(), format!("retry_after: {why}"));
                None
            }
        }
    });
    let verdict = verdict?;
    ok.then_some(Rule {
        origin,
        operations: operations_wanted,
        methods,
        path,
        status,
        header,
        json,
        verdict,
        code,
        message,
        detail,
        retry_after,
    })
}

/// Checks a provider's built-in list (`[[rule]]` tables in `text`); `origin` names rule
/// `number` (from 1). Problems come back as `provider:LINE:COL: problem` lines.
pub(crate) fn compile_text(
    text: &str,
    provider: &str,
    operations: &[&str],
    origin: &dyn Fn(usize) -> Origin,
) -> Result<Vec<Rule>, Vec<String>> {
    let raw: RawRules = toml::from_str(text).map_err(|error| {
        let (line, column) = line_and_column(text, error.span().map_or(0, |span| span.start));
        vec![format!("{provider}:{line}:{column}: {}", error.message())]
    })?;
    let unknown = unknown_keys(text);
    if !unknown.is_empty() {
        return Err(unknown
            .into_iter()
            .map(|key| format!("{provider}: unknown key `{key}` in a rule"))
            .collect());
    }
    let mut problems = Vec::new();
    let mut rules = Vec::new();
    for (index, raw) in raw.rule.iter().enumerate() {
        let mut report = |span: Range<usize>, message: String| {
            let (line, column) = line_and_column(text, span.start);
            problems.push(format!("{provider}:{line}:{column}: {message}"));
        };
        if let Some(rule) = compile(raw, operations, origin(index + 1), &mut report) {
            rules.push(rule);
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

/// The keys of `[[rule]]` tables (and their `header` and `json` tables) that no rule takes: a
/// typo in a built-in list would otherwise be ignored.
fn unknown_keys(text: &str) -> Vec<String> {
    let Ok(document) = toml::from_str::<toml::Table>(text) else {
        return Vec::new();
    };
    let [rule_keys, header_keys, json_keys] = key_names();
    let mut unknown = Vec::new();
    let mut check = |table: &toml::Table, allowed: &[&str]| {
        unknown.extend(
            table
                .keys()
                .filter(|key| !allowed.contains(&key.as_str()))
                .cloned(),
        );
    };
    let rules = document.get("rule").and_then(toml::Value::as_array);
    for rule in rules
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_table)
    {
        check(rule, rule_keys);
        if let Some(header) = rule.get("header").and_then(toml::Value::as_table) {
            check(header, header_keys);
        }
        let conditions = rule.get("json").and_then(toml::Value::as_array);
        for condition in conditions
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_table)
        {
            check(condition, json_keys);
        }
    }
    unknown
}

/// A string or a list of strings, each with its place.
fn names(
    value: &Spanned<toml::Value>,
    key: &str,
    problem: &mut Report<'_>,
) -> Vec<(String, Range<usize>)> {
    match value.get_ref() {
        toml::Value::String(text) => vec![(text.clone(), value.span())],
        toml::Value::Array(items) if !items.is_empty() && items.len() <= MAX_LIST => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    toml::Value::String(text) => out.push((text.clone(), value.span())),
                    _ => {
                        problem(
                            value.span(),
                            format!("{key}: every entry is a string in quotes"),
                        );
                        return Vec::new();
                    }
                }
            }
            out
        }
        _ => {
            problem(
                value.span(),
                format!("{key} is a string or a list of 1 to {MAX_LIST} strings"),
            );
            Vec::new()
        }
    }
}

/// `500`, `"5xx"`, `"500-599"`, or a list of them, as inclusive ranges.
fn statuses(value: &Spanned<toml::Value>, problem: &mut Report<'_>) -> Vec<(u16, u16)> {
    let allowed = "a status is 100 to 599 (500), a class (\"5xx\") or a range (\"500-599\"); status takes one or a list";
    let one = |item: &toml::Value| -> Option<(u16, u16)> {
        match item {
            toml::Value::Integer(code) => {
                let code = u16::try_from(*code)
                    .ok()
                    .filter(|c| (100..=599).contains(c))?;
                Some((code, code))
            }
            toml::Value::String(text) => {
                let text = text.trim();
                if let Some(class) = text.strip_suffix("xx").or_else(|| text.strip_suffix("XX")) {
                    let digit = class.parse::<u16>().ok().filter(|d| (1..=5).contains(d))?;
                    return Some((digit * 100, digit * 100 + 99));
                }
                if let Ok(code) = text.parse::<u16>() {
                    return (100..=599).contains(&code).then_some((code, code));
                }
                let (low, high) = text.split_once('-')?;
                let low = low.trim().parse::<u16>().ok()?;
                let high = high.trim().parse::<u16>().ok()?;
                ((100..=599).contains(&low) && (low..=599).contains(&high)).then_some((low, high))
            }
            _ => None,
        }
    };
    let items: Vec<&toml::Value> = match value.get_ref() {
        toml::Value::Array(items) if !items.is_empty() && items.len() <= MAX_LIST => {
            items.iter().collect()
        }
        toml::Value::Array(_) => {
            problem(
                value.span(),
                format!("status lists 1 to {MAX_LIST} statuses"),
            );
            return Vec::new();
        }
        item => vec![item],
    };
    let mut ranges = Vec::new();
    for item in items {
        match one(item) {
            Some(range) => ranges.push(range),
            None => {
                let shown = match item {
                    toml::Value::String(text) => format!("\"{text}\""),
                    toml::Value::Integer(number) => number.to_string(),
                    _ => "of this type".to_string(),
                };
                problem(
                    value.span(),
                    format!("status {shown} is not allowed: {allowed}"),
                );
                return Vec::new();
            }
        }
    }
    ranges
}

fn header_condition(raw: &Spanned<RawHeader>, problem: &mut Report<'_>) -> Option<HeaderCondition> {
    let span = raw.span();
    let raw = raw.get_ref();
    let Some(name) = &raw.name else {
        problem(
            span,
            "header needs `name` and one of exists, equals, one_of, contains (e.g. { name = \"Retry-After\", exists = true })".into(),
        );
        return None;
    };
    if name.get_ref().is_empty()
        || !name
            .get_ref()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        problem(
            name.span(),
            format!(
                "header name \"{}\" is not an HTTP header name",
                name.get_ref()
            ),
        );
        return None;
    }
    let tests = [
        raw.exists
            .as_ref()
            .map(|v| HeaderTest::Exists(*v.get_ref())),
        raw.equals
            .as_ref()
            .map(|v| HeaderTest::Equals(v.get_ref().clone())),
        raw.one_of
            .as_ref()
            .map(|v| HeaderTest::OneOf(v.get_ref().iter().map(|s| s.get_ref().clone()).collect())),
        raw.contains
            .as_ref()
            .map(|v| HeaderTest::Contains(v.get_ref().clone())),
    ];
    let mut given = tests.into_iter().flatten();
    match (given.next(), given.next()) {
        (Some(test), None) => Some(HeaderCondition {
            name: name.get_ref().to_ascii_lowercase(),
            test,
        }),
        _ => {
            problem(
                span,
                "a header condition takes exactly one of exists, equals, one_of, contains".into(),
            );
            None
        }
    }
}

fn json_condition(raw: &Spanned<RawJson>, problem: &mut Report<'_>) -> Option<JsonCondition> {
    let span = raw.span();
    let raw = raw.get_ref();
    let Some(pointer_text) = &raw.pointer else {
        problem(
            span,
            "a json condition needs `pointer` and one of equals, one_of, contains, between, exists, all_null (e.g. { pointer = \"/errorCode\", equals = \"500.001.1001\" })".into(),
        );
        return None;
    };
    let pointer = match Pointer::parse(pointer_text.get_ref()) {
        Ok(pointer) => pointer,
        Err(why) => {
            problem(pointer_text.span(), why);
            return None;
        }
    };
    let scalar = |value: &Spanned<toml::Value>, problem: &mut Report<'_>| match value.get_ref() {
        toml::Value::String(text) if text.len() > MAX_VALUE_BYTES => {
            problem(
                value.span(),
                format!("a json value to compare is at most {MAX_VALUE_BYTES} bytes"),
            );
            None
        }
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(n) => Some(n.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => {
            problem(
                value.span(),
                "a json value to compare is a string, a number or true/false".into(),
            );
            None
        }
    };
    let mut tests = Vec::new();
    if let Some(value) = &raw.equals {
        tests.push(JsonTest::Equals(scalar(value, problem)?));
    }
    if let Some(list) = &raw.one_of {
        if list.get_ref().is_empty() || list.get_ref().len() > MAX_LIST {
            problem(list.span(), format!("one_of lists 1 to {MAX_LIST} values"));
            return None;
        }
        let mut values = Vec::new();
        for value in list.get_ref() {
            values.push(scalar(value, problem)?);
        }
        tests.push(JsonTest::OneOf(values));
    }
    if let Some(needle) = &raw.contains {
        if needle.get_ref().is_empty() || needle.get_ref().len() > MAX_VALUE_BYTES {
            problem(
                needle.span(),
                format!("contains takes 1 to {MAX_VALUE_BYTES} bytes of text"),
            );
            return None;
        }
        tests.push(JsonTest::Contains {
            written: needle.get_ref().clone(),
            lower: needle.get_ref().to_lowercase(),
        });
    }
    if let Some(range) = &raw.between {
        let numbers: Vec<f64> = range
            .get_ref()
            .iter()
            .filter_map(|value| match value.get_ref() {
                toml::Value::Integer(n) => Some(*n as f64),
                toml::Value::Float(n) if n.is_finite() => Some(*n),
                _ => None,
            })
            .collect();
        match numbers.as_slice() {
            [low, high] if range.get_ref().len() == 2 && low <= high => {
                tests.push(JsonTest::Between(*low, *high));
            }
            _ => {
                problem(
                    range.span(),
                    "between takes two numbers, the lower first (e.g. [200, 299])".into(),
                );
                return None;
            }
        }
    }
    if let Some(exists) = &raw.exists {
        tests.push(JsonTest::Exists(*exists.get_ref()));
    }
    if let Some(all_null) = &raw.all_null {
        tests.push(JsonTest::AllNull(*all_null.get_ref()));
    }
    if tests.len() != 1 {
        problem(
            span,
            "a json condition takes exactly one of equals, one_of, contains, between, exists, all_null"
                .into(),
        );
        return None;
    }
    let test = tests.remove(0);
    let every = raw.every.as_ref().is_some_and(|every| *every.get_ref());
    if let Some(flag) = &raw.every
        && (!pointer.has_wildcard()
            || !matches!(
                test,
                JsonTest::Equals(_)
                    | JsonTest::OneOf(_)
                    | JsonTest::Contains { .. }
                    | JsonTest::Between(..)
            ))
    {
        problem(
            flag.span(),
            "every applies to a pointer with a * segment and an equals, one_of, contains or between test"
                .into(),
        );
        return None;
    }
    Some(JsonCondition {
        pointer,
        test,
        every,
    })
}

/// The verdict `outcome` and `reason` give; `no_json`: the rule has no body conditions (a
/// failure then defaults to `http_status`, else to `body`).
fn verdict(
    raw: &RawRule,
    table: Range<usize>,
    no_json: bool,
    problem: &mut Report<'_>,
) -> Option<Verdict> {
    let Some(outcome) = &raw.outcome else {
        problem(
            table,
            format!("a rule needs `outcome`: one of {}", OUTCOMES.join(", ")),
        );
        return None;
    };
    let word = outcome.get_ref().as_str();
    let reason = raw.reason.as_ref();
    let no_reason = |problem: &mut Report<'_>| {
        if let Some(reason) = reason {
            problem(
                reason.span(),
                format!(
                    "reason applies to outcome = \"failure\" and \"caller\" only, not \"{word}\""
                ),
            );
            return false;
        }
        true
    };
    match word {
        "success" => no_reason(problem).then_some(Verdict::Success),
        "throttled" => no_reason(problem).then_some(Verdict::Failure(FailureReason::Throttled)),
        "balance" => no_reason(problem).then_some(Verdict::Failure(FailureReason::Balance)),
        "auth" => no_reason(problem).then_some(Verdict::Failure(FailureReason::Auth)),
        "account" => no_reason(problem).then_some(Verdict::Failure(FailureReason::Account)),
        "failure" => {
            let Some(reason) = reason else {
                return Some(Verdict::Failure(if no_json {
                    FailureReason::HttpStatus
                } else {
                    FailureReason::Body
                }));
            };
            match FailureReason::parse(reason.get_ref()) {
                Some(parsed) if parsed == FailureReason::Throttled || parsed.is_our_account() => {
                    problem(
                        reason.span(),
                        format!(
                            "write outcome = \"{parsed}\" instead of a failure with reason {parsed}"
                        ),
                    );
                    None
                }
                Some(parsed) => Some(Verdict::Failure(parsed)),
                None => {
                    let names: Vec<&str> = FailureReason::ALL
                        .iter()
                        .map(|reason| reason.as_str())
                        .filter(|name| {
                            !matches!(*name, "throttled" | "balance" | "auth" | "account")
                        })
                        .collect();
                    let hint = nearest(reason.get_ref(), names.iter().copied())
                        .map(|near| format!("did you mean \"{near}\"? "))
                        .unwrap_or_default();
                    problem(
                        reason.span(),
                        format!(
                            "unknown failure reason \"{}\" ({hint}allowed: {})",
                            reason.get_ref(),
                            names.join(", ")
                        ),
                    );
                    None
                }
            }
        }
        "caller" => {
            let kinds: Vec<&str> = CallerKind::ALL.iter().map(|kind| kind.as_str()).collect();
            let Some(reason) = reason else {
                problem(
                    table,
                    format!(
                        "a caller rule needs `reason`, the caller's outcome: one of {}",
                        kinds.join(", ")
                    ),
                );
                return None;
            };
            match CallerKind::parse(reason.get_ref()) {
                Some(kind) => Some(Verdict::Caller(kind)),
                None => {
                    let hint = nearest(reason.get_ref(), kinds.iter().copied())
                        .map(|near| format!("did you mean \"{near}\"? "))
                        .unwrap_or_default();
                    problem(
                        reason.span(),
                        format!(
                            "unknown caller reason \"{}\" ({hint}allowed: {})",
                            reason.get_ref(),
                            kinds.join(", ")
                        ),
                    );
                    None
                }
            }
        }
        other => {
            let hint = nearest(other, OUTCOMES.iter().copied())
                .map(|near| format!("did you mean \"{near}\"? "))
                .unwrap_or_default();
            problem(
                outcome.span(),
                format!(
                    "unknown outcome \"{other}\" ({hint}allowed: {})",
                    OUTCOMES.join(", ")
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        compile_text(text, "t", &["stk_push", "stk_query", "other"], &|number| {
            Origin::Default { number }
        })
        .err()
        .unwrap_or_default()
    }

    #[test]
    fn every_problem_is_named_at_its_place() {
        let found = problems(
            "[[rule]]\noperation = \"stk_qery\"\nstatus = 600\noutcome = \"failur\"\n\
             [[rule]]\noutcome = \"caller\"\n\
             [[rule]]\noutcome = \"failure\"\nreason = \"throttled\"\n\
             [[rule]]\noutcome = \"success\"\njson = [{ pointer = \"x\", equals = 1 }]\n\
             [[rule]]\noutcome = \"success\"\nretry_after = \"1m\"\n\
             [[rule]]\noutcome = \"auth\"\nheader = { name = \"Retry-After\" }\n\
             [[rule]]\noutcome = \"success\"\njson = [{ pointer = \"/a\", equals = 1, exists = true }]\n\
             [[rule]]\noutcome = \"caller\"\nreason = \"pendin\"\ndetail = \"{nope}\"\n",
        );
        assert_eq!(
            found,
            [
                "t:2:13: unknown operation \"stk_qery\" (did you mean \"stk_query\"? this service's operations: stk_push, stk_query, other)",
                "t:3:10: status 600 is not allowed: a status is 100 to 599 (500), a class (\"5xx\") or a range (\"500-599\"); status takes one or a list",
                "t:4:11: unknown outcome \"failur\" (did you mean \"failure\"? allowed: success, failure, throttled, balance, auth, account, caller)",
                "t:5:1: a caller rule needs `reason`, the caller's outcome: one of pending, declined, customer_funds, recipient, validation, duplicate, not_found, client",
                "t:9:10: write outcome = \"throttled\" instead of a failure with reason throttled",
                "t:12:21: the JSON pointer \"x\" must start with / (e.g. \"/error/code\")",
                "t:15:15: retry_after applies to outcome = \"throttled\" only",
                "t:18:10: a header condition takes exactly one of exists, equals, one_of, contains",
                "t:21:9: a json condition takes exactly one of equals, one_of, contains, between, exists, all_null",
                "t:24:10: unknown caller reason \"pendin\" (did you mean \"pending\"? allowed: pending, declined, customer_funds, recipient, validation, duplicate, not_found, client)",
                "t:25:10: the detail has an unknown placeholder {nope} (allowed: {status}, {method}, {operation}, {code}, {message}, or a JSON pointer such as {/errorMessage})",
            ]
        );
    }

    #[test]
    fn a_misspelt_key_in_a_built_in_list_is_caught() {
        let found = compile_text(
            "[[rule]]\nstatus = 500\noutcome = \"failure\"\nmesage = \"/m\"\n",
            "t",
            &["other"],
            &|number| Origin::Default { number },
        )
        .unwrap_err();
        assert_eq!(found, ["t: unknown key `mesage` in a rule"]);
    }

    #[test]
    fn a_good_list_compiles_in_order() {
        let rules = compile_text(
            "[[rule]]\nstatus = \"5xx\"\noutcome = \"failure\"\n\
             [[rule]]\noperation = [\"stk_push\", \"stk_query\"]\njson = [{ pointer = \"/R/*/c\", one_of = [1, \"2\"], every = true }]\noutcome = \"failure\"\n",
            "t",
            &["stk_push", "stk_query", "other"],
            &|number| Origin::Default { number },
        )
        .unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].status, vec![(500, 599)]);
        assert_eq!(
            rules[0].verdict,
            Verdict::Failure(FailureReason::HttpStatus)
        );
        assert_eq!(rules[1].verdict, Verdict::Failure(FailureReason::Body));
        assert_eq!(rules[1].origin, Origin::Default { number: 2 });
        assert!(rules[1].json[0].every);
    }
}
