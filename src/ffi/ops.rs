//! The reads and writes of one keyspace, shared by the `kv_*` functions
//! on a database handle (its default keyspace) and the `kv_keyspace_*`
//! functions: each operation is written once, here.

use super::db::{kv_value, write_options};
use super::{bytes, invalid, kv_status, put_bytes, Fail};
use crate::{Keyspace, Snapshot, WriteOptions};

/// The reads that a keyspace and a snapshot both have, so that each C
/// read is written once for `kv_*`, `kv_keyspace_*` and `kv_snapshot_*`.
pub(crate) trait Reads {
    fn get_with<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> crate::Result<R>;
    fn get_many_with(
        &self,
        keys: &[&[u8]],
        f: impl FnMut(usize, Option<&[u8]>),
    ) -> crate::Result<()>;
    fn contains(&self, key: &[u8]) -> crate::Result<bool>;
    fn len(&self) -> crate::Result<u64>;
}

impl Reads for Keyspace {
    fn get_with<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> crate::Result<R> {
        Keyspace::get_with(self, key, f)
    }
    fn get_many_with(
        &self,
        keys: &[&[u8]],
        f: impl FnMut(usize, Option<&[u8]>),
    ) -> crate::Result<()> {
        Keyspace::get_many_with(self, keys, f)
    }
    fn contains(&self, key: &[u8]) -> crate::Result<bool> {
        Keyspace::contains(self, key)
    }
    fn len(&self) -> crate::Result<u64> {
        Keyspace::len(self)
    }
}

impl Reads for Snapshot {
    fn get_with<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> crate::Result<R> {
        Snapshot::get_with(self, key, f)
    }
    fn get_many_with(
        &self,
        keys: &[&[u8]],
        f: impl FnMut(usize, Option<&[u8]>),
    ) -> crate::Result<()> {
        Snapshot::get_many_with(self, keys, f)
    }
    fn contains(&self, key: &[u8]) -> crate::Result<bool> {
        Snapshot::contains(self, key)
    }
    fn len(&self) -> crate::Result<u64> {
        Snapshot::len(self)
    }
}

/// The write options of a write at `durability` (None: the store's
/// level), after checking that `key` is not NULL.
fn checked_write(key: *const u8, durability: Option<u32>) -> Result<WriteOptions, Fail> {
    let wo = durability
        .map(write_options)
        .transpose()?
        .unwrap_or_default();
    if key.is_null() {
        return Err(invalid("key is NULL"));
    }
    Ok(wo)
}

/// `kv_set`, `kv_set_with`, `kv_keyspace_set`, `kv_keyspace_set_with`
/// (`durability` None: the store's level).
///
/// Safety: pointer/length pairs as documented for `kv_set`.
pub(crate) unsafe fn set(
    ks: &Keyspace,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
    durability: Option<u32>,
) -> Result<(), Fail> {
    let wo = checked_write(key, durability)?;
    // Safety: pointer/length pairs as documented for kv_set.
    let (k, v) = unsafe { (bytes(key, key_len, "key")?, bytes(val, val_len, "value")?) };
    Ok(ks.set_opt(k, v, &wo)?)
}

/// `kv_delete`, `kv_delete_with` and their keyspace forms.
///
/// Safety: pointer/length pair as documented for `kv_delete`.
pub(crate) unsafe fn delete(
    ks: &Keyspace,
    key: *const u8,
    key_len: usize,
    durability: Option<u32>,
) -> Result<(), Fail> {
    let wo = checked_write(key, durability)?;
    // Safety: pointer/length pair as documented for kv_delete.
    let k = unsafe { bytes(key, key_len, "key") }?;
    Ok(ks.delete_opt(k, &wo)?)
}

/// `kv_get` and `kv_keyspace_get`.
///
/// Safety: as documented for `kv_get`.
pub(crate) unsafe fn get(
    ks: &impl Reads,
    key: *const u8,
    key_len: usize,
    val: *mut *mut u8,
    val_len: *mut usize,
) -> Result<(), Fail> {
    if key.is_null() || val.is_null() || val_len.is_null() {
        return Err(invalid("key, val and val_len must not be NULL"));
    }
    // Safety: pointer/length pair as documented.
    let k = unsafe { bytes(key, key_len, "key") }?;
    // Safety: both output pointers are non-NULL and writable.
    let found = ks.get_with(k, |v| v.map(|v| unsafe { put_bytes(val, val_len, v) }))?;
    found.unwrap_or(Err(Fail::Status(kv_status::KV_NOT_FOUND, c"key not found")))
}

/// `kv_get_into` and `kv_keyspace_get_into`.
///
/// Safety: as documented for `kv_get_into`.
pub(crate) unsafe fn get_into(
    ks: &impl Reads,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    cap: usize,
    val_len: *mut usize,
) -> Result<(), Fail> {
    if key.is_null() || val_len.is_null() || (buf.is_null() && cap > 0) {
        return Err(invalid(
            "key and val_len must not be NULL, nor buf when cap > 0",
        ));
    }
    // Safety: pointer/length pair as documented.
    let k = unsafe { bytes(key, key_len, "key") }?;
    ks.get_with(k, |v| match v {
        None => Err(Fail::Status(kv_status::KV_NOT_FOUND, c"key not found")),
        Some(v) => {
            // Safety: val_len is non-NULL and writable.
            unsafe { *val_len = v.len() };
            if v.len() > cap {
                return Err(Fail::Status(
                    kv_status::KV_BUFFER_TOO_SMALL,
                    c"buffer too small: the value's length is in *val_len",
                ));
            }
            if !v.is_empty() {
                // Safety: buf holds `cap` >= v.len() writable bytes
                // (non-NULL since cap > 0) and cannot overlap our value.
                unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), buf, v.len()) };
            }
            Ok(())
        }
    })?
}

