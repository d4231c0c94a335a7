//! The in-memory index of live keys and values: ordered, plus a hash
//! index beside it for point lookups.
//!
//! Every live pair is one reference-counted allocation (a
//! [`triomphe::ThinArc`]: count, key length, slice length, then
//! `[key][value]`), held twice: by a `BTreeSet` ordered by key, for scans
//! and for the snapshot's ordered stream, and by a hash table keyed by the
//! key's bytes, for `get`. A point lookup in the B-tree took about 8
//! dependent cache misses at 1M keys (one per level, then the entry); the
//! hash table takes about three (its control bytes, its slot, the entry).
//! Beyond the key and value bytes an entry costs its slot in a B-tree
//! node, its slot in the hash table, the allocation's 24-byte header and
//! the allocator's own overhead (see [`ENTRY_OVERHEAD_ESTIMATE`]).
//!
//! Checkpoints must not stop writers while the snapshot is written, so the
//! base index sits behind an `Arc`: [`Table::freeze`] hands out a clone of
//! that `Arc` (O(1)) and diverts later writes into a small `delta` map that
//! readers consult first. When the snapshot is written, [`Table::merge_step`]
//! folds the delta back in small chunks.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::Arc;

use hashbrown::hash_table::Entry as Slot;
use hashbrown::{DefaultHashBuilder, HashTable};
use triomphe::ThinArc;

use crate::index::KeyspaceStats;

/// One pair's allocation: the header is the key length, the slice is the
/// key followed by the value.
type Data = ThinArc<u32, u8>;

fn data_key(d: &Data) -> &[u8] {
    &d.slice[..d.header.header as usize]
}

/// One live key-value pair, plus the first 8 bytes of its key inline
/// (big-endian, zero-padded) so that most comparisons in a B-tree search
/// never leave the node: for keys that differ in their first 8 bytes,
/// comparing the prefixes gives the same order as comparing the keys byte
/// by byte.
#[derive(Clone)]
pub struct Entry {
    prefix: u64,
    data: Data,
}

fn key_prefix(key: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = key.len().min(8);
    p[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(p)
}

thread_local! {
    /// Where [`Entry::new`] joins key and value before the one copy into
    /// the shared allocation.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Entry {
    /// Build an entry. `key.len()` must fit in a u32 (keys are limited to
    /// 16 MiB by the options).
    pub fn new(key: &[u8], value: &[u8]) -> Entry {
        let data = SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            s.clear();
            s.extend_from_slice(key);
            s.extend_from_slice(value);
            let d = ThinArc::from_header_and_slice(key.len() as u32, &s);
            // Do not keep a large value's buffer for the thread's lifetime.
            if s.capacity() > 64 << 10 {
                *s = Vec::new();
            }
            d
        });
        Entry {
            prefix: key_prefix(key),
            data,
        }
    }
    /// A key-only entry to search with.
    fn probe(key: &[u8]) -> Entry {
        Entry::new(key, &[])
    }
    /// Make this key-only entry hold `key`, reusing its allocation when the
    /// length is unchanged (the common case: keys of one length) and
    /// nothing else holds it.
    fn set_probe_key(&mut self, key: &[u8]) {
        let reused = self.data.slice.len() == key.len()
            && self.data.with_arc_mut(|a| match triomphe::Arc::get_mut(a) {
                Some(d) => {
                    d.slice_mut().copy_from_slice(key);
                    *d.header_mut() = key.len() as u32;
                    true
                }
                None => false,
            });
        if reused {
            self.prefix = key_prefix(key);
        } else {
            *self = Entry::probe(key);
        }
    }
    /// The key.
    pub fn key(&self) -> &[u8] {
        data_key(&self.data)
    }
    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.data.slice[self.data.header.header as usize..]
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Entry({} byte key, {} byte value)",
            self.key().len(),
            self.value().len()
        )
    }
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.prefix == o.prefix && self.key() == o.key()
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        self.prefix
            .cmp(&o.prefix)
            .then_with(|| self.key().cmp(o.key()))
    }
}

