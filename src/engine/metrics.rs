//! Metrics: operation counters, latency histograms, error counts. Cheap
//! enough to stay on: each recorded operation costs a few relaxed atomic
//! adds, and two clock reads when it is timed; no lock is taken.
//!
//! Point reads are timed one in [`GET_SAMPLE_EVERY`] (by the store's count
//! of point reads, so the first after open or a reset is timed); every
//! other operation is timed every time. Timing every get made random gets
//! at 1M keys more than twice as slow, measured side by side (see
//! docs/bench/reads-and-recovery.md): about half from the clock reads,
//! half from carrying an optional timestamp through the common path, which
//! is why sampled gets take a separate cold path (`get_in_timed` in
//! src/db.rs). The get latency histogram counts samples; the `gets`
//! counter counts every get.
//!
//! Latencies go into log-linear histograms (4 buckets per power of two of
//! nanoseconds, so a reported percentile is within 25% of the true value,
//! reported as the bucket's upper bound, never below the true value).
//! Counters and histograms cover the time since open or the last
//! [`crate::Db::reset_metrics`]; gauges (memory, disk bytes) and recovery
//! facts are read when [`crate::Db::metrics`] is called.
//!
//! Thread safety: every recording method takes `&self` and may be called
//! from any thread.

use crate::error::{Error, ErrorKind};
use crate::wal::replay::RecoveryStats;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// One point read in this many is timed (see the module docs).
pub const GET_SAMPLE_EVERY: u64 = 32;

const BUCKETS: usize = 256;

/// A lock-free log-linear histogram of u64 values.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicU64,
    max: AtomicU64,
}

fn bucket_of(v: u64) -> usize {
    if v < 16 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as usize; // e >= 4
    let sub = ((v >> (e - 2)) & 3) as usize;
    16 + (e - 4) * 4 + sub
}

/// The largest value that falls in bucket `i`.
fn bucket_upper(i: usize) -> u64 {
    if i < 16 {
        return i as u64;
    }
    let e = (i - 16) / 4 + 4;
    let sub = ((i - 16) % 4) as u64;
    let base = 1u64 << e;
    let step = 1u64 << (e - 2);
    match base.checked_add((sub + 1) * step) {
        Some(next) => next - 1,
        None => u64::MAX,
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub(crate) fn record(&self, v: u64) {
        self.buckets[bucket_of(v)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum.fetch_add(v, Relaxed);
        self.max.fetch_max(v, Relaxed);
    }

    fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Relaxed);
        }
        self.count.store(0, Relaxed);
        self.sum.store(0, Relaxed);
        self.max.store(0, Relaxed);
    }

    /// The value at quantile `q` (0..=1): the upper bound of the bucket
    /// holding it, capped at the recorded maximum.
    fn quantile(&self, counts: &[u64], total: u64, q: f64) -> u64 {
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, &c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_upper(i).min(self.max.load(Relaxed));
            }
        }
        self.max.load(Relaxed)
    }

    /// Count, p50, p95, p99, max and mean of the recorded values, with
    /// every value divided by `scale` (1000: nanoseconds to microseconds),
    /// and the cumulative counts at `bounds` (in recorded units).
    pub(crate) fn summary(&self, scale: f64, bounds: &[u64; HISTOGRAM_BOUNDS]) -> Summary {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let q = |p| self.quantile(&counts, total, p) as f64 / scale;
        // A value is counted at the first bound at or above its internal
        // bucket's upper bound (at most 25% above the value itself).
        let buckets = bounds.map(|b| {
            counts
                .iter()
                .enumerate()
                .filter(|(i, _)| bucket_upper(*i) <= b)
                .map(|(_, c)| c)
                .sum()
        });
        Summary {
            buckets,
            count: total,
            p50: q(0.50),
            p95: q(0.95),
            p99: q(0.99),
            max: self.max.load(Relaxed) as f64 / scale,
            mean: if total == 0 {
                0.0
            } else {
                self.sum.load(Relaxed) as f64 / total as f64 / scale
            },
            sum: self.sum.load(Relaxed) as f64 / scale,
        }
    }
}

