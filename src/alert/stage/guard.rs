//! The connectivity guard, as the stage keeps it: whether breakerd itself is offline (no
//! target answers), the opening pages held while the guard takes a look, and the one
//! notice each way.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use super::Stage;
use crate::alert::connectivity::{self, GUARD_TIMEOUT, Reachability};
use crate::alert::notification::NotificationKind;
use crate::alert::outage::{Ledger, Outage};
use crate::config::ConnectivityTarget;

/// The running probe of the connectivity guard.
pub(super) struct Guard {
    pub(super) targets: Vec<ConnectivityTarget>,
    pub(super) ask: mpsc::Sender<()>,
    pub(super) task: JoinHandle<()>,
}

impl Stage {
    /// Holds `service`'s opening page until the guard has looked again, when it has `tcp://`
    /// targets: a provider that seems down may only mean breakerd is offline.
    pub(super) fn verify_connectivity(&mut self, service: &str) {
        let Some(guard) = &self.guard else { return };
        self.verifying.insert(service.to_string());
        // A look already asked for answers this one too.
        let _ = guard.ask.try_send(());
        if self.verifying_until.is_none() {
            self.verifying_until = Some(Instant::now() + GUARD_TIMEOUT + Duration::from_secs(2));
        }
    }

    /// What the guard's probe found.
    pub(super) async fn on_reachability(&mut self, found: Reachability) {
        self.tcp_reachable = Some(found);
        let was_verifying = !std::mem::take(&mut self.verifying).is_empty();
        self.verifying_until = None;
        // Going offline or online refreshes every hold; so must an answer someone waited for.
        if !self.update_connectivity().await && was_verifying {
            self.refresh_all_holds().await;
        }
    }

    /// Whether any guard target answers (see [`reachable`]).
    pub(super) fn reachable(&self) -> bool {
        reachable(
            &self.settings.connectivity,
            self.tcp_reachable.as_ref(),
            |name| {
                self.ledgers
                    .get(name)
                    .and_then(Ledger::outage)
                    .is_some_and(Outage::is_ongoing)
            },
        )
    }

    /// Goes offline or online as the guard says: one notice each way, and holds for every
    /// service while offline. Says whether it went either way.
    pub(super) async fn update_connectivity(&mut self) -> bool {
        let reachable = self.reachable();
        match (&self.offline, reachable) {
            (None, false) => {
                let failures =
                    offline_failures(&self.settings.connectivity, self.tcp_reachable.as_ref());
                let offline = super::quiet::Offline {
                    since: crate::wall::now(),
                    failures,
                };
                warn!(
                    "breakerd is offline: no connectivity target answers ({}); provider pages are held",
                    offline.failures.join("; ")
                );
                self.shared.metrics.set_offline(true);
                let notice = self.notice(NotificationKind::Offline, &offline, None);
                self.offline = Some(offline);
                self.send_notice(notice).await;
                self.refresh_all_holds().await;
                true
            }
            (Some(offline), true) => {
                let offline = offline.clone();
                info!("breakerd is online again: a connectivity target answers");
                self.shared.metrics.set_offline(false);
                self.offline = None;
                let notice =
                    self.notice(NotificationKind::Online, &offline, Some(crate::wall::now()));
                self.send_notice(notice).await;
                self.refresh_all_holds().await;
                true
            }
            _ => false,
        }
    }

    /// Starts, restarts or stops the guard's probe for `targets` (only when they changed).
    pub(super) fn restart_guard(&mut self, targets: &[ConnectivityTarget]) {
        if self
            .guard
            .as_ref()
            .is_some_and(|guard| guard.targets == targets)
        {
            return;
        }
        if let Some(old) = self.guard.take() {
            old.task.abort();
        }
        self.tcp_reachable = None;
        if !targets
            .iter()
            .any(|target| matches!(target, ConnectivityTarget::Tcp { .. }))
        {
            return;
        }
        let (ask, asked) = mpsc::channel(1);
        let task = tokio::spawn(connectivity::run(
            targets.to_vec(),
            asked,
            self.reachability.0.clone(),
            self.stop.subscribe(),
        ));
        self.guard = Some(Guard {
            targets: targets.to_vec(),
            ask,
            task,
        });
    }
}

/// Whether any of `targets` answers: a `tcp://` target at the last look (`tcp`; one not looked
/// at yet counts as answering), or a named service not in an outage. Always, without targets.
pub(super) fn reachable(
    targets: &[ConnectivityTarget],
    tcp: Option<&Reachability>,
    in_outage: impl Fn(&str) -> bool,
) -> bool {
    if targets.is_empty() {
        return true;
    }
    let tcp_answers = targets
        .iter()
        .any(|target| matches!(target, ConnectivityTarget::Tcp { .. }))
        && tcp.is_none_or(|found| found.reachable);
    tcp_answers
        || targets.iter().any(|target| match target {
            ConnectivityTarget::Service(name) => !in_outage(name),
            ConnectivityTarget::Tcp { .. } => false,
        })
}

/// Why breakerd counts as offline: each `tcp://` target that failed at the last look, then
/// each named service (all of them in an outage, or it would not be offline).
pub(super) fn offline_failures(
    targets: &[ConnectivityTarget],
    tcp: Option<&Reachability>,
) -> Vec<String> {
    let mut failures: Vec<String> = tcp.map(|found| found.failures.clone()).unwrap_or_default();
    failures.extend(
        targets
            .iter()
            .filter(|target| matches!(target, ConnectivityTarget::Service(_)))
            .map(|target| format!("{target}: in an outage")),
    );
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp() -> ConnectivityTarget {
        ConnectivityTarget::Tcp {
            host: "1.1.1.1".to_string(),
            port: 443,
        }
    }

    fn service(name: &str) -> ConnectivityTarget {
        ConnectivityTarget::Service(name.to_string())
    }

    fn looked(reachable: bool) -> Reachability {
        Reachability {
            reachable,
            failures: if reachable {
                Vec::new()
            } else {
                vec!["tcp://1.1.1.1:443: connection refused".to_string()]
            },
        }
    }

    #[test]
    fn without_targets_breakerd_is_always_online() {
        assert!(reachable(&[], Some(&looked(false)), |_| true));
    }

    #[test]
    fn a_tcp_target_not_yet_looked_at_counts_as_answering() {
        assert!(reachable(&[tcp()], None, |_| true));
        assert!(!reachable(&[tcp()], Some(&looked(false)), |_| true));
        assert!(reachable(&[tcp()], Some(&looked(true)), |_| true));
    }

    #[test]
    fn any_one_target_answering_is_enough() {
        let targets = [tcp(), service("mpesa"), service("sms")];
        let mpesa_down = |name: &str| name == "mpesa";
        assert!(reachable(&targets, Some(&looked(false)), mpesa_down));
        assert!(!reachable(&targets, Some(&looked(false)), |_| true));
        assert!(reachable(&targets, Some(&looked(true)), |_| true));
    }

    #[test]
    fn offline_names_failed_tcp_targets_then_each_service() {
        let targets = [tcp(), service("mpesa")];
        assert_eq!(
            offline_failures(&targets, Some(&looked(false))),
            [
                "tcp://1.1.1.1:443: connection refused".to_string(),
                format!("{}: in an outage", service("mpesa")),
            ]
        );
        assert_eq!(offline_failures(&[tcp()], None), Vec::<String>::new());
    }
}
