//! [`Transaction`]: serializable read-write transactions by optimistic
//! concurrency control, validated inside group commit.
//!
//! A transaction reads one snapshot (taken at begin, LSN `S`) and buffers
//! its writes. It records what it read: every key it looked up (present or
//! not) and the bounds of every range it scanned (as requested, cut at the
//! last key returned when a limit stopped it). Its commit is queued like
//! any batch; the group-commit leader, before it writes anything, checks
//! each queued transaction in log order against every batch applied after
//! `S` and every batch ahead of it in its own group: if one of them wrote
//! a key it read, a key inside a range it read, or dropped a keyspace it
//! read, the transaction fails with [`Error::Conflict`] and nothing of it
//! is written. Otherwise its writes go into the WAL as one `KvBatch`
//! record, atomically, and are applied with the rest of the group.
//!
//! Why this is serializable: a committed transaction `T` read state `S`;
//! no batch ordered between `S` and `T`'s own position in the log wrote
//! anything `T` read (or could have read, for a range), so every value
//! `T` saw is also the value at its position in the log. Every committed
//! transaction therefore behaves as if it ran alone at its log position,
//! and the log order is a serial order (the classic backward validation
//! of Kung and Robinson, 1981). Plain writes and batches take part as
//! blind transactions at their log position. Recovery replays the same
//! log order and stops at the first gap, so the order survives a crash,
//! and a group whose fsync fails poisons the store so no later group is
//! acknowledged (see docs/design.md, "Transactions").
//!
//! Why optimistic and not one writer at a time: the index is applied after
//! the WAL write, so a single-writer design whose lock is released at
//! enqueue time would need each next writer to read through the queued,
//! unapplied batches; validation needs only the recent write sets. And
//! transactions on different keys run, and share fsyncs, at the rate of
//! plain concurrent writes (measured in docs/bench/transactions.md).

use super::snapshot::{SnapState, Snapshot, TxnGuard};
use super::{Db, Inner};
use crate::error::{Error, Result};
use crate::format::batch::{self, Op};
use crate::kv::batch::WriteBatch;
use crate::kv::keyspace::Keyspace;
use crate::options::WriteOptions;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A range a transaction read: keyspace id and the bounds as requested.
type RangeRead = (u32, Bound<Vec<u8>>, Bound<Vec<u8>>);

/// What a committing transaction read, for its validation.
#[derive(Debug)]
pub(crate) struct ReadSet {
    /// The LSN of the snapshot it read.
    pub lsn: u64,
    /// Keys read, by keyspace (every keyspace read, ranges included, has
    /// an entry, so this also says which keyspaces were read).
    keys: HashMap<u32, HashSet<Vec<u8>>>,
    ranges: Vec<RangeRead>,
    /// Set by the leader when validation fails.
    pub rejected: Arc<AtomicBool>,
}

fn in_range(k: &[u8], lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    let above = match lo {
        Bound::Included(l) => k >= &l[..],
        Bound::Excluded(l) => k > &l[..],
        Bound::Unbounded => true,
    };
    above && below(k, hi)
}

fn below(k: &[u8], hi: &Bound<Vec<u8>>) -> bool {
    match hi {
        Bound::Included(h) => k <= &h[..],
        Bound::Excluded(h) => k < &h[..],
        Bound::Unbounded => true,
    }
}

impl ReadSet {
    /// Whether the `KvBatch` `payload` wrote anything this read set read.
    pub(crate) fn hit_by(&self, payload: &[u8]) -> bool {
        let hit = |id: u32, k: &[u8]| {
            self.keys.get(&id).is_some_and(|keys| {
                keys.contains(k)
                    || self
                        .ranges
                        .iter()
                        .any(|(s, lo, hi)| *s == id && in_range(k, lo, hi))
            })
        };
        batch::decode(payload).any(|op| match op {
            Ok(Op::Put(k, _) | Op::Delete(k)) => hit(0, k),
            Ok(Op::PutIn(id, k, _) | Op::DeleteIn(id, k)) => hit(id, k),
            Ok(Op::DropKeyspace(id, _)) => self.keys.contains_key(&id),
            // A relocation moves a value without changing it.
            Ok(Op::CreateKeyspace(..) | Op::Relocate { .. }) => false,
            // Our own batches always decode; be safe if one does not.
            Err(_) => true,
        })
    }
}

