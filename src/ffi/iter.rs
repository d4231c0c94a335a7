//! `kv_iter`: ordered iteration over a key range or a prefix.

use super::{bytes, finish, guard, invalid, kv_db, kv_status, with_db, Fail};
use crate::Iter;
use std::ops::Bound;

/// An iterator. Opaque; create with `kv_iter_range` or `kv_iter_prefix`
/// (or, over a keyspace, `kv_keyspace_iter_range` and
/// `kv_keyspace_iter_prefix`; over a snapshot, `kv_snapshot_iter_range`;
/// in a transaction, `kv_txn_iter_range`), free with `kv_iter_free`. Not
/// thread-safe: use one iterator from one thread at a time (different
/// iterators on one `kv_db` may run on different threads).
///
/// Consistency: it reads one snapshot, taken when it was created: it sees
/// exactly the pairs present at that moment and none of the writes made
/// while it runs, and holds no lock. It moves both ways: `kv_iter_next`
/// and `kv_iter_prev` step from the current pair, `kv_iter_seek`,
/// `kv_iter_seek_for_prev`, `kv_iter_seek_first` and `kv_iter_seek_last`
/// reposition it within its range (a transaction's iterator only moves
/// forward through the list it was created with). It keeps the store's
/// memory alive but must be freed before or after `kv_close`; after close
/// `kv_iter_next` returns `KV_CLOSED`.
pub struct kv_iter {
    src: Src,
    current: Option<(Vec<u8>, Vec<u8>)>,
    /// Whether the last step went backwards (`next_back`).
    back: bool,
}

/// What a `kv_iter` reads.
enum Src {
    /// A snapshot's range (double-ended, seekable).
    Snap(Box<Iter>),
    /// The pairs a transaction's range read returned (forward only).
    List(std::vec::IntoIter<(Vec<u8>, Vec<u8>)>),
}

/// Move one pair in the iterator's direction (or past the end). Errors:
/// `Closed`, `SnapshotExpired`.
fn advance(it: &mut kv_iter) -> Result<(), Fail> {
    it.current = None;
    let next = match &mut it.src {
        Src::Snap(i) if it.back => i.next_back(),
        Src::Snap(i) => i.next(),
        Src::List(l) => l.next().map(Ok),
    };
    if let Some(kv) = next {
        it.current = Some(kv?);
    }
    Ok(())
}

/// The snapshot iterator of `it`. Errors: `KV_INVALID_ARGUMENT` for a
/// transaction's iterator.
fn snap_iter(it: &mut kv_iter) -> Result<&mut Iter, Fail> {
    match &mut it.src {
        Src::Snap(i) => Ok(i),
        Src::List(_) => Err(invalid(
            "a transaction's iterator only moves forward (kv_iter_next)",
        )),
    }
}

/// Turn around at the current pair: the next step in direction `back`
/// yields the pair beyond it. Both ends restart at the range's bounds,
/// then the end that moves next is placed at the current key and that
/// pair itself is skipped.
fn turn(it: &mut kv_iter, back: bool) -> Result<(), Fail> {
    let Some((k, _)) = it.current.take() else {
        return Err(invalid("iterator is not positioned at an entry"));
    };
    let i = snap_iter(it)?;
    i.rewind();
    if back {
        i.seek_back(&k);
        if let Some(Ok((got, _))) = i.next_back() {
            if got != k {
                i.seek_back(&got);
            }
        }
    } else {
        i.seek(&k);
        if let Some(Ok((got, _))) = i.next() {
            if got != k {
                i.seek(&got);
            }
        }
    }
    it.back = back;
    Ok(())
}

/// Store a new `kv_iter` over `iter`, positioned at its first pair, in
/// `*out`. Errors: `KV_INVALID_ARGUMENT` (NULL out), `KV_CLOSED`.
pub(crate) fn publish(out: *mut *mut kv_iter, iter: Iter) -> Result<(), Fail> {
    if out.is_null() {
        return Err(invalid("out is NULL"));
    }
    let mut it = kv_iter {
        src: Src::Snap(Box::new(iter)),
        current: None,
        back: false,
    };
    advance(&mut it)?;
    // Safety: `out` is non-NULL and writable.
    unsafe { *out = Box::into_raw(Box::new(it)) };
    Ok(())
}

