//! `alerts.group_wait`: outage starts that come within the wait of the first one are sent
//! together, and so are outage ends; every other page (reminders, flapping summaries, steps)
//! goes out at once. Pure: handed the time, it says what is due.

use tokio::time::Instant;

use super::notification::NotificationKind;
use super::outage::Page;
use crate::config::NotifyOn;

/// How long the first page of an operation's breaker (`breakers = "per_operation"`) waits
/// for those of the service's other operations when `alerts.group_wait` is not set: an
/// outage of every operation pages once.
pub const OPERATION_GROUP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Pages waiting to go out together.
#[derive(Debug)]
struct Pending {
    due: Instant,
    pages: Vec<(String, Page)>,
}

/// The openings and the recoveries waiting out the group wait.
#[derive(Debug, Default)]
pub(crate) struct Grouping {
    openings: Option<Pending>,
    recoveries: Option<Pending>,
}

impl Grouping {
    /// Keeps `page` of `service` to go out with others by `due` (the first page of a group
    /// sets when it goes); hands back a page that does not group.
    pub(crate) fn add(
        &mut self,
        service: &str,
        page: Page,
        due: Instant,
    ) -> Option<(String, Page)> {
        let slot = match (page.kind, page.class) {
            (NotificationKind::Transition, NotifyOn::Open) => &mut self.openings,
            (NotificationKind::Transition, NotifyOn::Closed) => &mut self.recoveries,
            _ => return Some((service.to_string(), page)),
        };
        slot.get_or_insert_with(|| Pending {
            due,
            pages: Vec::new(),
        })
        .pages
        .push((service.to_string(), page));
        None
    }

    /// When the next group is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        [&self.openings, &self.recoveries]
            .into_iter()
            .flatten()
            .map(|pending| pending.due)
            .min()
    }

    /// The groups due by `now` (all of them when `now` is `None`), each in the order its pages
    /// came.
    pub(crate) fn take_due(&mut self, now: Option<Instant>) -> Vec<Vec<(String, Page)>> {
        [&mut self.openings, &mut self.recoveries]
            .into_iter()
            .filter(|slot| {
                slot.as_ref()
                    .is_some_and(|pending| now.is_none_or(|now| pending.due <= now))
            })
            .filter_map(Option::take)
            .map(|pending| pending.pages)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::alert::outage::Change;
    use crate::breaker::{State, TransitionReason};

    fn page(kind: NotificationKind, class: NotifyOn) -> Page {
        Page {
            kind,
            class,
            change: Change {
                from: State::Closed,
                to: State::Open,
                reason: TransitionReason::ManualReset,
                at: SystemTime::UNIX_EPOCH,
                consecutive_failures: 0,
                next_attempt: None,
                cause: None,
            },
            changes: 1,
            outage: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn openings_and_recoveries_group_apart_and_everything_else_goes_at_once() {
        let mut grouping = Grouping::default();
        let due = Instant::now() + Duration::from_secs(10);
        let open = || page(NotificationKind::Transition, NotifyOn::Open);
        assert!(grouping.add("mpesa", open(), due).is_none());
        assert!(
            grouping
                .add("kcb", open(), due + Duration::from_secs(5))
                .is_none()
        );
        let closed = page(NotificationKind::Transition, NotifyOn::Closed);
        assert!(
            grouping
                .add("sms", closed, due + Duration::from_secs(3))
                .is_none()
        );
        let reminder = page(NotificationKind::Reminder, NotifyOn::Open);
        assert!(grouping.add("email", reminder, due).is_some());
        let step = page(NotificationKind::Transition, NotifyOn::HalfOpen);
        assert!(grouping.add("email", step, due).is_some());

        assert_eq!(grouping.next_due(), Some(due));
        assert!(
            grouping
                .take_due(Some(due - Duration::from_secs(1)))
                .is_empty()
        );
        let groups = grouping.take_due(Some(due));
        let names: Vec<Vec<&str>> = groups
            .iter()
            .map(|group| group.iter().map(|(name, _)| name.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["mpesa", "kcb"]], "the first page set the time");
        assert_eq!(grouping.next_due(), Some(due + Duration::from_secs(3)));
        assert_eq!(grouping.take_due(None).len(), 1);
        assert_eq!(grouping.next_due(), None);
    }
}
