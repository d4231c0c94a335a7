//! [`Iter`]: range iteration in chunks copied under the read lock.

use super::Inner;
use crate::engine::metrics::OpKind;
use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// Iterator over a key range, from [`crate::Keyspace::range`],
/// [`crate::Keyspace::prefix`] or [`crate::Keyspace::iter`]. Yields `Ok((key, value))` in key order, or one
/// `Err(Error::Closed)` if the store is closed meanwhile.
///
/// Thread safety: `Send + Sync`; it owns a reference to the store and may
/// outlive the `Db` handle (it then reports `Closed`).
pub struct Iter {
    inner: Arc<Inner>,
    /// Keyspace id (0: the default keyspace).
    space: u32,
    next: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    buf: VecDeque<(Vec<u8>, Vec<u8>)>,
    done: bool,
    closed_reported: bool,
    /// Pairs to fetch next time.
    chunk: usize,
}

impl std::fmt::Debug for Iter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("next", &self.next)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// Pairs an iterator copies per lock hold: the first fetch takes
/// `ITER_FIRST_CHUNK` (short range reads copy little), each later one twice
/// the previous, up to `ITER_CHUNK`.
pub(super) const ITER_CHUNK: usize = 256;
pub(super) const ITER_FIRST_CHUNK: usize = 16;

impl Iter {
    /// An iterator over the keys of keyspace `space` in `range`.
    pub(crate) fn new<K: AsRef<[u8]>, R: RangeBounds<K>>(
        inner: Arc<Inner>,
        space: u32,
        range: R,
    ) -> Iter {
        let conv = |b: Bound<&K>| b.map(|k| k.as_ref().to_vec());
        Iter {
            inner,
            space,
            next: conv(range.start_bound()),
            end: conv(range.end_bound()),
            buf: VecDeque::new(),
            done: false,
            closed_reported: false,
            chunk: ITER_FIRST_CHUNK,
        }
    }
}

impl Iterator for Iter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.inner.core.is_closed() {
            // Report the close once, then end.
            if self.closed_reported {
                return None;
            }
            self.buf.clear();
            self.done = true;
            self.closed_reported = true;
            return Some(Err(Error::Closed));
        }
        if let Some(x) = self.buf.pop_front() {
            return Some(Ok(x));
        }
        if self.done {
            return None;
        }
        let t0 = self.inner.metrics.start();
        let chunk = {
            let m = self.inner.mem.read();
            if m.closed {
                self.done = true;
                self.closed_reported = true;
                return Some(Err(Error::Closed));
            }
            let start = self.next.as_ref().map(|k| &k[..]);
            let end = self.end.as_ref().map(|k| &k[..]);
            if !m.table.is_live(self.space) {
                // The keyspace was dropped: it has no more keys.
                self.done = true;
                return None;
            }
            m.table.range(self.space, start, end, self.chunk)
        };
        let bytes = chunk.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
        self.inner.metrics.scanned(chunk.len() as u64, bytes);
        self.inner.metrics.finish(OpKind::Scan, t0, &Ok(()));
        if chunk.len() < self.chunk {
            self.done = true;
        }
        self.chunk = (self.chunk * 2).min(ITER_CHUNK);
        if let Some((k, _)) = chunk.last() {
            self.next = Bound::Excluded(k.clone());
        }
        self.buf.extend(chunk);
        self.buf.pop_front().map(Ok)
    }
}
