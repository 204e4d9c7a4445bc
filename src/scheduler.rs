//! Runs each service's synthetic check through its breaker on its schedule: fixed intervals
//! spread across services, or cron. Runs of one service never overlap; a tick missed while a
//! check was still running is skipped and counted, never run late. When the breaker half-opens
//! the trial check runs at once, not at the next tick, so a breaker is half-open only as long as
//! its trial call takes. A service with `checks = "when_idle"` skips a scheduled check while
//! real traffic has judged the provider within the last period; trials are never skipped.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep};
use tracing::{debug, info};

use crate::breaker::{Breaker, BreakerError, Outcome, State, Transition};
use crate::config::{Checks, Schedule};
use crate::metrics::Metrics;
use crate::outcome::FailureReason;
use crate::probe::Observed;
use crate::registry::{CheckRecord, Service};
use crate::tasks::{self, Stopping, TaskKind};

/// First checks of services on the same interval are spread over at most this long.
pub const MAX_SPREAD: Duration = Duration::from_secs(10);
/// Spread offsets are multiples of this (or of a tenth of the window, when shorter): checks due
/// within it wake the runtime once together instead of one by one, which is most of a check's
/// cost at low rates.
pub const SPREAD_GRAIN: Duration = Duration::from_millis(100);
/// The most first checks one grain gathers: a burst larger than a host's idle connections
/// (32) would open new ones.
pub const MAX_BATCH: u32 = 32;

/// Runs `service`'s checks, on the runtime `on`, until `shutdown` turns true. `slot` of `slots` places its first
/// check within the spread window, so services on one interval do not fire together.
/// The task is kept alive: a panic is logged, counted and the schedule starts again.
pub fn spawn(
    on: &tokio::runtime::Handle,
    service: Arc<Service>,
    slot: usize,
    slots: usize,
    shutdown: Stopping,
    metrics: Arc<Metrics>,
) -> JoinHandle<()> {
    let context = service.name().to_string();
    tasks::keep_on(on, TaskKind::Scheduler, context, metrics, move || {
        let service = Arc::clone(&service);
        let shutdown = shutdown.clone();
        async move {
            match &service.config.schedule {
                Schedule::Every(period) => {
                    every(&service, *period, spread(*period, slot, slots), &shutdown).await
                }
                // A cron schedule's wait is larger: boxed, so the interval schedules that
                // 10,000 services run each stay small.
                Schedule::Cron { schedule, .. } => {
                    Box::pin(cron(&service, schedule, &shutdown)).await
                }
            }
        }
    })
}

/// The delay before the first check of `slot` out of `slots`, on a grain of [`SPREAD_GRAIN`].
pub fn spread(period: Duration, slot: usize, slots: usize) -> Duration {
    let window = period.min(MAX_SPREAD);
    let slots = u32::try_from(slots.max(1)).unwrap_or(u32::MAX);
    let slot = u32::try_from(slot).unwrap_or(0).min(slots - 1);
    let offset = window * slot / slots;
    let grain = SPREAD_GRAIN
        .min(window / 10)
        .min(window * MAX_BATCH / slots)
        .as_nanos()
        .max(1);
    let offset_nanos = offset.as_nanos();
    Duration::from_nanos(u64::try_from(offset_nanos - offset_nanos % grain).unwrap_or(0))
}

