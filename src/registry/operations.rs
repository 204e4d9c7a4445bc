//! A service's breakers per operation (`breakers = "per_operation"`): one for each operation
//! of its catalogue, named `service/operation` ([`crate::unit`]), with the service's policy,
//! bus and outcome hook, so one failing operation never refuses another. Calls that match no
//! operation (`other`) go through the service's own breaker.

use std::sync::Arc;

use crate::breaker::{Breaker, CallRecord, Policy, PolicyError, TransitionBus};

/// One operation's breaker.
#[derive(Clone, Debug)]
pub struct OperationBreaker {
    /// The operation's name (as the catalogue writes it).
    pub operation: Arc<str>,
    /// Its breaker, named `service/operation`.
    pub breaker: Breaker,
}

/// The breakers of a service's operations, in catalogue order (the operations' metric index);
/// empty for a service with one breaker.
#[derive(Clone, Debug, Default)]
pub struct OperationBreakers {
    breakers: Vec<OperationBreaker>,
}

impl OperationBreakers {
    /// A breaker for each of `operations` of `service` (catalogue order, `other` left out),
    /// each taking `policy` and sending its outcomes to `hook` and its transitions to `bus`.
    ///
    /// # Errors
    /// A policy the breaker refuses.
    pub fn build(
        service: &str,
        operations: &[Arc<str>],
        policy: &Policy,
        bus: Option<&TransitionBus>,
        capacity: usize,
        hook: &(impl Fn(&CallRecord) + Clone + Send + Sync + 'static),
    ) -> Result<Self, PolicyError> {
        let mut breakers = Vec::with_capacity(operations.len());
        for operation in operations {
            let mut builder = Breaker::builder(crate::unit::operation_unit(service, operation))
                .policy(policy.clone())
                .event_capacity(capacity);
            if let Some(bus) = bus {
                builder = builder.bus(bus);
            }
            breakers.push(OperationBreaker {
                operation: Arc::clone(operation),
                breaker: builder.on_outcome(hook.clone()).build()?,
            });
        }
        Ok(Self { breakers })
    }

    /// Whether these are the breakers of `operations`, in that order.
    pub fn are_of(&self, operations: &[Arc<str>]) -> bool {
        self.breakers.len() == operations.len()
            && self
                .breakers
                .iter()
                .zip(operations)
                .all(|(breaker, name)| breaker.operation == *name)
    }

    /// The breaker of the operation at `index` of the catalogue, if it has one.
    pub fn get(&self, index: u8) -> Option<&Breaker> {
        self.breakers
            .get(usize::from(index))
            .map(|operation| &operation.breaker)
    }

    /// Every operation's breaker, in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = &OperationBreaker> {
        self.breakers.iter()
    }

    /// Whether there are none (one breaker for the service).
    pub fn is_empty(&self) -> bool {
        self.breakers.is_empty()
    }

    /// Checks that every breaker can take `policy` in place.
    ///
    /// # Errors
    /// As [`Breaker::check_policy`].
    pub fn check_policy(&self, policy: &Policy) -> Result<(), PolicyError> {
        self.breakers
            .iter()
            .try_for_each(|operation| operation.breaker.check_policy(policy))
    }

    /// Gives every breaker `policy` (checked first by [`Self::check_policy`]).
    pub fn update_policy(&self, policy: &Policy) {
        for operation in &self.breakers {
            if let Err(refused) = operation.breaker.update_policy(policy) {
                tracing::error!(
                    breaker = operation.breaker.name(),
                    "the new policy was not applied: {refused}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_operation_has_its_own_named_breaker() {
        let names: Vec<Arc<str>> = vec![Arc::from("stk_push"), Arc::from("b2c")];
        let breakers = OperationBreakers::build(
            "mpesa",
            &names,
            &Policy::default(),
            None,
            4,
            &|_: &CallRecord| {},
        )
        .expect("the default policy builds");
        assert!(breakers.are_of(&names));
        assert_eq!(breakers.get(1).map(Breaker::name), Some("mpesa/b2c"));
        assert!(breakers.get(2).is_none(), "other has none");
        breakers.get(1).map(Breaker::force_open);
        assert_eq!(
            breakers.get(0).map(Breaker::state),
            Some(crate::breaker::State::Closed),
            "stk_push is untouched by b2c"
        );
    }
}
