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
            inner.reclaim_if_needed();
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
                self.reclaim_if_needed();
            }
            self.checkpoint_running.store(false, Ordering::Release);
            return;
        }
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            if me.core.check_writable().is_ok() {
                // Errors poison the store inside; the next write reports them.
                let _ = me.checkpoint_now();
                me.reclaim_if_needed();
            }
            me.checkpoint_running.store(false, Ordering::Release);
        });
    }

    /// After an automatic checkpoint: a reclaim pass if a segment is worth
    /// it (see `kv::reclaim`). Errors poison the store inside (I/O) or
    /// are reported by the reads of the damaged value (corruption).
    fn reclaim_if_needed(self: &Arc<Self>) {
        if !self.opts.read_only && !self.reclaim_candidates().is_empty() {
            let _ = self.reclaim_pass();
        }
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
        let (view, refs, pause) = self.checkpoint_view()?;
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
                    checkpoint::Separated::Pointers { segments: &refs },
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
        ck.refs.insert(lsn, refs);
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
            ck.refs.remove(&old);
            let p = self.core.dir.join(checkpoint::file_name(old));
            self.core
                .poison_on_err(self.core.fs.remove_file(&p).map_err(|e| Error::io(&p, e)))?;
            removed_any = true;
        }
        let removed_segments = self.remove_unneeded_segments(&ck)?;
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
    /// the file it is written to). Returns the view, the segments its
    /// separated values point into (ascending) and how long the lock was
    /// held. Errors: [`Error::Closed`].
    pub(super) fn checkpoint_view(&self) -> Result<(View, Vec<u64>, std::time::Duration)> {
        let t = std::time::Instant::now();
        let m = self.mem.read();
        if m.closed {
            return Err(Error::Closed);
        }
        let v = m.table.view();
        let mut refs: Vec<u64> = m.table.segments().keys().copied().collect();
        drop(m);
        let pause = t.elapsed();
        refs.sort_unstable();
        Ok((v, refs, pause))
    }

    /// Delete the WAL segments nothing can need any more, then fsync the
    /// directory; returns how many. A segment is needed while
    /// - it is the active one, or it holds a record newer than the oldest
    ///   kept checkpoint (recovery from that checkpoint replays it);
    /// - a kept checkpoint's key directory points into it (or that
    ///   checkpoint's list could not be read back at open);
    /// - an open snapshot older than the oldest kept checkpoint exists and
    ///   the segment held a separated value since open (the snapshot may
    ///   point into it; a snapshot at or after that checkpoint cannot,
    ///   because that checkpoint does not, and no later record is in the
    ///   segment).
    ///
    /// A point read that found a pointer into a segment just deleted reads
    /// the index again (see [`Inner::load_latest`]).
    ///
    /// Errors: [`Error::Io`] (the store is then poisoned).
    pub(super) fn remove_unneeded_segments(&self, ck: &super::CheckpointState) -> Result<usize> {
        let Some(&oldest) = ck.snapshots.first() else {
            return Ok(0);
        };
        let unknown = ck.snapshots.iter().any(|l| !ck.refs.contains_key(l));
        let kept: std::collections::HashSet<u64> = ck.refs.values().flatten().copied().collect();
        let old_reader = self
            .registry
            .lock()
            .oldest_lsn()
            .is_some_and(|l| l < oldest);
        let held: std::collections::HashSet<u64> = if old_reader {
            // (The WAL lock is taken before the index's, never after.)
            let ids: Vec<u64> = self
                .core
                .wal
                .lock()
                .segments()
                .iter()
                .map(|s| s.id)
                .collect();
            let m = self.mem.read();
            ids.into_iter()
                .filter(|id| m.table.ever_held(*id))
                .collect()
        } else {
            Default::default()
        };
        let removed = self.core.wal.lock().remove_segments(|s| {
            let needed = s.last_lsn.is_some_and(|l| l > oldest)
                || (unknown && s.last_lsn.is_some())
                || kept.contains(&s.id)
                || held.contains(&s.id);
            !needed
        });
        let removed = self.core.poison_on_err(removed)?;
        for id in &removed {
            self.vlog.forget(*id);
        }
        let disk = self.core.wal.lock().segments().iter().map(|s| s.size).sum();
        self.disk_bytes.store(disk, Ordering::Relaxed);
        Ok(removed.len())
    }
}
