//! A service's schedule (`every` or a cron `schedule`), and a cron schedule's problem on one
//! line, at the column of the field that is wrong.

use std::str::FromStr;

use toml::Spanned;

use super::Validator;
use crate::config::raw::RawService;
use crate::config::{DEFAULT_EVERY, Schedule};

impl Validator<'_> {
    pub(super) fn schedule(&mut self, raw: &RawService) -> Schedule {
        match (&raw.every, &raw.schedule) {
            (Some(_), Some(schedule)) => {
                self.problems.at(
                    schedule.span(),
                    "set either `every` or `schedule`, not both",
                );
                Schedule::Every(DEFAULT_EVERY)
            }
            (Some(every), None) => {
                Schedule::Every(self.duration("every", Some(every), DEFAULT_EVERY, false))
            }
            (None, Some(expression)) => match self.cron(expression) {
                Some(schedule) => Schedule::Cron {
                    expression: expression.get_ref().clone(),
                    schedule: Box::new(schedule),
                },
                None => Schedule::Every(DEFAULT_EVERY),
            },
            (None, None) => Schedule::Every(DEFAULT_EVERY),
        }
    }

    /// A cron schedule (seconds first); a problem points at the field that is wrong.
    pub(super) fn cron(&mut self, expression: &Spanned<String>) -> Option<cron::Schedule> {
        match cron::Schedule::from_str(expression.get_ref()) {
            Ok(schedule) => Some(schedule),
            Err(_) => {
                let (offset, message) = cron_problem(expression.get_ref());
                // The value's span starts at its opening quote.
                let start = expression.span().start + 1 + offset;
                self.problems.at(start..start, message);
                None
            }
        }
    }
}

/// The fields of a cron schedule, in order, with what each allows.
const CRON_FIELDS: &[(&str, &str)] = &[
    ("seconds", "0-59"),
    ("minutes", "0-59"),
    ("hours", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day of week", "1-7 (1 is Sunday) or SUN-SAT"),
    ("year", "1970-2099"),
];

/// Where in a cron schedule the cron crate's complaint is (a byte offset into it) and a
/// one-line message naming the field and what it allows.
fn cron_problem(expression: &str) -> (usize, String) {
    const SHAPE: &str = "six fields, seconds first, and an optional year, e.g. \"0 */5 * * * *\"";
    let fields: Vec<(usize, &str)> = expression
        .split_whitespace()
        .map(|field| {
            (
                field.as_ptr() as usize - expression.as_ptr() as usize,
                field,
            )
        })
        .collect();
    if !(6..=7).contains(&fields.len()) {
        return (
            0,
            format!(
                "bad cron schedule \"{expression}\": it has {} fields; write {SHAPE}",
                fields.len()
            ),
        );
    }
    for (index, (offset, field)) in fields.iter().enumerate() {
        let alone: Vec<&str> = (0..fields.len())
            .map(|other| if other == index { *field } else { "*" })
            .collect();
        if cron::Schedule::from_str(&alone.join(" ")).is_err() {
            let (name, allowed) = CRON_FIELDS[index];
            return (
                *offset,
                format!(
                    "bad cron schedule: the {name} field \"{field}\" is not valid ({name}: {allowed}; \
                     each field is *, a value, a list a,b, a range a-b or a step */n)"
                ),
            );
        }
    }
    let why = cron::Schedule::from_str(expression)
        .err()
        .map(|error| cron_reason(&error.to_string(), expression))
        .unwrap_or_default();
    (
        0,
        format!("bad cron schedule \"{expression}\"{why}; write {SHAPE}"),
    )
}

/// The cron crate's message without the copy of the expression and the caret line it adds.
fn cron_reason(message: &str, expression: &str) -> String {
    let reason: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && *line != expression.trim() && !line.starts_with('^'))
        .collect();
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {}", reason.join(" "))
    }
}
