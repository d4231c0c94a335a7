//! Reclaim: giving back the space of overwritten and deleted separated
//! values.
//!
//! A segment that still holds one live separated value cannot be deleted
//! by checkpoint retention. When less than [`RECLAIM_LIVE_FRACTION`] of a
//! closed segment's bytes are live values, its live values are appended
//! again, as relocation operations ([`crate::format::batch`] kind 9)
//! that apply only if the key still points at the old place, in the
//! write path and in replay alike. The checkpoint that follows no longer
//! points into the segment, and its retention deletes the segment once no
//! kept checkpoint, open snapshot, iterator or backup can reach it (see
//! [`Inner::remove_unneeded_segments`]). So no segment is unlinked before
//! a durable key directory that does not need it exists, and a crash at
//! any step leaves either the old pointers (segment still there) or the
//! new ones (relocations durable before the checkpoint that drops the old
//! ones).
//!
//! Why a delete needs no tombstone in old segments: a key directory is
//! the whole state at its LSN, and replay starts from it; a value in an
//! old segment is live only if the directory or a later record points at
//! it, never because it is there.

use super::{Db, Inner};
use crate::error::Result;
use crate::index::{Val, ValuePtr};
use crate::kv::batch::WriteBatch;
use crate::options::{Durability, WriteOptions};
use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A closed segment whose live separated values take less than this
/// fraction of its bytes is reclaimed. With every segment at least this
/// full, separated values take at most 1 / 0.67 = 1.5 times their live
/// bytes on disk (the WAL not yet covered by a checkpoint and the active
/// segment aside).
pub const RECLAIM_LIVE_FRACTION: f64 = 0.67;

/// Relocation bytes per batch (one WAL record each).
const BATCH_BYTES: usize = 4 << 20;

/// What one [`Db::reclaim`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReclaimInfo {
    /// Segments whose live values were moved (deleted by the checkpoint
    /// that ends the pass, or by a later one if a snapshot older than it
    /// is still open).
    pub segments: u64,
    /// Separated values moved.
    pub values: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Db {
    /// Reclaim space now: move the live separated values out of every
    /// closed segment that is less than 67% live (see
    /// [`RECLAIM_LIVE_FRACTION`]), then checkpoint, so that checkpoint
    /// retention deletes those segments. Runs by itself after automatic
    /// checkpoints; call it to bound disk use at a time of your choosing.
    /// Writers and readers keep running; the moved values are written
    /// through the group commit like any batch.
    ///
    /// Errors: [`crate::Error::Closed`], [`crate::Error::Poisoned`],
    /// [`crate::Error::InvalidArgument`] (read-only), [`crate::Error::Io`]
    /// (the store is then poisoned), [`crate::Error::Corruption`] (a live
    /// value to move fails its CRC; nothing is poisoned, the value stays
    /// where it is and its reads report the same).
    ///
    /// Thread safety: one pass runs at a time; a second caller waits.
    pub fn reclaim(&self) -> Result<ReclaimInfo> {
        self.inner.core.check_writable()?;
        self.inner.check_not_read_only()?;
        self.inner.reclaim_pass()
    }
}

/// The space cap writers are paced by: WAL segment bytes may exceed
/// `SPACE_CAP` times the separated values' bytes by at most four
/// segments of `segment_size` (the active one, its spare, and segments
/// still at least 67% live). A pass run for the cap ends with a
/// checkpoint, so the log not yet covered by one does not count.
pub const SPACE_CAP: u64 = 2;

impl Inner {
    /// Before a write: if the WAL segments take more than the space cap
    /// ([`SPACE_CAP`]) because reclaim fell behind, run a reclaim pass in
    /// this writer's thread first (other writers that pass the cap wait
    /// for that pass), so that space amplification is bounded by pacing
    /// writers rather than by hoping reclaim keeps up. A pass that can
    /// free nothing (an old snapshot pins the segments) ends quickly and
    /// the write goes on. Counted in `Stats::space_stalls`.
    pub(super) fn pace_for_space(self: &Arc<Self>) {
        if self.opts.max_wal_size == 0 || self.opts.read_only {
            return;
        }
        let separated = self.separated_bytes.load(Ordering::Relaxed);
        if separated == 0 {
            return;
        }
        let slack = 4 * self
            .opts
            .segment_size
            .max(crate::wal::segment::FIRST_SEGMENT_SIZE);
        if self.disk_bytes.load(Ordering::Relaxed) <= SPACE_CAP * separated + slack {
            return;
        }
        self.space_stalls.fetch_add(1, Ordering::Relaxed);
        if self.core.check_writable().is_ok() {
            // Errors poison the store inside (I/O) or stay with the
            // damaged value (corruption); the write reports its own.
            let _ = self.reclaim_pass();
        }
        let disk = self.core.wal.lock().segments().iter().map(|s| s.size).sum();
        self.disk_bytes.store(disk, Ordering::Relaxed);
    }

