//! Outage bookkeeping, the unit of paging. An outage starts when a breaker opens from closed
//! (or is forced open) and ends when it closes again; half-opening and failed trials are steps
//! within it. Per service, this decides what notifies and when: one page when an outage
//! starts, one when it ends, steps only when asked for, reminders while it lasts, and changes
//! that come within `min_interval` of the last page held back and summarised (called flapping
//! only when outages started or ended several times). It is pure: it is handed the time and
//! returns what to send.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::notification::{NotificationKind, OutageInfo};
use crate::breaker::{State, Transition, TransitionReason};
use crate::config::NotifyOn;
use crate::outcome::Cause;
use crate::wall::serde_rfc3339;

/// How one service notifies.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rules {
    /// Which kinds of change page: `open` (an outage starts, reminders), `closed` (it ends),
    /// `half_open` (steps within it), `disabled`.
    pub(crate) notify_on: Vec<NotifyOn>,
    /// Changes within this long of the last page are held back and summarised.
    pub(crate) min_interval: Duration,
    /// Reminders while an outage lasts.
    pub(crate) reminder_every: Option<Duration>,
}

/// Whether a breaker in `state` is in an outage: calls are rejected, or only trials pass.
pub(crate) fn in_outage(state: State) -> bool {
    state.is_tripped()
}

/// A change of state, with what is wrong with the provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Change {
    pub(crate) from: State,
    pub(crate) to: State,
    pub(crate) reason: TransitionReason,
    #[serde(with = "serde_rfc3339")]
    pub(crate) at: SystemTime,
    pub(crate) consecutive_failures: u32,
    #[serde(with = "serde_rfc3339::option", default)]
    pub(crate) next_attempt: Option<SystemTime>,
    /// The last real failure when it changed.
    #[serde(default)]
    pub(crate) cause: Option<Cause>,
}

impl Change {
    /// The change `transition` made, with the service's last real failure.
    pub(crate) fn of(transition: &Transition, cause: Option<Cause>) -> Self {
        Self {
            from: transition.from,
            to: transition.to,
            reason: transition.reason.clone(),
            at: transition.at_wall,
            consecutive_failures: transition.consecutive_failures,
            next_attempt: transition.next_attempt,
            cause,
        }
    }

    /// Whether it starts or ends an outage (rather than being a step within one).
    fn is_boundary(&self) -> bool {
        in_outage(self.from) != in_outage(self.to)
    }
}

/// An outage, kept while it lasts and, once ended, until the next one starts (so Alertmanager
/// hears of its end for a while).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outage {
    /// When the breaker opened.
    #[serde(with = "serde_rfc3339")]
    pub started_at: SystemTime,
    /// Why it opened.
    pub opened_by: TransitionReason,
    /// The breaker's state now (closed or disabled once ended).
    pub state: State,
    /// Trial calls that failed.
    pub failed_trials: u32,
    /// The last real failure: what is wrong with the provider.
    pub cause: Option<Cause>,
    /// When it ended.
    #[serde(with = "serde_rfc3339::option", default)]
    pub ended_at: Option<SystemTime>,
    /// Its start has not been paged: it began while the service's pages were held
    /// (maintenance, a silence, an upstream's outage). It is paged when the hold ends, if it
    /// still lasts.
    #[serde(default)]
    pub held: bool,
    /// The latest change within it, which reminders repeat.
    latest: Change,
}

impl Outage {
    fn start(change: &Change) -> Self {
        Self {
            started_at: change.at,
            opened_by: change.reason.clone(),
            state: change.to,
            failed_trials: 0,
            cause: change.cause.clone(),
            ended_at: None,
            held: false,
            latest: change.clone(),
        }
    }

    /// Whether it is still going on.
    pub fn is_ongoing(&self) -> bool {
        self.ended_at.is_none()
    }

