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
//! A [`View`] is every table's ordered index at one applied LSN: clones of
//! their copy-on-write trees (see [`tree`]), O(1) to take. Snapshots,
//! iterators, checkpoints and backups read views; latest-value point reads
//! use the tables' hash indexes.
//!
//! Thread safety: the in-memory tables are guarded by the store's index
//! lock; a `View` is `Send + Sync` and needs no lock.

pub mod entry;
pub mod table;
pub mod tree;

use crate::format::batch::{self, Op};
pub use entry::{Entry, OwnedVal, Val, ValuePtr};
use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;
pub use table::{Table, ENTRY_OVERHEAD_ESTIMATE};
pub use tree::{OwnedRange, Tree};

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

/// The bounds, in the named table, of keyspace `id`'s keys in
/// `(start, end)` (id 0 there: the catalog).
pub(crate) fn named_bounds(
    id: u32,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
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
    (s, e)
}

/// Visit keyspace `id` of the two trees; `f` sees the user's keys.
fn visit_in(
    default: &Tree,
    named: &Tree,
    id: u32,
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    mut f: impl FnMut(&[u8], Val<'_>) -> bool,
) {
    if id == 0 {
        return default.visit(start, end, |e| f(e.key(), e.val()));
    }
    let (s, e) = named_bounds(id, start, end);
    named.visit(
        s.as_ref().map(|k| &k[..]),
        e.as_ref().map(|k| &k[..]),
        |e| f(&e.key()[4..], e.val()),
    );
}

/// A small inline value's bytes (the catalog's ids, which are never
/// separated); `None` for a separated one.
fn inline(v: Val<'_>) -> Option<&[u8]> {
    match v {
        Val::Inline(b) => Some(b),
        Val::At(_) => None,
    }
}

/// Every named keyspace in the catalog of `named`, by name.
fn catalog_names(named: &Tree) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    // Not `visit_in`: id 0 there is the default keyspace, here the catalog.
    let (s, e) = named_bounds(CATALOG, Bound::Unbounded, Bound::Unbounded);
    named.visit(
        s.as_ref().map(|k| &k[..]),
        e.as_ref().map(|k| &k[..]),
        |e| {
            let (k, v) = (&e.key()[4..], e.val());
            if let (false, Ok(name), Some(id)) = (
                k.is_empty(),
                std::str::from_utf8(k),
                inline(v).and_then(|v| crate::format::codec::u32_at(v, 0)),
            ) {
                out.push((name.to_string(), id));
            }
            true
        },
    );
    out
}

/// Every keyspace's ordered index at one applied LSN (see the module
/// docs). Cloning one is O(1).
#[derive(Clone, Default)]
pub struct View {
    /// The default keyspace's tree.
    pub default: Tree,
    /// The named keyspaces' and the catalog's tree.
    pub named: Tree,
    live: Arc<HashMap<u32, KeyspaceStats>>,
    default_counts: KeyspaceStats,
    /// The LSN of the last record applied to this view.
    pub lsn: u64,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "View(lsn {})", self.lsn)
    }
}

impl View {
    /// Whether `id` names a live keyspace in this view (0 always does).
    pub fn is_live(&self, id: u32) -> bool {
        id == 0 || self.live.contains_key(&id)
    }

    /// Live keys and bytes of keyspace `id` in this view.
    pub fn stats(&self, id: u32) -> Option<KeyspaceStats> {
        if id == 0 {
            return Some(self.default_counts);
        }
        self.live.get(&id).copied()
    }

