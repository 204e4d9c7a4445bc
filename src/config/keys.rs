//! The keys each table of the config file takes, and the pass that finds every unknown key in
//! a document at once, each with the nearest valid key, so one typo never hides the others.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::forward_to_deserialize_any;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::errors::Problems;
use super::kinds::{self, CheckKind};
use super::raw::{RawAlerts, RawMaintenance, RawOperation, RawServer, RawService};
use crate::text::nearest;

/// The tables at the top of the file.
const TOP_LEVEL: &[&str] = &["server", "services", "alerts", "maintenance"];
/// The most keys listed in an unknown-key message when no key is near enough to suggest.
const MAX_LISTED: usize = 12;

/// Reports every key of `document` that no table at its place takes.
pub(crate) fn report_unknown(document: &DeTable<'_>, problems: &mut Problems<'_>) {
    for (key, value) in document {
        if !TOP_LEVEL.contains(&key.get_ref().as_ref()) {
            unknown(problems, key, "the top level", TOP_LEVEL, None);
            continue;
        }
        match (key.get_ref().as_ref(), value.get_ref()) {
            ("server", DeValue::Table(table)) => {
                table_keys(problems, table, "[server]", fields_of::<RawServer>())
            }
            ("services", DeValue::Table(services)) => {
                for (name, service) in services {
                    if let DeValue::Table(table) = service.get_ref() {
                        service_keys(problems, name.get_ref(), table);
                        rule_keys(problems, name.get_ref(), table);
                        operation_keys(problems, name.get_ref(), table);
                    }
                }
            }
            ("alerts", DeValue::Table(table)) => alerts_keys(problems, table),
            ("maintenance", DeValue::Array(entries)) => {
                for entry in entries {
                    if let DeValue::Table(table) = entry.get_ref() {
                        table_keys(
                            problems,
                            table,
                            "[[maintenance]]",
                            fields_of::<RawMaintenance>(),
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

fn alerts_keys(problems: &mut Problems<'_>, alerts: &DeTable<'_>) {
    // A table (or a list of them) is a channel: its kind checks its keys, and an unknown kind
    // is reported there with the kinds there are.
    let own: DeTable<'_> = alerts
        .iter()
        .filter(|(_, value)| !is_channel(value.get_ref()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    table_keys(problems, &own, "[alerts]", fields_of::<RawAlerts>());
}

/// Whether an `[alerts]` entry is a channel's table or list of tables.
pub(crate) fn is_channel(value: &DeValue<'_>) -> bool {
    match value {
        DeValue::Table(_) => true,
        DeValue::Array(entries) => entries
            .iter()
            .any(|entry| matches!(entry.get_ref(), DeValue::Table(_))),
        _ => false,
    }
}

/// A service's keys: checked against every key a service takes, suggested from the ones its
/// preset or kind takes.
fn service_keys(problems: &mut Problems<'_>, name: &str, table: &DeTable<'_>) {
    let kind = [("preset", true), ("kind", false)]
        .iter()
        .find_map(|(key, is_preset)| {
            let name = table.get(*key)?.get_ref().as_str()?;
            kinds::find(name, *is_preset)
        });
    let known = fields_of::<RawService>();
    let unknown_keys: Vec<_> = table
        .iter()
        .map(|(key, _)| key)
        .filter(|key| !known.contains(&key.get_ref().as_ref()))
        .collect();
    if unknown_keys.is_empty() {
        return;
    }
    // Suggestions come from what this service takes: the common keys and its kind's own.
    let every_check_key: Vec<&str> = kinds::every_check_key().collect();
    let own: Vec<&str> = known
        .iter()
        .copied()
        .filter(|key| !every_check_key.contains(key))
        .chain(kind.map_or(&[][..], |kind| &kind.keys[..]).iter().copied())
        .collect();
    let place = format!("[services.{name}]");
    for key in unknown_keys {
        unknown(problems, key, &place, &own, kind);
    }
}

/// The keys of a service's `[[services.NAME.rules]]` tables, their `header` table and each
/// `json` condition.
fn rule_keys(problems: &mut Problems<'_>, name: &str, service: &DeTable<'_>) {
    let Some(DeValue::Array(rules)) = service.get("rules").map(|rules| rules.get_ref()) else {
        return;
    };
    let [rule_fields, header_fields, json_fields] = crate::provider::rules::key_names();
    let place = format!("[[services.{name}.rules]]");
    for rule in rules {
        let DeValue::Table(rule) = rule.get_ref() else {
            continue;
        };
        table_keys(problems, rule, &place, rule_fields);
        if let Some(DeValue::Table(header)) = rule.get("header").map(|header| header.get_ref()) {
            table_keys(problems, header, "a rule's header", header_fields);
        }
        if let Some(DeValue::Array(conditions)) = rule.get("json").map(|json| json.get_ref()) {
            for condition in conditions {
                if let DeValue::Table(condition) = condition.get_ref() {
                    table_keys(problems, condition, "a rule's json condition", json_fields);
                }
            }
        }
    }
}

/// The keys of a service's `[[services.NAME.operations]]` tables.
fn operation_keys(problems: &mut Problems<'_>, name: &str, service: &DeTable<'_>) {
    let Some(DeValue::Array(operations)) = service.get("operations").map(|list| list.get_ref())
    else {
        return;
    };
    let place = format!("[[services.{name}.operations]]");
    for operation in operations {
        if let DeValue::Table(operation) = operation.get_ref() {
            table_keys(problems, operation, &place, fields_of::<RawOperation>());
        }
    }
}

pub(crate) fn table_keys(
    problems: &mut Problems<'_>,
    table: &DeTable<'_>,
    place: &str,
    valid: &[&str],
) {
    for (key, _) in table {
        if !valid.contains(&key.get_ref().as_ref()) {
            unknown(problems, key, place, valid, None);
        }
    }
}

fn unknown(
    problems: &mut Problems<'_>,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    place: &str,
    valid: &[&str],
    kind: Option<&CheckKind>,
) {
    let word = key.get_ref();
    let message = match nearest(word, valid.iter().copied()) {
        Some(suggestion) => {
            format!("unknown key `{word}` in {place}; did you mean `{suggestion}`?")
        }
        None => match kind {
            Some(kind) => format!(
                "unknown key `{word}` in {place}: \"{}\" takes {}, besides the schedule, \
                 breaker and alert keys every service takes (README, \"Configuration: alerts.toml\")",
                kind.name,
                kind.keys.join(", ")
            ),
            None if valid.len() <= MAX_LISTED => format!(
                "unknown key `{word}` in {place} (allowed here: {})",
                valid.join(", ")
            ),
            None => format!(
                "unknown key `{word}` in {place} (README, \"Configuration: alerts.toml\", lists the keys)"
            ),
        },
    };
    problems.at(key.span(), message);
}

/// The field names serde's derive gave `T`, read by asking `T` to deserialize itself from a
/// deserializer that only records them: one list, kept by the struct itself.
pub(crate) fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only structs have field names"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names recorded"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_the_structs() {
        assert!(fields_of::<RawService>().contains(&"slow_call"));
        assert!(fields_of::<RawServer>().contains(&"proxy_listen"));
    }

    fn report(text: &str) -> Vec<String> {
        let document = DeTable::parse(text).unwrap();
        let mut problems = Problems::new("c.toml", text);
        report_unknown(document.get_ref(), &mut problems);
        match problems.into_error() {
            super::super::LoadError::Invalid(errors) => {
                errors.iter().map(ToString::to_string).collect()
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn every_unknown_key_is_reported_with_its_nearest_key() {
        let lines = report(
            "[server]\nlisen = \"x\"\n[services.b]\npreset = \"mpesa\"\nslow_cal = \"1s\"\n\
             colour = 1\n[services.a]\nkind = \"tcp\"\nadres = \"x\"\n[alerts]\nmin_intervl = \"1s\"\n\
             [[alerts.webhook]]\nurl = \"u\"\nsecrett = \"s\"\n",
        );
        assert_eq!(
            lines,
            [
                "c.toml:2:1: unknown key `lisen` in [server]; did you mean `listen`?",
                "c.toml:5:1: unknown key `slow_cal` in [services.b]; did you mean `slow_call`?",
                "c.toml:6:1: unknown key `colour` in [services.b]: \"mpesa\" takes \
                 consumer_key, consumer_secret, environment, base_url, ca_file, reuse_connections, rules, besides the schedule, breaker and alert keys every \
                 service takes (README, \"Configuration: alerts.toml\")",
                "c.toml:9:1: unknown key `adres` in [services.a]; did you mean `address`?",
                "c.toml:11:1: unknown key `min_intervl` in [alerts]; did you mean `min_interval`?",
            ],
            "a channel's keys are its kind's to check (alert/channel/)"
        );
    }

    #[test]
    fn a_channel_table_is_left_to_its_kind() {
        assert!(report("[alerts]\n[[alerts.webhook]]\nurl = \"u\"\nsecrett = \"s\"\n").is_empty());
        assert!(report("[alerts]\n[[alerts.pagerdty]]\nrouting_key = \"k\"\n").is_empty());
    }

    #[test]
    fn a_key_of_another_kind_is_left_to_validation() {
        // `url` is a key some service takes; validation says it does not apply to mpesa.
        assert!(report("[services.m]\npreset = \"mpesa\"\nurl = \"x\"\n").is_empty());
    }
}
