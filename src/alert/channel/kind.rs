//! What a channel kind is to the rest of breakerd: its table's key and keys, how a table is
//! validated into its settings, how settings become a running [`Channel`], and the trait that
//! running channel answers to. The stage, the outbox and the retries know only this.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use toml::Spanned;
use toml::de::DeValue;

use super::super::failure::DeliveryError;
use super::super::page::Page;
use super::super::{OutageView, Shared};
use crate::config::validate::alerts::ChannelTable;
use crate::config::{ChannelConfig, ChannelSettings, NotifyOn, Url};
use crate::transport::Transport;

/// A future a channel returns.
pub(crate) type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The task of a channel that keeps an outside system in step with the published outages on
/// its own (Alertmanager), rather than taking pages one by one: given its settings as they
/// change, the outages as they change, what the channels share and the stop switch.
pub(crate) type Follow = fn(
    watch::Receiver<Arc<dyn Channel>>,
    watch::Receiver<Arc<OutageView>>,
    Arc<Shared>,
    watch::Receiver<bool>,
) -> Boxed<'static, ()>;

/// Builds a running channel from its settings.
pub(crate) type Build = fn(&ChannelConfig, &BuildContext) -> Result<Arc<dyn Channel>, String>;

/// One kind of alert channel: one line in [`super::KINDS`].
pub(crate) struct ChannelKind {
    /// The table: `[alerts.KEY]` (one) or `[[alerts.KEY]]` (many).
    pub(crate) key: &'static str,
    /// Whether several may be configured.
    pub(crate) many: bool,
    /// The keys its table takes.
    pub(crate) keys: fn() -> &'static [&'static str],
    /// Reads one table into its settings; problems go to the table's validator.
    pub(crate) validate:
        fn(&mut ChannelTable<'_, '_>, Spanned<DeValue<'_>>) -> Option<ChannelConfig>,
    /// Builds the running channel from its settings (no connection is opened).
    pub(crate) build: Build,
}

/// What building a channel may use.
#[derive(Clone, Debug)]
pub(crate) struct BuildContext {
    /// The clients channels send with, and the TLS roots an SMTP transport is built over.
    pub(crate) transport: Transport,
    /// Attempts at one page before it is given up.
    pub(crate) max_attempts: u32,
    /// The API's base URL as the on-call person reaches it.
    pub(crate) api_url: Option<Url>,
    /// The runbook's URL (its page).
    pub(crate) runbook_url: Option<String>,
    /// Each service's provider name for people (`M-Pesa Daraja`), for services with a preset.
    pub(crate) providers: Arc<BTreeMap<String, String>>,
}

/// Itself, for its own kind's task to read back: written once for every channel.
pub(crate) trait ChannelAny {
    /// Itself, as `Any`.
    fn as_any(&self) -> &dyn Any;
}

impl<T: Channel> ChannelAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A running alert channel (read back as its own type through [`ChannelAny`]).
pub(crate) trait Channel: Send + Sync + fmt::Debug + ChannelAny + 'static {
    /// Its settings.
    fn settings(&self) -> &dyn ChannelSettings;
    /// Attempts at one page before it is given up.
    fn max_attempts(&self) -> u32;
    /// The time one attempt may take.
    fn timeout(&self) -> Duration;
    /// Sends one page.
    fn deliver<'a>(&'a self, page: &'a Page<'a>) -> Boxed<'a, Result<(), DeliveryError>>;
    /// For a channel that follows the outages instead of taking pages: its task.
    fn follow(&self) -> Option<Follow> {
        None
    }
    /// Its name (the `channel` label).
    fn name(&self) -> &str {
        self.settings().name()
    }

    /// Whether `other` sends the same way (a reload that changed nothing here).
    fn same_as(&self, other: &dyn Channel) -> bool {
        self.max_attempts() == other.max_attempts() && self.settings().same_as(other.settings())
    }

    /// Whether it takes a page of `service` of class `class`.
    fn takes(&self, service: &str, class: NotifyOn) -> bool {
        let filter = self.settings().filter();
        filter
            .notify_on
            .as_ref()
            .is_none_or(|list| list.contains(&class))
            && filter.services.as_ref().is_none_or(|list| {
                // An operation's breaker (`mpesa/b2c`) pages as its service does.
                let service = crate::unit::service_of(service);
                list.iter().any(|s| s == service)
            })
    }

    /// Whether it takes a notice about breakerd itself (offline, online again) of `class`:
    /// its `services` do not narrow those.
    fn takes_notice(&self, class: NotifyOn) -> bool {
        self.settings()
            .filter()
            .notify_on
            .as_ref()
            .is_none_or(|list| list.contains(&class))
    }
}
