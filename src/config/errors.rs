//! Config problems with their place in the file: `PATH:LINE:COL: what is wrong`.

use std::fmt;
use std::ops::Range;

use thiserror::Error;

/// One problem in a config file.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{path}:{line}:{column}: {message}")]
pub struct ConfigError {
    /// The file, as given.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// Why a config could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        /// The file, as given.
        path: String,
        /// Why.
        source: super::FileError,
    },
    /// The file was read and has problems, one per entry, in file order.
    #[error("{}", Lines(.0))]
    Invalid(Vec<ConfigError>),
}

impl LoadError {
    /// Every problem, one line each, as `breakerd check` prints them.
    pub fn lines(&self) -> Vec<String> {
        match self {
            LoadError::Read { .. } => vec![self.to_string()],
            LoadError::Invalid(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }
}

struct Lines<'a>(&'a [ConfigError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Collects problems against one file's text, turning byte spans into lines and columns.
#[derive(Debug)]
pub(crate) struct Problems<'a> {
    path: &'a str,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl<'a> Problems<'a> {
    pub(crate) fn new(path: &'a str, text: &'a str) -> Self {
        Self {
            path,
            text,
            errors: Vec::new(),
        }
    }

    /// Records `message` at the start of `span`.
    pub(crate) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_and_column(self.text, span.start);
        self.errors.push(ConfigError {
            path: self.path.to_string(),
            line,
            column,
            message: message.into(),
        });
    }

    /// The file and the line and column of `span`'s start.
    pub(crate) fn place(&self, span: &Range<usize>) -> (&'a str, usize, usize) {
        let (line, column) = line_and_column(self.text, span.start);
        (self.path, line, column)
    }

    pub(crate) fn count(&self) -> usize {
        self.errors.len()
    }

    pub(crate) fn into_result<T>(mut self, value: T) -> Result<T, LoadError> {
        if self.errors.is_empty() {
            return Ok(value);
        }
        self.errors.sort_by_key(|error| (error.line, error.column));
        Err(LoadError::Invalid(self.errors))
    }

    pub(crate) fn into_error(mut self) -> LoadError {
        self.errors.sort_by_key(|error| (error.line, error.column));
        LoadError::Invalid(self.errors)
    }
}

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
}
