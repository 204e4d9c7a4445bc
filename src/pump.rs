//! The transition pump: one task takes every service's breaker transitions off the one
//! [`TransitionBus`], logs and counts each, records it in the history, and forwards it to the
//! alert stage with its service's last failure and its breaker's state to keep.
//!
//! The supervisor tells it which service each breaker belongs to ([`Pump::serve`]) before the
//! breaker can change state, and has it forward what a service's breaker already did before the
//! service goes ([`Pump::retire`]); later transitions of a retired breaker (its open timer
//! firing) are not forwarded. The bus keeps a breaker's transitions for the pump while it is
//! busy or restarting after a panic, folding them (counted and logged) only past the bus's
//! bound: an alert stage that falls behind holds the pump back, never a call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::alert::StageEvent;
use crate::breaker::{BreakerId, Delivery, TransitionBus};
use crate::history::History;
use crate::metrics::Metrics;
use crate::observe;
use crate::registry::Service;
use crate::tasks::{self, TaskKind};

/// Orders the supervisor can have waiting; it waits for each.
const ORDERS: usize = 4;

/// Which service each breaker on the bus belongs to.
type Services = Mutex<HashMap<BreakerId, Arc<Service>>>;

/// The running pump and the bus it empties.
#[derive(Debug)]
pub(crate) struct Pump {
    bus: TransitionBus,
    services: Arc<Services>,
    orders: mpsc::Sender<Order>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
enum Order {
    /// Forward everything on the bus now, then forget this breaker's service.
    Retire {
        breakers: Vec<BreakerId>,
        done: oneshot::Sender<()>,
    },
}

impl Pump {
    /// Starts emptying `bus` into `stage`; kept alive (a panic is logged, counted, and the pump
    /// starts again where the bus stands).
    pub(crate) fn start(
        bus: TransitionBus,
        history: Arc<History>,
        stage: mpsc::Sender<StageEvent>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let services: Arc<Services> = Arc::default();
        let (orders, taken) = mpsc::channel(ORDERS);
        // Kept outside the task, so a restarted pump takes the orders where the last one left.
        let taken = Arc::new(tokio::sync::Mutex::new(taken));
        let (stop, stopping) = watch::channel(false);
        let forwarder = Forwarder {
            bus: bus.clone(),
            services: Arc::clone(&services),
            history,
            stage,
            metrics: Arc::clone(&metrics),
            stage_gone: false,
        };
        let task = tasks::keep(
            TaskKind::TransitionPump,
            "every service".to_string(),
            metrics,
            move || run(forwarder.clone(), Arc::clone(&taken), stopping.clone()),
        );
        Self {
            bus,
            services,
            orders,
            stop,
            task,
        }
    }

    /// The bus every service's breaker is built on.
    pub(crate) fn bus(&self) -> &TransitionBus {
        &self.bus
    }

    /// Forwards the transitions of `service`'s breaker from now on, with `service`'s last
    /// failure (a service retuned in place: with its new settings).
    pub(crate) fn serve(&self, service: &Arc<Service>) {
        let mut services = lock(&self.services);
        for breaker in breakers_of(service) {
            services.insert(breaker, Arc::clone(service));
        }
    }

    /// Forwards every transition `service`'s breaker has made, then forgets the service. Gives
    /// up at `deadline` (an alert stage that stopped taking changes): what was not forwarded
    /// by then is not.
    pub(crate) async fn retire(&self, service: &Service, deadline: Instant) {
        let breakers = breakers_of(service);
        let (done, finished) = oneshot::channel();
        let retired = tokio::time::timeout_at(deadline, async {
            if self
                .orders
                .send(Order::Retire {
                    breakers: breakers.clone(),
                    done,
                })
                .await
                .is_ok()
            {
                // A pump that panics meanwhile drops `done`: nothing more to wait for.
                let _ = finished.await;
            }
        })
        .await;
        if retired.is_err() {
            warn!(
                service = service.name(),
                "the alert stage did not take the last changes of a removed service in time; \
                 they are logged but not paged"
            );
        }
        let mut services = lock(&self.services);
        for breaker in &breakers {
            services.remove(breaker);
        }
    }

    /// Forwards everything on the bus, then stops; cancelled at `deadline`. Returns whether it
    /// was.
    pub(crate) async fn stop(self, deadline: Instant) -> bool {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
            return true;
        }
        false
    }
}

