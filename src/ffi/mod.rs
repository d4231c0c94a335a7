//! The C ABI. A thin layer over the Rust API: argument checking, status
//! codes, ownership transfer, panic containment. Documentation here is
//! copied into `include/keyval.h` by cbindgen, which is what a C programmer
//! reads.
//!
//! Every function body runs inside `catch_unwind`: a Rust panic becomes
//! `KV_PANIC` and never unwinds into C.
#![allow(unsafe_code)]
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

mod batch;
mod db;
mod docs;
mod iter;
mod keyspace;
mod ops;
mod raft;
mod txn;

pub(crate) use batch::batch_mut;
pub use batch::*;
pub use db::*;

use crate::error::{Error, STATUSES};
use crate::Options;
use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

/// Status code returned by every fallible `kv_` function. `KV_OK` is 0;
/// codes 1-7 and 10-12 are the engine's errors, 8-9 belong to the C ABI.
/// Values never change between releases.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kv_status {
    /// Success.
    KV_OK = 0,
    /// An OS call failed (open, write, fsync, rename, no space, permission
    /// denied). After a failed write or fsync the store is poisoned.
    KV_IO = 1,
    /// Stored data failed verification; the message names file and offset.
    KV_CORRUPTION = 2,
    /// A NULL pointer where one is not allowed, an empty or oversized key,
    /// an oversized value, bad options, a path that is not a directory.
    KV_INVALID_ARGUMENT = 3,
    /// The directory is open in another handle or process.
    KV_LOCKED = 4,
    /// An earlier write or fsync failed; writes are refused until the store
    /// is closed and reopened. Reads still work.
    KV_POISONED = 5,
    /// The handle was closed (or is being closed by another thread).
    KV_CLOSED = 6,
    /// The key is absent (a get), or the keyspace, collection, index or
    /// document addressed does not exist.
    KV_NOT_FOUND = 7,
    /// `kv_get_into`: the caller's buffer is smaller than the value; the
    /// needed length was stored in `*val_len`.
    KV_BUFFER_TOO_SMALL = 8,
    /// A bug in KeyVal: a Rust panic was caught at the boundary. The
    /// operation did not complete; the handle may be poisoned.
    KV_PANIC = 9,
    /// Raft log: the index was compacted away.
    KV_COMPACTED = 10,
    /// Raft log: the index is beyond the end of the log.
    KV_OUT_OF_RANGE = 11,
    /// A unique constraint was violated: a document `_id` that exists, or
    /// a value already in a unique index. Nothing was written.
    KV_DUPLICATE_KEY = 12,
    /// A transaction's commit found that a key or range it read was
    /// written by another commit since its snapshot. Nothing of it was
    /// written; run it again.
    KV_CONFLICT = 13,
    /// A read of a snapshot, transaction or iterator older than
    /// `kv_options.max_snapshot_age_ms`. Take a new one.
    KV_SNAPSHOT_EXPIRED = 14,
}

impl kv_status {
    /// Every status, in code order: the literal mirror of
    /// [`crate::error::STATUSES`] that cbindgen needs (checked below and in
    /// this module's tests).
    pub(crate) const ALL: [kv_status; STATUSES.len()] = [
        kv_status::KV_OK,
        kv_status::KV_IO,
        kv_status::KV_CORRUPTION,
        kv_status::KV_INVALID_ARGUMENT,
        kv_status::KV_LOCKED,
        kv_status::KV_POISONED,
        kv_status::KV_CLOSED,
        kv_status::KV_NOT_FOUND,
        kv_status::KV_BUFFER_TOO_SMALL,
        kv_status::KV_PANIC,
        kv_status::KV_COMPACTED,
        kv_status::KV_OUT_OF_RANGE,
        kv_status::KV_DUPLICATE_KEY,
        kv_status::KV_CONFLICT,
        kv_status::KV_SNAPSHOT_EXPIRED,
    ];

    /// The status with numeric code `code`, if there is one.
    pub fn from_code(code: i32) -> Option<kv_status> {
        usize::try_from(code)
            .ok()
            .and_then(|i| kv_status::ALL.get(i).copied())
    }

    /// What [`kv_strerror`] says about this status (the status table's
    /// message).
    pub fn describe(self) -> &'static CStr {
        STATUSES[self as usize].message
    }
}

