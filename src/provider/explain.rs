//! `breakerd explain` and the README's provider tables: why an answer counts the way it does
//! (its operation, the rule that decided, the verdict), and every provider's operations and
//! rules in one generated section.

use std::fmt::Write as _;

use super::judge::{Judge, OTHER, default_rules};
use super::rules::Head;
use super::{MAX_JUDGED_BODY, PROVIDERS};

/// What `breakerd explain` prints for an answer: the operation, every rule in order up to the
/// one that decided, and the verdict with its detail.
pub fn explain(
    judge: &Judge,
    method: &str,
    path: &str,
    status: u16,
    headers: &Vec<(String, String)>,
    body: Option<&[u8]>,
) -> String {
    let path = judge.relative_path(path);
    let operation = judge.operation(method, path);
    let head = Head {
        operation: &operation.name,
        method,
        path,
        status,
        headers,
    };
    let judgement = judge.judge(&head, body);
    let mut out = String::new();
    let _ = writeln!(out, "operation: {} ({method} {path})", operation.name);
    match body {
        None => {
            let _ = writeln!(
                out,
                "body: not read (none given, or longer than {MAX_JUDGED_BODY} bytes): rules that read it do not match"
            );
        }
        Some(bytes) if serde_json::from_slice::<serde_json::Value>(bytes).is_err() => {
            let _ = writeln!(
                out,
                "body: {} bytes, not JSON: JSON conditions do not match",
                bytes.len()
            );
        }
        Some(bytes) => {
            let _ = writeln!(out, "body: {} bytes of JSON", bytes.len());
        }
    }
    let _ = writeln!(
        out,
        "rule: {}: {}",
        judgement.rule,
        rule_summary(judge, &judgement.rule)
    );
    let _ = writeln!(out, "outcome: {}", judgement.verdict.words());
    let effect = match judgement.verdict {
        crate::outcome::Verdict::Success => "counts as a success of the provider",
        crate::outcome::Verdict::Caller(_) => {
            "counts for nothing against the provider (breakerd_caller_outcomes_total)"
        }
        crate::outcome::Verdict::Failure(_) => "counts as a failure against the service's breaker",
    };
    let _ = writeln!(out, "effect: {effect}");
    if !judgement.detail.is_empty() {
        let _ = writeln!(out, "detail: {}", judgement.detail);
    }
    for (name, value) in [("code", &judgement.code), ("message", &judgement.message)] {
        if let Some(value) = value {
            let _ = writeln!(out, "{name}: {value}");
        }
    }
    if let Some(wait) = judgement.retry_after {
        let _ = writeln!(
            out,
            "retry after: {} (no trial call before then)",
            crate::duration::format_duration(wait)
        );
    }
    out
}

fn rule_summary(judge: &Judge, origin: &super::rules::Origin) -> String {
    judge
        .rules()
        .find(|rule| rule.origin == *origin)
        .map(|rule| rule.summary())
        .unwrap_or_else(|| "no rule matched: success".to_string())
}

/// README's section on the providers: for each, its hosts, its operations and how each answer
/// counts, from the catalogues and rules themselves (`breakerd rules --markdown`; a test keeps
/// README equal to it).
pub fn markdown() -> String {
    let mut out = String::new();
    for provider in PROVIDERS {
        let _ = writeln!(
            out,
            "#### `{}`: {}\n\nSandbox `{}`, production `{}` (`environment`). The check: {}.\n",
            provider.name,
            provider.title,
            provider.hosts.sandbox,
            provider.hosts.production,
            provider.check_words
        );
        let _ = writeln!(out, "| operation | method and path |\n|---|---|");
        for operation in provider.operations {
            let _ = writeln!(
                out,
                "| `{}` | `{} {}` |",
                operation.name, operation.method, operation.path
            );
        }
        let _ = writeln!(out, "| `{OTHER}` | anything else |\n");
        let _ = writeln!(
            out,
            "| # | when the answer has | it counts as |\n|---|---|---|"
        );
        for (number, rule) in provider.rules().iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                number + 1,
                escape(&rule.conditions()),
                rule.verdict.words()
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "#### Every service, after its provider's rules\n\n| # | when the answer has | it counts as |\n|---|---|---|"
    );
    for (number, rule) in default_rules().iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            number + 1,
            escape(&rule.conditions()),
            rule.verdict.words()
        );
    }
    out
}

/// Markdown table cells: pipes escaped.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}
