//! Keyspaces: named, independent ordered key spaces in one store (like
//! Bolt buckets, redb tables or fjall keyspaces).
//!
//! The default keyspace is the store's original key space: its pairs live
//! in one [`MemTable`], exactly as before keyspaces existed. Every named
//! keyspace lives in a second `MemTable`, under its 4-byte big-endian id
//! followed by the user's key, so each keyspace is one contiguous range
//! and its keys keep their own order. Id 0 of that table is the catalog:
//!
//! ```text
//! [0,0,0,0] ++ name  ->  u32 LE id      one entry per live keyspace
//! [0,0,0,0]          ->  u32 LE next id (ids are never reused)
//! ```
//!
//! The catalog changes only through the create/drop operations of a
//! `KvBatch` record (see [`crate::batch`]), so a keyspace's creation, its
//! writes and its drop replay in LSN order like any other write, and a
//! snapshot carries the catalog with the data (see `docs/format.md`).
//!
//! Thread safety: the in-memory tables are guarded by the store's index lock;
//! [`Keyspace`] handles are `Send + Sync`.

use crate::batch::{self, Op, WriteBatch};
use crate::db::{Inner, Iter};
use crate::error::{Error, Result};
use crate::memtable::{Frozen, MemTable};
use crate::options::WriteOptions;
use std::collections::HashMap;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// Longest keyspace name, in bytes (UTF-8).
pub const MAX_KEYSPACE_NAME: usize = 255;

/// Catalog id in the named table.
const CATALOG: u32 = 0;

/// Live keys and bytes of one keyspace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyspaceStats {
    /// Live keys.
    pub keys: u64,
    /// Bytes of live keys.
    pub key_bytes: u64,
    /// Bytes of live values.
    pub value_bytes: u64,
}

impl KeyspaceStats {
    /// Count a change of one key of `key_len` bytes from a value of `old`
    /// bytes (None: absent) to one of `new` bytes (None: removed).
    pub(crate) fn account(&mut self, key_len: usize, old: Option<usize>, new: Option<usize>) {
        if let Some(o) = old {
            self.keys -= 1;
            self.key_bytes -= key_len as u64;
            self.value_bytes -= o as u64;
        }
        if let Some(n) = new {
            self.keys += 1;
            self.key_bytes += key_len as u64;
            self.value_bytes += n as u64;
        }
    }
}

/// `id` (big-endian) followed by `key`: the named table's key.
pub(crate) fn named_key(id: u32, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + key.len());
    k.extend_from_slice(&id.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Check a keyspace name: UTF-8 (guaranteed by `&str`), 1 to
/// [`MAX_KEYSPACE_NAME`] bytes. Errors: [`Error::InvalidArgument`].
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_KEYSPACE_NAME {
        return Err(Error::InvalidArgument(format!(
            "keyspace name of {} bytes (1 to {MAX_KEYSPACE_NAME} allowed)",
            name.len()
        )));
    }
    Ok(())
}

/// The in-memory index of every keyspace.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    /// The default keyspace (id 0).
    pub default: MemTable,
    /// Every named keyspace and the catalog, keyed by id then key.
    pub named: MemTable,
    /// Live named keyspaces by id.
    live: HashMap<u32, KeyspaceStats>,
}

/// Frozen views of both tables, for a snapshot.
pub(crate) struct FrozenTables {
    pub default: Frozen,
    pub named: Frozen,
}

impl Tables {
    /// The LSN of the last applied record.
    pub fn applied_lsn(&self) -> u64 {
        self.default.applied_lsn
    }

    /// Record that everything up to `lsn` is applied.
    pub fn set_applied_lsn(&mut self, lsn: u64) {
        self.default.applied_lsn = lsn;
    }

    /// Whether `id` names a live keyspace (0, the default, always is).
    pub fn is_live(&self, id: u32) -> bool {
        id == 0 || self.live.contains_key(&id)
    }

