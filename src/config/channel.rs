//! A configured alert channel as `[alerts]` holds it: each kind's own settings behind one
//! trait, so that the config knows no channel kind (each kind's folder under
//! `alert/channel/` owns its keys, validation and settings).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::ChannelFilter;

/// One channel's validated settings. Being `PartialEq` gives them [`SettingsIdentity`].
pub trait ChannelSettings: fmt::Debug + Send + Sync + Any + SettingsIdentity {
    /// Its kind, as the table is named: `[alerts.KIND]` or `[[alerts.KIND]]`.
    fn kind(&self) -> &'static str;
    /// Its name (the `channel` label; unique among all channels).
    fn name(&self) -> &str;
    /// Which pages it takes.
    fn filter(&self) -> &ChannelFilter;
    /// Its table as `breakerd check --print` shows it, secrets redacted.
    fn render(&self) -> String;
}

/// What every channel's settings get from their type, written once for all kinds.
pub trait SettingsIdentity {
    /// Itself, for its own kind to read back.
    fn as_any(&self) -> &dyn Any;
    /// Whether `other` is a channel of the same kind with the same settings.
    fn same_as(&self, other: &dyn ChannelSettings) -> bool;
}

impl<T: ChannelSettings + PartialEq> SettingsIdentity for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same_as(&self, other: &dyn ChannelSettings) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }
}

/// A configured channel: cheap to clone, compared by its settings.
#[derive(Clone, Debug)]
pub struct ChannelConfig(Arc<dyn ChannelSettings>);

impl ChannelConfig {
    /// A channel with `settings`.
    pub fn new(settings: impl ChannelSettings) -> Self {
        Self(Arc::new(settings))
    }

    /// Its settings, as `T` when they are of that type.
    pub fn settings_as<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }
}

impl std::ops::Deref for ChannelConfig {
    type Target = dyn ChannelSettings;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl PartialEq for ChannelConfig {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_as(&*other.0)
    }
}
