//! What a rule matches an answer by, beyond its path: the operation and method names (a
//! string or a list) and the statuses (a code, a class, a range, or a list of them).

use std::ops::Range;

use toml::Spanned;

use super::raw::Report;
use crate::provider::rules::MAX_LIST;

/// A string or a list of strings, each with its place.
pub(super) fn names(
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
pub(super) fn statuses(value: &Spanned<toml::Value>, problem: &mut Report<'_>) -> Vec<(u16, u16)> {
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
