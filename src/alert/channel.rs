//! The alert channels breakerd knows, one line each, and the building of every configured one.
//! Each kind is one folder here owning its config keys, validation, message format and
//! delivery; adding a kind is its folder and its line in [`KINDS`].

mod alertmanager;
mod email;
mod kind;
mod pagerduty;
mod telegram;
mod webhook;

use std::sync::Arc;

pub(crate) use alertmanager::alert_labels;
#[cfg(test)]
pub(crate) use kind::Boxed;
pub(crate) use kind::{BuildContext, Channel, ChannelKind};
pub use webhook::{SIGNATURE_HEADER, sign};

use crate::config::AlertsConfig;

/// Every channel kind.
pub(crate) const KINDS: &[&ChannelKind] = &[
    &email::KIND,
    &webhook::KIND,
    &alertmanager::KIND,
    &pagerduty::KIND,
    &telegram::KIND,
];

/// The kind whose table is `[alerts.KEY]`.
pub(crate) fn kind_of(key: &str) -> Option<&'static ChannelKind> {
    KINDS.iter().copied().find(|kind| kind.key == key)
}

/// Builds every channel of `alerts`; the first that cannot be built is the error, named.
pub(crate) fn build_all(
    alerts: &AlertsConfig,
    context: &BuildContext,
) -> Result<Vec<Arc<dyn Channel>>, String> {
    alerts
        .channels
        .iter()
        .map(|config| {
            let kind = kind_of(config.kind())
                .ok_or_else(|| format!("{}: no such channel kind", config.kind()))?;
            (kind.build)(config, context)
                .map_err(|why| format!("{} channel {}: {why}", config.kind(), config.name()))
        })
        .collect()
}
