//! The read path: point reads and many-key reads of one keyspace under
//! the index's read lock (hash index), and scans of a view, with metrics.

use super::Inner;
use crate::engine::metrics::OpKind;
use crate::error::{Error, Result};
use crate::index::{KeyspaceStats, OwnedVal, Tables, Val};
use crate::vlog::Bytes;
use std::ops::Bound;

impl Inner {
    /// Visit keyspace `id` in `(start, end)` on a view of the current
    /// state (taken under the read lock, then read without it).
    pub(crate) fn scan_bounds(
        self: &std::sync::Arc<Self>,
        id: u32,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        mut f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<u64> {
        let m = &self.metrics;
        let t0 = m.start();
        let (mut count, mut bytes) = (0u64, 0u64);
        // A plain view (O(1)) when the store holds no separated value (so
        // no segment can be pulled from under it); else a registered
        // snapshot, which keeps the segments its values are in until the
        // scan ends.
        let view = self.read(|t| (t.separated_bytes() == 0).then(|| t.view()));
        let r = view.and_then(|plain| match plain {
            Some(v) => Ok((v, None)),
            None => self.snapshot().map(|s| (s.view.clone(), Some(s))),
        });
        let r = r.and_then(|(v, _pin)| {
            if !v.is_live(id) {
                return Err(Error::NotFound(format!("keyspace id {id} was dropped")));
            }
            let mut failed = None;
            v.visit(id, start, end, |k, v| {
                count += 1;
                bytes += (k.len() + v.len()) as u64;
                match self.found(v) {
                    Ok(b) => f(k, b.bytes()),
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
            });
            failed.map_or(Ok(()), Err)
        });
        m.scanned(count, bytes);
        m.finish(OpKind::Scan, t0, &r);
        r.map(|()| count)
    }

    /// Run `f` on the index under its read lock. Errors: [`Error::Closed`].
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Tables) -> R) -> Result<R> {
        let m = self.mem.read();
        if m.closed {
            return Err(Error::Closed);
        }
        Ok(f(&m.table))
    }

    /// [`Inner::read`] that first checks that keyspace `id` is live.
    /// Errors: [`Error::Closed`], [`Error::NotFound`] (dropped).
    pub(crate) fn read_in<R>(&self, id: u32, f: impl FnOnce(&Tables) -> R) -> Result<R> {
        self.read(|t| t.is_live(id).then(|| f(t)))?
            .ok_or_else(|| Error::NotFound(format!("keyspace id {id} was dropped")))
    }

    /// Get in keyspace `id`, with metrics. See [`Keyspace::get_with`].
    pub(crate) fn get_in<R>(
        &self,
        id: u32,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        let m = &self.metrics;
        if m.sample_get() {
            return self.get_in_timed(id, key, f);
        }
        // Not timed: see crate::engine::metrics (timing every get halved their rate).
        let r = self.check_key(key).and_then(|()| {
            let mut f = Some(f);
            let got = self.read_in(id, |t| {
                let v = t.get(id, key);
                m.got(v.map(|v| v.len()));
                match v {
                    Some(Val::At(p)) => Err(p),
                    Some(Val::Inline(b)) => Ok(f.take().map(|f| f(Some(b)))),
                    None => Ok(f.take().map(|f| f(None))),
                }
            })?;
            match (got, f) {
                (Ok(Some(r)), _) => Ok(r),
                (Err(p), Some(f)) => Ok(f(self.load_latest(id, key, p)?.as_deref())),
                _ => unreachable!("f runs exactly once"),
            }
        });
        if let Err(e) = &r {
            m.error(e);
        }
        r
    }

