//! Reading the file's top-level tables into their raw structs, each on its own, with serde's
//! and toml's messages put in the words of a config file.

use std::ops::Range;

use serde::Deserialize as _;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::config::errors::Problems;
use crate::config::raw::{RawAlerts, RawMaintenance, RawServer, RawService};

/// The file's sections, each read on its own so that a wrong type in one service does not hide
/// the problems of the others.
pub(super) struct Sections<'a> {
    pub(super) server: Option<Spanned<RawServer>>,
    pub(super) services: Vec<(Spanned<String>, Spanned<RawService>)>,
    pub(super) has_services: bool,
    pub(super) alerts: Option<Spanned<RawAlerts>>,
    /// `[alerts]`'s tables: one per channel kind, read by its kind.
    pub(super) alert_channels: Vec<(Spanned<String>, Spanned<DeValue<'a>>)>,
    pub(super) maintenance: Vec<Spanned<RawMaintenance>>,
}

pub(super) fn sections<'a>(document: DeTable<'a>, problems: &mut Problems<'_>) -> Sections<'a> {
    let mut sections = Sections {
        server: None,
        services: Vec::new(),
        has_services: false,
        alerts: None,
        alert_channels: Vec::new(),
        maintenance: Vec::new(),
    };
    for (key, value) in document {
        match key.get_ref().as_ref() {
            "server" => sections.server = typed(value, problems),
            "alerts" => {
                let span = value.span();
                let value = match value.into_inner() {
                    DeValue::Table(table) => {
                        let mut own = DeTable::new();
                        for (key, entry) in table {
                            if crate::config::keys::is_channel(entry.get_ref()) {
                                let key = Spanned::new(key.span(), key.into_inner().into_owned());
                                sections.alert_channels.push((key, entry));
                            } else {
                                own.insert(key, entry);
                            }
                        }
                        DeValue::Table(own)
                    }
                    other => other,
                };
                sections.alerts = typed(Spanned::new(span, value), problems);
            }
            "maintenance" => {
                let span = value.span();
                let DeValue::Array(entries) = value.into_inner() else {
                    problems.at(
                        span,
                        "`maintenance` must be a list of tables, one per window: [[maintenance]]",
                    );
                    continue;
                };
                sections.maintenance.extend(
                    entries
                        .into_iter()
                        .filter_map(|entry| typed(entry, problems)),
                );
            }
            "services" => {
                let span = value.span();
                let DeValue::Table(services) = value.into_inner() else {
                    problems.at(
                        span,
                        "`services` must be tables, one per service: [services.NAME]",
                    );
                    continue;
                };
                sections.has_services = !services.is_empty();
                for (name, service) in services {
                    let name = Spanned::new(name.span(), name.into_inner().into_owned());
                    if let Some(service) = typed(service, problems) {
                        sections.services.push((name, service));
                    }
                }
            }
            _ => {} // reported by `report_unknown`
        }
    }
    sections
}

/// One section read into its raw struct; a type problem is recorded at its place, with the key.
pub(super) fn typed<T: serde::de::DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    problems: &mut Problems<'_>,
) -> Option<Spanned<T>> {
    let span = value.span();
    let keys: Vec<(Range<usize>, String)> = match value.get_ref() {
        DeValue::Table(table) => table
            .iter()
            .map(|(key, value)| (value.span(), key.get_ref().to_string()))
            .collect(),
        _ => Vec::new(),
    };
    match Spanned::<T>::deserialize(ValueDeserializer::from(value)) {
        Ok(section) => Some(section),
        Err(error) => {
            let at = error.span().unwrap_or(span);
            let key = keys
                .iter()
                .find(|(value, _)| value.contains(&at.start))
                .map(|(_, key)| key.as_str());
            problems.at(at.clone(), explain_type_error(error.message(), key));
            None
        }
    }
}

/// serde's "invalid type: string \"three\", expected i64" in the words of a config file.
fn explain_type_error(message: &str, key: Option<&str>) -> String {
    let message = message.trim_end();
    let prefix = key.map(|key| format!("{key}: ")).unwrap_or_default();
    let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.rsplit_once(", expected "))
    else {
        return format!("{prefix}{message}");
    };
    let expected = match expected {
        "i64" | "u64" | "i32" | "u32" => "a whole number, e.g. 5",
        "f64" | "f32" => "a number, e.g. 0.5",
        "a string" => "a string in quotes",
        "a sequence" => "a list, e.g. [\"a\", \"b\"]",
        "a boolean" => "true or false",
        other if other.starts_with("struct ") || other == "a map" => "a table",
        other => other,
    };
    format!("{prefix}expected {expected}, found {found}")
}

/// toml's message, with what is allowed added where toml does not say it.
pub(super) fn explain_toml_error(message: &str) -> String {
    let message = message.trim_end();
    if message.starts_with("duplicate key") {
        return format!("{message} (each service name and each key may appear only once)");
    }
    message.to_string()
}