    /// The id of keyspace `name`, if it exists.
    pub fn lookup(&self, name: &str) -> Option<u32> {
        let v = self.named.get(&named_key(CATALOG, name.as_bytes()))?;
        crate::codec::u32_at(v, 0)
    }

    /// The id the next created keyspace gets.
    pub fn next_id(&self) -> u32 {
        self.named
            .get(&named_key(CATALOG, &[]))
            .and_then(|v| crate::codec::u32_at(v, 0))
            .unwrap_or(1)
    }

    /// Every named keyspace, by name.
    pub fn names(&self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        self.visit_named(CATALOG, Bound::Unbounded, Bound::Unbounded, |k, v| {
            if let (false, Ok(name), Some(id)) = (
                k.is_empty(),
                std::str::from_utf8(k),
                crate::codec::u32_at(v, 0),
            ) {
                out.push((name.to_string(), id));
            }
            true
        });
        out
    }

    /// Live keys and bytes of keyspace `id` (0: the default keyspace).
    pub fn stats(&self, id: u32) -> Option<KeyspaceStats> {
        if id == 0 {
            return Some(self.default.counts());
        }
        self.live.get(&id).copied()
    }

    /// Number of named keyspaces.
    pub fn keyspace_count(&self) -> usize {
        self.live.len()
    }

    /// The value of `key` in keyspace `id`.
    pub fn get(&self, id: u32, key: &[u8]) -> Option<&[u8]> {
        if id == 0 {
            self.default.get(key)
        } else {
            self.named.get(&named_key(id, key))
        }
    }

    /// [`MemTable::visit`] within keyspace `id`; `f` sees the user's keys.
    pub fn visit(
        &self,
        id: u32,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        f: impl FnMut(&[u8], &[u8]) -> bool,
    ) {
        if id == 0 {
            self.default.visit(start, end, f)
        } else {
            self.visit_named(id, start, end, f)
        }
    }

    /// Visit the range of id `id` in the named table (0: the catalog).
    fn visit_named(
        &self,
        id: u32,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) {
        let s = match start {
            Bound::Included(k) => Bound::Included(named_key(id, k)),
            Bound::Excluded(k) => Bound::Excluded(named_key(id, k)),
            Bound::Unbounded => Bound::Included(named_key(id, &[])),
        };
        let e = match end {
            Bound::Included(k) => Bound::Included(named_key(id, k)),
            Bound::Excluded(k) => Bound::Excluded(named_key(id, k)),
            Bound::Unbounded => match id.checked_add(1) {
                Some(n) => Bound::Excluded(named_key(n, &[])),
                None => Bound::Unbounded,
            },
        };
        self.named.visit(
            s.as_ref().map(|k| &k[..]),
            e.as_ref().map(|k| &k[..]),
            |k, v| f(&k[4..], v),
        );
    }

    /// Up to `limit` pairs of keyspace `id` in `(start, end)`, copied out.
    pub fn range(
        &self,
        id: u32,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::with_capacity(limit.min(256));
        if limit > 0 {
            self.visit(id, start, end, |k, v| {
                out.push((k.to_vec(), v.to_vec()));
                out.len() < limit
            });
        }
        out
    }