// The literal enum agrees with the status table: codes 0..N in order.
const _: () = {
    let mut i = 0;
    while i < kv_status::ALL.len() {
        assert!(kv_status::ALL[i] as i32 == STATUSES[i].code);
        i += 1;
    }
};

impl From<&Error> for kv_status {
    fn from(e: &Error) -> kv_status {
        kv_status::ALL[e.code() as usize]
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Cow<'static, CStr>> = const { RefCell::new(Cow::Borrowed(c"")) };
}

pub(crate) fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = Cow::Owned(c));
}

/// Return `status` after recording `msg` as the thread's last error
/// message (no allocation: for statuses on hot paths, such as a miss).
pub(crate) fn status_msg(status: kv_status, msg: &'static CStr) -> kv_status {
    LAST_ERROR.with(|l| *l.borrow_mut() = Cow::Borrowed(msg));
    status
}

/// Record `e` as this thread's last error and return its status.
pub(crate) fn fail(e: &Error) -> kv_status {
    set_last_error(&e.to_string());
    kv_status::from(e)
}

/// Why a C ABI call failed. Function bodies return `Result<_, Fail>` and
/// use `?`; [`finish`] turns the outcome into the status and records the
/// thread's last error message, in one place.
#[derive(Debug)]
pub(crate) enum Fail {
    /// An engine error (or a bad argument): its status and its text.
    Error(Error),
    /// A status that is not an engine error (`KV_NOT_FOUND`,
    /// `KV_BUFFER_TOO_SMALL`), with its fixed message.
    Status(kv_status, &'static CStr),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Error(e)
    }
}

/// A bad argument: `KV_INVALID_ARGUMENT` with `msg`.
pub(crate) fn invalid(msg: &str) -> Fail {
    Fail::Error(Error::InvalidArgument(msg.to_string()))
}

/// The status of a call's outcome; records the message of a failure as
/// the thread's last error.
pub(crate) fn finish(r: Result<(), Fail>) -> kv_status {
    match r {
        Ok(()) => kv_status::KV_OK,
        Err(Fail::Error(e)) => fail(&e),
        Err(Fail::Status(s, msg)) => status_msg(s, msg),
    }
}

/// Run `f`, turning a panic into `KV_PANIC`.
pub(crate) fn guard(f: impl FnOnce() -> kv_status) -> kv_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(s) => s,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!(
                "internal error (panic caught at the C boundary): {what}"
            ));
            kv_status::KV_PANIC
        }
    }
}

/// Run `f` on the handle behind `p` (`what` names it in errors), holding a
/// reference for the call's duration so that a concurrent close cannot
/// free it under us. A NULL handle is `KV_INVALID_ARGUMENT`.
pub(crate) fn with_handle<T>(
    p: *const T,
    what: &str,
    f: impl FnOnce(&Arc<T>) -> Result<(), Fail>,
) -> kv_status {
    guard(|| {
        if p.is_null() {
            return finish(Err(invalid(&format!("{what} is NULL"))));
        }
        // Safety: a non-NULL handle came from `open_handle` (Arc::into_raw)
        // and, per the header's rules, its close has not returned yet; so
        // the Arc's count is at least 1 and incrementing it is sound. The
        // matching decrement happens when `arc` drops.
        let arc = unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        };
        finish(f(&arc))
    })
}

/// The body of `kv_open` and `kv_raft_open`: check `path` (NUL-terminated,
/// any bytes) and `out`, build the options (`opts` NULL: defaults), run
/// `open`, and store the new reference-counted handle in `*out`.
///
/// Safety: `path` is NULL or NUL-terminated; `opts` is NULL or points to a
/// `kv_options`; `out` is NULL or writable.
pub(crate) unsafe fn open_handle<T>(
    path: *const c_char,
    opts: *const kv_options,
    out: *mut *mut T,
    open: impl FnOnce(&OsStr, Options) -> crate::Result<T>,
) -> kv_status {
    guard(|| {
        finish((|| {
            if path.is_null() {
                return Err(invalid("path is NULL"));
            }
            if out.is_null() {
                return Err(invalid("out is NULL"));
            }
            // Safety: non-NULL and, per the header, NUL-terminated.
            let p = unsafe { CStr::from_ptr(path) };
            let options = if opts.is_null() {
                Options::default()
            } else {
                // Safety: non-NULL, points to `struct_size` readable bytes
                // starting with a kv_options layout, per the header.
                to_options(&unsafe { read_sized(opts, db::default_options()) }?)?
            };
            let h = open(OsStr::from_bytes(p.to_bytes()), options)?;
            // Safety: `out` is non-NULL and writable.
            unsafe { *out = Arc::into_raw(Arc::new(h)) as *mut T };
            Ok(())
        })())
    })
}