    fn record(&mut self, change: &Change) {
        if change.from == State::HalfOpen && change.to == State::Open {
            self.failed_trials = self.failed_trials.saturating_add(1);
        }
        if change.cause.is_some() {
            self.cause.clone_from(&change.cause);
        }
        if !in_outage(change.to) {
            self.ended_at = Some(change.at);
        }
        self.state = change.to;
        self.latest = change.clone();
    }

    /// What a notification says of it.
    pub(crate) fn info(&self) -> OutageInfo {
        OutageInfo {
            started_at: self.started_at,
            ended_at: self.ended_at,
            failed_trials: self.failed_trials,
        }
    }
}

/// Something to send: one change, or a summary of held ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page {
    pub(crate) kind: NotificationKind,
    /// The `notify_on` value a channel must take to receive it.
    pub(crate) class: NotifyOn,
    /// The change, or the latest of those summarised (with `from` the first one's).
    pub(crate) change: Change,
    /// How many changes it covers.
    pub(crate) changes: u32,
    /// The outage it belongs to, as it stood.
    pub(crate) outage: Option<OutageInfo>,
}

/// Pages held back because they came within `min_interval` of the last one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Held {
    first_from: State,
    latest: Page,
    count: u32,
    /// Outage starts and ends among them: several make it flapping.
    boundaries: u32,
}

impl Held {
    fn into_page(self) -> Page {
        let mut page = self.latest;
        if self.count > 1 {
            page.change.from = self.first_from;
            page.changes = self.count;
            if self.boundaries > 1 {
                page.kind = NotificationKind::Flapping;
                page.class = if in_outage(page.change.to) {
                    NotifyOn::Open
                } else {
                    NotifyOn::of(page.change.to)
                };
            }
        }
        page
    }
}

/// One service's outages and paging timers.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Ledger {
    outage: Option<Outage>,
    last_sent: Option<Instant>,
    /// The state the last page left on-call with: where a summary starts from.
    told: Option<State>,
    held: Option<(Held, Instant)>,
    next_reminder: Option<Instant>,
    /// Pages are held now (maintenance, a silence, an upstream's outage): changes are booked,
    /// nothing is sent, and what on-call has not been told goes out when the hold ends.
    quiet: bool,
}

impl Ledger {
    /// The current outage, or the last one that ended.
    pub(crate) fn outage(&self) -> Option<&Outage> {
        self.outage.as_ref()
    }