/// A read-write transaction: reads from one snapshot plus its own writes,
/// writes buffered until [`Transaction::commit`], which applies them all
/// or none, atomically and durably (one WAL record, across keyspaces),
/// if and only if the result is serializable: see the module docs of
/// `kv::transaction` and docs/design.md. Dropping it without committing
/// rolls it back ([`Transaction::rollback`]).
///
/// From [`Db::transaction`]; [`Db::update`] runs a closure in one and
/// retries it on conflict.
///
/// Reads address the default keyspace; the `_in` methods take a
/// [`Keyspace`] of the same store. Reads see the transaction's own
/// writes. Key and value limits are those of [`Keyspace::set`].
///
/// Errors of reads: [`Error::InvalidArgument`] (a bad key, a keyspace of
/// another store), [`Error::NotFound`] (a keyspace that did not exist at
/// the snapshot), [`Error::Closed`], [`Error::SnapshotExpired`].
///
/// Thread safety: `Send`; one thread uses it at a time (`&mut self`).
/// Many transactions run at once; none ever waits for another, and readers
/// never wait for them.
pub struct Transaction {
    state: Arc<SnapState>,
    /// Keeps the write sets applied after the snapshot until the commit's
    /// validation is done.
    guard: Option<TxnGuard>,
    writes: BTreeMap<(u32, Vec<u8>), Option<Vec<u8>>>,
    reads: HashSet<(u32, Vec<u8>)>,
    ranges: Vec<RangeRead>,
    opts: WriteOptions,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("snapshot_lsn", &self.state.view.lsn)
            .field("writes", &self.writes.len())
            .finish_non_exhaustive()
    }
}

impl Transaction {
    pub(crate) fn begin(inner: &Arc<Inner>, opts: WriteOptions) -> Result<Transaction> {
        inner.core.check_writable()?;
        inner.check_not_read_only()?;
        let (state, guard) = inner.snapshot_for(true)?;
        Ok(Transaction {
            state,
            guard,
            writes: BTreeMap::new(),
            reads: HashSet::new(),
            ranges: Vec::new(),
            opts,
        })
    }

    /// The LSN of the snapshot this transaction reads.
    pub fn snapshot_lsn(&self) -> u64 {
        self.state.view.lsn
    }

