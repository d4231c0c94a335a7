//! [`Db`]: the key-value store.

pub mod batch;
pub mod checkpoint;
pub mod keyspace;
pub mod recovery;

use crate::engine::metrics::{Metrics, OpKind, Recorder};
use crate::engine::{self, Core};
use crate::error::{Error, Result};
use crate::format::record::RecordType;
use crate::fs::{self, FileSystem, OpenMode};
use crate::index::ENTRY_OVERHEAD_ESTIMATE;
use crate::index::{FrozenTables, KeyspaceStats, Tables};
use crate::kv::batch::WriteBatch;
use crate::kv::keyspace::Keyspace;
use crate::kv::recovery::RecoveryStats;
use crate::options::{Durability, Options, WriteOptions};
use crate::wal::segment::KIND_KV;
use parking_lot::{Mutex, RwLock};
use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct MemState {
    table: Tables,
    closed: bool,
}

struct CheckpointState {
    /// LSNs of the snapshots on disk, ascending (including any that failed
    /// verification at open, so that retention deletes them in turn).
    snapshots: Vec<u64>,
    /// LSN of the newest snapshot known to verify: a checkpoint at this
    /// LSN has nothing to write.
    good: Option<u64>,
}

/// A batch waiting for its commit group: the encoded payload and the
/// durability level its writer asked for.
#[derive(Debug)]
struct Queued {
    payload: Vec<u8>,
    durability: Durability,
}

pub(crate) struct Inner {
    /// Directory, lock, WAL, group commit, poison, closed flag, recovery.
    core: Core<Queued>,
    opts: Options,
    mem: RwLock<MemState>,
    /// Serializes keyspace creation and drop (catalog changes).
    ddl: Mutex<()>,
    /// State that a layer above attaches to this store, one value per
    /// type (the documents layer keeps its write lock here); see
    /// [`Db::attached`].
    attached: Mutex<Vec<Arc<dyn std::any::Any + Send + Sync>>>,
    checkpoint: Mutex<CheckpointState>,
    checkpoint_running: AtomicBool,
    wal_bytes_since_checkpoint: AtomicU64,
    checkpoints: AtomicU64,
    /// Longest time, in microseconds, the last checkpoint held the index's
    /// write lock (freeze, or one merge step).
    checkpoint_pause_micros: AtomicU64,
    groups: AtomicU64,
    writes: AtomicU64,
    /// Random id of this database (see docs/format.md).
    db_id: u64,
    metrics: Recorder,
    opened: std::time::Instant,
    /// When the last checkpoint finished (or the store opened): the
    /// time-based checkpoint ([`Options::checkpoint_interval`]) counts
    /// from here.
    last_checkpoint: Mutex<std::time::Instant>,
    /// Stops the time-based checkpoint thread on close.
    ticker: Arc<Ticker>,
}

/// The stop signal of the time-based checkpoint thread.
#[derive(Default)]
struct Ticker {
    stop: Mutex<bool>,
    wake: parking_lot::Condvar,
}

