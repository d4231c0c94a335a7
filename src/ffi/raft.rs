//! `kv_raft`: the Raft log store (`keyval::raft::RaftLog`) over the C ABI.
//!
//! Same conventions as `kv_db`: a handle is reference counted, so calls
//! racing with `kv_raft_close` finish or return `KV_CLOSED`; memory handed
//! to the caller is one `malloc` block, released with `kv_free`.

use super::{
    bytes, close_handle, invalid, kv_options, kv_status, malloc_copy, open_handle, with_handle,
    Fail,
};
use crate::raft::{Entry, HardState, RaftLog, SnapshotMeta};
use std::ffi::{c_char, c_void};
use std::sync::Arc;

/// An open Raft log. Opaque; create with `kv_raft_open`, release with
/// `kv_raft_close`. Safe to use from many threads at once.
pub struct kv_raft {
    log: RaftLog,
}

/// One Raft log entry, as passed to `kv_raft_append` and returned by
/// `kv_raft_entries`. `data` may be NULL only when `data_len` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct kv_raft_entry {
    /// Log index (a new log may start at any index, 0 included).
    pub index: u64,
    /// Term in which the entry was created.
    pub term: u64,
    /// The payload (opaque bytes).
    pub data: *const u8,
    /// Payload length in bytes.
    pub data_len: usize,
}

/// Snapshot reader callback for `kv_raft_save_snapshot_stream`: copy up to
/// `cap` bytes into `buf` and return how many were copied; return 0 at the
/// end of the data and a negative value on error (the save is abandoned
/// and returns `KV_IO`).
pub type kv_read_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, cap: usize) -> i64>;

fn with_raft(log: *const kv_raft, f: impl FnOnce(&Arc<kv_raft>) -> Result<(), Fail>) -> kv_status {
    with_handle(log, "log", f)
}

/// Open (creating if allowed, then recovering) the Raft log in directory
/// `path` (NUL-terminated). `opts` may be NULL for the defaults; its
/// `durability` must be `KV_DURABILITY_SYNC` (the default) or
/// `KV_DURABILITY_OS`; `keep_snapshots` and `max_wal_size` do not apply.
/// A Raft log needs its own directory, not one holding a `kv_db`.
///
/// Errors: as `kv_open`; `KV_INVALID_ARGUMENT` also for
/// `KV_DURABILITY_BUFFERED`.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_open(
    path: *const c_char,
    opts: *const kv_options,
    out: *mut *mut kv_raft,
) -> kv_status {
    // Safety: the arguments are as documented above.
    unsafe {
        open_handle(path, opts, out, |p, o| {
            RaftLog::open(p, o).map(|log| kv_raft { log })
        })
    }
}

/// Online backup: copy the log (entries, hard state, truncations and the
/// snapshot) into the new directory `dest` (NUL-terminated) while appends
/// go on; `dest` then opens with `kv_raft_open`. It holds everything
/// acknowledged before the call; `*lsn` (if `lsn` is not NULL) gets the
/// last sequence number copied. Same staging and crash rules as
/// `kv_backup`.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL log or dest; `dest` exists; its
/// parent is missing), `KV_CORRUPTION` (the snapshot fails its SHA-256),
/// `KV_CLOSED`, `KV_POISONED`, `KV_IO` (the log is unaffected).
#[no_mangle]
pub unsafe extern "C" fn kv_raft_backup(
    log: *const kv_raft,
    dest: *const c_char,
    lsn: *mut u64,
) -> kv_status {
    // Safety: `dest` and `lsn` are as documented above.
    with_raft(log, |h| unsafe {
        super::backup_to(dest, lsn, |p| h.log.backup(p))
    })
}

/// Close the log: wait for appends in flight, sync, release the directory
/// lock, free the handle. `kv_raft_close(NULL)` is a no-op. Calls in
/// progress on other threads finish or return `KV_CLOSED`; `log` must not
/// be used after this returns.
///
/// Errors (the handle is freed all the same): `KV_POISONED`, `KV_IO`.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_close(log: *mut kv_raft) -> kv_status {
    // Safety: `log` is NULL or came from kv_raft_open, as documented above.
    unsafe { close_handle(log, |h| h.log.close()) }
}

