//! The kinds of long-lived task: the `task` label of `breakerd_task_panics_total`. Apart from
//! the keeper so that metrics can name them without depending on the keeper, which counts
//! into metrics.

/// Every kind of long-lived task: the `task` label of `breakerd_task_panics_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// A service's check schedule.
    Scheduler,
    /// The transition pump (every breaker's changes: logs, metrics, forwarding to the alert
    /// stage).
    TransitionPump,
    /// The alert stage (outages, notifications, state).
    AlertStage,
    /// An email or webhook channel's delivery.
    AlertDelivery,
    /// An Alertmanager channel.
    Alertmanager,
    /// The state file writer.
    StateWriter,
    /// The config file watcher and reloader.
    ConfigWatcher,
}

impl TaskKind {
    /// Every kind, for series that start at zero.
    pub const ALL: [TaskKind; 7] = [
        TaskKind::Scheduler,
        TaskKind::TransitionPump,
        TaskKind::AlertStage,
        TaskKind::AlertDelivery,
        TaskKind::Alertmanager,
        TaskKind::StateWriter,
        TaskKind::ConfigWatcher,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Scheduler => "scheduler",
            TaskKind::TransitionPump => "transition_pump",
            TaskKind::AlertStage => "alert_stage",
            TaskKind::AlertDelivery => "alert_delivery",
            TaskKind::Alertmanager => "alertmanager",
            TaskKind::StateWriter => "state_writer",
            TaskKind::ConfigWatcher => "config_watcher",
        }
    }
}