impl Ticker {
    fn stop(&self) {
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

/// Read-only recovery for [`Options::read_only`]. A writer may append,
/// rotate or checkpoint while the files are read, which can look like
/// damage (a record read half-written before later ones were read whole) or
/// a vanished file; both pass when read again, so open retries a few
/// times. Errors: as recovery; [`Error::InvalidArgument`] for a directory
/// that is missing, not a directory, or holds no WAL.
fn recover_read_only(
    fs: &dyn FileSystem,
    dir: &Path,
    opts: &Options,
) -> Result<recovery::Recovered> {
    if !fs.is_dir(dir).map_err(|e| Error::io(dir, e))? {
        return Err(Error::InvalidArgument(format!(
            "{} is not a store directory (read-only opens create nothing)",
            dir.display()
        )));
    }
    let mut attempt = 0;
    loop {
        let r = recovery::recover(fs, dir, opts, true).and_then(|rec| match rec.resume {
            Some(_) => Ok(rec),
            None if engine::list(fs, dir)?.segments.is_empty() => Err(Error::InvalidArgument(
                format!("{} holds no KeyVal WAL segment", dir.display()),
            )),
            // The last segment vanished between listing and opening it.
            None => Err(Error::io(
                dir,
                std::io::Error::from_raw_os_error(libc::ENOENT),
            )),
        });
        let transient = matches!(
            &r,
            Err(Error::Corruption { .. })
                | Err(Error::Io {
                    errno: Some(libc::ENOENT),
                    ..
                })
        );
        attempt += 1;
        if r.is_ok() || !transient || attempt >= 5 || !fs.background_threads() {
            return r;
        }
        std::thread::sleep(Duration::from_millis(10 << attempt));
    }
}

/// The time-based checkpoint thread: every `every` since the last
/// checkpoint, checkpoint if anything was written. Holds only a weak
/// reference, so it never keeps a dropped store alive.
fn run_ticker(weak: std::sync::Weak<Inner>, ticker: Arc<Ticker>, every: Duration) {
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

/// A durable, ordered key-value store in one directory.
///
/// All live keys and values are held in memory (an ordered B-tree, and a
/// hash index beside it for point reads), so the dataset is limited by RAM:
/// plan for the key and value bytes plus about 76-86 bytes per entry
/// ([`ENTRY_OVERHEAD_ESTIMATE`] is 82, measured at 1M entries; see
/// `docs/bench/gets.md`). Reads never touch the disk. On disk there are
/// only the write-ahead log and the snapshots (see `docs/format.md`).
///
/// Keys are non-empty byte strings of at most [`Options::max_key_size`]
/// bytes; the empty key is rejected everywhere with
/// [`Error::InvalidArgument`]. Values are byte strings (empty allowed) of
/// at most [`Options::max_value_size`] bytes.
///
/// Thread safety: `Db` is `Send + Sync`; share it with `Arc<Db>` or scoped
/// threads. Concurrent writers are group-committed. Readers never wait for
/// an fsync.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
    /// The default keyspace (id 0), which `Db` dereferences to.
    default: Keyspace,
    /// Shared by every clone; the last one to go closes the store.
    _handle: Arc<Handle>,
}

/// Closes the store when the last [`Db`] clone is dropped.
struct Handle(Arc<Inner>);

impl Drop for Handle {
    fn drop(&mut self) {
        // Errors cannot be reported from a drop; `Db::close` reports them.
        let _ = self.0.close();
    }
}

impl std::ops::Deref for Db {
    type Target = Keyspace;

    /// The default keyspace: every read and write of a [`Keyspace`]
    /// (`get`, `set`, `range`, `scan`, ...) works on a `Db` directly and
    /// addresses it.
    fn deref(&self) -> &Keyspace {
        &self.default
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.inner.core.dir)
            .finish_non_exhaustive()
    }
}

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

/// The bounds of the keys that start with `prefix`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let end = match prefix_successor(prefix) {
        Some(s) => Bound::Excluded(s),
        None => Bound::Unbounded,
    };
    (Bound::Included(prefix.to_vec()), end)
}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` if there is none (the prefix is all 0xFF bytes or empty).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last != 0xFF {
            p.push(last + 1);
            return Some(p);
        }
    }
    None
}

impl Db {
    /// Open (and recover) the database in `path`, creating the directory if
    /// it is missing and [`Options::create_if_missing`] is set.
    ///
    /// Errors:
    /// - [`Error::InvalidArgument`]: bad options, `path` is not a
    ///   directory, or it is missing and `create_if_missing` is false;
    /// - [`Error::Locked`]: another handle, in this process or another,
    ///   has it open;
    /// - [`Error::Corruption`]: damage that the recovery mode does not
    ///   tolerate, naming file and offset; nothing on disk is changed;
    /// - [`Error::Io`]: the OS refused (permissions, no space, ...).
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        Db::open_with_fs(path, opts, fs::default_fs())
    }

    /// [`Db::open`] on a custom file system (fault injection in tests).
    pub fn open_with_fs(
        path: impl AsRef<Path>,
        opts: Options,
        fs: Arc<dyn FileSystem>,
    ) -> Result<Db> {
        opts.validate()?;
        let dir = path.as_ref().to_path_buf();
        let (lock, rec): (Box<dyn fs::DirLock>, _) = if opts.read_only {
            (
                Box::new(engine::NoLock),
                recover_read_only(fs.as_ref(), &dir, &opts)?,
            )
        } else {
            let lock = engine::open_directory(fs.as_ref(), &dir, opts.create_if_missing)?;
            (lock, recovery::recover(fs.as_ref(), &dir, &opts, false)?)
        };
        let wal_bytes = rec.stats.bytes_replayed;
        let core = Core::new(dir, fs, lock, KIND_KV, &opts, rec.resume, rec.stats)?;
        let inner = Arc::new(Inner {
            core,
            mem: RwLock::new(MemState {
                table: rec.mem,
                closed: false,
            }),
            ddl: Mutex::new(()),
            attached: Mutex::new(Vec::new()),
            checkpoint: Mutex::new(CheckpointState {
                snapshots: rec.snapshots,
                good: rec.loaded_snapshot,
            }),
            checkpoint_running: AtomicBool::new(false),
            wal_bytes_since_checkpoint: AtomicU64::new(wal_bytes),
            checkpoints: AtomicU64::new(0),
            checkpoint_pause_micros: AtomicU64::new(0),
            groups: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            db_id: rec.db_id,
            opts,
            metrics: Recorder::default(),
            opened: std::time::Instant::now(),
            last_checkpoint: Mutex::new(std::time::Instant::now()),
            ticker: Arc::default(),
        });
        if let Some(every) = inner.opts.checkpoint_interval {
            if inner.core.fs.background_threads() && !inner.opts.read_only {
                let (weak, ticker) = (Arc::downgrade(&inner), Arc::clone(&inner.ticker));
                std::thread::Builder::new()
                    .name("keyval-checkpoint".into())
                    .spawn(move || run_ticker(weak, ticker, every))
                    .map_err(|e| Error::io(&inner.core.dir, e))?;
            }
        }
        let db = Db {
            default: Keyspace {
                inner: Arc::clone(&inner),
                id: 0,
                name: "".into(),
            },
            _handle: Arc::new(Handle(Arc::clone(&inner))),
            inner,
        };
        if rec.salvaged && !db.inner.opts.read_only {
            // Make the salvaged state the new baseline: a snapshot of it,
            // and nothing older that a later open could trip over again.
            // (Not for a read-only open, which changes nothing: it only
            // shows what survives.)
            db.inner.checkpoint_now()?;
            db.inner.drop_history()?;
        }
        Ok(db)
    }

    /// The value of type `T` attached to this store, created with
    /// `T::default()` on first use; every clone of this `Db` and every call
    /// get the same one. For layers built on `Db` that need one piece of
    /// state per store (the document collections' write lock).
    pub(crate) fn attached<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut list = self.inner.attached.lock();
        for a in list.iter() {
            if let Ok(t) = Arc::clone(a).downcast::<T>() {
                return t;
            }
        }
        let t = Arc::new(T::default());
        list.push(Arc::clone(&t) as Arc<dyn std::any::Any + Send + Sync>);
        t
    }

    /// The directory this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.core.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// Apply `batch` atomically: after a crash either every operation is
    /// present or none. An empty batch is a no-op. A batch may write to
    /// several keyspaces ([`WriteBatch::put_in`]). Errors as [`Db::set`],
    /// plus [`Error::NotFound`] if it writes to a dropped keyspace; if any
    /// operation is invalid, nothing is applied.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        self.inner.write(batch, &WriteOptions::default())
    }

    /// [`Db::write`] with per-write options. Errors as [`Db::write`].
    pub fn write_opt(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        self.inner.write(batch, opts)
    }

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
    /// [`Options::keep_snapshots`] and the WAL segments the oldest kept
    /// snapshot covers. Writers and readers keep running while the snapshot
    /// is written; they pause only to freeze the index (O(1)) and to merge
    /// the writes made meanwhile back in small chunks.
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

    /// The keyspace `name`, created (durably) if it does not exist.
    ///
    /// Errors: [`Error::InvalidArgument`] (a name of 0 or more than 255
    /// bytes), [`Error::Closed`], [`Error::Poisoned`], [`Error::Io`] (as
    /// [`Db::set`], when it had to be created).
    pub fn keyspace(&self, name: &str) -> Result<Keyspace> {
        self.inner.keyspace(name, true)
    }

    /// Create the keyspace `name` if it does not exist (idempotent) and
    /// return it. The same as [`Db::keyspace`].
    pub fn create_keyspace(&self, name: &str) -> Result<Keyspace> {
        self.inner.keyspace(name, true)
    }

    /// The existing keyspace `name`.
    ///
    /// Errors: [`Error::NotFound`] if it does not exist,
    /// [`Error::InvalidArgument`] (bad name), [`Error::Closed`].
    pub fn open_keyspace(&self, name: &str) -> Result<Keyspace> {
        self.inner.keyspace(name, false)
    }

    /// The names of every named keyspace, sorted (bytewise). The default
    /// keyspace is not listed. Errors: [`Error::Closed`].
    pub fn list_keyspaces(&self) -> Result<Vec<String>> {
        self.inner
            .read(|t| t.names().into_iter().map(|(n, _)| n).collect())
    }

    /// Drop the keyspace `name` and every key in it, atomically and
    /// durably (one WAL record). Returns whether it existed. Handles to it
    /// fail with [`Error::NotFound`] afterwards. The keys are removed from
    /// memory while the index's write lock is held: O(keys in it).
    ///
    /// Errors: [`Error::InvalidArgument`] (bad name), [`Error::Closed`],
    /// [`Error::Poisoned`], [`Error::Io`] (as [`Db::set`]).
    pub fn drop_keyspace(&self, name: &str) -> Result<bool> {
        self.inner.drop_keyspace(name)
    }

    /// Close the store: wait for in-flight writes, make everything durable,
    /// write a final checkpoint (so the next open replays no WAL), and
    /// release the directory lock. Later calls on this handle return
    /// [`Error::Closed`]; closing twice is a no-op returning `Ok`. Also
    /// runs on drop (errors are then ignored).
    ///
    /// Errors: [`Error::Poisoned`] if the store was poisoned (everything is
    /// still released; no checkpoint is written), [`Error::Io`] if the final
    /// sync or checkpoint failed (released all the same; the WAL still holds
    /// every acknowledged write).
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    /// Online backup: write a consistent copy of the store into the new
    /// directory `dest`, while writers keep writing. `dest` opens as a
    /// store ([`Db::open`]) and holds every write acknowledged before the
    /// call (for a read-only handle: every write its view holds), and no
    /// part of any later one: it is the state at one LSN
    /// ([`crate::BackupInfo::lsn`]), so no batch is ever torn. Keyspaces
    /// and document collections are included.
    ///
    /// How: the index is frozen (the same short write-lock pause as a
    /// checkpoint's, reported in [`crate::BackupInfo::pause_micros`]) and
    /// written as one snapshot into a staging directory next to `dest`,
    /// with an empty first WAL segment (1 MiB at most); the
    /// directory is renamed to `dest` once everything is `fsync`ed.
    /// Writers never wait for the backup's I/O; checkpoints do (one
    /// snapshot is written at a time). A backup that is interrupted (error,
    /// kill, power cut) never leaves a silently partial store: `dest` is
    /// missing, or refuses to open with [`Error::Corruption`] (see
    /// [`crate::engine::backup`]). Works on a read-only handle too, which is how
    /// another process backs up a live store (`keyval DIR backup DEST`).
    ///
    /// Errors: [`Error::InvalidArgument`] (`dest` exists, its parent does
    /// not, or its staging path is taken); [`Error::Closed`];
    /// [`Error::Io`] (the store itself is unaffected: nothing in its
    /// directory is written).
    ///
    /// Thread safety: may run beside any other call; two backups of one
    /// store run one after the other.
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<crate::BackupInfo> {
        self.inner.backup(dest.as_ref())
    }
}

impl Db {
    /// Testing aid: stop as a killed process would. Nothing is flushed or
    /// synced, no checkpoint is written, records still in the `Buffered`
    /// buffer are lost, and the directory lock is released so that the same
    /// process can reopen the directory. Not for production use.
    #[doc(hidden)]
    pub fn crash_for_testing(self) {
        let inner = &self.inner;
        inner.core.begin_close();
        inner.ticker.stop();
        inner.close_index();
        inner.core.release();
    }
}

impl Inner {
    fn check_not_read_only(&self) -> Result<()> {
        if self.opts.read_only {
            return Err(Error::InvalidArgument(
                "the store is open read-only (Options::read_only)".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(Error::InvalidArgument("empty key".into()));
        }
        if key.len() > self.opts.max_key_size as usize {
            return Err(Error::InvalidArgument(format!(
                "key of {} bytes exceeds max_key_size {}",
                key.len(),
                self.opts.max_key_size
            )));
        }
        Ok(())
    }

    /// Delete `key` from keyspace `id` (0: the default one). An absent key
    /// writes nothing, after the same checks as a write; the delete is then
    /// ordered at the moment it found the key absent.
    pub(crate) fn delete_in(
        self: &Arc<Self>,
        id: u32,
        key: &[u8],
        opts: &WriteOptions,
    ) -> Result<()> {
        self.check_key(key)?;
        self.core.check_writable()?;
        self.check_not_read_only()?;
        if !self.read_in(id, |t| t.get(id, key).is_some())? {
            return Ok(());
        }
        let mut b = WriteBatch::new();
        if id == 0 {
            b.delete(key);
        } else {
            b.delete_in_id(id, key);
        }
        self.write(b, opts)
    }

    /// Validate and commit `batch` at the durability `opts` ask for, with
    /// metrics. Errors as [`Db::write`].
    pub(crate) fn write(self: &Arc<Self>, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        let m = &self.metrics;
        let t0 = m.start();
        let bytes = batch.encoded_len() as u64;
        let r = self.validate(&batch).and_then(|(puts, deletes)| {
            self.write_validated(batch, opts)?;
            m.wrote(puts, deletes, bytes);
            Ok(())
        });
        m.finish(OpKind::Write, t0, &r);
        r
    }

    /// One pass over `batch`: every key and value within the limits.
    /// Returns the numbers of puts and deletes.
    ///
    /// Errors: `InvalidArgument`.
    fn validate(&self, batch: &WriteBatch) -> Result<(u64, u64)> {
        let (mut puts, mut deletes) = (0, 0);
        let mut spaces: Vec<u32> = Vec::new();
        for op in batch.ops() {
            self.check_key(op.key())?;
            if let crate::format::batch::Op::PutIn(0, ..)
            | crate::format::batch::Op::DeleteIn(0, _) = op
            {
                // Id 0 in the named table is the catalog; the default
                // keyspace is written with kinds 1 and 2.
                return Err(Error::InvalidArgument(
                    "keyspace id 0 in a put-in or delete-in operation (the default keyspace uses put and delete)".into(),
                ));
            }
            match op {
                crate::format::batch::Op::Put(_, v) | crate::format::batch::Op::PutIn(_, _, v) => {
                    if let crate::format::batch::Op::PutIn(id, _, _) = op {
                        if spaces.last() != Some(&id) {
                            spaces.push(id);
                        }
                    }
                    if v.len() > self.opts.max_value_size as usize {
                        return Err(Error::InvalidArgument(format!(
                            "value of {} bytes exceeds max_value_size {}",
                            v.len(),
                            self.opts.max_value_size
                        )));
                    }
                    puts += 1;
                }
                crate::format::batch::Op::Delete(_) => deletes += 1,
                crate::format::batch::Op::DeleteIn(id, _) => {
                    if spaces.last() != Some(&id) {
                        spaces.push(id);
                    }
                    deletes += 1;
                }
                crate::format::batch::Op::CreateKeyspace(..)
                | crate::format::batch::Op::DropKeyspace(..) => {
                    return Err(Error::InvalidArgument(
                        "keyspaces are created and dropped with Db::create_keyspace and Db::drop_keyspace, not in a batch".into(),
                    ));
                }
            }
        }
        if !spaces.is_empty() {
            let m = self.mem.read();
            if let Some(id) = spaces.iter().find(|id| !m.table.is_live(**id)) {
                return Err(Error::NotFound(format!(
                    "keyspace id {id} does not exist (it was dropped)"
                )));
            }
        }
        if batch.encoded_len() > (u32::MAX as usize) - 64 {
            return Err(Error::InvalidArgument("batch larger than 4 GiB".into()));
        }
        Ok((puts, deletes))
    }

    fn write_validated(self: &Arc<Self>, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        let inner = self;
        let durability = opts.durability.unwrap_or(inner.opts.durability);
        inner.core.check_writable()?;
        inner.check_not_read_only()?;
        if batch.is_empty() {
            return Ok(());
        }
        inner.core.commit.submit(
            Queued {
                payload: batch.into_payload(),
                durability,
            },
            |group| inner.lead(group),
        )?;
        inner.maybe_auto_checkpoint();
        Ok(())
    }

    pub(crate) fn scan_bounds(
        &self,
        id: u32,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<u64> {
        let m = &self.metrics;
        let t0 = m.start();
        let (mut count, mut bytes) = (0u64, 0u64);
        let mut resume: Option<Vec<u8>> = None;
        let r = loop {
            let from = match &resume {
                Some(k) => Bound::Excluded(&k[..]),
                None => start,
            };
            let (mut in_chunk, mut stopped) = (0usize, false);
            let mut last: Option<Vec<u8>> = None;
            let r = self.read_in(id, |t| {
                t.visit(id, from, end, |k, v| {
                    count += 1;
                    bytes += (k.len() + v.len()) as u64;
                    in_chunk += 1;
                    if !f(k, v) {
                        stopped = true;
                        return false;
                    }
                    if in_chunk == ITER_CHUNK {
                        last = Some(k.to_vec());
                        return false;
                    }
                    true
                })
            });
            if r.is_err() || stopped || last.is_none() {
                break r;
            }
            resume = last;
        };
        m.scanned(count, bytes);
        m.finish(OpKind::Scan, t0, &r);
        r.map(|()| count)
    }

    /// Run `f` on the index under its read lock. Errors: [`Error::Closed`].
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Tables) -> R) -> Result<R> {
        let m = self.mem.read();
        if m.closed {
            return Err(Error::Closed);
        }
        Ok(f(&m.table))
    }

    /// [`Inner::read`] that first checks that keyspace `id` is live.
    /// Errors: [`Error::Closed`], [`Error::NotFound`] (dropped).
    pub(crate) fn read_in<R>(&self, id: u32, f: impl FnOnce(&Tables) -> R) -> Result<R> {
        self.read(|t| t.is_live(id).then(|| f(t)))?
            .ok_or_else(|| Error::NotFound(format!("keyspace id {id} was dropped")))
    }

    /// Get in keyspace `id`, with metrics. See [`Db::get_with`].
    pub(crate) fn get_in<R>(
        &self,
        id: u32,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        let m = &self.metrics;
        if m.sample_get() {
            return self.get_in_timed(id, key, f);
        }
        // Not timed: see crate::engine::metrics (timing every get halved their rate).
        let r = self.check_key(key).and_then(|()| {
            self.read_in(id, |t| {
                let v = t.get(id, key);
                m.got(v.map(|v| v.len()));
                f(v)
            })
        });
        if let Err(e) = &r {
            m.error(e);
        }
        r
    }

    /// [`Inner::get_in`] for the point reads whose latency is sampled. The
    /// lookup is written out in both functions on purpose: a version that
    /// shared it through an `#[inline(always)]` helper ran random gets at
    /// 1.22-1.37M/s against 1.90-2.01M/s (getbench, 1M keys, side by side).
    #[cold]
    #[inline(never)]
    fn get_in_timed<R>(
        &self,
        id: u32,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        let m = &self.metrics;
        let t0 = m.start();
        let r = self.check_key(key).and_then(|()| {
            self.read_in(id, |t| {
                let v = t.get(id, key);
                m.got(v.map(|v| v.len()));
                f(v)
            })
        });
        m.finish(OpKind::Get, t0, &r);
        r
    }

    /// Get many keys in keyspace `id` under one read lock, with metrics
    /// (each key counts as a point read; one latency sample per call). See
    /// [`Db::get_many_with`].
    pub(crate) fn get_many_in<K: AsRef<[u8]>>(
        &self,
        id: u32,
        keys: &[K],
        mut f: impl FnMut(usize, Option<&[u8]>),
    ) -> Result<()> {
        let m = &self.metrics;
        let t0 = m.start();
        let r = keys
            .iter()
            .try_for_each(|k| self.check_key(k.as_ref()))
            .and_then(|()| {
                self.read_in(id, |t| {
                    for (i, k) in keys.iter().enumerate() {
                        let v = t.get(id, k.as_ref());
                        m.got(v.map(|v| v.len()));
                        f(i, v);
                    }
                })
            });
        m.finish(OpKind::Get, t0, &r);
        r
    }

    /// Live keys and bytes of keyspace `id`.
    pub(crate) fn keyspace_stats(&self, id: u32) -> Result<KeyspaceStats> {
        self.read_in(id, |t| t.stats(id).unwrap_or_default())
    }

    /// Open keyspace `name`, creating it if `create` is set.
    pub(crate) fn keyspace(self: &Arc<Self>, name: &str, create: bool) -> Result<Keyspace> {
        keyspace::check_name(name)?;
        let handle = |id| Keyspace {
            inner: Arc::clone(self),
            id,
            name: name.into(),
        };
        if let Some(id) = self.read(|t| t.lookup(name))? {
            return Ok(handle(id));
        }
        if !create {
            return Err(Error::NotFound(format!("no keyspace named {name:?}")));
        }
        let _ddl = self.ddl.lock();
        // Another thread may have created it before we took the lock.
        let (existing, id) = self.read(|t| (t.lookup(name), t.next_id()))?;
        if let Some(id) = existing {
            return Ok(handle(id));
        }
        if id == u32::MAX {
            return Err(Error::InvalidArgument("keyspace ids exhausted".into()));
        }
        let mut b = WriteBatch::new();
        b.keyspace_op(true, id, name);
        self.write_validated(b, &WriteOptions::default())?;
        Ok(handle(id))
    }

    pub(crate) fn drop_keyspace(self: &Arc<Self>, name: &str) -> Result<bool> {
        keyspace::check_name(name)?;
        let _ddl = self.ddl.lock();
        let Some(id) = self.read(|t| t.lookup(name))? else {
            return Ok(false);
        };
        let mut b = WriteBatch::new();
        b.keyspace_op(false, id, name);
        self.write_validated(b, &WriteOptions::default())?;
        Ok(true)
    }

    /// Leader of a commit group: write, bring the group to the strongest
    /// durability level any member asked for, apply in LSN order.
    fn lead(&self, group: Vec<Queued>) -> Result<()> {
        self.core.poison.check()?;
        self.metrics.group(group.len());
        let durability = group
            .iter()
            .map(|q| q.durability)
            .max()
            .unwrap_or(self.opts.durability);
        let mut wal = self.core.wal.lock();
        let records: Vec<(RecordType, &[u8])> = group
            .iter()
            .map(|q| (RecordType::KvBatch, &q.payload[..]))
            .collect();
        let first = self
            .core
            .poison_on_err(wal.append_at(&records, None, durability))?;
        let bytes: u64 = group
            .iter()
            .map(|q| crate::format::record::encoded_len(q.payload.len()) as u64)
            .sum();
        // The group's records end at the writer's last LSN (a rotation may
        // have put a segment-link record between two of them).
        let last = wal.next_lsn() - 1;
        debug_assert!(last >= first + group.len() as u64 - 1);
        let mut m = self.mem.write();
        for Queued { payload: p, .. } in &group {
            // Built by WriteBatch and validated by Db::write: always decodes.
            let r = m.table.apply_batch(p).map_err(|why| {
                Error::corruption(
                    &self.core.dir,
                    None,
                    format!("a queued batch is malformed in memory: {why}"),
                )
            });
            self.core.poison_on_err(r)?;
        }
        m.table.set_applied_lsn(last);
        drop(m);
        drop(wal);
        self.wal_bytes_since_checkpoint
            .fetch_add(bytes, Ordering::Relaxed);
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(group.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn maybe_auto_checkpoint(self: &Arc<Self>) {
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
    fn checkpoint_now(&self) -> Result<()> {
        self.check_not_read_only()?;
        let t0 = self.metrics.start();
        let r = self.checkpoint_locked();
        self.metrics.finish(OpKind::Checkpoint, t0, &r);
        r
    }

    fn checkpoint_locked(&self) -> Result<()> {
        let mut ck = self.checkpoint.lock();
        // WAL bytes this snapshot covers (a group applied just before the
        // freeze may add its bytes just after: counted once more, which
        // only brings the next checkpoint slightly forward).
        let bytes_at_freeze = self.wal_bytes_since_checkpoint.load(Ordering::Relaxed);
        let (frozen, lsn, pause) = self.freeze(&ck)?;
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
                        checkpoint::Section::new(&frozen.default),
                        checkpoint::Section::new(&frozen.named),
                    ],
                )
                .map(Some)
            })
        };
        drop(frozen);
        let pause = pause.max(self.unfreeze(&ck));
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

    /// Freeze the index for a snapshot (checkpoint or backup): writers go
    /// on into a delta while the frozen tables are read without a lock.
    /// Needs the checkpoint lock (one freeze at a time). Returns the
    /// frozen tables, the LSN they cover and how long the write lock was
    /// held. Errors: [`Error::Closed`].
    fn freeze(&self, _ck: &CheckpointState) -> Result<(FrozenTables, u64, std::time::Duration)> {
        let t = std::time::Instant::now();
        let mut m = self.mem.write();
        if m.closed {
            return Err(Error::Closed);
        }
        let frozen = m.table.freeze();
        Ok((frozen, m.table.applied_lsn(), t.elapsed()))
    }

    /// Merge the delta back after [`Inner::freeze`] (once the frozen tables
    /// are dropped), a few hundred entries per write lock. Returns the
    /// longest time the lock was held.
    fn unfreeze(&self, _ck: &CheckpointState) -> std::time::Duration {
        let mut pause = std::time::Duration::ZERO;
        loop {
            let t = std::time::Instant::now();
            let done = self.mem.write().table.merge_step(512);
            pause = pause.max(t.elapsed());
            if done {
                return pause;
            }
        }
    }

    /// See [`Db::backup`].
    fn backup(&self, dest: &Path) -> Result<crate::BackupInfo> {
        let fs = self.core.fs.as_ref();
        if self.core.is_closed() {
            return Err(Error::Closed);
        }
        let mut staging = crate::engine::backup::Staging::begin(fs, dest)?;
        let ck = self.checkpoint.lock();
        let (frozen, lsn, pause) = self.freeze(&ck)?;
        let written = checkpoint::write(
            fs,
            &staging.dir,
            self.db_id,
            lsn,
            [
                checkpoint::Section::new(&frozen.default),
                checkpoint::Section::new(&frozen.named),
            ],
        );
        drop(frozen);
        let pause = pause.max(self.unfreeze(&ck));
        drop(ck);
        staging.bytes += written?.bytes;
        // The log goes on from the snapshot in an empty first segment.
        let size = crate::wal::segment::first_size(self.opts.segment_size);
        let p = crate::wal::segment::prepare(fs, &staging.dir, KIND_KV, 1, size, self.db_id)?;
        crate::wal::segment::install(fs, &staging.dir, &p)?;
        staging.bytes += p.size;
        let bytes = staging.bytes;
        staging.finish()?;
        Ok(crate::BackupInfo {
            lsn,
            bytes,
            pause_micros: pause.as_micros() as u64,
        })
    }

    /// After a salvage: delete every snapshot but the newest verified one
    /// and every WAL segment but the active one, then fsync the directory,
    /// so the salvaged state is the whole history and a later open in any
    /// mode starts from it. Errors: [`Error::Io`] (the store is poisoned).
    fn drop_history(&self) -> Result<()> {
        let mut ck = self.checkpoint.lock();
        let keep = ck.good;
        let r = (|| {
            let listing = engine::list(self.core.fs.as_ref(), &self.core.dir)?;
            for lsn in listing.snapshots.iter().filter(|l| Some(**l) != keep) {
                let p = self.core.dir.join(checkpoint::file_name(*lsn));
                self.core.fs.remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
            let mut wal = self.core.wal.lock();
            wal.remove_segments_upto(u64::MAX)?;
            // Also every segment file the writer never adopted: one whose
            // header was damaged (salvage read its records but never
            // appends to it), left below the active segment.
            let active = wal.active_id();
            for id in listing.segments.iter().filter(|id| **id < active) {
                let p = self.core.dir.join(crate::wal::segment::file_name(*id));
                match self.core.fs.remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&p, e)),
                }
            }
            drop(wal);
            self.core
                .fs
                .sync_dir(&self.core.dir)
                .map_err(|e| Error::io(&self.core.dir, e))
        })();
        ck.snapshots = keep.into_iter().collect();
        self.core.poison_on_err(r)
    }

    fn close(&self) -> Result<()> {
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
    fn close_index(&self) {
        let _ck = self.checkpoint.lock();
        let mut m = self.mem.write();
        m.closed = true;
        m.table.clear();
    }
}

