//! The providers breakerd speaks the language of, one module each: its keys and defaults, its
//! hosts per environment, its credentials (and what redaction must hide), its check, its
//! catalogue of operations and its answer rules — written in the rule language and used alike
//! by the check, the proxy and the outcome API. Adding a provider is one module plus one line
//! in [`PROVIDERS`].

mod africastalking;
mod check;
mod explain;
mod judge;
mod kcb;
mod mpesa;
mod pesapal;
pub mod rules;
mod whatsapp;

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::credential::Credential;
use crate::outcome::{ProbeError, ProbeSuccess};
use rules::{Origin, PathPattern, Rule, compile_text};
use url::Url;

pub use check::{Call, Checked};
pub use explain::{explain, markdown};
pub use judge::{CatalogueEntry, Judge, OTHER, Operation, Plan, default_rules};
pub use rules::{Head, Headers, Judgement};
pub use whatsapp::DEFAULT_API_VERSION as WHATSAPP_API_VERSION;

/// The most of an answer's body the rules read; a longer body is judged without it (by its
/// status and headers).
pub const MAX_JUDGED_BODY: usize = 64 * 1024;

/// Every provider, in the order `preset =` lists them.
pub static PROVIDERS: &[&Provider] = &[
    &mpesa::PROVIDER,
    &pesapal::PROVIDER,
    &kcb::PROVIDER,
    &africastalking::PROVIDER,
    &whatsapp::PROVIDER,
];

/// The provider `preset = name` names.
pub fn find(name: &str) -> Option<&'static Provider> {
    PROVIDERS
        .iter()
        .copied()
        .find(|provider| provider.name == name)
}

/// Which of a provider's hosts a service talks to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Environment {
    /// The provider's test host (the default, so that no check touches real money).
    #[default]
    Sandbox,
    /// The provider's live host.
    Production,
}

impl Environment {
    /// Both, as the config spells them.
    pub const ALL: [(&'static str, Environment); 2] = [
        ("sandbox", Environment::Sandbox),
        ("production", Environment::Production),
    ];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }
}

/// A provider's base URL in each environment.
#[derive(Clone, Copy, Debug)]
pub struct Hosts {
    /// The test host.
    pub sandbox: &'static str,
    /// The live host.
    pub production: &'static str,
}

impl Hosts {
    /// The base URL of `environment`.
    pub fn of(&self, environment: Environment) -> &'static str {
        match environment {
            Environment::Sandbox => self.sandbox,
            Environment::Production => self.production,
        }
    }

    /// Whether the two environments have hosts of their own (WhatsApp's Graph API has one for
    /// both).
    pub fn distinct(&self) -> bool {
        self.sandbox != self.production
    }

    /// The environment whose host `url` is, if it is one of them.
    pub fn environment_of(&self, url: &Url) -> Option<Environment> {
        Environment::ALL
            .into_iter()
            .map(|(_, e)| e)
            .find(|environment| {
                Url::parse(self.of(*environment)).is_ok_and(|known| {
                    known.host_str() == url.host_str()
                        && url
                            .path()
                            .trim_end_matches('/')
                            .starts_with(known.path().trim_end_matches('/'))
                })
            })
    }

    /// The paths of both hosts (Pesapal's `/pesapalv3` and `/v3`).
    pub(crate) fn paths(&self) -> impl Iterator<Item = String> {
        [self.sandbox, self.production]
            .into_iter()
            .filter_map(|base| Url::parse(base).ok())
            .map(|url| url.path().to_string())
    }
}

/// A credential a provider takes.
#[derive(Clone, Copy, Debug)]
pub struct CredentialKey {
    /// Its config key.
    pub key: &'static str,
    /// Whether it is a secret (redacted wherever it could show); an account name or a phone
    /// number id is not.
    pub secret: bool,
}

/// The credentials of the providers that take a consumer key and secret (M-Pesa, Pesapal, KCB).
pub(crate) const CONSUMER_KEY_AND_SECRET: &[CredentialKey] = &[
    CredentialKey {
        key: "consumer_key",
        secret: true,
    },
    CredentialKey {
        key: "consumer_secret",
        secret: true,
    },
];

/// The seed's settings of the payment providers (mpesa, pesapal, kcb): 3 failures, 30 s, 120 s.
pub(crate) const PAYMENT_THRESHOLDS: Thresholds = Thresholds {
    failures: 3,
    timeout: Duration::from_secs(30),
    reset_timeout: Duration::from_secs(120),
};

