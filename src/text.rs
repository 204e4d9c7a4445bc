//! Text helpers below both the config and the rule language: the line and column of a place
//! in a text, the nearest allowed word to a typo, a value written as a TOML string, and a
//! duration in milliseconds as log lines write it.

/// 1-based line and character column of byte `offset` in `text`.
pub(crate) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The candidate nearest to `word` by edit distance, if it is close enough to be a typo.
pub(crate) fn nearest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// `text` as a TOML basic string: in quotes, with quotes, backslashes and newlines escaped.
pub(crate) fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// A duration in milliseconds as a log line shows it: whole milliseconds from 100 ms up, three
/// significant digits below (`0.315`, `12.3`), never `0.31466000000000005`.
pub fn log_ms(milliseconds: f64) -> f64 {
    if !milliseconds.is_finite() || milliseconds <= 0.0 {
        return 0.0;
    }
    if milliseconds >= 100.0 {
        return milliseconds.round();
    }
    let scale = 10f64.powi(2 - milliseconds.log10().floor() as i32);
    (milliseconds * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_character_columns() {
        let text = "a = 1\nné = 2\n\nc";
        assert_eq!(line_and_column(text, 0), (1, 1));
        assert_eq!(line_and_column(text, 4), (1, 5));
        assert_eq!(line_and_column(text, 6), (2, 1));
        assert_eq!(line_and_column(text, 10), (2, 4), "é is one column");
        assert_eq!(line_and_column(text, text.len()), (4, 2));
        assert_eq!(line_and_column(text, 999), (4, 2));
    }

    #[test]
    fn typos_find_their_key() {
        let keys = ["failure_threshold", "reset_timeout", "timeout"];
        assert_eq!(nearest("failure_treshold", keys), Some("failure_threshold"));
        assert_eq!(nearest("timeuot", keys), Some("timeout"));
        assert_eq!(nearest("colour", keys), None);
    }

    #[test]
    fn toml_strings_escape_quotes_backslashes_and_newlines() {
        assert_eq!(toml_string("a \"b\" \\ c\nd"), "\"a \\\"b\\\" \\\\ c\\nd\"");
    }
}
