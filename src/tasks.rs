//! Long-lived tasks that cannot die silently. A task started with `keep` runs under a keeper:
//! if it panics, the panic is logged with the task's name and context, counted in
//! `breakerd_task_panics_total{task}`, and the task is started again after a short pause. A
//! loop that holds state it cannot rebuild guards each step instead with `guard`: a
//! panicking step is logged and counted, and the loop goes on with the next. A `StopSwitch`
//! tells one such task to stop.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::error;

use crate::metrics::Metrics;

pub mod kind;

pub use kind::TaskKind;

/// The first pause before a panicked task starts again; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between restarts of a task that keeps panicking.
const MAX_PAUSE: Duration = Duration::from_secs(10);

/// A panic's message, when it has one.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Logs and counts a panic of `kind` (about `context`, e.g. the service).
pub(crate) fn panicked(
    metrics: &Metrics,
    kind: TaskKind,
    context: &str,
    payload: &(dyn Any + Send),
    then: &str,
) {
    metrics.task_panicked(kind);
    error!(
        task = kind.as_str(),
        context,
        "a {} task panicked ({context}); {then}: {}",
        kind.as_str(),
        panic_message(payload)
    );
}

/// Spawns the task `make` builds, and builds it again whenever it panics, pausing 100 ms,
/// doubling to 10 s while it keeps panicking. It ends when the task returns or the returned
/// handle is aborted. The panic is caught inside the one spawned task, which then builds the
/// next run itself: no second task keeps it (10,000 services' schedulers, one task each).
pub(crate) fn keep<F, Fut>(
    kind: TaskKind,
    context: String,
    metrics: Arc<Metrics>,
    make: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    keep_on(
        &tokio::runtime::Handle::current(),
        kind,
        context,
        metrics,
        make,
    )
}

/// [`keep`], on the runtime `on` (the task and every restart of it).
pub(crate) fn keep_on<F, Fut>(
    on: &tokio::runtime::Handle,
    kind: TaskKind,
    context: String,
    metrics: Arc<Metrics>,
    mut make: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    on.spawn(async move {
        let mut pause = FIRST_PAUSE;
        loop {
            // The run that panicked is dropped before the pause, as a task of its own would be.
            let outcome = CatchUnwind { inner: make() }.await;
            match outcome {
                Ok(()) => return,
                Err(payload) => {
                    panicked(&metrics, kind, &context, &*payload, "starting it again");
                    drop(payload);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
    })
}

/// Tells one long-lived task to stop; dropping it does too. One small allocation, where a
/// `watch` channel takes a few hundred bytes: 10,000 schedulers hold one each.
#[derive(Debug)]
pub(crate) struct StopSwitch(Arc<Stop>);

/// The task's side of a [`StopSwitch`]; its clones all hear the one switch.
#[derive(Clone, Debug)]
pub struct Stopping(Arc<Stop>);

#[derive(Debug, Default)]
struct Stop {
    stopped: AtomicBool,
    news: Notify,
}

impl StopSwitch {
    /// A switch, and what the task it stops listens to.
    pub(crate) fn new() -> (Self, Stopping) {
        let stop = Arc::new(Stop::default());
        (Self(Arc::clone(&stop)), Stopping(stop))
    }

    /// Tells the task to stop.
    pub(crate) fn stop(&self) {
        self.0.stopped.store(true, Ordering::Release);
        self.0.news.notify_waiters();
    }
}

impl Drop for StopSwitch {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Stopping {
    /// Whether the task was told to stop.
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::Acquire)
    }

    /// Resolves once the task is told to stop (or its switch is gone). Cancel safe.
    pub async fn stopped(&self) {
        loop {
            let mut news = std::pin::pin!(self.0.news.notified());
            // Listening before looking: a stop in between wakes this wait.
            news.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            news.await;
        }
    }
}

pin_project! {
    /// A future whose panic becomes `Err(payload)`.
    struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// Runs one step of a long-lived loop; a panic in it is logged and counted, and comes back as
/// `None` so the loop goes on.
pub(crate) async fn guard<T>(
    metrics: &Metrics,
    kind: TaskKind,
    context: &str,
    step: impl Future<Output = T>,
) -> Option<T> {
    match (CatchUnwind { inner: step }).await {
        Ok(value) => Some(value),
        Err(payload) => {
            panicked(
                metrics,
                kind,
                context,
                &*payload,
                "it goes on with the next step",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn panics(metrics: &Metrics, kind: TaskKind) -> f64 {
        let text = metrics.render_prometheus_text();
        let series = format!("breakerd_task_panics_total{{task=\"{}\"}} ", kind.as_str());
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .and_then(|value| value.parse().ok())
            .unwrap_or(f64::NAN)
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_counted_and_started_again() {
        let metrics = Arc::new(Metrics::new());
        assert_eq!(
            panics(&metrics, TaskKind::Scheduler),
            0.0,
            "at zero from start"
        );
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        let kept = keep(
            TaskKind::Scheduler,
            "mpesa".into(),
            Arc::clone(&metrics),
            move || {
                let run = counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    assert!(run >= 2, "run {run} fails");
                }
            },
        );
        kept.await.unwrap();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "two panics, then a run that returns"
        );
        assert_eq!(panics(&metrics, TaskKind::Scheduler), 2.0);
    }

    #[tokio::test]
    async fn aborting_the_keeper_stops_the_task() {
        let metrics = Arc::new(Metrics::new());
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<()>(1);
        let kept = keep(
            TaskKind::AlertDelivery,
            "email".into(),
            metrics,
            move || {
                let sender = sender.clone();
                async move {
                    let _holds = sender;
                    std::future::pending::<()>().await;
                }
            },
        );
        tokio::task::yield_now().await;
        kept.abort();
        assert_eq!(
            receiver.recv().await,
            None,
            "the kept task dropped its sender"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_switch_stops_its_task_and_so_does_dropping_it() {
        let (switch, stopping) = StopSwitch::new();
        let waiting = tokio::spawn({
            let stopping = stopping.clone();
            async move { stopping.stopped().await }
        });
        tokio::task::yield_now().await;
        assert!(!stopping.is_stopped());
        switch.stop();
        // On the paused clock a wait nobody ends would see this timeout fire at once.
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("the waiting task hears the stop")
            .expect("it ran");
        stopping.stopped().await;

        let (switch, stopping) = StopSwitch::new();
        drop(switch);
        assert!(stopping.is_stopped(), "a dropped switch stops its task");
        stopping.stopped().await;
    }

    #[tokio::test]
    async fn a_guarded_step_that_panics_lets_the_loop_go_on() {
        let metrics = Metrics::new();
        let boom = guard(&metrics, TaskKind::AlertStage, "mpesa", async {
            let values: Vec<u32> = Vec::new();
            values[3]
        })
        .await;
        assert_eq!(boom, None);
        let fine = guard(&metrics, TaskKind::AlertStage, "mpesa", async { 7 }).await;
        assert_eq!(fine, Some(7));
        assert_eq!(panics(&metrics, TaskKind::AlertStage), 1.0);
    }
}
