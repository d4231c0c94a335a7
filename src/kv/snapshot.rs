//! [`Snapshot`]: a read view of every keyspace fixed at one applied LSN,
//! and the registry of open snapshots and transactions (which also keeps
//! the write sets that open transactions must be validated against; see
//! [`crate::kv::transaction`]).
//!
//! A snapshot is a clone of the index's copy-on-write trees (see
//! [`crate::index::tree`]), taken under the index's read lock together with
//! the LSN they reflect: O(1), a few reference counts and one registry
//! insert. It never blocks a writer; a writer that changes a node the
//! snapshot shares copies that node. Versions are freed when the last
//! snapshot holding them drops.

use super::iter::Iter;
use super::Inner;
use crate::error::{Error, Result};
use crate::index::{KeyspaceStats, View};
use crate::kv::keyspace::Keyspace;
use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Weak};
use std::time::Instant;

/// Open snapshots and transactions, and the write sets committed since
/// the oldest open transaction's snapshot. Guarded by `Inner::registry`;
/// lock order: the registry before the index lock, never the other way.
#[derive(Default)]
pub(crate) struct Registry {
    /// Open snapshots: when each was taken and a weak reference to it (for
    /// the pinned-bytes walk), in slots reused through `free`.
    open: Vec<Option<(Instant, u64, Weak<SnapState>)>>,
    free: Vec<usize>,
    /// Transactions registered, for numbering them.
    next_txn: u64,
    /// Snapshot LSN of each open transaction, by registration number
    /// (ascending in both: they are taken under this lock).
    pub(super) txns: BTreeMap<u64, u64>,
    /// `(lsn, KvBatch payload)` of every batch applied after the oldest
    /// open transaction's snapshot, ascending by LSN (a group's batches
    /// all carry its last LSN: they become visible together).
    pub(super) log: VecDeque<(u64, Vec<u8>)>,
    /// Payload bytes in `log`.
    pub(super) log_bytes: u64,
}

impl Registry {
    /// Keep the write sets applied at `lsn` if an open transaction may
    /// still need to be validated against them, and forget every one that
    /// no open transaction can conflict with.
    pub(super) fn applied(&mut self, lsn: u64, payloads: impl Iterator<Item = Vec<u8>>) {
        let Some(&oldest) = self.txns.values().next() else {
            self.log.clear();
            self.log_bytes = 0;
            return;
        };
        for p in payloads {
            self.log_bytes += p.len() as u64;
            self.log.push_back((lsn, p));
        }
        while self.log.front().is_some_and(|(l, _)| *l <= oldest) {
            if let Some((_, p)) = self.log.pop_front() {
                self.log_bytes -= p.len() as u64;
            }
        }
    }

    /// The LSN of the oldest open snapshot (iterators, scans and
    /// transactions included), if any.
    pub(crate) fn oldest_lsn(&self) -> Option<u64> {
        self.open.iter().flatten().map(|(_, lsn, _)| *lsn).min()
    }

    fn open_count(&self) -> usize {
        self.open.len() - self.free.len()
    }
}

/// The registry's figures for [`crate::Stats`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RegistryStats {
    pub open: u64,
    pub transactions: u64,
    pub oldest_age_micros: u64,
    pub log_bytes: u64,
}

/// What a snapshot, its keyspace views and its iterators share: the view
/// and its slot in the registry, freed on drop.
pub(crate) struct SnapState {
    pub(crate) inner: Arc<Inner>,
    pub(crate) view: View,
    slot: usize,
    taken: Instant,
}

impl Drop for SnapState {
    fn drop(&mut self) {
        let mut r = self.inner.registry.lock();
        if let Some(s) = r.open.get_mut(self.slot) {
            *s = None;
            r.free.push(self.slot);
        }
    }
}

/// A transaction's registration: while it lives, the write sets applied
/// after its snapshot are kept for its validation. Separate from its
/// [`SnapState`] so that a committing transaction can let go of its view
/// (and the writer then changes the index in place rather than copying
/// the nodes the view shared) while it waits for its validation.
pub(crate) struct TxnGuard {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for TxnGuard {
    fn drop(&mut self) {
        let mut r = self.inner.registry.lock();
        if r.txns.remove(&self.id).is_some() && r.txns.is_empty() {
            r.log.clear();
            r.log_bytes = 0;
        }
    }
}

impl SnapState {
    /// Errors: [`Error::Closed`] once the store is closed,
    /// [`Error::SnapshotExpired`] past `Options::max_snapshot_age`.
    pub(crate) fn check(&self) -> Result<()> {
        if self.inner.core.is_closed() {
            return Err(Error::Closed);
        }
        if let Some(max) = self.inner.opts.max_snapshot_age {
            let age = self.taken.elapsed();
            if age > max {
                return Err(Error::SnapshotExpired(format!(
                    "this snapshot is {} ms old; Options::max_snapshot_age is {} ms",
                    age.as_millis(),
                    max.as_millis()
                )));
            }
        }
        Ok(())
    }

