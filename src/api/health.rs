//! The overall health, as `GET /api/v1/circuit-breakers/health` and the status page's header
//! tell it: `unhealthy` while any breaker — a service's or one of its operations' — is open
//! (or half-open, or forced open), `degraded`
//! while any service's last check failed or waits for a credential that is unset, `healthy`
//! only when everything passes. Each service that keeps it from `healthy` is listed with why.

use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::breakers::ongoing_outage;
use super::operations::operation_stats;
use crate::alert::OutageInfo;
use crate::breaker::{Outcome, State as BreakerState};
use crate::outcome::Cause;
use crate::registry::Registry;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StateCounts {
    closed: usize,
    open: usize,
    half_open: usize,
    forced_open: usize,
    disabled: usize,
}

/// The overall status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    /// Every breaker closed, every last check passed, every credential set.
    Healthy,
    /// No breaker open, but a last check failed or a credential is unset.
    Degraded,
    /// A breaker is open, half-open or forced open.
    Unhealthy,
}

/// A service that keeps the status from `healthy`, and why.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Concern {
    service: String,
    why: String,
}

/// The status and the services that make it so.
#[derive(Debug)]
pub(crate) struct Overall {
    pub(crate) status: Status,
    pub(crate) concerns: Vec<Concern>,
}

/// How `registry`'s services are, all together.
pub(crate) fn overall(registry: &Registry) -> Overall {
    let mut concerns = Vec::new();
    let mut in_outage = false;
    for service in registry.iter() {
        let state = service.breaker.state();
        let operation_down = service
            .operation_breakers
            .iter()
            .any(|operation| crate::alert::in_outage(operation.breaker.state()));
        if crate::alert::in_outage(state) || operation_down {
            in_outage = true;
            continue;
        }
        let unset = crate::config::unset_of(&service.config.check);
        if !unset.is_empty() {
            concerns.push(Concern {
                service: service.name().to_string(),
                why: format!("{} not set: its check cannot pass", unset.join(", ")),
            });
            continue;
        }
        if let Some(check) = service.last_check()
            && matches!(check.outcome, Outcome::Failure | Outcome::Timeout)
        {
            let reason = check.reason.map_or("failed", |reason| reason.as_str());
            let detail = check.detail.as_deref().unwrap_or("");
            concerns.push(Concern {
                service: service.name().to_string(),
                why: format!("last check failed ({reason}): {detail}"),
            });
        }
    }
    let status = if in_outage {
        Status::Unhealthy
    } else if concerns.is_empty() {
        Status::Healthy
    } else {
        Status::Degraded
    };
    Overall { status, concerns }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Health {
    /// `healthy`, `degraded` or `unhealthy` (see the module's doc).
    status: Status,
    services: usize,
    states: StateCounts,
    open_services: Vec<String>,
    half_open_services: Vec<String>,
    /// Operations' breakers (`mpesa/b2c`) that are open or half-open: the service's other
    /// operations are still served.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    troubled_operations: Vec<String>,
    /// Every service (or operation) in an outage, with why.
    problems: Vec<Problem>,
    /// Every service not in an outage whose last check failed or whose credentials are unset.
    degraded_services: Vec<Concern>,
    uptime_seconds: u64,
    timestamp: String,
}

/// A service in an outage, and why.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Problem {
    service: String,
    state: BreakerState,
    #[serde(skip_serializing_if = "Option::is_none")]
    outage: Option<OutageInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<Cause>,
}

pub(crate) async fn health(State(state): State<AppState>) -> Json<Health> {
    let mut counts = StateCounts::default();
    let mut open_services = Vec::new();
    let mut half_open_services = Vec::new();
    let mut problems = Vec::new();
    let outages = state.outages();
    let registry = state.registry();
    let mut troubled_operations = Vec::new();
    for service in registry.iter() {
        for (_, operation) in operation_stats(service, &outages) {
            if crate::alert::in_outage(operation.state()) {
                problems.push(Problem {
                    service: operation.unit().to_string(),
                    state: operation.state(),
                    outage: ongoing_outage(&outages, operation.unit()),
                    cause: service.last_failure(),
                });
            }
            if !matches!(
                operation.state(),
                BreakerState::Closed | BreakerState::Disabled
            ) {
                troubled_operations.push(operation.unit().to_string());
            }
        }
        let breaker_state = service.breaker.state();
        if crate::alert::in_outage(breaker_state) {
            problems.push(Problem {
                service: service.name().to_string(),
                state: breaker_state,
                outage: ongoing_outage(&outages, service.name()),
                cause: service.last_failure(),
            });
        }
        match breaker_state {
            BreakerState::Closed => counts.closed += 1,
            BreakerState::Open => {
                counts.open += 1;
                open_services.push(service.name().to_string());
            }
            BreakerState::ForcedOpen => {
                counts.forced_open += 1;
                open_services.push(service.name().to_string());
            }
            BreakerState::HalfOpen => {
                counts.half_open += 1;
                half_open_services.push(service.name().to_string());
            }
            BreakerState::Disabled => counts.disabled += 1,
        }
    }
    let Overall { status, concerns } = overall(&registry);
    let now = SystemTime::now();
    Json(Health {
        status,
        services: registry.len(),
        states: counts,
        open_services,
        half_open_services,
        troubled_operations,
        problems,
        degraded_services: concerns,
        uptime_seconds: now
            .duration_since(state.started)
            .map_or(0, |up| up.as_secs()),
        timestamp: humantime::format_rfc3339_millis(now).to_string(),
    })
}