    /// The snapshot this transaction reads, without its own writes, for
    /// reads that need no validation (they are not recorded: a commit
    /// does not check them).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(Arc::clone(&self.state), 0)
    }

    fn space_of(&self, ks: &Keyspace) -> Result<u32> {
        if !Arc::ptr_eq(&ks.inner, &self.state.inner) {
            return Err(Error::InvalidArgument(
                "the keyspace belongs to another store".into(),
            ));
        }
        self.state.check_in(ks.id)?;
        Ok(ks.id)
    }

    fn read(&mut self, space: u32, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.state.inner.check_key(key)?;
        self.state.check_in(space)?;
        let k = (space, key.to_vec());
        if let Some(v) = self.writes.get(&k) {
            return Ok(v.clone());
        }
        let v = match self.state.view.get(space, key) {
            Some(v) => Some(self.state.inner.found(v)?.bytes().to_vec()),
            None => None,
        };
        self.state.inner.metrics.got(v.as_ref().map(Vec::len));
        self.reads.insert(k);
        Ok(v)
    }

    /// The value of `key`: this transaction's own write, or the snapshot's.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.read(0, key.as_ref())
    }

    /// [`Transaction::get`] in keyspace `ks`.
    pub fn get_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let s = self.space_of(ks)?;
        self.read(s, key.as_ref())
    }

    /// The values of `keys`, in order.
    pub fn get_many<K: AsRef<[u8]>>(&mut self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.read(0, k.as_ref())).collect()
    }

    /// [`Transaction::get_many`] in keyspace `ks`.
    pub fn get_many_in<K: AsRef<[u8]>>(
        &mut self,
        ks: &Keyspace,
        keys: &[K],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let s = self.space_of(ks)?;
        keys.iter().map(|k| self.read(s, k.as_ref())).collect()
    }

    /// Whether `key` is present (own writes included).
    pub fn contains(&mut self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.read(0, key.as_ref()).map(|v| v.is_some())
    }

    /// [`Transaction::contains`] in keyspace `ks`.
    pub fn contains_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>) -> Result<bool> {
        let s = self.space_of(ks)?;
        self.read(s, key.as_ref()).map(|v| v.is_some())
    }

    fn write(&mut self, space: u32, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let inner = &self.state.inner;
        inner.check_key(key)?;
        if let Some(v) = value {
            if v.len() > inner.opts.max_value_size as usize {
                return Err(Error::InvalidArgument(format!(
                    "value of {} bytes exceeds max_value_size {}",
                    v.len(),
                    inner.opts.max_value_size
                )));
            }
        }
        self.state.check_in(space)?;
        self.writes
            .insert((space, key.to_vec()), value.map(<[u8]>::to_vec));
        Ok(())
    }

    /// Set `key` to `value` when the transaction commits.
    pub fn set(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.write(0, key.as_ref(), Some(value.as_ref()))
    }

    /// [`Transaction::set`] in keyspace `ks`.
    pub fn set_in(
        &mut self,
        ks: &Keyspace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<()> {
        let s = self.space_of(ks)?;
        self.write(s, key.as_ref(), Some(value.as_ref()))
    }

    /// Delete `key` when the transaction commits.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        self.write(0, key.as_ref(), None)
    }

    /// [`Transaction::delete`] in keyspace `ks`.
    pub fn delete_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>) -> Result<()> {
        let s = self.space_of(ks)?;
        self.write(s, key.as_ref(), None)
    }

    /// Up to `limit` pairs with keys in `range` (own writes included), in
    /// key order, or in descending order if `reverse`. The range is
    /// recorded as read (up to the last pair returned when `limit` cut it
    /// short), so a commit fails with [`Error::Conflict`] if another
    /// commit since the snapshot added, changed or removed a key in it:
    /// no phantoms, an empty range included.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        range: R,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.scan_space(0, &range, reverse, limit)
    }

    /// [`Transaction::range`] in keyspace `ks`.
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        ks: &Keyspace,
        range: R,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let s = self.space_of(ks)?;
        self.scan_space(s, &range, reverse, limit)
    }

    /// Every pair whose key starts with `prefix`, in key order; as
    /// [`Transaction::range`].
    pub fn prefix(&mut self, prefix: impl AsRef<[u8]>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.scan_space(
            0,
            &crate::kv::prefix_bounds(prefix.as_ref()),
            false,
            usize::MAX,
        )
    }

    /// [`Transaction::prefix`] in keyspace `ks`.
    pub fn prefix_in(
        &mut self,
        ks: &Keyspace,
        prefix: impl AsRef<[u8]>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let s = self.space_of(ks)?;
        self.scan_space(
            s,
            &crate::kv::prefix_bounds(prefix.as_ref()),
            false,
            usize::MAX,
        )
    }

    fn scan_space<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        space: u32,
        range: &R,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.state.check_in(space)?;
        let lo = range.start_bound().map(|k| k.as_ref().to_vec());
        let hi = range.end_bound().map(|k| k.as_ref().to_vec());
        // Own writes in the range, in order.
        let from = match &lo {
            Bound::Included(k) | Bound::Excluded(k) => k.clone(),
            Bound::Unbounded => Vec::new(),
        };
        let own: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
            .writes
            .range((Bound::Included((space, from)), Bound::Unbounded))
            .take_while(|((s, k), _)| *s == space && below(k, &hi))
            .filter(|((_, k), _)| in_range(k, &lo, &hi))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        let mut base = Snapshot::new(Arc::clone(&self.state), space)
            .range::<&[u8], _>((lo.as_ref().map(|k| &k[..]), hi.as_ref().map(|k| &k[..])));
        let mut own = own.into_iter().peekable();
        let mut own_back: Vec<_> = Vec::new();
        if reverse {
            own_back = own.collect();
            own = Vec::new().into_iter().peekable();
        }
        let mut out = Vec::new();
        let next_base = |b: &mut super::Iter| -> Result<Option<(Vec<u8>, Vec<u8>)>> {
            match if reverse { b.next_back() } else { b.next() } {
                Some(Ok(p)) => Ok(Some(p)),
                Some(Err(e)) => Err(e),
                None => Ok(None),
            }
        };
        let mut b = next_base(&mut base)?;
        while out.len() < limit {
            let o = if reverse {
                own_back.last().cloned()
            } else {
                own.peek().cloned()
            };
            let pick_own = match (&b, &o) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((bk, _)), Some((ok, _))) => {
                    if bk == ok {
                        // Own write wins over the snapshot's pair.
                        b = next_base(&mut base)?;
                        true
                    } else {
                        (ok < bk) != reverse
                    }
                }
            };
            if pick_own {
                if reverse {
                    own_back.pop();
                } else {
                    own.next();
                }
                if let Some((k, Some(v))) = o {
                    out.push((k, v));
                }
            } else if let Some(p) = b.take() {
                out.push(p);
                b = next_base(&mut base)?;
            }
        }
        // Record what was read: the whole range, or up to the last pair
        // returned when the limit stopped the scan.
        let (mut rlo, mut rhi) = (lo, hi);
        if out.len() >= limit {
            if let Some((k, _)) = out.last() {
                if reverse {
                    rlo = Bound::Included(k.clone());
                } else {
                    rhi = Bound::Included(k.clone());
                }
            }
        }
        self.ranges.push((space, rlo, rhi));
        let bytes = out.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
        self.state.inner.metrics.scanned(out.len() as u64, bytes);
        Ok(out)
    }

    /// Number of writes buffered (keys set or deleted).
    pub fn pending_writes(&self) -> usize {
        self.writes.len()
    }

    /// Apply every write of this transaction atomically and durably (at
    /// its [`WriteOptions`] durability, [`Db::transaction_opt`]), if no
    /// other commit since its snapshot wrote what it read. A transaction
    /// with no writes commits at once (it read one consistent snapshot).
    ///
    /// Errors: [`Error::Conflict`] (nothing was written; run it again),
    /// [`Error::NotFound`] (a keyspace it writes was dropped), and those
    /// of [`Db::write`]: [`Error::InvalidArgument`], [`Error::Closed`],
    /// [`Error::Poisoned`], [`Error::Io`].
    pub fn commit(mut self) -> Result<()> {
        let writes = std::mem::take(&mut self.writes);
        let opts = self.opts;
        if writes.is_empty() {
            return self.state.check();
        }
        let mut b = WriteBatch::new();
        for ((space, k), v) in &writes {
            match (space, v) {
                (0, Some(v)) => b.put(k, v),
                (0, None) => b.delete(k),
                (s, Some(v)) => b.put_in_id(*s, k, v),
                (s, None) => b.delete_in_id(*s, k),
            };
        }
        let mut keys: HashMap<u32, HashSet<Vec<u8>>> = HashMap::new();
        for (s, k) in std::mem::take(&mut self.reads) {
            keys.entry(s).or_default().insert(k);
        }
        for (s, _, _) in &self.ranges {
            keys.entry(*s).or_default();
        }
        let check = ReadSet {
            lsn: self.state.view.lsn,
            keys,
            ranges: std::mem::take(&mut self.ranges),
            rejected: Arc::new(AtomicBool::new(false)),
        };
        let rejected = Arc::clone(&check.rejected);
        let lsn = self.state.view.lsn;
        let inner = Arc::clone(&self.state.inner);
        // Let go of the view (the registration stays until validation is
        // done): the leader then applies this batch in place instead of
        // copying the index nodes the view still shared.
        let guard = self.guard.take();
        drop(self);
        let r = inner.write_checked(b, &opts, Some(Box::new(check)));
        drop(guard);
        r?;
        if rejected.load(Ordering::Acquire) {
            let e = Error::Conflict(format!(
                "a key or range this transaction read (at LSN {lsn}) was written by a later commit"
            ));
            inner.metrics.error(&e);
            return Err(e);
        }
        Ok(())
    }

    /// Discard every write. The same as dropping the transaction.
    pub fn rollback(self) {}
}