/// Distribution of one kind of value: for latencies in microseconds, for
/// group-commit sizes in writes per group.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sum of all values.
    pub sum: f64,
    /// Cumulative counts for a Prometheus histogram: `buckets[i]` values
    /// were at most [`LATENCY_BOUNDS_SECONDS`]`[i]` (latencies) or
    /// [`GROUP_SIZE_BOUNDS`]`[i]` (group sizes); `count` is the `+Inf`
    /// bucket. Built from the internal log-linear buckets, so a value may
    /// count up to 25% late (at a bound above it, never below).
    pub buckets: [u64; HISTOGRAM_BOUNDS],
}

/// Number of finite bounds of the Prometheus histograms.
pub const HISTOGRAM_BOUNDS: usize = 20;

/// Bounds (`le`) of the latency histograms, in seconds: 5 µs to 10 s.
pub const LATENCY_BOUNDS_SECONDS: [f64; HISTOGRAM_BOUNDS] = [
    5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bounds (`le`) of the group-commit size histogram, in writes per group.
pub const GROUP_SIZE_BOUNDS: [u64; HISTOGRAM_BOUNDS] = [
    1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
];

/// [`LATENCY_BOUNDS_SECONDS`] in nanoseconds.
fn latency_bounds_ns() -> [u64; HISTOGRAM_BOUNDS] {
    LATENCY_BOUNDS_SECONDS.map(|s| (s * 1e9).round() as u64)
}

/// Operation kinds with a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `set`, `delete`, `write` (a batch): from the call to the acknowledgement
    /// at the durability level.
    Write = 0,
    /// `get`, `get_with`, `contains`.
    Get = 1,
    /// One chunk fetched by an iterator (up to 256 pairs).
    Scan = 2,
    /// `sync`.
    Sync = 3,
    /// `checkpoint` (manual or automatic).
    Checkpoint = 4,
}

const KINDS: usize = 5;
const ERROR_KINDS: usize = ErrorKind::ALL.len();

/// Errors returned, counted by kind ([`Metrics::errors`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts([u64; ERROR_KINDS]);

impl ErrorCounts {
    /// How many errors of `kind` were returned.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0[slot(kind)]
    }

    /// How many errors were returned, of every kind.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Each kind with its count, in code order.
    pub fn iter(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        ErrorKind::ALL.iter().map(|k| (*k, self.get(*k)))
    }
}

/// The position of `kind` in [`ErrorKind::ALL`].
fn slot(kind: ErrorKind) -> usize {
    ErrorKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(ERROR_KINDS - 1)
}

/// The live metrics of one store.
#[derive(Default)]
pub(crate) struct Recorder {
    latency: [Histogram; KINDS],
    group_size: Histogram,
    puts: AtomicU64,
    deletes: AtomicU64,
    gets: AtomicU64,
    get_hits: AtomicU64,
    scanned: AtomicU64,
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
    errors: [AtomicU64; ERROR_KINDS],
    /// Baselines of counters kept elsewhere (fsyncs, groups, checkpoints)
    /// at the last reset.
    base_fsyncs: AtomicU64,
    base_groups: AtomicU64,
    base_checkpoints: AtomicU64,
    reset_at: parking_lot::Mutex<Option<Instant>>,
}

impl Recorder {
    /// Start timing an operation.
    pub(crate) fn start(&self) -> Instant {
        Instant::now()
    }

    /// Whether to time this point read: the store's count of point reads
    /// is a multiple of [`GET_SAMPLE_EVERY`]. A plain load of the counter,
    /// not a read-modify-write: concurrent gets may sample a little more or
    /// less often, never count wrongly.
    #[inline]
    pub(crate) fn sample_get(&self) -> bool {
        self.gets.load(Relaxed) % GET_SAMPLE_EVERY == 0
    }

    /// Record the latency of `kind` started at `t0`, and its error if any.
    pub(crate) fn finish<T>(&self, kind: OpKind, t0: Instant, r: &crate::Result<T>) {
        let ns = t0.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        self.latency[kind as usize].record(ns);
        if let Err(e) = r {
            self.error(e);
        }
    }

    /// Count an error returned to the caller.
    pub(crate) fn error(&self, e: &Error) {
        self.errors[slot(e.kind())].fetch_add(1, Relaxed);
    }

