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
//! A damaged region whose records are all covered by the snapshot
//! (valid records after it carry LSNs the snapshot already reflects) is
//! harmless and is passed over in every mode.
//!
//! [`RecoveryMode`] decides what happens to each case; [`verdict`] is that
//! decision as a pure function.
//!
//! # Missing segments
//!
//! A segment's last record is a link naming its successor (written only
//! after the successor was installed durably), so a deleted newest segment
//! is detected; a deleted older one leaves a gap in the LSNs. Both are
//! `Corruption`, except under `TolerateAnyCorruption`, which counts them in
//! [`RecoveryStats::segments_missing`] and goes on.

use super::reader::{self, ScannedRecord};
use super::segment::{self, SEGMENT_HEADER_SIZE};
use super::writer::{ResumePoint, SegmentMeta};
use crate::error::{Error, Result};
use crate::format::record::{self, Owner, RecordType};
use crate::fs::{FileSystem, OpenMode};
use crate::options::{Options, RecoveryMode};
use std::path::{Path, PathBuf};

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
    /// Under [`RecoveryMode::TolerateAnyCorruption`]: WAL segments that the
    /// log's own records say must exist but are missing (deleted files).
    /// In the other modes a missing segment fails the open.
    pub segments_missing: u64,
    /// Under [`RecoveryMode::TolerateAnyCorruption`]: separated values
    /// dropped with their keys because the segment the checkpoint keeps
    /// them in is missing (counted in `segments_missing` too).
    pub values_dropped: u64,
    /// Last LSN recovered.
    pub last_lsn: u64,
    /// Wall time the recovery took, in microseconds.
    pub duration_micros: u64,
}

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
    /// How the log relates to what came before it (see [`Origin`]).
    pub origin: Origin,
    /// If replay cannot reach at least this LSN, fail with `gap_error`
    /// (the root cause, e.g. a rejected snapshot) before changing anything.
    pub must_reach: u64,
    /// The error to report for a gap, instead of a generic one.
    pub gap_error: Option<Error>,
    /// Change nothing on disk (`keyval verify`): no tail is zeroed, nothing
    /// is synced, no segment is created, and no resume point is returned.
    pub read_only: bool,
}

/// Where a log's records begin, which decides what replay may skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The log continues a checkpoint file (the key-value store): it
    /// begins at LSN 1 or at a segment whose records the checkpoint does
    /// not all cover. Segments whose records are all <= `applied_lsn`, as
    /// proven by the verified first record of the following segment, are
    /// skipped unread.
    Checkpoint,
    /// The log may begin at any LSN: its oldest segments may have been
    /// reclaimed (the Raft log after `truncate_prefix`). Only the first
    /// record may skip ahead; gaps after it are still errors. The caller
    /// checks that the reclaim was sanctioned ([`ReplayOutcome::first_lsn`]).
    Reclaimed,
}

/// What replay produced.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Where the writer resumes (`None` when read-only).
    pub resume: Option<ResumePoint>,
    /// LSN of the last record applied (or `applied_lsn` if none).
    pub applied_lsn: u64,
    /// Whether damage was skipped (salvage mode).
    pub salvaged: bool,
    /// The database id.
    pub db_id: u64,
    /// LSN of the first valid record read, if any.
    pub first_lsn: Option<u64>,
    /// Format version of the oldest segment read (0 if none was read).
    pub oldest_version: u32,
}

/// What is known about the end of a segment's valid prefix, for
/// [`verdict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DamageFacts {
    /// The damage is in the newest segment of the log.
    pub is_last: bool,
    /// A checksum-valid record with an unexpected LSN (never a torn write).
    pub misplaced: bool,
    /// A valid record after the damage says the damaged record was durable.
    pub durable_after: bool,
    /// Valid records follow the damage and the first of them has an LSN the
    /// snapshot covers, so every damaged record is covered too.
    pub covered: bool,
}