/// How many times [`Db::update`] runs its closure before it returns the
/// last [`Error::Conflict`].
pub const UPDATE_MAX_ATTEMPTS: u32 = 100;

impl Db {
    /// Begin a read-write transaction at the store's durability (see
    /// [`Transaction`]). Errors: [`Error::Closed`], [`Error::Poisoned`],
    /// [`Error::InvalidArgument`] (a read-only store).
    pub fn transaction(&self) -> Result<Transaction> {
        Transaction::begin(&self.inner, WriteOptions::default())
    }

    /// [`Db::transaction`] whose commit uses `opts` (durability).
    pub fn transaction_opt(&self, opts: &WriteOptions) -> Result<Transaction> {
        Transaction::begin(&self.inner, *opts)
    }

    /// Run `f` in a transaction and commit it, as bbolt's `Update`: if `f`
    /// returns an error, nothing is written and the error is returned; if
    /// the commit conflicts, `f` runs again in a new transaction (at most
    /// [`UPDATE_MAX_ATTEMPTS`] times, then the conflict is returned). `f`
    /// must therefore do nothing outside the transaction that cannot be
    /// repeated. Returns `f`'s value from the run that committed.
    ///
    /// Errors: `f`'s, and those of [`Transaction::commit`].
    pub fn update<T>(&self, f: impl FnMut(&mut Transaction) -> Result<T>) -> Result<T> {
        run_update(&self.inner, f)
    }

