//! Config problems with their place in the file: `PATH:LINE:COL: what is wrong`.

use std::fmt;
use std::ops::Range;

use thiserror::Error;

use crate::text::line_and_column;

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