/// A struct that crosses the C boundary with `size_t struct_size` as its
/// first field (the header's convention 10): `kv_options`, `kv_stats`,
/// `kv_metrics`. Later versions add fields only at the end, so a caller
/// compiled against an older header passes a smaller size and a newer one
/// a larger size.
pub(crate) trait Growable: Copy {
    /// The struct's name, for error messages.
    const NAME: &'static str;
    /// Its size in the first release that had `struct_size` (0.1); no
    /// caller can have a smaller one.
    const FIRST_SIZE: usize;
}

impl Growable for kv_options {
    const NAME: &'static str = "kv_options";
    /// The first release ended at `read_only` (`max_snapshot_age_ms` came
    /// with snapshots): a caller compiled against it still opens.
    const FIRST_SIZE: usize = std::mem::offset_of!(kv_options, max_snapshot_age_ms);
}
impl Growable for kv_stats {
    const NAME: &'static str = "kv_stats";
    const FIRST_SIZE: usize = std::mem::size_of::<kv_stats>();
}
impl Growable for kv_metrics {
    const NAME: &'static str = "kv_metrics";
    /// The first release ended at `recovery_truncated_bytes`.
    const FIRST_SIZE: usize = std::mem::offset_of!(kv_metrics, errors_conflict);
}

/// How many bytes a growable struct may be larger than this library's
/// layout: room for many versions' fields, small enough that a
/// `struct_size` left uninitialised is usually caught instead of trusted.
const MAX_GROWTH: usize = 4096;

/// The caller's `struct_size`, checked against the smallest layout and a
/// plausible largest one.
///
/// Safety: `p` is NULL or points to at least a `usize` of readable memory.
unsafe fn caller_size<T: Growable>(p: *const T) -> Result<usize, Fail> {
    if p.is_null() {
        return Err(invalid(&format!("{} pointer is NULL", T::NAME)));
    }
    // Safety: non-NULL; every Growable starts with `struct_size: usize`.
    let n = unsafe { std::ptr::read_unaligned(p as *const usize) };
    if n > std::mem::size_of::<T>() + MAX_GROWTH {
        return Err(invalid(&format!(
            "{}.struct_size is {n}, far larger than any {} layout: was it set to sizeof({})?",
            T::NAME,
            T::NAME,
            T::NAME
        )));
    }
    if n < T::FIRST_SIZE {
        return Err(invalid(&format!(
            "{}.struct_size is {n}, smaller than any {} layout ({} bytes): set it to sizeof({})",
            T::NAME,
            T::NAME,
            T::FIRST_SIZE,
            T::NAME
        )));
    }
    Ok(n)
}

/// Read a growable input struct: the fields the caller's `struct_size`
/// covers come from the caller, the rest from `defaults`. Bytes past the
/// fields this library knows must be zero (a newer caller asking for
/// something this library cannot do is refused, not ignored).
///
/// Safety: `p` is NULL or points to `struct_size` readable bytes.
pub(crate) unsafe fn read_sized<T: Growable>(p: *const T, defaults: T) -> Result<T, Fail> {
    // Safety: per this function's contract.
    let n = unsafe { caller_size(p) }?;
    let own = std::mem::size_of::<T>();
    // Safety: the caller's block holds `n` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, n) };
    if let Some(at) = bytes[own.min(n)..].iter().position(|&b| b != 0) {
        return Err(invalid(&format!(
            "{} has a non-zero field at byte {} that this library (version {}) does not know; \
             link a newer library or leave it zero",
            T::NAME,
            own + at,
            env!("CARGO_PKG_VERSION")
        )));
    }
    let mut v = defaults;
    // Safety: copies min(n, own) initialised bytes into `v`, which is a
    // plain-old-data `repr(C)` struct of `own` bytes; n >= FIRST_SIZE, so
    // whole fields are copied.
    unsafe {
        std::ptr::copy_nonoverlapping(p as *const u8, &mut v as *mut T as *mut u8, own.min(n))
    };
    Ok(v)
}

