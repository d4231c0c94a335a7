//! Metrics of a [`super::RaftLog`]: what a Raft node's operator watches on
//! its log store (appends, fsyncs, truncations, compaction, snapshots,
//! latencies), in the same units and Prometheus shapes as the key-value
//! store's ([`crate::engine::metrics`]). Counters and histograms cover the time
//! since open; gauges are read when [`super::RaftLog::metrics`] is called.
//!
//! Thread safety: every recording method takes `&self`; no lock is taken.

use crate::engine::metrics::{Exposition, Histogram, Summary, LATENCY_BOUNDS_SECONDS};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Raft log operations with a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RaftOp {
    /// `append`: from the call to the acknowledgement (durable under Sync).
    Append = 0,
    /// `save_hard_state`.
    HardState = 1,
    /// `truncate_suffix` and `truncate_prefix` (with the segments it
    /// reclaims).
    Truncate = 2,
    /// `save_snapshot`.
    Snapshot = 3,
}

const OPS: usize = 4;

/// The live counters of one log.
pub(crate) struct RaftRecorder {
    opened: Instant,
    latency: [Histogram; OPS],
    entries: AtomicU64,
    bytes: AtomicU64,
    truncate_suffix: AtomicU64,
    truncate_prefix: AtomicU64,
    reclaimed: AtomicU64,
    groups: AtomicU64,
    errors: AtomicU64,
}

impl Default for RaftRecorder {
    fn default() -> Self {
        RaftRecorder {
            opened: Instant::now(),
            latency: Default::default(),
            entries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            truncate_suffix: AtomicU64::new(0),
            truncate_prefix: AtomicU64::new(0),
            reclaimed: AtomicU64::new(0),
            groups: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }
}

impl RaftRecorder {
    /// Record `op` started at `t0` and return `r`, counting an error.
    pub(crate) fn finish<T>(
        &self,
        op: RaftOp,
        t0: Instant,
        r: crate::Result<T>,
    ) -> crate::Result<T> {
        let ns = t0.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        self.latency[op as usize].record(ns);
        if r.is_err() {
            self.errors.fetch_add(1, Relaxed);
        }
        r
    }

