//! Recovery on open: load the newest snapshot whose SHA-256 verifies,
//! replay the WAL after it, and decide what any damage means.
//!
//! The WAL part (segment checks, the torn-tail-or-corruption decision,
//! truncation, where writing resumes) is shared with every log kind and
//! lives in [`crate::wal::replay`].

use crate::engine;
use crate::error::{Error, Result};
use crate::format::record::RecordType;
use crate::fs::FileSystem;
use crate::index::{Entry, Val};
use crate::index::{PayloadAt, Tables};
use crate::kv::checkpoint;
use crate::options::{Options, RecoveryMode};
pub use crate::wal::replay::RecoveryStats;
use crate::wal::replay::{replay, Origin, ReplayStart};
use crate::wal::segment::KIND_KV;
use crate::wal::writer::ResumePoint;
use std::path::Path;
use std::time::Instant;

/// What recovery hands to the database.
pub(crate) struct Recovered {
    pub mem: Tables,
    /// Where the WAL writer resumes (`None` for a read-only recovery).
    pub resume: Option<ResumePoint>,
    pub snapshots: Vec<u64>,
    /// LSN of the snapshot loaded (the newest that verified), if any.
    pub loaded_snapshot: Option<u64>,
    /// The segments each checkpoint file's separated values point into,
    /// by LSN, for those whose list reads back (see `CheckpointState`).
    pub checkpoint_refs: std::collections::HashMap<u64, Vec<u64>>,
    pub stats: RecoveryStats,
    pub salvaged: bool,
    /// The database's random id (new if the directory held no files).
    pub db_id: u64,
}

/// The value length from which values stay in the log
/// ([`Options::value_separation_threshold`]; `usize::MAX`: never).
pub(crate) fn separate_from(opts: &Options) -> usize {
    opts.value_separation_threshold
        .map_or(usize::MAX, |t| t as usize)
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
    let listing = engine::list(fsr, dir)?;
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
    if !read_only {
        engine::remove_leftovers(fsr, dir, &listing)?;
    }

    // 1. The newest snapshot that verifies.
    let mut mem = Tables::default();
    mem.separate_from(separate_from(opts));
    let mut first_error: Option<Error> = None;
    let mut db_id: Option<u64> = None;
    let mut loaded_snapshot = None;
    for &lsn in listing.snapshots.iter().rev() {
        let path = dir.join(checkpoint::file_name(lsn));
        let mut entries = [Vec::new(), Vec::new()];
        let entry = |k: &[u8], v: checkpoint::Stored<'_>| match v {
            Val::Inline(v) => Entry::new(k, v),
            Val::At(p) => Entry::new_ptr(k, p),
        };
        match checkpoint::read(fsr, &path, |s, k, v| entries[s].push(entry(k, v))) {
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
                let [default, named] = entries;
                stats.snapshot_entries = info.count;
                stats.snapshot_lsn = info.lsn;
                let missing = check_segments(fsr, dir, &info, opts, &mut stats)?;
                let [mut default, mut named] = [default, named];
                if !missing.is_empty() {
                    // Salvage: a value whose segment is gone is lost; so is
                    // its key (the salvaged baseline must not point there).
                    for list in [&mut default, &mut named] {
                        let before = list.len();
                        list.retain(|e| {
                            e.val().ptr().is_none_or(|p| !missing.contains(&p.segment))
                        });
                        stats.values_dropped += (before - list.len()) as u64;
                    }
                }
                mem.default.install(default);
                mem.named.install(named);
                mem.set_applied_lsn(info.lsn);
                mem.rebuild_live();
                mem.recount_segments();
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
        applied_lsn: mem.applied_lsn(),
        db_id,
        origin: Origin::Checkpoint,
        must_reach: newest_rejected,
        gap_error: first_error,
        read_only,
    };
    // Replay in bulk mode: one sort and merge at the end instead of a
    // B-tree search per write (recovery is CPU-bound, not disk-bound).
    mem.begin_bulk();
    let out = replay(
        fsr,
        dir,
        &listing.segments,
        opts,
        start,
        &mut stats,
        |r| match r.rtype {
            RecordType::KvBatch => mem
                .apply_batch(
                    r.payload,
                    Some(PayloadAt {
                        segment: r.segment_id,
                        offset: r.offset + crate::format::record::HEADER_SIZE as u64,
                    }),
                )
                .map_err(|why| Error::corruption(r.file, Some(r.offset), why)),
            other => Err(Error::corruption(
                r.file,
                Some(r.offset),
                format!("{other:?} record in a key-value log"),
            )),
        },
    );
    mem.end_bulk();
    let out = out?;
    let values_lost =
        stats.values_dropped > 0 || (stats.segments_missing > 0 && loaded_snapshot.is_some());
    mem.set_applied_lsn(out.applied_lsn);
    stats.last_lsn = out.applied_lsn;
    stats.duration_micros = started.elapsed().as_micros() as u64;
    Ok(Recovered {
        db_id: out.db_id,
        mem,
        resume: out.resume,
        checkpoint_refs: listing
            .snapshots
            .iter()
            .filter_map(|&lsn| {
                let p = dir.join(checkpoint::file_name(lsn));
                checkpoint::read_segments(fsr, &p).ok().map(|s| (lsn, s))
            })
            .collect(),
        snapshots: listing.snapshots,
        loaded_snapshot,
        stats,
        salvaged: out.salvaged || wal_missing || values_lost,
    })
}

/// Check that every segment the loaded checkpoint's separated values
/// point into is there (a kept segment that was deleted is damage, found
/// at open rather than at the first read of one of its values).
///
/// Returns the missing ones, which only salvage tolerates.
///
/// Errors: [`Error::Corruption`] naming the missing segment, unless the
/// recovery mode is salvage: then it is counted in
/// [`RecoveryStats::segments_missing`], and the caller drops the keys
/// whose values were there ([`RecoveryStats::values_dropped`]).
fn check_segments(
    fs: &dyn FileSystem,
    dir: &Path,
    info: &checkpoint::SnapshotInfo,
    opts: &Options,
    stats: &mut RecoveryStats,
) -> Result<Vec<u64>> {
    let mut missing = Vec::new();
    for &id in &info.segments {
        let path = dir.join(crate::wal::segment::file_name(id));
        if !fs.exists(&path).map_err(|e| Error::io(&path, e))? {
            if opts.recovery_mode == RecoveryMode::TolerateAnyCorruption {
                stats.segments_missing += 1;
                missing.push(id);
                continue;
            }
            return Err(Error::corruption(
                &path,
                None,
                format!(
                    "segment {id} is missing: checkpoint {} keeps separated values in it (the file was deleted)",
                    info.lsn
                ),
            ));
        }
    }
    Ok(missing)
}
