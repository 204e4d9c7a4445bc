//! The rules as written: the raw tables serde reads (`[[services.NAME.rules]]` or a provider's
//! `[[rule]]` list), the keys each takes, and where the problems found in them go.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

/// One rule as written.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawRule {
    /// An operation of the provider's catalogue, or a list of them.
    pub(crate) operation: Option<Spanned<toml::Value>>,
    /// A method, or a list.
    pub(crate) method: Option<Spanned<toml::Value>>,
    /// A path pattern.
    pub(crate) path: Option<Spanned<String>>,
    /// A status (`500`), a class (`"5xx"`), a range (`"500-599"`), or a list of them.
    pub(crate) status: Option<Spanned<toml::Value>>,
    /// A condition on one header.
    pub(crate) header: Option<Spanned<RawHeader>>,
    /// Conditions on the JSON body, all of which must hold.
    pub(crate) json: Option<Spanned<Vec<Spanned<RawJson>>>>,
    /// The class: success, failure, throttled, balance, auth, account or caller.
    pub(crate) outcome: Option<Spanned<String>>,
    /// For failure, the reason; for caller, the kind.
    pub(crate) reason: Option<Spanned<String>>,
    /// A JSON pointer to the provider's own code.
    pub(crate) code: Option<Spanned<String>>,
    /// A JSON pointer to the provider's own message.
    pub(crate) message: Option<Spanned<String>>,
    /// The detail sentence (a template).
    pub(crate) detail: Option<Spanned<String>>,
    /// For throttled: the wait when the answer has no `Retry-After`.
    pub(crate) retry_after: Option<Spanned<String>>,
}

/// A header condition as written.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawHeader {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) exists: Option<Spanned<bool>>,
    pub(crate) equals: Option<Spanned<String>>,
    pub(crate) one_of: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) contains: Option<Spanned<String>>,
}

/// A JSON condition as written.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawJson {
    pub(crate) pointer: Option<Spanned<String>>,
    pub(crate) equals: Option<Spanned<toml::Value>>,
    pub(crate) one_of: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    pub(crate) contains: Option<Spanned<String>>,
    pub(crate) between: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    pub(crate) exists: Option<Spanned<bool>>,
    pub(crate) all_null: Option<Spanned<bool>>,
    pub(crate) every: Option<Spanned<bool>>,
}

/// A provider's built-in list: `[[rule]]` tables.
#[derive(Debug, Deserialize)]
pub(crate) struct RawRules {
    #[serde(default)]
    pub(crate) rule: Vec<Spanned<RawRule>>,
}

/// The keys of a rule, of its `header` table and of each `json` table, for the unknown-key
/// pass of the config.
pub(crate) fn key_names() -> [&'static [&'static str]; 3] {
    [
        &[
            "operation",
            "method",
            "path",
            "status",
            "header",
            "json",
            "outcome",
            "reason",
            "code",
            "message",
            "detail",
            "retry_after",
        ],
        &["name", "exists", "equals", "one_of", "contains"],
        &[
            "pointer", "equals", "one_of", "contains", "between", "exists", "all_null", "every",
        ],
    ]
}

/// Where problems go: a place in the text and what is wrong there.
pub(super) type Report<'a> = dyn FnMut(Range<usize>, String) + 'a;