/// The breaker settings a provider's services start from (the seed's).
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// Failures in a row that open the breaker.
    pub failures: u32,
    /// A call's timeout.
    pub timeout: Duration,
    /// How long an open breaker waits before a trial.
    pub reset_timeout: Duration,
}

/// One operation of a catalogue: its name, method (`*` for any) and path pattern below the
/// base URL.
#[derive(Clone, Copy, Debug)]
pub struct OperationSpec {
    /// The name (`stk_push`).
    pub name: &'static str,
    /// `GET`, `POST`, … or `*`.
    pub method: &'static str,
    /// The path pattern.
    pub path: &'static str,
}

/// A provider's own settings (the typed values of its keys beyond the credentials).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// Africa's Talking: a balance below this fails the check with reason `balance`.
    pub min_balance: Option<f64>,
    /// WhatsApp: the Graph API version.
    pub api_version: Option<String>,
    /// WhatsApp: the lowest quality rating that passes.
    pub min_quality: Option<String>,
    /// WhatsApp: the phone number statuses that fail the check with reason `account`.
    pub failing_statuses: Vec<String>,
    /// Pesapal: an IPN id the check confirms is still registered.
    pub ipn_id: Option<String>,
}

/// Where a provider reads its settings from: the service's table, with problems reported at
/// the key's place.
pub trait SettingsSource {
    /// The text of `key`, if set.
    fn text(&mut self, key: &'static str) -> Option<String>;
    /// The number of `key`, if set (a problem if it is not finite).
    fn number(&mut self, key: &'static str) -> Option<f64>;
    /// The list of strings of `key`, if set.
    fn list(&mut self, key: &'static str) -> Option<Vec<String>>;
    /// Reports a problem with `key`'s value.
    fn problem(&mut self, key: &'static str, message: String);
}

/// The check a provider runs, given its call context.
pub type CheckFn = for<'a> fn(&'a Call<'a>) -> BoxFuture<'a, Result<ProbeSuccess, ProbeError>>;

/// One provider.
pub struct Provider {
    /// `preset = NAME`.
    pub name: &'static str,
    /// Its name for people (`M-Pesa Daraja`).
    pub title: &'static str,
    /// Its hosts.
    pub hosts: Hosts,
    /// The seed's breaker settings.
    pub thresholds: Thresholds,
    /// Its credentials, in order.
    pub credentials: &'static [CredentialKey],
    /// Two credentials sent together as HTTP Basic (`key:secret`), whose encoded pair is a
    /// secret too.
    pub basic_auth: Option<(&'static str, &'static str)>,
    /// Its setting keys.
    pub settings: &'static [&'static str],
    /// Reads its settings (`None` when one is wrong; the problem was reported).
    pub read_settings: fn(&mut dyn SettingsSource) -> Option<Settings>,
    /// Rules its settings make, tried before the built-in ones.
    pub settings_rules: fn(&Settings) -> Vec<Rule>,
    /// Catalogue entries a service's own values make (WhatsApp's phone number id), tried
    /// before the provider's.
    pub service_operations: fn(&ProviderCheck) -> Vec<CatalogueEntry>,
    /// The operation its check calls.
    pub check_operation: &'static str,
    /// What its check does, in words (README).
    pub check_words: &'static str,
    /// Its check.
    pub check: CheckFn,
    /// Its operation catalogue.
    pub operations: &'static [OperationSpec],
    /// Its built-in rules, in the rule language (`[[rule]]` tables).
    pub rules: &'static str,
    /// What the rules and catalogue become once read.
    compiled: LazyLock<Compiled>,
}

/// A provider's catalogue and rules, read once.
#[derive(Debug, Default)]
struct Compiled {
    catalogue: Vec<CatalogueEntry>,
    rules: Vec<Rule>,
}

impl Provider {
    /// Every operation name, catalogue order, `other` last.
    pub fn operation_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for operation in self.operations {
            if !names.contains(&operation.name) {
                names.push(operation.name);
            }
        }
        names.push(OTHER);
        names
    }

    /// The built-in rules.
    pub fn rules(&self) -> &[Rule] {
        &self.compiled.rules
    }

    /// The catalogue, read.
    pub fn catalogue(&self) -> Vec<CatalogueEntry> {
        self.compiled.catalogue.clone()
    }

    /// The provider's keys: its credentials and settings, besides those of every HTTP preset.
    pub fn keys(&self) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = self
            .credentials
            .iter()
            .map(|credential| credential.key)
            .collect();
        keys.extend(self.settings.iter().copied());
        keys.extend([
            "environment",
            "base_url",
            "ca_file",
            "reuse_connections",
            "rules",
        ]);
        keys
    }

    /// Reads the catalogue and rules, or says what is wrong with them (a unit test keeps the
    /// list empty).
    fn compile(&self) -> Result<Compiled, Vec<String>> {
        let mut problems = Vec::new();
        let mut catalogue = Vec::new();
        for operation in self.operations {
            match PathPattern::parse(operation.path) {
                Ok(path) => catalogue.push(CatalogueEntry {
                    name: Arc::from(operation.name),
                    method: (operation.method != "*").then(|| operation.method.to_string()),
                    path,
                }),
                Err(why) => problems.push(format!("{}: {}: {why}", self.name, operation.name)),
            }
        }
        let names = self.operation_names();
        let provider = self.name;
        let rules = compile_text(self.rules, provider, &names, &|number| Origin::BuiltIn {
            provider,
            number,
        })
        .unwrap_or_else(|found| {
            problems.extend(found);
            Vec::new()
        });
        if problems.is_empty() {
            Ok(Compiled { catalogue, rules })
        } else {
            Err(problems)
        }
    }
}

/// Reads `provider`'s catalogue and rules; should they not read (a unit test prevents it),
/// logs why and goes on with none, so its answers are judged by the defaults.
fn compiled(provider: &Provider) -> Compiled {
    provider.compile().unwrap_or_else(|problems| {
        tracing::error!(
            provider = provider.name,
            ?problems,
            "built-in rules do not compile"
        );
        Compiled::default()
    })
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Provider {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// A service's provider check, as configured.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderCheck {
    /// The provider.
    pub provider: &'static Provider,
    /// Which of its hosts (`base_url` may point elsewhere).
    pub environment: Environment,
    /// Whether `environment` was written in the file (else it defaulted to the sandbox).
    pub environment_set: bool,
    /// Where its requests go.
    pub base_url: Url,
    /// Its credentials, in the provider's order.
    pub credentials: Vec<Credential>,
    /// Its settings.
    pub settings: Settings,
}

impl ProviderCheck {
    /// The credential of `key`.
    pub fn credential(&self, key: &str) -> Option<&Credential> {
        self.provider
            .credentials
            .iter()
            .position(|credential| credential.key == key)
            .and_then(|index| self.credentials.get(index))
    }

    /// A sentence saying which host the credentials were sent to, for `auth` failures: keys of
    /// the other environment fail here.
    pub fn host_hint(&self) -> String {
        let hosts = &self.provider.hosts;
        match hosts.environment_of(&self.base_url) {
            Some(_) if !hosts.distinct() => format!(
                "these credentials were sent to {}'s host {}",
                self.provider.title,
                hosts.of(self.environment)
            ),
            Some(environment) => {
                let other = match environment {
                    Environment::Sandbox => Environment::Production,
                    Environment::Production => Environment::Sandbox,
                };
                format!(
                    "these credentials were sent to the {} host {} (environment = \"{}\"); keys of a {} app need environment = \"{}\"",
                    environment.as_str(),
                    hosts.of(environment),
                    environment.as_str(),
                    other.as_str(),
                    other.as_str()
                )
            }
            None => format!(
                "these credentials were sent to base_url {}, which is not one of {}'s hosts",
                self.base_url.origin().ascii_serialization(),
                self.provider.title
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_s_catalogue_and_rules_read() {
        for provider in PROVIDERS {
            if let Err(problems) = provider.compile() {
                panic!("{}:\n{}", provider.name, problems.join("\n"));
            }
            assert!(!provider.rules().is_empty(), "{}", provider.name);
            assert!(
                provider
                    .operation_names()
                    .contains(&provider.check_operation),
                "{}: the check's operation is in the catalogue",
                provider.name
            );
        }
    }

    #[test]
    fn hosts_tell_their_environment() {
        let hosts = pesapal::PROVIDER.hosts;
        let sandbox = Url::parse("https://cybqa.pesapal.com/pesapalv3/").unwrap();
        assert_eq!(hosts.environment_of(&sandbox), Some(Environment::Sandbox));
        let live = Url::parse("https://pay.pesapal.com/v3").unwrap();
        assert_eq!(hosts.environment_of(&live), Some(Environment::Production));
        let mine = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(hosts.environment_of(&mine), None);
    }
}