/// What recovery does about damage at the end of a segment's valid prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every damaged record is already reflected by the snapshot: pass over
    /// it and read on.
    Covered,
    /// Writes that were never known durable: zero them and report it.
    TruncateTail,
    /// `TolerateAnyCorruption`: skip the damage, apply every valid record.
    Salvage,
    /// A torn tail that `AbsoluteConsistency` refuses to truncate.
    RefuseTornTail,
    /// Damage to data that was durable: fail the open.
    Corrupt,
}

/// The recovery decision for one damaged region (see the module docs).
/// A pure function of what was read and the recovery mode.
pub fn verdict(d: DamageFacts, mode: RecoveryMode) -> Verdict {
    if d.covered && !d.misplaced {
        return Verdict::Covered;
    }
    let torn = d.is_last && !d.misplaced && !d.durable_after;
    match (torn, mode) {
        (true, RecoveryMode::AbsoluteConsistency) => Verdict::RefuseTornTail,
        (true, _) => Verdict::TruncateTail,
        (false, RecoveryMode::TolerateAnyCorruption) => Verdict::Salvage,
        (false, _) => Verdict::Corrupt,
    }
}

/// LSN of the first record of segment `id`, read without loading the whole
/// file, and only if the segment header and that record both verify (and
/// the database id is `db_id`, when known). `None` otherwise: an unverified
/// LSN is never trusted.
fn verified_first_lsn(
    fs: &dyn FileSystem,
    path: &Path,
    kind: u32,
    id: u64,
    db_id: Option<u64>,
) -> Result<Option<u64>> {
    let f = fs
        .open(path, OpenMode::Read)
        .map_err(|e| Error::io(path, e))?;
    let hs = SEGMENT_HEADER_SIZE as usize;
    let mut b = vec![0u8; hs + record::HEADER_SIZE];
    match f.read_exact_at(&mut b, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    }
    let Ok(h) = segment::parse_header(path, &b, kind, id) else {
        return Ok(None);
    };
    if db_id.is_some_and(|want| want != h.db_id) {
        return Ok(None);
    }
    let rh = record::Header::parse(&b[hs..]);
    let len = f.len().map_err(|e| Error::io(path, e))?;
    let total = (record::HEADER_SIZE as u64).saturating_add(u64::from(rh.len));
    if SEGMENT_HEADER_SIZE + total > len {
        return Ok(None);
    }
    b.resize(hs + total as usize, 0);
    match f.read_exact_at(
        &mut b[hs + record::HEADER_SIZE..],
        (hs + record::HEADER_SIZE) as u64,
    ) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    }
    let owner = Owner {
        db_id: h.db_id,
        segment_id: id,
    };
    Ok(match record::check(&b, hs, owner) {
        record::Check::Valid { header, .. } => Some(header.lsn),
        _ => None,
    })
}

/// Zero a torn tail, from the damage to the last nonzero byte
/// (`dirty_end`), and `fdatasync` it; with `read_only`, only report what
/// would be cut. Errors: `Io`.
fn truncate_tail(
    fs: &dyn FileSystem,
    path: &Path,
    d: &reader::Damage,
    dirty_end: u64,
    read_only: bool,
) -> Result<Truncation> {
    let bytes = dirty_end - d.offset;
    if !read_only {
        let rw = fs
            .open(path, OpenMode::ReadWrite)
            .map_err(|e| Error::io(path, e))?;
        rw.write_all_at(&vec![0u8; bytes as usize], d.offset)
            .map_err(|e| Error::io(path, e))?;
        rw.sync_data().map_err(|e| Error::io(path, e))?;
    }
    Ok(Truncation {
        file: path.to_path_buf(),
        offset: d.offset,
        bytes,
        records: d.later.len() as u64,
        reason: d.reason.clone(),
    })
}

/// What a `Corruption` error says about damage `d`, judged by `facts`.
fn corruption_message(facts: DamageFacts, d: &reader::Damage) -> String {
    if facts.misplaced {
        d.reason.clone()
    } else if facts.is_last && !facts.durable_after {
        "torn write at the end of the log (recovery mode AbsoluteConsistency refuses to truncate it)"
            .to_string()
    } else if !facts.is_last {
        format!("{} in a segment that was already fully synced", d.reason)
    } else {
        format!(
            "{}, followed by {} valid record(s) written after it was durable",
            d.reason,
            d.later.len()
        )
    }
}