    pub(crate) fn wrote(&self, puts: u64, deletes: u64, bytes: u64) {
        self.puts.fetch_add(puts, Relaxed);
        self.deletes.fetch_add(deletes, Relaxed);
        self.bytes_written.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn got(&self, hit: Option<usize>) {
        self.gets.fetch_add(1, Relaxed);
        if let Some(n) = hit {
            self.get_hits.fetch_add(1, Relaxed);
            self.bytes_read.fetch_add(n as u64, Relaxed);
        }
    }

    pub(crate) fn scanned(&self, items: u64, bytes: u64) {
        self.scanned.fetch_add(items, Relaxed);
        self.bytes_read.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn group(&self, size: usize) {
        self.group_size.record(size as u64);
    }

    /// Zero counters and histograms; `fsyncs`, `groups` and `checkpoints`
    /// are the running totals kept elsewhere, remembered as baselines.
    pub(crate) fn reset(&self, fsyncs: u64, groups: u64, checkpoints: u64) {
        for h in &self.latency {
            h.reset();
        }
        self.group_size.reset();
        for c in [
            &self.puts,
            &self.deletes,
            &self.gets,
            &self.get_hits,
            &self.scanned,
            &self.bytes_written,
            &self.bytes_read,
        ] {
            c.store(0, Relaxed);
        }
        for c in &self.errors {
            c.store(0, Relaxed);
        }
        self.base_fsyncs.store(fsyncs, Relaxed);
        self.base_groups.store(groups, Relaxed);
        self.base_checkpoints.store(checkpoints, Relaxed);
        *self.reset_at.lock() = Some(Instant::now());
    }

    /// A snapshot of the counters; gauges are filled in by the caller.
    pub(crate) fn snapshot(
        &self,
        opened: Instant,
        fsyncs: u64,
        groups: u64,
        checkpoints: u64,
        stats: Stats,
    ) -> Metrics {
        let ns = latency_bounds_ns();
        let l = |k: OpKind| self.latency[k as usize].summary(1000.0, &ns);
        let since = self.reset_at.lock().unwrap_or(opened);
        Metrics {
            seconds: since.elapsed().as_secs_f64(),
            puts: self.puts.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            writes: self.latency[OpKind::Write as usize].count.load(Relaxed),
            gets: self.gets.load(Relaxed),
            get_hits: self.get_hits.load(Relaxed),
            scanned_pairs: self.scanned.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            bytes_read: self.bytes_read.load(Relaxed),
            fsyncs: fsyncs.saturating_sub(self.base_fsyncs.load(Relaxed)),
            commit_groups: groups.saturating_sub(self.base_groups.load(Relaxed)),
            checkpoints: checkpoints.saturating_sub(self.base_checkpoints.load(Relaxed)),
            group_size: self.group_size.summary(1.0, &GROUP_SIZE_BOUNDS),
            write_latency: l(OpKind::Write),
            get_latency: l(OpKind::Get),
            scan_latency: l(OpKind::Scan),
            sync_latency: l(OpKind::Sync),
            checkpoint_latency: l(OpKind::Checkpoint),
            errors: ErrorCounts(std::array::from_fn(|i| self.errors[i].load(Relaxed))),
            stats,
        }
    }
}

/// A point-in-time summary of the store, from `Db::stats`.
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
    /// Named keyspaces (see `Db::keyspace`; each has its own
    /// `Keyspace::stats`), those of document collections included.
    pub keyspaces: u64,
    /// Live WAL segment files.
    pub wal_segments: u64,
    /// Bytes of WAL segment files on disk (preallocated size).
    pub wal_bytes: u64,
    /// WAL bytes appended since the newest snapshot.
    pub wal_bytes_since_checkpoint: u64,
    /// Checkpoint files (`snap-*.kvs`) on disk. (The name predates read
    /// snapshots; see [`Stats::open_snapshots`] for those.)
    pub snapshots: u64,
    /// Bytes of checkpoint files on disk.
    pub snapshot_bytes: u64,
    /// WAL + snapshot bytes.
    pub disk_bytes: u64,
    /// LSN of the last write applied.
    pub last_lsn: u64,
    /// Highest LSN known durable (fdatasync returned OK).
    pub synced_lsn: u64,
    /// LSN covered by the newest checkpoint file (0: none).
    pub snapshot_lsn: u64,
    /// Read snapshots open now ([`crate::Snapshot`]s, iterators and
    /// transactions, each counted once however many clones it has).
    pub open_snapshots: u64,
    /// Transactions open now (begun, not yet committed or dropped).
    pub open_transactions: u64,
    /// Age of the oldest open snapshot, in microseconds (0: none).
    pub oldest_snapshot_age_micros: u64,
    /// Bytes of memory that only open snapshots hold: index nodes copied
    /// since they were taken, pairs replaced or removed since, and the
    /// write sets kept to validate open transactions. Measured by walking
    /// the versions (each counted once), not estimated; 0 when none is
    /// open.
    pub snapshot_pinned_bytes: u64,
    /// Separated values (left in the WAL segments, see
    /// `Options::value_separation_threshold`) the index points at, every
    /// keyspace included.
    pub separated_values: u64,
    /// Their bytes (part of `value_bytes` and the keyspaces' counts, not
    /// of `memory_bytes`).
    pub separated_bytes: u64,
    /// Bytes the value cache holds now (values plus 64 bytes each); at
    /// most `Options::memory_budget`.
    pub value_cache_bytes: u64,
    /// Reads of a separated value answered by the value cache, since open.
    pub value_cache_hits: u64,
    /// Reads of a separated value that missed the cache, since open.
    pub value_cache_misses: u64,
    /// Positioned reads of segment files for separated values since open
    /// (one per cache miss; the OS page cache may still answer them).
    pub value_reads: u64,
    /// Bytes those reads returned.
    pub value_read_bytes: u64,
    /// Segments whose live values reclaim moved since open.
    pub reclaimed_segments: u64,
    /// Bytes of separated values reclaim moved since open (what reclaim
    /// adds to write amplification).
    pub reclaimed_bytes: u64,
    /// Writes that ran (or waited for) a reclaim pass first because the
    /// WAL segments passed the space cap (`keyval::SPACE_CAP`), since open.
    pub space_stalls: u64,
    /// Writes (batches) committed since open.
    pub writes: u64,
    /// Commit groups written since open; `writes / groups` is the average
    /// group-commit size.
    pub commit_groups: u64,
    /// WAL fdatasync calls since open.
    pub fsyncs: u64,
    /// Checkpoints completed since open.
    pub checkpoints: u64,
    /// Longest time in microseconds that the last checkpoint held the
    /// index's lock: the read lock, only to take its snapshot of the
    /// copy-on-write index (writers wait for that at most, never for the
    /// file).
    pub checkpoint_pause_micros: u64,
    /// Why the store is poisoned, if it is.
    pub poisoned: Option<String>,
    /// What the last recovery found and did.
    pub recovery: RecoveryStats,
}

/// A point-in-time copy of a store's metrics ([`crate::Db::metrics`]).
/// Latencies are in microseconds; counters cover `seconds` (since open or
/// the last reset).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Seconds covered by the counters and histograms.
    pub seconds: f64,
    /// Put operations (including those inside batches).
    pub puts: u64,
    /// Delete operations (including those inside batches).
    pub deletes: u64,
    /// Write calls (`set`, `delete`, `write`), successful or not.
    pub writes: u64,
    /// Point reads (`get`, `get_with`, `contains`).
    pub gets: u64,
    /// Point reads that found their key.
    pub get_hits: u64,
    /// Pairs returned by iterators.
    pub scanned_pairs: u64,
    /// Bytes of WAL payload written (encoded batches).
    pub bytes_written: u64,
    /// Bytes of keys and values returned to callers.
    pub bytes_read: u64,
    /// WAL fdatasync calls.
    pub fsyncs: u64,
    /// Commit groups written (one WAL append each).
    pub commit_groups: u64,
    /// Checkpoints completed.
    pub checkpoints: u64,
    /// Writes per commit group.
    pub group_size: Summary,
    /// Latency of write calls, in microseconds.
    pub write_latency: Summary,
    /// Latency of point reads, in microseconds: one get in
    /// [`GET_SAMPLE_EVERY`] is timed, so `count` is the number of samples
    /// ([`Metrics::gets`] counts every get). A [`crate::Keyspace::get_many`]
    /// call is one sample, always taken.
    pub get_latency: Summary,
    /// Latency of starting an iterator (taking its snapshot and seeking
    /// both ends) or of a whole `scan`, in microseconds.
    pub scan_latency: Summary,
    /// Latency of `sync`, in microseconds.
    pub sync_latency: Summary,
    /// Latency of checkpoints, in microseconds.
    pub checkpoint_latency: Summary,
    /// Errors returned, by kind (`m.errors.get(ErrorKind::Io)`).
    pub errors: ErrorCounts,
    /// The store's [`Stats`] at the same moment: the gauges (keys,
    /// memory, disk bytes, poisoned) and the last recovery's facts.
    pub stats: Stats,
}