    /// Apply a `KvBatch` payload (see [`crate::batch`]) in one pass over
    /// it. Used by the write path, for batches it built and validated, and
    /// by replay. Writes to a keyspace that is not live are skipped: such a
    /// write was validated before a concurrent drop was applied, and
    /// skipping it is the same as applying it just before the drop. A
    /// malformed payload stops at the bad operation with its reason; the
    /// operations before it stay applied, which only replay can meet, and
    /// replay then fails the whole open.
    pub fn apply_batch(&mut self, payload: &[u8]) -> std::result::Result<(), &'static str> {
        for op in batch::decode(payload) {
            match op? {
                Op::Put(k, v) => {
                    self.default.put(k, v);
                }
                Op::Delete(k) => {
                    self.default.delete(k);
                }
                Op::PutIn(id, k, v) => {
                    if let Some(s) = self.live.get_mut(&id) {
                        let old = self.named.put(&named_key(id, k), v);
                        s.account(k.len(), old, Some(v.len()));
                    }
                }
                Op::DeleteIn(id, k) => {
                    if let Some(s) = self.live.get_mut(&id) {
                        let old = self.named.delete(&named_key(id, k));
                        s.account(k.len(), old, None);
                    }
                }
                Op::CreateKeyspace(id, name) => {
                    if id == CATALOG || name.is_empty() {
                        return Err("keyspace operation with id 0 or an empty name");
                    }
                    self.named.flush_bulk(); // next_id reads the catalog
                    let next = id.saturating_add(1).max(self.next_id());
                    self.named.put(&named_key(CATALOG, name), &id.to_le_bytes());
                    self.named
                        .put(&named_key(CATALOG, &[]), &next.to_le_bytes());
                    self.live.entry(id).or_default();
                }
                Op::DropKeyspace(id, name) => {
                    if id == CATALOG || name.is_empty() {
                        return Err("keyspace operation with id 0 or an empty name");
                    }
                    // The drop visits the keyspace's keys: flush first, and
                    // read them before writing anything.
                    self.named.flush_bulk();
                    let mut keys = Vec::new();
                    self.visit(id, Bound::Unbounded, Bound::Unbounded, |k, _| {
                        keys.push(named_key(id, k));
                        true
                    });
                    self.named.delete(&named_key(CATALOG, name));
                    for k in keys {
                        self.named.delete(&k);
                    }
                    self.live.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// Freeze both tables for a snapshot (O(1)).
    pub fn freeze(&mut self) -> FrozenTables {
        FrozenTables {
            default: self.default.freeze(),
            named: self.named.freeze(),
        }
    }

    /// Fold up to `max` delayed writes of each table back in; `true` once
    /// both are merged.
    pub fn merge_step(&mut self, max: usize) -> bool {
        let a = self.default.merge_step(max);
        let b = self.named.merge_step(max);
        a && b
    }

    /// Bulk mode for both tables (recovery's replay); see
    /// [`MemTable::begin_bulk`].
    pub fn begin_bulk(&mut self) {
        self.default.begin_bulk();
        self.named.begin_bulk();
    }

    /// Leave bulk mode: apply what is listed and recount every keyspace.
    pub fn end_bulk(&mut self) {
        self.default.end_bulk();
        self.named.end_bulk();
        self.rebuild_live();
    }

    /// Rebuild the live-keyspace table from the catalog and count each
    /// keyspace's keys (after a snapshot is installed).
    pub fn rebuild_live(&mut self) {
        self.live = self
            .names()
            .into_iter()
            .map(|(_, id)| (id, KeyspaceStats::default()))
            .collect();
        let live = &mut self.live;
        self.named.visit(
            Bound::Included(&named_key(CATALOG + 1, &[])[..]),
            Bound::Unbounded,
            |k, v| {
                let id = u32::from_be_bytes([k[0], k[1], k[2], k[3]]);
                if let Some(s) = live.get_mut(&id) {
                    s.account(k.len() - 4, None, Some(v.len()));
                }
                true
            },
        );
    }

    /// Drop all contents (after close), returning the memory.
    pub fn clear(&mut self) {
        *self = Tables::default();
    }
}

/// A named keyspace of a [`crate::Db`]: an independent ordered key space
/// with the same operations as the store's default keyspace. Get one with
/// [`crate::Db::keyspace`] (opens or creates) or
/// [`crate::Db::open_keyspace`] (must exist).
///
/// A handle stays valid until its keyspace is dropped: afterwards every
/// call on it fails with [`Error::NotFound`], even if a keyspace of the
/// same name is created again (that one has a new id).
///
/// Thread safety: `Send + Sync`, cheap to clone; it holds a reference to
/// the store and reports [`Error::Closed`] once the store is closed.
#[derive(Clone)]
pub struct Keyspace {
    pub(crate) inner: Arc<Inner>,
    pub(crate) id: u32,
    pub(crate) name: Arc<str>,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish()
    }
}

impl Keyspace {
    /// The keyspace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The keyspace's id: stable for its lifetime, never reused after a
    /// drop. The default keyspace has id 0.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The value of `key`, or `None`. Errors: [`Error::InvalidArgument`]
    /// (empty or oversized key), [`Error::NotFound`] (the keyspace was
    /// dropped), [`Error::Closed`].
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.inner
            .get_in(self.id, key.as_ref(), |v| v.map(|v| v.to_vec()))
    }

    /// The values of `keys` in this keyspace, read under one read lock (see
    /// [`crate::Db::get_many`]). Errors as [`Keyspace::get`].
    pub fn get_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        self.inner
            .get_many_in(self.id, keys, |_, v| out.push(v.map(<[u8]>::to_vec)))?;
        Ok(out)
    }