    /// [`SnapState::check`], and that keyspace `space` exists in the view.
    pub(crate) fn check_in(&self, space: u32) -> Result<()> {
        self.check()?;
        if !self.view.is_live(space) {
            return Err(Error::NotFound(format!(
                "keyspace id {space} does not exist in this snapshot"
            )));
        }
        Ok(())
    }
}

impl Inner {
    /// Take and register a snapshot. Errors: [`Error::Closed`].
    pub(crate) fn snapshot(self: &Arc<Self>) -> Result<Arc<SnapState>> {
        self.snapshot_for(false).map(|(s, _)| s)
    }

    /// Take and register a snapshot and, if `txn`, register it as a
    /// transaction's (so that the write sets applied after it are kept for
    /// its validation), in one hold of the registry lock.
    /// Errors: [`Error::Closed`].
    pub(crate) fn snapshot_for(
        self: &Arc<Self>,
        txn: bool,
    ) -> Result<(Arc<SnapState>, Option<TxnGuard>)> {
        let mut reg = self.registry.lock();
        let view = {
            let m = self.mem.read();
            if m.closed {
                return Err(Error::Closed);
            }
            m.table.view()
        };
        let guard = txn.then(|| {
            let id = reg.next_txn;
            reg.next_txn += 1;
            reg.txns.insert(id, view.lsn);
            TxnGuard {
                inner: Arc::clone(self),
                id,
            }
        });
        let taken = Instant::now();
        let slot = reg.free.pop().unwrap_or(reg.open.len());
        let state = Arc::new(SnapState {
            inner: Arc::clone(self),
            view,
            slot,
            taken,
        });
        let entry = Some((taken, state.view.lsn, Arc::downgrade(&state)));
        match reg.open.get_mut(slot) {
            Some(s) => *s = entry,
            None => reg.open.push(entry),
        }
        drop(reg);
        Ok((state, guard))
    }

    /// Open snapshots, the oldest one's age, and the validation log.
    pub(crate) fn registry_stats(&self) -> RegistryStats {
        let r = self.registry.lock();
        RegistryStats {
            open: r.open_count() as u64,
            transactions: r.txns.len() as u64,
            oldest_age_micros: r
                .open
                .iter()
                .flatten()
                .map(|(t, _, _)| *t)
                .min()
                .map_or(0, |t| t.elapsed().as_micros() as u64),
            log_bytes: r.log_bytes,
        }
    }

    /// Bytes held only by open snapshots (old versions), plus the
    /// validation log's. Walks the current trees and the versions only
    /// snapshots hold: O(index nodes), for stats, not for a hot path.
    pub(crate) fn pinned_bytes(&self) -> u64 {
        let (states, log): (Vec<Arc<SnapState>>, u64) = {
            let r = self.registry.lock();
            let live = r.open.iter().flatten().filter_map(|(_, _, w)| w.upgrade());
            (live.collect(), r.log_bytes)
        };
        let views: Vec<View> = states.iter().map(|s| s.view.clone()).collect();
        // The states may be the last references: drop them outside the
        // registry lock (their drop takes it).
        drop(states);
        if views.is_empty() {
            return log;
        }
        let m = self.mem.read();
        m.table.pinned_bytes(&views) + log
    }
}

/// A consistent, read-only view of the store at one moment: every read of
/// it sees exactly the writes applied up to one LSN ([`Snapshot::lsn`])
/// and none after, in every keyspace, however long it is kept and however
/// much is written meanwhile. From [`crate::Db::snapshot`] (its reads
/// address the default keyspace) or [`Keyspace::snapshot`]; a view of
/// another keyspace at the same moment is [`Snapshot::keyspace`].
///
/// Cost: taking one is O(1) (no copy of the data) and never blocks
/// writers. While it lives, a write that replaces or removes a pair it can
/// see keeps the old pair in memory, and copies the index nodes on that
/// key's path the first time (about 0.5 KiB per node, a few nodes per
/// write): `Stats::snapshot_pinned_bytes` reports it. Everything it pins is
/// freed when it (and its clones, its iterators) drop. Set
/// `Options::max_snapshot_age` to bound how long a forgotten one can pin
/// memory.
///
/// Errors of every read: [`Error::Closed`] (the store was closed),
/// [`Error::SnapshotExpired`] (older than `max_snapshot_age`),
/// [`Error::InvalidArgument`] (an empty or oversized key, as
/// [`Keyspace::get`]).
///
/// Thread safety: `Send + Sync`, and cheap to clone (clones share the
/// view). It may outlive the `Db` handle that made it.
#[derive(Clone)]
pub struct Snapshot {
    state: Arc<SnapState>,
    space: u32,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("lsn", &self.state.view.lsn)
            .field("keyspace", &self.space)
            .finish()
    }
}

impl Snapshot {
    pub(crate) fn new(state: Arc<SnapState>, space: u32) -> Snapshot {
        Snapshot { state, space }
    }

    /// The LSN of the last write this snapshot sees (0: none).
    pub fn lsn(&self) -> u64 {
        self.state.view.lsn
    }