impl Metrics {
    /// The metrics in Prometheus text exposition format (version 0.0.4),
    /// every name in base units: counters end in `_total`; latencies are
    /// histograms in seconds (`keyval_operation_duration_seconds` with
    /// label `op`, bounds [`LATENCY_BOUNDS_SECONDS`], `_bucket`, `_sum`,
    /// `_count`); group-commit sizes a histogram in writes; gauges in bytes
    /// or seconds, plus `keyval_poisoned` (0/1) and `keyval_up` (1). Every
    /// sample carries the label `db="<label>"`.
    pub fn to_prometheus(&self, label: &str) -> String {
        let mut e = Exposition::new("keyval_", "db", label);
        e.counter("puts_total", "Put operations.", self.puts);
        e.counter("deletes_total", "Delete operations.", self.deletes);
        e.counter(
            "writes_total",
            "Write calls (set, delete, batch).",
            self.writes,
        );
        e.counter("gets_total", "Point reads.", self.gets);
        e.counter(
            "get_hits_total",
            "Point reads that found their key.",
            self.get_hits,
        );
        e.counter(
            "scanned_pairs_total",
            "Pairs returned by iterators.",
            self.scanned_pairs,
        );
        e.counter(
            "written_bytes_total",
            "WAL payload bytes written.",
            self.bytes_written,
        );
        e.counter(
            "read_bytes_total",
            "Key and value bytes returned.",
            self.bytes_read,
        );
        e.counter("fsyncs_total", "WAL fdatasync calls.", self.fsyncs);
        e.counter(
            "commit_groups_total",
            "Group-commit groups written.",
            self.commit_groups,
        );
        e.counter(
            "checkpoints_total",
            "Checkpoints completed.",
            self.checkpoints,
        );
        let errors: Vec<(&str, u64)> = self.errors.iter().map(|(k, n)| (k.label(), n)).collect();
        e.labelled_counters("errors_total", "Errors returned, by kind.", "kind", &errors);
        e.latency_histograms(
            "operation_duration_seconds",
            "Operation latency, by operation.",
            &[
                ("write", &self.write_latency),
                ("get", &self.get_latency),
                ("scan_chunk", &self.scan_latency),
                ("sync", &self.sync_latency),
                ("checkpoint", &self.checkpoint_latency),
            ],
        );
        e.histogram(
            "commit_group_size",
            "Writes per group commit.",
            &self.group_size,
            &GROUP_SIZE_BOUNDS.map(|b| b.to_string()),
            1.0,
        );
        e.gauge("keys", "Live keys.", self.stats.keys);
        e.gauge(
            "memory_bytes",
            "Estimated memory of the index.",
            self.stats.memory_bytes,
        );
        e.gauge(
            "wal_disk_bytes",
            "Bytes of WAL segment files on disk.",
            self.stats.wal_bytes,
        );
        e.gauge(
            "snapshot_disk_bytes",
            "Bytes of snapshot files on disk.",
            self.stats.snapshot_bytes,
        );
        e.gauge(
            "recovery_records_replayed",
            "Records replayed by the last recovery.",
            self.stats.recovery.records_replayed,
        );
        e.gauge(
            "recovery_truncated_bytes",
            "Torn-tail bytes truncated by the last recovery.",
            self.stats
                .recovery
                .truncation
                .as_ref()
                .map_or(0, |t| t.bytes),
        );
        e.gauge(
            "recovery_records_skipped",
            "Records skipped by the last recovery.",
            self.stats.recovery.records_skipped,
        );
        e.gauge_f64(
            "recovery_duration_seconds",
            "Duration of the last recovery.",
            self.stats.recovery.duration_micros as f64 / 1e6,
        );
        e.gauge(
            "open_snapshots",
            "Read snapshots open (snapshots, iterators, transactions).",
            self.stats.open_snapshots,
        );
        e.gauge(
            "open_transactions",
            "Transactions open.",
            self.stats.open_transactions,
        );
        e.gauge_f64(
            "oldest_snapshot_age_seconds",
            "Age of the oldest open snapshot (0: none).",
            self.stats.oldest_snapshot_age_micros as f64 / 1e6,
        );
        e.gauge(
            "snapshot_pinned_bytes",
            "Bytes of old versions and validation write sets held only by open snapshots.",
            self.stats.snapshot_pinned_bytes,
        );
        e.gauge(
            "separated_values",
            "Separated values (kept in the WAL segments) the index points at.",
            self.stats.separated_values,
        );
        e.gauge(
            "separated_bytes",
            "Bytes of separated values the index points at.",
            self.stats.separated_bytes,
        );
        e.gauge(
            "value_cache_bytes",
            "Bytes held by the value cache.",
            self.stats.value_cache_bytes,
        );
        e.counter(
            "value_cache_hits_total",
            "Separated-value reads answered by the value cache since open.",
            self.stats.value_cache_hits,
        );
        e.counter(
            "value_cache_misses_total",
            "Separated-value reads that missed the value cache since open.",
            self.stats.value_cache_misses,
        );
        e.counter(
            "value_reads_total",
            "Positioned segment reads for separated values since open.",
            self.stats.value_reads,
        );
        e.counter(
            "reclaimed_bytes_total",
            "Bytes of separated values moved by reclaim since open.",
            self.stats.reclaimed_bytes,
        );
        e.gauge(
            "poisoned",
            "1 if an earlier write or fsync failed and the store refuses writes until reopened.",
            u64::from(self.stats.poisoned.is_some()),
        );
        e.gauge(
            "up",
            "1: the store is open and answered (metrics of a closed store are an error, not 0).",
            1,
        );
        e.finish()
    }
}

