//! [`Iter`]: a double-ended range iterator over one snapshot.

use super::snapshot::SnapState;
use crate::engine::metrics::OpKind;
use crate::error::{Error, Result};
use crate::index::OwnedRange;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// Iterator over a key range of one snapshot, from [`crate::Keyspace::range`],
/// [`crate::Keyspace::prefix`], [`crate::Keyspace::iter`] or the same
/// methods of a [`crate::Snapshot`]. Yields `Ok((key, value))` in key order,
/// or in descending order from the back ([`DoubleEndedIterator`]: `.rev()`,
/// `next_back`); both ends may be used at once and never pass each other.
/// [`Iter::seek`] and [`Iter::seek_back`] move an end within the range.
///
/// Consistency: the iterator reads one snapshot, taken when it was made
/// (a `Keyspace` iterator takes its own): it sees exactly the pairs
/// present at that moment, however long it runs and whatever is written
/// meanwhile (a drop of the keyspace included). It holds no lock.
///
/// Errors: one `Err(Error::Closed)` if the store is closed (before or
/// while it runs), one `Err(Error::SnapshotExpired)` past
/// `Options::max_snapshot_age`, one `Err(Error::NotFound)` if the keyspace
/// did not exist when it started; then it ends.
///
/// Thread safety: `Send + Sync`; it holds its snapshot and may outlive the
/// `Db` handle.
pub struct Iter {
    state: Option<Arc<SnapState>>,
    /// An error to yield once, then end.
    pending: Option<Error>,
    range: Option<OwnedRange>,
    /// Leading bytes of each tree key that are the keyspace id.
    skip: usize,
    /// Keyspace id and the range as asked (user keys), for
    /// [`Iter::rewind`].
    space: u32,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    /// The range's bounds in tree keys (for seeks).
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    /// Pairs yielded.
    count: u64,
    /// Pairs and bytes yielded but not yet counted in the metrics.
    unflushed: u64,
    bytes: u64,
    /// Pairs taken from the front of `range` and read ahead (separated
    /// values, read in file order), not yet yielded.
    ahead: std::collections::VecDeque<(Vec<u8>, Vec<u8>)>,
}

/// Pairs a forward step over separated values reads at once, sorted by
/// their place in the log.
const READ_AHEAD: usize = 32;

impl std::fmt::Debug for Iter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("lower", &self.lower)
            .field("upper", &self.upper)
            .finish_non_exhaustive()
    }
}

/// Pairs between two checks of the snapshot's age and metric updates.
const CHECK_EVERY: u64 = 256;

impl Iter {
    /// An iterator over the keys of keyspace `space` in `range`, on the
    /// snapshot `state` (or an error to report).
    pub(crate) fn new<K: AsRef<[u8]>, R: RangeBounds<K>>(
        state: Result<Arc<SnapState>>,
        space: u32,
        range: R,
    ) -> Iter {
        let mut it = Iter {
            state: None,
            pending: None,
            range: None,
            skip: 0,
            space,
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            count: 0,
            unflushed: 0,
            bytes: 0,
            ahead: Default::default(),
        };
        let state = match state.and_then(|s| s.check_in(space).map(|()| s)) {
            Ok(s) => s,
            Err(e) => {
                it.pending = Some(e);
                return it;
            }
        };
        let t0 = state.inner.metrics.start();
        let start = range.start_bound().map(|k| k.as_ref());
        let end = range.end_bound().map(|k| k.as_ref());
        let (r, skip) = state.view.range_owned(space, start, end);
        state.inner.metrics.finish(OpKind::Scan, t0, &Ok(()));
        let (lower, upper) = if skip == 0 {
            (start.map(<[u8]>::to_vec), end.map(<[u8]>::to_vec))
        } else {
            crate::index::named_bounds(space, start, end)
        };
        it.range = Some(r);
        it.start = start.map(<[u8]>::to_vec);
        it.end = end.map(<[u8]>::to_vec);
        it.skip = skip;
        it.lower = lower;
        it.upper = upper;
        it.state = Some(state);
        it
    }

    /// Put both ends back at the range's bounds, as when the iterator was
    /// made (same snapshot): the next `next` yields the range's first pair
    /// and the next `next_back` its last.
    pub fn rewind(&mut self) {
        self.ahead.clear();
        if let (Some(s), true) = (&self.state, self.range.is_some()) {
            let start = self.start.as_ref().map(|k| &k[..]);
            let end = self.end.as_ref().map(|k| &k[..]);
            self.range = Some(s.view.range_owned(self.space, start, end).0);
        }
    }

    /// Move the front to the first pair whose key is `>= key` (within the
    /// range; before the back end). Later `next` calls go on from there.
    pub fn seek(&mut self, key: impl AsRef<[u8]>) {
        self.ahead.clear();
        let k = self.tree_key(key.as_ref());
        if let Some(r) = &mut self.range {
            r.seek(&k, self.lower.as_ref().map(|k| &k[..]));
        }
    }

