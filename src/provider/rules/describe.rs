//! Rules in words and as TOML again: one line per rule for `breakerd explain`, the README's
//! provider tables and `check --print`'s comments, and the table a user rule was written as.

use std::fmt::Write as _;

use super::{HeaderTest, JsonTest, Rule};
use crate::outcome::Verdict;
use crate::text::toml_string as quote;

impl Rule {
    /// What the rule matches, in words: `operation stk_query, status 500, /errorCode =
    /// "500.001.1001"`; `any answer` when it matches everything.
    pub fn conditions(&self) -> String {
        let mut parts = Vec::new();
        if !self.operations.is_empty() {
            parts.push(format!("operation {}", self.operations.join(" or ")));
        }
        if !self.methods.is_empty() {
            parts.push(format!("method {}", self.methods.join(" or ")));
        }
        if let Some(path) = &self.path {
            parts.push(format!("path {path}"));
        }
        if !self.status.is_empty() {
            let statuses: Vec<String> = self
                .status
                .iter()
                .map(|range| status_text(*range))
                .collect();
            parts.push(format!("status {}", statuses.join(" or ")));
        }
        if let Some(header) = &self.header {
            let test = match &header.test {
                HeaderTest::Exists(true) => "present".to_string(),
                HeaderTest::Exists(false) => "absent".to_string(),
                HeaderTest::Equals(value) => format!("= \"{value}\""),
                HeaderTest::OneOf(values) => format!("one of {}", quoted_list(values)),
                HeaderTest::Contains(value) => format!("contains \"{value}\""),
            };
            parts.push(format!("header {} {test}", header.name));
        }
        for condition in &self.json {
            let scope = if condition.every { "every " } else { "" };
            let test = match &condition.test {
                JsonTest::Equals(value) => format!("= \"{value}\""),
                JsonTest::OneOf(values) => format!("one of {}", quoted_list(values)),
                JsonTest::Contains { written, .. } => format!("contains \"{written}\""),
                JsonTest::Between(low, high) => format!("from {low} to {high}"),
                JsonTest::Exists(true) => "present".to_string(),
                JsonTest::Exists(false) => "absent".to_string(),
                JsonTest::AllNull(true) => "all null".to_string(),
                JsonTest::AllNull(false) => "not all null".to_string(),
            };
            parts.push(format!("{scope}{} {test}", condition.pointer));
        }
        if parts.is_empty() {
            "any answer".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// The rule in one line: `operation stk_query, status 500 → caller pending`.
    pub fn summary(&self) -> String {
        format!("{} → {}", self.conditions(), self.verdict.words())
    }

    /// The rule as the `[[TABLE]]` it can be written as in `alerts.toml`.
    pub fn to_toml(&self, table: &str) -> String {
        let mut out = format!("[[{table}]]\n");
        let list = |values: &[String]| quoted_list(values);
        if !self.operations.is_empty() {
            let _ = writeln!(out, "operation = {}", list(&self.operations));
        }
        if !self.methods.is_empty() {
            let _ = writeln!(out, "method = {}", list(&self.methods));
        }
        if let Some(path) = &self.path {
            let _ = writeln!(out, "path = {}", quote(path.as_str()));
        }
        if !self.status.is_empty() {
            let statuses: Vec<String> = self
                .status
                .iter()
                .map(|range| quote(&status_text(*range)))
                .collect();
            let _ = writeln!(out, "status = [{}]", statuses.join(", "));
        }
        if let Some(header) = &self.header {
            let test = match &header.test {
                HeaderTest::Exists(flag) => format!("exists = {flag}"),
                HeaderTest::Equals(value) => format!("equals = {}", quote(value)),
                HeaderTest::OneOf(values) => format!("one_of = {}", list(values)),
                HeaderTest::Contains(value) => format!("contains = {}", quote(value)),
            };
            let _ = writeln!(out, "header = {{ name = {}, {test} }}", quote(&header.name));
        }
        if !self.json.is_empty() {
            let conditions: Vec<String> = self
                .json
                .iter()
                .map(|condition| {
                    let test = match &condition.test {
                        JsonTest::Equals(value) => format!("equals = {}", quote(value)),
                        JsonTest::OneOf(values) => format!("one_of = {}", list(values)),
                        JsonTest::Contains { written, .. } => {
                            format!("contains = {}", quote(written))
                        }
                        JsonTest::Between(low, high) => format!("between = [{low}, {high}]"),
                        JsonTest::Exists(flag) => format!("exists = {flag}"),
                        JsonTest::AllNull(flag) => format!("all_null = {flag}"),
                    };
                    let every = if condition.every {
                        ", every = true"
                    } else {
                        ""
                    };
                    format!(
                        "{{ pointer = {}, {test}{every} }}",
                        quote(condition.pointer.as_str())
                    )
                })
                .collect();
            let _ = writeln!(out, "json = [{}]", conditions.join(", "));
        }
        let _ = writeln!(out, "outcome = {}", quote(self.verdict.class()));
        let reason = match self.verdict {
            Verdict::Failure(reason) if self.verdict.class() == "failure" => Some(reason.as_str()),
            Verdict::Caller(kind) => Some(kind.as_str()),
            _ => None,
        };
        if let Some(reason) = reason {
            let _ = writeln!(out, "reason = {}", quote(reason));
        }
        for (key, pointer) in [("code", &self.code), ("message", &self.message)] {
            if let Some(pointer) = pointer {
                let _ = writeln!(out, "{key} = {}", quote(pointer.as_str()));
            }
        }
        if let Some(detail) = &self.detail {
            let _ = writeln!(out, "detail = {}", quote(detail.as_str()));
        }
        if let Some(wait) = self.retry_after {
            let _ = writeln!(
                out,
                "retry_after = {}",
                quote(&crate::duration::format_duration(wait))
            );
        }
        out
    }
}

fn status_text((low, high): (u16, u16)) -> String {
    if low == high {
        low.to_string()
    } else if low % 100 == 0 && high == low + 99 {
        format!("{}xx", low / 100)
    } else {
        format!("{low}-{high}")
    }
}

fn quoted_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|value| quote(value)).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::super::{Origin, compile_text};

    #[test]
    fn a_rule_reads_back_as_it_was_written() {
        let text = "[[rule]]\noperation = [\"stk_query\"]\nmethod = [\"POST\"]\npath = \"/mpesa/*/v1/query\"\nstatus = [\"500\", \"4xx\", \"500-503\"]\nheader = { name = \"retry-after\", exists = true }\njson = [{ pointer = \"/errorCode\", equals = \"500.001.1001\" }, { pointer = \"/R/*/s\", one_of = [\"1\", \"2\"], every = true }]\noutcome = \"caller\"\nreason = \"pending\"\ncode = \"/errorCode\"\nmessage = \"/errorMessage\"\ndetail = \"pending: {code}\"\n";
        let origin = |number| Origin::Default { number };
        let rules = compile_text(text, "t", &["stk_query", "other"], &origin).unwrap();
        let written = rules[0].to_toml("rule");
        assert_eq!(written, text);
        let again = compile_text(&written, "t", &["stk_query", "other"], &origin).unwrap();
        assert_eq!(again, rules);
        assert_eq!(
            rules[0].summary(),
            "operation stk_query, method POST, path /mpesa/*/v1/query, status 500 or 4xx or 500-503, header retry-after present, /errorCode = \"500.001.1001\", every /R/*/s one of [\"1\", \"2\"] → caller pending"
        );
    }
}
