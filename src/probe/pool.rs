//! The idle connections of checks that keep theirs (`reuse_connections = true`), by origin:
//! at most [`MAX_IDLE_PER_ORIGIN`] each, none older than [`IDLE_FOR`], none handed out that
//! the server has closed.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::transport::connection::{Connection, Origin};

/// The most idle connections kept for one origin (services checking the same host share them).
pub(crate) const MAX_IDLE_PER_ORIGIN: usize = 32;
/// How long an idle connection is kept (servers close theirs after 5 s to a few minutes; a
/// check every minute or more often finds its connection still there).
pub(crate) const IDLE_FOR: Duration = Duration::from_secs(90);

/// Idle connections by origin.
#[derive(Default)]
pub(crate) struct Pool {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    idle: HashMap<Origin, Vec<Idle>>,
    /// When connections idle too long were last let go, across every origin.
    swept: Option<Instant>,
}

struct Idle {
    connection: Connection,
    since: Instant,
}

impl Pool {
    /// A sound idle connection to `origin`, the most recently used first.
    pub(crate) fn take(&self, origin: &Origin) -> Option<Connection> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let idle = state.idle.get_mut(origin)?;
        while let Some(mut candidate) = idle.pop() {
            if candidate.since.elapsed() < IDLE_FOR && candidate.connection.is_reusable() {
                return Some(candidate.connection);
            }
        }
        None
    }

    /// Keeps `connection` for the next check of `origin`, if there is room.
    pub(crate) fn put(&self, origin: &Origin, connection: Connection) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state
            .swept
            .is_none_or(|swept| now.duration_since(swept) >= IDLE_FOR)
        {
            state.swept = Some(now);
            state.idle.retain(|_, idle| {
                idle.retain(|kept| now.duration_since(kept.since) < IDLE_FOR);
                !idle.is_empty()
            });
        }
        let kept = Idle {
            connection,
            since: now,
        };
        match state.idle.get_mut(origin) {
            Some(idle) if idle.len() < MAX_IDLE_PER_ORIGIN => idle.push(kept),
            Some(_) => {}
            None => {
                state.idle.insert(origin.clone(), vec![kept]);
            }
        }
    }

    /// How many idle connections are kept, across origins.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.idle.values().map(Vec::len).sum()
    }
}
