//! Checkpoints: when they run (WAL size, time, close, on demand), how a
//! checkpoint file is written from a frozen index while writers go on, and
//! retention of old checkpoint files and WAL segments.

use super::{Db, Inner};
use crate::engine::metrics::OpKind;
use crate::error::{Error, Result};
use crate::index::View;
use crate::kv::checkpoint;
use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The stop signal of the time-based checkpoint thread.
#[derive(Default)]
pub(super) struct Ticker {
    stop: Mutex<bool>,
    wake: parking_lot::Condvar,
}

impl Ticker {
    pub(super) fn stop(&self) {
        *self.stop.lock() = true;
        self.wake.notify_all();
    }

    /// Sleep for `d` or until stopped; returns whether stopped.
    fn sleep(&self, d: Duration) -> bool {
        let mut stop = self.stop.lock();
        if !*stop {
            self.wake.wait_for(&mut stop, d);
        }
        *stop
    }
}

/// The time-based checkpoint thread: every `every` since the last
/// checkpoint, checkpoint if anything was written. Holds only a weak
/// reference, so it never keeps a dropped store alive.
pub(super) fn run_ticker(weak: std::sync::Weak<Inner>, ticker: Arc<Ticker>, every: Duration) {
    let mut wait = every;
    while !ticker.sleep(wait) {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let since = inner.last_checkpoint.lock().elapsed();
        if since < every {
            wait = every - since;
            continue;
        }
        wait = every;
        if inner.wal_bytes_since_checkpoint.load(Ordering::Relaxed) == 0
            || inner.checkpoint_running.swap(true, Ordering::AcqRel)
        {
            continue;
        }
        if inner.core.check_writable().is_ok() {
            // Errors poison the store inside; the next write reports them.
            let _ = inner.checkpoint_now();
        }
        inner.checkpoint_running.store(false, Ordering::Release);
    }
}

impl Db {
    /// Make every acknowledged write durable (flush the `Buffered` buffer,
    /// `fdatasync` the WAL). Under `Sync` this is already true, and the call
    /// costs nothing when nothing is pending.
    ///
    /// Errors: [`Error::Closed`], [`Error::Poisoned`], [`Error::Io`] (the
    /// store is then poisoned).
    pub fn sync(&self) -> Result<()> {
        let t0 = self.inner.metrics.start();
        let core = &self.inner.core;
        let r = core
            .check_writable()
            .and_then(|()| core.poison_on_err(core.wal.lock().sync()));
        self.inner.metrics.finish(OpKind::Sync, t0, &r);
        r
    }

    /// Write a snapshot of the current state (durably: temp file, fsync,
    /// rename, directory fsync), then delete the snapshots beyond
    /// [`crate::Options::keep_snapshots`] and the WAL segments the oldest kept
    /// snapshot covers. Writers and readers keep running while the snapshot
    /// is written from a view of the copy-on-write index (taken under the
    /// read lock in O(1)); nothing is merged back afterwards.
    ///
    /// Errors: [`Error::Closed`], [`Error::Poisoned`], [`Error::Io`] (the
    /// store is then poisoned).
    pub fn checkpoint(&self) -> Result<()> {
        let r = self.inner.core.check_writable();
        if let Err(e) = &r {
            self.inner.metrics.error(e);
        }
        r?;
        self.inner.checkpoint_now()
    }
}

