//! openraft storage on KeyVal (openraft `=0.9.25`, feature `storage-v2`).
//!
//! - [`LogStore`] implements [`RaftLogStorage`] over a
//!   [`keyval::raft::RaftLog`]: each openraft entry is one RaftLog entry
//!   (same index; the RaftLog term is the entry's leader term; the payload
//!   is the entry serialized with serde_json). Appends are durable before
//!   the flush callback fires; concurrent nodes in one process share
//!   nothing.
//! - [`StateMachine`] implements [`RaftStateMachine`] for [`TypeConfig`]
//!   (a string key-value store) over a [`keyval::Db`]: each `apply` call is
//!   one atomic, durable write batch holding the data changes, the last
//!   applied log id and the membership together. Snapshots are serialized
//!   in the same Db (`snapshot/current`), so a restarted node serves its
//!   last snapshot without rebuilding it.
//!
//! # Layout
//!
//! [`open`] takes one directory per node: `log/` (the RaftLog) and `sm/`
//! (the Db). Keys in `sm/`: `data/<key>` (application data),
//! `meta/applied` and `meta/membership` (JSON), `snapshot/current` (JSON
//! metadata length as u32 LE, the metadata, then the snapshot data).
//!
//! # Vote, committed and purged
//!
//! openraft's vote, committed log id and last purged log id are kept as
//! JSON in the RaftLog hard state's opaque vote bytes (with the term and
//! commit index in the hard state's own fields). `purge` saves the purged
//! log id durably *before* truncating the prefix; if the process dies in
//! between, [`open`] finishes the truncation.
//!
//! Blocking I/O (fdatasync) runs on tokio's blocking pool
//! (`spawn_blocking`), never on a runtime worker.

// openraft's traits require its (large) StorageError as the error type.
#![allow(clippy::result_large_err)]

use keyval::raft::{self as kraft, RaftLog};
use keyval::{Db, Keyspace, Options, WriteBatch};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftLogId, RaftLogReader,
    RaftSnapshotBuilder, RaftTypeConfig, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership, Vote,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Node ids are `u64`.
pub type NodeId = u64;

/// A client request: set, delete or compare-and-set a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Set `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Set `key` to `value` only if its current value is `expected`
    /// (`None`: only if the key is absent). The response's `previous` is
    /// the value the comparison saw, so the swap happened exactly when
    /// `previous == expected`.
    CompareAndSet {
        /// The key.
        key: String,
        /// The value the key must hold for the swap (`None`: absent).
        expected: Option<String>,
        /// The new value.
        value: String,
    },
}

/// The response to a [`Request`]: the key's previous value, if any.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Response {
    /// Previous value of the key.
    pub previous: Option<String>,
}

