//! Recovery on open: load the newest snapshot whose SHA-256 verifies,
//! replay the WAL after it, and decide what any damage means.
//!
//! # Torn tail or corruption?
//!
//! Every record header carries the *synced LSN*: the highest LSN whose
//! `fdatasync` had returned OK when the record was written. When the valid
//! prefix of a segment ends at a bad record whose LSN would have been `n`:
//!
//! - if any valid record after it says `synced LSN >= n`, record `n` was
//!   durable before that later record was written, so its damage is
//!   corruption of acknowledged data: an [`Error::Corruption`];
//! - if the segment is not the last one, it is corruption too: a segment is
//!   fully synced before the log moves on to the next;
//! - a record with a valid checksum but an unexpected LSN is always
//!   corruption (misdirected, stale or spliced write);
//! - otherwise the damage lies in writes that were never known durable: a
//!   torn tail. It is zeroed (made durable with `fdatasync`) and reported.
//!
//! [`RecoveryMode`] decides what happens to each case.

use crate::batch::{self, Op};
use crate::error::{Error, Result};
use crate::fs::{FileSystem, OpenMode};
use crate::memtable::{Entry, MemTable};
use crate::options::{Options, RecoveryMode};
use crate::snapshot;
use crate::wal::reader::{self, SegmentScan};
use crate::wal::record::{self, Owner, RecordType};
use crate::wal::segment::{self, KIND_KV, SEGMENT_HEADER_SIZE};
use crate::wal::writer::{ResumePoint, SegmentMeta};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A tail of the last segment that recovery cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// Segment file.
    pub file: PathBuf,
    /// Offset where the valid records end; bytes from here were zeroed.
    pub offset: u64,
    /// Bytes zeroed.
    pub bytes: u64,
    /// Checksum-valid records found after the damage and dropped with it
    /// (they were never known durable).
    pub records: u64,
    /// What was found at `offset`.
    pub reason: String,
}

/// Facts about the last recovery, reported by [`crate::Db::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// LSN of the snapshot loaded (0: none).
    pub snapshot_lsn: u64,
    /// Entries loaded from it.
    pub snapshot_entries: u64,
    /// Newer snapshots that failed verification and were passed over.
    pub snapshots_rejected: u64,
    /// Why the newest rejected snapshot failed, if any did.
    pub snapshot_error: Option<String>,
    /// WAL segments read.
    pub segments_scanned: u64,
    /// WAL segments skipped because the snapshot covers them.
    pub segments_skipped: u64,
    /// Records applied from the WAL.
    pub records_replayed: u64,
    /// Bytes of WAL read while replaying.
    pub bytes_replayed: u64,
    /// The torn tail cut off, if there was one.
    pub truncation: Option<Truncation>,
    /// Under [`RecoveryMode::TolerateAnyCorruption`]: records lost to
    /// damage (LSNs missing from the recovered sequence).
    pub records_skipped: u64,
    /// Under [`RecoveryMode::TolerateAnyCorruption`]: damaged bytes skipped.
    pub bytes_skipped: u64,
    /// Last LSN recovered.
    pub last_lsn: u64,
    /// Wall time the recovery took, in microseconds.
    pub duration_micros: u64,
}

/// What recovery hands to the database.
pub(crate) struct Recovered {
    pub mem: MemTable,
    pub resume: ResumePoint,
    pub snapshots: Vec<u64>,
    pub stats: RecoveryStats,
    pub salvaged: bool,
    /// The database's random id (new if the directory held no files).
    pub db_id: u64,
}

/// The files of a database directory, by kind.
#[derive(Debug, Default)]
pub struct DirListing {
    /// Segment ids, ascending.
    pub segments: Vec<u64>,
    /// Snapshot LSNs, ascending.
    pub snapshots: Vec<u64>,
    /// Leftover temporary files (unfinished snapshots or segments).
    pub leftovers: Vec<String>,
}