    /// Call `f` with the value of `key` (or `None`) under the read lock,
    /// without copying. Errors as [`Keyspace::get`].
    pub fn get_with<R>(
        &self,
        key: impl AsRef<[u8]>,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        self.inner.get_in(self.id, key.as_ref(), f)
    }

    /// Whether `key` is present. Errors as [`Keyspace::get`].
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.inner.get_in(self.id, key.as_ref(), |v| v.is_some())
    }

    /// Set `key` to `value` durably (at the store's durability level).
    /// Errors as [`crate::Db::set`], plus [`Error::NotFound`] if the
    /// keyspace was dropped.
    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.set_opt(key, value, &WriteOptions::default())
    }

    /// [`Keyspace::set`] with per-write options (see [`WriteOptions`]).
    /// Errors as [`Keyspace::set`].
    pub fn set_opt(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: &WriteOptions,
    ) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put_in_id(self.id, key.as_ref(), value.as_ref());
        self.inner.write(b, opts)
    }

    /// Remove `key` (succeeds whether or not it existed; an absent key
    /// writes no WAL record, as [`crate::Db::delete`]). Errors as
    /// [`Keyspace::set`], checked for absent keys too.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.delete_opt(key, &WriteOptions::default())
    }

    /// [`Keyspace::delete`] with per-write options. Errors as
    /// [`Keyspace::set`].
    pub fn delete_opt(&self, key: impl AsRef<[u8]>, opts: &WriteOptions) -> Result<()> {
        self.inner.delete_in(self.id, key.as_ref(), opts)
    }

    /// Live keys, key bytes and value bytes. Errors: [`Error::NotFound`]
    /// (dropped), [`Error::Closed`].
    pub fn stats(&self) -> Result<KeyspaceStats> {
        self.inner.keyspace_stats(self.id)
    }

    /// Number of live keys. Errors as [`Keyspace::stats`].
    pub fn len(&self) -> Result<u64> {
        self.stats().map(|s| s.keys)
    }

    /// Whether the keyspace holds no key. Errors as [`Keyspace::stats`].
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// Iterate over every pair in key order; consistency as
    /// [`crate::Db::range`]. A drop while iterating ends the iteration.
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// Iterate over the pairs whose keys fall in `range`, in key order.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        Iter::new(Arc::clone(&self.inner), self.id, range)
    }

    /// Iterate over the pairs whose keys start with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        Iter::new(
            Arc::clone(&self.inner),
            self.id,
            crate::db::prefix_bounds(prefix.as_ref()),
        )
    }

    /// Visit pairs in `range` without copying; as [`crate::Db::scan`].
    /// Errors: [`Error::NotFound`] (dropped), [`Error::Closed`].
    pub fn scan<K: AsRef<[u8]> + ?Sized, R: RangeBounds<K>>(
        &self,
        range: R,
        f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<u64> {
        self.inner.scan_bounds(
            self.id,
            range.start_bound().map(|k| k.as_ref()),
            range.end_bound().map(|k| k.as_ref()),
            f,
        )
    }
}
