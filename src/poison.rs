//! The poisoned state shared by every store kind (ENGINEERING.md rule 4):
//! after any failed write or fsync the state of unsynced pages is unknown,
//! so every later write must fail until the store is reopened. fsync is
//! never retried as proof of durability.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a store is poisoned, and why. Thread-safe; `check` is one
/// atomic load on the unpoisoned path.
#[derive(Debug, Default)]
pub(crate) struct Poison {
    flag: AtomicBool,
    why: Mutex<Option<String>>,
}

impl Poison {
    /// Poison the store with `e` (the first error is kept).
    pub(crate) fn set(&self, e: &Error) {
        let mut w = self.why.lock();
        if w.is_none() {
            *w = Some(e.to_string());
        }
        self.flag.store(true, Ordering::Release);
    }

    /// `Err(Poisoned)` if the store is poisoned.
    pub(crate) fn check(&self) -> Result<()> {
        if self.flag.load(Ordering::Acquire) {
            return Err(Error::Poisoned(self.why.lock().clone().unwrap_or_default()));
        }
        Ok(())
    }

    /// Why the store is poisoned, if it is.
    pub(crate) fn reason(&self) -> Option<String> {
        self.why.lock().clone()
    }
}
