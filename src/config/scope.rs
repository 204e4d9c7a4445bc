//! `breakers`: whether a service has one breaker, or one per operation of its catalogue (so a
//! failing operation never refuses another), and the operations an `http` service names.

use std::sync::Arc;

use crate::provider::rules::PathPattern;

/// How many breakers a service has (`breakers`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BreakerScope {
    /// One breaker for every call (`"per_service"`, the default).
    #[default]
    PerService,
    /// One breaker per operation of the service's catalogue (`"per_operation"`); calls that
    /// match no operation, and checks of none, go through the service's own breaker.
    PerOperation,
}

impl BreakerScope {
    /// Every value, as the config writes it.
    pub const NAMES: [&'static str; 2] = ["per_service", "per_operation"];

    /// As the config writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerScope::PerService => "per_service",
            BreakerScope::PerOperation => "per_operation",
        }
    }

    /// The scope written `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "per_service" => Some(BreakerScope::PerService),
            "per_operation" => Some(BreakerScope::PerOperation),
            _ => None,
        }
    }
}

/// One `[[services.NAME.operations]]` entry of an `http` service: requests whose path (below
/// the upstream's) matches `path` are the operation `name`.
#[derive(Clone, Debug, PartialEq)]
pub struct OperationConfig {
    /// The operation's name (letters, digits, `-`, `_`; not `other`).
    pub name: Arc<str>,
    /// The path pattern (`/orders/*`, `/v1/**`).
    pub path: PathPattern,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scope_reads_back_as_written() {
        for name in BreakerScope::NAMES {
            assert_eq!(
                BreakerScope::parse(name).map(BreakerScope::as_str),
                Some(name)
            );
        }
        assert_eq!(BreakerScope::parse("per_op"), None);
        assert_eq!(BreakerScope::default(), BreakerScope::PerService);
    }
}
