//! The names breakers and outages go by: a service's own (`mpesa`), or one operation's of a
//! service with a breaker per operation (`mpesa/b2c`). Service and operation names never hold
//! a `/`, so the two parts always split back apart.

/// What separates a service's name from its operation's in a breaker's name.
pub const SEPARATOR: char = '/';

/// The name of the breaker of `operation` of `service`.
pub fn operation_unit(service: &str, operation: &str) -> String {
    format!("{service}{SEPARATOR}{operation}")
}

/// The service a breaker's `name` belongs to (the name itself for a service's own breaker).
pub fn service_of(name: &str) -> &str {
    name.split_once(SEPARATOR)
        .map_or(name, |(service, _)| service)
}

/// The operation of an operation's breaker name, `None` for a service's own.
pub fn operation_of(name: &str) -> Option<&str> {
    name.split_once(SEPARATOR).map(|(_, operation)| operation)
}

/// `name` as a file name (state files): the separator is not allowed in one.
pub fn file_stem(name: &str) -> String {
    name.replace(SEPARATOR, "@")
}

/// The name a state file's stem stands for.
pub fn from_file_stem(stem: &str) -> String {
    stem.replace('@', &SEPARATOR.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_unit_splits_back_and_survives_a_file_name() {
        let unit = operation_unit("mpesa", "b2c");
        assert_eq!(unit, "mpesa/b2c");
        assert_eq!(service_of(&unit), "mpesa");
        assert_eq!(operation_of(&unit), Some("b2c"));
        assert_eq!(service_of("mpesa"), "mpesa");
        assert_eq!(operation_of("mpesa"), None);
        assert_eq!(from_file_stem(&file_stem(&unit)), unit);
        assert!(!file_stem(&unit).contains('/'));
    }
}
