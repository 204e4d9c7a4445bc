//! Validation of what holds pages back: `[[maintenance]]` windows and services' `depends_on`
//! (names that exist, no service depending on itself, no cycle — reported with its path).

use std::collections::BTreeMap;
use std::time::SystemTime;

use toml::Spanned;

use super::Validator;
use crate::config::raw::{RawList, RawMaintenance};
use crate::config::{
    ConnectivityTarget, MAX_CONNECTIVITY_TARGETS, MAX_MAINTENANCE, MaintenanceWindow,
    ServiceConfig, WindowTimes,
};

/// The longest reason a window may give, in characters.
const MAX_REASON_CHARS: usize = 200;

impl Validator<'_> {
    /// Every `[[maintenance]]` entry, checked against the configured `services`.
    pub(super) fn maintenance(
        &mut self,
        entries: Vec<Spanned<RawMaintenance>>,
        services: &[ServiceConfig],
    ) -> Vec<MaintenanceWindow> {
        let names: Vec<&str> = services
            .iter()
            .map(|service| service.name.as_str())
            .collect();
        entries
            .into_iter()
            .filter_map(|entry| {
                let span = entry.span();
                let raw = entry.into_inner();
                let services = self.service_list(raw.services.as_ref(), &names);
                let when = self.window_times(&raw, span)?;
                let reason = match &raw.reason {
                    Some(reason) if reason.get_ref().chars().count() > MAX_REASON_CHARS => {
                        self.problems.at(
                            reason.span(),
                            format!("reason is longer than {MAX_REASON_CHARS} characters"),
                        );
                        return None;
                    }
                    Some(reason) => reason.get_ref().clone(),
                    None => "maintenance".to_string(),
                };
                Some(MaintenanceWindow {
                    services,
                    when,
                    reason,
                })
            })
            .collect()
    }

    fn window_times(
        &mut self,
        raw: &RawMaintenance,
        span: std::ops::Range<usize>,
    ) -> Option<WindowTimes> {
        match (&raw.schedule, &raw.duration, &raw.start, &raw.end) {
            (Some(expression), Some(duration), None, None) => {
                let schedule = self.cron(expression)?;
                let duration = self.duration(
                    "maintenance.duration",
                    Some(duration),
                    MAX_MAINTENANCE,
                    false,
                );
                Some(WindowTimes::Recurring {
                    expression: expression.get_ref().clone(),
                    schedule: Box::new(schedule),
                    duration,
                })
            }
            (None, None, Some(start), Some(end)) => {
                let (start_at, end_at) = (self.rfc3339(start)?, self.rfc3339(end)?);
                let length = end_at
                    .duration_since(start_at)
                    .ok()
                    .filter(|d| !d.is_zero());
                match length {
                    None => {
                        self.problems.at(end.span(), "end must be after start");
                        None
                    }
                    Some(length) if length > MAX_MAINTENANCE => {
                        self.problems.at(
                            end.span(),
                            format!(
                                "a maintenance window lasts at most {} (this one: {})",
                                crate::config::format_duration(MAX_MAINTENANCE),
                                crate::config::format_duration(length)
                            ),
                        );
                        None
                    }
                    Some(_) => Some(WindowTimes::Once {
                        start: start_at,
                        end: end_at,
                    }),
                }
            }
            _ => {
                self.problems.at(
                    span,
                    "a [[maintenance]] window needs either `schedule` (cron, seconds first, UTC) and `duration`, or `start` and `end` (RFC 3339, e.g. \"2026-12-01T22:00:00+03:00\")",
                );
                None
            }
        }
    }

    fn rfc3339(&mut self, value: &Spanned<String>) -> Option<SystemTime> {
        match chrono::DateTime::parse_from_rfc3339(value.get_ref()) {
            Ok(time) => Some(SystemTime::from(time)),
            Err(why) => {
                self.problems.at(
                    value.span(),
                    format!(
                        "\"{}\" is not an RFC 3339 time ({why}); write e.g. \"2026-12-01T22:00:00+03:00\"",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// `server.connectivity`: `tcp://HOST:PORT` targets and configured service names.
    pub(super) fn connectivity(
        &mut self,
        raw: Option<&RawList>,
        services: &[ServiceConfig],
    ) -> Vec<ConnectivityTarget> {
        let Some(raw) = raw else {
            return Vec::new();
        };
        if raw.get_ref().len() > MAX_CONNECTIVITY_TARGETS {
            self.problems.at(
                raw.span(),
                format!("server.connectivity takes at most {MAX_CONNECTIVITY_TARGETS} entries"),
            );
            return Vec::new();
        }
        let names: Vec<&str> = services
            .iter()
            .map(|service| service.name.as_str())
            .collect();
        raw.get_ref()
            .iter()
            .filter_map(|entry| match entry.get_ref().strip_prefix("tcp://") {
                Some(address) => self
                    .host_port_text("server.connectivity", address, entry.span())
                    .map(|(host, port)| ConnectivityTarget::Tcp { host, port }),
                None if names.contains(&entry.get_ref().as_str()) => {
                    Some(ConnectivityTarget::Service(entry.get_ref().clone()))
                }
                None => {
                    self.problems.at(
                        entry.span(),
                        format!(
                            "server.connectivity: \"{}\" is neither tcp://HOST:PORT (e.g. \"tcp://1.1.1.1:443\") nor a configured service ({})",
                            entry.get_ref(),
                            names.join(", ")
                        ),
                    );
                    None
                }
            })
            .collect()
    }

    /// Each service's `depends_on`: known names, not itself, and no cycle.
    pub(super) fn dependencies(
        &mut self,
        declared: &[(String, RawList)],
        services: &mut [ServiceConfig],
    ) {
        let names: Vec<&str> = services
            .iter()
            .map(|service| service.name.as_str())
            .collect();
        let mut graph: BTreeMap<String, Vec<(String, Spanned<String>)>> = BTreeMap::new();
        for (service, list) in declared {
            for upstream in list.get_ref() {
                if upstream.get_ref() == service {
                    self.problems
                        .at(upstream.span(), "a service cannot depend on itself");
                    continue;
                }
                if let Some(name) = self.one_of("service", upstream, &names) {
                    graph
                        .entry(service.clone())
                        .or_default()
                        .push((name, upstream.clone()));
                }
            }
        }
        if let Some((path, at)) = first_cycle(&graph) {
            self.problems.at(
                at.span(),
                format!(
                    "depends_on makes a cycle: {} (a service cannot wait on itself)",
                    path.join(" -> ")
                ),
            );
            return;
        }
        for service in services {
            if let Some(upstreams) = graph.get(&service.name) {
                service.depends_on = upstreams.iter().map(|(name, _)| name.clone()).collect();
            }
        }
    }
}

/// The first cycle in `graph`, as the path around it (first name repeated at the end), with the
/// entry that closes it.
fn first_cycle(
    graph: &BTreeMap<String, Vec<(String, Spanned<String>)>>,
) -> Option<(Vec<String>, Spanned<String>)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, Vec<(String, Spanned<String>)>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<(Vec<String>, Spanned<String>)> {
        marks.insert(node.to_string(), Mark::Visiting);
        path.push(node.to_string());
        for (next, entry) in graph.get(node).into_iter().flatten() {
            match marks.get(next.as_str()) {
                Some(Mark::Visiting) => {
                    let start = path.iter().position(|name| name == next).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some((cycle, entry.clone()));
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(found) = visit(next, graph, marks, path) {
                        return Some(found);
                    }
                }
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if !marks.contains_key(node) {
            let mut path = Vec::new();
            if let Some(found) = visit(node, graph, &mut marks, &mut path) {
                return Some(found);
            }
        }
    }
    None
}
