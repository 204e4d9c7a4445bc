//! Alerts, paged per outage. Every breaker's transitions reach one stage that lives above
//! reloads: it books outages (one page when a breaker opens, one when it closes again, steps
//! in between only when asked for), keeps each service's state in `state_dir` across
//! restarts, and hands notifications, worded once as a [`Page`], to the channels — email,
//! webhooks, PagerDuty and Telegram, each with its own queue, retries and on-disk outbox, and
//! Alertmanager, kept in step with the outages. Each channel kind is one folder under
//! `alert/channel/` behind one trait.

pub(crate) mod channel;
mod connectivity;
mod delivery;
mod failure;
mod grouping;
mod notification;
mod outage;
mod outbox;
mod page;
mod quiet;
mod silences;
mod stage;
mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use channel::{SIGNATURE_HEADER, sign};
pub use connectivity::{GUARD_EVERY, GUARD_TIMEOUT};
pub use delivery::{FIRST_BACKOFF, MAX_BACKOFF, MAX_RETRY_AFTER};
pub use grouping::OPERATION_GROUP_WAIT;
pub use notification::{Notification, NotificationKind, OutageInfo};
pub use outage::Outage;
pub(crate) use outage::in_outage;
pub use page::{Page, Standing, advice, advice_markdown};
pub use quiet::{Hold, Offline, QuietView};
pub use silences::{
    MAX_COMMENT_CHARS, MAX_SILENCE, MAX_SILENCES, NewSilence, Silence, SilenceError,
};
pub use stage::Silencer;
pub(crate) use stage::{AlertStage, Restored, StageEvent, StagePlan};

use crate::history::History;
use crate::metrics::Metrics;
use outbox::Outbox;

/// Every service's current outage, or the last one that ended: what the Alertmanager channels
/// and the API read.
pub type OutageView = BTreeMap<String, Arc<Outage>>;

/// What the alert stage publishes for the API, and the way to its silences.
#[derive(Clone, Debug)]
pub struct AlertFeeds {
    /// Every service's outage.
    pub outages: tokio::sync::watch::Receiver<Arc<OutageView>>,
    /// Which services' pages are held, and the active silences.
    pub quiet: tokio::sync::watch::Receiver<Arc<QuietView>>,
    /// Makes and ends silences; `None` without a stage (fixed test setups).
    pub silencer: Option<Silencer>,
}

impl AlertFeeds {
    /// Feeds that never change: no outages, nothing held, no silences.
    pub fn fixed() -> Self {
        let (_, outages) = tokio::sync::watch::channel(Arc::default());
        let (_, quiet) = tokio::sync::watch::channel(Arc::default());
        Self {
            outages,
            quiet,
            silencer: None,
        }
    }
}

/// What the stage and the delivery tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) outbox: Outbox,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) history: Arc<History>,
}