/// The keys of a `kv_get_many` call as slices, or `None` (with `*out`
/// set to NULL) when `n` is 0.
///
/// Safety: as documented for `kv_get_many`.
pub(crate) unsafe fn unpack_keys<'a>(
    keys: *const u8,
    key_lens: *const usize,
    n: usize,
    out: *mut *mut kv_value,
) -> Result<Option<Vec<&'a [u8]>>, Fail> {
    if out.is_null() {
        return Err(invalid("out must not be NULL"));
    }
    if n == 0 {
        // Safety: `out` is non-NULL and writable.
        unsafe { *out = std::ptr::null_mut() };
        return Ok(None);
    }
    if key_lens.is_null() {
        return Err(invalid("key_lens must not be NULL when n > 0"));
    }
    // Safety: `key_lens` points to `n` lengths (the header's contract).
    let lens = unsafe { std::slice::from_raw_parts(key_lens, n) };
    let total = lens
        .iter()
        .try_fold(0usize, |a, &l| a.checked_add(l))
        .ok_or_else(|| invalid("key_lens add up to more than the address space"))?;
    // Safety: `keys` holds `total` bytes (NULL only when 0).
    let packed: &'a [u8] = unsafe { bytes(keys, total, "keys") }?;
    let mut list: Vec<&[u8]> = Vec::with_capacity(n);
    let mut at = 0;
    for &l in lens {
        list.push(&packed[at..at + l]);
        at += l;
    }
    Ok(Some(list))
}

/// Build the result block of `kv_get_many` (one malloc: the array of
/// `kv_value`, then the values) from `values` and store it in `*out`.
///
/// Safety: `out` is non-NULL and writable.
pub(crate) unsafe fn publish_values<'v>(
    values: impl Iterator<Item = Option<&'v [u8]>>,
    out: *mut *mut kv_value,
) -> Result<(), Fail> {
    let mut found: Vec<Option<(usize, usize)>> = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    for v in values {
        found.push(v.map(|v| {
            data.extend_from_slice(v);
            (data.len() - v.len(), v.len())
        }));
    }
    // Safety: forwarded.
    unsafe { publish_block(&found, &data, out) }
}

/// `kv_get_many` and `kv_keyspace_get_many`.
///
/// Safety: as documented for `kv_get_many`.
pub(crate) unsafe fn get_many(
    ks: &impl Reads,
    keys: *const u8,
    key_lens: *const usize,
    n: usize,
    out: *mut *mut kv_value,
) -> Result<(), Fail> {
    // Safety: as documented.
    let Some(list) = unsafe { unpack_keys(keys, key_lens, n, out) }? else {
        return Ok(());
    };
    // Gather under the read lock, then build the block outside it.
    let mut found: Vec<Option<(usize, usize)>> = Vec::with_capacity(n);
    let mut data: Vec<u8> = Vec::new();
    ks.get_many_with(&list, |_, v| {
        found.push(v.map(|v| {
            data.extend_from_slice(v);
            (data.len() - v.len(), v.len())
        }))
    })?;
    // Safety: `out` was checked non-NULL by unpack_keys.
    unsafe { publish_block(&found, &data, out) }
}

/// Store the block of `found` (offset, length into `data`) in `*out`.
///
/// Safety: `out` is non-NULL and writable.
unsafe fn publish_block(
    found: &[Option<(usize, usize)>],
    data: &[u8],
    out: *mut *mut kv_value,
) -> Result<(), Fail> {
    let head = found.len() * std::mem::size_of::<kv_value>();
    // Safety: malloc has no preconditions; checked for NULL below.
    let block = unsafe { libc::malloc(head + data.len()) } as *mut u8;
    if block.is_null() {
        return Err(Fail::Status(kv_status::KV_IO, c"out of memory"));
    }
    let arr = block as *mut kv_value;
    // Safety: `block` holds `head + data.len()` bytes: the array of
    // kv_value (malloc's alignment suits pointers) followed by the
    // values; each (offset, len) lies inside `data`.
    unsafe {
        let values = block.add(head);
        std::ptr::copy_nonoverlapping(data.as_ptr(), values, data.len());
        for (i, f) in found.iter().enumerate() {
            arr.add(i).write(match *f {
                Some((off, len)) => kv_value {
                    value: values.add(off),
                    value_len: len,
                },
                None => kv_value {
                    value: std::ptr::null(),
                    value_len: 0,
                },
            });
        }
        *out = arr;
    }
    Ok(())
}

/// `kv_contains` and `kv_keyspace_contains`.
///
/// Safety: as documented for `kv_contains`.
pub(crate) unsafe fn contains(
    ks: &impl Reads,
    key: *const u8,
    key_len: usize,
    out: *mut i32,
) -> Result<(), Fail> {
    if key.is_null() || out.is_null() {
        return Err(invalid("key and out must not be NULL"));
    }
    // Safety: pointer/length pair as documented.
    let k = unsafe { bytes(key, key_len, "key") }?;
    let b = ks.contains(k)?;
    // Safety: `out` is non-NULL and writable.
    unsafe { *out = b as i32 };
    Ok(())
}

/// `kv_len` and `kv_keyspace_len`.
///
/// Safety: `out` is NULL or writable.
pub(crate) unsafe fn len(ks: &impl Reads, out: *mut u64) -> Result<(), Fail> {
    if out.is_null() {
        return Err(invalid("out is NULL"));
    }
    let n = ks.len()?;
    // Safety: `out` is non-NULL and writable.
    unsafe { *out = n };
    Ok(())
}