    /// The earliest moment [`Ledger::on_timer`] has something to do.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let held = self.held.as_ref().map(|(_, due)| *due);
        [held, self.next_reminder].into_iter().flatten().min()
    }

    /// Books `change`; returns the page to send now, if any. Steps: 1. start, continue or end
    /// the outage; 2. drop what the service does not notify on; 3. hold what comes within
    /// `min_interval` of the last page; 4. otherwise page now.
    pub(crate) fn on_change(
        &mut self,
        change: Change,
        rules: &Rules,
        now: Instant,
    ) -> Option<Page> {
        let ongoing = self.outage.as_ref().is_some_and(Outage::is_ongoing);
        let class = match (ongoing, in_outage(change.to)) {
            (false, true) => {
                // Also where the opening itself was missed: whatever starts an outage pages.
                let mut outage = Outage::start(&change);
                outage.held = self.quiet;
                self.outage = Some(outage);
                self.next_reminder = rules.reminder_every.map(|every| now + every);
                NotifyOn::Open
            }
            (true, still) => {
                if let Some(outage) = &mut self.outage {
                    outage.record(&change);
                }
                if still {
                    NotifyOn::HalfOpen
                } else {
                    self.next_reminder = None;
                    NotifyOn::of(change.to)
                }
            }
            (false, false) if change.to == State::Disabled => NotifyOn::Disabled,
            (false, false) => return None,
        };
        if self.quiet || !rules.notify_on.contains(&class) {
            return None;
        }
        let mut change = change;
        if change.cause.is_none() {
            // A recovery, or a change made by hand: it tells what the outage was about.
            change.cause = self.outage.as_ref().and_then(|outage| outage.cause.clone());
        }
        let page = Page {
            kind: NotificationKind::Transition,
            class,
            outage: self.outage.as_ref().map(Outage::info),
            change,
            changes: 1,
        };
        if let Some(last) = self.last_sent
            && now.saturating_duration_since(last) < rules.min_interval
        {
            self.hold(page, last + rules.min_interval);
            return None;
        }
        self.last_sent = Some(now);
        self.told = Some(page.change.to);
        Some(page)
    }

    fn hold(&mut self, page: Page, due: Instant) {
        let boundary = u32::from(page.change.is_boundary());
        match &mut self.held {
            Some((held, _)) => {
                held.count = held.count.saturating_add(1);
                held.boundaries = held.boundaries.saturating_add(boundary);
                held.latest = page;
            }
            None => {
                let held = Held {
                    first_from: self.told.unwrap_or(page.change.from),
                    latest: page,
                    count: 1,
                    boundaries: boundary,
                };
                self.held = Some((held, due));
            }
        }
    }

    /// What is due by `now` (`wall` on the wall clock): the summary of held changes, a
    /// reminder.
    pub(crate) fn on_timer(&mut self, rules: &Rules, now: Instant, wall: SystemTime) -> Vec<Page> {
        let mut pages = Vec::new();
        if self.quiet {
            // Held changes are told when the hold ends; reminders keep their rhythm unsent.
            self.held = None;
            if let (Some(at), Some(every)) = (self.next_reminder, rules.reminder_every)
                && at <= now
            {
                self.next_reminder = Some(now + every);
            }
            return pages;
        }
        if self.held.as_ref().is_some_and(|(_, due)| *due <= now)
            && let Some((held, _)) = self.held.take()
        {
            self.last_sent = Some(now);
            let page = held.into_page();
            self.told = Some(page.change.to);
            pages.push(page);
        }
        if self.next_reminder.is_some_and(|at| at <= now) {
            match (&self.outage, rules.reminder_every) {
                (Some(outage), Some(every)) if outage.is_ongoing() => {
                    self.next_reminder = Some(now + every);
                    if rules.notify_on.contains(&NotifyOn::Open) {
                        let mut change = outage.latest.clone();
                        change.from = outage.state;
                        change.at = wall;
                        change.cause.clone_from(&outage.cause);
                        pages.push(Page {
                            kind: NotificationKind::Reminder,
                            class: NotifyOn::Open,
                            change,
                            changes: 0,
                            outage: Some(outage.info()),
                        });
                    }
                }
                _ => self.next_reminder = None,
            }
        }
        pages
    }

    /// Holds pages (`quiet`) or lets them go again. When a hold ends, on-call is told what
    /// changed meanwhile, once: an outage still going on that they were not told of pages
    /// (with its cause), one they were told of that ended pages its recovery; else nothing.
    pub(crate) fn set_quiet(&mut self, quiet: bool, rules: &Rules, now: Instant) -> Option<Page> {
        let was_quiet = std::mem::replace(&mut self.quiet, quiet);
        let was_held = self.outage.as_ref().is_some_and(|outage| outage.held);
        // Nothing to tell while held, nor when nothing was held (a held outage kept on disk
        // across a restart counts as held).
        if quiet || !(was_quiet || was_held) {
            return None;
        }
        let outage = self.outage.as_mut()?;
        outage.held = false;
        let told_outage = self.told.is_some_and(in_outage) && !was_held;
        let class = match (outage.is_ongoing(), told_outage) {
            (true, false) => NotifyOn::Open,
            (false, true) => NotifyOn::of(outage.state),
            _ => return None,
        };
        if class == NotifyOn::Open {
            self.next_reminder = rules.reminder_every.map(|every| now + every);
        }
        if !rules.notify_on.contains(&class) {
            return None;
        }
        let mut change = outage.latest.clone();
        if class == NotifyOn::Open {
            // Told as the outage's start, whatever trial happens to be under way.
            change.from = State::Closed;
            if change.to == State::HalfOpen {
                change.to = State::Open;
            }
            change.reason = outage.opened_by.clone();
        }
        change.cause.clone_from(&outage.cause);
        let page = Page {
            kind: NotificationKind::Transition,
            class,
            change,
            changes: 1,
            outage: Some(outage.info()),
        };
        self.held = None;
        self.last_sent = Some(now);
        self.told = Some(page.change.to);
        Some(page)
    }

    /// Ends the outage in progress, if any, at `wall` (its service left the config); returns
    /// it.
    pub(crate) fn close(self, wall: SystemTime) -> Option<Outage> {
        let mut outage = self.outage?;
        outage.ended_at.get_or_insert(wall);
        Some(outage)
    }

    /// Takes changed rules: reminders follow a new interval at once.
    pub(crate) fn retune(&mut self, old: &Rules, new: &Rules, now: Instant) {
        if old.reminder_every == new.reminder_every {
            return;
        }
        let ongoing = self.outage.as_ref().is_some_and(Outage::is_ongoing);
        self.next_reminder = match new.reminder_every {
            Some(every) if ongoing => Some(now + every),
            _ => None,
        };
    }

    /// The ledger as kept on disk, its timers on the wall clock.
    pub(crate) fn record(&self, clock: &ClockPair) -> LedgerRecord {
        LedgerRecord {
            outage: self.outage.clone(),
            last_sent: self.last_sent.map(|at| clock.wall(at)),
            told: self.told,
            held: self.held.as_ref().map(|(held, due)| HeldRecord {
                held: held.clone(),
                due: clock.wall(*due),
            }),
            next_reminder: self.next_reminder.map(|at| clock.wall(at)),
        }
    }

    /// The ledger a previous run kept. Its times come from a file and a wall clock that may
    /// have jumped: a page is never "sent in the future", and no timer lies further ahead than
    /// the longest interval the config allows.
    pub(crate) fn restore(record: LedgerRecord, clock: &ClockPair) -> Self {
        let within = |at: SystemTime, key: &str| {
            clock
                .instant(at)
                .min(clock.instant + crate::config::duration_limit(key))
        };
        Self {
            outage: record.outage,
            last_sent: record
                .last_sent
                .map(|at| clock.instant(at).min(clock.instant)),
            told: record.told,
            held: record
                .held
                .map(|kept| (kept.held, within(kept.due, "alerts.min_interval"))),
            next_reminder: record
                .next_reminder
                .map(|at| within(at, "alerts.reminder_every")),
            quiet: false,
        }
    }
}