/// Append `n` entries (an array of `kv_raft_entry`, indexes consecutive and
/// starting at the log's next index; any index, 0 included, for a new log). Returns
/// once they are durable; concurrent appenders share fsyncs. The library
/// copies the payloads. `n == 0` is a no-op (`entries` may then be NULL).
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL log, NULL entries with n > 0, NULL
/// data with data_len > 0, indexes not consecutive or not continuing the
/// log, a payload larger than `max_value_size`), `KV_CLOSED`,
/// `KV_POISONED`, `KV_IO` (the log is now poisoned).
#[no_mangle]
pub unsafe extern "C" fn kv_raft_append(
    log: *const kv_raft,
    entries: *const kv_raft_entry,
    n: usize,
) -> kv_status {
    with_raft(log, |h| {
        if n == 0 {
            return Ok(());
        }
        if entries.is_null() {
            return Err(invalid("entries is NULL"));
        }
        if n > isize::MAX as usize / std::mem::size_of::<kv_raft_entry>() {
            return Err(invalid("entry count is impossible"));
        }
        // Safety: non-NULL, and the caller passes `n` entries.
        let raw = unsafe { std::slice::from_raw_parts(entries, n) };
        let mut v = Vec::with_capacity(n);
        for e in raw {
            // Safety: pointer/length pair as documented for kv_raft_entry.
            let data = unsafe { bytes(e.data, e.data_len, "entry data")? }.to_vec();
            v.push(Entry {
                index: e.index,
                term: e.term,
                data,
            });
        }
        Ok(h.log.append(&v)?)
    })
}

/// As `kv_raft_append`, for callers that cannot build an array of pointers
/// (Go's cgo forbids Go pointers inside memory passed to C): `n` entries
/// with indexes `first_index`, `first_index + 1`, ..., terms `terms[i]`,
/// payload lengths `lens[i]` (bytes), and the payloads concatenated in
/// `data` (`data_len` bytes, which must equal the sum of `lens`).
///
/// Errors: as `kv_raft_append`; `KV_INVALID_ARGUMENT` also when the
/// lengths do not add up to `data_len`.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_append_packed(
    log: *const kv_raft,
    first_index: u64,
    n: usize,
    terms: *const u64,
    lens: *const usize,
    data: *const u8,
    data_len: usize,
) -> kv_status {
    with_raft(log, |h| {
        if n == 0 {
            return Ok(());
        }
        if terms.is_null() || lens.is_null() {
            return Err(invalid("terms and lens must not be NULL"));
        }
        if n > isize::MAX as usize / 8 || first_index.checked_add(n as u64).is_none() {
            return Err(invalid("entry count is impossible"));
        }
        // Safety: non-NULL; the caller passes `n` terms and `n` lengths.
        let (ts, ls) = unsafe {
            (
                std::slice::from_raw_parts(terms, n),
                std::slice::from_raw_parts(lens, n),
            )
        };
        // Safety: pointer/length pair as documented.
        let d = unsafe { bytes(data, data_len, "data") }?;
        let total = ls.iter().try_fold(0usize, |a, &l| a.checked_add(l));
        if total != Some(data_len) {
            return Err(invalid("entry lengths do not add up to data_len"));
        }
        let mut off = 0;
        let mut v = Vec::with_capacity(n);
        for (i, (&t, &l)) in ts.iter().zip(ls).enumerate() {
            v.push(Entry {
                index: first_index + i as u64,
                term: t,
                data: d[off..off + l].to_vec(),
            });
            off += l;
        }
        Ok(h.log.append(&v)?)
    })
}

/// Read the entry at `index`: stores its term in `*term` and a newly
/// allocated copy of its payload in `*data` / `*data_len` (never NULL; free
/// with `kv_free`). `term` may be NULL if not wanted.
///
/// Errors: `KV_COMPACTED` (index below the first index),
/// `KV_OUT_OF_RANGE` (beyond the last), `KV_CORRUPTION` (the stored entry
/// fails its CRC), `KV_IO`, `KV_INVALID_ARGUMENT` (NULL log/data/data_len),
/// `KV_CLOSED`. Outputs are untouched on error.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_entry_get(
    log: *const kv_raft,
    index: u64,
    term: *mut u64,
    data: *mut *mut u8,
    data_len: *mut usize,
) -> kv_status {
    with_raft(log, |h| {
        if data.is_null() || data_len.is_null() {
            return Err(invalid("data and data_len must not be NULL"));
        }
        let e = h.log.entry(index)?;
        let p = malloc_copy(&e.data)?;
        // Safety: output pointers checked non-NULL (term may be NULL).
        unsafe {
            if !term.is_null() {
                *term = e.term;
            }
            *data = p;
            *data_len = e.data.len();
        }
        Ok(())
    })
}