/// Classify the entries of `dir`. Unknown names are ignored.
pub fn list(fs: &dyn FileSystem, dir: &Path) -> Result<DirListing> {
    let mut l = DirListing::default();
    for name in fs.list_dir(dir).map_err(|e| Error::io(dir, e))? {
        if let Some(id) = segment::parse_file_name(&name) {
            l.segments.push(id);
        } else if let Some(lsn) = snapshot::parse_file_name(&name) {
            l.snapshots.push(lsn);
        } else if name.ends_with(segment::PREP_SUFFIX)
            || (name.starts_with("snap-") && name.ends_with(snapshot::TMP_SUFFIX))
        {
            l.leftovers.push(name);
        }
    }
    l.segments.sort_unstable();
    l.snapshots.sort_unstable();
    Ok(l)
}

/// Apply one `KvBatch` payload. Errors name the record.
pub(crate) fn apply_batch(
    mem: &mut MemTable,
    payload: &[u8],
    path: &Path,
    offset: u64,
) -> Result<()> {
    // Validate fully first, so a malformed record is all-or-nothing.
    let mut ops = Vec::new();
    for op in batch::decode(payload) {
        ops.push(op.map_err(|why| Error::corruption(path, Some(offset), why))?);
    }
    for op in ops {
        match op {
            Op::Put(k, v) => mem.put(k, v),
            Op::Delete(k) => mem.delete(k),
        }
    }
    Ok(())
}

/// LSN in the first record header of a segment, read without loading the
/// whole file. `None` if the segment has no readable first record.
fn peek_first_lsn(fs: &dyn FileSystem, path: &Path, id: u64) -> Result<Option<u64>> {
    let f = fs
        .open(path, OpenMode::Read)
        .map_err(|e| Error::io(path, e))?;
    let mut b = vec![0u8; SEGMENT_HEADER_SIZE as usize + record::HEADER_SIZE];
    match f.read_exact_at(&mut b, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    }
    let h = record::Header::parse(&b[SEGMENT_HEADER_SIZE as usize..]);
    Ok((h.segment_id == id && h.lsn != 0).then_some(h.lsn))
}

/// A fresh random database id: SHA-256 of the time, the process id and an
/// address, so two databases created at the same moment still differ. Not
/// secret, only unique; never 0.
pub fn new_database_id() -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(now.as_nanos().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let local = 0u8;
    h.update((&local as *const u8 as usize).to_le_bytes());
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    h.update(
        COUNTER
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_le_bytes(),
    );
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b).max(1)
}

