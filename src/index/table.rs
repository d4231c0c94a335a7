//! One table of live keys and values: a copy-on-write B+tree ordered by
//! key ([`Tree`]), plus a hash index beside it for latest-value point
//! lookups.
//!
//! Every live pair is one reference-counted allocation ([`Entry`]), held
//! twice: by the tree, for scans, snapshots and checkpoints, and by a hash
//! table keyed by the key's bytes, for `get`. A point lookup in a B-tree
//! takes about one dependent cache miss per level and then the entry; the
//! hash table takes about three (its control bytes, its slot, the entry).
//! Only the tree is versioned: a snapshot is a clone of it (O(1)), and
//! the hash index always answers for the latest version. Beyond the key
//! and value bytes an entry costs its slot in a leaf, its slot in the hash
//! table, the allocation's header and the allocator's own overhead (see
//! [`ENTRY_OVERHEAD_ESTIMATE`]).

use std::hash::BuildHasher;
use std::ops::Bound;

use hashbrown::hash_table::Entry as Slot;
use hashbrown::{DefaultHashBuilder, HashTable};

use crate::index::entry::{data_key, data_val, Data, Entry, Val};
use crate::index::tree::Tree;
use crate::index::KeyspaceStats;

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

/// Estimated bytes of bookkeeping per entry beyond its key and value: the
/// 16-byte slot in a leaf at about 7/8 (after a load) to 2/3 (after random
/// writes) occupancy plus its share of branches (about 20-26), the 8-byte
/// hash slot and control byte at a load of 1/2 to 7/8 (about 16), the
/// allocation's 24-byte header, and the allocator's rounding (about
/// 10-14). Measured with `getbench`'s counting allocator (24-byte keys,
/// 150-byte values): 80 at 100k entries, 86 at 1M (docs/bench/index-change.md).
pub const ENTRY_OVERHEAD_ESTIMATE: u64 = 84;

/// See the module docs.
#[derive(Default)]
pub struct Table {
    tree: Tree,
    hash: HashTable<Data>,
    /// Seeded per process (foldhash), so that keys chosen to collide in
    /// one process do not collide in another.
    hasher: DefaultHashBuilder,
    counts: KeyspaceStats,
    /// Bulk mode (recovery): writes in arrival order, `true` = delete,
    /// applied by [`Table::flush_bulk`] with one sort and one merge.
    bulk: Option<Vec<(Entry, bool)>>,
    /// Key and value bytes in `bulk`.
    bulk_bytes: u64,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({} entries)", self.tree.len())
    }
}

