//! What a rule says an answer is: its `outcome` and `reason` read into a [`Verdict`], each
//! unknown word answered with the nearest allowed one.

use std::ops::Range;

use super::raw::{RawRule, Report};
use crate::outcome::{CallerKind, FailureReason, Verdict};
use crate::text::nearest;

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

/// The verdict `outcome` and `reason` give; `no_json`: the rule has no body conditions (a
/// failure then defaults to `http_status`, else to `body`).
pub(super) fn verdict(
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