/// The live pairs, indexed twice: ordered (`set`) and hashed (`hash`,
/// holding the same allocations). Every change goes through the methods
/// below, which keep the two in step.
#[derive(Clone, Default)]
pub struct Index {
    set: BTreeSet<Entry>,
    hash: HashTable<Data>,
    /// Seeded per process (foldhash), so that keys chosen to collide in
    /// one process do not collide in another.
    hasher: DefaultHashBuilder,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Index({} entries)", self.len())
    }
}

impl Index {
    /// Build from an ordered set, adding the hash index.
    pub fn from_set(set: BTreeSet<Entry>) -> Index {
        let mut ix = Index {
            hash: HashTable::with_capacity(set.len()),
            set,
            hasher: DefaultHashBuilder::default(),
        };
        let Index { set, hash, hasher } = &mut ix;
        for e in set.iter() {
            hash.insert_unique(hasher.hash_one(e.key()), e.data.clone(), |d| {
                hasher.hash_one(data_key(d))
            });
        }
        ix
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.set.iter()
    }

    /// The entry of `key`, through the hash index.
    fn get(&self, key: &[u8]) -> Option<&Data> {
        self.hash
            .find(self.hasher.hash_one(key), |d| data_key(d) == key)
    }

    /// Insert `e`, or replace the entry with its key. Returns the entry
    /// replaced.
    fn replace(&mut self, e: Entry) -> Option<Entry> {
        hash_upsert(&mut self.hash, &self.hasher, &e.data);
        self.set.replace(e)
    }

    /// Remove `key`'s entry, if any, and return it.
    fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let data = hash_remove(&mut self.hash, &self.hasher, key)?;
        // The removed allocation is its own search key: no new allocation.
        self.set.take(&Entry {
            prefix: key_prefix(key),
            data,
        })
    }
}

/// Point `data`'s key at `data` in `hash`.
fn hash_upsert(hash: &mut HashTable<Data>, hasher: &DefaultHashBuilder, data: &Data) {
    let key = data_key(data);
    match hash.entry(
        hasher.hash_one(key),
        |d| data_key(d) == key,
        |d| hasher.hash_one(data_key(d)),
    ) {
        Slot::Occupied(mut o) => *o.get_mut() = data.clone(),
        Slot::Vacant(v) => {
            v.insert(data.clone());
        }
    }
}

/// Take `key` out of `hash`.
fn hash_remove(
    hash: &mut HashTable<Data>,
    hasher: &DefaultHashBuilder,
    key: &[u8],
) -> Option<Data> {
    let slot = hash
        .find_entry(hasher.hash_one(key), |d| data_key(d) == key)
        .ok()?;
    Some(slot.remove().0)
}

thread_local! {
    /// This thread's search key for point lookups, so that a `get` or
    /// `delete` allocates nothing (a B-tree search needs an `Entry`).
    static PROBE: RefCell<Entry> = RefCell::new(Entry::probe(&[]));
}

/// Run `f` with a key-only entry holding `key`, without allocating when
/// this thread's last probe had a key of the same length. `f` must not
/// call `with_probe` again (it only searches a B-tree).
fn with_probe<R>(key: &[u8], f: impl FnOnce(&Entry) -> R) -> R {
    PROBE.with(|p| {
        let mut p = p.borrow_mut();
        p.set_probe_key(key);
        f(&p)
    })
}

/// A frozen, immutable view of the base index, for snapshot writing.
pub type Frozen = Arc<Index>;

