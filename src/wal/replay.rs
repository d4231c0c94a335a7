//! Replaying a write-ahead log on open, shared by every log kind (the
//! key-value store's and the Raft log's): segment headers and database
//! ids, LSN continuity, the torn-tail-or-corruption decision, tail
//! truncation, and where writing resumes. The caller applies each record.
//!
//! # Torn tail or corruption?
//!
//! Every record header carries the *synced LSN*: the highest LSN whose
//! `fdatasync` had returned OK when the record was written. When the valid
//! prefix of a segment ends at a bad record whose LSN would have been `n`:
//!
//! - if any valid record after it says `synced LSN >= n`, record `n` was
//!   durable before that later record was written, so its damage is
//!   corruption of acknowledged data;
//! - if the segment is not the last one, it is corruption too: a segment is
//!   fully synced before the log moves on to the next;
//! - a record with a valid checksum but an unexpected LSN is always
//!   corruption (misdirected, stale or spliced write);
//! - otherwise the damage lies in writes that were never known durable: a
//!   torn tail. It is zeroed (made durable with `fdatasync`) and reported.
//!
//! [`RecoveryMode`] decides what happens to each case.

use super::reader::{self, ScannedRecord, SegmentScan};
use super::record::{self, Owner, RecordType};
use super::segment::{self, SEGMENT_HEADER_SIZE};
use super::writer::{ResumePoint, SegmentMeta};
use crate::error::{Error, Result};
use crate::fs::{FileSystem, OpenMode};
use crate::options::{Options, RecoveryMode};
use crate::recovery::{new_database_id, RecoveryStats, Truncation};
use std::path::Path;

/// One record handed to the caller during replay.
#[derive(Debug)]
pub struct Replayed<'a> {
    /// Its sequence number.
    pub lsn: u64,
    /// Its type.
    pub rtype: RecordType,
    /// Its payload.
    pub payload: &'a [u8],
    /// The segment file it is in.
    pub file: &'a Path,
    /// That segment's id.
    pub segment_id: u64,
    /// Offset of the record header in the file.
    pub offset: u64,
}

/// Where replay starts, and what it must achieve.
#[derive(Debug)]
pub struct ReplayStart {
    /// Log kind in the segment headers (`segment::KIND_KV`, ...).
    pub kind: u32,
    /// Records with LSN <= this are already reflected (by a snapshot) and
    /// are skipped.
    pub applied_lsn: u64,
    /// Database id already known (from a snapshot), to check segments against.
    pub db_id: Option<u64>,
    /// Skip reading segments whose records are all <= `applied_lsn`.
    pub skip_covered: bool,
    /// If replay cannot reach at least this LSN, fail with `gap_error`
    /// (the root cause, e.g. a rejected snapshot) before changing anything.
    pub must_reach: u64,
    /// The error to report for a gap, instead of a generic one.
    pub gap_error: Option<Error>,
    /// The log may begin at any LSN: its oldest segments may have been
    /// reclaimed (the Raft log after `truncate_prefix`). Only the first
    /// record may skip ahead; gaps after it are still errors.
    pub start_anywhere: bool,
}

/// What replay produced.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Where the writer resumes.
    pub resume: ResumePoint,
    /// LSN of the last record applied (or `applied_lsn` if none).
    pub applied_lsn: u64,
    /// Whether damage was skipped (salvage mode).
    pub salvaged: bool,
    /// The database id.
    pub db_id: u64,
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

