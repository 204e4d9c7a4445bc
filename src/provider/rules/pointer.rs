//! JSON pointers (RFC 6901) with one addition: a `*` segment stands for every element of an
//! array (or every value of an object), so `/SMSMessageData/Recipients/*/statusCode` reaches
//! each recipient's status.

use std::fmt;

use serde_json::Value;

/// The most segments a pointer may have.
pub(crate) const MAX_SEGMENTS: usize = 16;
/// The most values a wildcard pointer gathers (an answer with more elements is judged by the
/// first ones).
pub(crate) const MAX_VALUES: usize = 1000;

/// One step of a pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// An object key, or an array index when it is a number.
    Key(String),
    /// Every element or value.
    Any,
}

/// A parsed pointer: `/error/code`, `/Recipients/*/status`; `` (empty) is the whole document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pointer {
    text: String,
    segments: Vec<Segment>,
}

impl Pointer {
    /// Parses `text`, or says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Pointer, String> {
        if text.is_empty() {
            return Ok(Pointer {
                text: String::new(),
                segments: Vec::new(),
            });
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "the JSON pointer \"{text}\" must start with / (e.g. \"/error/code\")"
            ));
        };
        let mut segments = Vec::new();
        for raw in rest.split('/') {
            if raw == "*" {
                segments.push(Segment::Any);
                continue;
            }
            let mut key = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    key.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => key.push('~'),
                    Some('1') => key.push('/'),
                    _ => {
                        return Err(format!(
                            "the JSON pointer \"{text}\" has a ~ that is not ~0 (for ~) or ~1 (for /)"
                        ));
                    }
                }
            }
            segments.push(Segment::Key(key));
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(format!(
                "the JSON pointer \"{text}\" has {} segments, at most {MAX_SEGMENTS} are allowed",
                segments.len()
            ));
        }
        Ok(Pointer {
            text: text.to_string(),
            segments,
        })
    }

    /// Whether the pointer has a `*` segment (it may reach several values).
    pub(crate) fn has_wildcard(&self) -> bool {
        self.segments.contains(&Segment::Any)
    }

    /// The pointer as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Every value the pointer reaches in `document`, in document order (at most
    /// [`MAX_VALUES`]); none when a step is missing.
    pub(crate) fn resolve<'v>(&self, document: &'v Value) -> Vec<&'v Value> {
        let mut current = vec![document];
        for segment in &self.segments {
            let mut next = Vec::new();
            for value in current {
                match (segment, value) {
                    (Segment::Key(key), Value::Object(map)) => next.extend(map.get(key)),
                    (Segment::Key(key), Value::Array(items)) => {
                        next.extend(key.parse::<usize>().ok().and_then(|i| items.get(i)));
                    }
                    (Segment::Any, Value::Array(items)) => next.extend(items.iter()),
                    (Segment::Any, Value::Object(map)) => next.extend(map.values()),
                    _ => {}
                }
                if next.len() >= MAX_VALUES {
                    next.truncate(MAX_VALUES);
                    break;
                }
            }
            current = next;
        }
        current
    }

    /// The first value the pointer reaches.
    pub(crate) fn first<'v>(&self, document: &'v Value) -> Option<&'v Value> {
        self.resolve(document).into_iter().next()
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A JSON value as rules compare it: strings as they are, numbers and booleans as JSON writes
/// them (`101`, `true`), so `"200"` and `200` are equal; `None` for null, arrays and objects.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Whether `value` holds nothing: null, or an object or array whose every value holds nothing
/// (Pesapal's success carries `"error": {"error_type": null, "code": null, ...}`).
pub(crate) fn is_all_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.values().all(is_all_null),
        Value::Array(items) => items.iter().all(is_all_null),
        Value::String(_) | Value::Number(_) | Value::Bool(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_reach_keys_indexes_and_every_element() {
        let document = json!({
            "SMSMessageData": {"Recipients": [{"statusCode": 101}, {"statusCode": 406}]},
            "a/b": {"~c": 1},
            "list": [10, 20]
        });
        let codes = Pointer::parse("/SMSMessageData/Recipients/*/statusCode").unwrap();
        assert!(codes.has_wildcard());
        assert_eq!(codes.resolve(&document), vec![&json!(101), &json!(406)]);
        let escaped = Pointer::parse("/a~1b/~0c").unwrap();
        assert_eq!(escaped.first(&document), Some(&json!(1)));
        assert_eq!(
            Pointer::parse("/list/1").unwrap().first(&document),
            Some(&json!(20))
        );
        assert_eq!(Pointer::parse("/list/9").unwrap().first(&document), None);
        assert_eq!(
            Pointer::parse("/nope/x").unwrap().resolve(&document).len(),
            0
        );
        assert_eq!(
            Pointer::parse("").unwrap().first(&document),
            Some(&document)
        );
    }

    #[test]
    fn bad_pointers_say_what_is_wrong() {
        assert!(
            Pointer::parse("error/code")
                .unwrap_err()
                .contains("must start with /")
        );
        assert!(Pointer::parse("/a~2").unwrap_err().contains("~0"));
        let deep = "/a".repeat(MAX_SEGMENTS + 1);
        assert!(Pointer::parse(&deep).unwrap_err().contains("at most 16"));
    }

    #[test]
    fn scalars_compare_as_text_and_all_null_looks_inside() {
        assert_eq!(scalar_text(&json!("200")), Some("200".into()));
        assert_eq!(scalar_text(&json!(200)), Some("200".into()));
        assert_eq!(scalar_text(&json!(true)), Some("true".into()));
        assert_eq!(scalar_text(&json!(null)), None);
        assert!(is_all_null(&json!(null)));
        assert!(is_all_null(
            &json!({"error_type": null, "code": null, "message": null, "call_back_url": null})
        ));
        assert!(!is_all_null(
            &json!({"code": "invalid_consumer_key_or_secret_provided"})
        ));
        assert!(is_all_null(&json!([])), "an empty list holds nothing");
    }
}