/// A key range as `RangeBounds` over byte slices.
pub(crate) type KeyRange<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The key range of `kv_iter_range`'s arguments: `start <= k < end`, a
/// NULL bound unbounded.
///
/// # Safety
/// Each pointer must be NULL (length 0) or valid for its length.
pub(crate) unsafe fn range_args<'a>(
    start: *const u8,
    start_len: usize,
    end: *const u8,
    end_len: usize,
) -> Result<KeyRange<'a>, Fail> {
    // Safety: pointer/length pairs as documented.
    let (s, e) = unsafe {
        (
            bytes(start, start_len, "start")?,
            bytes(end, end_len, "end")?,
        )
    };
    let lo = if start.is_null() {
        Bound::Unbounded
    } else {
        Bound::Included(s)
    };
    let hi = if end.is_null() {
        Bound::Unbounded
    } else {
        Bound::Excluded(e)
    };
    Ok((lo, hi))
}

/// Create an iterator over keys `k` with `start <= k < end`, positioned at
/// the first such key (check `kv_iter_valid`). `start` NULL (with length 0)
/// means from the first key; `end` NULL means to the last key.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL db/out, NULL bound with non-zero
/// length), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_iter_range(
    db: *const kv_db,
    start: *const u8,
    start_len: usize,
    end: *const u8,
    end_len: usize,
    out: *mut *mut kv_iter,
) -> kv_status {
    with_db(db, |h| {
        // Safety: pointer/length pairs as documented.
        let r = unsafe { range_args(start, start_len, end, end_len)? };
        publish(out, h.db.range::<&[u8], _>(r))
    })
}

/// Create an iterator over the keys that start with `prefix` (NULL or
/// length 0: every key), positioned at the first one.
///
/// Errors: as `kv_iter_range`.
#[no_mangle]
pub unsafe extern "C" fn kv_iter_prefix(
    db: *const kv_db,
    prefix: *const u8,
    prefix_len: usize,
    out: *mut *mut kv_iter,
) -> kv_status {
    with_db(db, |h| {
        // Safety: pointer/length pair as documented.
        let p = unsafe { bytes(prefix, prefix_len, "prefix")? };
        publish(out, h.db.prefix(p))
    })
}

/// 1 if the iterator is positioned at an entry, 0 at the end (or NULL).
///
/// # Safety
/// `it` must be NULL or a live iterator.
#[no_mangle]
pub unsafe extern "C" fn kv_iter_valid(it: *const kv_iter) -> i32 {
    // Safety: NULL or a live iterator.
    (!it.is_null() && unsafe { (*it).current.is_some() }) as i32
}