/// Steps, in a loop: 1. a stop forwards what the bus holds and ends; 2. an order forwards what
/// the bus holds, then is carried out; 3. otherwise the next breaker's transitions are
/// forwarded.
async fn run(
    mut forwarder: Forwarder,
    orders: Arc<tokio::sync::Mutex<mpsc::Receiver<Order>>>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut orders = orders.lock_owned().await;
    loop {
        tokio::select! {
            biased;
            // A closed switch (the supervisor gone) stops the pump as well.
            _ = stopped(&mut stopping) => {
                forwarder.drain().await;
                return;
            }
            order = orders.recv() => match order {
                Some(Order::Retire { breakers, done }) => {
                    forwarder.drain().await;
                    let mut services = lock(&forwarder.services);
                    for breaker in &breakers {
                        services.remove(breaker);
                    }
                    drop(services);
                    let _ = done.send(());
                }
                None => {
                    forwarder.drain().await;
                    return;
                }
            },
            delivery = forwarder.bus.recv() => forwarder.deliver(delivery).await,
        }
    }
}

/// Resolves once `stopping` is true, or its sender is gone.
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// What the pump forwards with, and where to.
#[derive(Clone, Debug)]
struct Forwarder {
    bus: TransitionBus,
    services: Arc<Services>,
    history: Arc<History>,
    stage: mpsc::Sender<StageEvent>,
    metrics: Arc<Metrics>,
    /// Said once: the alert stage has stopped.
    stage_gone: bool,
}

impl Forwarder {
    /// Forwards what the bus holds now (not what arrives meanwhile: that waits its turn).
    async fn drain(&mut self) {
        for _ in 0..self.bus.waiting() {
            let Some(delivery) = self.bus.try_recv() else {
                return;
            };
            self.deliver(delivery).await;
        }
    }

    /// Logs, counts and remembers each transition of one breaker, and forwards it to the alert
    /// stage with the service's last failure and the breaker's state to keep.
    async fn deliver(&mut self, delivery: Delivery) {
        let service = lock(&self.services).get(&delivery.breaker().id()).cloned();
        let Some(service) = service else {
            debug!(
                service = delivery.breaker().name(),
                "changes of a breaker no longer running are not forwarded"
            );
            return;
        };
        if delivery.folded() > 0 {
            observe::folded(
                &self.metrics,
                service.name(),
                delivery.folded(),
                delivery.transitions().len(),
            );
        }
        // The service's own breaker or one of its operations'.
        let breaker = delivery.breaker().clone();
        for transition in delivery.into_transitions() {
            observe::transition(&service.metrics, &transition);
            let cause = service.last_failure();
            self.history.transition_caused(&transition, cause.clone());
            let event = StageEvent {
                transition,
                cause,
                breaker: breaker.snapshot(),
            };
            // Logs and metrics go on even if the alert stage is gone.
            if self.stage.send(event).await.is_err() && !self.stage_gone {
                self.stage_gone = true;
                warn!(
                    service = service.name(),
                    "the alert stage has stopped; changes are logged but not paged"
                );
            }
        }
    }
}