/// A Prometheus text exposition (format 0.0.4) being written: every
/// metric gets its `# HELP` and `# TYPE` lines, every sample the one
/// identifying label this exposition was made with.
pub(crate) struct Exposition {
    out: String,
    prefix: &'static str,
    labels: String,
}

impl Exposition {
    /// Metric names start with `prefix`; every sample is labelled
    /// `key="value"` (escaped as the format requires).
    pub(crate) fn new(prefix: &'static str, key: &str, value: &str) -> Exposition {
        let v = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        Exposition {
            out: String::new(),
            prefix,
            labels: format!("{key}=\"{v}\""),
        }
    }

    fn head(&mut self, name: &str, help: &str, kind: &str) {
        use std::fmt::Write;
        let p = self.prefix;
        let _ = writeln!(self.out, "# HELP {p}{name} {help}\n# TYPE {p}{name} {kind}");
    }

    fn sample(&mut self, name: &str, extra: &str, v: impl std::fmt::Display) {
        use std::fmt::Write;
        let (p, l) = (self.prefix, &self.labels);
        let _ = writeln!(self.out, "{p}{name}{{{l}{extra}}} {v}");
    }

    pub(crate) fn counter(&mut self, name: &str, help: &str, v: u64) {
        self.head(name, help, "counter");
        self.sample(name, "", v);
    }

