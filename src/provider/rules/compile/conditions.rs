//! A rule's conditions on the answer: its `header` table and each `json` condition, checked
//! into a [`HeaderCondition`] or a [`JsonCondition`] (pointer, test and `every`).

use toml::Spanned;

use super::raw::{RawHeader, RawJson, Report};
use crate::provider::rules::{
    HeaderCondition, HeaderTest, JsonCondition, JsonTest, MAX_LIST, Pointer,
};

/// The longest text a rule compares with (an `equals`, a `contains`, a header value), in bytes.
pub(crate) const MAX_VALUE_BYTES: usize = 512;

pub(super) fn header_condition(
    raw: &Spanned<RawHeader>,
    problem: &mut Report<'_>,
) -> Option<HeaderCondition> {
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

pub(super) fn json_condition(
    raw: &Spanned<RawJson>,
    problem: &mut Report<'_>,
) -> Option<JsonCondition> {
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