/// If segment `ids[0]` need not be read because every record in it is
/// covered (`<= applied`), its metadata: proven by the verified first record
/// of the next segment, `ids[1]`, whose LSN is at most `applied + 1`.
/// `None` when that cannot be proven (the record is damaged, of another
/// database, or newer). Errors: `Io`.
fn covered_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    ids: &[u64],
    kind: u32,
    db_id: Option<u64>,
    applied: u64,
) -> Result<Option<SegmentMeta>> {
    let (Some(&id), Some(&next_id)) = (ids.first(), ids.get(1)) else {
        return Ok(None);
    };
    let next = dir.join(segment::file_name(next_id));
    let next_first = verified_first_lsn(fs, &next, kind, next_id, db_id)?;
    let Some(nf) = next_first.filter(|&nf| nf >= 1 && nf <= applied + 1) else {
        return Ok(None);
    };
    let path = dir.join(segment::file_name(id));
    let size = fs
        .open(&path, OpenMode::Read)
        .and_then(|f| f.len())
        .map_err(|e| Error::io(&path, e))?;
    Ok(Some(SegmentMeta {
        id,
        first_lsn: None,
        last_lsn: Some(nf - 1),
        size,
    }))
}

/// Whether each segment in `ids` has a valid header and nothing but zeros
/// after it: created by a rotation that crashed before writing to it.
fn all_empty(fs: &dyn FileSystem, dir: &Path, ids: &[u64], kind: u32) -> Result<bool> {
    for &id in ids {
        let path = dir.join(segment::file_name(id));
        let buf = segment::read_file(fs, &path, kind, id, None)?;
        let empty = segment::parse_header(&path, &buf, kind, id).is_ok()
            && buf
                .get(SEGMENT_HEADER_SIZE as usize..)
                .is_some_and(|b| b.iter().all(|&x| x == 0));
        if !empty {
            return Ok(false);
        }
    }
    Ok(true)
}

fn u64_payload(p: &[u8]) -> Option<u64> {
    let b: [u8; 8] = p.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// Running state of one replay.
struct Cursor<'s> {
    applied: u64,
    first_lsn: Option<u64>,
    /// LSN of the last valid record read, applied or not (records the
    /// snapshot covers are read and passed over).
    last_lsn: Option<u64>,
    start: &'s ReplayStart,
    any: bool,
    /// Id of the segment the last record read (or passed over) lives in.
    last_segment: Option<u64>,
    /// Salvage passed over a gap in the LSNs.
    gapped: bool,
}

impl Cursor<'_> {
    /// Take one valid record: check LSN continuity, hand it to `apply`
    /// (unless it is a segment link, which replay handles), and return the
    /// successor a link names.
    fn take(
        &mut self,
        r: &ScannedRecord,
        buf: &[u8],
        path: &Path,
        id: u64,
        stats: &mut RecoveryStats,
        apply: &mut impl FnMut(&Replayed<'_>) -> Result<()>,
    ) -> Result<Option<u64>> {
        let lsn = r.header.lsn;
        let prev_segment = self.last_segment.replace(id);
        self.last_lsn = Some(lsn);
        if self.first_lsn.is_none() {
            self.first_lsn = Some(lsn);
            if self.start.origin == Origin::Reclaimed && lsn > self.applied {
                self.applied = lsn - 1;
            }
        }
        if lsn <= self.applied {
            return Ok(None);
        }
        if lsn != self.applied + 1 {
            // Segment ids are consecutive: a hole in them names the files
            // that held the missing records.
            let missing = prev_segment.filter(|p| id > p + 1).map(|p| (p + 1, id - 1));
            if !self.any {
                if let Some(e) = &self.start.gap_error {
                    return Err(e.clone());
                }
                let (from, to) = (self.applied + 1, lsn - 1);
                let msg = match missing {
                    Some((a, b)) if a == b => format!(
                        "WAL segment {} is missing (deleted?): sequence numbers {from}..={to} are gone",
                        segment::file_name(a)
                    ),
                    Some((a, b)) => format!(
                        "WAL segments {} to {} are missing (deleted?): sequence numbers {from}..={to} are gone",
                        segment::file_name(a),
                        segment::file_name(b)
                    ),
                    None => format!(
                        "gap in the log: expected sequence number {from}, found {lsn} \
                         (sequence numbers {from}..={to} are gone)"
                    ),
                };
                return Err(Error::corruption(path, Some(r.offset), msg));
            }
            if let Some((a, b)) = missing {
                stats.segments_missing += b - a + 1;
            }
            stats.records_skipped += lsn - self.applied - 1;
            self.gapped = true;
        }
        let rtype = RecordType::from_u8(r.header.rtype)
            .ok_or_else(|| Error::corruption(path, Some(r.offset), "unknown record type"))?;
        let payload = &buf[r.payload.clone()];
        let mut link = None;
        if rtype == RecordType::SegmentLink {
            link = Some(u64_payload(payload).ok_or_else(|| {
                Error::corruption(path, Some(r.offset), "short segment link record")
            })?);
        } else {
            apply(&Replayed {
                lsn,
                rtype,
                payload,
                file: path,
                segment_id: id,
                offset: r.offset,
            })?;
            stats.records_replayed += 1;
        }
        self.applied = lsn;
        stats.bytes_replayed += r.total;
        Ok(link)
    }
}