    /// One counter with a sample per value of label `key`.
    pub(crate) fn labelled_counters(
        &mut self,
        name: &str,
        help: &str,
        key: &str,
        v: &[(&str, u64)],
    ) {
        self.head(name, help, "counter");
        for (k, n) in v {
            self.sample(name, &format!(",{key}=\"{k}\""), n);
        }
    }

    pub(crate) fn gauge(&mut self, name: &str, help: &str, v: u64) {
        self.head(name, help, "gauge");
        self.sample(name, "", v);
    }

    pub(crate) fn gauge_f64(&mut self, name: &str, help: &str, v: f64) {
        self.head(name, help, "gauge");
        self.sample(name, "", v);
    }

    fn buckets(&mut self, name: &str, extra: &str, s: &Summary, bounds: &[String], scale: f64) {
        for (le, n) in bounds.iter().zip(s.buckets) {
            self.sample(
                &format!("{name}_bucket"),
                &format!("{extra},le=\"{le}\""),
                n,
            );
        }
        self.sample(
            &format!("{name}_bucket"),
            &format!("{extra},le=\"+Inf\""),
            s.count,
        );
        self.sample(&format!("{name}_sum"), extra, s.sum * scale);
        self.sample(&format!("{name}_count"), extra, s.count);
    }

    /// A histogram from `s` at `bounds`; `scale` converts `s.sum` to the
    /// histogram's unit.
    pub(crate) fn histogram(
        &mut self,
        name: &str,
        help: &str,
        s: &Summary,
        bounds: &[String],
        scale: f64,
    ) {
        self.head(name, help, "histogram");
        self.buckets(name, "", s, bounds, scale);
    }

