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
use keyval::{Db, Options, WriteBatch};
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
use std::io::Cursor;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
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
    /// [`BasicNode`] addresses, snapshots as `Cursor<Vec<u8>>`, tokio.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = BasicNode,
        Entry = Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
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
const SNAPSHOT: &[u8] = b"snapshot/current";
const DATA: &[u8] = b"data/";

/// openraft [`RaftStateMachine`] for [`TypeConfig`] on a KeyVal [`Db`].
/// Cloning gives another handle to the same state machine. Thread-safe.
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Db>,
    /// Serializes apply, snapshot install and snapshot build.
    lock: Arc<tokio::sync::Mutex<()>>,
    counters: Arc<SnapshotCounters>,
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
}

/// A snapshot's content: every key-value pair.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    data: BTreeMap<String, String>,
}

fn sm_read(e: impl std::fmt::Display) -> SErr {
    StorageIOError::read_state_machine(any(e)).into()
}

fn sm_write(e: impl std::fmt::Display) -> SErr {
    StorageIOError::write_state_machine(any(e)).into()
}

impl StateMachine {
    /// Open (and recover) the state machine in `dir`.
    ///
    /// Errors: as [`Db::open`].
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Self, SErr> {
        let db = Db::open(dir, opts).map_err(sm_read)?;
        Ok(StateMachine {
            db: Arc::new(db),
            lock: Arc::new(tokio::sync::Mutex::new(())),
            counters: Arc::default(),
        })
    }

    /// Snapshot build and install counts since this state machine was
    /// opened.
    pub fn counters(&self) -> &SnapshotCounters {
        &self.counters
    }

    /// The value of `key` in the applied state.
    ///
    /// Errors: `Closed`, as a [`StorageError`].
    pub fn get(&self, key: &str) -> Result<Option<String>, SErr> {
        let k = [DATA, key.as_bytes()].concat();
        let v = self.db.get(&k).map_err(sm_read)?;
        Ok(v.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Every key-value pair of the applied state, in key order.
    pub fn dump(&self) -> Result<BTreeMap<String, String>, SErr> {
        let mut out = BTreeMap::new();
        for item in self.db.prefix(DATA) {
            let (k, v) = item.map_err(sm_read)?;
            out.insert(
                String::from_utf8_lossy(&k[DATA.len()..]).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            );
        }
        Ok(out)
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

    fn current_snapshot(&self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        let Some(v) = self.db.get(SNAPSHOT).map_err(sm_read)? else {
            return Ok(None);
        };
        let n = v
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .filter(|&n| 4 + n <= v.len())
            .ok_or_else(|| sm_read("stored snapshot is truncated"))?;
        let meta: SnapshotMeta<NodeId, BasicNode> =
            serde_json::from_slice(&v[4..4 + n]).map_err(sm_read)?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(v[4 + n..].to_vec())),
        }))
    }

    fn store_snapshot(
        b: &mut WriteBatch,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        data: &[u8],
    ) -> Result<(), SErr> {
        let m = serde_json::to_vec(meta).map_err(sm_write)?;
        let mut v = (m.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(&m);
        v.extend_from_slice(data);
        b.put(SNAPSHOT, &v);
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        let _g = self.lock.lock().await;
        let last_applied: Option<LogId<NodeId>> = self.json(APPLIED)?;
        let membership: StoredMembership<NodeId, BasicNode> =
            self.json(MEMBERSHIP)?.unwrap_or_default();
        let data = serde_json::to_vec(&SnapshotData { data: self.dump()? }).map_err(sm_read)?;
        let snapshot_id = match &last_applied {
            Some(l) => format!("{}-{}", l.leader_id, l.index),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let mut b = WriteBatch::new();
        StateMachine::store_snapshot(&mut b, &meta, &data)?;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.write(b))
            .await
            .map_err(sm_write)?
            .map_err(sm_write)?;
        self.counters.built.fetch_add(1, Ordering::Relaxed);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
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
                    let k = [DATA, key.as_bytes()].concat();
                    let previous = match pending.get(&k) {
                        Some(v) => v.clone(),
                        None => self.db.get(&k).map_err(sm_read)?,
                    };
                    // A compare-and-set whose comparison fails changes nothing.
                    let swap = expected.is_none_or(|e| e.map(String::into_bytes) == previous);
                    if swap {
                        match &new {
                            Some(v) => b.put(&k, v),
                            None => b.delete(&k),
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

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, SErr> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), SErr> {
        let _g = self.lock.lock().await;
        let bytes = snapshot.into_inner();
        let content: SnapshotData = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), any(e)))?;
        // Replace the whole state in one atomic batch.
        let mut b = WriteBatch::new();
        for item in self.db.prefix(DATA) {
            let (k, _) = item.map_err(sm_read)?;
            b.delete(&k);
        }
        for (k, v) in &content.data {
            b.put([DATA, k.as_bytes()].concat(), v.as_bytes());
        }
        match &meta.last_log_id {
            Some(l) => b.put(APPLIED, &serde_json::to_vec(l).map_err(sm_write)?),
            None => b.delete(APPLIED),
        };
        b.put(
            MEMBERSHIP,
            &serde_json::to_vec(&meta.last_membership).map_err(sm_write)?,
        );
        StateMachine::store_snapshot(&mut b, meta, &bytes)?;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.write(b))
            .await
            .map_err(sm_write)?
            .map_err(sm_write)?;
        self.counters.installed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        self.current_snapshot()
    }
}