    /// Run `f` on a snapshot of the store, as bbolt's `View`; returns its
    /// value. Errors: [`Error::Closed`], and `f`'s.
    pub fn view<T>(&self, f: impl FnOnce(&Snapshot) -> Result<T>) -> Result<T> {
        f(&self.snapshot()?)
    }

    /// A snapshot of every keyspace at this moment; its reads address the
    /// default keyspace ([`Snapshot::keyspace`] for others).
    /// Errors: [`Error::Closed`].
    pub fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot::new(self.inner.snapshot()?, 0))
    }
}

impl Keyspace {
    /// A snapshot of every keyspace at this moment whose reads address
    /// this one. Errors: [`Error::Closed`], [`Error::NotFound`] (dropped).
    pub fn snapshot(&self) -> Result<Snapshot> {
        let s = self.inner.snapshot()?;
        s.check_in(self.id)?;
        Ok(Snapshot::new(s, self.id))
    }

    /// Set `key` to `new` (or delete it, `None`) if and only if its value
    /// is `expected` (`None`: absent), atomically. Returns `Ok(Ok(()))` if
    /// it swapped, or `Ok(Err(current))` with the value it found.
    ///
    /// Errors: as [`Keyspace::set`].
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<std::result::Result<(), Option<Vec<u8>>>> {
        let key = key.as_ref();
        self.in_update(|tx, ks| {
            let cur = tx.read(ks, key)?;
            if cur.as_deref() != expected {
                return Ok(Err(cur));
            }
            tx.write(ks, key, new)?;
            Ok(Ok(()))
        })
    }

    /// Replace the value of `key` by `f(current)` atomically (`None` in or
    /// out: absent or delete); `f` may run more than once if other writers
    /// race. Returns the value `f` was last given (the one replaced).
    ///
    /// Errors: as [`Keyspace::set`].
    pub fn fetch_update(
        &self,
        key: impl AsRef<[u8]>,
        mut f: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>> {
        let key = key.as_ref();
        self.in_update(|tx, ks| {
            let cur = tx.read(ks, key)?;
            let new = f(cur.as_deref());
            tx.write(ks, key, new.as_deref())?;
            Ok(cur)
        })
    }

    /// [`Db::update`] for one keyspace's read-modify-write.
    fn in_update<T>(&self, mut f: impl FnMut(&mut Transaction, u32) -> Result<T>) -> Result<T> {
        run_update(&self.inner, |tx| {
            tx.state.check_in(self.id)?;
            f(tx, self.id)
        })
    }
}

/// Wait before retry `attempt` of a conflicted transaction: a random time
/// up to 2^attempt microseconds (at most about 1 ms), so that writers that
/// keep meeting on one key do not keep meeting in step, and the one that
/// lost is not starved by the one that keeps winning.
fn backoff(attempt: u32) {
    use std::cell::Cell;
    thread_local! {
        static RNG: Cell<u64> = Cell::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
                | 1,
        );
    }
    let r = RNG.with(|c| {
        let mut x = c.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.set(x);
        x
    });
    let cap = 1u64 << attempt.min(10);
    std::thread::sleep(std::time::Duration::from_micros(r % cap + 1));
}

/// See [`Db::update`].
fn run_update<T>(
    inner: &Arc<Inner>,
    mut f: impl FnMut(&mut Transaction) -> Result<T>,
) -> Result<T> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = Transaction::begin(inner, WriteOptions::default())?;
        let v = f(&mut tx)?;
        match tx.commit() {
            Err(Error::Conflict(_)) if attempt < UPDATE_MAX_ATTEMPTS => backoff(attempt),
            Err(e) => return Err(e),
            Ok(()) => return Ok(v),
        }
    }
}
