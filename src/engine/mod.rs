//! What every store kind shares ([`crate::Db`] and [`crate::raft::RaftLog`]):
//! the directory and its lock, the WAL writer behind a group-commit queue,
//! poisoning, the closed flag, and the facts of the last recovery. Each kind
//! wraps one [`Core`] with its own state (the memtable and checkpoints; the
//! Raft index) and its own recovery.
//!
//! The lifecycle every kind follows:
//!
//! 1. [`open_directory`]: check or create the directory, take its lock;
//! 2. the kind recovers from [`list`]ed files and gets a resume point;
//! 3. [`Core::new`] starts the WAL writer there;
//! 4. writes go through `commit` to the kind's group leader, which appends
//!    under `wal` and turns any failure into poison ([`Core::poison_on_err`]);
//! 5. close: [`Core::begin_close`] (no new writes, the group in flight
//!    finishes), the kind's own final steps, then [`Core::release`].

pub mod atomic_file;
pub mod backup;
pub mod metrics;
pub mod poison;

use crate::engine::poison::Poison;
use crate::error::{Error, Result};
use crate::format::checkpoint;
use crate::fs::{DirLock, FileSystem};
use crate::options::Options;
use crate::wal::commit::GroupCommit;
use crate::wal::replay::RecoveryStats;
use crate::wal::segment;
use crate::wal::writer::{ResumePoint, WalWriter};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Name of the lock file inside a store directory.
pub const LOCK_FILE: &str = "LOCK";

/// Make sure `dir` is a directory (creating it, and syncing its parent, if
/// allowed) and take its lock (`LOCK` and the directory itself, see
/// `docs/format.md`).
///
/// Errors: `InvalidArgument` (empty path, not a directory, missing and not
/// allowed to create), `Locked`, `Io`.
pub(crate) fn open_directory(
    fs: &dyn FileSystem,
    dir: &Path,
    create: bool,
) -> Result<Box<dyn DirLock>> {
    if dir.as_os_str().is_empty() {
        return Err(Error::InvalidArgument("empty path".into()));
    }
    if !fs.is_dir(dir).map_err(|e| Error::io(dir, e))? {
        if fs.exists(dir).map_err(|e| Error::io(dir, e))? {
            return Err(Error::InvalidArgument(format!(
                "{} exists and is not a directory",
                dir.display()
            )));
        }
        if !create {
            return Err(Error::InvalidArgument(format!(
                "{} does not exist",
                dir.display()
            )));
        }
        fs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs.sync_dir(parent).map_err(|e| Error::io(parent, e))?;
        }
    }
    let lock_path = dir.join(LOCK_FILE);
    match fs.lock(&lock_path) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            Err(Error::Locked(dir.to_path_buf()))
        }
        Err(e) => Err(Error::io(&lock_path, e)),
    }
}

/// The "lock" of a read-only open: none (a read-only handle takes no
/// directory lock, so that it works beside a writer).
#[derive(Debug)]
pub(crate) struct NoLock;

impl crate::fs::DirLock for NoLock {}

/// The files of a store directory, by kind.
#[derive(Debug, Default)]
pub struct DirListing {
    /// Segment ids, ascending.
    pub segments: Vec<u64>,
    /// Snapshot LSNs (key-value store), ascending.
    pub snapshots: Vec<u64>,
    /// Leftover temporary files (unfinished snapshots or segments).
    pub leftovers: Vec<String>,
}

/// Classify the entries of `dir`. Unknown names are ignored.
///
/// Errors: `Io` if the directory cannot be listed; `Corruption` if it is
/// an unfinished backup (it holds [`crate::engine::backup::INCOMPLETE_MARKER`]), so
/// that no open, recovery or verify ever takes it for a store.
pub fn list(fs: &dyn FileSystem, dir: &Path) -> Result<DirListing> {
    let mut l = DirListing::default();
    for name in fs.list_dir(dir).map_err(|e| Error::io(dir, e))? {
        if name == crate::engine::backup::INCOMPLETE_MARKER {
            return Err(crate::engine::backup::incomplete(dir));
        }
        if let Some(id) = segment::parse_file_name(&name) {
            l.segments.push(id);
        } else if let Some(lsn) = checkpoint::parse_file_name(&name) {
            l.snapshots.push(lsn);
        } else if name.ends_with(segment::PREP_SUFFIX)
            || (name.starts_with("snap-") && name.ends_with(checkpoint::TMP_SUFFIX))
        {
            l.leftovers.push(name);
        }
    }
    l.segments.sort_unstable();
    l.snapshots.sort_unstable();
    Ok(l)
}