async fn every(service: &Service, period: Duration, offset: Duration, shutdown: &Stopping) {
    let mut ticks = interval_at(Instant::now() + offset, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut half_opened = HalfOpened::new(service.check_breaker());
    let mut previous: Option<Instant> = None;
    loop {
        let listening = half_opened.follow();
        let tick = tokio::select! {
            tick = ticks.tick() => tick,
            () = half_opened.next(), if listening => {
                run_check(service).await;
                continue;
            }
            () = shutdown.stopped() => return,
        };
        if let Some(previous) = previous {
            let skipped = missed_between(previous, tick, period);
            if skipped > 0 {
                service.metrics.missed_ticks(skipped);
                debug!(
                    service = service.name(),
                    skipped, "skipped ticks while the previous check ran"
                );
            }
        }
        previous = Some(tick);
        if busy_with_traffic(service, period) {
            continue;
        }
        run_check(service).await;
    }
}

/// With `checks = "when_idle"`: whether real traffic judged the provider within the last
/// `period`, so this scheduled check can be skipped (and is counted as skipped).
fn busy_with_traffic(service: &Service, period: Duration) -> bool {
    let busy = service.config.checks == Checks::WhenIdle && service.traffic_within(period);
    if busy {
        service.metrics.skipped_for_traffic();
        debug!(
            service = service.name(),
            "check skipped: real traffic judged the provider within the last period"
        );
    }
    busy
}

/// Ticks skipped between two consecutive ticks of a `period` interval.
fn missed_between(previous: Instant, tick: Instant, period: Duration) -> u64 {
    let gap = tick.saturating_duration_since(previous).as_nanos();
    let steps = gap / period.as_nanos().max(1);
    u64::try_from(steps.saturating_sub(1)).unwrap_or(u64::MAX)
}

async fn cron(service: &Service, schedule: &cron::Schedule, shutdown: &Stopping) {
    let mut half_opened = HalfOpened::new(service.check_breaker());
    loop {
        let listening = half_opened.follow();
        let now = chrono::Utc::now();
        let Some(next) = schedule.after(&now).next() else {
            info!(
                service = service.name(),
                "the cron schedule has no further times; checks stop"
            );
            return;
        };
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = sleep(wait) => {}
            () = half_opened.next(), if listening => {
                run_check(service).await;
                continue;
            }
            () = shutdown.stopped() => return,
        }
        if !busy_with_traffic(service, service.check_period()) {
            run_check(service).await;
        }
        let skipped = schedule
            .after(&next)
            .take_while(|time| *time <= chrono::Utc::now())
            .count();
        if skipped > 0 {
            service
                .metrics
                .missed_ticks(u64::try_from(skipped).unwrap_or(u64::MAX));
        }
    }
}

/// Tells the scheduler when its breaker half-opens, so the trial runs at once. It listens only
/// while the breaker is in an outage: a healthy service's ticks cost nothing more.
struct HalfOpened {
    breaker: Breaker,
    /// Subscribed while the breaker is open, forced open or half-open.
    events: Option<broadcast::Receiver<Transition>>,
    /// Half-open already when the listening began (restored after a restart, or half-opened
    /// in the moment before subscribing): the trial is due first thing.
    pending: bool,
}

impl HalfOpened {
    fn new(breaker: &Breaker) -> Self {
        Self {
            breaker: breaker.clone(),
            events: None,
            pending: false,
        }
    }

    /// Starts or stops listening, as the breaker's state asks; returns whether it listens.
    fn follow(&mut self) -> bool {
        if matches!(self.breaker.state(), State::Closed | State::Disabled) {
            self.events = None;
            self.pending = false;
            return false;
        }
        if self.events.is_none() {
            self.events = Some(self.breaker.subscribe());
            // Read after subscribing: a half-opening in between is seen here, not missed.
            self.pending = self.breaker.state() == State::HalfOpen;
        }
        true
    }

    /// Resolves when the breaker has half-opened. Cancel safe: it only receives from a
    /// broadcast channel.
    async fn next(&mut self) {
        if std::mem::take(&mut self.pending) {
            return;
        }
        let Some(events) = &mut self.events else {
            return std::future::pending().await;
        };
        loop {
            match events.recv().await {
                Ok(event) if event.to == State::HalfOpen => return,
                Ok(_) => {}
                // Missed events: what matters is where the breaker is now.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if self.breaker.state() == State::HalfOpen {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return std::future::pending().await;
                }
            }
        }
    }
}

/// A scheduled check, boxed: the schedule's own task stays small while it waits (a check's
/// future, with its HTTP client inside, is several kilobytes; a thousand idle schedules need
/// not hold one each).
async fn run_check(service: &Service) {
    Box::pin(check_once(service)).await;
}

