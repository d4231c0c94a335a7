//! Recovery on open: load the newest snapshot whose SHA-256 verifies,
//! replay the WAL after it, and decide what any damage means.
//!
//! The WAL part (segment checks, the torn-tail-or-corruption decision,
//! truncation, where writing resumes) is shared with every log kind and
//! lives in [`crate::wal::replay`].

use crate::batch::{self, Op};
use crate::error::{Error, Result};
use crate::fs::FileSystem;
use crate::memtable::{Entry, MemTable};
use crate::options::{Options, RecoveryMode};
use crate::snapshot;
use crate::wal::record::RecordType;
use crate::wal::replay::{replay, ReplayStart};
use crate::wal::segment::{self, KIND_KV};
use crate::wal::writer::ResumePoint;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
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
    /// Under [`RecoveryMode::TolerateAnyCorruption`]: WAL segments that the
    /// log's own records say must exist but are missing (deleted files).
    /// In the other modes a missing segment fails the open.
    pub segments_missing: u64,
    /// Last LSN recovered.
    pub last_lsn: u64,
    /// Wall time the recovery took, in microseconds.
    pub duration_micros: u64,
}

/// What recovery hands to the database.
pub(crate) struct Recovered {
    pub mem: MemTable,
    /// Where the WAL writer resumes (`None` for a read-only recovery).
    pub resume: Option<ResumePoint>,
    pub snapshots: Vec<u64>,
    /// LSN of the snapshot loaded (the newest that verified), if any.
    pub loaded_snapshot: Option<u64>,
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

/// Recover the database in `dir`. The caller holds the directory lock,
/// unless `read_only` is set: then nothing on disk is changed (no leftover
/// is deleted, no torn tail zeroed, nothing synced or created) and the
/// outcome is exactly what an open in `opts.recovery_mode` would decide.
pub(crate) fn recover(
    fsr: &dyn FileSystem,
    dir: &Path,
    opts: &Options,
    read_only: bool,
) -> Result<Recovered> {
    let started = Instant::now();
    let mut stats = RecoveryStats::default();
    let listing = list(fsr, dir)?;
    let mut wal_missing = false;
    if listing.segments.is_empty() && !listing.snapshots.is_empty() {
        // Checkpoints never delete the active segment: snapshots without a
        // single segment mean WAL files were deleted.
        if opts.recovery_mode != RecoveryMode::TolerateAnyCorruption {
            return Err(Error::corruption(
                dir,
                None,
                "the WAL is missing: the directory holds snapshots but no WAL segment (files were deleted)",
            ));
        }
        stats.segments_missing += 1;
        wal_missing = true;
    }
    if !listing.leftovers.is_empty() && !read_only {
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
    let mut loaded_snapshot = None;
    for &lsn in listing.snapshots.iter().rev() {
        let path = dir.join(snapshot::file_name(lsn));
        let mut entries = Vec::new();
        match snapshot::read(fsr, &path, |k, v| entries.push(Entry::new(k, v))) {
            Ok(info) => {
                if info.lsn != lsn {
                    let e = Error::corruption(
                        &path,
                        Some(16),
                        format!(
                            "snapshot header says LSN {}, file name says {lsn}",
                            info.lsn
                        ),
                    );
                    if opts.recovery_mode == RecoveryMode::AbsoluteConsistency {
                        return Err(e);
                    }
                    stats.snapshots_rejected += 1;
                    stats.snapshot_error.get_or_insert(e.to_string());
                    first_error.get_or_insert(e);
                    continue;
                }
                let set: BTreeSet<Entry> = entries.into_iter().collect();
                stats.snapshot_entries = info.count;
                stats.snapshot_lsn = info.lsn;
                mem.install(set, info.lsn);
                db_id = Some(info.db_id);
                loaded_snapshot = Some(info.lsn);
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
    let newest_rejected = if first_error.is_some() {
        listing.snapshots.last().copied().unwrap_or(0)
    } else {
        0
    };
    let start = ReplayStart {
        kind: KIND_KV,
        applied_lsn: mem.applied_lsn,
        db_id,
        skip_covered: true,
        must_reach: newest_rejected,
        gap_error: first_error,
        start_anywhere: false,
        read_only,
    };
    let out = replay(
        fsr,
        dir,
        &listing.segments,
        opts,
        start,
        &mut stats,
        |r| match r.rtype {
            RecordType::KvBatch => apply_batch(&mut mem, r.payload, r.file, r.offset),
            other => Err(Error::corruption(
                r.file,
                Some(r.offset),
                format!("{other:?} record in a key-value log"),
            )),
        },
    )?;
    mem.applied_lsn = out.applied_lsn;
    stats.last_lsn = mem.applied_lsn;
    stats.duration_micros = started.elapsed().as_micros() as u64;
    Ok(Recovered {
        db_id: out.db_id,
        mem,
        resume: out.resume,
        snapshots: listing.snapshots,
        loaded_snapshot,
        stats,
        salvaged: out.salvaged || wal_missing,
    })
}