    /// Latency histograms in seconds (from summaries in microseconds) at
    /// [`LATENCY_BOUNDS_SECONDS`], one per value of label `op`.
    pub(crate) fn latency_histograms(&mut self, name: &str, help: &str, ops: &[(&str, &Summary)]) {
        self.head(name, help, "histogram");
        let secs: Vec<String> = LATENCY_BOUNDS_SECONDS
            .iter()
            .map(|b| b.to_string())
            .collect();
        for (op, s) in ops {
            self.buckets(name, &format!(",op=\"{op}\""), s, &secs, 1e-6);
        }
    }

    /// The text.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotone_and_bound_their_values() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 40, u64::MAX / 3, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS);
            assert!(b >= last || v >= 1 << 40, "bucket order at {v}");
            last = b;
            assert!(bucket_upper(b) >= v, "upper bound of {v}");
            assert!(b == 0 || bucket_upper(b - 1) < v, "bucket of {v} too high");
        }
    }

    #[test]
    fn quantiles_are_within_a_quarter() {
        let h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000); // 1 us .. 10 ms in ns
        }
        let s = h.summary(1000.0, &latency_bounds_ns());
        assert_eq!(s.count, 10_000);
        for (got, want) in [(s.p50, 5000.0), (s.p95, 9500.0), (s.p99, 9900.0)] {
            assert!(got >= want && got <= want * 1.25, "{got} vs {want}");
        }
        assert_eq!(s.max, 10_000.0);
        assert!((s.mean - 5000.5).abs() < 0.01);
        h.reset();
        assert_eq!(h.summary(1000.0, &latency_bounds_ns()), Summary::default());
    }

    /// Histogram buckets: cumulative, never count a value below its true
    /// bound, at most 25% late.
    #[test]
    fn histogram_buckets_are_cumulative_and_bound_their_values() {
        let h = Histogram::default();
        let values: Vec<u64> = (1..=20_000u64).map(|v| v * 997).collect(); // ~1 us .. 20 ms
        for &v in &values {
            h.record(v);
        }
        let bounds = latency_bounds_ns();
        let s = h.summary(1000.0, &bounds);
        let mut last = 0;
        for (b, &n) in bounds.iter().zip(&s.buckets) {
            assert!(n >= last, "cumulative");
            last = n;
            let at_most = values.iter().filter(|&&v| v <= *b).count() as u64;
            let within = values.iter().filter(|&&v| v * 5 <= *b * 4).count() as u64;
            assert!(
                n <= at_most,
                "le={b}: {n} counted, only {at_most} values are <= it"
            );
            assert!(
                n >= within,
                "le={b}: {n} counted, {within} values are 25% below it"
            );
        }
        assert_eq!(s.buckets[HISTOGRAM_BOUNDS - 1], s.count, "all below 10 s");
    }
}