/// Read the entries with `lo <= index < hi`, stopping after the first entry
/// that brings the payload total to `max_bytes` or more (at least one entry
/// when `lo < hi`). Stores in `*out` one `malloc` block holding an array of
/// `*n` `kv_raft_entry` whose `data` pointers point into the same block;
/// release everything with one `kv_free(*out)`. With `lo >= hi`, `*out` is
/// NULL and `*n` is 0.
///
/// Errors: as `kv_raft_entry_get`, for the first index that fails.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_entries(
    log: *const kv_raft,
    lo: u64,
    hi: u64,
    max_bytes: u64,
    out: *mut *mut kv_raft_entry,
    n: *mut usize,
) -> kv_status {
    with_raft(log, |h| {
        if out.is_null() || n.is_null() {
            return Err(invalid("out and n must not be NULL"));
        }
        let es = h.log.entries(lo, hi, max_bytes)?;
        if es.is_empty() {
            // Safety: both outputs non-NULL.
            unsafe {
                *out = std::ptr::null_mut();
                *n = 0;
            }
            return Ok(());
        }
        let head = es.len() * std::mem::size_of::<kv_raft_entry>();
        let total = head + es.iter().map(|e| e.data.len()).sum::<usize>();
        // Safety: malloc has no preconditions; checked for NULL below.
        let block = unsafe { libc::malloc(total) } as *mut u8;
        if block.is_null() {
            return Err(Fail::Status(kv_status::KV_IO, c"out of memory"));
        }
        let arr = block as *mut kv_raft_entry;
        let mut off = head;
        for (i, e) in es.iter().enumerate() {
            // Safety: `block` holds `total` bytes: the array of es.len()
            // entries (malloc's alignment suits u64 and pointers) followed
            // by every payload; `off + len <= total` by construction.
            unsafe {
                let d = block.add(off);
                std::ptr::copy_nonoverlapping(e.data.as_ptr(), d, e.data.len());
                arr.add(i).write(kv_raft_entry {
                    index: e.index,
                    term: e.term,
                    data: d,
                    data_len: e.data.len(),
                });
            }
            off += e.data.len();
        }
        // Safety: both outputs non-NULL.
        unsafe {
            *out = arr;
            *n = es.len();
        }
        Ok(())
    })
}

/// Store the term of the entry at `index` in `*term` (no disk access).
///
/// Errors: `KV_COMPACTED`, `KV_OUT_OF_RANGE`, `KV_INVALID_ARGUMENT`,
/// `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_term(
    log: *const kv_raft,
    index: u64,
    term: *mut u64,
) -> kv_status {
    with_raft(log, |h| {
        if term.is_null() {
            return Err(invalid("term is NULL"));
        }
        let t = h.log.term(index)?;
        // Safety: non-NULL output.
        unsafe { *term = t };
        Ok(())
    })
}

/// Store in `*first` the index of the first entry held (after compaction,
/// the index after the last purged one; 1 for a new log) and in `*last`
/// the index of the last entry. When the log holds no entry, `*last` is
/// `*first - 1` (so `*last < *first`); use `kv_raft_last_purged` to learn
/// the index and term the compaction stopped at. Either output may be NULL.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL log), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_bounds(
    log: *const kv_raft,
    first: *mut u64,
    last: *mut u64,
) -> kv_status {
    with_raft(log, |h| {
        let r = h
            .log
            .first_index()
            .and_then(|f| h.log.last_index().map(|l| (f, l)));
        let (f, l) = r?;
        // Safety: each output is written only when non-NULL.
        unsafe {
            if !first.is_null() {
                *first = f;
            }
            if !last.is_null() {
                *last = l.unwrap_or(f.saturating_sub(1));
            }
        }
        Ok(())
    })
}