/// The log kind of the store in `dir`, read from the header of its oldest
/// segment: [`segment::KIND_KV`] (a [`crate::Db`]) or
/// [`segment::KIND_RAFT`] (a [`crate::raft::RaftLog`]); `None` if it holds
/// no segment or the header is unreadable (then open reports why).
///
/// Errors: as [`list`]; `Io` if the segment cannot be read.
pub fn log_kind(fs: &dyn FileSystem, dir: &Path) -> Result<Option<u32>> {
    let Some(&id) = list(fs, dir)?.segments.first() else {
        return Ok(None);
    };
    let path = dir.join(segment::file_name(id));
    let f = fs
        .open(&path, crate::fs::OpenMode::Read)
        .map_err(|e| Error::io(&path, e))?;
    let mut head = [0u8; 16];
    if f.read_exact_at(&mut head, 0).is_err() || &head[..8] != segment::SEGMENT_MAGIC {
        return Ok(None);
    }
    Ok(Some(u32::from_le_bytes([
        head[12], head[13], head[14], head[15],
    ])))
}

/// Delete leftover temporary files found by [`list`] and fsync the
/// directory. Errors: `Io`.
pub(crate) fn remove_leftovers(fs: &dyn FileSystem, dir: &Path, l: &DirListing) -> Result<()> {
    if l.leftovers.is_empty() {
        return Ok(());
    }
    for name in &l.leftovers {
        let p = dir.join(name);
        fs.remove_file(&p).map_err(|e| Error::io(&p, e))?;
    }
    fs.sync_dir(dir).map_err(|e| Error::io(dir, e))
}

/// The shared part of an open store. `Op` is what the kind's writers queue
/// for group commit.
///
/// Thread safety: `Send + Sync`; `wal` is taken only by a group leader and
/// by maintenance (checkpoint, reclaim, stats), never while the kind's own
/// state lock is held for writing, except in that order (see
/// `docs/design.md`, lock order).
pub(crate) struct Core<Op> {
    pub(crate) dir: PathBuf,
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) commit: GroupCommit<Op>,
    pub(crate) wal: Mutex<WalWriter>,
    pub(crate) poison: Poison,
    closed: AtomicBool,
    lock: Mutex<Option<Box<dyn DirLock>>>,
    /// What the recovery at open found and did.
    pub(crate) recovery: RecoveryStats,
}

impl<Op> Core<Op> {
    /// Start the WAL writer of log `kind` at `resume` and assemble the core.
    ///
    /// Errors: `InvalidArgument` if the resume point has no segment.
    pub(crate) fn new(
        dir: PathBuf,
        fs: Arc<dyn FileSystem>,
        lock: Box<dyn DirLock>,
        kind: u32,
        opts: &Options,
        resume: Option<ResumePoint>,
        recovery: RecoveryStats,
    ) -> Result<Core<Op>> {
        let resume = resume
            .ok_or_else(|| Error::InvalidArgument("recovery returned no resume point".into()))?;
        let wal = WalWriter::new(
            Arc::clone(&fs),
            &dir,
            kind,
            opts.segment_size,
            opts.durability,
            resume,
        )?;
        Ok(Core {
            dir,
            fs,
            commit: GroupCommit::default(),
            wal: Mutex::new(wal),
            poison: Poison::default(),
            closed: AtomicBool::new(false),
            lock: Mutex::new(Some(lock)),
            recovery,
        })
    }

    /// Whether `close` (or a simulated crash) has begun.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Errors: `Closed`, `Poisoned`.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        self.poison.check()
    }

    /// Return `r`, poisoning the store first if it is an error (rule: after
    /// a failed write, fsync, rename or remove the state of unsynced data is
    /// unknown, so every later write must fail until the store is reopened).
    pub(crate) fn poison_on_err<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.poison.set(e);
        }
        r
    }

    /// Stop accepting writes; waits for a commit group in flight. Returns
    /// `false` if the store was already closing (close twice is a no-op).
    pub(crate) fn begin_close(&self) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.commit.close();
        true
    }

    /// The last step of close or of a simulated crash: close the WAL's
    /// files (a spare segment being prepared is deleted: it is not part of
    /// the log) and release the directory lock.
    pub(crate) fn release(&self) {
        self.wal.lock().close_files();
        self.lock.lock().take();
    }
}