impl Table {
    /// The latest value of `key` (or where it is), through the hash index.
    pub fn get(&self, key: &[u8]) -> Option<Val<'_>> {
        debug_assert!(
            self.bulk_is_flushed(),
            "read of a table with unflushed bulk writes"
        );
        self.hash
            .find(self.hasher.hash_one(key), |d| data_key(d) == key)
            .map(data_val)
    }

    /// Whether the current state holds `e`'s allocation (not merely an
    /// equal pair).
    pub fn holds(&self, e: &Entry) -> bool {
        let key = e.key();
        self.hash
            .find(self.hasher.hash_one(key), |d| data_key(d) == key)
            .is_some_and(|d| e.same(d))
    }

    /// The ordered index (the latest version); clone it for a snapshot.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Set `key` to `value`: one hash probe and one tree descent (which
    /// copies the nodes on its path that a snapshot shares). Returns the
    /// entry it replaced, if any.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Option<Entry> {
        self.put_entry(Entry::new(key, value))
    }

    /// [`Table::put`] of a built entry (an inline or a separated value).
    /// In bulk mode it only lists the write and returns `None`.
    pub fn put_entry(&mut self, e: Entry) -> Option<Entry> {
        let (klen, vlen) = (e.key().len(), e.val().len());
        if let Some(b) = &mut self.bulk {
            self.bulk_bytes += e.heap_bytes();
            b.push((e, false));
            self.bound_bulk();
            return None;
        }
        hash_upsert(&mut self.hash, &self.hasher, &e.data);
        let old = self.tree.insert(e);
        self.counts
            .account(klen, old.as_ref().map(|p| p.val().len()), Some(vlen));
        old
    }

    /// Remove `key` if present. Returns the entry removed.
    pub fn delete(&mut self, key: &[u8]) -> Option<Entry> {
        if let Some(b) = &mut self.bulk {
            b.push((Entry::probe(key), true));
            self.bulk_bytes += key.len() as u64;
            self.bound_bulk();
            return None;
        }
        // The hash index says whether it is there, so the tree is only
        // descended (and its path copied) for a key that is.
        hash_remove(&mut self.hash, &self.hasher, key)?;
        let old = self.tree.remove(key);
        debug_assert!(old.is_some(), "the two indexes disagree");
        self.counts
            .account(key.len(), old.as_ref().map(|p| p.val().len()), None);
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
    /// order, borrowing key and value, until `f` returns `false`.
    pub fn visit(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        mut f: impl FnMut(&[u8], Val<'_>) -> bool,
    ) {
        debug_assert!(
            self.bulk_is_flushed(),
            "read of a table with unflushed bulk writes"
        );
        self.tree.visit(start, end, |e| f(e.key(), e.val()));
    }

    /// Enter bulk mode, for recovery's replay: `put` and `delete` only
    /// append to a list (and return `None`: the counts are recomputed by
    /// [`Table::end_bulk`]); [`Table::flush_bulk`] applies the list
    /// with one stable sort and one merge, which replaces a tree descent
    /// per write. Reads must not run before a flush.
    pub fn begin_bulk(&mut self) {
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
        for (e, del) in &last {
            if *del {
                hash_remove(&mut self.hash, &self.hasher, e.key());
            } else {
                hash_upsert(&mut self.hash, &self.hasher, &e.data);
            }
        }
        let old = std::mem::take(&mut self.tree);
        let mut out = Vec::with_capacity(old.len() + last.len());
        let mut old = old.iter().peekable();
        for (e, del) in last {
            while let Some(o) = old.next_if(|o| **o < e) {
                out.push(o.clone());
            }
            old.next_if(|o| **o == e);
            if !del {
                out.push(e);
            }
        }
        out.extend(old.cloned());
        self.counts = KeyspaceStats::default();
        for e in &out {
            self.counts
                .account(e.key().len(), None, Some(e.val().len()));
        }
        self.tree = Tree::from_sorted(out);
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

    /// Replace the whole contents with `entries` (used by recovery to
    /// install a checkpoint). They are sorted and deduplicated here (the
    /// last of equal keys wins) if they are not in strictly increasing
    /// order already.
    pub fn install(&mut self, mut entries: Vec<Entry>) {
        if !entries.windows(2).all(|w| w[0] < w[1]) {
            entries.sort();
            entries.dedup_by(|later, earlier| {
                if later == earlier {
                    std::mem::swap(later, earlier);
                    true
                } else {
                    false
                }
            });
        }
        self.counts = KeyspaceStats::default();
        self.hash = HashTable::with_capacity(entries.len());
        for e in &entries {
            self.counts
                .account(e.key().len(), None, Some(e.val().len()));
            let hasher = &self.hasher;
            self.hash
                .insert_unique(hasher.hash_one(e.key()), e.data.clone(), |d| {
                    hasher.hash_one(data_key(d))
                });
        }
        self.tree = Tree::from_sorted(entries);
    }
}

#[cfg(test)]
mod model {
    //! The two indexes against a `BTreeMap` model, through snapshots and
    //! bulk mode: point reads use the hash index, scans the tree, and both
    //! must match the model; every snapshot must keep reading as the model
    //! did when it was taken.
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::ops::Bound::*;

    type Model = BTreeMap<Vec<u8>, Vec<u8>>;

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, Vec<u8>),
        Delete(u8),
        Snapshot,
        DropSnapshot,
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
            8 => (0u8..80, proptest::collection::vec(any::<u8>(), 0..20))
                .prop_map(|(k, v)| Op::Put(k, v)),
            4 => (0u8..80).prop_map(Op::Delete),
            1 => Just(Op::Snapshot),
            1 => Just(Op::DropSnapshot),
            1 => Just(Op::Bulk),
            1 => Just(Op::EndBulk),
        ]
    }

    fn pairs(t: &Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
        t.iter()
            .map(|e| (e.key().to_vec(), e.value().to_vec()))
            .collect()
    }

    proptest! {
        #[test]
        fn both_indexes_match_a_model(ops in proptest::collection::vec(op(), 1..300)) {
            let mut m = Table::default();
            let mut model = Model::new();
            let mut snaps: Vec<(Tree, Model)> = Vec::new();
            let mut bulk = false;
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        let old = m.put(&key(k), &v).map(|e| e.value().to_vec());
                        let want = model.insert(key(k), v);
                        if !bulk {
                            prop_assert_eq!(old, want);
                        }
                    }
                    Op::Delete(k) => {
                        let old = m.delete(&key(k)).map(|e| e.value().to_vec());
                        let want = model.remove(&key(k));
                        if !bulk {
                            prop_assert_eq!(old, want);
                        }
                    }
                    Op::Snapshot if !bulk => snaps.push((m.tree().clone(), model.clone())),
                    Op::DropSnapshot => {
                        snaps.pop();
                    }
                    Op::Bulk => {
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
                for k in 0u8..80 {
                    prop_assert_eq!(m.get(&key(k)), model.get(&key(k)).map(|v| Val::Inline(&v[..])));
                }
                let mut all = Vec::new();
                m.visit(Unbounded, Unbounded, |k, v| {
                    all.push((k.to_vec(), v.into_owned()));
                    true
                });
                let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), crate::index::OwnedVal::Inline(v.clone()))).collect();
                prop_assert_eq!(all, want);
                prop_assert_eq!(m.len(), model.len() as u64);
                for (s, sm) in &snaps {
                    let want: Vec<_> = sm.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    prop_assert_eq!(pairs(s), want);
                }
            }
        }
    }

    #[test]
    fn install_sorts_and_keeps_the_last_of_equal_keys() {
        let mut t = Table::default();
        t.install(vec![
            Entry::new(b"b", b"1"),
            Entry::new(b"a", b"1"),
            Entry::new(b"b", b"2"),
        ]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(b"b"), Some(Val::Inline(&b"2"[..])));
        assert_eq!(pairs(t.tree()).len(), 2);
    }
}
