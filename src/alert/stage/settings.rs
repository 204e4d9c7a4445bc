//! What the stage takes from a config: its settings, and the plan a config builds (channels
//! included) before anything running changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::alert::channel::{self, BuildContext, Channel};
use crate::alert::outage::Rules;
use crate::config::{AlertsConfig, Config, ConnectivityTarget, MaintenanceWindow};
use crate::transport::Transport;

/// What the stage takes from a config.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) alerts: AlertsConfig,
    pub(super) rules: BTreeMap<String, Rules>,
    pub(super) windows: Vec<MaintenanceWindow>,
    /// Each service's upstreams (`depends_on`), for services that name any.
    pub(super) depends_on: BTreeMap<String, Vec<String>>,
    /// The connectivity guard's targets.
    pub(super) connectivity: Vec<ConnectivityTarget>,
    /// Each service's provider name for people, for services with a preset.
    pub(super) providers: Arc<BTreeMap<String, String>>,
}

impl Settings {
    pub(super) fn of(config: &Config) -> Self {
        let alerts = config.alerts.clone();
        let rules = config
            .services
            .iter()
            .map(|service| {
                let rules = Rules {
                    notify_on: service
                        .notify_on
                        .clone()
                        .unwrap_or_else(|| alerts.notify_on.clone()),
                    min_interval: alerts.min_interval,
                    reminder_every: alerts.reminder_every,
                };
                (service.name.clone(), rules)
            })
            .collect();
        let depends_on = config
            .services
            .iter()
            .filter(|service| !service.depends_on.is_empty())
            .map(|service| (service.name.clone(), service.depends_on.clone()))
            .collect();
        let providers = config
            .services
            .iter()
            .filter_map(|service| {
                let provider = service.check.provider()?;
                Some((service.name.clone(), provider.provider.title.to_string()))
            })
            .collect();
        Self {
            alerts,
            rules,
            windows: config.maintenance.clone(),
            depends_on,
            connectivity: config.server.connectivity.clone(),
            providers: Arc::new(providers),
        }
    }

    pub(super) fn rules(&self, service: &str) -> Rules {
        // An operation's breaker (`mpesa/b2c`) pages by its service's rules.
        self.rules
            .get(crate::unit::service_of(service))
            .cloned()
            .unwrap_or_else(|| Rules {
                notify_on: self.alerts.notify_on.clone(),
                min_interval: self.alerts.min_interval,
                reminder_every: self.alerts.reminder_every,
            })
    }
}

/// What a config asks of the stage, channels included, built before anything running changes:
/// taking it in cannot fail.
pub(crate) struct StagePlan {
    pub(super) settings: Settings,
    pub(super) channels: Vec<Arc<dyn Channel>>,
}

impl std::fmt::Debug for StagePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagePlan")
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

impl StagePlan {
    /// Builds the settings and every channel of `config`; a channel that cannot be built
    /// (an SMTP transport refusing its TLS roots) is the error, and nothing has changed.
    pub(crate) fn build(config: &Config, transport: &Transport) -> Result<Self, String> {
        let settings = Settings::of(config);
        let context = BuildContext {
            transport: transport.clone(),
            max_attempts: settings.alerts.max_attempts,
            api_url: settings.alerts.api_url.clone(),
            runbook_url: settings.alerts.runbook(),
            providers: Arc::clone(&settings.providers),
        };
        let channels = channel::build_all(&settings.alerts, &context)?;
        Ok(Self { settings, channels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NotifyOn;

    fn settings(text: &str) -> Settings {
        let config = Config::parse(text, "alerts.toml", &crate::config::ProcessEnvironment)
            .expect("a valid config");
        Settings::of(&config)
    }

    #[test]
    fn a_service_pages_on_its_own_notify_on_or_else_on_the_alerts_default() {
        let settings = settings(
            "[alerts]\nnotify_on = [\"open\", \"closed\"]\n\
             [services.mpesa]\npreset = \"mpesa\"\nbase_url = \"https://sandbox.safaricom.co.ke\"\n\
             notify_on = [\"open\"]\n\
             [services.api]\nkind = \"http\"\nurl = \"https://api.example.com/health\"\n",
        );
        assert_eq!(settings.rules("mpesa").notify_on, [NotifyOn::Open]);
        assert_eq!(
            settings.rules("api").notify_on,
            [NotifyOn::Open, NotifyOn::Closed]
        );
        // A service the config no longer has (its last pages) goes by the default.
        assert_eq!(
            settings.rules("gone").notify_on,
            [NotifyOn::Open, NotifyOn::Closed]
        );
    }

    #[test]
    fn providers_are_named_for_people_and_dependencies_kept_only_where_declared() {
        let settings = settings(
            "[services.mpesa]\npreset = \"mpesa\"\nbase_url = \"https://sandbox.safaricom.co.ke\"\n\
             [services.rent]\nkind = \"http\"\nurl = \"https://api.example.com/health\"\n\
             depends_on = [\"mpesa\"]\n",
        );
        assert!(settings.providers.contains_key("mpesa"));
        assert!(!settings.providers.contains_key("rent"));
        assert_eq!(
            settings.depends_on.keys().collect::<Vec<_>>(),
            ["rent"],
            "only services that name upstreams"
        );
        assert_eq!(settings.depends_on["rent"], ["mpesa"]);
    }
}
