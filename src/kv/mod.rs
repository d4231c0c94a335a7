//! [`Db`]: the key-value store, its handle and its shared state
//! ([`Inner`]). Each concern has its file: `open` (recovery at open),
//! `write` (validation and group commit), `read` (point reads and scans),
//! `iter`, `checkpointer` (when and how checkpoints run, retention),
//! `checkpoint` (the checkpoint file), `backup`, `close`, `stats`;
//! `keyspace` (the handle every read and write goes through) and `batch`.

mod backup;
pub mod batch;
pub mod checkpoint;
mod checkpointer;
mod close;
mod iter;
pub mod keyspace;
mod open;
mod read;
pub mod reclaim;
pub mod recovery;
pub mod snapshot;
mod stats;
pub mod transaction;
mod values;
mod write;

pub use crate::engine::metrics::Stats;
use checkpointer::{run_ticker, Ticker};
pub use iter::Iter;
use open::recover_read_only;
pub use snapshot::Snapshot;
pub use transaction::{Transaction, UPDATE_MAX_ATTEMPTS};

use crate::engine::metrics::Recorder;
use crate::engine::{self, Core};
use crate::error::{Error, Result};
use crate::fs::{self, FileSystem};
use crate::index::Tables;
use crate::kv::batch::WriteBatch;
use crate::kv::keyspace::Keyspace;
use crate::options::{Durability, Options, WriteOptions};
use crate::wal::segment::KIND_KV;
use parking_lot::{Mutex, RwLock};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

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
    /// The segments each kept checkpoint's separated values point into,
    /// by LSN (a checkpoint missing here is one whose list could not be
    /// read: it keeps every segment).
    refs: std::collections::HashMap<u64, Vec<u64>>,
}

/// A batch waiting for its commit group: the encoded payload and the
/// durability level its writer asked for.
#[derive(Debug)]
struct Queued {
    payload: Vec<u8>,
    durability: Durability,
    /// A transaction's read set, validated by the leader before the batch
    /// is written.
    check: Option<Box<transaction::ReadSet>>,
}

pub(crate) struct Inner {
    /// Directory, lock, WAL, group commit, poison, closed flag, recovery.
    core: Core<Queued>,
    opts: Options,
    mem: RwLock<MemState>,
    /// Open snapshots and transactions (lock it before `mem`, never after).
    registry: Mutex<snapshot::Registry>,
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
    /// read lock (to take its view).
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
    /// Reads separated values from the segments (see [`crate::vlog`]).
    vlog: crate::vlog::ValueLog,
    /// How far the WAL's bytes reached the files (for `vlog` reads).
    tail: Arc<crate::wal::writer::Tail>,
    /// Serializes reclaim passes.
    reclaiming: Mutex<()>,
    /// Segments and bytes reclaim moved since open.
    reclaimed_segments: AtomicU64,
    reclaimed_bytes: AtomicU64,
    /// Keys the salvage at open deleted because their separated value
    /// failed its CRC (added to `RecoveryStats::values_dropped`).
    salvage_dropped: AtomicU64,
    /// Bytes of the WAL segment files, and of the separated values the
    /// index points at, as the last commit group left them (for the space
    /// cap writers are paced by, `kv::reclaim`).
    disk_bytes: AtomicU64,
    separated_bytes: AtomicU64,
    /// Writes that waited for reclaim because the space cap was passed.
    space_stalls: AtomicU64,
}