/// A ledger as kept on disk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LedgerRecord {
    #[serde(default)]
    outage: Option<Outage>,
    #[serde(with = "serde_rfc3339::option", default)]
    last_sent: Option<SystemTime>,
    #[serde(default)]
    told: Option<State>,
    #[serde(default)]
    held: Option<HeldRecord>,
    #[serde(with = "serde_rfc3339::option", default)]
    next_reminder: Option<SystemTime>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeldRecord {
    held: Held,
    #[serde(with = "serde_rfc3339")]
    due: SystemTime,
}

/// One moment read on both clocks, to carry timers across a restart.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClockPair {
    instant: Instant,
    wall: SystemTime,
}

impl ClockPair {
    /// Now.
    pub(crate) fn now() -> Self {
        Self {
            instant: Instant::now(),
            wall: crate::wall::now(),
        }
    }

    fn wall(&self, at: Instant) -> SystemTime {
        let moved = if at >= self.instant {
            self.wall.checked_add(at - self.instant)
        } else {
            self.wall.checked_sub(self.instant - at)
        };
        moved.unwrap_or(self.wall)
    }

    /// The instant of wall time `at`, read from a file that may say anything: never further
    /// than a year either way.
    fn instant(&self, at: SystemTime) -> Instant {
        const YEAR: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);
        match at.duration_since(self.wall) {
            Ok(ahead) => self.instant + ahead.min(YEAR),
            Err(behind) => self
                .instant
                .checked_sub(behind.duration().min(YEAR))
                .unwrap_or(self.instant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::FailureReason;

    const OPEN: State = State::Open;
    const HALF: State = State::HalfOpen;
    const CLOSED: State = State::Closed;

    fn rules(notify_on: &[NotifyOn], min_interval: u64, reminder: Option<u64>) -> Rules {
        Rules {
            notify_on: notify_on.to_vec(),
            min_interval: Duration::from_secs(min_interval),
            reminder_every: reminder.map(Duration::from_secs),
        }
    }

    fn default_rules() -> Rules {
        rules(&[NotifyOn::Open, NotifyOn::Closed], 30, None)
    }

    fn change(from: State, to: State, detail: Option<&str>) -> Change {
        let reason = match (from, to) {
            (CLOSED, OPEN) => TransitionReason::ConsecutiveFailures { count: 3 },
            (OPEN, HALF) => TransitionReason::ResetTimeoutElapsed,
            (HALF, OPEN) => TransitionReason::TrialFailed,
            (HALF, CLOSED) => TransitionReason::TrialsSucceeded { count: 1 },
            _ => TransitionReason::ManualReset,
        };
        // Whole milliseconds, as state files keep them.
        let at = SystemTime::UNIX_EPOCH
            + Duration::from_millis(crate::wall::unix_millis(crate::wall::now()));
        Change {
            from,
            to,
            reason,
            at,
            consecutive_failures: 3,
            next_attempt: None,
            cause: detail.map(|detail| Cause::plain(FailureReason::HttpStatus, detail, at)),
        }
    }

    /// Ten open/half-open cycles of a provider that stays down, `every` seconds apart.
    fn cycles(ledger: &mut Ledger, rules: &Rules, count: usize) -> Vec<Page> {
        let mut pages = Vec::new();
        for _ in 0..count {
            pages.extend(ledger.on_change(change(OPEN, HALF, None), rules, Instant::now()));
            pages.extend(ledger.on_change(
                change(HALF, OPEN, Some("HTTP 500")),
                rules,
                Instant::now(),
            ));
        }
        pages
    }

    async fn advance(seconds: u64) {
        tokio::time::advance(Duration::from_secs(seconds)).await;
    }

    fn due(ledger: &mut Ledger, rules: &Rules) -> Vec<Page> {
        ledger.on_timer(rules, Instant::now(), crate::wall::now())
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_that_starts_while_held_pages_once_when_the_hold_ends() {
        let rules = rules(&[NotifyOn::Open, NotifyOn::Closed], 30, Some(600));
        let mut ledger = Ledger::default();
        assert_eq!(ledger.set_quiet(true, &rules, Instant::now()), None);
        let opened = ledger.on_change(
            change(CLOSED, OPEN, Some("HTTP 500")),
            &rules,
            Instant::now(),
        );
        assert_eq!(opened, None, "nothing pages while held");
        assert!(ledger.outage().is_some_and(|outage| outage.held));
        assert!(cycles(&mut ledger, &rules, 5).is_empty());
        advance(3600).await;
        assert!(
            due(&mut ledger, &rules).is_empty(),
            "no reminder while held"
        );
        ledger.on_change(change(OPEN, HALF, None), &rules, Instant::now());
        let page = ledger
            .set_quiet(false, &rules, Instant::now())
            .expect("the outage pages when the hold ends");
        assert_eq!(
            (page.class, page.change.from, page.change.to),
            (NotifyOn::Open, CLOSED, OPEN)
        );
        assert_eq!(
            page.change.cause.as_ref().map(|c| c.detail.as_str()),
            Some("HTTP 500")
        );
        assert_eq!(page.outage.map(|o| o.failed_trials), Some(5));
        assert_eq!(
            page.change.reason,
            TransitionReason::ConsecutiveFailures { count: 3 },
            "told as its start, not as the trial under way"
        );
        assert!(!ledger.outage().is_some_and(|outage| outage.held));
        assert_eq!(
            ledger.set_quiet(false, &rules, Instant::now()),
            None,
            "once"
        );
        // It is an outage like any other from now on: reminders, then one recovery.
        advance(600).await;
        assert_eq!(due(&mut ledger, &rules).len(), 1);
        ledger.on_change(change(OPEN, HALF, None), &rules, Instant::now());
        let closed = ledger.on_change(change(HALF, CLOSED, None), &rules, Instant::now());
        assert_eq!(closed.map(|page| page.class), Some(NotifyOn::Closed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_over_an_outage_on_call_knows_tells_only_its_end() {
        let rules = default_rules();
        let mut ledger = Ledger::default();
        assert!(
            ledger
                .on_change(
                    change(CLOSED, OPEN, Some("HTTP 500")),
                    &rules,
                    Instant::now()
                )
                .is_some()
        );
        ledger.set_quiet(true, &rules, Instant::now());
        assert!(cycles(&mut ledger, &rules, 3).is_empty());
        // Still down when the hold ends: on-call knows already.
        assert_eq!(ledger.set_quiet(false, &rules, Instant::now()), None);
        // Recovered during a second hold: the recovery is told when it ends.
        ledger.set_quiet(true, &rules, Instant::now());
        ledger.on_change(change(OPEN, HALF, None), &rules, Instant::now());
        assert_eq!(
            ledger.on_change(change(HALF, CLOSED, None), &rules, Instant::now()),
            None
        );
        let page = ledger
            .set_quiet(false, &rules, Instant::now())
            .expect("the recovery");
        assert_eq!((page.class, page.change.to), (NotifyOn::Closed, CLOSED));
        assert_eq!(
            page.change.cause.map(|c| c.detail),
            Some("HTTP 500".to_string())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_over_within_its_hold_is_never_paged() {
        let rules = default_rules();
        let mut ledger = Ledger::default();
        ledger.set_quiet(true, &rules, Instant::now());
        ledger.on_change(
            change(CLOSED, OPEN, Some("HTTP 500")),
            &rules,
            Instant::now(),
        );
        ledger.on_change(change(OPEN, HALF, None), &rules, Instant::now());
        ledger.on_change(change(HALF, CLOSED, None), &rules, Instant::now());
        assert_eq!(ledger.set_quiet(false, &rules, Instant::now()), None);
        assert!(!ledger.outage().is_some_and(|outage| outage.held));
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_outage_kept_on_disk_pages_after_a_restart_outside_the_hold() {
        let rules = default_rules();
        let mut ledger = Ledger::default();
        ledger.set_quiet(true, &rules, Instant::now());
        ledger.on_change(
            change(CLOSED, OPEN, Some("HTTP 500")),
            &rules,
            Instant::now(),
        );
        let clock = ClockPair::now();
        let mut restored = Ledger::restore(ledger.record(&clock), &clock);
        let page = restored
            .set_quiet(false, &rules, Instant::now())
            .expect("a restart does not lose the held page");
        assert_eq!(page.class, NotifyOn::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_provider_that_stays_down_pages_once_and_recovery_once() {
        let rules = default_rules();
        let mut ledger = Ledger::default();
        let opened = ledger
            .on_change(
                change(CLOSED, OPEN, Some("HTTP 500")),
                &rules,
                Instant::now(),
            )
            .expect("the outage pages at once");
        assert_eq!(opened.kind, NotificationKind::Transition);
        assert_eq!(opened.class, NotifyOn::Open);
        assert_eq!(opened.change.cause.unwrap().detail, "HTTP 500");
        let mut later = Vec::new();
        for _ in 0..20 {
            advance(120).await;
            later.extend(cycles(&mut ledger, &rules, 1));
            later.extend(due(&mut ledger, &rules));
        }
        assert_eq!(later, vec![], "trials of one outage page nothing");
        let outage = ledger.outage().unwrap();
        assert_eq!(outage.failed_trials, 20);
        assert!(outage.is_ongoing());

        advance(60).await;
        ledger.on_change(change(OPEN, HALF, None), &rules, Instant::now());
        let recovered = ledger
            .on_change(change(HALF, CLOSED, None), &rules, Instant::now())
            .expect("recovery pages at once");
        assert_eq!(recovered.class, NotifyOn::Closed);
        let info = recovered.outage.unwrap();
        assert!(info.ended_at.is_some());
        assert_eq!(info.failed_trials, 20);
        assert_eq!(
            recovered.change.cause.unwrap().detail,
            "HTTP 500",
            "the recovery tells what the outage was about"
        );
        assert_eq!(ledger.next_deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn steps_page_only_when_asked_for() {
        let rules = rules(
            &[NotifyOn::Open, NotifyOn::HalfOpen, NotifyOn::Closed],
            0,
            None,
        );
        let mut ledger = Ledger::default();
        ledger.on_change(
            change(CLOSED, OPEN, Some("HTTP 500")),
            &rules,
            Instant::now(),
        );
        let steps = cycles(&mut ledger, &rules, 2);
        let kinds: Vec<(State, State, NotifyOn)> = steps
            .iter()
            .map(|p| (p.change.from, p.change.to, p.class))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (OPEN, HALF, NotifyOn::HalfOpen),
                (HALF, OPEN, NotifyOn::HalfOpen),
                (OPEN, HALF, NotifyOn::HalfOpen),
                (HALF, OPEN, NotifyOn::HalfOpen),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_recovery_waits_out_the_interval_and_is_not_called_flapping() {
        let rules = default_rules();
        let mut ledger = Ledger::default();
        ledger.on_change(
            change(CLOSED, OPEN, Some("HTTP 500")),
            &rules,
            Instant::now(),
        );
        advance(5).await;
        ledger.on_change(change(OPEN, HALF, None), &rules, Instant::now());
        assert_eq!(
            ledger.on_change(change(HALF, CLOSED, None), &rules, Instant::now()),
            None,
            "held: 5 s after the opening page"
        );
        advance(24).await;
        assert_eq!(due(&mut ledger, &rules), vec![]);
        advance(1).await;
        let pages = due(&mut ledger, &rules);
        assert_eq!(pages.len(), 1, "sent {pages:?}");
        assert_eq!(
            pages[0].kind,
            NotificationKind::Transition,
            "one held change is itself"
        );
        assert_eq!(pages[0].change.to, CLOSED);
        assert_eq!(pages[0].changes, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn outages_that_start_and_end_within_the_interval_are_flapping() {
        let rules = default_rules();
        let mut ledger = Ledger::default();
        let first = ledger.on_change(
            change(CLOSED, OPEN, Some("HTTP 500")),
            &rules,
            Instant::now(),
        );
        assert!(first.is_some());
        for _ in 0..3 {
            advance(2).await;
            assert_eq!(
                ledger.on_change(change(OPEN, HALF, None), &rules, Instant::now()),
                None
            );
            ledger.on_change(change(HALF, CLOSED, None), &rules, Instant::now());
            advance(2).await;
            ledger.on_change(
                change(CLOSED, OPEN, Some("HTTP 502")),
                &rules,
                Instant::now(),
            );
        }
        advance(30).await;
        let pages = due(&mut ledger, &rules);
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].kind, NotificationKind::Flapping);
        assert_eq!(pages[0].changes, 6, "3 recoveries and 3 reopenings");
        assert_eq!((pages[0].change.from, pages[0].change.to), (OPEN, OPEN));
        assert_eq!(pages[0].class, NotifyOn::Open);
        assert_eq!(pages[0].change.cause.as_ref().unwrap().detail, "HTTP 502");
    }

    #[tokio::test(start_paused = true)]
    async fn reminders_repeat_while_the_outage_lasts_whatever_the_trials_do() {
        let rules = rules(&[NotifyOn::Open, NotifyOn::Closed], 0, Some(600));
        let mut ledger = Ledger::default();
        ledger.on_change(
            change(CLOSED, OPEN, Some("HTTP 500")),
            &rules,
            Instant::now(),
        );
        let mut reminders = Vec::new();
        for _ in 0..12 {
            advance(100).await;
            cycles(&mut ledger, &rules, 1);
            reminders.extend(due(&mut ledger, &rules));
        }
        assert_eq!(reminders.len(), 2, "at 600 s and 1200 s: {reminders:?}");
        assert!(
            reminders
                .iter()
                .all(|p| p.kind == NotificationKind::Reminder)
        );
        assert_eq!(
            reminders[0].change.cause.as_ref().unwrap().detail,
            "HTTP 500"
        );
        ledger.on_change(change(HALF, CLOSED, None), &rules, Instant::now());
        advance(3600).await;
        assert_eq!(
            due(&mut ledger, &rules),
            vec![],
            "no reminder once recovered"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn forced_open_and_disabled_are_outage_boundaries() {
        let rules = rules(
            &[NotifyOn::Open, NotifyOn::Closed, NotifyOn::Disabled],
            0,
            None,
        );
        let mut ledger = Ledger::default();
        let forced = ledger.on_change(
            change(CLOSED, State::ForcedOpen, None),
            &rules,
            Instant::now(),
        );
        assert_eq!(forced.map(|p| p.class), Some(NotifyOn::Open));
        let disabled = ledger.on_change(
            change(State::ForcedOpen, State::Disabled, None),
            &rules,
            Instant::now(),
        );
        assert_eq!(disabled.map(|p| p.class), Some(NotifyOn::Disabled));
        assert!(!ledger.outage().unwrap().is_ongoing());
        assert_eq!(
            ledger.on_change(
                change(State::Disabled, CLOSED, None),
                &rules,
                Instant::now()
            ),
            None,
            "enabling again ends no outage"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_ledger_comes_back_from_disk_with_its_outage_and_timers() {
        let rules = rules(&[NotifyOn::Open, NotifyOn::Closed], 30, Some(600));
        let mut ledger = Ledger::default();
        ledger.on_change(
            change(CLOSED, OPEN, Some("HTTP 500")),
            &rules,
            Instant::now(),
        );
        advance(10).await;
        ledger.on_change(change(OPEN, HALF, None), &rules, Instant::now());
        ledger.on_change(change(HALF, CLOSED, None), &rules, Instant::now());
        ledger.on_change(change(CLOSED, OPEN, None), &rules, Instant::now());
        let text = serde_json::to_string(&ledger.record(&ClockPair::now())).unwrap();
        let record: LedgerRecord = serde_json::from_str(&text).unwrap();
        let mut restored = Ledger::restore(record, &ClockPair::now());
        assert_eq!(restored.outage(), ledger.outage());
        let deadline = |l: &Ledger| {
            l.next_deadline()
                .map(|d| (d.duration_since(Instant::now()).as_millis() + 50) / 100)
        };
        assert_eq!(
            deadline(&restored),
            deadline(&ledger),
            "the held summary is still due in 20 s"
        );
        advance(20).await;
        let pages = due(&mut restored, &rules);
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].kind, NotificationKind::Flapping);
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_times_in_a_kept_ledger_never_overflow_the_clock() {
        let record: LedgerRecord = serde_json::from_str(
            r#"{"lastSent":"9999-12-31T23:59:59.000Z","nextReminder":"1970-01-01T00:00:00.000Z"}"#,
        )
        .unwrap();
        let mut ledger = Ledger::restore(record, &ClockPair::now());
        let rules = rules(&[NotifyOn::Open], 30, Some(60));
        assert!(ledger.next_deadline().is_some());
        assert_eq!(
            due(&mut ledger, &rules),
            vec![],
            "no outage: nothing to remind of"
        );
        let page = ledger.on_change(
            change(CLOSED, OPEN, Some("HTTP 500")),
            &rules,
            Instant::now(),
        );
        assert_eq!(page, None, "held: the last page counts as sent just now");
        advance(30).await;
        let pages = due(&mut ledger, &rules);
        assert_eq!(pages.len(), 1, "held for min_interval, not until year 9999");
    }
}
