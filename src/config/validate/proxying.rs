//! Validation of what the proxy does for a service beyond forwarding: its cap on calls in
//! flight (`max_concurrent`, `max_wait`) and the service it falls back to (`fallback`): known,
//! not itself, with an upstream, and one hop only.

use toml::Spanned;

use super::Validator;
use crate::config::raw::RawService;
use crate::config::{BulkheadConfig, ServiceConfig};

impl Validator<'_> {
    /// `max_concurrent` and `max_wait` of service `name`, which has an upstream or not.
    pub(super) fn bulkhead(
        &mut self,
        name: &str,
        raw: &RawService,
        has_upstream: bool,
    ) -> Option<BulkheadConfig> {
        if !has_upstream {
            for (key, span) in [
                (
                    "max_concurrent",
                    raw.max_concurrent.as_ref().map(Spanned::span),
                ),
                ("max_wait", raw.max_wait.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    self.problems.at(span, no_upstream(key, name));
                }
            }
            return None;
        }
        let Some(max_concurrent) = &raw.max_concurrent else {
            if let Some(max_wait) = &raw.max_wait {
                self.problems.at(
                    max_wait.span(),
                    "max_wait is how long a call waits for one of `max_concurrent` slots: set max_concurrent too, or remove max_wait",
                );
            }
            return None;
        };
        Some(BulkheadConfig {
            max_concurrent: self.count("max_concurrent", Some(max_concurrent), 1),
            max_wait: self.duration(
                "max_wait",
                raw.max_wait.as_ref(),
                std::time::Duration::ZERO,
                true,
            ),
        })
    }

    /// Each service's `fallback` (`declared`: the service and the value it gave): a known
    /// service other than itself, both with an upstream, and not one that falls back in turn.
    pub(super) fn fallbacks(
        &mut self,
        declared: &[(String, Spanned<String>)],
        services: &mut [ServiceConfig],
    ) {
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        let mut accepted = Vec::new();
        for (service, fallback) in declared {
            let target = fallback.get_ref();
            if target == service {
                self.problems.at(
                    fallback.span(),
                    format!("service {service} cannot fall back to itself: name another service with an upstream"),
                );
                continue;
            }
            let Some(name) = self.one_of("fallback", fallback, &names) else {
                continue;
            };
            let find = |wanted: &str| services.iter().find(|s| s.name == wanted);
            let Some(primary) = find(service) else {
                // The service itself had problems of its own, already reported.
                continue;
            };
            if primary.upstream.is_none() {
                self.problems
                    .at(fallback.span(), no_upstream("fallback", service));
                continue;
            }
            match find(&name) {
                Some(target) if target.upstream.is_none() => {
                    self.problems.at(
                        fallback.span(),
                        format!(
                            "fallback {name} has no upstream to proxy to (a kind http service needs `upstream`; smtp, tcp and heartbeat services carry no HTTP): choose a service the proxy can reach"
                        ),
                    );
                    continue;
                }
                _ => {}
            }
            if let Some((_, onward)) = declared.iter().find(|(other, _)| *other == name) {
                self.problems.at(
                    fallback.span(),
                    format!(
                        "fallback {name} falls back in turn (to {}): fallbacks are one hop, never a chain; point {service} at a service without a fallback",
                        onward.get_ref()
                    ),
                );
                continue;
            }
            accepted.push((service.clone(), name));
        }
        for (service, fallback) in accepted {
            if let Some(config) = services.iter_mut().find(|s| s.name == service) {
                config.fallback = Some(fallback);
            }
        }
    }
}

/// The problem of a proxy-only `key` on service `name`, which the proxy cannot carry.
fn no_upstream(key: &str, name: &str) -> String {
    format!(
        "{key} applies to calls through the proxy, and service {name} has no upstream to proxy to (set `upstream` on a kind http service; smtp, tcp and heartbeat services carry no HTTP)"
    )
}