/// A durable, ordered key-value store in one directory.
///
/// Every live key is held in memory (a copy-on-write B+tree, and a hash
/// index beside it for point reads), with every value shorter than
/// [`Options::value_separation_threshold`] (default 1 KiB). Longer values
/// stay in the WAL segments where they were written: the index holds a
/// 24-byte pointer, and a read is one positioned read checked against the
/// value's CRC (or a hit in the value cache of [`Options::memory_budget`]
/// bytes). Plan memory for the key bytes, the short values, about 80-86
/// bytes per entry (`ENTRY_OVERHEAD_ESTIMATE` is 84; measured 80 at 100k
/// entries and 86 at 1M, `docs/bench/index-change.md`), 24 per separated
/// value and the cache budget, more while snapshots pin old versions. On
/// disk there are only the write-ahead log and the checkpoint files (see
/// `docs/format.md`).
///
/// Reads and writes are those of its default keyspace: `Db` dereferences
/// to a [`Keyspace`] (`db.get(k)`, `db.set(k, v)`, `db.range(..)`; key and
/// value limits are documented there). What is not a keyspace's (batches
/// across keyspaces, keyspace creation, checkpoints, stats, backup,
/// close) is here.
///
/// Thread safety: `Db` is `Send + Sync` and cheap to clone: clones share
/// one store, which closes when [`Db::close`] is called on any of them or
/// when the last clone (or document [`crate::Collection`]) is dropped.
/// Concurrent writers are group-committed. Readers never wait for an
/// fsync.
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
        if !opts.read_only {
            return Db::open_once(path.as_ref(), opts, fs);
        }
        // A read-only open holds every segment its index points into (see
        // below); a writer's reclaim may delete one between the recovery
        // and that: open again, as `recover_read_only` does for a
        // vanished WAL file.
        let mut attempt = 0;
        loop {
            match Db::open_once(path.as_ref(), opts.clone(), Arc::clone(&fs)) {
                Err(Error::Corruption { .. }) if attempt < 4 && fs.background_threads() => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10 << attempt));
                }
                r => return r,
            }
        }
    }

    fn open_once(path: &Path, opts: Options, fs: Arc<dyn FileSystem>) -> Result<Db> {
        opts.validate()?;
        let dir = path.to_path_buf();
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
        let tail = core.wal.lock().tail();
        let vlog = crate::vlog::ValueLog::new(Arc::clone(&core.fs), &core.dir, opts.memory_budget);
        if opts.read_only {
            // A writer beside it may reclaim and delete segments: keep a
            // handle to each one this view points into, so its values
            // stay readable (an unlinked file lives while it is open).
            for id in rec.mem.segments().keys() {
                vlog.hold(*id)?;
            }
        }
        let inner = Arc::new(Inner {
            vlog,
            tail,
            reclaiming: Mutex::new(()),
            reclaimed_segments: AtomicU64::new(0),
            reclaimed_bytes: AtomicU64::new(0),
            salvage_dropped: AtomicU64::new(0),
            disk_bytes: AtomicU64::new(0),
            separated_bytes: AtomicU64::new(0),
            space_stalls: AtomicU64::new(0),
            core,
            mem: RwLock::new(MemState {
                table: rec.mem,
                closed: false,
            }),
            registry: Mutex::default(),
            ddl: Mutex::new(()),
            attached: Mutex::new(Vec::new()),
            checkpoint: Mutex::new(CheckpointState {
                snapshots: rec.snapshots,
                // After a salvage the loaded checkpoint may hold what the
                // salvage dropped: the baseline checkpoint rewrites it.
                good: rec.loaded_snapshot.filter(|_| !rec.salvaged),
                refs: rec.checkpoint_refs,
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
            // Make the salvaged state the new baseline: its values moved
            // out of the old segments, a snapshot of it, and nothing older
            // that a later open could trip over again. (Not for a
            // read-only open, which changes nothing: it only shows what
            // survives.)
            db.inner.relocate_all()?;
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
    /// several keyspaces ([`WriteBatch::put_in`]). Errors as [`Keyspace::set`],
    /// plus [`Error::NotFound`] if it writes to a dropped keyspace; if any
    /// operation is invalid, nothing is applied.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        self.inner.write(batch, &WriteOptions::default())
    }

    /// [`Db::write`] with per-write options. Errors as [`Db::write`].
    pub fn write_opt(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        self.inner.write(batch, opts)
    }

    /// The keyspace `name`, created (durably) if it does not exist.
    ///
    /// Errors: [`Error::InvalidArgument`] (a name of 0 or more than 255
    /// bytes), [`Error::Closed`], [`Error::Poisoned`], [`Error::Io`] (as
    /// [`Keyspace::set`], when it had to be created).
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
    /// [`Error::Poisoned`], [`Error::Io`] (as [`Keyspace::set`]).
    pub fn drop_keyspace(&self, name: &str) -> Result<bool> {
        self.inner.drop_keyspace(name)
    }

    /// Close the store: wait for in-flight writes, make everything durable,
    /// write a final checkpoint (so the next open replays no WAL), and
    /// release the directory lock. Later calls on this handle, its clones and its keyspaces return
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
    /// How: a view of the copy-on-write index is taken (the index's read
    /// lock for O(1), reported in [`crate::BackupInfo::pause_micros`]) and
    /// written as one snapshot into a staging directory next to `dest`,
    /// with an empty first WAL segment (1 MiB at most); the
    /// directory is renamed to `dest` once everything is `fsync`ed.
    /// Writers never wait for the backup's I/O; checkpoints do (one
    /// snapshot is written at a time). A backup that is interrupted (error,
    /// kill, power cut) never leaves a silently partial store: `dest` is
    /// missing, or refuses to open with [`Error::Corruption`] (see
    /// `docs/format.md`, backups). Works on a read-only handle too, which is how
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
    /// Only with the `testing` feature.
    #[cfg(feature = "testing")]
    pub fn crash_for_testing(self) {
        let inner = &self.inner;
        inner.core.begin_close();
        inner.ticker.stop();
        inner.close_index();
        inner.core.release();
    }
}

impl Inner {}