openraft::declare_raft_types!(
    /// openraft types of the KeyVal-backed key-value store: `u64` node ids,
    /// [`BasicNode`] addresses, snapshots as files (streamed), tokio.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = BasicNode,
        Entry = Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

type SErr = StorageError<NodeId>;

fn any(e: impl std::fmt::Display) -> AnyError {
    AnyError::error(e.to_string())
}

/// Open the log store and state machine of one node in `dir` (creating
/// `dir/log` and `dir/sm`), finishing a purge interrupted by a crash.
/// `opts` apply to both; the durability must be `Sync` (the default) or
/// `Os`.
///
/// Errors: those of [`keyval::Db::open`] and [`RaftLog::open`] (for
/// example `Locked` when another process has the node open), as a
/// [`StorageError`].
pub fn open(
    dir: impl AsRef<Path>,
    opts: Options,
) -> Result<(LogStore<TypeConfig>, StateMachine), SErr> {
    let dir = dir.as_ref();
    let log = LogStore::open(dir.join("log"), opts.clone())?;
    let sm = StateMachine::open(dir.join("sm"), opts)?;
    Ok((log, sm))
}

/// What openraft keeps beside the entries, stored in the hard state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
struct Meta<NID: openraft::NodeId> {
    vote: Option<Vote<NID>>,
    committed: Option<LogId<NID>>,
    purged: Option<LogId<NID>>,
}

impl<NID: openraft::NodeId> Default for Meta<NID> {
    fn default() -> Self {
        Meta {
            vote: None,
            committed: None,
            purged: None,
        }
    }
}

struct LogInner<C: RaftTypeConfig> {
    log: RaftLog,
    meta: Mutex<Meta<C::NodeId>>,
    counters: LogCounters,
}

/// How often a [`LogStore`] was truncated since it was opened (not
/// persisted), for operators and fault tests. Atomics: read them from any
/// thread (`Ordering::Relaxed` suffices; they are counts, not fences).
#[derive(Debug, Default)]
pub struct LogCounters {
    /// `purge` calls: prefix truncations after a snapshot.
    pub purges: AtomicU64,
    /// `truncate` calls: suffix truncations of conflicting entries.
    pub truncations: AtomicU64,
}

/// openraft [`RaftLogStorage`] (and [`RaftLogReader`]) on a KeyVal
/// [`RaftLog`]. Cloning gives another handle to the same log (openraft's
/// log reader). Thread-safe.
pub struct LogStore<C: RaftTypeConfig> {
    inner: Arc<LogInner<C>>,
    _c: PhantomData<C>,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            inner: self.inner.clone(),
            _c: PhantomData,
        }
    }
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    Entry<C>: Serialize + DeserializeOwned,
{
    /// Open (and recover) the log in `dir`.
    ///
    /// Errors: as [`RaftLog::open`]; `Corruption` if the stored openraft
    /// metadata cannot be decoded.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Self, StorageError<C::NodeId>> {
        let log = RaftLog::open(dir, opts).map_err(|e| StorageIOError::read_logs(any(e)))?;
        let meta: Meta<C::NodeId> = match log
            .hard_state()
            .map_err(|e| StorageIOError::read_vote(any(e)))?
        {
            Some(hs) => serde_json::from_slice(&hs.vote)
                .map_err(|e| StorageIOError::read_vote(any(format!("bad stored vote: {e}"))))?,
            None => Meta::default(),
        };
        // Finish a purge that was recorded but not yet applied.
        if let Some(p) = &meta.purged {
            let first = log
                .first_index()
                .map_err(|e| StorageIOError::read_logs(any(e)))?;
            if p.index >= first {
                log.truncate_prefix_with_term(p.index, p.leader_id.term)
                    .map_err(|e| StorageIOError::write_logs(any(e)))?;
            }
        }
        Ok(LogStore {
            inner: Arc::new(LogInner {
                log,
                meta: Mutex::new(meta),
                counters: LogCounters::default(),
            }),
            _c: PhantomData,
        })
    }

    /// The underlying KeyVal Raft log (for inspection).
    pub fn raft_log(&self) -> &RaftLog {
        &self.inner.log
    }

    /// Purge and truncate counts since this store was opened.
    pub fn counters(&self) -> &LogCounters {
        &self.inner.counters
    }

    /// Close the log (sync, release the directory lock). Later calls fail.
    pub fn close(&self) -> Result<(), StorageError<C::NodeId>> {
        self.inner
            .log
            .close()
            .map_err(|e| StorageIOError::write_logs(any(e)).into())
    }

    fn meta(&self) -> Meta<C::NodeId> {
        self.inner
            .meta
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Run `change` on the metadata and save it durably (blocking).
    fn save_meta(
        inner: &LogInner<C>,
        change: impl FnOnce(&mut Meta<C::NodeId>),
    ) -> Result<(), keyval::Error> {
        let mut m = inner.meta.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = m.clone();
        change(&mut next);
        let hs = kraft::HardState {
            term: next.vote.as_ref().map_or(0, |v| v.leader_id().term),
            vote: serde_json::to_vec(&next)
                .map_err(|e| keyval::Error::InvalidArgument(e.to_string()))?,
            commit: next.committed.as_ref().map_or(0, |c| c.index),
        };
        inner.log.save_hard_state(&hs)?;
        *m = next;
        Ok(())
    }

    fn decode(data: &[u8], index: u64) -> Result<C::Entry, StorageError<C::NodeId>> {
        serde_json::from_slice(data).map_err(|e| {
            StorageIOError::read_log_at_index(index, any(format!("undecodable entry: {e}"))).into()
        })
    }

    /// Append `entries` durably and return once they are on disk: the body
    /// of [`RaftLogStorage::append`], which then fires the flush callback.
    /// Entries at or below the last purged index are skipped (a snapshot
    /// covers them); the rest must continue the log.
    ///
    /// Errors: `InvalidArgument` from the log when the entries do not
    /// continue it, I/O errors (the log is then poisoned).
    pub async fn append_entries<I>(&self, entries: I) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry>,
    {
        // Entries at or below the purge point are already covered by a
        // snapshot and are never read again: skip them, so that the log
        // stays contiguous after the purge point.
        let purged = self.meta().purged.map(|p| p.index);
        let mut batch = Vec::new();
        for e in entries {
            let id = e.get_log_id();
            if purged.is_some_and(|p| id.index <= p) {
                continue;
            }
            let data = serde_json::to_vec(&e)
                .map_err(|err| StorageIOError::write_log_entry(id.clone(), any(err)))?;
            batch.push(kraft::Entry {
                index: id.index,
                term: id.leader_id.term,
                data,
            });
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.blocking(move |i| i.log.append(&batch))
            .await
            .map_err(|e| StorageIOError::write_logs(any(e)).into())
    }

    /// Run blocking `f` on tokio's blocking pool.
    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&LogInner<C>) -> R + Send + 'static,
    ) -> R {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .expect("a KeyVal storage task panicked")
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let lo = match range.start_bound() {
        Bound::Included(&x) => x,
        Bound::Excluded(&x) => x.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let hi = match range.end_bound() {
        Bound::Included(&x) => x.checked_add(1),
        Bound::Excluded(&x) => Some(x),
        Bound::Unbounded => None,
    };
    (lo, hi)
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    Entry<C>: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let log = &self.inner.log;
        let first = log
            .first_index()
            .map_err(|e| StorageIOError::read_logs(any(e)))?;
        let Some(last) = log
            .last_index()
            .map_err(|e| StorageIOError::read_logs(any(e)))?
        else {
            return Ok(Vec::new());
        };
        let (lo, hi) = bounds(&range);
        let lo = lo.max(first);
        let hi = hi.unwrap_or(u64::MAX).min(last + 1);
        if lo >= hi {
            return Ok(Vec::new());
        }
        let es = log
            .entries(lo, hi, u64::MAX)
            .map_err(|e| StorageIOError::read_logs(any(e)))?;
        es.iter().map(|e| Self::decode(&e.data, e.index)).collect()
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    Entry<C>: Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let purged = self.meta().purged;
        let last = self
            .inner
            .log
            .last_index()
            .map_err(|e| StorageIOError::read_logs(any(e)))?;
        let last_log_id = match last {
            Some(i) => {
                let e = self
                    .inner
                    .log
                    .entry(i)
                    .map_err(|e| StorageIOError::read_log_at_index(i, any(e)))?;
                Some(Self::decode(&e.data, i)?.get_log_id().clone())
            }
            None => purged.clone(),
        };
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let v = vote.clone();
        self.blocking(move |i| Self::save_meta(i, |m| m.vote = Some(v)))
            .await
            .map_err(|e| StorageIOError::write_vote(any(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.meta().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        self.blocking(move |i| Self::save_meta(i, |m| m.committed = committed))
            .await
            .map_err(|e| StorageIOError::write(any(e)).into())
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.meta().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let r = self.append_entries(entries).await;
        match r {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.inner
            .counters
            .truncations
            .fetch_add(1, Ordering::Relaxed);
        self.blocking(move |i| i.log.truncate_suffix(log_id.index))
            .await
            .map_err(|e| StorageIOError::write_logs(any(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let (upto, term) = (log_id.index, log_id.leader_id.term);
        self.inner.counters.purges.fetch_add(1, Ordering::Relaxed);
        self.blocking(move |i| {
            Self::save_meta(i, |m| {
                if m.purged.as_ref().is_none_or(|p| p.index < log_id.index) {
                    m.purged = Some(log_id);
                }
            })?;
            // The term comes with the log id: recorded even when the purge
            // goes beyond the last local entry (after a snapshot install).
            i.log.truncate_prefix_with_term(upto, term)
        })
        .await
        .map_err(|e| StorageIOError::write_logs(any(e)).into())
    }
}

const APPLIED: &[u8] = b"meta/applied";
const MEMBERSHIP: &[u8] = b"meta/membership";
/// The generation of the data keyspace (`data-<n>`), as decimal text.
const GENERATION: &[u8] = b"meta/generation";
/// The current snapshot: u32 LE length of its metadata (JSON), the
/// metadata, then its file's name in `snapshots/`.
const SNAPSHOT_FILE: &[u8] = b"snapshot/file";
/// Before streaming snapshots: the metadata and the whole snapshot as one
/// value (read only to migrate: deleted at open).
const LEGACY_SNAPSHOT: &[u8] = b"snapshot/current";
/// Before streaming snapshots: application data under this prefix of the
/// default keyspace (moved to `data-1` at open).
const LEGACY_DATA: &[u8] = b"data/";
/// Magic of a snapshot file (see [`StateMachine`]).
const SNAP_MAGIC: &[u8; 8] = b"KVRAFTS1";
/// Bytes of pairs per write batch when a snapshot is installed or the
/// legacy layout migrated.
const INSTALL_BATCH: usize = 4 << 20;

/// openraft [`RaftStateMachine`] for [`TypeConfig`] on a KeyVal [`Db`].
/// Cloning gives another handle to the same state machine. Thread-safe.
///
/// Application data lives in the keyspace `data-<n>` of the Db, where `n`
/// is `meta/generation`. Snapshots are streamed: built from a KeyVal
/// [`keyval::Snapshot`] into a file `snapshots/<id>.snap` next to the Db's
/// files (separated values are read from their WAL segments, one at a
/// time), sent by openraft in chunks, and installed by streaming the file
/// into a new keyspace `data-<n+1>` in batches of 4 MiB, then switching
/// `meta/generation` (with the applied log id, membership and snapshot
/// name) in one atomic write and dropping the old keyspace. So neither
/// side holds the state in memory, and a crash during an install leaves
/// the old state (the half-written keyspace and file are removed at
/// open). Snapshot file: magic `KVRAFTS1`, then per pair u32 LE key
/// length, u32 LE value length, key, value; then u32 `0xFFFF_FFFF` and the
/// SHA-256 of every byte before it (checked before anything is switched).
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Db>,
    /// `snapshots/` beside the Db's files.
    snap_dir: PathBuf,
    /// The data keyspace of the current generation.
    data: Arc<Mutex<(u64, Keyspace)>>,
    /// Serializes apply, snapshot install and snapshot build.
    lock: Arc<tokio::sync::Mutex<()>>,
    counters: Arc<SnapshotCounters>,
    /// Numbers the files `begin_receiving_snapshot` creates.
    received: Arc<AtomicU64>,
}

/// How many snapshots a [`StateMachine`] built and installed since it was
/// opened (not persisted), for operators and fault tests. Atomics: read
/// them from any thread; a count goes up once the snapshot is durable.
#[derive(Debug, Default)]
pub struct SnapshotCounters {
    /// Snapshots built from the local state.
    pub built: AtomicU64,
    /// Snapshots received from a leader and installed.
    pub installed: AtomicU64,
    /// Bytes of the last snapshot file built or installed.
    pub last_bytes: AtomicU64,
}

fn sm_read(e: impl std::fmt::Display) -> SErr {
    StorageIOError::read_state_machine(any(e)).into()
}

fn sm_write(e: impl std::fmt::Display) -> SErr {
    StorageIOError::write_state_machine(any(e)).into()
}

/// The metadata of one of this store's snapshots.
type SnapMeta = SnapshotMeta<NodeId, BasicNode>;

fn data_name(generation: u64) -> String {
    format!("data-{generation}")
}

/// Write every pair of `pairs` to a new snapshot file `dir/<name>`
/// (temporary name, fsync, rename, directory fsync), streaming, with its
/// SHA-256 trailer. Returns the file's size in bytes.
fn write_snapshot_file(
    dir: &Path,
    name: &str,
    pairs: impl Iterator<Item = keyval::Result<(Vec<u8>, Vec<u8>)>>,
) -> std::io::Result<u64> {
    use sha2::Digest;
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let f = std::fs::File::create(&tmp)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut h = sha2::Sha256::new();
    let mut n = 0u64;
    let mut put = |w: &mut std::io::BufWriter<std::fs::File>, b: &[u8]| -> std::io::Result<()> {
        h.update(b);
        n += b.len() as u64;
        w.write_all(b)
    };
    put(&mut w, SNAP_MAGIC)?;
    for p in pairs {
        let (k, v) = p.map_err(std::io::Error::other)?;
        put(&mut w, &(k.len() as u32).to_le_bytes())?;
        put(&mut w, &(v.len() as u32).to_le_bytes())?;
        put(&mut w, &k)?;
        put(&mut w, &v)?;
    }
    put(&mut w, &u32::MAX.to_le_bytes())?;
    let digest = h.finalize();
    w.write_all(&digest)?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(n + 32)
}

/// Read a snapshot file from `r`, calling `each` with every pair, then
/// check its SHA-256 (so the caller must not make what it collected
/// visible before this returns `Ok`). Optionally copies every byte to
/// `copy`. Memory: one pair and a 1 MiB buffer.
fn read_snapshot_file(
    r: impl std::io::Read,
    mut copy: Option<&mut dyn std::io::Write>,
    mut each: impl FnMut(&[u8], &[u8]) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    use sha2::Digest;
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let mut r = std::io::BufReader::with_capacity(1 << 20, r);
    let mut h = sha2::Sha256::new();
    let mut total = 0u64;
    // Exactly `n` bytes into `buf` (reserved fallibly).
    let take =
        |r: &mut std::io::BufReader<_>, buf: &mut Vec<u8>, n: usize| -> std::io::Result<()> {
            use std::io::Read;
            buf.clear();
            buf.try_reserve(n)
                .map_err(|_| bad("snapshot pair too large"))?;
            r.by_ref().take(n as u64).read_to_end(buf)?;
            if buf.len() != n {
                return Err(bad("snapshot file ends early"));
            }
            Ok(())
        };
    let (mut a, mut k, mut v) = (Vec::new(), Vec::new(), Vec::new());
    take(&mut r, &mut a, 8)?;
    h.update(&a);
    if a != SNAP_MAGIC {
        return Err(bad("not a KeyVal Raft snapshot file"));
    }
    if let Some(c) = copy.as_mut() {
        c.write_all(&a)?;
    }
    loop {
        take(&mut r, &mut a, 4)?;
        h.update(&a);
        if let Some(c) = copy.as_mut() {
            c.write_all(&a)?;
        }
        let kl = u32::from_le_bytes([a[0], a[1], a[2], a[3]]);
        if kl == u32::MAX {
            break;
        }
        take(&mut r, &mut a, 4)?;
        h.update(&a);
        if let Some(c) = copy.as_mut() {
            c.write_all(&a)?;
        }
        let vl = u32::from_le_bytes([a[0], a[1], a[2], a[3]]);
        if kl > 16 << 20 || vl > 1 << 30 {
            return Err(bad("impossible pair lengths in snapshot file"));
        }
        take(&mut r, &mut k, kl as usize)?;
        take(&mut r, &mut v, vl as usize)?;
        h.update(&k);
        h.update(&v);
        total += 8 + u64::from(kl) + u64::from(vl);
        if let Some(c) = copy.as_mut() {
            c.write_all(&k)?;
            c.write_all(&v)?;
        }
        each(&k, &v)?;
    }
    let want = h.finalize();
    take(&mut r, &mut a, 32)?;
    if a.as_slice() != want.as_slice() {
        return Err(bad("snapshot file SHA-256 mismatch"));
    }
    if let Some(c) = copy.as_mut() {
        c.write_all(&a)?;
    }
    total += 8 + 4 + 32;
    Ok(total)
}

impl StateMachine {
    /// Open (and recover) the state machine in `dir`: finish or undo an
    /// install a crash interrupted (the keyspace and snapshot files that
    /// the current generation does not name are removed), and move data
    /// stored by the previous layout (`data/` keys of the default
    /// keyspace, the snapshot as one value) to the current one, streaming.
    ///
    /// Errors: as [`Db::open`], and I/O errors on `dir/snapshots`.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Self, SErr> {
        let dir = dir.as_ref();
        let db = Db::open(dir, opts).map_err(sm_read)?;
        let snap_dir = dir.join("snapshots");
        std::fs::create_dir_all(&snap_dir).map_err(sm_write)?;
        let generation = match db.get(GENERATION).map_err(sm_read)? {
            Some(g) => String::from_utf8_lossy(&g)
                .parse::<u64>()
                .map_err(sm_read)?,
            None => {
                // A new store, or the previous layout: move its data (if
                // any) into `data-1`, then switch in one write.
                let _ = db.drop_keyspace(&data_name(1)).map_err(sm_write)?;
                let ks = db.keyspace(&data_name(1)).map_err(sm_write)?;
                let mut b = WriteBatch::new();
                for item in db.prefix(LEGACY_DATA) {
                    let (k, v) = item.map_err(sm_read)?;
                    b.put_in(&ks, &k[LEGACY_DATA.len()..], &v);
                    if b.encoded_len() >= INSTALL_BATCH {
                        db.write(std::mem::take(&mut b)).map_err(sm_write)?;
                    }
                }
                b.put(GENERATION, b"1");
                b.delete(LEGACY_SNAPSHOT);
                db.write(b).map_err(sm_write)?;
                let mut d = WriteBatch::new();
                for item in db.prefix(LEGACY_DATA) {
                    d.delete(item.map_err(sm_read)?.0);
                    if d.encoded_len() >= INSTALL_BATCH {
                        db.write(std::mem::take(&mut d)).map_err(sm_write)?;
                    }
                }
                db.write(d).map_err(sm_write)?;
                1
            }
        };
        let current = data_name(generation);
        for name in db.list_keyspaces().map_err(sm_read)? {
            if name.starts_with("data-") && name != current {
                db.drop_keyspace(&name).map_err(sm_write)?;
            }
        }
        let data = db.keyspace(&current).map_err(sm_write)?;
        let sm = StateMachine {
            db: Arc::new(db),
            snap_dir,
            data: Arc::new(Mutex::new((generation, data))),
            lock: Arc::new(tokio::sync::Mutex::new(())),
            counters: Arc::default(),
            received: Arc::default(),
        };
        let keep = sm.snapshot_file()?.map(|(_, name)| name);
        for e in std::fs::read_dir(&sm.snap_dir).map_err(sm_read)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if Some(&name) != keep.as_ref() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(sm)
    }

    /// Snapshot build and install counts since this state machine was
    /// opened.
    pub fn counters(&self) -> &SnapshotCounters {
        &self.counters
    }

    fn data(&self) -> Keyspace {
        self.data.lock().expect("data keyspace").1.clone()
    }

    /// The value of `key` in the applied state.
    ///
    /// Errors: `Closed`, as a [`StorageError`].
    pub fn get(&self, key: &str) -> Result<Option<String>, SErr> {
        let v = self.data().get(key.as_bytes()).map_err(sm_read)?;
        Ok(v.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Every key-value pair of the applied state, in key order (in
    /// memory: for tests and small states).
    pub fn dump(&self) -> Result<BTreeMap<String, String>, SErr> {
        let mut out = BTreeMap::new();
        for item in self.data().iter() {
            let (k, v) = item.map_err(sm_read)?;
            out.insert(
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            );
        }
        Ok(out)
    }

    /// Write `pairs` (application keys and values) straight into the
    /// applied state, bypassing the log: for loading a test state.
    ///
    /// Errors: as [`Db::write`].
    pub fn load_unreplicated(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), SErr> {
        let ks = self.data();
        let mut b = WriteBatch::new();
        for (k, v) in pairs {
            b.put_in(&ks, k, v);
        }
        self.db.write(b).map_err(sm_write)
    }

    /// The Db the state lives in (for its stats and metrics).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Close the state machine's Db (sync, checkpoint, release the lock).
    pub fn close(&self) -> Result<(), SErr> {
        self.db.close().map_err(sm_write)
    }

    fn json<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, SErr> {
        match self.db.get(key).map_err(sm_read)? {
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(sm_read),
            None => Ok(None),
        }
    }

    /// The current snapshot's metadata and file name.
    fn snapshot_file(&self) -> Result<Option<(SnapMeta, String)>, SErr> {
        let Some(v) = self.db.get(SNAPSHOT_FILE).map_err(sm_read)? else {
            return Ok(None);
        };
        let n = v
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .filter(|&n| 4 + n <= v.len())
            .ok_or_else(|| sm_read("stored snapshot record is truncated"))?;
        let meta = serde_json::from_slice(&v[4..4 + n]).map_err(sm_read)?;
        Ok(Some((
            meta,
            String::from_utf8_lossy(&v[4 + n..]).into_owned(),
        )))
    }

    fn snapshot_record(
        meta: &SnapshotMeta<NodeId, BasicNode>,
        name: &str,
    ) -> Result<Vec<u8>, SErr> {
        let m = serde_json::to_vec(meta).map_err(sm_write)?;
        let mut v = (m.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(&m);
        v.extend_from_slice(name.as_bytes());
        Ok(v)
    }

    async fn current_snapshot(&self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        let Some((meta, name)) = self.snapshot_file()? else {
            return Ok(None);
        };
        let f = tokio::fs::File::open(self.snap_dir.join(&name))
            .await
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), any(e)))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(f),
        }))
    }

    /// Remove every snapshot file but `keep`.
    fn prune_snapshots(dir: &Path, keep: &str) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name != keep && name.ends_with(".snap") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        // A KeyVal snapshot is the state at one moment: applies may go on
        // while it is streamed to the file.
        let (snap, data) = {
            let _g = self.lock.lock().await;
            let snap = self.db.snapshot().map_err(sm_read)?;
            let data = snap.keyspace(&self.data()).map_err(sm_read)?;
            (snap, data)
        };
        let json = |k: &[u8]| -> Result<Option<Vec<u8>>, SErr> { snap.get(k).map_err(sm_read) };
        let last_applied: Option<LogId<NodeId>> = match json(APPLIED)? {
            Some(v) => Some(serde_json::from_slice(&v).map_err(sm_read)?),
            None => None,
        };
        let membership: StoredMembership<NodeId, BasicNode> = match json(MEMBERSHIP)? {
            Some(v) => serde_json::from_slice(&v).map_err(sm_read)?,
            None => StoredMembership::default(),
        };
        let snapshot_id = match &last_applied {
            Some(l) => format!(
                "{}-{}-{}",
                l.leader_id,
                l.index,
                self.counters.built.load(Ordering::Relaxed)
            ),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let name = format!("{}.snap", meta.snapshot_id);
        let (dir, n) = (self.snap_dir.clone(), name.clone());
        let bytes = tokio::task::spawn_blocking(move || write_snapshot_file(&dir, &n, data.iter()))
            .await
            .map_err(sm_write)?
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), any(e)))?;
        {
            let _g = self.lock.lock().await;
            // A newer snapshot (an install) may have been recorded meanwhile.
            let newer = self
                .snapshot_file()?
                .is_some_and(|(m, _)| m.last_log_id > meta.last_log_id);
            if !newer {
                let mut b = WriteBatch::new();
                b.put(SNAPSHOT_FILE, Self::snapshot_record(&meta, &name)?);
                let db = self.db.clone();
                tokio::task::spawn_blocking(move || db.write(b))
                    .await
                    .map_err(sm_write)?
                    .map_err(sm_write)?;
                Self::prune_snapshots(&self.snap_dir, &name);
            }
        }
        self.counters.built.fetch_add(1, Ordering::Relaxed);
        self.counters.last_bytes.store(bytes, Ordering::Relaxed);
        let f = tokio::fs::File::open(self.snap_dir.join(&name))
            .await
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), any(e)))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(f),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), SErr> {
        Ok((
            self.json(APPLIED)?,
            self.json(MEMBERSHIP)?.unwrap_or_default(),
        ))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let _g = self.lock.lock().await;
        let data = self.data();
        let mut b = WriteBatch::new();
        // Values changed earlier in this batch (None = deleted).
        let mut pending: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut out = Vec::new();
        let mut last = None;
        for e in entries {
            last = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => out.push(Response::default()),
                EntryPayload::Membership(m) => {
                    let sm = StoredMembership::new(Some(e.log_id), m);
                    b.put(MEMBERSHIP, &serde_json::to_vec(&sm).map_err(sm_write)?);
                    out.push(Response::default());
                }
                EntryPayload::Normal(req) => {
                    let (key, new, expected) = match req {
                        Request::Set { key, value } => (key, Some(value.into_bytes()), None),
                        Request::Delete { key } => (key, None, None),
                        Request::CompareAndSet {
                            key,
                            expected,
                            value,
                        } => (key, Some(value.into_bytes()), Some(expected)),
                    };
                    let k = key.into_bytes();
                    let previous = match pending.get(&k) {
                        Some(v) => v.clone(),
                        None => data.get(&k).map_err(sm_read)?,
                    };
                    // A compare-and-set whose comparison fails changes nothing.
                    let swap = expected.is_none_or(|e| e.map(String::into_bytes) == previous);
                    if swap {
                        match &new {
                            Some(v) => b.put_in(&data, &k, v),
                            None => b.delete_in(&data, &k),
                        };
                        pending.insert(k, new);
                    }
                    out.push(Response {
                        previous: previous.map(|v| String::from_utf8_lossy(&v).into_owned()),
                    });
                }
            }
        }
        if let Some(l) = last {
            b.put(APPLIED, &serde_json::to_vec(&l).map_err(sm_write)?);
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || db.write(b))
                .await
                .map_err(sm_write)?
                .map_err(sm_write)?;
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, SErr> {
        let n = self.received.fetch_add(1, Ordering::Relaxed);
        let p = self.snap_dir.join(format!("receiving-{n}.tmp"));
        let f = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        Ok(Box::new(f))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), SErr> {
        use tokio::io::AsyncSeekExt;
        let _g = self.lock.lock().await;
        let bad = |e: std::io::Error| -> SErr {
            StorageIOError::read_snapshot(Some(meta.signature()), any(e)).into()
        };
        let mut file = *snapshot;
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(bad)?;
        file.seek(std::io::SeekFrom::Start(0)).await.map_err(bad)?;
        let file = file.into_std().await;
        let (old_gen, old) = self.data.lock().expect("data keyspace").clone();
        let generation = old_gen + 1;
        let db = self.db.clone();
        let dir = self.snap_dir.clone();
        let name = format!("{}.snap", meta.snapshot_id);
        let meta2 = meta.clone();
        // Stream the file into a new keyspace (not yet the state) while
        // copying it to this node's own snapshot file; switch only after
        // its SHA-256 checked.
        let (new, bytes) =
            tokio::task::spawn_blocking(move || -> Result<(Keyspace, u64), String> {
                let e = |x: keyval::Error| x.to_string();
                let _ = db.drop_keyspace(&data_name(generation)).map_err(e)?;
                let ks = db.keyspace(&data_name(generation)).map_err(e)?;
                let tmp = dir.join(format!("{name}.tmp"));
                let out = std::fs::File::create(&tmp).map_err(|x| x.to_string())?;
                let mut copy = std::io::BufWriter::with_capacity(1 << 20, out);
                let opts = keyval::WriteOptions::with_durability(keyval::Durability::Os);
                let mut b = WriteBatch::new();
                let bytes = read_snapshot_file(file, Some(&mut copy), |k, v| {
                    b.put_in(&ks, k, v);
                    if b.encoded_len() >= INSTALL_BATCH {
                        db.write_opt(std::mem::take(&mut b), &opts)
                            .map_err(std::io::Error::other)?;
                    }
                    Ok(())
                })
                .map_err(|x| x.to_string())?;
                db.write_opt(b, &opts).map_err(e)?;
                let out = copy.into_inner().map_err(|x| x.to_string())?;
                out.sync_all().map_err(|x| x.to_string())?;
                drop(out);
                std::fs::rename(&tmp, dir.join(&name)).map_err(|x| x.to_string())?;
                std::fs::File::open(&dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|x| x.to_string())?;
                // The switch: one durable write (it also makes the batches
                // above durable, being later in the same log).
                let mut b = WriteBatch::new();
                b.put(GENERATION, generation.to_string());
                match &meta2.last_log_id {
                    Some(l) => b.put(APPLIED, serde_json::to_vec(l).map_err(|x| x.to_string())?),
                    None => b.delete(APPLIED),
                };
                b.put(
                    MEMBERSHIP,
                    serde_json::to_vec(&meta2.last_membership).map_err(|x| x.to_string())?,
                );
                b.put(
                    SNAPSHOT_FILE,
                    StateMachine::snapshot_record(&meta2, &name).map_err(|x| x.to_string())?,
                );
                db.write(b).map_err(e)?;
                Ok((ks, bytes))
            })
            .await
            .map_err(sm_write)?
            .map_err(|x| -> SErr {
                StorageIOError::write_snapshot(Some(meta.signature()), any(x)).into()
            })?;
        *self.data.lock().expect("data keyspace") = (generation, new);
        // The old state is garbage now.
        let db = self.db.clone();
        let old_name = old.name().to_string();
        tokio::task::spawn_blocking(move || db.drop_keyspace(&old_name))
            .await
            .map_err(sm_write)?
            .map_err(sm_write)?;
        Self::prune_snapshots(&self.snap_dir, &format!("{}.snap", meta.snapshot_id));
        if let Ok(rd) = std::fs::read_dir(&self.snap_dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with("receiving-") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        self.counters.installed.fetch_add(1, Ordering::Relaxed);
        self.counters.last_bytes.store(bytes, Ordering::Relaxed);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        self.current_snapshot().await
    }
}
