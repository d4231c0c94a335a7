//! What a store reports about itself: [`Stats`] and [`Metrics`] (which
//! embeds the [`Stats`] of the same moment).

use super::Db;
use crate::engine::metrics::{Metrics, Stats};
use crate::error::Result;
use crate::fs::OpenMode;
use crate::index::ENTRY_OVERHEAD_ESTIMATE;
use crate::kv::checkpoint;
use std::sync::atomic::Ordering;

impl Db {
    /// Operation counters, latency percentiles (microseconds), error
    /// counts, and memory and disk gauges. Counters cover the time since
    /// open or the last [`Db::reset_metrics`]. See [`crate::engine::metrics`].
    ///
    /// Errors: [`crate::Error::Closed`].
    pub fn metrics(&self) -> Result<Metrics> {
        let st = self.stats()?;
        let inner = &self.inner;
        Ok(inner.metrics.snapshot(
            inner.opened,
            st.fsyncs,
            st.commit_groups,
            st.checkpoints,
            st,
        ))
    }

    /// Zero the counters and latency histograms of [`Db::metrics`].
    ///
    /// Errors: [`crate::Error::Closed`].
    pub fn reset_metrics(&self) -> Result<()> {
        let st = self.stats()?;
        self.inner
            .metrics
            .reset(st.fsyncs, st.commit_groups, st.checkpoints);
        Ok(())
    }

    /// Counters, sizes and the last recovery's facts.
    ///
    /// Errors: [`crate::Error::Closed`].
    pub fn stats(&self) -> Result<Stats> {
        let inner = &self.inner;
        let (keys, (kb, vb), last_lsn, named, (sep_n, sep_b)) = inner.read(|t| {
            let named = t.named.len();
            let nb = t.named.bytes();
            let sep = t
                .segments()
                .values()
                .fold((0, 0), |(n, b), s| (n + s.values, b + s.bytes));
            (
                t.default.len(),
                t.default.bytes(),
                t.applied_lsn(),
                (t.keyspace_count() as u64, named, nb.0 + nb.1),
                sep,
            )
        })?;
        let vl = inner.vlog.stats();
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
        let reg = inner.registry_stats();
        let pinned = if reg.open > 0 {
            inner.pinned_bytes()
        } else {
            reg.log_bytes
        };
        Ok(Stats {
            open_snapshots: reg.open,
            open_transactions: reg.transactions,
            oldest_snapshot_age_micros: reg.oldest_age_micros,
            snapshot_pinned_bytes: pinned,
            keys,
            key_bytes: kb,
            value_bytes: vb,
            // Separated values count as their 24-byte pointers.
            memory_bytes: (kb
                + vb
                + keys * ENTRY_OVERHEAD_ESTIMATE
                + named.2
                + named.1 * ENTRY_OVERHEAD_ESTIMATE
                + sep_n * crate::index::ValuePtr::SIZE as u64)
                .saturating_sub(sep_b),
            separated_values: sep_n,
            separated_bytes: sep_b,
            value_cache_bytes: vl.cache_bytes,
            value_cache_hits: vl.cache_hits,
            value_cache_misses: vl.cache_misses,
            value_reads: vl.device_reads,
            value_read_bytes: vl.device_read_bytes,
            reclaimed_segments: inner.reclaimed_segments.load(Ordering::Relaxed),
            reclaimed_bytes: inner.reclaimed_bytes.load(Ordering::Relaxed),
            space_stalls: inner.space_stalls.load(Ordering::Relaxed),
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
            recovery: {
                let mut r = inner.core.recovery.clone();
                r.values_dropped += inner.salvage_dropped.load(Ordering::Relaxed);
                r
            },
        })
    }
}