/// The service's own breaker and its operations', by id.
fn breakers_of(service: &Service) -> Vec<BreakerId> {
    std::iter::once(service.breaker.id())
        .chain(
            service
                .operation_breakers
                .iter()
                .map(|operation| operation.breaker.id()),
        )
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind; keep using it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::breaker::State;
    use crate::config::{Config, ProcessEnvironment};
    use crate::probe::HttpClient;

    fn service(bus: &TransitionBus, name: &str) -> Arc<Service> {
        let text = format!(
            "[services.{name}]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/health\"\nevery = \"1h\"\n"
        );
        let config = Config::parse(&text, "test.toml", &ProcessEnvironment).expect("valid");
        let client = HttpClient::new().expect("HTTP client");
        let wanted = config.services[0].clone();
        Arc::new(Service::on_bus(wanted, &config.server, client, Some(bus)).expect("builds"))
    }

    struct Running {
        pump: Pump,
        stage: mpsc::Receiver<StageEvent>,
        metrics: Arc<Metrics>,
    }

    /// A pump with an alert stage that takes `room` changes and is read only when a test
    /// reads it.
    fn pump(room: usize) -> Running {
        let (intake, stage) = mpsc::channel(room);
        let metrics = Arc::new(Metrics::new());
        let pump = Pump::start(
            TransitionBus::with_pending_limit(4),
            Arc::new(History::default()),
            intake,
            Arc::clone(&metrics),
        );
        Running {
            pump,
            stage,
            metrics,
        }
    }

    /// Lets the pump run until the bus is empty.
    async fn pumped(bus: &TransitionBus) {
        for _ in 0..1_000 {
            if bus.waiting() == 0 {
                // The pump may still hold what it took; one more turn forwards it.
                tokio::task::yield_now().await;
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the pump did not empty the bus");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_alert_stage_holds_the_bus_to_its_bound_and_gets_the_edges() {
        let Running {
            pump,
            mut stage,
            metrics,
        } = pump(1);
        let mpesa = service(pump.bus(), "mpesa");
        pump.serve(&mpesa);
        // The stage takes one change and stops reading; the pump waits on the second.
        mpesa.breaker.force_open();
        mpesa.breaker.reset();
        pumped(pump.bus()).await;
        for _ in 0..10_000 {
            mpesa.breaker.force_open();
            mpesa.breaker.reset();
            assert!(pump.bus().held() <= pump.bus().pending_limit());
        }
        mpesa.breaker.force_open();
        let made = 2 + 20_000 + 1;
        // The stage reads again: every change made is forwarded or was folded.
        let mut received = Vec::new();
        while received.len() as u64 + pump.bus().folded() < made {
            received.push(stage.recv().await.expect("the pump forwards"));
        }
        pumped(pump.bus()).await;
        assert!(stage.try_recv().is_err(), "nothing more");
        let path: Vec<(State, State)> = received
            .iter()
            .map(|event| (event.transition.from, event.transition.to))
            .collect();
        assert_eq!(path[0], (State::Closed, State::ForcedOpen));
        assert_eq!(path[1], (State::ForcedOpen, State::Closed));
        for pair in path.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "{path:?}");
        }
        assert!(received.len() <= 2 + pump.bus().pending_limit());
        let last = received.last().expect("some");
        assert_eq!(
            last.breaker.state,
            State::ForcedOpen,
            "the snapshot goes along"
        );
        let folded = pump.bus().folded();
        assert!(folded > 0);
        assert!(
            metrics
                .render_prometheus_text()
                .contains(&format!("breakerd_transitions_folded_total {folded}")),
            "counted"
        );
        assert!(!pump.stop(Instant::now() + Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retired_services_changes_are_forwarded_first_and_later_ones_not() {
        let Running {
            pump, mut stage, ..
        } = pump(1);
        let mpesa = service(pump.bus(), "mpesa");
        let kcb = service(pump.bus(), "kcb");
        pump.serve(&mpesa);
        pump.serve(&kcb);
        // The stage takes one change; the rest wait on the pump and the bus.
        mpesa.breaker.force_open();
        kcb.breaker.force_open();
        mpesa.breaker.reset();
        let deadline = Instant::now() + Duration::from_secs(2);
        let (_, forwarded) = tokio::join!(pump.retire(&mpesa, deadline), async {
            let mut forwarded = Vec::new();
            while forwarded.len() < 3 {
                let event = stage.recv().await.expect("forwarded");
                forwarded.push((event.transition.service.to_string(), event.transition.to));
            }
            forwarded
        });
        assert_eq!(
            forwarded,
            vec![
                ("mpesa".to_string(), State::ForcedOpen),
                ("mpesa".to_string(), State::Closed),
                ("kcb".to_string(), State::ForcedOpen),
            ]
        );
        mpesa.breaker.force_open();
        kcb.breaker.reset();
        // Taken in that order: once kcb's change is here, mpesa's was dropped.
        let next = stage.recv().await.expect("kcb's change");
        assert_eq!(&*next.transition.service, "kcb");
        assert!(stage.try_recv().is_err(), "nothing of the retired mpesa");
        assert!(!pump.stop(Instant::now() + Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_forwards_what_the_bus_holds() {
        let Running {
            pump, mut stage, ..
        } = pump(16);
        let mpesa = service(pump.bus(), "mpesa");
        pump.serve(&mpesa);
        mpesa.breaker.force_open();
        mpesa.breaker.disable();
        assert!(!pump.stop(Instant::now() + Duration::from_secs(1)).await);
        assert_eq!(
            stage.recv().await.map(|e| e.transition.to),
            Some(State::ForcedOpen)
        );
        assert_eq!(
            stage.recv().await.map(|e| e.transition.to),
            Some(State::Disabled)
        );
        assert!(stage.recv().await.is_none(), "the pump is gone");
    }
}