/// Write a growable output struct: as many of `value`'s bytes as the
/// caller's `struct_size` holds, zeros in the caller's bytes past this
/// library's fields, and the caller's `struct_size` kept.
///
/// Safety: `p` is NULL or points to `struct_size` writable bytes.
pub(crate) unsafe fn write_sized<T: Growable>(p: *mut T, value: T) -> Result<(), Fail> {
    // Safety: per this function's contract.
    let n = unsafe { caller_size(p) }?;
    let own = std::mem::size_of::<T>();
    let k = own.min(n);
    // Safety: the caller's block holds `n` >= `k` writable bytes; `value`
    // is a `repr(C)` struct of `own` >= `k` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(&value as *const T as *const u8, p as *mut u8, k);
        std::ptr::write_bytes((p as *mut u8).add(k), 0, n - k);
        std::ptr::write_unaligned(p as *mut usize, n);
    }
    Ok(())
}

/// Borrow the NUL-terminated path `p` (bytes, not necessarily UTF-8).
///
/// Safety: `p` is NULL or NUL-terminated and valid for the returned
/// lifetime.
pub(crate) unsafe fn path_arg<'a>(p: *const c_char, what: &str) -> Result<&'a Path, Fail> {
    if p.is_null() {
        return Err(invalid(&format!("{what} is NULL")));
    }
    // Safety: non-NULL and, per the caller's contract, NUL-terminated.
    let c = unsafe { CStr::from_ptr(p) };
    Ok(Path::new(OsStr::from_bytes(c.to_bytes())))
}

/// Backup body shared by `kv_backup` and `kv_raft_backup`: run `backup`
/// on the destination and store the LSN it reached in `*lsn` (if non-NULL).
///
/// Safety: `dest` is NULL or NUL-terminated; `lsn` is NULL or writable.
pub(crate) unsafe fn backup_to(
    dest: *const c_char,
    lsn: *mut u64,
    backup: impl FnOnce(&Path) -> crate::Result<crate::BackupInfo>,
) -> Result<(), Fail> {
    // Safety: per this function's contract.
    let path = unsafe { path_arg(dest, "dest") }?;
    let info = backup(path)?;
    if !lsn.is_null() {
        // Safety: non-NULL and writable per the contract.
        unsafe { *lsn = info.lsn };
    }
    Ok(())
}

/// The body of `kv_close` and `kv_raft_close`: NULL is a no-op; otherwise
/// take over the reference `open_handle` created, run `close`, and release
/// it (the memory goes once calls in flight on other threads finish).
///
/// Safety: `p` is NULL or came from `open_handle` and was not closed yet.
pub(crate) unsafe fn close_handle<T>(
    p: *mut T,
    close: impl FnOnce(&T) -> crate::Result<()>,
) -> kv_status {
    guard(|| {
        if p.is_null() {
            return kv_status::KV_OK;
        }
        // Safety: per this function's contract, `p` holds the reference
        // that open_handle created; it is released when `arc` drops.
        let arc = unsafe { Arc::from_raw(p as *const T) };
        finish(close(&arc).map_err(Fail::from))
    })
}

/// Borrow `len` bytes at `p`. NULL is accepted only with `len == 0`.
///
/// Safety: if non-NULL, `p` must point to `len` readable bytes that stay
/// valid and unmodified for the returned lifetime.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(invalid(&format!("{what} is NULL but its length is {len}")));
    }
    if len > isize::MAX as usize {
        return Err(invalid(&format!("{what} length {len} is impossible")));
    }
    // Safety: non-NULL, length checked above; the caller guarantees `len`
    // readable bytes for the lifetime (documented in the header).
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Borrow a UTF-8 string argument of `len` bytes at `p`.
///
/// Safety: as [`bytes`].
pub(crate) unsafe fn text<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a str, Fail> {
    // Safety: forwarded contract.
    let b = unsafe { bytes(p, len, what) }?;
    std::str::from_utf8(b).map_err(|_| invalid(&format!("{what} is not UTF-8")))
}

/// Hand `data` to the caller: a fresh `malloc` copy in `*out`, its length
/// in `*out_len` (the caller frees it with `kv_free`).
///
/// Errors: `KV_INVALID_ARGUMENT` if either pointer is NULL (nothing is
/// allocated), `KV_IO` if out of memory.
///
/// Safety: `out` and `out_len` are NULL or writable.
pub(crate) unsafe fn put_bytes(
    out: *mut *mut u8,
    out_len: *mut usize,
    data: &[u8],
) -> Result<(), Fail> {
    if out.is_null() || out_len.is_null() {
        return Err(invalid("output pointers must not be NULL"));
    }
    let p = malloc_copy(data)?;
    // Safety: both non-NULL and writable per the contract.
    unsafe {
        *out = p;
        *out_len = data.len();
    }
    Ok(())
}

