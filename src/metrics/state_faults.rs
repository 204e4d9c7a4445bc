//! breakerd's own trouble keeping its state: every failed write of a state file counted by
//! kind (`breakerd_state_write_errors_total{what}`), and the latest failure of each kind kept
//! until a write of that kind succeeds, for the status page's banner.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{PoisonError, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::statefs::StateFiles;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WhatLabel {
    what: String,
}

/// A state file breakerd could not write: what, where, why, when.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateFault {
    /// Which state files (`services`, `outbox`, `heartbeats`, `silences`).
    pub what: &'static str,
    /// The file or folder.
    pub path: String,
    /// The error, as the system said it.
    pub error: String,
    /// When (RFC 3339).
    pub at: String,
}

/// The counter and the current faults.
#[derive(Debug)]
pub struct StateFaults {
    errors: Family<WhatLabel, Counter>,
    current: RwLock<BTreeMap<StateFiles, StateFault>>,
}

impl StateFaults {
    /// Registered in `registry`, every kind at 0.
    pub(crate) fn registered(registry: &mut Registry) -> Self {
        let errors: Family<WhatLabel, Counter> = Family::default();
        for what in StateFiles::ALL {
            drop(errors.get_or_create(&WhatLabel {
                what: what.as_str().to_string(),
            }));
        }
        registry.register(
            "state_write_errors",
            "Failed writes of breakerd's state files (what: services, outbox, heartbeats, silences): what failed is not kept across a restart until a write succeeds",
            errors.clone(),
        );
        Self {
            errors,
            current: RwLock::default(),
        }
    }

    /// Counts a failed write of `what` at `path`, kept as the current fault of `what` until
    /// a write of `what` succeeds.
    pub fn failed(&self, what: StateFiles, path: &Path, error: &dyn std::fmt::Display) {
        self.errors
            .get_or_create(&WhatLabel {
                what: what.as_str().to_string(),
            })
            .inc();
        let fault = StateFault {
            what: what.as_str(),
            path: path.display().to_string(),
            error: error.to_string(),
            at: humantime::format_rfc3339_millis(crate::wall::now()).to_string(),
        };
        self.current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(what, fault);
    }

    /// A write of `what` succeeded: its fault, if any, is over.
    pub fn written(&self, what: StateFiles) {
        let has_fault = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&what);
        if has_fault {
            self.current
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&what);
        }
    }

    /// The kinds of state file breakerd cannot write now, each with its latest failure.
    pub fn current(&self) -> Vec<StateFault> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}
