//! Turns the raw file into a [`Config`]: applies defaults, resolves secrets, and reports every
//! problem at its place in the file, with what is allowed. This file runs the passes; each part
//! of the file has its own module (`sections`, `server`, `service`, `schedule`, `policy`,
//! `checks`, `http`, `provider`, `quiet`, `alerts`), and `values` reads single values.

use toml::de::DeTable;

use super::errors::{LoadError, Problems};
use super::keys::report_unknown;
use super::raw::RawList;
use super::secret::Environment;
use super::{Check, Config};

pub(crate) mod alerts;
mod checks;
mod http;
mod operations;
mod policy;
mod provider;
mod proxying;
mod quiet;
mod schedule;
mod sections;
mod server;
mod service;
mod values;

use sections::{explain_toml_error, sections};

pub(crate) fn validate(
    text: &str,
    path: &str,
    environment: &dyn Environment,
) -> Result<Config, LoadError> {
    let mut problems = Problems::new(path, text);
    let document = match DeTable::parse(text) {
        Ok(document) => document.into_inner(),
        Err(error) => {
            let span = error.span().unwrap_or(0..0);
            problems.at(span, explain_toml_error(error.message()));
            return Err(problems.into_error());
        }
    };
    report_unknown(&document, &mut problems);
    let raw = sections(document, &mut problems);
    let mut validator = Validator {
        problems,
        environment,
    };
    let connectivity = raw
        .server
        .as_ref()
        .and_then(|server| server.get_ref().connectivity.clone());
    let mut server = validator.server(raw.server);
    if !raw.has_services {
        // An empty or truncated file must never replace a running config with nothing.
        validator.problems.at(
            0..0,
            "no services are configured: add at least one [services.NAME] table (see the bundled alerts.toml)",
        );
    }
    let mut services = Vec::new();
    let mut depends_on: Vec<(String, RawList)> = Vec::new();
    let mut fallbacks: Vec<(String, toml::Spanned<String>)> = Vec::new();
    for (name, service) in raw.services {
        if let Some(list) = &service.get_ref().depends_on {
            depends_on.push((name.get_ref().clone(), list.clone()));
        }
        if let Some(fallback) = &service.get_ref().fallback {
            fallbacks.push((name.get_ref().clone(), fallback.clone()));
        }
        if let Some(service) = validator.service(name, service) {
            services.push(service);
        }
    }
    // Sorted by name: one order everywhere, and `Config::service` finds a name by bisection.
    services.sort_by(|a, b| a.name.cmp(&b.name));
    validator.dependencies(&depends_on, &mut services);
    validator.fallbacks(&fallbacks, &mut services);
    server.connectivity = validator.connectivity(connectivity.as_ref(), &services);
    let maintenance = validator.maintenance(raw.maintenance, &services);
    let alerts = validator.alerts(raw.alerts, raw.alert_channels, &services);
    for service in &mut services {
        if let Check::Heartbeat(heartbeat) = &mut service.check {
            heartbeat.state_file = alerts.state_dir.join("heartbeats").join(&service.name);
        }
    }
    validator.problems.into_result(Config {
        server,
        services,
        alerts,
        maintenance,
    })
}

struct Validator<'a> {
    problems: Problems<'a>,
    environment: &'a dyn Environment,
}