    /// The segments worth reclaiming now, oldest first.
    pub(super) fn reclaim_candidates(&self) -> Vec<u64> {
        let metas: Vec<(u64, u64)> = {
            let w = self.core.wal.lock();
            let active = w.active_id();
            w.segments()
                .iter()
                .filter(|s| s.id != active)
                .map(|s| (s.id, s.size))
                .collect()
        };
        let m = self.mem.read();
        let mut out: Vec<u64> = metas
            .into_iter()
            .filter(|(id, size)| {
                m.table.segments().get(id).is_some_and(|l| {
                    (l.bytes as f64) < RECLAIM_LIVE_FRACTION * (*size).max(1) as f64
                })
            })
            .map(|(id, _)| id)
            .collect();
        out.sort_unstable();
        out
    }

    /// See [`Db::reclaim`].
    pub(super) fn reclaim_pass(self: &Arc<Self>) -> Result<ReclaimInfo> {
        let _one = self.reclaiming.lock();
        let mut info = ReclaimInfo::default();
        for id in self.reclaim_candidates() {
            let (values, bytes, _) = self.relocate_segment(id, false)?;
            info.segments += 1;
            info.values += values;
            info.bytes += bytes;
        }
        if info.segments > 0 {
            self.checkpoint_now()?;
            self.reclaimed_segments
                .fetch_add(info.segments, Ordering::Relaxed);
            self.reclaimed_bytes
                .fetch_add(info.bytes, Ordering::Relaxed);
        }
        Ok(info)
    }

    /// After a salvage: move every separated value out of every segment
    /// but the active one, so that the salvaged baseline needs no old
    /// segment (a damaged one may be kept otherwise). A value that fails
    /// its CRC is lost: its key is deleted and counted in
    /// `RecoveryStats::values_dropped`.
    ///
    /// Errors: [`crate::Error::Io`], [`crate::Error::Closed`].
    pub(super) fn relocate_all(self: &Arc<Self>) -> Result<()> {
        let active = self.core.wal.lock().active_id();
        let mut ids: Vec<u64> = {
            let m = self.mem.read();
            m.table
                .segments()
                .keys()
                .copied()
                .filter(|id| *id != active)
                .collect()
        };
        ids.sort_unstable();
        for id in ids {
            let (_, _, dropped) = self.relocate_segment(id, true)?;
            self.salvage_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Append relocations for every live separated value in segment `id`,
    /// in file order. Returns the values and bytes moved, and (with
    /// `salvage`) how many keys were deleted because their value failed
    /// its CRC; without it such a value is an error.
    fn relocate_segment(self: &Arc<Self>, id: u64, salvage: bool) -> Result<(u64, u64, u64)> {
        // Which keys point into it now (a registered snapshot: its
        // segments stay while it is read).
        let snap = self.snapshot()?;
        let mut found: Vec<(bool, Vec<u8>, ValuePtr)> = Vec::new();
        for (named, tree) in [(false, &snap.view.default), (true, &snap.view.named)] {
            tree.visit(Bound::Unbounded, Bound::Unbounded, |e| {
                if let Val::At(p) = e.val() {
                    if p.segment == id {
                        found.push((named, e.key().to_vec(), p));
                    }
                }
                true
            });
        }
        found.sort_unstable_by_key(|(_, _, p)| p.offset);
        let (mut values, mut bytes, mut dropped) = (0u64, 0u64, 0u64);
        let mut batch = WriteBatch::new();
        let opts = WriteOptions::with_durability(Durability::Os);
        for (named, key, p) in &found {
            let v = match self.vlog.read_file(p) {
                Ok(v) => v,
                Err(crate::Error::Corruption { .. }) if salvage => {
                    match (named, key.get(..4), key.get(4..)) {
                        (true, Some(space), Some(k)) => {
                            let space =
                                u32::from_be_bytes([space[0], space[1], space[2], space[3]]);
                            batch.delete_in_id(space, k);
                        }
                        _ => {
                            batch.delete(key);
                        }
                    }
                    dropped += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            batch.relocate(*named, p, key, &v);
            values += 1;
            bytes += u64::from(p.len);
            if batch.encoded_len() >= BATCH_BYTES {
                self.write_validated(std::mem::take(&mut batch), &opts)?;
            }
        }
        drop(snap);
        self.write_validated(batch, &opts)?;
        Ok((values, bytes, dropped))
    }
}
