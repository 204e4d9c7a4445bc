//! A service's `breakers` and an `http` service's `[[services.NAME.operations]]`: the scope
//! is one of the two names, a per-operation service has operations to give breakers to, and
//! each operation has a unique name and a path pattern.

use std::sync::Arc;

use super::Validator;
use crate::config::kinds::CheckKind;
use crate::config::raw::RawService;
use crate::config::{BreakerScope, OperationConfig};
use crate::provider::OTHER;
use crate::provider::rules::PathPattern;

/// The most operations an `http` service may name (the metrics keep 64 per service, `other`
/// included).
pub(crate) const MAX_OPERATIONS: usize = 63;
/// The longest operation name.
const MAX_OPERATION_NAME: usize = 64;

impl Validator<'_> {
    /// The service's `breakers` scope and its own operations, each problem at its place.
    pub(super) fn breakers(
        &mut self,
        raw: &RawService,
        kind: &CheckKind,
    ) -> (BreakerScope, Vec<OperationConfig>) {
        let operations = self.operations(raw);
        let Some(value) = &raw.breakers else {
            return (BreakerScope::PerService, operations);
        };
        let Some(scope) = self
            .one_of("breakers", value, &BreakerScope::NAMES)
            .as_deref()
            .and_then(BreakerScope::parse)
        else {
            return (BreakerScope::PerService, operations);
        };
        let catalogued = kind.operation_names().into_iter().any(|name| name != OTHER);
        if scope == BreakerScope::PerOperation && !catalogued && operations.is_empty() {
            let message = if kind.name == "http" {
                "breakers = \"per_operation\" needs operations to give breakers to: add [[services.NAME.operations]] entries (name and path, e.g. { name = \"orders\", path = \"/orders/*\" })".to_string()
            } else {
                format!(
                    "breakers = \"per_operation\" does not apply to {} {}: it has no operations (presets and http services with [[services.NAME.operations]] have)",
                    kind.label(),
                    kind.name
                )
            };
            self.problems.at(value.span(), message);
        }
        (scope, operations)
    }

    /// `[[services.NAME.operations]]`, in file order.
    fn operations(&mut self, raw: &RawService) -> Vec<OperationConfig> {
        let Some(list) = &raw.operations else {
            return Vec::new();
        };
        if list.get_ref().len() > MAX_OPERATIONS {
            self.problems.at(
                list.span(),
                format!(
                    "a service has at most {MAX_OPERATIONS} operations, this one has {}",
                    list.get_ref().len()
                ),
            );
            return Vec::new();
        }
        let mut operations: Vec<OperationConfig> = Vec::new();
        // Every name seen, those with a bad path included: a second one is still a second.
        let mut seen: Vec<&str> = Vec::new();
        for entry in list.get_ref() {
            let (Some(name), Some(path)) = (&entry.get_ref().name, &entry.get_ref().path) else {
                self.problems.at(
                    entry.span(),
                    "operations: an operation needs `name` and `path` (e.g. { name = \"orders\", path = \"/orders/*\" })",
                );
                continue;
            };
            let text = name.get_ref();
            let valid = !text.is_empty()
                && text.len() <= MAX_OPERATION_NAME
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
            if !valid {
                self.problems.at(
                    name.span(),
                    format!(
                        "operations: name \"{text}\" is not allowed: use 1 to {MAX_OPERATION_NAME} letters, digits, '-' or '_'"
                    ),
                );
                continue;
            }
            if text == OTHER {
                self.problems.at(
                    name.span(),
                    "operations: \"other\" is the name of whatever matches no operation; choose another",
                );
                continue;
            }
            if seen.contains(&text.as_str()) {
                self.problems.at(
                    name.span(),
                    format!("operations: \"{text}\" is named twice; each operation once"),
                );
                continue;
            }
            seen.push(text);
            match PathPattern::parse(path.get_ref()) {
                Ok(pattern) => operations.push(OperationConfig {
                    name: Arc::from(text.as_str()),
                    path: pattern,
                }),
                Err(why) => self.problems.at(path.span(), format!("operations: {why}")),
            }
        }
        operations
    }
}
