//! Closing a store: the final sync and checkpoint, then the index is
//! freed and the directory released.

use super::Inner;
use crate::error::{Error, Result};

impl Inner {
    pub(super) fn close(&self) -> Result<()> {
        if !self.core.begin_close() {
            return Ok(());
        }
        self.ticker.stop();
        if self.opts.read_only {
            // Nothing to sync or checkpoint; no lock to release.
            self.close_index();
            self.core.release();
            return Ok(());
        }
        // `reason()` returns a copy: no lock is held while the final
        // checkpoint below may poison the store.
        let result = match self.core.poison.reason() {
            Some(why) => Err(Error::Poisoned(why)),
            None => {
                // The WAL lock is released before the checkpoint takes it.
                let synced = self.core.wal.lock().sync();
                self.core
                    .poison_on_err(synced)
                    .and_then(|()| self.checkpoint_now())
            }
        };
        self.close_index();
        self.core.release();
        result
    }

    /// Mark the index closed and free it; waits for a running checkpoint
    /// (which holds the checkpoint lock) to finish first.
    pub(super) fn close_index(&self) {
        let _ck = self.checkpoint.lock();
        let mut m = self.mem.write();
        m.closed = true;
        m.table.clear();
        drop(m);
        self.vlog.close();
    }
}
