//! The poisoned state shared by every store kind: after any failed write or
//! fsync the state of unsynced pages is unknown, so every later write must
//! fail until the store is reopened (recovery from disk). fsync is never
//! retried as proof of durability: on ext4, XFS and btrfs, pages whose
//! write-back failed are marked clean, so a later fsync can succeed without
//! them (Rebello et al., "Can Applications Recover from fsync Failures?",
//! USENIX ATC 2020; PostgreSQL's 2018 "fsyncgate" fix, which panics on
//! fsync failure).

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