/// Estimated bytes of bookkeeping per entry beyond its key and value: the
/// 16-byte slot in a B-tree node at about 2/3 occupancy plus its share of
/// inner nodes (about 28), the 8-byte hash slot and control byte at a load
/// of 1/2 to 7/8 (about 16), the allocation's 24-byte header, and the
/// allocator's rounding (about 10-14). Measured with `getbench`'s counting
/// allocator (24-byte keys, 150-byte values): 82 at 1M entries, 76-86
/// from 10k to 10M.
pub const ENTRY_OVERHEAD_ESTIMATE: u64 = 82;

/// See the module docs.
#[derive(Debug, Default)]
pub struct Table {
    base: Arc<Index>,
    /// Writes made while a checkpoint holds a frozen base; `None` = delete.
    delta: Option<BTreeMap<Box<[u8]>, Option<Entry>>>,
    counts: KeyspaceStats,
    /// LSN of the last applied record.
    pub applied_lsn: u64,
    /// Bulk mode (recovery): writes in arrival order, `true` = delete,
    /// applied by [`Table::flush_bulk`] with one sort and one merge.
    bulk: Option<Vec<(Entry, bool)>>,
    /// Key and value bytes in `bulk`.
    bulk_bytes: u64,
}

impl Table {
    /// Look up `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        debug_assert!(
            self.bulk_is_flushed(),
            "read of a memtable with unflushed bulk writes"
        );
        if let Some(d) = &self.delta {
            if let Some(e) = d.get(key) {
                return e.as_ref().map(|e| e.value());
            }
        }
        self.base.get(key).map(|d| &d.slice[key.len()..])
    }

    /// Set `key` to `value`. One hash probe and one B-tree search when no
    /// checkpoint runs.
    /// Returns the length of the value it replaced, if any.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Option<usize> {
        let e = Entry::new(key, value);
        if let Some(b) = &mut self.bulk {
            b.push((e, false));
            self.bulk_bytes += (key.len() + value.len()) as u64;
            self.bound_bulk();
            return None;
        }
        let old = match &mut self.delta {
            Some(d) => match d.insert(key.into(), Some(e)) {
                Some(prev) => prev.map(|p| p.value().len()),
                None => self.base.get(key).map(|d| d.slice.len() - key.len()),
            },
            None => Arc::make_mut(&mut self.base)
                .replace(e)
                .map(|p| p.value().len()),
        };
        self.counts.account(key.len(), old, Some(value.len()));
        old
    }

    /// Remove `key` if present. Returns the length of the value removed.
    pub fn delete(&mut self, key: &[u8]) -> Option<usize> {
        if let Some(b) = &mut self.bulk {
            b.push((Entry::probe(key), true));
            self.bulk_bytes += key.len() as u64;
            self.bound_bulk();
            return None;
        }
        let old = match &mut self.delta {
            Some(d) => {
                let old = match d.get(key) {
                    Some(prev) => prev.as_ref().map(|p| p.value().len()),
                    None => self.base.get(key).map(|d| d.slice.len() - key.len()),
                };
                if old.is_some() {
                    d.insert(key.into(), None);
                }
                old
            }
            // No checkpoint holds the base, so make_mut never copies here.
            None => Arc::make_mut(&mut self.base)
                .remove(key)
                .map(|p| p.value().len()),
        };
        self.counts.account(key.len(), old, None);
        old
    }

    /// Number of live keys.
    pub fn len(&self) -> u64 {
        self.counts.keys
    }

    /// Total bytes of live keys and of live values.
    pub fn bytes(&self) -> (u64, u64) {
        (self.counts.key_bytes, self.counts.value_bytes)
    }

    /// Live keys and their key and value bytes.
    pub fn counts(&self) -> KeyspaceStats {
        self.counts
    }

    /// Call `f` with each live pair whose key is in `(start, end)`, in key
    /// order, borrowing key and value, until `f` returns `false`. Allocates
    /// nothing when `end` is unbounded and no checkpoint is merging.
    pub fn visit(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) {
        debug_assert!(
            self.bulk_is_flushed(),
            "read of a memtable with unflushed bulk writes"
        );
        let end_probe = end.map(Entry::probe);
        let end_bound = end_probe.as_ref();
        let start_key = match start {
            Bound::Included(k) | Bound::Excluded(k) => k,
            Bound::Unbounded => &[],
        };
        with_probe(start_key, |p| {
            let start_bound = start.map(|_| p);
            // An empty or inverted range (BTreeSet::range would panic).
            if let (
                Bound::Included(s) | Bound::Excluded(s),
                Bound::Included(e) | Bound::Excluded(e),
            ) = (start_bound, end_bound)
            {
                let both_inclusive = matches!(start_bound, Bound::Included(_))
                    && matches!(end_bound, Bound::Included(_));
                if s > e || (s == e && !both_inclusive) {
                    return;
                }
            }
            let mut base = self.base.set.range((start_bound, end_bound)).peekable();
            let Some(delta) = &self.delta else {
                for e in base {
                    if !f(e.key(), e.value()) {
                        return;
                    }
                }
                return;
            };
            let mut delta = delta.range::<[u8], _>((start, end)).peekable();
            loop {
                let next = match (base.peek(), delta.peek()) {
                    (None, None) => return,
                    (Some(b), None) => {
                        let r = (b.key(), Some(b.value()));
                        base.next();
                        r
                    }
                    (None, Some(&(k, v))) => {
                        delta.next();
                        (&k[..], v.as_ref().map(|e| e.value()))
                    }
                    (Some(b), Some(&(k, v))) => match b.key().cmp(&k[..]) {
                        Ordering::Less => {
                            let r = (b.key(), Some(b.value()));
                            base.next();
                            r
                        }
                        Ordering::Equal => {
                            base.next();
                            delta.next();
                            (&k[..], v.as_ref().map(|e| e.value()))
                        }
                        Ordering::Greater => {
                            delta.next();
                            (&k[..], v.as_ref().map(|e| e.value()))
                        }
                    },
                };
                if let (k, Some(v)) = next {
                    if !f(k, v) {
                        return;
                    }
                }
            }
        });
    }

    /// Freeze the current contents for a snapshot: O(1). Later writes go to
    /// the delta until [`Table::merge_step`] reports completion.
    ///
    /// The checkpoint merges the delta fully before it freezes again; if a
    /// delta is still there (a merge cut short), it is merged first, so
    /// that the view never misses the writes held in it.
    pub fn freeze(&mut self) -> Frozen {
        if self.delta.is_some() {
            self.merge_step(usize::MAX);
        }
        self.delta = Some(BTreeMap::new());
        Arc::clone(&self.base)
    }

    /// Move up to `max` delta entries into the base. Returns `true` once the
    /// delta is gone. Call after every frozen view has been dropped, or the
    /// base is copied.
    pub fn merge_step(&mut self, max: usize) -> bool {
        let Some(d) = &mut self.delta else {
            return true;
        };
        let mut moved = Vec::with_capacity(max.min(d.len()));
        for _ in 0..max {
            match d.pop_first() {
                Some(x) => moved.push(x),
                None => break,
            }
        }
        let done = d.is_empty();
        let base = Arc::make_mut(&mut self.base);
        for (k, v) in moved {
            match v {
                Some(e) => {
                    base.replace(e);
                }
                None => {
                    base.remove(&k);
                }
            }
        }
        if done {
            self.delta = None;
        }
        done
    }

    /// Enter bulk mode, for recovery's replay: `put` and `delete` only
    /// append to a list (and return `None`: the counts are recomputed by
    /// [`Table::end_bulk`]); [`Table::flush_bulk`] applies the list
    /// with one stable sort and one merge, which replaces a B-tree search
    /// per write. Reads must not run before a flush. Not while a checkpoint
    /// holds a frozen base.
    pub fn begin_bulk(&mut self) {
        debug_assert!(self.delta.is_none(), "bulk mode during a checkpoint");
        self.bulk.get_or_insert_with(Vec::new);
    }

    /// Apply the writes listed in bulk mode, in their order (the last write
    /// to a key wins), and stay in bulk mode.
    pub fn flush_bulk(&mut self) {
        let Some(ops) = self.bulk.as_mut().filter(|b| !b.is_empty()) else {
            return;
        };
        let mut ops = std::mem::take(ops);
        self.bulk_bytes = 0;
        // Stable: writes to one key keep their arrival order.
        ops.sort_by(|a, b| a.0.cmp(&b.0));
        let mut last: Vec<(Entry, bool)> = Vec::with_capacity(ops.len());
        for op in ops {
            match last.last_mut() {
                Some(prev) if prev.0 == op.0 => *prev = op,
                _ => last.push(op),
            }
        }
        let base = std::mem::take(Arc::make_mut(&mut self.base));
        self.base = Arc::new(if base.is_empty() {
            Index::from_set(
                last.into_iter()
                    .filter(|(_, del)| !del)
                    .map(|(e, _)| e)
                    .collect(),
            )
        } else {
            let Index {
                set,
                mut hash,
                hasher,
            } = base;
            for (e, del) in &last {
                if *del {
                    hash_remove(&mut hash, &hasher, e.key());
                } else {
                    hash_upsert(&mut hash, &hasher, &e.data);
                }
            }
            let mut out = Vec::with_capacity(set.len() + last.len());
            let mut old = set.into_iter().peekable();
            for (e, del) in last {
                while let Some(o) = old.next_if(|o| *o < e) {
                    out.push(o);
                }
                old.next_if(|o| *o == e);
                if !del {
                    out.push(e);
                }
            }
            out.extend(old);
            Index {
                // Sorted and unique: BTreeSet builds it in one pass.
                set: out.into_iter().collect(),
                hash,
                hasher,
            }
        });
        self.counts = KeyspaceStats::default();
        for e in self.base.iter() {
            self.counts
                .account(e.key().len(), None, Some(e.value().len()));
        }
    }

    /// Flush and leave bulk mode; the counts are right again.
    pub fn end_bulk(&mut self) {
        self.flush_bulk();
        self.bulk = None;
    }

    /// Flush once the list holds as many key and value bytes as the table
    /// (and at least 64 MiB): a log that overwrites a few keys many times
    /// then needs memory for about twice the live data plus 64 MiB, not
    /// for every write in it, and each flush's merge is paid for by at
    /// least as many bytes of listed writes.
    fn bound_bulk(&mut self) {
        let live = self.counts.key_bytes + self.counts.value_bytes;
        if self.bulk_bytes >= live.max(64 << 20) {
            self.flush_bulk();
        }
    }

    fn bulk_is_flushed(&self) -> bool {
        self.bulk.as_ref().is_none_or(Vec::is_empty)
    }

    /// Replace the whole contents (used by recovery to install a snapshot).
    pub fn install(&mut self, set: BTreeSet<Entry>, lsn: u64) {
        self.counts = KeyspaceStats {
            keys: set.len() as u64,
            key_bytes: set.iter().map(|e| e.key().len() as u64).sum(),
            value_bytes: set.iter().map(|e| e.value().len() as u64).sum(),
        };
        self.base = Arc::new(Index::from_set(set));
        self.delta = None;
        self.applied_lsn = lsn;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Bound::*;

    fn pairs(m: &Table) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        m.visit(Unbounded, Unbounded, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            true
        });
        out
    }

    #[test]
    fn freeze_delta_merge_keeps_views_consistent() {
        let mut m = Table::default();
        m.put(b"a", b"1");
        m.put(b"b", b"2");
        let frozen = m.freeze();
        m.put(b"a", b"10");
        m.delete(b"b");
        m.put(b"c", b"3");
        assert_eq!(m.get(b"a"), Some(&b"10"[..]));
        assert_eq!(m.get(b"b"), None);
        assert_eq!(m.len(), 2);
        let all = pairs(&m);
        assert_eq!(
            all,
            vec![
                (b"a".to_vec(), b"10".to_vec()),
                (b"c".to_vec(), b"3".to_vec())
            ]
        );
        // The frozen view still shows the state at freeze time.
        let fv: Vec<_> = frozen
            .iter()
            .map(|e| (e.key().to_vec(), e.value().to_vec()))
            .collect();
        assert_eq!(
            fv,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
        drop(frozen);
        while !m.merge_step(1) {}
        assert_eq!(pairs(&m), all);
        assert_eq!(m.bytes(), (2, 3));
    }
}

