//! Trial permits for clients, `POST /api/v1/circuit-breakers/:service/trials`: while a breaker
//! is half-open, an application process asks here before it makes a trial call, so a whole
//! fleet of processes sends only as many trial calls as the breaker allows. The permit holds
//! one of the breaker's trial slots until the outcome report that names it
//! (`"permit": "<id>"`) settles it, or until it expires (the service's timeout and a grace),
//! which gives the slot back. Asking needs a report token, as reporting does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::task::AbortHandle;

use super::breakers::find;
use super::throttle::Presenter;
use super::token::presents;
use super::{ApiError, AppState};
use crate::breaker::{
    Breaker, CallTag, OpenError, Outcome, OwnedPermit, Permit, State as BreakerState,
};
use crate::metrics::Source;
use crate::registry::Service;

/// Trial permits held at once, across every service; more are answered 503.
pub const MAX_TRIAL_PERMITS: usize = 1024;
/// How long past the service's timeout an unsettled permit is kept (its report may still be
/// on the way, batched).
const REPORT_GRACE: Duration = Duration::from_secs(1);

struct Held {
    service: String,
    permit: OwnedPermit,
    expiry: AbortHandle,
}

/// The permits handed out and not yet settled.
#[derive(Default)]
pub(crate) struct Trials {
    held: Arc<Mutex<HashMap<String, Held>>>,
    issued: AtomicU64,
}

impl std::fmt::Debug for Trials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trials")
            .field("held", &lock(&self.held).len())
            .finish()
    }
}

fn lock(held: &Mutex<HashMap<String, Held>>) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
    held.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Trials {
    /// Keeps `permit` for `service` until it is taken or `expires_after` passes; its id.
    fn hold(&self, service: &str, permit: OwnedPermit, expires_after: Duration) -> String {
        let number = self.issued.fetch_add(1, Ordering::Relaxed);
        // Not a secret (the route needs a report token): unique within this daemon's life.
        let id = format!(
            "{:x}-{number}",
            crate::wall::unix_millis(crate::wall::now())
        );
        let held = Arc::clone(&self.held);
        let key = id.clone();
        let expiry = tokio::spawn(async move {
            tokio::time::sleep(expires_after).await;
            // Dropping the permit unreported gives its trial slot back.
            lock(&held).remove(&key);
        })
        .abort_handle();
        lock(&self.held).insert(
            id.clone(),
            Held {
                service: service.to_string(),
                permit,
                expiry,
            },
        );
        id
    }

    fn is_full(&self) -> bool {
        lock(&self.held).len() >= MAX_TRIAL_PERMITS
    }

    /// The permit `id` of `service`, if it is still held.
    pub(crate) fn take(&self, service: &str, id: &str) -> Option<OwnedPermit> {
        let mut held = lock(&self.held);
        if held.get(id).is_none_or(|held| held.service != service) {
            return None;
        }
        let held = held.remove(id)?;
        held.expiry.abort();
        Some(held.permit)
    }
}

/// Leave for one reported call: a trial permit the client was given, or one asked for now.
pub(crate) enum Gate<'a> {
    Borrowed(Permit<'a>),
    Owned(OwnedPermit),
}

impl Gate<'_> {
    /// The permit `held` when there is one, else the breaker's answer now; `None` when the
    /// breaker does not take the call.
    pub(crate) fn admit(
        breaker: &Breaker,
        held: Option<OwnedPermit>,
        tag: CallTag,
    ) -> Option<Gate<'_>> {
        match held {
            Some(permit) => Some(Gate::Owned(permit)),
            None => breaker.acquire_tagged(tag).ok().map(Gate::Borrowed),
        }
    }

    /// Reports the call: `outcome` after `duration`, with `reason` for a failure.
    pub(crate) fn record_measured(
        self,
        outcome: Outcome,
        duration: Duration,
        reason: Option<&dyn std::fmt::Display>,
    ) {
        match self {
            Gate::Borrowed(permit) => permit.record_measured(outcome, duration, reason),
            Gate::Owned(permit) => permit.record_measured(outcome, duration, reason),
        }
    }
}

/// What the trial route answers when it gives leave.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Granted {
    /// The permit to name in the outcome report; `null` when the breaker is closed (or
    /// disabled) and every call may go.
    permit: Option<String>,
    state: BreakerState,
    /// How long the permit is held unreported, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in_ms: Option<u64>,
}

/// Whether `headers` carry a report token good for `service`.
pub(crate) fn check_report_token(
    state: &AppState,
    service: &Service,
    headers: &HeaderMap,
    presenter: &Presenter,
) -> Result<(), ApiError> {
    let Some(token) = service
        .config
        .report_token
        .clone()
        .or_else(|| state.report_token())
    else {
        return Err(ApiError::ReportsDisabled(service.name().to_string()));
    };
    state.throttle.settle(
        presenter,
        presents(headers, &token),
        &state.metrics,
        ApiError::WrongReportToken,
    )
}

/// The seed's open answer: 503 with `{"message": "Circuit breaker mpesa is OPEN",
/// "circuitBreakerOpen": true, ...}`.
fn refused(error: &OpenError) -> Response {
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(error)).into_response();
    if let Some(next) = error.next_attempt()
        && let Ok(wait) = next.duration_since(crate::wall::now())
        && let Ok(value) = wait.as_secs().max(1).to_string().parse()
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// `POST /api/v1/circuit-breakers/:serviceName/trials`.
pub(crate) async fn ask(
    State(state): State<AppState>,
    Path(name): Path<String>,
    presenter: Presenter,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let service = find(&state, &name)?;
    check_report_token(&state, &service, &headers, &presenter)?;
    let breaker = &service.breaker;
    if matches!(
        breaker.state(),
        BreakerState::Closed | BreakerState::Disabled
    ) {
        return Ok(Json(Granted {
            permit: None,
            state: breaker.state(),
            expires_in_ms: None,
        })
        .into_response());
    }
    if state.trials.is_full() {
        return Err(ApiError::Unavailable(format!(
            "{MAX_TRIAL_PERMITS} trial permits are held, the most at once; report the calls they were for"
        )));
    }
    let operation = service.judge.named(crate::provider::OTHER);
    match breaker.acquire_owned(Source::traffic(operation.index)) {
        Err(error) => Ok(refused(&error)),
        Ok(permit) if !permit.is_trial() => {
            // It closed meanwhile: every call may go, no permit needed.
            drop(permit);
            Ok(Json(Granted {
                permit: None,
                state: breaker.state(),
                expires_in_ms: None,
            })
            .into_response())
        }
        Ok(permit) => {
            let expires = breaker.timeout() + REPORT_GRACE;
            let id = state.trials.hold(&name, permit, expires);
            Ok(Json(Granted {
                permit: Some(id),
                state: breaker.state(),
                expires_in_ms: u64::try_from(expires.as_millis()).ok(),
            })
            .into_response())
        }
    }
}