    /// [`Inner::get_in`] for the point reads whose latency is sampled. The
    /// lookup is written out in both functions on purpose: a version that
    /// shared it through an `#[inline(always)]` helper ran random gets at
    /// 1.22-1.37M/s against 1.90-2.01M/s (getbench, 1M keys, side by side).
    #[cold]
    #[inline(never)]
    pub(super) fn get_in_timed<R>(
        &self,
        id: u32,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        let m = &self.metrics;
        let t0 = m.start();
        let r = self.check_key(key).and_then(|()| {
            let mut f = Some(f);
            let got = self.read_in(id, |t| {
                let v = t.get(id, key);
                m.got(v.map(|v| v.len()));
                match v {
                    Some(Val::At(p)) => Err(p),
                    Some(Val::Inline(b)) => Ok(f.take().map(|f| f(Some(b)))),
                    None => Ok(f.take().map(|f| f(None))),
                }
            })?;
            match (got, f) {
                (Ok(Some(r)), _) => Ok(r),
                (Err(p), Some(f)) => Ok(f(self.load_latest(id, key, p)?.as_deref())),
                _ => unreachable!("f runs exactly once"),
            }
        });
        m.finish(OpKind::Get, t0, &r);
        r
    }

    /// Get many keys in keyspace `id` under one read lock, with metrics
    /// (each key counts as a point read; one latency sample per call). See
    /// [`Keyspace::get_many_with`].
    pub(crate) fn get_many_in<K: AsRef<[u8]>>(
        &self,
        id: u32,
        keys: &[K],
        mut f: impl FnMut(usize, Option<&[u8]>),
    ) -> Result<()> {
        let m = &self.metrics;
        let t0 = m.start();
        let r = keys
            .iter()
            .try_for_each(|k| self.check_key(k.as_ref()))
            .and_then(|()| {
                // With every value in memory, `f` runs under the lock
                // (no copy). Otherwise the values are copied out, the
                // separated ones read after the lock in file order, and
                // `f` runs in key order.
                let copied = self.read_in(id, |t| {
                    let vals: Vec<Option<Val<'_>>> =
                        keys.iter().map(|k| t.get(id, k.as_ref())).collect();
                    for v in &vals {
                        m.got(v.map(|v| v.len()));
                    }
                    if vals.iter().all(|v| !matches!(v, Some(Val::At(_)))) {
                        for (i, v) in vals.into_iter().enumerate() {
                            f(
                                i,
                                v.map(|v| match v {
                                    Val::Inline(b) => b,
                                    Val::At(_) => &[][..],
                                }),
                            );
                        }
                        return None;
                    }
                    Some(
                        vals.into_iter()
                            .map(|v| v.map(|v| v.into_owned()))
                            .collect::<Vec<_>>(),
                    )
                })?;
                let Some(copied) = copied else {
                    return Ok(());
                };
                let mut order: Vec<usize> = (0..copied.len()).collect();
                let at = |i: &usize| match &copied[*i] {
                    Some(OwnedVal::At(p)) => (p.segment, p.offset),
                    _ => (0, 0),
                };
                order.sort_unstable_by_key(at);
                for &i in &order {
                    if let Some(OwnedVal::At(p)) = &copied[i] {
                        self.prefetch(p);
                    }
                }
                let mut loaded: Vec<Option<Bytes>> = vec![None; copied.len()];
                for i in order {
                    if let Some(OwnedVal::At(p)) = &copied[i] {
                        loaded[i] = self.load_latest(id, keys[i].as_ref(), *p)?;
                    }
                }
                for (i, v) in copied.iter().enumerate() {
                    match v {
                        Some(OwnedVal::Inline(b)) => f(i, Some(b)),
                        Some(OwnedVal::At(_)) => f(i, loaded[i].as_deref()),
                        None => f(i, None),
                    }
                }
                Ok(())
            });
        m.finish(OpKind::Get, t0, &r);
        r
    }

    /// Live keys and bytes of keyspace `id`.
    pub(crate) fn keyspace_stats(&self, id: u32) -> Result<KeyspaceStats> {
        self.read_in(id, |t| t.stats(id).unwrap_or_default())
    }
}
