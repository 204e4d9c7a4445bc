//! A service's cap on proxied calls in flight (`max_concurrent`): its slots, and the wait
//! (`max_wait`) for one. A slot is held until the call's answer has streamed through (or the
//! client is gone); a call that finds none within the wait is refused, and the refusal is the
//! proxy's, never the provider's.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::BulkheadConfig;
use crate::metrics::ProxySeries;

/// The slots of one service.
#[derive(Debug)]
pub struct Bulkhead {
    slots: Arc<Semaphore>,
    config: BulkheadConfig,
    /// Where calls in flight and refusals are counted (the service's, across reloads).
    series: Arc<ProxySeries>,
}

/// No slot came free within `max_wait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{max_concurrent} calls are in flight, the service's max_concurrent")]
pub struct Full {
    /// The cap.
    pub max_concurrent: u32,
    /// How long the call waited for a slot.
    pub waited: Duration,
}

/// One call's place under the cap, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    series: Arc<ProxySeries>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.series.in_flight(-1);
    }
}

impl Bulkhead {
    /// `config`'s slots, counted in `series`.
    pub fn new(config: BulkheadConfig, series: Arc<ProxySeries>) -> Self {
        let slots = usize::try_from(config.max_concurrent)
            .unwrap_or(usize::MAX)
            .clamp(1, Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            config,
            series,
        }
    }

    /// The cap and the wait it was built with.
    pub fn config(&self) -> BulkheadConfig {
        self.config
    }

    /// A slot: at once when one is free, else the first to come free within `max_wait`.
    ///
    /// # Errors
    /// [`Full`] when none came free in time (counted).
    pub async fn enter(&self) -> Result<Slot, Full> {
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) if self.config.max_wait.is_zero() => None,
            Err(_) => {
                tokio::time::timeout(
                    self.config.max_wait,
                    Arc::clone(&self.slots).acquire_owned(),
                )
                .await
                // The semaphore is never closed.
                .ok()
                .and_then(Result::ok)
            }
        };
        let Some(permit) = permit else {
            self.series.capacity_rejected();
            return Err(Full {
                max_concurrent: self.config.max_concurrent,
                waited: self.config.max_wait,
            });
        };
        self.series.in_flight(1);
        Ok(Slot {
            _permit: permit,
            series: Arc::clone(&self.series),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulkhead(max_concurrent: u32, max_wait: Duration) -> Bulkhead {
        Bulkhead::new(
            BulkheadConfig {
                max_concurrent,
                max_wait,
            },
            Arc::default(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn calls_beyond_the_cap_are_refused_at_once_and_counted() {
        let bulkhead = bulkhead(2, Duration::ZERO);
        let first = bulkhead.enter().await.unwrap();
        let _second = bulkhead.enter().await.unwrap();
        let started = tokio::time::Instant::now();
        let refused = bulkhead.enter().await.unwrap_err();
        assert_eq!(refused.max_concurrent, 2);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "no wait without max_wait"
        );
        assert_eq!(bulkhead.series.in_flight_now(), 2);
        assert_eq!(bulkhead.series.capacity_rejections(), 1);
        drop(first);
        assert_eq!(bulkhead.series.in_flight_now(), 1);
        let _third = bulkhead.enter().await.expect("a slot came free");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_waits_up_to_max_wait_for_a_slot() {
        let bulkhead = Arc::new(bulkhead(1, Duration::from_millis(500)));
        let held = bulkhead.enter().await.unwrap();
        let started = tokio::time::Instant::now();
        let refused = bulkhead.enter().await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_millis(500));
        assert_eq!(refused.waited, Duration::from_millis(500));

        let waiting = tokio::spawn({
            let bulkhead = Arc::clone(&bulkhead);
            async move { bulkhead.enter().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(held);
        assert_eq!(
            waiting.await.unwrap(),
            Ok(()),
            "admitted when the slot came free"
        );
        assert_eq!(bulkhead.series.capacity_rejections(), 1);
        assert_eq!(bulkhead.series.in_flight_now(), 0);
    }
}