/// Store the index and term of the last entry removed by
/// `kv_raft_truncate_prefix` (the term is 0 if that entry was not in the
/// log). Either output may be NULL.
///
/// Errors: `KV_NOT_FOUND` (nothing was ever purged), `KV_INVALID_ARGUMENT`,
/// `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_last_purged(
    log: *const kv_raft,
    index: *mut u64,
    term: *mut u64,
) -> kv_status {
    with_raft(log, |h| {
        let (i, t) = h.log.last_purged()?.ok_or(Fail::Status(
            kv_status::KV_NOT_FOUND,
            c"nothing was ever purged",
        ))?;
        // Safety: each output is written only when non-NULL.
        unsafe {
            if !index.is_null() {
                *index = i;
            }
            if !term.is_null() {
                *term = t;
            }
        }
        Ok(())
    })
}

/// Remove every entry with index >= `from` (Raft conflict resolution),
/// durably before returning. The next append continues at `from` (or at
/// the old next index when `from` was beyond the end).
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL log), `KV_CLOSED`, `KV_POISONED`,
/// `KV_IO`.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_truncate_suffix(log: *const kv_raft, from: u64) -> kv_status {
    with_raft(log, |h| Ok(h.log.truncate_suffix(from)?))
}

/// Remove every entry with index <= `upto` (compaction after a snapshot),
/// durably, and delete the WAL segments that hold nothing still needed.
/// The first index becomes `upto + 1`, even if `upto` is beyond the end
/// (then `kv_raft_last_purged` reports term 0 for it). The purge point
/// never moves backwards: `upto` at or below the last purged index
/// changes nothing and returns `KV_OK`.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL log, or `upto` is `UINT64_MAX`:
/// the first index would not fit), `KV_CLOSED`, `KV_POISONED`, `KV_IO`.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_truncate_prefix(log: *const kv_raft, upto: u64) -> kv_status {
    with_raft(log, |h| Ok(h.log.truncate_prefix(upto)?))
}

/// Save Raft's hard state durably: the current `term`, the vote as opaque
/// bytes (`vote_len` bytes; empty = no vote; `vote` may be NULL when
/// `vote_len` is 0) and the `commit` index.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL log, NULL vote with vote_len > 0),
/// `KV_CLOSED`, `KV_POISONED`, `KV_IO`.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_save_hard_state(
    log: *const kv_raft,
    term: u64,
    vote: *const u8,
    vote_len: usize,
    commit: u64,
) -> kv_status {
    with_raft(log, |h| {
        // Safety: pointer/length pair as documented.
        let v = unsafe { bytes(vote, vote_len, "vote")? }.to_vec();
        Ok(h.log.save_hard_state(&HardState {
            term,
            vote: v,
            commit,
        })?)
    })
}

/// Read the last saved hard state: stores the term, a newly allocated copy
/// of the vote (never NULL, even when empty; free with `kv_free`), its
/// length, and the commit index. `term` and `commit` may be NULL.
///
/// Errors: `KV_NOT_FOUND` (never saved; outputs untouched),
/// `KV_INVALID_ARGUMENT` (NULL log/vote/vote_len), `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_hard_state(
    log: *const kv_raft,
    term: *mut u64,
    vote: *mut *mut u8,
    vote_len: *mut usize,
    commit: *mut u64,
) -> kv_status {
    with_raft(log, |h| {
        if vote.is_null() || vote_len.is_null() {
            return Err(invalid("vote and vote_len must not be NULL"));
        }
        let hs = h.log.hard_state()?.ok_or(Fail::Status(
            kv_status::KV_NOT_FOUND,
            c"no hard state was ever saved",
        ))?;
        let p = malloc_copy(&hs.vote)?;
        // Safety: required outputs checked; optional ones written only when
        // non-NULL.
        unsafe {
            if !term.is_null() {
                *term = hs.term;
            }
            if !commit.is_null() {
                *commit = hs.commit;
            }
            *vote = p;
            *vote_len = hs.vote.len();
        }
        Ok(())
    })
}