/// A segment read, and whether writing may resume in it.
#[derive(Debug, Clone, Copy)]
struct LastSegment {
    id: u64,
    end: u64,
    last_lsn: Option<u64>,
    /// Salvaged damage, a short file or a link: resume in a new segment.
    unusable: bool,
    /// Its predecessor's link record names it.
    linked: bool,
}

/// Report a segment that the log's own records say must exist. Under
/// `TolerateAnyCorruption` it is counted and replay goes on; otherwise it
/// is `Corruption`.
fn missing_segment(
    dir: &Path,
    missing: u64,
    named_by: &Path,
    last_lsn: Option<u64>,
    any: bool,
    stats: &mut RecoveryStats,
) -> Result<()> {
    if any {
        stats.segments_missing += 1;
        return Ok(());
    }
    let gone = match last_lsn {
        Some(l) => format!("sequence numbers after {l} (the last in that file) are gone"),
        None => "the sequence numbers it held are gone".to_string(),
    };
    Err(Error::corruption(
        dir.join(segment::file_name(missing)),
        None,
        format!(
            "WAL segment {} is missing (deleted?): {} says the log continues in it; {gone}",
            segment::file_name(missing),
            named_by.display()
        ),
    ))
}

/// The segments read, and the newest two (for choosing where writing
/// resumes).
struct Tail {
    metas: Vec<SegmentMeta>,
    last: Option<LastSegment>,
    before_last: Option<LastSegment>,
}

