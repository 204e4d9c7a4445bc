//! Detail templates: the sentence a rule gives its verdict, quoting the answer —
//! `{status}`, `{method}`, `{operation}`, the provider's `{code}` and `{message}` (as the rule's
//! `code` and `message` pointers find them), or any value of the body by its JSON pointer
//! (`{/errorMessage}`). `{{` and `}}` are literal braces. What is quoted is cut short and freed
//! of control characters; the caller redacts secrets from the result.

use std::fmt::Write as _;

use serde_json::Value;

use super::pointer::{Pointer, scalar_text};
use crate::outcome::MAX_QUOTE_CHARS;

/// The longest template, in bytes.
pub(crate) const MAX_TEMPLATE_BYTES: usize = 512;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Status,
    Method,
    Operation,
    Code,
    Message,
    Value(Pointer),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    text: String,
    pieces: Vec<Piece>,
}

/// What a template is filled in with.
pub(crate) struct Fill<'a> {
    pub(crate) status: Option<u16>,
    pub(crate) method: &'a str,
    pub(crate) operation: &'a str,
    pub(crate) code: Option<&'a str>,
    pub(crate) message: Option<&'a str>,
    pub(crate) json: Option<&'a Value>,
}

impl Template {
    /// Parses `text`, or says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        if text.len() > MAX_TEMPLATE_BYTES {
            return Err(format!(
                "the detail is {} bytes long, at most {MAX_TEMPLATE_BYTES} are allowed",
                text.len()
            ));
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("{{") {
                literal.push('{');
                rest = after;
                continue;
            }
            if let Some(after) = tail.strip_prefix("}}") {
                literal.push('}');
                rest = after;
                continue;
            }
            if tail.starts_with('}') {
                return Err(format!(
                    "the detail \"{text}\" has a lone }}: write }} as }}}} outside a placeholder"
                ));
            }
            let Some(close) = tail.find('}') else {
                return Err(format!(
                    "the detail \"{text}\" has a {{ that is never closed"
                ));
            };
            let name = &tail[1..close];
            let piece = match name {
                "status" => Piece::Status,
                "method" => Piece::Method,
                "operation" => Piece::Operation,
                "code" => Piece::Code,
                "message" => Piece::Message,
                pointer if pointer.starts_with('/') => Piece::Value(Pointer::parse(pointer)?),
                other => {
                    return Err(format!(
                        "the detail has an unknown placeholder {{{other}}} (allowed: {{status}}, {{method}}, {{operation}}, {{code}}, {{message}}, or a JSON pointer such as {{/errorMessage}})"
                    ));
                }
            };
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(piece);
            rest = &tail[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template {
            text: text.to_string(),
            pieces,
        })
    }

    /// Whether the template quotes the body.
    pub(crate) fn reads_body(&self) -> bool {
        self.pieces
            .iter()
            .any(|piece| matches!(piece, Piece::Value(_)))
    }

    /// The template as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The sentence for `fill`; a value not found is left out.
    pub(crate) fn render(&self, fill: &Fill<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Status => {
                    if let Some(status) = fill.status {
                        let _ = write!(out, "{status}");
                    }
                }
                Piece::Method => out.push_str(fill.method),
                Piece::Operation => out.push_str(fill.operation),
                Piece::Code => out.push_str(fill.code.unwrap_or_default()),
                Piece::Message => out.push_str(fill.message.unwrap_or_default()),
                Piece::Value(pointer) => {
                    if let Some(text) = fill
                        .json
                        .and_then(|json| pointer.first(json))
                        .and_then(scalar_text)
                    {
                        out.push_str(&quote(&text));
                    }
                }
            }
        }
        collapse_spaces(&out)
    }
}

/// Provider text as it may be shown: control characters made spaces, spaces collapsed, cut at
/// [`MAX_QUOTE_CHARS`] characters (with …).
pub(crate) fn quote(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = collapse_spaces(&cleaned);
    match cleaned.char_indices().nth(MAX_QUOTE_CHARS) {
        Some((cut, _)) => format!("{}…", &cleaned[..cut]),
        None => cleaned,
    }
}

fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fill<'a>(json: Option<&'a Value>) -> Fill<'a> {
        Fill {
            status: Some(500),
            method: "POST",
            operation: "stk_query",
            code: Some("500.001.1001"),
            message: Some("The transaction is being processed"),
            json,
        }
    }

    #[test]
    fn placeholders_are_filled_and_missing_values_left_out() {
        let body = json!({"errorMessage": "The transaction\nis being processed", "n": 7});
        let template = Template::parse(
            "HTTP {status} on {operation}: {code} ({/errorMessage}) {/missing} {{x}}",
        )
        .unwrap();
        assert!(template.reads_body());
        assert_eq!(
            template.render(&fill(Some(&body))),
            "HTTP 500 on stk_query: 500.001.1001 (The transaction is being processed) {x}"
        );
        let plain = Template::parse("{method} {message}").unwrap();
        assert!(!plain.reads_body());
        assert_eq!(
            plain.render(&fill(None)),
            "POST The transaction is being processed"
        );
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        assert!(
            Template::parse("{nope}")
                .unwrap_err()
                .contains("unknown placeholder {nope}")
        );
        assert!(
            Template::parse("{status")
                .unwrap_err()
                .contains("never closed")
        );
        assert!(Template::parse("a } b").unwrap_err().contains("lone }"));
        assert!(
            Template::parse(&"x".repeat(600))
                .unwrap_err()
                .contains("at most 512")
        );
    }

    #[test]
    fn quotes_are_short_and_plain() {
        assert_eq!(quote("a\r\n\tb"), "a b");
        let long = quote(&"é".repeat(500));
        assert_eq!(long.chars().count(), MAX_QUOTE_CHARS + 1);
        assert!(long.ends_with('…'));
    }
}
