//! `kv_iter`: ordered iteration over a key range or a prefix.

use super::{bytes, finish, guard, invalid, kv_db, kv_status, with_db, Fail};
use crate::Iter;
use std::ops::Bound;

/// An iterator. Opaque; create with `kv_iter_range` or `kv_iter_prefix`
/// (or, over a keyspace, `kv_keyspace_iter_range` and
/// `kv_keyspace_iter_prefix`), free with `kv_iter_free`. Not thread-safe: use one iterator from one
/// thread at a time (different iterators on one `kv_db` may run on
/// different threads). It holds no lock: writes made while it runs may or
/// may not be seen, keys come in strictly increasing order, each once. It
/// keeps the store's memory alive but must be freed before or after
/// `kv_close`; after close `kv_iter_next` returns `KV_CLOSED`.
pub struct kv_iter {
    iter: Iter,
    current: Option<(Vec<u8>, Vec<u8>)>,
}

/// Move to the next pair (or past the end). Errors: `Closed`.
fn advance(it: &mut kv_iter) -> Result<(), Fail> {
    it.current = None;
    if let Some(kv) = it.iter.next() {
        it.current = Some(kv?);
    }
    Ok(())
}

/// Store a new `kv_iter` over `iter`, positioned at its first pair, in
/// `*out`. Errors: `KV_INVALID_ARGUMENT` (NULL out), `KV_CLOSED`.
pub(crate) fn publish(out: *mut *mut kv_iter, iter: Iter) -> Result<(), Fail> {
    if out.is_null() {
        return Err(invalid("out is NULL"));
    }
    let mut it = kv_iter {
        iter,
        current: None,
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

/// Move to the next entry. At the end the iterator becomes invalid and
/// `KV_OK` is returned.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL), `KV_CLOSED` (the store was
/// closed; the iterator becomes invalid).
#[no_mangle]
pub unsafe extern "C" fn kv_iter_next(it: *mut kv_iter) -> kv_status {
    guard(|| {
        if it.is_null() {
            return finish(Err(invalid("iterator is NULL")));
        }
        // Safety: live iterator used by one thread at a time.
        finish(advance(unsafe { &mut *it }))
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