/// Where writing resumes once replay has read everything (see the comments
/// inside); creates or removes a segment when it must. Errors: `Io`.
#[allow(clippy::too_many_arguments)]
fn resume_point(
    fs: &dyn FileSystem,
    dir: &Path,
    ids: &[u64],
    opts: &Options,
    kind: u32,
    tail: Tail,
    next_lsn: u64,
    db_id: u64,
) -> Result<ResumePoint> {
    let Tail {
        mut metas,
        mut last,
        before_last,
    } = tail;
    // A newest segment that is empty and that no link names was installed
    // by a rotation that crashed before linking it: not yet part of the
    // log. Remove it and resume in its predecessor, if that one can take
    // more records (the next append rotates again, properly).
    let resumable = |l: &LastSegment| !l.unusable && l.last_lsn.is_none_or(|x| x + 1 == next_lsn);
    if let (Some(l), Some(b)) = (last, before_last) {
        if !l.linked && l.last_lsn.is_none() && l.end == SEGMENT_HEADER_SIZE && resumable(&b) {
            let path = dir.join(segment::file_name(l.id));
            fs.remove_file(&path).map_err(|e| Error::io(&path, e))?;
            fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
            metas.retain(|m| m.id != l.id);
            last = Some(b);
        }
    }

    // Where writing resumes: after the last record of the newest segment,
    // if that record is the log's last (a snapshot can cover LSNs beyond
    // the WAL's end when an older build checkpointed ahead of the durable
    // WAL) and the segment is sound; otherwise in a new segment. Sync the
    // segment so that everything recovered is durable before new records
    // claim it as synced.
    let resume = match last {
        Some(l) if resumable(&l) && metas.last().map(|m| m.id) == Some(l.id) => {
            let path = dir.join(segment::file_name(l.id));
            let file = fs
                .open(&path, OpenMode::ReadWrite)
                .map_err(|e| Error::io(&path, e))?;
            file.sync_data().map_err(|e| Error::io(&path, e))?;
            ResumePoint {
                segments: metas,
                file,
                pos: l.end,
                next_lsn,
                db_id,
            }
        }
        _ => {
            let id = metas
                .last()
                .map_or(0, |m| m.id)
                .max(ids.last().copied().unwrap_or(0))
                + 1;
            let p = segment::prepare(
                fs,
                dir,
                kind,
                id,
                segment::first_size(opts.segment_size),
                db_id,
            )?;
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
    Ok(resume)
}

/// Replay the segments `ids` (ascending) of `dir`, calling `apply` for every
/// record after `start.applied_lsn`, in LSN order. In phases: each segment
/// is checked against the link its predecessor wrote ([`Pass::follow_link`]),
/// skipped if a checkpoint covers it, read and its header checked
/// ([`Pass::read_segment`]), scanned record by record ([`Cursor::take`]),
/// and any damage judged ([`Pass::judge_damage`], with the pure
/// [`verdict`]); then the end of the log is settled and the writer's
/// resume point chosen ([`Pass::finish`]).
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
    let mut pass = Pass {
        fs,
        dir,
        ids,
        opts,
        any: opts.recovery_mode == RecoveryMode::TolerateAnyCorruption,
        cur: Cursor {
            applied: start.applied_lsn,
            first_lsn: None,
            last_lsn: None,
            start: &start,
            any: opts.recovery_mode == RecoveryMode::TolerateAnyCorruption,
            last_segment: None,
            gapped: false,
        },
        db_id: start.db_id,
        metas: Vec::new(),
        last: None,
        before_last: None,
        max_lsn_seen: start.applied_lsn,
        salvaged: false,
        oldest_version: 0,
        expect: None,
    };
    for i in 0..ids.len() {
        pass.segment(i, stats, &mut apply)?;
    }
    pass.finish(stats)
}

/// The running state of one replay (see [`replay`]).
struct Pass<'a> {
    fs: &'a dyn FileSystem,
    dir: &'a Path,
    ids: &'a [u64],
    opts: &'a Options,
    /// Salvage mode (`TolerateAnyCorruption`).
    any: bool,
    cur: Cursor<'a>,
    db_id: Option<u64>,
    metas: Vec<SegmentMeta>,
    last: Option<LastSegment>,
    before_last: Option<LastSegment>,
    max_lsn_seen: u64,
    salvaged: bool,
    oldest_version: u32,
    /// The successor named by the previous segment's link record.
    expect: Option<(u64, PathBuf)>,
}