/// Store `s` as a fresh NUL-terminated string in `*text` (free with
/// `kv_free`) and its length without the NUL in `*len`.
///
/// Errors: `KV_INVALID_ARGUMENT` if either pointer is NULL (nothing is
/// allocated), `KV_IO` if out of memory.
///
/// Safety: `text` and `len` are NULL or writable.
pub(crate) unsafe fn put_text(
    text: *mut *mut std::ffi::c_char,
    len: *mut usize,
    s: String,
) -> Result<(), Fail> {
    if text.is_null() || len.is_null() {
        return Err(invalid("text and len must not be NULL"));
    }
    let n = s.len();
    let mut b = s.into_bytes();
    b.push(0);
    let p = malloc_copy(&b)?;
    // Safety: both checked non-NULL, writable per the contract.
    unsafe {
        *text = p as *mut std::ffi::c_char;
        *len = n;
    }
    Ok(())
}

/// Copy `data` into a fresh `malloc` block (at least 1 byte, so that an
/// empty value still gets a non-NULL pointer) for the caller to `kv_free`.
pub(crate) fn malloc_copy(data: &[u8]) -> Result<*mut u8, Fail> {
    // Safety: malloc has no preconditions; the result is checked for NULL.
    let p = unsafe { libc::malloc(data.len().max(1)) } as *mut u8;
    if p.is_null() {
        return Err(Fail::Status(kv_status::KV_IO, c"out of memory"));
    }
    // Safety: `p` is a fresh allocation of at least data.len() bytes and
    // cannot overlap `data`.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
    Ok(p)
}

/// A static, human-readable description of `status` (never NULL). The
/// string is owned by the library and must not be freed. Takes any
/// integer: a value that is not a kv_status gives "unknown status".
#[no_mangle]
pub extern "C" fn kv_strerror(status: i32) -> *const c_char {
    kv_status::from_code(status)
        .map_or(c"unknown status", kv_status::describe)
        .as_ptr()
}

/// The message of the most recent failed `kv_` call on the calling thread,
/// with file, offset and OS error where known; "" if none failed yet. The
/// string is owned by the library and valid until the next `kv_` call on
/// this thread; copy it if you need it longer. Never NULL.
#[no_mangle]
pub extern "C" fn kv_last_error_message() -> *const c_char {
    LAST_ERROR.with(|l| l.borrow().as_ptr())
}

/// Free memory returned by the library (values, strings, Raft entries,
/// votes, snapshots, JSON texts). NULL is a no-op.
///
/// # Safety
/// `p` must be NULL or a pointer returned by this library that was not
/// freed yet.
#[no_mangle]
pub unsafe extern "C" fn kv_free(p: *mut std::ffi::c_void) {
    // Safety: the caller passes NULL or a block from `malloc_copy`, which
    // used libc::malloc; free(NULL) is a no-op.
    unsafe { libc::free(p) }
}

const VERSION_C: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library's version as a static string, e.g. "0.1.0". Compare it with
/// `KV_VERSION_STRING` to catch a header/library mismatch. Never NULL.
#[no_mangle]
pub extern "C" fn kv_version() -> *const c_char {
    VERSION_C.as_ptr() as *const c_char
}

/// The library's version as `major * 10000 + minor * 100 + patch`; equals
/// `KV_VERSION_NUMBER` when the header matches the library.
#[no_mangle]
pub extern "C" fn kv_version_number() -> u32 {
    let p = |s: &str| s.parse::<u32>().unwrap_or(0);
    p(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
        + p(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + p(env!("CARGO_PKG_VERSION_PATCH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_status_names_are_the_status_table() {
        for (st, row) in kv_status::ALL.iter().zip(STATUSES) {
            assert_eq!(format!("{st:?}"), row.c_name);
            assert_eq!(st.describe(), row.message);
        }
        for k in crate::ErrorKind::ALL {
            assert_eq!(kv_status::ALL[k.code() as usize] as i32, k.code());
        }
    }
}
