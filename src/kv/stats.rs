//! What a store reports about itself: [`Stats`] and [`crate::Metrics`].

use super::Db;
use crate::engine::metrics::Metrics;
use crate::error::Result;
use crate::fs::OpenMode;
use crate::index::ENTRY_OVERHEAD_ESTIMATE;
use crate::kv::checkpoint;
use crate::kv::recovery::RecoveryStats;
use std::sync::atomic::Ordering;

/// A point-in-time summary of the store, from [`Db::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Live keys in the default keyspace.
    pub keys: u64,
    /// Bytes of live keys in the default keyspace.
    pub key_bytes: u64,
    /// Bytes of live values in the default keyspace.
    pub value_bytes: u64,
    /// Estimated memory of the index, every keyspace included: key and
    /// value bytes plus per-entry bookkeeping, in bytes.
    pub memory_bytes: u64,
    /// Named keyspaces (see [`Db::keyspace`]; each has its own
    /// [`Keyspace::stats`]), those of document collections included.
    pub keyspaces: u64,
    /// Live WAL segment files.
    pub wal_segments: u64,
    /// Bytes of WAL segment files on disk (preallocated size).
    pub wal_bytes: u64,
    /// WAL bytes appended since the newest snapshot.
    pub wal_bytes_since_checkpoint: u64,
    /// Snapshot files on disk.
    pub snapshots: u64,
    /// Bytes of snapshot files on disk.
    pub snapshot_bytes: u64,
    /// WAL + snapshot bytes.
    pub disk_bytes: u64,
    /// LSN of the last write applied.
    pub last_lsn: u64,
    /// Highest LSN known durable (fdatasync returned OK).
    pub synced_lsn: u64,
    /// LSN covered by the newest snapshot (0: none).
    pub snapshot_lsn: u64,
    /// Writes (batches) committed since open.
    pub writes: u64,
    /// Commit groups written since open; `writes / groups` is the average
    /// group-commit size.
    pub commit_groups: u64,
    /// WAL fdatasync calls since open.
    pub fsyncs: u64,
    /// Checkpoints completed since open.
    pub checkpoints: u64,
    /// Longest time in microseconds that the last checkpoint blocked
    /// readers and writers (it holds the index's write lock only to freeze
    /// it and for each small merge step, never while writing the file).
    pub checkpoint_pause_micros: u64,
    /// Why the store is poisoned, if it is.
    pub poisoned: Option<String>,
    /// What the last recovery found and did.
    pub recovery: RecoveryStats,
}

impl Db {
    /// Operation counters, latency percentiles (microseconds), error
    /// counts, and memory and disk gauges. Counters cover the time since
    /// open or the last [`Db::reset_metrics`]. See [`crate::engine::metrics`].
    ///
    /// Errors: [`Error::Closed`].
    pub fn metrics(&self) -> Result<Metrics> {
        let st = self.stats()?;
        let inner = &self.inner;
        let mut m =
            inner
                .metrics
                .snapshot(inner.opened, st.fsyncs, st.commit_groups, st.checkpoints);
        m.keys = st.keys;
        m.memory_bytes = st.memory_bytes;
        m.wal_disk_bytes = st.wal_bytes;
        m.snapshot_disk_bytes = st.snapshot_bytes;
        m.recovery_records_replayed = st.recovery.records_replayed;
        m.recovery_truncated_bytes = st.recovery.truncation.as_ref().map_or(0, |t| t.bytes);
        m.recovery_records_skipped = st.recovery.records_skipped;
        m.recovery_micros = st.recovery.duration_micros;
        m.poisoned = st.poisoned.is_some();
        Ok(m)
    }

    /// Zero the counters and latency histograms of [`Db::metrics`].
    ///
    /// Errors: [`Error::Closed`].
    pub fn reset_metrics(&self) -> Result<()> {
        let st = self.stats()?;
        self.inner
            .metrics
            .reset(st.fsyncs, st.commit_groups, st.checkpoints);
        Ok(())
    }

    /// Counters, sizes and the last recovery's facts.
    ///
    /// Errors: [`Error::Closed`].
    pub fn stats(&self) -> Result<Stats> {
        let inner = &self.inner;
        let (keys, (kb, vb), last_lsn, named) = inner.read(|t| {
            let named = t.named.len();
            let nb = t.named.bytes();
            (
                t.default.len(),
                t.default.bytes(),
                t.applied_lsn(),
                (t.keyspace_count() as u64, named, nb.0 + nb.1),
            )
        })?;
        let (wal_segments, wal_bytes, synced_lsn, fsyncs) = {
            let w = inner.core.wal.lock();
            (
                w.segments().len() as u64,
                w.segments().iter().map(|s| s.size).sum(),
                w.synced_lsn(),
                w.fsyncs(),
            )
        };
        let snaps = inner.checkpoint.lock().snapshots.clone();
        let snapshot_bytes = snaps
            .iter()
            .filter_map(|lsn| {
                inner
                    .core
                    .fs
                    .open(
                        &inner.core.dir.join(checkpoint::file_name(*lsn)),
                        OpenMode::Read,
                    )
                    .ok()
            })
            .filter_map(|f| f.len().ok())
            .sum();
        Ok(Stats {
            keys,
            key_bytes: kb,
            value_bytes: vb,
            memory_bytes: kb
                + vb
                + keys * ENTRY_OVERHEAD_ESTIMATE
                + named.2
                + named.1 * ENTRY_OVERHEAD_ESTIMATE,
            keyspaces: named.0,
            wal_segments,
            wal_bytes,
            wal_bytes_since_checkpoint: inner.wal_bytes_since_checkpoint.load(Ordering::Relaxed),
            snapshots: snaps.len() as u64,
            snapshot_bytes,
            disk_bytes: wal_bytes + snapshot_bytes,
            last_lsn,
            synced_lsn,
            snapshot_lsn: snaps.last().copied().unwrap_or(0),
            writes: inner.writes.load(Ordering::Relaxed),
            commit_groups: inner.groups.load(Ordering::Relaxed),
            fsyncs,
            checkpoints: inner.checkpoints.load(Ordering::Relaxed),
            checkpoint_pause_micros: inner.checkpoint_pause_micros.load(Ordering::Relaxed),
            poisoned: inner.core.poison.reason(),
            recovery: inner.core.recovery.clone(),
        })
    }
}