/// Iterator over a key range, from [`Db::range`], [`Db::prefix`] or
/// [`Db::iter`]. Yields `Ok((key, value))` in key order, or one
/// `Err(Error::Closed)` if the store is closed meanwhile.
///
/// Thread safety: `Send + Sync`; it owns a reference to the store and may
/// outlive the `Db` handle (it then reports `Closed`).
pub struct Iter {
    inner: Arc<Inner>,
    /// Keyspace id (0: the default keyspace).
    space: u32,
    next: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    buf: VecDeque<(Vec<u8>, Vec<u8>)>,
    done: bool,
    closed_reported: bool,
    /// Pairs to fetch next time.
    chunk: usize,
}

impl std::fmt::Debug for Iter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("next", &self.next)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// Pairs an iterator copies per lock hold: the first fetch takes
/// `ITER_FIRST_CHUNK` (short range reads copy little), each later one twice
/// the previous, up to `ITER_CHUNK`.
const ITER_CHUNK: usize = 256;
const ITER_FIRST_CHUNK: usize = 16;

impl Iter {
    /// An iterator over the keys of keyspace `space` in `range`.
    pub(crate) fn new<K: AsRef<[u8]>, R: RangeBounds<K>>(
        inner: Arc<Inner>,
        space: u32,
        range: R,
    ) -> Iter {
        let conv = |b: Bound<&K>| b.map(|k| k.as_ref().to_vec());
        Iter {
            inner,
            space,
            next: conv(range.start_bound()),
            end: conv(range.end_bound()),
            buf: VecDeque::new(),
            done: false,
            closed_reported: false,
            chunk: ITER_FIRST_CHUNK,
        }
    }
}