/// Store a new `kv_iter` over a transaction's range-read result.
pub(crate) fn publish_list(
    out: *mut *mut kv_iter,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<(), Fail> {
    if out.is_null() {
        return Err(invalid("out is NULL"));
    }
    let mut it = kv_iter {
        src: Src::List(pairs.into_iter()),
        current: None,
        back: false,
    };
    advance(&mut it)?;
    // Safety: `out` is non-NULL and writable.
    unsafe { *out = Box::into_raw(Box::new(it)) };
    Ok(())
}

/// Run `f` on the live iterator `it`.
fn with_iter(it: *mut kv_iter, f: impl FnOnce(&mut kv_iter) -> Result<(), Fail>) -> kv_status {
    guard(|| {
        if it.is_null() {
            return finish(Err(invalid("iterator is NULL")));
        }
        // Safety: live iterator used by one thread at a time (documented).
        finish(f(unsafe { &mut *it }))
    })
}

/// Move to the next entry (the one after the current key). At the end the
/// iterator becomes invalid and `KV_OK` is returned. After a
/// `kv_iter_prev` it turns around: the next entry is the one after the
/// current one.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL; or, after `kv_iter_prev` moved
/// it before the first entry, not positioned: use `kv_iter_seek_first`),
/// `KV_CLOSED` (the store was closed; the iterator becomes invalid),
/// `KV_SNAPSHOT_EXPIRED`.
#[no_mangle]
pub unsafe extern "C" fn kv_iter_next(it: *mut kv_iter) -> kv_status {
    with_iter(it, |it| {
        if it.back {
            turn(it, false)?;
        }
        advance(it)
    })
}

/// Move to the previous entry (the one before the current key); before
/// the first one the iterator becomes invalid and `KV_OK` is returned.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL, not positioned at an entry, or a
/// transaction's iterator), `KV_CLOSED`, `KV_SNAPSHOT_EXPIRED`.
#[no_mangle]
pub unsafe extern "C" fn kv_iter_prev(it: *mut kv_iter) -> kv_status {
    with_iter(it, |it| {
        if !it.back {
            turn(it, true)?;
        } else if it.current.is_none() {
            return Err(invalid("iterator is not positioned at an entry"));
        }
        advance(it)
    })
}

/// Position at the first entry whose key is `>= key` (within the range it
/// was created with); invalid if there is none. `key` may be NULL with
/// length 0 (the range's first entry).
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL iterator, NULL key with a length,
/// a transaction's iterator), `KV_CLOSED`, `KV_SNAPSHOT_EXPIRED`.
#[no_mangle]
pub unsafe extern "C" fn kv_iter_seek(
    it: *mut kv_iter,
    key: *const u8,
    key_len: usize,
) -> kv_status {
    with_iter(it, |it| {
        // Safety: pointer/length pair as documented.
        let k = unsafe { bytes(key, key_len, "key") }?;
        let i = snap_iter(it)?;
        i.rewind();
        i.seek(k);
        it.back = false;
        advance(it)
    })
}

/// Position at the last entry whose key is `<= key` (within the range);
/// invalid if there is none; later `kv_iter_prev` calls go on backwards.
/// Errors: as `kv_iter_seek`.
#[no_mangle]
pub unsafe extern "C" fn kv_iter_seek_for_prev(
    it: *mut kv_iter,
    key: *const u8,
    key_len: usize,
) -> kv_status {
    with_iter(it, |it| {
        // Safety: pointer/length pair as documented.
        let k = unsafe { bytes(key, key_len, "key") }?;
        let i = snap_iter(it)?;
        i.rewind();
        i.seek_back(k);
        it.back = true;
        advance(it)
    })
}

/// Position at the range's first entry. Errors: as `kv_iter_seek`.
#[no_mangle]
pub unsafe extern "C" fn kv_iter_seek_first(it: *mut kv_iter) -> kv_status {
    with_iter(it, |it| {
        snap_iter(it)?.rewind();
        it.back = false;
        advance(it)
    })
}

/// Position at the range's last entry (for a descending scan with
/// `kv_iter_prev`). Errors: as `kv_iter_seek`.
#[no_mangle]
pub unsafe extern "C" fn kv_iter_seek_last(it: *mut kv_iter) -> kv_status {
    with_iter(it, |it| {
        snap_iter(it)?.rewind();
        it.back = true;
        advance(it)
    })
}

fn part(it: *const kv_iter, data: *mut *const u8, len: *mut usize, value: bool) -> kv_status {
    guard(|| {
        finish((|| {
            if it.is_null() || data.is_null() || len.is_null() {
                return Err(invalid("iterator and outputs must not be NULL"));
            }
            // Safety: live iterator, not mutated concurrently (documented).
            let it = unsafe { &*it };
            let (k, v) = it
                .current
                .as_ref()
                .ok_or_else(|| invalid("iterator is not positioned at an entry"))?;
            let b = if value { v } else { k };
            // Safety: outputs are non-NULL and writable.
            unsafe {
                *data = b.as_ptr();
                *len = b.len();
            }
            Ok(())
        })())
    })
}

/// Point `*key`/`*key_len` at the current key. The bytes belong to the
/// iterator and stay valid until the next `kv_iter_next` or
/// `kv_iter_free`.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL argument, or not valid).
#[no_mangle]
pub unsafe extern "C" fn kv_iter_key(
    it: *const kv_iter,
    key: *mut *const u8,
    key_len: *mut usize,
) -> kv_status {
    part(it, key, key_len, false)
}

/// Point `*val`/`*val_len` at the current value; lifetime and errors as
/// `kv_iter_key`.
#[no_mangle]
pub unsafe extern "C" fn kv_iter_value(
    it: *const kv_iter,
    val: *mut *const u8,
    val_len: *mut usize,
) -> kv_status {
    part(it, val, val_len, true)
}

/// Free an iterator. NULL is a no-op.
///
/// # Safety
/// `it` must be NULL or an iterator not freed yet.
#[no_mangle]
pub unsafe extern "C" fn kv_iter_free(it: *mut kv_iter) {
    if !it.is_null() {
        // Safety: `it` came from Box::into_raw in `make`.
        drop(unsafe { Box::from_raw(it) });
    }
}
