//! One `[services.NAME]` table: its name, its preset or kind, and the service built from it
//! (schedule, policy, check, rules, upstream, tokens and `ca_file`).

use std::ops::Range;

use toml::Spanned;

use super::Validator;
use crate::config::kinds::{self, CheckKind};
use crate::config::raw::RawService;
use crate::config::{CaBundle, Check, Checks, Schedule, ServiceConfig};

const MAX_NAME_LEN: usize = 64;

/// Names that would collide with the API's fixed routes under `/api/v1/circuit-breakers/`.
const RESERVED_NAMES: &[&str] = &["health", "metrics", "reset-all"];

impl Validator<'_> {
    pub(super) fn service(
        &mut self,
        name: Spanned<String>,
        raw: Spanned<RawService>,
    ) -> Option<ServiceConfig> {
        let table_span = raw.span();
        let raw = raw.into_inner();
        let before = self.problems_len();
        self.service_name(&name);
        let kind = self.preset_or_kind(name.get_ref(), &raw, table_span.clone())?;
        for (key, span) in raw.check_keys() {
            if !kind.keys.contains(&key) {
                self.problems.at(
                    span,
                    format!(
                        "`{key}` does not apply to {} {} (its keys: {})",
                        kind.label(),
                        kind.name,
                        kind.keys.join(", ")
                    ),
                );
            }
        }
        let mut schedule = self.schedule(&raw);
        let policy = self.policy(&raw, kind, table_span.clone());
        let mut check = self.check(kind, &raw, table_span);
        let (breakers, operations) = self.breakers(&raw, kind);
        let rules = self.rules(&raw, kind, &operations);
        if let Some(Check::Heartbeat(heartbeat)) = &check {
            schedule = Schedule::Every(heartbeat.check_period());
        }
        let notify_on = self.notify_list(raw.notify_on.as_ref());
        let upstream = match (&check, &raw.upstream) {
            (_, Some(upstream)) => self.url("upstream", upstream),
            (Some(check), None) => check.base_url().cloned(),
            (None, None) => None,
        };
        let bulkhead = self.bulkhead(name.get_ref(), &raw, upstream.is_some());
        let checks = match &raw.checks {
            None => Checks::Always,
            Some(value) => match self
                .one_of("checks", value, &["always", "when_idle"])
                .as_deref()
            {
                Some("when_idle") => Checks::WhenIdle,
                _ => Checks::Always,
            },
        };
        let report_token = raw.report_token.as_ref().and_then(|token| {
            let secret = self.needed_secret(
                "report_token",
                token,
                "applications report this service's outcomes with it",
            )?;
            self.strong_token("report_token", token.span(), secret)
        });
        let ca = raw.ca_file.as_ref().and_then(|file| self.ca_file(file));
        if let Some(Check::Smtp(smtp)) = &mut check {
            smtp.ca = ca.clone();
        }
        if self.problems_len() != before {
            return None;
        }
        Some(ServiceConfig {
            name: name.into_inner(),
            policy,
            schedule,
            check: check?,
            notify_on,
            upstream,
            checks,
            report_token,
            ca,
            depends_on: Vec::new(),
            rules,
            bulkhead,
            fallback: None,
            breakers,
            operations,
            reuse_connections: raw
                .reuse_connections
                .as_ref()
                .is_some_and(|reuse| *reuse.get_ref()),
            disabled: raw
                .disabled
                .as_ref()
                .is_some_and(|disabled| *disabled.get_ref()),
        })
    }

    pub(super) fn problems_len(&self) -> usize {
        self.problems.count()
    }

    /// A `ca_file`: PEM certificates, read now (at most 64 KiB, like a secret file).
    pub(super) fn ca_file(&mut self, file: &Spanned<String>) -> Option<CaBundle> {
        let path = self.expand("ca_file", file)?;
        let pem = match self.environment.read_file(&path) {
            Ok(pem) => pem,
            Err(reason) => {
                self.problems.at(
                    file.span(),
                    format!("ca_file: cannot read {path}: {reason}"),
                );
                return None;
            }
        };
        use rustls::pki_types::pem::PemObject as _;
        let certificates: Result<Vec<rustls::pki_types::CertificateDer<'static>>, _> =
            rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
        match certificates {
            Ok(certificates) if !certificates.is_empty() => {
                // What TLS does with them when the service is built: refused here, not there.
                let mut roots = rustls::RootCertStore::empty();
                for (index, certificate) in certificates.iter().enumerate() {
                    if let Err(refused) = roots.add(certificate.clone()) {
                        self.problems.at(
                            file.span(),
                            format!(
                                "ca_file: certificate {} of {path} is not one TLS can trust: {refused}",
                                index + 1
                            ),
                        );
                        return None;
                    }
                }
                Some(CaBundle { path, certificates })
            }
            _ => {
                self.problems.at(
                    file.span(),
                    format!(
                        "ca_file: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                    ),
                );
                None
            }
        }
    }

    pub(super) fn service_name(&mut self, name: &Spanned<String>) {
        let value = name.get_ref();
        let valid = !value.is_empty()
            && value.len() <= MAX_NAME_LEN
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            self.problems.at(
                name.span(),
                format!(
                    "service name \"{value}\" is not allowed: use 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.'"
                ),
            );
        } else if RESERVED_NAMES.contains(&value.as_str()) {
            self.problems.at(
                name.span(),
                format!(
                    "service name \"{value}\" is reserved by the API (reserved: {}); choose another",
                    RESERVED_NAMES.join(", ")
                ),
            );
        }
    }

    pub(super) fn preset_or_kind(
        &mut self,
        name: &str,
        raw: &RawService,
        table_span: Range<usize>,
    ) -> Option<&'static CheckKind> {
        let (presets, kinds) = (kinds::names(true), kinds::names(false));
        let (value, is_preset) = match (&raw.preset, &raw.kind) {
            (Some(_), Some(kind)) => {
                self.problems
                    .at(kind.span(), "set either `preset` or `kind`, not both");
                return None;
            }
            (Some(preset), None) => (self.one_of("preset", preset, &presets)?, true),
            (None, Some(kind)) => (self.one_of("kind", kind, &kinds)?, false),
            (None, None) => {
                self.problems.at(
                    table_span,
                    format!(
                        "service {name} needs `preset` ({}) or `kind` ({})",
                        presets.join(", "),
                        kinds.join(", ")
                    ),
                );
                return None;
            }
        };
        kinds::find(&value, is_preset)
    }
}