impl<'a> Pass<'a> {
    fn start(&self) -> &'a ReplayStart {
        self.cur.start
    }

    /// Replay segment `ids[i]`.
    fn segment(
        &mut self,
        i: usize,
        stats: &mut RecoveryStats,
        apply: &mut impl FnMut(&Replayed<'_>) -> Result<()>,
    ) -> Result<()> {
        let (fs, dir, ids) = (self.fs, self.dir, self.ids);
        let id = ids[i];
        let path = dir.join(segment::file_name(id));
        let is_last = i + 1 == ids.len();
        let linked = self.follow_link(id, stats)?;
        if self.start().origin == Origin::Checkpoint && !is_last {
            let kind = self.start().kind;
            if let Some(meta) =
                covered_segment(fs, dir, &ids[i..], kind, self.db_id, self.cur.applied)?
            {
                stats.segments_skipped += 1;
                self.max_lsn_seen = self.max_lsn_seen.max(meta.last_lsn.unwrap_or(0));
                self.cur.last_lsn = meta.last_lsn;
                self.cur.last_segment = Some(id);
                self.metas.push(meta);
                return Ok(());
            }
        }
        if i == 0 {
            fs.will_need(&path);
        }
        if let Some(&next) = ids.get(i + 1) {
            // Read the next segment in the background while this one is
            // decoded and applied.
            fs.will_need(&dir.join(segment::file_name(next)));
        }
        let Some((buf, h, mut unusable)) = self.read_segment(&path, id, is_last, stats)? else {
            return Ok(());
        };
        let mut scan = reader::scan(
            &buf,
            Owner {
                db_id: h.db_id,
                segment_id: id,
            },
        );
        let mut link = None;
        for r in &scan.records {
            link = self.cur.take(r, &buf, &path, id, stats, apply)?.or(link);
        }
        let mut first = scan.records.first().map(|r| r.header.lsn);
        let mut last_lsn = scan.records.last().map(|r| r.header.lsn);
        if let Some(d) = scan.damage.clone() {
            if let Some(salvage) = self.judge_damage(&path, i, &d, scan.dirty_end, stats)? {
                unusable |= salvage;
                for r in &d.later {
                    link = self.cur.take(r, &buf, &path, id, stats, apply)?.or(link);
                    first.get_or_insert(r.header.lsn);
                    last_lsn = Some(last_lsn.map_or(r.header.lsn, |l| l.max(r.header.lsn)));
                }
                if let Some(r) = d.later.last() {
                    scan.end = r.offset + r.total;
                }
            }
        }
        if let Some(l) = last_lsn {
            self.max_lsn_seen = self.max_lsn_seen.max(l);
        }
        if let Some(next) = link {
            self.expect = Some((next, path.clone()));
            unusable = true;
        }
        self.metas.push(SegmentMeta {
            id,
            first_lsn: first,
            last_lsn,
            size: buf.len() as u64,
        });
        self.before_last = self.last;
        self.last = Some(LastSegment {
            id,
            end: scan.end,
            last_lsn,
            unusable,
            linked,
        });
        Ok(())
    }

    /// Check segment `id` against the successor the previous segment's
    /// link record named; returns whether it is that successor. A different
    /// id means the named one is missing: an error, or counted under
    /// salvage.
    fn follow_link(&mut self, id: u64, stats: &mut RecoveryStats) -> Result<bool> {
        let Some((want, named_by)) = self.expect.take() else {
            return Ok(false);
        };
        if want == id {
            return Ok(true);
        }
        missing_segment(
            self.dir,
            want,
            &named_by,
            self.cur.last_lsn,
            self.any,
            stats,
        )?;
        self.salvaged = true;
        // Counted here: not again at the LSN gap it leaves.
        self.cur.last_segment = None;
        Ok(false)
    }

    /// Read segment `id` and check its header (and, with a known database
    /// id, that the segment is this database's). Returns the bytes, the
    /// header to scan with, and whether writing must not resume in it; or
    /// `None` when salvage can make nothing of the file.
    fn read_segment(
        &mut self,
        path: &Path,
        id: u64,
        is_last: bool,
        stats: &mut RecoveryStats,
    ) -> Result<Option<(Vec<u8>, segment::SegmentHeader, bool)>> {
        let kind = self.start().kind;
        let salvage_limit = self
            .any
            .then(|| segment::salvage_read_limit(self.opts.segment_size));
        let buf = segment::read_file(self.fs, path, kind, id, salvage_limit)?;
        let header = segment::parse_header(path, &buf, kind, id).and_then(|h| match self.db_id {
            Some(want) if want != h.db_id => Err(Error::corruption(
                path,
                Some(40),
                format!(
                    "segment belongs to another database (id {:#x}, this one is {want:#x})",
                    h.db_id
                ),
            )),
            _ => Ok(h),
        });
        let mut unusable = false;
        let h = match header {
            Ok(h) => {
                if let Err(e) = segment::check_size(path, buf.len() as u64, &h) {
                    if !self.any {
                        return Err(e);
                    }
                    // Salvage every record the shortened file still holds.
                    stats.bytes_skipped += h.size.saturating_sub(buf.len() as u64);
                    self.salvaged = true;
                    unusable = true;
                }
                h
            }
            Err(_) if self.any => {
                // Salvage of a damaged header: the header's fields cannot
                // be trusted, but every record carries its own checksum
                // over its database id, segment id and LSN, so the records
                // of this file can still be found and verified one by one,
                // with the database id known from the snapshot or an
                // earlier segment (or, failing both, the header's own
                // field). Nothing is written to this file again.
                self.salvaged = true;
                unusable = true;
                stats.bytes_skipped += SEGMENT_HEADER_SIZE.min(buf.len() as u64);
                match self
                    .db_id
                    .or_else(|| crate::format::codec::u64_at(&buf, 40))
                {
                    Some(g) => segment::SegmentHeader {
                        version: segment::SEGMENT_VERSION,
                        size: buf.len() as u64,
                        db_id: g,
                    },
                    None => {
                        stats.bytes_skipped +=
                            (buf.len() as u64).saturating_sub(SEGMENT_HEADER_SIZE);
                        if is_last {
                            self.last = None;
                        }
                        return Ok(None);
                    }
                }
            }
            Err(e) => return Err(e),
        };
        if self.oldest_version == 0 {
            self.oldest_version = h.version;
        }
        self.db_id = Some(h.db_id);
        stats.segments_scanned += 1;
        Ok(Some((buf, h, unusable)))
    }

    /// Decide what the damage `d` in segment `ids[i]` means ([`verdict`])
    /// and act on it: `Some(salvage)` when the valid records after it are
    /// to be read on (`salvage`: damage was skipped, so writing must not
    /// resume in this segment), `None` when the torn tail was truncated.
    ///
    /// Errors: `Corruption` for damage the recovery mode does not tolerate.
    fn judge_damage(
        &mut self,
        path: &Path,
        i: usize,
        d: &reader::Damage,
        dirty_end: u64,
        stats: &mut RecoveryStats,
    ) -> Result<Option<bool>> {
        let cur = &self.cur;
        // The LSN the damaged record should have had: one past the last
        // valid record read, in this segment or an earlier one.
        let bad_lsn = cur.last_lsn.map_or(cur.applied + 1, |l| l + 1);
        // Segments after this one that a crashed rotation left empty do
        // not make it an older, fully synced segment.
        let is_last = i + 1 == self.ids.len()
            || all_empty(self.fs, self.dir, &self.ids[i + 1..], self.start().kind)?;
        let facts = DamageFacts {
            is_last,
            misplaced: d.misplaced,
            durable_after: d.later.iter().any(|r| r.header.synced_lsn >= bad_lsn),
            // Every damaged LSN lies below the first valid record after
            // the damage (when a record precedes the damage, that record
            // must also come after it in sequence).
            covered: d.later.first().is_some_and(|r| {
                r.header.lsn <= cur.applied + 1 && cur.last_lsn.is_none_or(|l| r.header.lsn > l)
            }),
        };
        match verdict(facts, self.opts.recovery_mode) {
            Verdict::Covered => Ok(Some(false)),
            Verdict::Salvage => {
                self.salvaged = true;
                stats.bytes_skipped +=
                    d.later.first().map(|r| r.offset).unwrap_or(dirty_end) - d.offset;
                Ok(Some(true))
            }
            Verdict::TruncateTail => {
                stats.truncation = Some(truncate_tail(
                    self.fs,
                    path,
                    d,
                    dirty_end,
                    self.start().read_only,
                )?);
                Ok(None)
            }
            Verdict::RefuseTornTail | Verdict::Corrupt => {
                let what = corruption_message(facts, d);
                Err(Error::corruption(path, Some(d.offset), what))
            }
        }
    }

    /// After the last segment: a successor the last link named but that
    /// is not there, a gap before the LSN the caller needs, and where the
    /// writer resumes (nothing is changed when read-only).
    fn finish(mut self, stats: &mut RecoveryStats) -> Result<ReplayOutcome> {
        let (fs, dir, ids, opts, start) = (self.fs, self.dir, self.ids, self.opts, self.start());
        if let Some((want, named_by)) = self.expect.take() {
            // A read-only open beside a live writer lists the directory
            // before the writer rotates: the log then continues in a
            // segment created after the listing. Its view ends at the
            // link, a prefix of the log. (A writer's own recovery and
            // `verify` hold the lock: no such race, and a missing newest
            // segment is reported as ever.)
            let after_listing = ids.last().is_none_or(|&l| want > l);
            if !(start.read_only && opts.read_only && after_listing) {
                missing_segment(dir, want, &named_by, self.cur.last_lsn, self.any, stats)?;
                self.salvaged = true;
            }
        }
        if self.cur.applied < start.must_reach {
            if let Some(e) = &start.gap_error {
                return Err(e.clone());
            }
        }
        let applied = self.cur.applied;
        let salvaged = self.salvaged | self.cur.gapped;
        let db_id = self.db_id.unwrap_or_else(segment::new_database_id);
        let next_lsn = self.max_lsn_seen.max(applied) + 1;
        let (first_lsn, oldest_version) = (self.cur.first_lsn, self.oldest_version);
        let outcome = |resume| ReplayOutcome {
            resume,
            applied_lsn: applied,
            salvaged,
            db_id,
            first_lsn,
            oldest_version,
        };
        if start.read_only {
            // Nothing is changed: the last segment is only opened for
            // reading, so that a read-only store can report its WAL (best
            // effort: it may have been removed by a writer meanwhile).
            let metas = self.metas;
            let resume = self.last.and_then(|l| {
                let path = dir.join(segment::file_name(l.id));
                let file = fs.open(&path, OpenMode::Read).ok()?;
                Some(ResumePoint {
                    segments: metas,
                    file,
                    pos: l.end,
                    next_lsn,
                    db_id,
                })
            });
            return Ok(outcome(resume));
        }
        let resume = resume_point(
            fs,
            dir,
            ids,
            opts,
            start.kind,
            Tail {
                metas: self.metas,
                last: self.last,
                before_last: self.before_last,
            },
            next_lsn,
            db_id,
        )?;
        Ok(outcome(Some(resume)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODES: [RecoveryMode; 3] = [
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::TolerateTailCorruption,
        RecoveryMode::TolerateAnyCorruption,
    ];

    fn facts(is_last: bool, misplaced: bool, durable_after: bool, covered: bool) -> DamageFacts {
        DamageFacts {
            is_last,
            misplaced,
            durable_after,
            covered,
        }
    }

    /// The recovery contract as a table: every combination of facts, in
    /// every mode.
    #[test]
    fn verdict_table() {
        use Verdict::*;
        // (is_last, misplaced, durable_after, covered) -> verdict per mode
        // (Absolute, Tail, Any).
        type Row = ((bool, bool, bool, bool), [Verdict; 3]);
        let table: &[Row] = &[
            (
                (true, false, false, false),
                [RefuseTornTail, TruncateTail, TruncateTail],
            ),
            ((true, false, true, false), [Corrupt, Corrupt, Salvage]),
            ((true, true, false, false), [Corrupt, Corrupt, Salvage]),
            ((true, true, true, false), [Corrupt, Corrupt, Salvage]),
            ((false, false, false, false), [Corrupt, Corrupt, Salvage]),
            ((false, false, true, false), [Corrupt, Corrupt, Salvage]),
            ((false, true, false, false), [Corrupt, Corrupt, Salvage]),
            ((false, true, true, false), [Corrupt, Corrupt, Salvage]),
            ((true, false, false, true), [Covered, Covered, Covered]),
            ((true, false, true, true), [Covered, Covered, Covered]),
            ((false, false, false, true), [Covered, Covered, Covered]),
            ((false, false, true, true), [Covered, Covered, Covered]),
            ((true, true, false, true), [Corrupt, Corrupt, Salvage]),
            ((false, true, true, true), [Corrupt, Corrupt, Salvage]),
        ];
        for &((l, m, d, c), want) in table {
            for (mode, w) in MODES.iter().zip(want) {
                assert_eq!(
                    verdict(facts(l, m, d, c), *mode),
                    w,
                    "{l} {m} {d} {c} {mode:?}"
                );
            }
        }
    }
}
