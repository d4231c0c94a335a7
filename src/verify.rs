//! Read-only verification of a database directory: every WAL record's
//! CRC32, every snapshot's SHA-256, sequence-number continuity. Used by
//! `keyval DIR verify`; never modifies anything.

use crate::error::{Error, Result};
use crate::fs::{FileSystem, OpenMode};
use crate::recovery;
use crate::snapshot;
use crate::wal::reader;
use crate::wal::record::Owner;
use crate::wal::segment::{self, KIND_KV};
use std::path::{Path, PathBuf};

/// One problem found by [`verify_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The damaged file.
    pub file: PathBuf,
    /// Offset of the damage, when known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub detail: String,
    /// `true` for a torn tail that recovery (in the default mode) truncates
    /// as an unacknowledged write; `false` for corruption.
    pub torn_tail: bool,
}

/// What [`verify_dir`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Snapshots checked.
    pub snapshots: u64,
    /// Snapshot entries checked.
    pub snapshot_entries: u64,
    /// Segments checked.
    pub segments: u64,
    /// Valid WAL records found.
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Lowest and highest LSN seen in the WAL.
    pub lsn_range: Option<(u64, u64)>,
    /// Every problem, in file order.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether any problem is corruption (not merely a torn tail).
    pub fn has_corruption(&self) -> bool {
        self.problems.iter().any(|p| !p.torn_tail)
    }
}

/// Verify the database in `dir` without opening it for writing.
///
/// Errors: [`Error::Io`] if the directory or a file cannot be read. Damage
/// is not an error: it is listed in the report.
pub fn verify_dir(fs: &dyn FileSystem, dir: &Path) -> Result<Report> {
    let listing = recovery::list(fs, dir)?;
    let mut rep = Report::default();
    let mut snapshot_db: Option<u64> = None;
    for &lsn in &listing.snapshots {
        let path = dir.join(snapshot::file_name(lsn));
        rep.snapshots += 1;
        match snapshot::read(fs, &path, |_, _| {}) {
            Ok(info) => {
                rep.snapshot_entries += info.count;
                if snapshot_db.is_some_and(|d| d != info.db_id) {
                    rep.problems.push(Problem {
                        file: path.clone(),
                        offset: Some(40),
                        detail: "snapshot belongs to another database".into(),
                        torn_tail: false,
                    });
                }
                snapshot_db = Some(info.db_id);
                rep.bytes += info.bytes;
                if info.lsn != lsn {
                    rep.problems.push(Problem {
                        file: path,
                        offset: Some(16),
                        detail: format!(
                            "snapshot header says LSN {}, file name says {lsn}",
                            info.lsn
                        ),
                        torn_tail: false,
                    });
                }
            }
            Err(Error::Corruption {
                file,
                offset,
                detail,
            }) => rep.problems.push(Problem {
                file,
                offset,
                detail,
                torn_tail: false,
            }),
            Err(e) => return Err(e),
        }
    }
    let mut prev_last: Option<u64> = None;
    let mut db_id = snapshot_db;
    for (i, &id) in listing.segments.iter().enumerate() {
        let path = dir.join(segment::file_name(id));
        let is_last = i + 1 == listing.segments.len();
        let buf = fs
            .open(&path, OpenMode::Read)
            .and_then(|f| f.read_all())
            .map_err(|e| Error::io(&path, e))?;
        rep.segments += 1;
        rep.bytes += buf.len() as u64;
        let seg_db = match segment::check_header(&path, &buf, KIND_KV, id) {
            Ok(d) => d,
            Err(Error::Corruption {
                file,
                offset,
                detail,
            }) => {
                rep.problems.push(Problem {
                    file,
                    offset,
                    detail,
                    torn_tail: false,
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        match db_id {
            Some(want) if want != seg_db => {
                rep.problems.push(Problem {
                    file: path.clone(),
                    offset: Some(40),
                    detail: format!("segment belongs to another database (id {seg_db:#x}, this one is {want:#x})"),
                    torn_tail: false,
                });
                continue;
            }
            _ => db_id = Some(seg_db),
        }
        let scan = reader::scan(
            &buf,
            Owner {
                db_id: seg_db,
                segment_id: id,
            },
        );
        if let (Some(first), Some(prev)) = (scan.records.first(), prev_last) {
            if first.header.lsn != prev + 1 {
                rep.problems.push(Problem {
                    file: path.clone(),
                    offset: Some(first.offset),
                    detail: format!(
                        "sequence number {} follows {prev} of the previous segment",
                        first.header.lsn
                    ),
                    torn_tail: false,
                });
            }
        }
        rep.records += scan.records.len() as u64;
        if let Some(last) = scan.records.last() {
            prev_last = Some(last.header.lsn);
            let lo = rep.lsn_range.map_or(scan.records[0].header.lsn, |r| r.0);
            rep.lsn_range = Some((lo, last.header.lsn));
        }
        if let Some(d) = scan.damage {
            let bad_lsn = prev_last.map_or(1, |l| l + 1);
            let durable_after = d.later.iter().any(|r| r.header.synced_lsn >= bad_lsn);
            let torn = is_last && !d.misplaced && !durable_after;
            let detail = if torn {
                format!(
                    "{} (torn tail of unacknowledged writes; open truncates it)",
                    d.reason
                )
            } else if d.later.is_empty() {
                d.reason.clone()
            } else {
                format!("{}, {} valid record(s) follow", d.reason, d.later.len())
            };
            rep.problems.push(Problem {
                file: path,
                offset: Some(d.offset),
                detail,
                torn_tail: torn,
            });
        }
    }
    Ok(rep)
}