    /// `entries` entries of `bytes` data bytes were appended.
    pub(crate) fn appended(&self, entries: u64, bytes: u64) {
        self.entries.fetch_add(entries, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }

    /// A truncation was made durable (`prefix`: compaction).
    pub(crate) fn truncated(&self, prefix: bool) {
        let c = if prefix {
            &self.truncate_prefix
        } else {
            &self.truncate_suffix
        };
        c.fetch_add(1, Relaxed);
    }

    /// Compaction deleted `n` segments.
    pub(crate) fn reclaimed(&self, n: u64) {
        self.reclaimed.fetch_add(n, Relaxed);
    }

    /// A commit group was written.
    pub(crate) fn group(&self) {
        self.groups.fetch_add(1, Relaxed);
    }

    /// The counters; gauges are filled in by the caller.
    pub(crate) fn snapshot(&self) -> RaftMetrics {
        let ns = LATENCY_BOUNDS_SECONDS.map(|s| (s * 1e9).round() as u64);
        let l = |op: RaftOp| self.latency[op as usize].summary(1000.0, &ns);
        let append = l(RaftOp::Append);
        let hard = l(RaftOp::HardState);
        let snap = l(RaftOp::Snapshot);
        RaftMetrics {
            seconds: self.opened.elapsed().as_secs_f64(),
            appends: append.count,
            entries_appended: self.entries.load(Relaxed),
            bytes_appended: self.bytes.load(Relaxed),
            hard_state_saves: hard.count,
            truncations_suffix: self.truncate_suffix.load(Relaxed),
            truncations_prefix: self.truncate_prefix.load(Relaxed),
            segments_reclaimed: self.reclaimed.load(Relaxed),
            snapshots_saved: snap.count,
            commit_groups: self.groups.load(Relaxed),
            errors: self.errors.load(Relaxed),
            append_latency: append,
            hard_state_latency: hard,
            truncate_latency: l(RaftOp::Truncate),
            snapshot_latency: snap,
            ..RaftMetrics::default()
        }
    }
}

/// A point-in-time copy of a Raft log's metrics
/// ([`super::RaftLog::metrics`]). Counters and latencies (in microseconds)
/// cover `seconds` since open; `appends`, `hard_state_saves` and
/// `snapshots_saved` count calls, successful or not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RaftMetrics {
    /// Seconds since open.
    pub seconds: f64,
    /// `append` calls.
    pub appends: u64,
    /// Entries appended.
    pub entries_appended: u64,
    /// Bytes of entry data appended.
    pub bytes_appended: u64,
    /// `save_hard_state` calls (compaction's own re-saves included).
    pub hard_state_saves: u64,
    /// Suffix truncations (conflict resolution) made durable.
    pub truncations_suffix: u64,
    /// Prefix truncations (compaction) made durable.
    pub truncations_prefix: u64,
    /// WAL segment rotations.
    pub segment_rotations: u64,
    /// WAL segments deleted by compaction.
    pub segments_reclaimed: u64,
    /// `save_snapshot` calls.
    pub snapshots_saved: u64,
    /// WAL `fdatasync` calls.
    pub fsyncs: u64,
    /// Commit groups written (one WAL append each).
    pub commit_groups: u64,
    /// Errors returned by writing calls.
    pub errors: u64,
    /// Index of the first entry held (gauge).
    pub first_index: u64,
    /// Index of the last entry, 0 if the log holds none (gauge).
    pub last_index: u64,
    /// Live WAL segment files (gauge).
    pub wal_segments: u64,
    /// Bytes of WAL segment files on disk (gauge).
    pub wal_disk_bytes: u64,
    /// Duration of the recovery at open, in microseconds.
    pub recovery_micros: u64,
    /// Records replayed by the recovery at open.
    pub recovery_records_replayed: u64,
    /// Whether the log is poisoned (an earlier write or fsync failed).
    pub poisoned: bool,
    /// Latency of `append`, in microseconds.
    pub append_latency: Summary,
    /// Latency of `save_hard_state`, in microseconds.
    pub hard_state_latency: Summary,
    /// Latency of truncations (compaction's segment deletion included).
    pub truncate_latency: Summary,
    /// Latency of `save_snapshot`, in microseconds.
    pub snapshot_latency: Summary,
}

impl RaftMetrics {
    /// The metrics in Prometheus text exposition format (version 0.0.4),
    /// every sample labelled `log="<label>"`; names start `keyval_raft_`,
    /// in base units (`_total`, `_bytes`, `_seconds`), latencies as
    /// histograms at [`LATENCY_BOUNDS_SECONDS`].
    pub fn to_prometheus(&self, label: &str) -> String {
        let mut e = Exposition::new("keyval_raft_", "log", label);
        e.counter("appends_total", "Append calls.", self.appends);
        e.counter(
            "appended_entries_total",
            "Entries appended.",
            self.entries_appended,
        );
        e.counter(
            "appended_bytes_total",
            "Bytes of entry data appended.",
            self.bytes_appended,
        );
        e.counter(
            "hard_state_saves_total",
            "Hard state saves.",
            self.hard_state_saves,
        );
        e.labelled_counters(
            "truncations_total",
            "Log truncations made durable, by side (prefix: compaction; suffix: conflict resolution).",
            "side",
            &[
                ("prefix", self.truncations_prefix),
                ("suffix", self.truncations_suffix),
            ],
        );
        e.counter(
            "segment_rotations_total",
            "WAL segment rotations.",
            self.segment_rotations,
        );
        e.counter(
            "segments_reclaimed_total",
            "WAL segments deleted by compaction.",
            self.segments_reclaimed,
        );
        e.counter(
            "snapshots_saved_total",
            "Snapshot saves.",
            self.snapshots_saved,
        );
        e.counter("fsyncs_total", "WAL fdatasync calls.", self.fsyncs);
        e.counter(
            "commit_groups_total",
            "Group-commit groups written.",
            self.commit_groups,
        );
        e.counter(
            "errors_total",
            "Errors returned by writing calls.",
            self.errors,
        );
        e.latency_histograms(
            "operation_duration_seconds",
            "Raft log operation latency, by operation.",
            &[
                ("append", &self.append_latency),
                ("save_hard_state", &self.hard_state_latency),
                ("truncate", &self.truncate_latency),
                ("save_snapshot", &self.snapshot_latency),
            ],
        );
        e.gauge(
            "first_index",
            "Index of the first entry held.",
            self.first_index,
        );
        e.gauge(
            "last_index",
            "Index of the last entry (0: none).",
            self.last_index,
        );
        e.gauge("wal_segments", "Live WAL segment files.", self.wal_segments);
        e.gauge(
            "wal_disk_bytes",
            "Bytes of WAL segment files on disk.",
            self.wal_disk_bytes,
        );
        e.gauge(
            "recovery_records_replayed",
            "Records replayed by the recovery at open.",
            self.recovery_records_replayed,
        );
        e.gauge_f64(
            "recovery_duration_seconds",
            "Duration of the recovery at open.",
            self.recovery_micros as f64 / 1e6,
        );
        e.gauge(
            "poisoned",
            "1 if an earlier write or fsync failed and the log refuses writes until reopened.",
            u64::from(self.poisoned),
        );
        e.gauge("up", "1: the log is open and answered.", 1);
        e.finish()
    }
}