/// Recover the database in `dir`. The caller holds the directory lock.
pub(crate) fn recover(fs: &Arc<dyn FileSystem>, dir: &Path, opts: &Options) -> Result<Recovered> {
    let started = Instant::now();
    let fsr = fs.as_ref();
    let mut stats = RecoveryStats::default();
    let listing = list(fsr, dir)?;
    if !listing.leftovers.is_empty() {
        for name in &listing.leftovers {
            let p = dir.join(name);
            fsr.remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
        fsr.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    }

    // 1. The newest snapshot that verifies.
    let mut mem = MemTable::default();
    let mut first_error: Option<Error> = None;
    let mut db_id: Option<u64> = None;
    for &lsn in listing.snapshots.iter().rev() {
        let path = dir.join(snapshot::file_name(lsn));
        let mut entries = Vec::new();
        match snapshot::read(fsr, &path, |k, v| entries.push(Entry::new(k, v))) {
            Ok(info) => {
                let set: BTreeSet<Entry> = entries.into_iter().collect();
                stats.snapshot_entries = info.count;
                stats.snapshot_lsn = info.lsn;
                mem.install(set, info.lsn);
                db_id = Some(info.db_id);
                break;
            }
            Err(e @ Error::Corruption { .. }) => {
                if opts.recovery_mode == RecoveryMode::AbsoluteConsistency {
                    return Err(e);
                }
                stats.snapshots_rejected += 1;
                if stats.snapshot_error.is_none() {
                    stats.snapshot_error = Some(e.to_string());
                }
                first_error.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }

    // 2. Replay the WAL after it.
    let mut metas: Vec<SegmentMeta> = Vec::new();
    let mut last_scan: Option<(u64, SegmentScan, u64)> = None; // (id, scan, size)
    let mut max_lsn_seen = mem.applied_lsn;
    let mut salvaged = false;
    let ids = &listing.segments;
    for (i, &id) in ids.iter().enumerate() {
        let path = dir.join(segment::file_name(id));
        let is_last = i + 1 == ids.len();
        if !is_last {
            let next = dir.join(segment::file_name(ids[i + 1]));
            if let Some(next_first) = peek_first_lsn(fsr, &next, ids[i + 1])? {
                if next_first <= mem.applied_lsn + 1 {
                    let size = fsr
                        .open(&path, OpenMode::Read)
                        .and_then(|f| f.len())
                        .map_err(|e| Error::io(&path, e))?;
                    let first = peek_first_lsn(fsr, &path, id)?;
                    metas.push(SegmentMeta {
                        id,
                        first_lsn: first,
                        last_lsn: Some(next_first - 1),
                        size,
                    });
                    stats.segments_skipped += 1;
                    max_lsn_seen = max_lsn_seen.max(next_first - 1);
                    continue;
                }
            }
        }
        let file = fsr
            .open(&path, OpenMode::Read)
            .map_err(|e| Error::io(&path, e))?;
        let buf = file.read_all().map_err(|e| Error::io(&path, e))?;
        let header = segment::check_header(&path, &buf, KIND_KV, id).and_then(|found| match db_id {
            Some(want) if want != found => Err(Error::corruption(
                &path,
                Some(40),
                format!("segment belongs to another database (id {found:#x}, this one is {want:#x})"),
            )),
            _ => Ok(found),
        });
        let seg_db = match header {
            Ok(d) => d,
            Err(e) => {
                if opts.recovery_mode == RecoveryMode::TolerateAnyCorruption && !is_last {
                    stats.bytes_skipped += buf.len() as u64;
                    salvaged = true;
                    continue;
                }
                return Err(e);
            }
        };
        db_id = Some(seg_db);
        stats.segments_scanned += 1;
        let scan = reader::scan(
            &buf,
            Owner {
                db_id: seg_db,
                segment_id: id,
            },
        );
        let apply = |mem: &mut MemTable,
                     r: &reader::ScannedRecord,
                     stats: &mut RecoveryStats|
         -> Result<()> {
            let lsn = r.header.lsn;
            if lsn <= mem.applied_lsn {
                return Ok(());
            }
            if lsn != mem.applied_lsn + 1 {
                if opts.recovery_mode != RecoveryMode::TolerateAnyCorruption {
                    // A rejected snapshot is the root cause when the WAL no
                    // longer reaches back far enough to replace it.
                    if let Some(e) = &first_error {
                        return Err(e.clone());
                    }
                    return Err(Error::corruption(
                        &path,
                        Some(r.offset),
                        format!(
                            "gap in the log: expected sequence number {}, found {lsn}",
                            mem.applied_lsn + 1
                        ),
                    ));
                }
                stats.records_skipped += lsn - mem.applied_lsn - 1;
            }
            match RecordType::from_u8(r.header.rtype) {
                Some(RecordType::KvBatch) => {
                    apply_batch(mem, &buf[r.payload.clone()], &path, r.offset)?
                }
                None => {
                    return Err(Error::corruption(
                        &path,
                        Some(r.offset),
                        "unknown record type",
                    ))
                }
            }
            mem.applied_lsn = lsn;
            stats.records_replayed += 1;
            stats.bytes_replayed += r.total;
            Ok(())
        };
        for r in &scan.records {
            apply(&mut mem, r, &mut stats)?;
        }
        let mut first = scan.records.first().map(|r| r.header.lsn);
        let mut last = scan.records.last().map(|r| r.header.lsn);
        let mut scan = scan;
        if let Some(d) = scan.damage.clone() {
            let bad_lsn = last.map(|l| l + 1).unwrap_or(mem.applied_lsn + 1);
            let durable_after = d.later.iter().any(|r| r.header.synced_lsn >= bad_lsn);
            let torn = is_last && !d.misplaced && !durable_after;
            if torn && opts.recovery_mode != RecoveryMode::AbsoluteConsistency {
                let bytes = scan.dirty_end - d.offset;
                let rw = fsr
                    .open(&path, OpenMode::ReadWrite)
                    .map_err(|e| Error::io(&path, e))?;
                rw.write_all_at(&vec![0u8; bytes as usize], d.offset)
                    .map_err(|e| Error::io(&path, e))?;
                rw.sync_data().map_err(|e| Error::io(&path, e))?;
                stats.truncation = Some(Truncation {
                    file: path.clone(),
                    offset: d.offset,
                    bytes,
                    records: d.later.len() as u64,
                    reason: d.reason.clone(),
                });
                scan.dirty_end = scan.end;
            } else if opts.recovery_mode == RecoveryMode::TolerateAnyCorruption {
                salvaged = true;
                stats.bytes_skipped +=
                    d.later.first().map(|r| r.offset).unwrap_or(scan.dirty_end) - d.offset;
                for r in &d.later {
                    apply(&mut mem, r, &mut stats)?;
                    first.get_or_insert(r.header.lsn);
                    last = Some(last.map_or(r.header.lsn, |l| l.max(r.header.lsn)));
                }
                if let Some(r) = d.later.last() {
                    scan.end = r.offset + r.total;
                }
            } else {
                let what = if torn {
                    "torn write at the end of the log (recovery mode AbsoluteConsistency refuses to truncate it)".to_string()
                } else if d.misplaced {
                    d.reason.clone()
                } else if !is_last {
                    format!("{} in a segment that was already fully synced", d.reason)
                } else {
                    format!(
                        "{}, followed by {} valid record(s) written after it was durable",
                        d.reason,
                        d.later.len()
                    )
                };
                return Err(Error::corruption(&path, Some(d.offset), what));
            }
        }
        if let Some(l) = last {
            max_lsn_seen = max_lsn_seen.max(l);
        }
        metas.push(SegmentMeta {
            id,
            first_lsn: first,
            last_lsn: last,
            size: buf.len() as u64,
        });
        last_scan = Some((id, scan, buf.len() as u64));
    }
    // A rejected snapshot is only survivable if the WAL reached back far
    // enough to rebuild what it held.
    if let Some(e) = first_error {
        let newest_rejected = listing.snapshots.last().copied().unwrap_or(0);
        if mem.applied_lsn < newest_rejected {
            return Err(e);
        }
    }

    let db_id = db_id.unwrap_or_else(new_database_id);

    // 3. Where writing resumes. Sync the last segment so that everything
    //    recovered is durable before new records claim it as synced.
    let resume = match last_scan {
        Some((id, scan, _size)) if metas.last().map(|m| m.id) == Some(id) => {
            let path = dir.join(segment::file_name(id));
            let file = fsr
                .open(&path, OpenMode::ReadWrite)
                .map_err(|e| Error::io(&path, e))?;
            file.sync_data().map_err(|e| Error::io(&path, e))?;
            ResumePoint {
                segments: metas,
                file,
                pos: scan.end,
                next_lsn: max_lsn_seen.max(mem.applied_lsn) + 1,
                db_id,
            }
        }
        _ => {
            let id = ids.last().copied().unwrap_or(0) + 1;
            let p = segment::prepare(fsr, dir, KIND_KV, id, opts.segment_size, db_id)?;
            segment::install(fsr, dir, &p)?;
            metas.push(SegmentMeta {
                id,
                first_lsn: None,
                last_lsn: None,
                size: p.size,
            });
            ResumePoint {
                segments: metas,
                file: p.file,
                pos: SEGMENT_HEADER_SIZE,
                next_lsn: max_lsn_seen.max(mem.applied_lsn) + 1,
                db_id,
            }
        }
    };
    stats.last_lsn = mem.applied_lsn;
    stats.duration_micros = started.elapsed().as_micros() as u64;
    Ok(Recovered {
        db_id,
        mem,
        resume,
        snapshots: listing.snapshots,
        stats,
        salvaged,
    })
}