/// Save a snapshot atomically: `last_index` and `last_term` of the last
/// entry it covers, opaque `config` bytes (the membership), and `data`
/// (`data_len` bytes). Written to a temporary file with a SHA-256 trailer,
/// fsynced, renamed over the previous snapshot, directory fsynced. Does not
/// truncate the log; call `kv_raft_truncate_prefix` afterwards.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL log, NULL config/data with a
/// non-zero length), `KV_CLOSED`, `KV_POISONED`, `KV_IO` (the previous
/// snapshot stays in place).
#[no_mangle]
pub unsafe extern "C" fn kv_raft_save_snapshot(
    log: *const kv_raft,
    last_index: u64,
    last_term: u64,
    config: *const u8,
    config_len: usize,
    data: *const u8,
    data_len: usize,
) -> kv_status {
    with_raft(log, |h| {
        // Safety: pointer/length pairs as documented.
        let (c, mut d) = unsafe {
            (
                bytes(config, config_len, "config")?,
                bytes(data, data_len, "data")?,
            )
        };
        let meta = SnapshotMeta {
            last_index,
            last_term,
            config: c.to_vec(),
        };
        Ok(h.log.save_snapshot(&meta, &mut d)?)
    })
}

struct CallbackReader {
    read: unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> i64,
    ctx: *mut c_void,
}

impl std::io::Read for CallbackReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Safety: the callback receives a valid writable buffer of
        // `buf.len()` bytes and the caller's context, as documented.
        let n = unsafe { (self.read)(self.ctx, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return Err(std::io::Error::other(format!(
                "snapshot read callback returned {n}"
            )));
        }
        Ok((n as usize).min(buf.len()))
    }
}

/// As `kv_raft_save_snapshot`, with the data streamed: `read(ctx, buf,
/// cap)` is called on this thread until it returns 0 (end) or a negative
/// value (error: the save is abandoned with `KV_IO`, the previous snapshot
/// stays). The data is never held in memory whole.
///
/// Errors: as `kv_raft_save_snapshot`; `KV_INVALID_ARGUMENT` for a NULL
/// `read`.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_save_snapshot_stream(
    log: *const kv_raft,
    last_index: u64,
    last_term: u64,
    config: *const u8,
    config_len: usize,
    read: kv_read_fn,
    ctx: *mut c_void,
) -> kv_status {
    with_raft(log, |h| {
        let Some(read) = read else {
            return Err(invalid("read is NULL"));
        };
        // Safety: pointer/length pair as documented.
        let c = unsafe { bytes(config, config_len, "config") }?;
        let meta = SnapshotMeta {
            last_index,
            last_term,
            config: c.to_vec(),
        };
        Ok(h.log
            .save_snapshot(&meta, &mut CallbackReader { read, ctx })?)
    })
}

/// Read the latest snapshot, verified against its SHA-256: stores its last
/// index and term, and newly allocated copies of the config and data
/// (never NULL; free each with `kv_free`). `last_index` and `last_term`
/// may be NULL.
///
/// Errors: `KV_NOT_FOUND` (no snapshot saved; outputs untouched),
/// `KV_CORRUPTION` (the snapshot fails its checksum), `KV_IO`,
/// `KV_INVALID_ARGUMENT` (NULL log/config/config_len/data/data_len),
/// `KV_CLOSED`.
#[no_mangle]
pub unsafe extern "C" fn kv_raft_snapshot(
    log: *const kv_raft,
    last_index: *mut u64,
    last_term: *mut u64,
    config: *mut *mut u8,
    config_len: *mut usize,
    data: *mut *mut u8,
    data_len: *mut usize,
) -> kv_status {
    with_raft(log, |h| {
        if config.is_null() || config_len.is_null() || data.is_null() || data_len.is_null() {
            return Err(invalid(
                "config, config_len, data and data_len must not be NULL",
            ));
        }
        let (meta, bytes) = h.log.snapshot()?.ok_or(Fail::Status(
            kv_status::KV_NOT_FOUND,
            c"no snapshot was saved",
        ))?;
        let c = malloc_copy(&meta.config)?;
        let d = match malloc_copy(&bytes) {
            Ok(p) => p,
            Err(s) => {
                // Safety: `c` came from malloc_copy and is not yet shared.
                unsafe { libc::free(c as *mut c_void) };
                return Err(s);
            }
        };
        // Safety: required outputs checked; optional ones written only when
        // non-NULL.
        unsafe {
            if !last_index.is_null() {
                *last_index = meta.last_index;
            }
            if !last_term.is_null() {
                *last_term = meta.last_term;
            }
            *config = c;
            *config_len = meta.config.len();
            *data = d;
            *data_len = bytes.len();
        }
        Ok(())
    })
}

