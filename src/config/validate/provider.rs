//! The HTTP presets' part of a service: its environment and base URL, its credentials, the
//! settings its provider reads, and the service's own answer rules.

use toml::Spanned;

use super::Validator;
use crate::config::Url;
use crate::config::kinds::CheckKind;
use crate::config::raw::{RawList, RawService};
use crate::provider::rules::{MAX_RULES, Origin, Rule, compile};
use crate::provider::{Environment, ProviderCheck, SettingsSource};

impl Validator<'_> {
    /// A provider's check: environment, base URL, credentials and settings.
    pub(super) fn provider_check(
        &mut self,
        raw: &RawService,
        kind: &CheckKind,
    ) -> Option<ProviderCheck> {
        let provider = kind.provider?;
        let hosts = provider.hosts;
        let environment = match &raw.environment {
            None => None,
            Some(value) => {
                let allowed: Vec<&str> = Environment::ALL.iter().map(|(name, _)| *name).collect();
                let text = self.one_of("environment", value, &allowed)?;
                Environment::ALL
                    .iter()
                    .find(|(name, _)| *name == text)
                    .map(|(_, environment)| *environment)
            }
        };
        let base_url = match &raw.base_url {
            Some(url) => self.url("base_url", url)?,
            None => Url::parse(hosts.of(environment.unwrap_or_default())).ok()?,
        };
        let host_environment = hosts.environment_of(&base_url);
        if let (Some(url), Some(wanted), Some(actual)) =
            (&raw.base_url, environment, host_environment)
            && wanted != actual
            && hosts.distinct()
        {
            self.problems.at(
                url.span(),
                format!(
                    "base_url is {}'s {} host but environment = \"{}\": drop base_url (environment picks the host) or set environment = \"{}\"",
                    provider.title,
                    actual.as_str(),
                    wanted.as_str(),
                    actual.as_str()
                ),
            );
            return None;
        }
        let credentials = provider
            .credentials
            .iter()
            .map(|credential| self.credential(credential.key, raw.text_key(credential.key)))
            .collect();
        let settings = (provider.read_settings)(&mut Source {
            validator: self,
            raw,
        })?;
        Some(ProviderCheck {
            provider,
            environment: environment.or(host_environment).unwrap_or_default(),
            environment_set: environment.is_some(),
            base_url,
            credentials,
            settings,
        })
    }

    /// The service's own rules, each checked against `kind`'s operations.
    /// `own` are the operations an `http` service names (`[[services.NAME.operations]]`),
    /// which its rules may name besides its kind's.
    pub(super) fn rules(
        &mut self,
        raw: &RawService,
        kind: &CheckKind,
        own: &[crate::config::OperationConfig],
    ) -> Vec<Rule> {
        let Some(list) = &raw.rules else {
            return Vec::new();
        };
        if list.get_ref().len() > MAX_RULES {
            self.problems.at(
                list.span(),
                format!(
                    "a service has at most {MAX_RULES} rules, this one has {}",
                    list.get_ref().len()
                ),
            );
            return Vec::new();
        }
        let mut operations: Vec<&str> = own.iter().map(|operation| &*operation.name).collect();
        operations.extend(kind.operation_names());
        let mut rules = Vec::new();
        for rule in list.get_ref() {
            let (path, line, column) = self.problems.place(&rule.span());
            let origin = Origin::File {
                path: path.into(),
                line,
                column,
            };
            let problems = &mut self.problems;
            let mut report = |span: std::ops::Range<usize>, message: String| {
                problems.at(span, format!("rules: {message}"));
            };
            if let Some(rule) = compile(rule, &operations, origin, &mut report) {
                rules.push(rule);
            }
        }
        rules
    }
}

/// A provider's settings, read from the service's table.
struct Source<'v, 'a, 'r> {
    validator: &'v mut Validator<'a>,
    raw: &'r RawService,
}

impl SettingsSource for Source<'_, '_, '_> {
    fn text(&mut self, key: &'static str) -> Option<String> {
        let value = self.raw.text_key(key)?;
        self.validator.expand(key, value)
    }

    fn number(&mut self, key: &'static str) -> Option<f64> {
        let value = self.raw.number_key(key)?;
        let number = *value.get_ref();
        if number.is_finite() {
            return Some(number);
        }
        self.validator.problems.at(
            value.span(),
            format!("{key} is {number}, allowed is a finite number"),
        );
        None
    }

    fn list(&mut self, key: &'static str) -> Option<Vec<String>> {
        let list: &RawList = self.raw.list_key(key)?;
        Some(
            list.get_ref()
                .iter()
                .map(|item| item.get_ref().clone())
                .collect(),
        )
    }

    fn problem(&mut self, key: &'static str, message: String) {
        let span = self
            .raw
            .text_key(key)
            .map(Spanned::span)
            .or_else(|| self.raw.list_key(key).map(Spanned::span))
            .or_else(|| self.raw.number_key(key).map(Spanned::span))
            .unwrap_or(0..0);
        self.validator.problems.at(span, message);
    }
}
