//! Reading rules: the raw tables as written (in `alerts.toml`'s `[[services.NAME.rules]]` or a
//! provider's built-in list), checked key by key into [`Rule`]s. Every problem is reported at
//! its place in the text, saying what is allowed. This file checks a whole rule and a built-in
//! list; `raw` holds the tables as written, `matchers` the operation, method and status,
//! `conditions` the header and json conditions, and `verdict` the outcome and reason.

mod conditions;
mod matchers;
mod raw;
mod verdict;

use std::ops::Range;

use toml::Spanned;

use super::{MAX_CONDITIONS, MAX_RETRY_AFTER, Origin, PathPattern, Pointer, Rule, Template};
use crate::duration::parse_duration;
use crate::outcome::{FailureReason, Verdict};
use crate::text::{line_and_column, nearest};
use conditions::{header_condition, json_condition};
use matchers::{names, statuses};
use verdict::verdict;

pub(crate) use raw::{RawRule, key_names};
use raw::{RawRules, Report};

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
