//! Alerts, paged per outage. Every breaker's transitions reach one stage that lives above
//! reloads: it books outages (one page when a breaker opens, one when it closes again, steps
//! in between only when asked for), keeps each service's state in `state_dir` across
//! restarts, and hands notifications to the channels — email and webhooks, each with its own
//! queue, retries and on-disk outbox, and Alertmanager, kept in step with the outages.

mod alertmanager;
mod delivery;
mod email;
mod failure;
mod notification;
mod outage;
mod outbox;
mod stage;
mod store;
mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use delivery::{FIRST_BACKOFF, MAX_BACKOFF};
pub use notification::{Notification, NotificationKind, OutageInfo};
pub use outage::Outage;
pub(crate) use outage::in_outage;
pub(crate) use stage::{AlertStage, Restored, StageEvent};
pub use webhook::{SIGNATURE_HEADER, sign};

use crate::history::History;
use crate::metrics::Metrics;
use outbox::Outbox;

/// Every service's current outage, or the last one that ended: what the Alertmanager channels
/// and the API read.
pub type OutageView = BTreeMap<String, Arc<Outage>>;

/// What the stage and the delivery tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) outbox: Outbox,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) history: Arc<History>,
}
