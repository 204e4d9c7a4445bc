//! The threads checks run on (`[server] check_threads`): each a single-threaded tokio runtime of
//! its own, so that a check's timer, connection and task stay on one thread — no work stealing,
//! no wake-ups across threads, which at tens to hundreds of checks a second cost more than the
//! check — and so that checks and the API, alerts and the proxy's real traffic never wait for
//! one another. A service always runs on the same thread (a stable hash of its name).

use std::io;
use std::sync::mpsc;
use std::thread;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// The most check threads a config may ask for.
pub const MAX_CHECK_THREADS: u32 = 64;

/// Running check threads; they stop when this is dropped (their tasks are cancelled).
#[derive(Debug)]
pub struct CheckThreads {
    handles: Vec<Handle>,
    /// Dropping a sender ends its thread's runtime.
    _stops: Vec<oneshot::Sender<()>>,
}

impl CheckThreads {
    /// Starts `count` check threads (at least one), named `breakerd-checks-N`.
    pub fn start(count: u32) -> io::Result<Self> {
        let count = count.clamp(1, MAX_CHECK_THREADS);
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        for index in 0..count {
            let (handle_sender, handle_receiver) = mpsc::sync_channel(1);
            let (stop, stopped) = oneshot::channel::<()>();
            thread::Builder::new()
                .name(format!("breakerd-checks-{index}"))
                .spawn(move || {
                    let runtime = match Builder::new_current_thread().enable_all().build() {
                        Ok(runtime) => runtime,
                        Err(error) => {
                            let _ = handle_sender.send(Err(error));
                            return;
                        }
                    };
                    if handle_sender.send(Ok(runtime.handle().clone())).is_err() {
                        return;
                    }
                    // Runs the checks spawned onto it until the stop is sent or dropped.
                    let _ = runtime.block_on(stopped);
                })?;
            let handle = handle_receiver
                .recv()
                .map_err(|_| io::Error::other("a check thread ended as it started"))??;
            handles.push(handle);
            stops.push(stop);
        }
        Ok(Self {
            handles,
            _stops: stops,
        })
    }

    /// The runtime `service`'s checks run on. (The name is salted: the shard's own hash of it
    /// would put every service of shard N of M on one thread when there are M threads.)
    pub fn for_service(&self, service: &str) -> &Handle {
        let count = u32::try_from(self.handles.len()).unwrap_or(1);
        let index =
            crate::stable_hash::bucket(&format!("check thread of {service}"), count) as usize;
        &self.handles[index.min(self.handles.len() - 1)]
    }

    /// How many threads there are.
    pub fn count(&self) -> usize {
        self.handles.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_keep_their_thread_and_threads_stop_when_dropped() {
        let threads = CheckThreads::start(3).unwrap();
        assert_eq!(threads.count(), 3);
        let (sender, receiver) = mpsc::channel();
        let on = threads.for_service("mpesa").clone();
        assert_eq!(
            on.id(),
            threads.for_service("mpesa").id(),
            "the same thread every time"
        );
        let spawned = on.spawn(async move {
            let _ = sender.send(thread::current().name().map(str::to_owned));
            std::future::pending::<()>().await;
        });
        let thread_name = receiver.recv().unwrap().unwrap_or_default();
        assert!(thread_name.starts_with("breakerd-checks-"), "{thread_name}");
        drop(threads);
        // The runtime is gone: its task was cancelled, not left running.
        let outcome = on.block_on(spawned);
        assert!(outcome.is_err_and(|error| error.is_cancelled()));
        assert_eq!(CheckThreads::start(0).unwrap().count(), 1, "at least one");
    }
}
