//! The resident index of every keyspace: the ordered table of the default
//! keyspace, the table of every named keyspace and the catalog, and the
//! per-keyspace counts. It is the write path's apply step ([`Tables::apply_batch`],
//! shared by commit and replay) and what reads, checkpoints and backups read.
//!
//! The default keyspace is the store's original key space: its pairs live
//! in one [`Table`], exactly as before keyspaces existed. Every named
//! keyspace lives in a second `Table`, under its 4-byte big-endian id
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

pub mod table;

use crate::format::batch::{self, Op};
use std::collections::HashMap;
use std::ops::Bound;
pub use table::{Entry, Frozen, Index, Table, ENTRY_OVERHEAD_ESTIMATE};

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

/// The in-memory index of every keyspace.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    /// The default keyspace (id 0).
    pub default: Table,
    /// Every named keyspace and the catalog, keyed by id then key.
    pub named: Table,
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
        crate::format::codec::u32_at(v, 0)
    }

    /// The id the next created keyspace gets.
    pub fn next_id(&self) -> u32 {
        self.named
            .get(&named_key(CATALOG, &[]))
            .and_then(|v| crate::format::codec::u32_at(v, 0))
            .unwrap_or(1)
    }

    /// Every named keyspace, by name.
    pub fn names(&self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        self.visit_named(CATALOG, Bound::Unbounded, Bound::Unbounded, |k, v| {
            if let (false, Ok(name), Some(id)) = (
                k.is_empty(),
                std::str::from_utf8(k),
                crate::format::codec::u32_at(v, 0),
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

    /// [`Table::visit`] within keyspace `id`; `f` sees the user's keys.
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
    /// [`Table::begin_bulk`].
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