    /// The value of `key` in keyspace `id` (or where it is).
    pub fn get(&self, id: u32, key: &[u8]) -> Option<Val<'_>> {
        if id == 0 {
            self.default.get(key).map(Entry::val)
        } else {
            self.named.get(&named_key(id, key)).map(Entry::val)
        }
    }

    /// Every named keyspace of this view, by name.
    pub fn names(&self) -> Vec<(String, u32)> {
        catalog_names(&self.named)
    }

    /// [`Tree::visit`] within keyspace `id`; `f` sees the user's keys.
    pub fn visit(
        &self,
        id: u32,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        f: impl FnMut(&[u8], Val<'_>) -> bool,
    ) {
        visit_in(&self.default, &self.named, id, start, end, f)
    }

    /// A double-ended range over keyspace `id`'s keys in `(start, end)`
    /// that holds this view's tree, and how many leading bytes of each
    /// key it yields belong to the named table (4 for a named keyspace,
    /// else 0).
    pub fn range_owned(
        &self,
        id: u32,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> (OwnedRange, usize) {
        if id == 0 {
            return (self.default.range_owned(start, end), 0);
        }
        let (s, e) = named_bounds(id, start, end);
        (
            self.named
                .range_owned(s.as_ref().map(|k| &k[..]), e.as_ref().map(|k| &k[..])),
            4,
        )
    }
}

/// The in-memory index of every keyspace.
#[derive(Debug)]
pub(crate) struct Tables {
    /// The default keyspace (id 0).
    pub default: Table,
    /// Every named keyspace and the catalog, keyed by id then key.
    pub named: Table,
    /// Live named keyspaces by id (shared with views; copied on the first
    /// change after a view is taken).
    live: Arc<HashMap<u32, KeyspaceStats>>,
    /// The LSN of the last applied record.
    applied_lsn: u64,
    /// Values of at least this many bytes written with a location
    /// ([`Tables::apply_batch`]) stay in the log; `usize::MAX`: none.
    separate_from: usize,
    /// Separated values the current state points at, per segment.
    segments: HashMap<u64, SegmentLive>,
    /// Segments that held a separated value at some time since open (a
    /// snapshot taken then may still point into them).
    held: HashSet<u64>,
    /// Bytes of the separated values the current state points at.
    separated: u64,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            default: Table::default(),
            named: Table::default(),
            live: Arc::default(),
            applied_lsn: 0,
            separate_from: usize::MAX,
            segments: HashMap::new(),
            held: HashSet::new(),
            separated: 0,
        }
    }
}

/// The separated values the current state holds in one segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentLive {
    /// Number of values.
    pub values: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Where a `KvBatch` payload is in the log: its segment and the file
/// offset of its first byte, so that values can be left there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadAt {
    /// Segment id.
    pub segment: u64,
    /// File offset of the payload's first byte.
    pub offset: u64,
}

impl PayloadAt {
    /// The pointer to `v`, a slice of `payload` (the payload at this
    /// place), with the given length and CRC.
    fn pointer(&self, payload: &[u8], v: &[u8], crc: u32) -> ValuePtr {
        let within = v.as_ptr() as usize - payload.as_ptr() as usize;
        ValuePtr {
            segment: self.segment,
            offset: self.offset + within as u64,
            len: v.len() as u32,
            crc,
        }
    }
}

impl Tables {
    /// Leave values of at least `bytes` bytes in the log from now on
    /// (`usize::MAX`: keep every value in memory).
    pub fn separate_from(&mut self, bytes: usize) {
        self.separate_from = bytes;
    }

    /// Separated values per segment (current state).
    pub fn segments(&self) -> &HashMap<u64, SegmentLive> {
        &self.segments
    }

    /// Bytes of the separated values the current state points at.
    pub fn separated_bytes(&self) -> u64 {
        self.separated
    }

    /// Whether a separated value was ever in `segment` since open.
    pub fn ever_held(&self, segment: u64) -> bool {
        self.held.contains(&segment)
    }

    fn count_in(&mut self, v: Val<'_>) {
        if let Val::At(p) = v {
            let s = self.segments.entry(p.segment).or_default();
            s.values += 1;
            s.bytes += u64::from(p.len);
            self.held.insert(p.segment);
            self.separated += u64::from(p.len);
        }
    }

    fn count_out(&mut self, old: Option<Entry>) {
        if let Some(Val::At(p)) = old.as_ref().map(Entry::val) {
            if let Some(s) = self.segments.get_mut(&p.segment) {
                s.values -= 1;
                s.bytes -= u64::from(p.len);
                self.separated -= u64::from(p.len);
                if s.values == 0 {
                    self.segments.remove(&p.segment);
                }
            }
        }
    }

    /// Recount [`Tables::segments`] from both trees (after a checkpoint is
    /// installed or bulk writes are applied).
    pub fn recount_segments(&mut self) {
        let mut segs: HashMap<u64, SegmentLive> = HashMap::new();
        for t in [self.default.tree(), self.named.tree()] {
            t.visit(Bound::Unbounded, Bound::Unbounded, |e| {
                if let Val::At(p) = e.val() {
                    let s = segs.entry(p.segment).or_default();
                    s.values += 1;
                    s.bytes += u64::from(p.len);
                }
                true
            });
        }
        self.held.extend(segs.keys().copied());
        self.separated = segs.values().map(|s| s.bytes).sum();
        self.segments = segs;
    }