/// Runs one check through the breaker and records it: metrics, recent checks, a log line for
/// failures. A check the open breaker rejects is recorded as `rejected` and runs nothing.
pub async fn check_once(service: &Service) -> CheckRecord {
    let _one_at_a_time = service.run_lock.lock().await;
    let at = SystemTime::now();
    let started = Instant::now();
    let seen = std::sync::Mutex::new(Observed::default());
    // An answer the rules call the caller's own outcome counts for neither side.
    let classify =
        |result: &Result<crate::outcome::ProbeSuccess, crate::outcome::ProbeError>| match result {
            Ok(success) if success.caller.is_some() => crate::breaker::Verdict::Ignore,
            Ok(_) => crate::breaker::Verdict::Success,
            Err(_) => crate::breaker::Verdict::Failure,
        };
    let breaker = service.check_breaker();
    let result = breaker
        .call_with(classify, || async {
            let (result, observed) = service.probe.run_observed().await;
            *seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = observed;
            if let Err(failure) = &result {
                // A throttling provider's wait holds the next trial back (the check is often
                // the trial itself).
                if let Some(wait) = failure.retry_after {
                    breaker.defer_next_trial(wait);
                }
                service.note_failure(failure);
            }
            result
        })
        .await;
    // A check that timed out or was rejected saw no answer.
    let seen = seen
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(clock) = service.probe.heartbeat() {
        // A beat kept from the last run shows from the first check on.
        if let Some(at) = clock.last().await {
            service.metrics.heartbeat_seen(at);
        }
    }
    let (outcome, reason, detail, note) = match result {
        Ok(success) if success.caller.is_some() => {
            if let (Some(kind), Some(provider)) = (success.caller, service.judge.provider()) {
                let operation = service.judge.named(provider.check_operation);
                service
                    .metrics
                    .caller_outcome(usize::from(operation.index), kind);
            }
            (Outcome::Ignored, None, None, success.note)
        }
        Ok(success) => (Outcome::Success, None, None, success.note),
        Err(BreakerError::Open(open)) => (
            Outcome::Rejected,
            None,
            Some(Arc::from(open.to_string())),
            None,
        ),
        Err(BreakerError::Timeout(timeout)) => (
            Outcome::Timeout,
            Some(FailureReason::Timeout),
            Some(Arc::from(timeout.to_string())),
            None,
        ),
        Err(BreakerError::Inner(failure)) => (
            Outcome::Failure,
            Some(failure.reason),
            Some(Arc::from(failure.detail)),
            None,
        ),
    };
    let record = CheckRecord {
        at,
        outcome,
        duration_ms: if outcome == Outcome::Rejected {
            0.0
        } else {
            duration_ms
        },
        reason,
        detail,
        note,
        http_status: seen.http_status,
        tls: seen.certificate,
        phases: seen.phases,
    };
    let slow_call = service.slow_call();
    let took = started.elapsed();
    if let Some(slow_call) = slow_call
        && outcome != Outcome::Rejected
        && took > slow_call
    {
        crate::observe::slow(
            service.name(),
            crate::metrics::Source::Check,
            outcome,
            took,
            slow_call,
            record.phases.as_ref(),
        );
    }
    if outcome == Outcome::Rejected {
        // The schedule is alive even while the breaker turns checks away.
        service.metrics.probe_scheduled(at);
    } else {
        service.metrics.probe(reason, at);
        service.metrics.probe_http_status(record.http_status);
        service
            .metrics
            .probe_phases(&record.phases.unwrap_or_default());
        if let Some(certificate) = &record.tls {
            service.metrics.tls_not_after(certificate.not_after);
        }
    }
    let duration_ms = crate::observe::log_ms(duration_ms);
    match (&record.reason, &record.detail) {
        (Some(reason), Some(detail)) => {
            info!(
                service = service.name(),
                reason = reason.as_str(),
                duration_ms,
                "check failed: {detail}"
            );
        }
        _ => debug!(
            service = service.name(),
            outcome = outcome.as_str(),
            duration_ms,
            "check done"
        ),
    }
    // A note is news when it changes in kind (a first note, a quality rating moving); the
    // same note check after check is not, nor one whose numbers alone moved (a balance going
    // down as messages are sent: crossing its floor fails the check instead).
    if let Some(note) = &record.note {
        let said_before = service
            .last_check()
            .and_then(|last| last.note)
            .is_some_and(|last| same_but_numbers(&last, note));
        if said_before {
            debug!(service = service.name(), "check passed with a note: {note}");
        } else {
            info!(service = service.name(), "check passed with a note: {note}");
        }
    }
    service.remember(record.clone());
    record
}

