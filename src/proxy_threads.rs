//! The proxy's own threads, one per core as nginx has its workers: each a single-threaded tokio
//! runtime that accepts on the shared proxy listener and serves the connections it accepted,
//! forwarding over a pool of upstream connections of its own ([`pool_index`]), so a request,
//! its answer and the upstream connection they travel on stay on one thread — no work stealing
//! and no wake-up across threads, which cost more than the forwarding itself.

use std::cell::Cell;
use std::io;
use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock};
use std::thread;

use tokio::net::TcpListener;
use tokio::runtime::Builder;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::service::Service;

use crate::metrics::Metrics;
use crate::serve::Limits;

/// The most proxy threads, whatever the core count.
const MAX_THREADS: usize = 8;

thread_local! {
    /// This thread's pool: 1 and up on proxy threads, 0 anywhere else.
    static POOL: Cell<usize> = const { Cell::new(0) };
}

/// How many proxy threads there are: as many as `TOKIO_WORKER_THREADS` asks for the async
/// workers, else one per core the process may use; at most [`MAX_THREADS`].
pub(crate) fn count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::env::var("TOKIO_WORKER_THREADS")
            .ok()
            .and_then(|threads| threads.trim().parse::<usize>().ok())
            .filter(|threads| *threads > 0)
            .unwrap_or_else(|| thread::available_parallelism().map_or(1, NonZeroUsize::get))
            .clamp(1, MAX_THREADS)
    })
}

/// Which of the upstream clients' pools this thread forwards over: `1..=count()` on a proxy
/// thread, 0 on any other (the main runtime's workers, a test's runtime).
pub(crate) fn pool_index() -> usize {
    POOL.with(Cell::get)
}

/// Serves `service` (the proxy's) on `listener` from [`count`] threads named `breakerd-proxy-N`, within
/// `limits` (the connection cap shared by all of them) until `stopping` turns true, as
/// [`crate::serve::serve`] does. The task returned ends when every thread has; aborting it
/// ends the threads at once, open connections dropped.
///
/// # Errors
/// The listener cannot be shared among the threads, or a thread cannot be started.
pub(crate) fn serve<S, B>(
    listener: TcpListener,
    service: S,
    limits: Limits,
    metrics: Arc<Metrics>,
    stopping: watch::Receiver<bool>,
) -> io::Result<JoinHandle<io::Result<()>>>
where
    S: Service<Request<Incoming>, Response = Response<B>> + crate::serve::FirstLane,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let shared = listener.into_std()?;
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut ended = Vec::new();
    let mut kills = Vec::new();
    for index in 1..=count() {
        let listener = shared.try_clone()?;
        let (service, metrics, stopping) =
            (service.clone(), Arc::clone(&metrics), stopping.clone());
        let permits = Arc::clone(&permits);
        let (done, finished) = oneshot::channel::<io::Result<()>>();
        let (kill, killed) = oneshot::channel::<()>();
        thread::Builder::new()
            .name(format!("breakerd-proxy-{index}"))
            .spawn(move || {
                POOL.with(|pool| pool.set(index));
                let runtime = match Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = done.send(Err(error));
                        return;
                    }
                };
                let result = runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    let lane = service.clone();
                    let serving = crate::serve::serve_shared(
                        listener,
                        (service, lane),
                        limits,
                        permits,
                        metrics,
                        stopping,
                        crate::serve::Peers::Untold,
                    );
                    tokio::select! {
                        result = serving => result,
                        // The task waiting for the threads was aborted (or dropped).
                        _ = killed => Ok(()),
                    }
                });
                let _ = done.send(result);
            })?;
        ended.push(finished);
        kills.push(kill);
    }
    Ok(tokio::spawn(async move {
        // Held while the threads run: dropped, with this task, they end the threads.
        let _kills = kills;
        let mut outcome = Ok(());
        for finished in ended {
            match finished.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => outcome = Err(error),
                Err(_) => outcome = Err(io::Error::other("a proxy thread ended abruptly")),
            }
        }
        outcome
    }))
}