    /// The entry for `key` with value `v`, at `at` (separated if it is
    /// long enough and its place is known).
    fn entry(
        &self,
        key: &[u8],
        v: &[u8],
        crc: Option<u32>,
        at: Option<(PayloadAt, &[u8])>,
    ) -> Entry {
        match at {
            Some((p, payload)) if v.len() >= self.separate_from => {
                let crc = crc.unwrap_or_else(|| crc32fast::hash(v));
                Entry::new_ptr(key, p.pointer(payload, v, crc))
            }
            _ => Entry::new(key, v),
        }
    }
    /// The LSN of the last applied record.
    pub fn applied_lsn(&self) -> u64 {
        self.applied_lsn
    }

    /// Record that everything up to `lsn` is applied.
    pub fn set_applied_lsn(&mut self, lsn: u64) {
        self.applied_lsn = lsn;
    }

    /// A view of the current state: O(1) (three reference counts).
    pub fn view(&self) -> View {
        View {
            default: self.default.tree().clone(),
            named: self.named.tree().clone(),
            live: Arc::clone(&self.live),
            default_counts: self.default.counts(),
            lsn: self.applied_lsn,
        }
    }

    /// Whether `id` names a live keyspace (0, the default, always is).
    pub fn is_live(&self, id: u32) -> bool {
        id == 0 || self.live.contains_key(&id)
    }

    /// The id of keyspace `name`, if it exists.
    pub fn lookup(&self, name: &str) -> Option<u32> {
        let v = self.named.get(&named_key(CATALOG, name.as_bytes()))?;
        crate::format::codec::u32_at(inline(v)?, 0)
    }

    /// The id the next created keyspace gets.
    pub fn next_id(&self) -> u32 {
        self.named
            .get(&named_key(CATALOG, &[]))
            .and_then(inline)
            .and_then(|v| crate::format::codec::u32_at(v, 0))
            .unwrap_or(1)
    }

    /// Every named keyspace, by name.
    pub fn names(&self) -> Vec<(String, u32)> {
        catalog_names(self.named.tree())
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

    /// The latest value of `key` in keyspace `id` (hash index), or where
    /// it is.
    pub fn get(&self, id: u32, key: &[u8]) -> Option<Val<'_>> {
        if id == 0 {
            self.default.get(key)
        } else {
            self.named.get(&named_key(id, key))
        }
    }