/// The log's metrics (`keyval::raft::RaftMetrics`) as one JSON object, a
/// newly allocated NUL-terminated string in `*json` (free with `kv_free`)
/// and its length without the NUL in `*len`. JSON rather than a struct, so
/// that fields can be added without breaking compiled callers. Members:
/// counters since open `appends`, `entries_appended`, `bytes_appended`,
/// `hard_state_saves`, `truncations_suffix`, `truncations_prefix`,
/// `segment_rotations`, `segments_reclaimed`, `snapshots_saved`, `fsyncs`,
/// `commit_groups`, `errors`; gauges `first_index`, `last_index` (0: no
/// entry), `wal_segments`, `wal_disk_bytes`, `poisoned` (bool); `seconds`
/// since open; `recovery_micros`, `recovery_records_replayed`; and latency
/// objects `append_latency`, `hard_state_latency`, `truncate_latency`,
/// `snapshot_latency`, each `{"count", "p50", "p95", "p99", "max",
/// "mean"}` in microseconds.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL log/json/len), `KV_CLOSED`, `KV_IO`
/// (out of memory).
#[no_mangle]
pub unsafe extern "C" fn kv_raft_metrics_json(
    log: *const kv_raft,
    json: *mut *mut c_char,
    len: *mut usize,
) -> kv_status {
    with_raft(log, |h| {
        if json.is_null() || len.is_null() {
            return Err(invalid("json and len must not be NULL"));
        }
        let m = h.log.metrics()?;
        let lat = |s: &crate::engine::metrics::Summary| {
            serde_json::json!({"count": s.count, "p50": s.p50, "p95": s.p95,
                "p99": s.p99, "max": s.max, "mean": s.mean})
        };
        let v = serde_json::json!({
            "seconds": m.seconds, "appends": m.appends,
            "entries_appended": m.entries_appended, "bytes_appended": m.bytes_appended,
            "hard_state_saves": m.hard_state_saves,
            "truncations_suffix": m.truncations_suffix,
            "truncations_prefix": m.truncations_prefix,
            "segment_rotations": m.segment_rotations,
            "segments_reclaimed": m.segments_reclaimed,
            "snapshots_saved": m.snapshots_saved, "fsyncs": m.fsyncs,
            "commit_groups": m.commit_groups, "errors": m.errors,
            "first_index": m.first_index, "last_index": m.last_index,
            "wal_segments": m.wal_segments, "wal_disk_bytes": m.wal_disk_bytes,
            "recovery_micros": m.recovery_micros,
            "recovery_records_replayed": m.recovery_records_replayed,
            "poisoned": m.poisoned,
            "append_latency": lat(&m.append_latency),
            "hard_state_latency": lat(&m.hard_state_latency),
            "truncate_latency": lat(&m.truncate_latency),
            "snapshot_latency": lat(&m.snapshot_latency),
        });
        // Safety: outputs as documented above.
        unsafe { super::put_text(json, len, v.to_string()) }
    })
}

/// The log's metrics in Prometheus text exposition format, names starting
/// `keyval_raft_`, every sample labelled `log="<label>"` (`label`: a
/// NUL-terminated string, or NULL for the log's directory path): a newly
/// allocated NUL-terminated string in `*text` (free with `kv_free`) and its
/// length without the NUL in `*len`.
///
/// Errors: `KV_INVALID_ARGUMENT` (NULL log/text/len, a label that is not
/// UTF-8), `KV_CLOSED`, `KV_IO` (out of memory).
#[no_mangle]
pub unsafe extern "C" fn kv_raft_metrics_prometheus(
    log: *const kv_raft,
    label: *const c_char,
    text: *mut *mut c_char,
    len: *mut usize,
) -> kv_status {
    with_raft(log, |h| {
        if text.is_null() || len.is_null() {
            return Err(invalid("text and len must not be NULL"));
        }
        let label = if label.is_null() {
            h.log.path().to_string_lossy().into_owned()
        } else {
            // Safety: non-NULL and NUL-terminated as documented.
            unsafe { std::ffi::CStr::from_ptr(label) }
                .to_str()
                .map_err(|_| invalid("label is not UTF-8"))?
                .to_string()
        };
        let s = h.log.metrics()?.to_prometheus(&label);
        // Safety: outputs as documented above.
        unsafe { super::put_text(text, len, s) }
    })
}