/// Replay the segments `ids` (ascending) of `dir`, calling `apply` for every
/// record after `start.applied_lsn`, in LSN order.
///
/// Errors: [`Error::Corruption`] as described in the module docs;
/// [`Error::Io`]; whatever `apply` returns.
pub fn replay(
    fs: &dyn FileSystem,
    dir: &Path,
    ids: &[u64],
    opts: &Options,
    start: ReplayStart,
    stats: &mut RecoveryStats,
    mut apply: impl FnMut(&Replayed<'_>) -> Result<()>,
) -> Result<ReplayOutcome> {
    let mut applied = start.applied_lsn;
    let mut db_id = start.db_id;
    let mut metas: Vec<SegmentMeta> = Vec::new();
    let mut last_scan: Option<(u64, SegmentScan)> = None;
    let mut max_lsn_seen = applied;
    let mut salvaged = false;
    let any = opts.recovery_mode == RecoveryMode::TolerateAnyCorruption;
    for (i, &id) in ids.iter().enumerate() {
        let path = dir.join(segment::file_name(id));
        let is_last = i + 1 == ids.len();
        if start.skip_covered && !is_last {
            let next = dir.join(segment::file_name(ids[i + 1]));
            if let Some(next_first) = peek_first_lsn(fs, &next, ids[i + 1])? {
                if next_first <= applied + 1 {
                    let size = fs
                        .open(&path, OpenMode::Read)
                        .and_then(|f| f.len())
                        .map_err(|e| Error::io(&path, e))?;
                    let first = peek_first_lsn(fs, &path, id)?;
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
        let file = fs
            .open(&path, OpenMode::Read)
            .map_err(|e| Error::io(&path, e))?;
        let buf = file.read_all().map_err(|e| Error::io(&path, e))?;
        let header = segment::check_header(&path, &buf, start.kind, id).and_then(|found| match db_id {
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
                if any && !is_last {
                    stats.bytes_skipped += buf.len() as u64;
                    salvaged = true;
                    continue;
                }
                return Err(e);
            }
        };
        db_id = Some(seg_db);
        stats.segments_scanned += 1;
        let mut scan = reader::scan(
            &buf,
            Owner {
                db_id: seg_db,
                segment_id: id,
            },
        );
        let mut one =
            |r: &ScannedRecord, applied: &mut u64, stats: &mut RecoveryStats| -> Result<()> {
                let lsn = r.header.lsn;
                if start.start_anywhere && stats.records_replayed == 0 && lsn > *applied {
                    *applied = lsn - 1;
                }
                if lsn <= *applied {
                    return Ok(());
                }
                if lsn != *applied + 1 {
                    if !any {
                        if let Some(e) = &start.gap_error {
                            return Err(e.clone());
                        }
                        return Err(Error::corruption(
                            &path,
                            Some(r.offset),
                            format!(
                                "gap in the log: expected sequence number {}, found {lsn}",
                                *applied + 1
                            ),
                        ));
                    }
                    stats.records_skipped += lsn - *applied - 1;
                }
                let rtype = RecordType::from_u8(r.header.rtype).ok_or_else(|| {
                    Error::corruption(&path, Some(r.offset), "unknown record type")
                })?;
                apply(&Replayed {
                    lsn,
                    rtype,
                    payload: &buf[r.payload.clone()],
                    file: &path,
                    segment_id: id,
                    offset: r.offset,
                })?;
                *applied = lsn;
                stats.records_replayed += 1;
                stats.bytes_replayed += r.total;
                Ok(())
            };
        for r in &scan.records {
            one(r, &mut applied, stats)?;
        }
        let mut first = scan.records.first().map(|r| r.header.lsn);
        let mut last = scan.records.last().map(|r| r.header.lsn);
        if let Some(d) = scan.damage.clone() {
            let bad_lsn = last.map(|l| l + 1).unwrap_or(applied + 1);
            let durable_after = d.later.iter().any(|r| r.header.synced_lsn >= bad_lsn);
            let torn = is_last && !d.misplaced && !durable_after;
            if torn && opts.recovery_mode != RecoveryMode::AbsoluteConsistency {
                let bytes = scan.dirty_end - d.offset;
                let rw = fs
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
            } else if any {
                salvaged = true;
                stats.bytes_skipped +=
                    d.later.first().map(|r| r.offset).unwrap_or(scan.dirty_end) - d.offset;
                for r in &d.later {
                    one(r, &mut applied, stats)?;
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
        last_scan = Some((id, scan));
    }
    if applied < start.must_reach {
        if let Some(e) = start.gap_error {
            return Err(e);
        }
    }
    let db_id = db_id.unwrap_or_else(new_database_id);

    // Where writing resumes. Sync the last segment so that everything
    // recovered is durable before new records claim it as synced.
    let next_lsn = max_lsn_seen.max(applied) + 1;
    let resume = match last_scan {
        Some((id, scan)) if metas.last().map(|m| m.id) == Some(id) => {
            let path = dir.join(segment::file_name(id));
            let file = fs
                .open(&path, OpenMode::ReadWrite)
                .map_err(|e| Error::io(&path, e))?;
            file.sync_data().map_err(|e| Error::io(&path, e))?;
            ResumePoint {
                segments: metas,
                file,
                pos: scan.end,
                next_lsn,
                db_id,
            }
        }
        _ => {
            let id = ids.last().copied().unwrap_or(0) + 1;
            let p = segment::prepare(fs, dir, start.kind, id, opts.segment_size, db_id)?;
            segment::install(fs, dir, &p)?;
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
                next_lsn,
                db_id,
            }
        }
    };
    Ok(ReplayOutcome {
        resume,
        applied_lsn: applied,
        salvaged,
        db_id,
    })
}