/// Whether `a` and `b` say the same once every run of digits (with its decimal point) is
/// taken as one number: `balance KES 1785.50` and `balance KES 1712.00` do.
fn same_but_numbers(a: &str, b: &str) -> bool {
    fn shape(text: &str) -> impl Iterator<Item = char> + '_ {
        let mut previous_digit = false;
        text.chars().filter_map(move |c| {
            let digit = c.is_ascii_digit() || (previous_digit && matches!(c, '.' | ','));
            let kept = match (digit, previous_digit) {
                (true, true) => None,
                (true, false) => Some('#'),
                (false, _) => Some(c),
            };
            previous_digit = digit;
            kept
        })
    }
    shape(a).eq(shape(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_whose_numbers_alone_moved_is_no_news() {
        assert!(same_but_numbers(
            "balance KES 1785.50",
            "balance KES 1,712.00"
        ));
        assert!(same_but_numbers(
            "status CONNECTED, quality_rating GREEN",
            "status CONNECTED, quality_rating GREEN"
        ));
        assert!(!same_but_numbers(
            "status CONNECTED, quality_rating GREEN",
            "status CONNECTED, quality_rating YELLOW"
        ));
        assert!(!same_but_numbers("balance KES 17", "balance USD 17"));
    }

    #[test]
    fn first_checks_spread_over_the_window() {
        let period = Duration::from_secs(30);
        let offsets: Vec<u64> = (0..6)
            .map(|slot| spread(period, slot, 6).as_millis() as u64)
            .collect();
        assert_eq!(offsets, vec![0, 1600, 3300, 5000, 6600, 8300]);
        assert_eq!(
            spread(Duration::from_secs(1), 500, 1000),
            Duration::from_millis(480),
            "on a 32 ms grain: 1,000 services, at most 32 at once"
        );
        // 200 services every second: ten wake-ups of twenty checks each; 10,000: batches of
        // at most 32.
        let wakeups = |slots: usize| {
            let offsets: Vec<Duration> = (0..slots)
                .map(|slot| spread(Duration::from_secs(1), slot, slots))
                .collect();
            let distinct: std::collections::BTreeSet<&Duration> = offsets.iter().collect();
            let largest = distinct
                .iter()
                .map(|offset| offsets.iter().filter(|other| other == offset).count())
                .max();
            (distinct.len(), largest)
        };
        assert_eq!(wakeups(200), (10, Some(20)));
        let (count, largest) = wakeups(10_000);
        assert!(
            count >= 10_000 / 32 && largest <= Some(32),
            "{count} {largest:?}"
        );
        // A short period keeps a finer grain.
        assert_eq!(
            spread(Duration::from_millis(50), 7, 10),
            Duration::from_millis(35)
        );
        assert_eq!(spread(period, 9, 0), Duration::ZERO);
    }

    #[test]
    fn skipped_ticks_are_counted_from_the_gap() {
        let start = Instant::now();
        let period = Duration::from_secs(1);
        assert_eq!(missed_between(start, start + period, period), 0);
        assert_eq!(missed_between(start, start + period * 4, period), 3);
        assert_eq!(missed_between(start, start, period), 0);
    }
}