    /// Move the back to the last pair whose key is `<= key` (within the
    /// range; after the front end). Later `next_back` calls go on from
    /// there.
    pub fn seek_back(&mut self, key: impl AsRef<[u8]>) {
        // Pairs read ahead go back into the range first: the back may
        // move before them.
        if let Some((first, _)) = self.ahead.front() {
            let f = self.tree_key(first);
            self.ahead.clear();
            if let Some(r) = &mut self.range {
                r.seek(&f, self.lower.as_ref().map(|k| &k[..]));
            }
        }
        let k = self.tree_key(key.as_ref());
        if let Some(r) = &mut self.range {
            r.seek_back(&k, self.upper.as_ref().map(|k| &k[..]));
        }
    }

    fn tree_key(&self, key: &[u8]) -> Vec<u8> {
        if self.skip == 0 {
            key.to_vec()
        } else {
            crate::index::named_key(self.space, key)
        }
    }

    /// The next pair from the front (`back` false) or the back.
    fn step(&mut self, back: bool) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        if let Some(e) = self.pending.take() {
            self.range = None;
            return Some(Err(e));
        }
        let state = self.state.as_ref()?;
        if self.count % CHECK_EVERY == 0 || state.inner.core.is_closed() {
            if let Err(e) = state.check() {
                self.flush();
                self.range = None;
                self.state = None;
                return Some(Err(e));
            }
        }
        let pair = match self.take(back) {
            Err(e) => {
                self.flush();
                self.range = None;
                self.state = None;
                self.ahead.clear();
                return Some(Err(e));
            }
            Ok(p) => p,
        };
        match pair {
            Some(p) => {
                self.count += 1;
                self.unflushed += 1;
                self.bytes += (p.0.len() + p.1.len()) as u64;
                if self.count % CHECK_EVERY == 0 {
                    self.flush();
                }
                Some(Ok(p))
            }
            None => {
                self.flush();
                None
            }
        }
    }

    /// The next pair from one end: read ahead, or from the range. A
    /// separated value is read from the log (the snapshot this iterator
    /// holds keeps its segment); going forward, the next separated values
    /// are read with it, in file order.
    fn take(&mut self, back: bool) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        use crate::index::OwnedVal;
        if !back {
            if let Some(p) = self.ahead.pop_front() {
                return Ok(Some(p));
            }
        }
        let Some(state) = self.state.as_ref() else {
            return Ok(None);
        };
        let skip = self.skip;
        let copy = |e: &crate::index::Entry| (e.key()[skip..].to_vec(), e.val().into_owned());
        let Some(r) = self.range.as_mut() else {
            return Ok(None);
        };
        let first = if back {
            r.next_back_with(copy)
        } else {
            r.next_with(copy)
        };
        let (k, v) = match first {
            Some(p) => p,
            None if back => return Ok(self.ahead.pop_back()),
            None => return Ok(None),
        };
        let p = match v {
            OwnedVal::Inline(v) => return Ok(Some((k, v))),
            OwnedVal::At(p) if back => return Ok(Some((k, state.inner.load(&p)?.to_vec()))),
            OwnedVal::At(p) => p,
        };
        let mut batch = vec![(k, OwnedVal::At(p))];
        while batch.len() < READ_AHEAD {
            match r.next_with(copy) {
                Some(pair) => batch.push(pair),
                None => break,
            }
        }
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_unstable_by_key(|&i| match &batch[i].1 {
            OwnedVal::At(p) => (p.segment, p.offset),
            OwnedVal::Inline(_) => (0, 0),
        });
        // Announce them all first, so the device reads them together.
        for &i in &order {
            if let OwnedVal::At(p) = &batch[i].1 {
                state.inner.prefetch(p);
            }
        }
        let mut loaded: Vec<Option<Vec<u8>>> = vec![None; batch.len()];
        for i in order {
            if let OwnedVal::At(p) = &batch[i].1 {
                loaded[i] = Some(state.inner.load(p)?.to_vec());
            }
        }
        for ((k, v), l) in batch.into_iter().zip(loaded) {
            let v = match v {
                OwnedVal::Inline(v) => v,
                OwnedVal::At(_) => l.unwrap_or_default(),
            };
            self.ahead.push_back((k, v));
        }
        Ok(self.ahead.pop_front())
    }

    /// Count what was yielded since the last flush in the metrics.
    fn flush(&mut self) {
        if let (Some(s), true) = (&self.state, self.unflushed > 0) {
            s.inner.metrics.scanned(self.unflushed, self.bytes);
        }
        self.unflushed = 0;
        self.bytes = 0;
    }
}

impl Iterator for Iter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(false)
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.step(true)
    }
}

impl Drop for Iter {
    fn drop(&mut self) {
        self.flush();
    }
}
