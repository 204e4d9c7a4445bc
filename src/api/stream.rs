//! The compact state stream for clients, `GET /api/v1/circuit-breakers/stream`: server-sent
//! events, first a `snapshot` of every breaker (its state, counts and the settings a client
//! needs to run a local breaker of the same thresholds), then one `state` event per breaker
//! whose state changed. A client library mirrors the states from it and fails fast locally.
//!
//! Changes are taken from the history's change counter (bumped by the transition pump for
//! every transition), so a change reaches every client within milliseconds; a reload sends a
//! fresh snapshot. A slow look once a second catches anything else (a breaker with no pump
//! behind it, in tests).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::{ApiError, AppState, Published};
use crate::breaker::State as BreakerState;
use crate::registry::{Registry, Service};

/// Clients that follow the state stream at once (one per application process); more are
/// answered 503.
pub const MAX_STATE_STREAM_CLIENTS: usize = 1024;
/// How often the stream looks for changes it was not told of.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What a client keeps of one breaker.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
    state: BreakerState,
    failure_count: u64,
    success_count: u64,
    uptime: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt: Option<String>,
    failure_threshold: u32,
    timeout_ms: u64,
    reset_timeout_ms: u64,
    half_open_max_calls: u32,
    success_threshold: u32,
}

impl Entry {
    fn of(service: &Service) -> Self {
        let stats = service.breaker.stats();
        let policy = service.breaker.policy();
        Self {
            state: stats.state,
            failure_count: stats.failure_count,
            success_count: stats.success_count,
            uptime: stats.uptime,
            next_attempt: stats.next_attempt.map(crate::breaker::rfc3339),
            failure_threshold: stats.failure_threshold,
            timeout_ms: stats.timeout_ms,
            reset_timeout_ms: stats.reset_timeout_ms,
            half_open_max_calls: policy.half_open_max_calls,
            success_threshold: policy.success_threshold,
        }
    }
}

/// What makes a change worth telling, read without building stats: the state, and when an
/// open breaker tries again.
type Key = (BreakerState, u64);

fn key(service: &Service) -> Key {
    let state = service.breaker.state();
    let until = if state == BreakerState::Open {
        service.breaker.inner.open_until_unix_nanos()
    } else {
        0
    };
    (state, until)
}

#[derive(Serialize)]
struct Snapshot<'a> {
    services: &'a BTreeMap<String, Entry>,
}

#[derive(Serialize)]
struct Change<'a> {
    service: &'a str,
    #[serde(flatten)]
    entry: &'a Entry,
}

/// The cap on clients of the state stream.
#[derive(Debug)]
pub(crate) struct StateStreamClients(Arc<Semaphore>);

impl Default for StateStreamClients {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(MAX_STATE_STREAM_CLIENTS)))
    }
}

/// One client's place in the stream.
struct Follower {
    state: AppState,
    changes: Option<watch::Receiver<u64>>,
    published: Option<watch::Receiver<Arc<Published>>>,
    stopping: Option<watch::Receiver<bool>>,
    looks: tokio::time::Interval,
    /// The services the client was last sent a snapshot of (until a reload publishes others).
    registry: Arc<Registry>,
    /// What the client was last told of each, in `registry`'s order.
    told: Vec<Key>,
    queued: VecDeque<Event>,
    _client: OwnedSemaphorePermit,
}

impl Follower {
    fn snapshot(&mut self) {
        self.registry = self.state.registry();
        self.told = self.registry.iter().map(|service| key(service)).collect();
        let services: BTreeMap<String, Entry> = self
            .registry
            .iter()
            .map(|service| (service.name().to_string(), Entry::of(service)))
            .collect();
        let data = serde_json::to_string(&Snapshot {
            services: &services,
        })
        .unwrap_or_else(|_| "{\"services\":{}}".into());
        self.queued
            .push_back(Event::default().event("snapshot").data(data));
    }

    /// Queues a `state` event for every breaker whose state moved since it was last told.
    fn changed(&mut self) {
        for (service, told) in self.registry.iter().zip(self.told.iter_mut()) {
            let now = key(service);
            if now == *told {
                continue;
            }
            *told = now;
            if let Ok(data) = serde_json::to_string(&Change {
                service: service.name(),
                entry: &Entry::of(service),
            }) {
                self.queued
                    .push_back(Event::default().event("state").data(data));
            }
        }
    }

    /// The next event, or `None` once the daemon stops.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.queued.pop_front() {
                return Some(event);
            }
            let Self {
                changes,
                published,
                stopping,
                looks,
                ..
            } = self;
            let wake = tokio::select! {
                changed = wait_changed(changes) => Wake::Changed(changed),
                changed = wait_published(published) => Wake::Published(changed),
                _ = looks.tick() => Wake::Look,
                stopped = wait_stopping(stopping) => Wake::Stopping(stopped),
            };
            match wake {
                Wake::Changed(alive) => {
                    if !alive {
                        // No pump any more: the slow look alone keeps the client told.
                        self.changes = None;
                    }
                    self.changed();
                }
                Wake::Look => self.changed(),
                Wake::Published(true) => self.snapshot(),
                // Nothing publishes any more: the services stay as they are.
                Wake::Published(false) => self.published = None,
                Wake::Stopping(true) => return None,
                // State with no daemon behind it never stops.
                Wake::Stopping(false) => self.stopping = None,
            }
        }
    }
}

/// Whether a change was recorded (false: nothing records any more); never, with no recorder.
async fn wait_changed(changes: &mut Option<watch::Receiver<u64>>) -> bool {
    match changes {
        Some(changes) => changes.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// Whether new services were published (false: nothing publishes any more); never, once
/// known nothing does.
async fn wait_published(published: &mut Option<watch::Receiver<Arc<Published>>>) -> bool {
    match published {
        Some(published) => published.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// Whether the daemon stops (false: there is no daemon to stop); never, once known there is
/// none.
async fn wait_stopping(stopping: &mut Option<watch::Receiver<bool>>) -> bool {
    match stopping {
        Some(stopping) => stopping.wait_for(|stop| *stop).await.is_ok(),
        None => std::future::pending().await,
    }
}

/// What woke a follower.
enum Wake {
    /// A state change was recorded (false: nothing records any more).
    Changed(bool),
    /// A reload published new services (false: the daemon is gone).
    Published(bool),
    /// The slow look is due.
    Look,
    /// The daemon stops (false: there is no daemon to stop).
    Stopping(bool),
}

/// `GET /api/v1/circuit-breakers/stream`.
pub(crate) async fn stream(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Ok(client) = Arc::clone(&state.state_stream_clients.0).try_acquire_owned() else {
        return Err(ApiError::Unavailable(format!(
            "{MAX_STATE_STREAM_CLIENTS} clients follow the state stream, the most served at once; \
             close one, or poll GET /api/v1/circuit-breakers"
        )));
    };
    let mut looks = tokio::time::interval_at(tokio::time::Instant::now() + LOOK_EVERY, LOOK_EVERY);
    looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut follower = Follower {
        changes: Some(state.history.changes()),
        published: Some(state.published()),
        stopping: Some(state.stopping.clone()),
        registry: state.registry(),
        state,
        looks,
        told: Vec::new(),
        queued: VecDeque::new(),
        _client: client,
    };
    if let Some(published) = &mut follower.published {
        published.mark_unchanged();
    }
    follower.snapshot();
    let events = futures_util::stream::unfold(follower, |mut follower| async move {
        let event = follower.next().await?;
        Some((Ok(event), follower))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