#[cfg(test)]
mod model {
    //! The two indexes against a `BTreeMap` model, through checkpoints
    //! (freeze, delta, merge) and bulk mode: point reads use the hash
    //! index, scans the ordered one, and both must match the model.
    use super::*;
    use proptest::prelude::*;
    use std::ops::Bound::*;

    type Model = BTreeMap<Vec<u8>, Vec<u8>>;

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, Vec<u8>),
        Delete(u8),
        Freeze,
        Merge(usize),
        Bulk,
        EndBulk,
    }

    fn key(k: u8) -> Vec<u8> {
        // Two shapes: long keys sharing an 8-byte prefix, and short ones.
        if k % 2 == 0 {
            format!("shared-prefix-{k:03}").into_bytes()
        } else {
            vec![k]
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u8..24, proptest::collection::vec(any::<u8>(), 0..20))
                .prop_map(|(k, v)| Op::Put(k, v)),
            4 => (0u8..24).prop_map(Op::Delete),
            1 => Just(Op::Freeze),
            2 => (1usize..5).prop_map(Op::Merge),
            1 => Just(Op::Bulk),
            1 => Just(Op::EndBulk),
        ]
    }

    proptest! {
        #[test]
        fn both_indexes_match_a_model(ops in proptest::collection::vec(op(), 1..120)) {
            let mut m = Table::default();
            let mut model = Model::new();
            let mut frozen: Option<(Frozen, Model)> = None;
            let mut bulk = false;
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        let old = m.put(&key(k), &v);
                        let want = model.insert(key(k), v).map(|v| v.len());
                        if !bulk {
                            prop_assert_eq!(old, want);
                        }
                    }
                    Op::Delete(k) => {
                        let old = m.delete(&key(k));
                        let want = model.remove(&key(k)).map(|v| v.len());
                        if !bulk {
                            prop_assert_eq!(old, want);
                        }
                    }
                    Op::Freeze if !bulk && frozen.is_none() => {
                        frozen = Some((m.freeze(), model.clone()));
                    }
                    Op::Merge(n) => {
                        // The snapshot is written: drop the view, then merge.
                        if let Some((f, at_freeze)) = frozen.take() {
                            let seen: Model = f
                                .iter()
                                .map(|e| (e.key().to_vec(), e.value().to_vec()))
                                .collect();
                            prop_assert_eq!(seen, at_freeze);
                        }
                        m.merge_step(n);
                    }
                    Op::Bulk if frozen.is_none() && m.delta.is_none() => {
                        m.begin_bulk();
                        bulk = true;
                    }
                    Op::EndBulk if bulk => {
                        m.end_bulk();
                        bulk = false;
                    }
                    _ => {}
                }
                if bulk {
                    continue;
                }
                for k in 0u8..24 {
                    prop_assert_eq!(m.get(&key(k)), model.get(&key(k)).map(|v| &v[..]));
                }
                let mut all = Vec::new();
                m.visit(Unbounded, Unbounded, |k, v| {
                    all.push((k.to_vec(), v.to_vec()));
                    true
                });
                let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                prop_assert_eq!(all, want);
                prop_assert_eq!(m.len(), model.len() as u64);
            }
        }
    }
}