impl Inner {
    pub(super) fn maybe_auto_checkpoint(self: &Arc<Self>) {
        let max = self.opts.max_wal_size;
        if max == 0 || self.wal_bytes_since_checkpoint.load(Ordering::Relaxed) < max {
            return;
        }
        if self.checkpoint_running.swap(true, Ordering::AcqRel) {
            return;
        }
        if !self.core.fs.background_threads() {
            // Deterministic simulation: checkpoint in the writer's thread.
            if self.core.check_writable().is_ok() {
                let _ = self.checkpoint_now();
            }
            self.checkpoint_running.store(false, Ordering::Release);
            return;
        }
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            if me.core.check_writable().is_ok() {
                // Errors poison the store inside; the next write reports them.
                let _ = me.checkpoint_now();
            }
            me.checkpoint_running.store(false, Ordering::Release);
        });
    }

    /// Write a snapshot of the current state unless the newest snapshot
    /// already covers it. See [`Db::checkpoint`].
    pub(super) fn checkpoint_now(&self) -> Result<()> {
        self.check_not_read_only()?;
        let t0 = self.metrics.start();
        let r = self.checkpoint_locked();
        self.metrics.finish(OpKind::Checkpoint, t0, &r);
        r
    }

    pub(super) fn checkpoint_locked(&self) -> Result<()> {
        let mut ck = self.checkpoint.lock();
        // WAL bytes this snapshot covers (a group applied just before the
        // freeze may add its bytes just after: counted once more, which
        // only brings the next checkpoint slightly forward).
        let bytes_at_freeze = self.wal_bytes_since_checkpoint.load(Ordering::Relaxed);
        let (view, pause) = self.checkpoint_view()?;
        let lsn = view.lsn;
        let res = if ck.good == Some(lsn) {
            Ok(None)
        } else {
            // Rule: a snapshot never covers LSNs the WAL has not made
            // durable. Otherwise a crash (or, under `Buffered`, a plain
            // exit) leaves a WAL that ends before the snapshot, and new
            // records would follow a hole in the same segment.
            // The WAL lock is held for the sync only, not while the
            // snapshot is written: writers keep running meanwhile.
            let synced = self.core.wal.lock().sync();
            synced.and_then(|()| {
                checkpoint::write(
                    self.core.fs.as_ref(),
                    &self.core.dir,
                    self.db_id,
                    lsn,
                    [
                        checkpoint::Section::new(&view.default),
                        checkpoint::Section::new(&view.named),
                    ],
                )
                .map(Some)
            })
        };
        drop(view);
        self.checkpoint_pause_micros
            .store(pause.as_micros() as u64, Ordering::Relaxed);
        let written = self.core.poison_on_err(res)?;
        // The newest snapshot now covers the WAL bytes counted at the
        // freeze; writes made while it was written still count toward the
        // next checkpoint (resetting to 0 forgot them, so a time-based
        // checkpoint that ran during writes never ran again for them).
        let _ = self.wal_bytes_since_checkpoint.fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |b| Some(b.saturating_sub(bytes_at_freeze)),
        );
        if written.is_none() {
            return Ok(());
        }
        ck.good = Some(lsn);
        if !ck.snapshots.contains(&lsn) {
            // (A rejected snapshot with this LSN was just replaced.)
            ck.snapshots.push(lsn);
            ck.snapshots.sort_unstable();
        }
        *self.last_checkpoint.lock() = std::time::Instant::now();
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        // Retention, only now that the new snapshot is durable.
        let keep = self.opts.keep_snapshots as usize;
        let mut removed_any = false;
        while ck.snapshots.len() > keep {
            let old = ck.snapshots.remove(0);
            let p = self.core.dir.join(checkpoint::file_name(old));
            self.core
                .poison_on_err(self.core.fs.remove_file(&p).map_err(|e| Error::io(&p, e)))?;
            removed_any = true;
        }
        let oldest = ck.snapshots[0];
        let removed = self.core.wal.lock().remove_segments_upto(oldest);
        let removed_segments = self.core.poison_on_err(removed)?;
        if removed_any && removed_segments == 0 {
            let dir = &self.core.dir;
            let synced = self.core.fs.sync_dir(dir).map_err(|e| Error::io(dir, e));
            self.core.poison_on_err(synced)?;
        }
        Ok(())
    }

    /// A view of the index for a checkpoint or a backup: a snapshot of
    /// the copy-on-write trees, taken under the index's read lock (writers
    /// wait at most for the few reference counts it takes, and never for
    /// the file it is written to). Returns the view and how long the lock
    /// was held. Errors: [`Error::Closed`].
    pub(super) fn checkpoint_view(&self) -> Result<(View, std::time::Duration)> {
        let t = std::time::Instant::now();
        let v = self.view()?;
        Ok((v, t.elapsed()))
    }
}
