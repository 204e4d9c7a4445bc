//! breakerd's own trouble keeping its state: every failed write of a state file counted by
//! kind (`breakerd_state_write_errors_total{what}`), and the latest failure of each file kept
//! until that file is written again, for the status page's banner (at most [`MAX_FAULTS`]).

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

/// The most failing files the banner keeps (more are counted, not kept).
pub const MAX_FAULTS: usize = 64;

/// The counter and the current faults.
#[derive(Debug)]
pub struct StateFaults {
    errors: Family<WhatLabel, Counter>,
    /// By kind and file.
    current: RwLock<BTreeMap<(StateFiles, String), StateFault>>,
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

    /// Counts a failed write of `what` at `path`, kept as a current fault until `path` is
    /// written.
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
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let key = (what, fault.path.clone());
        if current.len() < MAX_FAULTS || current.contains_key(&key) {
            current.insert(key, fault);
        }
    }

    /// `what` at `path` was written: its fault, if any, is over.
    pub fn written(&self, what: StateFiles, path: &Path) {
        let key = (what, path.display().to_string());
        let has_fault = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&key);
        if has_fault {
            self.current
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
        }
    }

    /// The state files breakerd cannot write now, each with its latest failure.
    pub fn current(&self) -> Vec<StateFault> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_written_clears_its_own_fault_only() {
        let mut registry = Registry::default();
        let faults = StateFaults::registered(&mut registry);
        let (a, b) = (
            Path::new("/s/services/a.json"),
            Path::new("/s/services/b.json"),
        );
        faults.failed(StateFiles::Services, a, &"No space left on device");
        faults.failed(StateFiles::Services, b, &"No space left on device");
        faults.written(StateFiles::Services, b);
        let current = faults.current();
        assert_eq!(current.len(), 1, "{current:?}");
        assert_eq!(current[0].path, "/s/services/a.json");
        faults.written(StateFiles::Services, a);
        assert!(faults.current().is_empty());
    }
}
