//! The text log format: one logfmt line per event — `ts=… level=WARN target=… msg="…"` and
//! then the event's fields — with every value that is not a bare word quoted (and `"`, `\`
//! and line breaks escaped), so any logfmt reader splits a line where it was meant to split.
//! At a terminal the level is coloured; nowhere else.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The logfmt event format (see the module's doc).
#[derive(Clone, Copy, Debug, Default)]
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let now = humantime::format_rfc3339_millis(crate::wall::now());
        // At a terminal (and only there) the level stands out in colour; files, pipes and
        // journald get plain logfmt.
        let level = metadata.level();
        let mut line = if writer.has_ansi_escapes() {
            let colour = match *level {
                Level::ERROR => "31",
                Level::WARN => "33",
                Level::INFO => "32",
                _ => "2",
            };
            format!("ts={now} level=\u{1b}[{colour}m{level}\u{1b}[0m target=")
        } else {
            format!("ts={now} level={level} target=")
        };
        push_value(&mut line, metadata.target());
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(message) = &fields.message {
            line.push_str(" msg=");
            push_value(&mut line, message);
        }
        line.push_str(&fields.rest);
        writeln!(writer, "{line}")
    }
}

/// An event's fields: its message, and the others already written as ` key=value`.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    rest: String,
}

impl Fields {
    fn push(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
            return;
        }
        self.rest.push(' ');
        self.rest.push_str(field.name());
        self.rest.push('=');
        push_value(&mut self.rest, value);
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.push(field, &text);
    }
}

/// Whether `value` can stand unquoted: not empty, no space, `=`, `"`, `\` or control
/// character.
fn is_bare(value: &str) -> bool {
    !value.is_empty()
        && value.chars().all(|c| {
            !c.is_whitespace() && !c.is_control() && !deceives(c) && !matches!(c, '=' | '"' | '\\')
        })
}

/// Whether `c` would make a log viewer break or reorder a line without showing itself: line
/// and paragraph separators, bidirectional overrides and isolates, zero-width characters.
fn deceives(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
    )
}

/// Appends `value` to `line`, quoted and escaped unless it is bare.
fn push_value(line: &mut String, value: &str) {
    if is_bare(value) {
        line.push_str(value);
        return;
    }
    line.push('"');
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() || deceives(c) => {
                let _ = write!(line, "\\u{:04x}", u32::from(c));
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> String {
        let mut line = String::new();
        push_value(&mut line, text);
        line
    }

    #[test]
    fn only_bare_words_go_unquoted() {
        assert_eq!(value("mpesa"), "mpesa");
        assert_eq!(value("2026-12-07T04:00:00Z"), "2026-12-07T04:00:00Z");
        assert_eq!(
            value("3 consecutive failures"),
            "\"3 consecutive failures\""
        );
        assert_eq!(value(""), "\"\"");
        assert_eq!(value("a=b"), "\"a=b\"");
        assert_eq!(value("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
        assert_eq!(value("two\nlines"), "\"two\\nlines\"");
        assert_eq!(value("esc\u{1b}[31m"), "\"esc\\u001b[31m\"", "Go's \\uXXXX");
        assert_eq!(value("a\u{2028}b"), "\"a\\u2028b\"", "no hidden line break");
        assert_eq!(
            value("\u{202e}txt"),
            "\"\\u202etxt\"",
            "no hidden reordering"
        );
    }
}