impl Iterator for Iter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.inner.core.is_closed() {
            // Report the close once, then end.
            if self.closed_reported {
                return None;
            }
            self.buf.clear();
            self.done = true;
            self.closed_reported = true;
            return Some(Err(Error::Closed));
        }
        if let Some(x) = self.buf.pop_front() {
            return Some(Ok(x));
        }
        if self.done {
            return None;
        }
        let t0 = self.inner.metrics.start();
        let chunk = {
            let m = self.inner.mem.read();
            if m.closed {
                self.done = true;
                self.closed_reported = true;
                return Some(Err(Error::Closed));
            }
            let start = self.next.as_ref().map(|k| &k[..]);
            let end = self.end.as_ref().map(|k| &k[..]);
            if !m.table.is_live(self.space) {
                // The keyspace was dropped: it has no more keys.
                self.done = true;
                return None;
            }
            m.table.range(self.space, start, end, self.chunk)
        };
        let bytes = chunk.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
        self.inner.metrics.scanned(chunk.len() as u64, bytes);
        self.inner.metrics.finish(OpKind::Scan, t0, &Ok(()));
        if chunk.len() < self.chunk {
            self.done = true;
        }
        self.chunk = (self.chunk * 2).min(ITER_CHUNK);
        if let Some((k, _)) = chunk.last() {
            self.next = Bound::Excluded(k.clone());
        }
        self.buf.extend(chunk);
        self.buf.pop_front().map(Ok)
    }
}
