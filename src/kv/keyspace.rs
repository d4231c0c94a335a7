//! Keyspace handles: named, independent ordered key spaces in one store
//! (like Bolt buckets, redb tables or fjall keyspaces). The default
//! keyspace (id 0) is a [`Keyspace`] too: [`crate::Db`] dereferences to it.
//! Their contents live in [`crate::index`].

use crate::error::{Error, Result};
use crate::index::KeyspaceStats;
use crate::kv::batch::WriteBatch;
use crate::kv::{Inner, Iter};
use crate::options::WriteOptions;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// Longest keyspace name, in bytes (UTF-8).
pub const MAX_KEYSPACE_NAME: usize = 255;

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

/// A keyspace of a [`crate::Db`]: an independent ordered key space. The
/// store's default keyspace (id 0, name `""`) is one too, and
/// [`crate::Db`] dereferences to it, so `db.get(k)` and `ks.get(k)` are
/// the same method. Get a named one with [`crate::Db::keyspace`] (opens or
/// creates) or [`crate::Db::open_keyspace`] (must exist).
///
/// Keys are non-empty byte strings of at most [`Options::max_key_size`]
/// bytes; the empty key is rejected everywhere with
/// [`Error::InvalidArgument`]. Values are byte strings (empty allowed) of
/// at most [`Options::max_value_size`] bytes.
///
/// A handle to a named keyspace stays valid until it is dropped: afterwards
/// every call on it fails with [`Error::NotFound`], even if a keyspace of
/// the same name is created again (that one has a new id).
///
/// Thread safety: `Send + Sync`, cheap to clone. A handle does not keep
/// the store open: once the store is closed (explicitly, or when the last
/// [`crate::Db`] clone goes) every call reports [`Error::Closed`].
///
/// [`Options::max_key_size`]: crate::Options::max_key_size
/// [`Options::max_value_size`]: crate::Options::max_value_size
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
    /// The keyspace's name (`""` for the default keyspace).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The keyspace's id: stable for its lifetime, never reused after a
    /// drop. The default keyspace has id 0.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The value of `key`, or `None`. A value shorter than
    /// [`crate::Options::value_separation_threshold`] is copied from
    /// memory; a longer one comes from the value cache or one positioned
    /// read of its WAL segment, checked against its CRC.
    ///
    /// Errors: [`Error::InvalidArgument`] (empty or oversized key),
    /// [`Error::NotFound`] (the keyspace was dropped), [`Error::Closed`];
    /// for a value kept in the log ([`crate::Options::value_separation_threshold`]),
    /// [`Error::Corruption`] naming the segment file and offset when its
    /// bytes fail their CRC or its segment is missing, and [`Error::Io`].
    /// Works on a poisoned store.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.inner
            .get_in(self.id, key.as_ref(), |v| v.map(|v| v.to_vec()))
    }

    /// Call `f` with the value of `key` (or `None`) while holding the read
    /// lock, without copying. Keep `f` short: it blocks writers. A value
    /// kept in the log is read first, and `f` then runs after the lock is
    /// released, on the bytes read. Errors as [`Keyspace::get`].
    pub fn get_with<R>(
        &self,
        key: impl AsRef<[u8]>,
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R> {
        self.inner.get_in(self.id, key.as_ref(), f)
    }

    /// The values of `keys`, in order (`None` for an absent key), all read
    /// under one read lock: they are consistent with each other, as of one
    /// point in the write order. Cheaper per key than [`Keyspace::get`] for
    /// callers that pay per call (the C ABI's `kv_get_many`); the lock
    /// blocks writers while it is held, so keep batches to thousands of
    /// keys, not millions.
    ///
    /// Errors: [`Error::InvalidArgument`] if any key is empty or too long
    /// (nothing is read), and as [`Keyspace::get`].
    pub fn get_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        self.get_many_with(keys, |_, v| out.push(v.map(<[u8]>::to_vec)))?;
        Ok(out)
    }

    /// [`Keyspace::get_many`] without copying: `f(i, value)` is called for
    /// each key in order, under the read lock. Keep `f` short: it blocks
    /// writers. Errors as [`Keyspace::get_many`].
    pub fn get_many_with<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        f: impl FnMut(usize, Option<&[u8]>),
    ) -> Result<()> {
        self.inner.get_many_in(self.id, keys, f)
    }

    /// Whether `key` is present. Errors as [`Keyspace::get`].
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.inner.get_in(self.id, key.as_ref(), |v| v.is_some())
    }

    /// Set `key` to `value`, returning once the write has reached the
    /// store's durability level. Equivalent to a one-operation batch.
    ///
    /// Errors: [`Error::InvalidArgument`] (empty or oversized key, oversized
    /// value, a read-only store), [`Error::NotFound`] (the keyspace was
    /// dropped), [`Error::Closed`], [`Error::Poisoned`], [`Error::Io`] (the
    /// write or fsync failed; the store is now poisoned and the write may or
    /// may not be on disk).
    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.set_opt(key, value, &WriteOptions::default())
    }

    /// [`Keyspace::set`] with per-write options, for example a durability
    /// level other than the store's ([`WriteOptions::with_durability`]; see
    /// [`WriteOptions`] for how levels combine under group commit). Errors
    /// as [`Keyspace::set`].
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

    /// Remove `key` (succeeds whether or not it existed). Deleting a key
    /// that is absent writes no WAL record: it changes nothing, so there is
    /// nothing to make durable (a delete inside a [`WriteBatch`] is always
    /// written). Errors as [`Keyspace::set`], checked for absent keys too.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.delete_opt(key, &WriteOptions::default())
    }

    /// [`Keyspace::delete`] with per-write options. Errors as
    /// [`Keyspace::set`].
    pub fn delete_opt(&self, key: impl AsRef<[u8]>, opts: &WriteOptions) -> Result<()> {
        self.inner.delete_in(self.id, key.as_ref(), opts)
    }

    /// Live keys, key bytes and value bytes of this keyspace (on a `Db`,
    /// `db.stats()` is the store's [`crate::Stats`]; write
    /// `Keyspace::stats(&db)` for the default keyspace's). Errors:
    /// [`Error::NotFound`] (dropped), [`Error::Closed`].
    pub fn stats(&self) -> Result<KeyspaceStats> {
        self.inner.keyspace_stats(self.id)
    }

    /// Number of live keys in this keyspace. Errors as [`Keyspace::stats`].
    pub fn len(&self) -> Result<u64> {
        self.stats().map(|s| s.keys)
    }

    /// Whether the keyspace holds no key. Errors as [`Keyspace::stats`].
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// Iterate over every pair, in key order; as [`Keyspace::range`].
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// Iterate over the pairs whose keys fall in `range`, in key order,
    /// e.g. `db.range(b"a".as_slice()..b"m".as_slice())`.
    ///
    /// The iterator reads a snapshot taken when it is created (see
    /// [`crate::Snapshot`]): a scan is consistent, it sees exactly the
    /// pairs present at that moment and none of the writes made while it
    /// runs, and holds no lock. It is double-ended (`.rev()` for
    /// descending order) and can [`Iter::seek`].
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        Iter::new(self.inner.snapshot(), self.id, range)
    }

    /// Iterate over the pairs whose keys start with `prefix`, in key order.
    /// Same consistency as [`Keyspace::range`].
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        self.range(crate::kv::prefix_bounds(prefix.as_ref()))
    }

    /// Visit the pairs whose keys fall in `range`, in key order, without
    /// copying them: `f` gets the borrowed key and value and returns `true`
    /// to go on or `false` to stop. Returns how many pairs `f` was called
    /// with. This is the fast way to read a short range (no allocation per
    /// pair, unlike [`Keyspace::range`]).
    ///
    /// It reads a snapshot taken when it starts (as [`Keyspace::range`])
    /// and holds no lock while `f` runs: writers go on, and `f` may call
    /// the store.
    ///
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

    /// [`Keyspace::scan`] over the keys that start with `prefix`. Errors
    /// as [`Keyspace::scan`].
    pub fn scan_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
        f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<u64> {
        let p = prefix.as_ref();
        let succ = crate::kv::prefix_successor(p);
        let end = match &succ {
            Some(s) => Bound::Excluded(&s[..]),
            None => Bound::Unbounded,
        };
        self.inner.scan_bounds(self.id, Bound::Included(p), end, f)
    }
}