    /// A view of keyspace `ks` at this snapshot's moment (sharing it).
    ///
    /// Errors: [`Error::NotFound`] (`ks` did not exist at that moment),
    /// [`Error::InvalidArgument`] (`ks` belongs to another store),
    /// [`Error::Closed`], [`Error::SnapshotExpired`].
    pub fn keyspace(&self, ks: &Keyspace) -> Result<Snapshot> {
        if !Arc::ptr_eq(&ks.inner, &self.state.inner) {
            return Err(Error::InvalidArgument(
                "the keyspace belongs to another store".into(),
            ));
        }
        self.state.check_in(ks.id)?;
        Ok(Snapshot {
            state: Arc::clone(&self.state),
            space: ks.id,
        })
    }

    /// The names of the named keyspaces at this snapshot's moment, sorted.
    pub fn keyspaces(&self) -> Result<Vec<String>> {
        self.state.check()?;
        Ok(self
            .state
            .view
            .names()
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
        self.state.inner.check_key(key)?;
        self.state.check_in(self.space)?;
        let v = self.state.view.get(self.space, key);
        self.state.inner.metrics.got(v.map(|v| v.len()));
        let v = v.map(|v| self.state.inner.found(v)).transpose()?;
        Ok(f(v.as_ref().map(|v| v.bytes())))
    }

    /// The value of `key` at this snapshot (a copy), or `None`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.read(key.as_ref(), |v| v.map(<[u8]>::to_vec))
    }

    /// Call `f` with the borrowed value of `key` (no copy).
    pub fn get_with<R>(
        &self,
        key: impl AsRef<[u8]>,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        self.read(key.as_ref(), f)
    }

    /// The values of `keys` at this snapshot, in order.
    pub fn get_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    /// Call `f(i, value)` for each of `keys` in order, borrowing the
    /// values (no copy of values held in memory). Errors: as
    /// [`Snapshot::get`]: bad input before any call, a damaged separated
    /// value ([`crate::Error::Corruption`]) when it is reached.
    pub fn get_many_with<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        mut f: impl FnMut(usize, Option<&[u8]>),
    ) -> Result<()> {
        for k in keys {
            self.state.inner.check_key(k.as_ref())?;
        }
        self.state.check_in(self.space)?;
        for (i, k) in keys.iter().enumerate() {
            let v = self.state.view.get(self.space, k.as_ref());
            self.state.inner.metrics.got(v.map(|v| v.len()));
            let v = v.map(|v| self.state.inner.found(v)).transpose()?;
            f(i, v.as_ref().map(|v| v.bytes()));
        }
        Ok(())
    }

    /// Whether `key` is present at this snapshot.
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.read(key.as_ref(), |v| v.is_some())
    }

    /// Live keys and bytes of this keyspace at this snapshot.
    pub fn stats(&self) -> Result<KeyspaceStats> {
        self.state.check_in(self.space)?;
        Ok(self.state.view.stats(self.space).unwrap_or_default())
    }

    /// Number of keys at this snapshot (O(1)).
    pub fn len(&self) -> Result<u64> {
        self.stats().map(|s| s.keys)
    }

    /// Whether there were none.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// Every pair, in key order (reverse with `.rev()`).
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The pairs whose keys fall in `range`, in key order; a
    /// double-ended iterator (`.rev()` for descending order) that can
    /// [`Iter::seek`]. It holds this snapshot.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        Iter::new(Ok(Arc::clone(&self.state)), self.space, range)
    }

    /// The pairs whose keys start with `prefix`; as [`Snapshot::range`].
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        self.range(crate::kv::prefix_bounds(prefix.as_ref()))
    }

    /// Visit the pairs in `range` in key order, borrowing them, until `f`
    /// returns `false`; returns how many `f` saw. Holds no lock: `f` may
    /// call the store.
    pub fn scan<K: AsRef<[u8]> + ?Sized, R: RangeBounds<K>>(
        &self,
        range: R,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<u64> {
        self.state.check_in(self.space)?;
        let mut n = 0u64;
        let mut bytes = 0u64;
        let mut failed = None;
        self.state.view.visit(
            self.space,
            range.start_bound().map(|k| k.as_ref()),
            range.end_bound().map(|k| k.as_ref()),
            |k, v| {
                n += 1;
                bytes += (k.len() + v.len()) as u64;
                match self.state.inner.found(v) {
                    Ok(v) => f(k, v.bytes()),
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
            },
        );
        self.state.inner.metrics.scanned(n, bytes);
        failed.map_or(Ok(n), Err)
    }

    /// [`Snapshot::scan`] over the keys that start with `prefix`.
    pub fn scan_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
        f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<u64> {
        let (s, e) = crate::kv::prefix_bounds(prefix.as_ref());
        let b = (s.as_ref().map(|k| &k[..]), e.as_ref().map(|k| &k[..]));
        self.scan::<[u8], (Bound<&[u8]>, Bound<&[u8]>)>(b, f)
    }
}