    /// Visit the latest state of keyspace `id` (see [`View::visit`]).
    pub fn visit(
        &self,
        id: u32,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        f: impl FnMut(&[u8], Val<'_>) -> bool,
    ) {
        visit_in(self.default.tree(), self.named.tree(), id, start, end, f)
    }

    /// Up to `limit` pairs of keyspace `id` in `(start, end)`, copied out
    /// (separated values as their pointers).
    pub fn range(
        &self,
        id: u32,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, OwnedVal)> {
        let mut out = Vec::new();
        if limit > 0 {
            self.visit(id, start, end, |k, v| {
                out.push((k.to_vec(), v.into_owned()));
                out.len() < limit
            });
        }
        out
    }

    /// Apply a `KvBatch` payload (see [`crate::batch`]) in one pass over
    /// it. Used by the write path, for batches it built and validated, and
    /// by replay. `at` is where the payload is in the log: with it, values
    /// of at least [`Tables::separate_from`] bytes are left there and the
    /// index holds their pointer. Writes to a keyspace that is not live are skipped: such a
    /// write was validated before a concurrent drop was applied, and
    /// skipping it is the same as applying it just before the drop. A
    /// relocation applies only if its key still points at the place it
    /// names. A malformed payload stops at the bad operation with its
    /// reason; the operations before it stay applied, which only replay
    /// can meet, and replay then fails the whole open.
    pub fn apply_batch(
        &mut self,
        payload: &[u8],
        at: Option<PayloadAt>,
    ) -> std::result::Result<(), &'static str> {
        let at = at.map(|a| (a, payload));
        for op in batch::decode_ops(payload) {
            let (op, crc) = op?;
            match op {
                Op::Put(k, v) => {
                    let e = self.entry(k, v, crc, at);
                    self.count_in(e.val());
                    let old = self.default.put_entry(e);
                    self.count_out(old);
                }
                Op::Delete(k) => {
                    let old = self.default.delete(k);
                    self.count_out(old);
                }
                Op::PutIn(id, k, v) => {
                    if self.live.contains_key(&id) {
                        let e = self.entry(&named_key(id, k), v, crc, at);
                        self.count_in(e.val());
                        let old = self.named.put_entry(e);
                        let old_len = old.as_ref().map(|o| o.val().len());
                        self.count_out(old);
                        if let Some(s) = Arc::make_mut(&mut self.live).get_mut(&id) {
                            s.account(k.len(), old_len, Some(v.len()));
                        }
                    }
                }
                Op::DeleteIn(id, k) => {
                    if self.live.contains_key(&id) {
                        let old = self.named.delete(&named_key(id, k));
                        if let Some(o) = &old {
                            let len = o.val().len();
                            if let Some(s) = Arc::make_mut(&mut self.live).get_mut(&id) {
                                s.account(k.len(), Some(len), None);
                            }
                        }
                        self.count_out(old);
                    }
                }
                Op::Relocate {
                    named,
                    from,
                    key,
                    value,
                } => {
                    let table = if named {
                        &mut self.named
                    } else {
                        &mut self.default
                    };
                    table.flush_bulk(); // the condition reads the table
                    if table.get(key).and_then(|v| v.ptr()) != Some(from) {
                        continue;
                    }
                    // Separated again at its new place, whatever the
                    // threshold is now: it was separated before.
                    let e = match at {
                        Some((p, payload)) => {
                            Entry::new_ptr(key, p.pointer(payload, value, from.crc))
                        }
                        None => Entry::new(key, value),
                    };
                    self.count_in(e.val());
                    let table = if named {
                        &mut self.named
                    } else {
                        &mut self.default
                    };
                    let old = table.put_entry(e);
                    self.count_out(old);
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
                    Arc::make_mut(&mut self.live).entry(id).or_default();
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
                        let old = self.named.delete(&k);
                        self.count_out(old);
                    }
                    Arc::make_mut(&mut self.live).remove(&id);
                }
            }
        }
        Ok(())
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
        self.recount_segments();
    }

    /// Rebuild the live-keyspace table from the catalog and count each
    /// keyspace's keys (after a checkpoint is installed).
    pub fn rebuild_live(&mut self) {
        let mut live: HashMap<u32, KeyspaceStats> = self
            .names()
            .into_iter()
            .map(|(_, id)| (id, KeyspaceStats::default()))
            .collect();
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
        self.live = Arc::new(live);
    }

    /// Bytes that `views` hold and the current state does not: tree nodes
    /// that were copied since a view was taken, and entries replaced or
    /// removed since (each counted once, however many views hold it).
    /// O(nodes of the current state + nodes only the views hold).
    pub fn pinned_bytes(&self, views: &[View]) -> u64 {
        let mut live_nodes = HashSet::new();
        for t in [self.default.tree(), self.named.tree()] {
            if let Some(r) = t.root() {
                tree::Node::walk(
                    r,
                    &mut |n| live_nodes.insert(std::sync::Arc::as_ptr(n)),
                    &mut |_| {},
                );
            }
        }
        let (mut seen_nodes, mut seen_entries) = (HashSet::new(), HashSet::new());
        let (mut node_bytes, mut entry_bytes) = (0u64, 0u64);
        for v in views {
            for (t, table) in [(&v.default, &self.default), (&v.named, &self.named)] {
                let Some(r) = t.root() else { continue };
                tree::Node::walk(
                    r,
                    &mut |n| {
                        let p = Arc::as_ptr(n);
                        if live_nodes.contains(&p) || !seen_nodes.insert(p) {
                            return false;
                        }
                        node_bytes += n.heap_bytes();
                        true
                    },
                    &mut |e| {
                        if !table.holds(e) && seen_entries.insert(e.data.as_ptr()) {
                            entry_bytes += e.heap_bytes();
                        }
                    },
                );
            }
        }
        node_bytes + entry_bytes
    }

    /// Drop all contents (after close), returning the memory.
    pub fn clear(&mut self) {
        *self = Tables::default();
    }
}
