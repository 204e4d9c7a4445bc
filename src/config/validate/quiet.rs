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
/// entry that closes it. Depth-first with its own stack: a config's chain of dependencies may be
/// as long as its list of services.
fn first_cycle(
    graph: &BTreeMap<String, Vec<(String, Spanned<String>)>>,
) -> Option<(Vec<String>, Spanned<String>)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let edges = |node: &str| graph.get(node).map_or(&[][..], Vec::as_slice);
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    for root in graph.keys() {
        if marks.contains_key(root.as_str()) {
            continue;
        }
        // The path from `root`, each node with the index of its next edge to follow.
        let mut path: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
        marks.insert(root.as_str(), Mark::Visiting);
        while let Some((node, next_edge)) = path.last_mut() {
            let Some((next, entry)) = edges(node).get(*next_edge) else {
                marks.insert(node, Mark::Done);
                path.pop();
                continue;
            };
            *next_edge += 1;
            match marks.get(next.as_str()) {
                Some(Mark::Visiting) => {
                    let start = path.iter().position(|(name, _)| name == next).unwrap_or(0);
                    let mut cycle: Vec<String> = path[start..]
                        .iter()
                        .map(|(name, _)| name.to_string())
                        .collect();
                    cycle.push(next.clone());
                    return Some((cycle, entry.clone()));
                }
                Some(Mark::Done) => {}
                None => {
                    marks.insert(next.as_str(), Mark::Visiting);
                    path.push((next.as_str(), 0));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(String, String)]) -> BTreeMap<String, Vec<(String, Spanned<String>)>> {
        let mut graph: BTreeMap<String, Vec<(String, Spanned<String>)>> = BTreeMap::new();
        for (from, to) in edges {
            graph
                .entry(from.clone())
                .or_default()
                .push((to.clone(), Spanned::new(0..0, to.clone())));
        }
        graph
    }

    #[test]
    fn a_long_chain_is_walked_without_recursion_and_its_closing_cycle_found() {
        let name = |n: usize| format!("s{n:05}");
        let mut edges: Vec<(String, String)> =
            (0..50_000).map(|n| (name(n), name(n + 1))).collect();
        assert_eq!(first_cycle(&graph(&edges)), None);
        edges.push((name(50_000), name(49_998)));
        let (path, closing) = first_cycle(&graph(&edges)).expect("the cycle");
        assert_eq!(
            path,
            [name(49_998), name(49_999), name(50_000), name(49_998)]
        );
        assert_eq!(closing.get_ref(), &name(49_998));
    }
}
