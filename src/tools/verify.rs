//! Read-only verification of a store directory, key-value or Raft log
//! (told apart by the first segment's header): every WAL record's CRC32,
//! every snapshot's SHA-256, sequence-number continuity, and, in a
//! key-value store's recovered state, that every document collection's
//! indexes agree with its documents. Used by `keyval DIR verify`; never
//! modifies anything.
//!
//! The verdict is open's: the directory is also recovered read-only, with
//! the same code and the default recovery mode, and [`Report::has_corruption`]
//! is true exactly when that recovery fails, or, for a Raft log, when its
//! snapshot fails to load (open does not read it, but the node needs it).
//! Every problem the file-by-file scan finds is listed, classified by what
//! open does about it.

use crate::documents;
use crate::engine;
use crate::error::{Error, Result};
use crate::format::record::Owner;
use crate::fs::FileSystem;
use crate::index::Tables;
use crate::kv::checkpoint;
use crate::kv::recovery;
use crate::options::Options;
use crate::wal::reader;
use crate::wal::segment::{self, KIND_KV, KIND_RAFT};
use std::collections::HashMap;
use std::ops::Bound::Unbounded;
use std::path::{Path, PathBuf};

/// What open (in the default recovery mode) does about a [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Open fails with `Corruption` here.
    Corruption,
    /// A torn tail of unacknowledged writes: open zeroes it and goes on.
    TornTail,
    /// Damage open does not need to read past: records a newer snapshot
    /// covers, or an older snapshot. Worth knowing; loses nothing.
    Harmless,
}

/// One problem found by [`verify_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The damaged file (or the directory, for a missing file).
    pub file: PathBuf,
    /// Offset of the damage, when known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub detail: String,
    /// What open does about it.
    pub severity: Severity,
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
    /// Every problem, in file order; the one open fails on (if any) last.
    pub problems: Vec<Problem>,
    /// Document collections checked (in the recovered state; 0 when
    /// recovery fails).
    pub collections: u64,
    /// Documents in them.
    pub documents: u64,
    /// Disagreements between a collection's indexes and its documents
    /// (an entry missing, or one without its document value), as
    /// `(collection, detail)`. Open does not look for these; a store where
    /// they appear has lost or gained writes the engine did not make.
    pub index_problems: Vec<(String, String)>,
    /// For a Raft log: its bounds, hard state and snapshot as a read-only
    /// open sees them (`None` for a key-value store, or when recovery
    /// fails).
    pub raft: Option<crate::raft::Inspection>,
    /// Separated values read back from their segments and checked against
    /// their CRC (every one the recovered index points at).
    pub separated_values: u64,
}

impl Report {
    /// Whether open, in the default recovery mode, fails with `Corruption`.
    pub fn has_corruption(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.severity == Severity::Corruption)
    }

    /// Whether a collection's indexes and documents disagree.
    pub fn has_index_problems(&self) -> bool {
        !self.index_problems.is_empty()
    }

    /// Whether open would zero a torn tail (and otherwise succeed).
    pub fn has_torn_tail(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.severity == Severity::TornTail)
    }

    /// Classify a problem found by open: the scan's entry at the same file
    /// and offset if there is one, else a new entry.
    fn mark(&mut self, file: PathBuf, offset: Option<u64>, detail: String, severity: Severity) {
        if let Some(p) = self
            .problems
            .iter_mut()
            .find(|p| p.file == file && p.offset == offset)
        {
            p.severity = severity;
            if severity == Severity::Corruption {
                p.detail = detail;
            }
            return;
        }
        self.problems.push(Problem {
            file,
            offset,
            detail,
            severity,
        });
    }
}

/// Verify the database in `dir` without opening it for writing.
///
/// Errors: [`Error::Io`] if the directory or a file cannot be read;
/// [`Error::Corruption`] if it is an unfinished backup (see
/// [`crate::engine::backup`]). Damage is not an error: it is listed in the report.
pub fn verify_dir(fs: &dyn FileSystem, dir: &Path) -> Result<Report> {
    let kind = engine::log_kind(fs, dir)?.unwrap_or(KIND_KV);
    let mut rep = scan_files(fs, dir, kind)?;
    // Recover read-only, as open would; keep what it says of a torn tail.
    let recovered = if kind == KIND_RAFT {
        crate::raft::inspect(fs, dir).map(|ins| {
            if let Some(why) = &ins.snapshot_error {
                rep.mark(
                    dir.join(crate::raft::snapshot::NAME),
                    None,
                    format!("{why} (the log opens, but reading its snapshot fails)"),
                    Severity::Corruption,
                );
            } else if ins.snapshot.is_some() {
                rep.snapshots += 1;
                rep.bytes += ins.snapshot_bytes;
            }
            let torn = ins.recovery.truncation.clone();
            rep.raft = Some(ins);
            torn
        })
    } else {
        recovery::recover(fs, dir, &Options::default(), true).map(|rec| {
            let mut values = Values::new(fs, dir);
            for t in [rec.mem.default.tree(), rec.mem.named.tree()] {
                t.visit(Unbounded, Unbounded, |e| {
                    if let crate::index::Val::At(p) = e.val() {
                        rep.separated_values += 1;
                        if let Err(Error::Corruption {
                            file,
                            offset,
                            detail,
                        }) = values.read(&p)
                        {
                            rep.mark(file, offset, detail, Severity::Corruption);
                        }
                    }
                    true
                });
            }
            for (coll, docs, problems) in check_collections(&rec.mem, &mut values) {
                rep.collections += 1;
                rep.documents += docs;
                rep.index_problems
                    .extend(problems.into_iter().map(|p| (coll.clone(), p)));
            }
            rec.stats.truncation
        })
    };
    match recovered {
        Ok(Some(t)) => rep.mark(
            t.file,
            Some(t.offset),
            format!(
                "{} (torn tail of unacknowledged writes; open truncates it)",
                t.reason
            ),
            Severity::TornTail,
        ),
        Ok(None) => {}
        Err(Error::Corruption {
            file,
            offset,
            detail,
        }) => rep.mark(file, offset, detail, Severity::Corruption),
        Err(e) => return Err(e),
    }
    Ok(rep)
}

/// Check every file on its own; each problem starts out `Harmless` and is
/// reclassified by what the read-only recovery decides.
fn scan_files(fs: &dyn FileSystem, dir: &Path, kind: u32) -> Result<Report> {
    let listing = engine::list(fs, dir)?;
    let mut rep = Report::default();
    let mut snapshot_db: Option<u64> = None;
    for &lsn in &listing.snapshots {
        let path = dir.join(checkpoint::file_name(lsn));
        rep.snapshots += 1;
        match checkpoint::read(fs, &path, |_, _, _| {}) {
            Ok(info) => {
                rep.snapshot_entries += info.count;
                if snapshot_db.is_some_and(|d| d != info.db_id) {
                    rep.problems.push(Problem {
                        file: path.clone(),
                        offset: Some(40),
                        detail: "snapshot belongs to another database".into(),
                        severity: Severity::Harmless,
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
                        severity: Severity::Harmless,
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
                severity: Severity::Harmless,
            }),
            Err(e) => return Err(e),
        }
    }
    let mut prev_last: Option<u64> = None;
    let mut db_id = snapshot_db;
    for &id in &listing.segments {
        let path = dir.join(segment::file_name(id));
        let buf = segment::read_file(fs, &path, kind, id, None)?;
        rep.segments += 1;
        rep.bytes += buf.len() as u64;
        let seg_db = match segment::check_header(&path, &buf, kind, id) {
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
                    severity: Severity::Harmless,
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
                    severity: Severity::Harmless,
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
                    severity: Severity::Harmless,
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
            let detail = if d.later.is_empty() {
                d.reason.clone()
            } else {
                format!("{}, {} valid record(s) follow", d.reason, d.later.len())
            };
            rep.problems.push(Problem {
                file: path,
                offset: Some(d.offset),
                detail,
                severity: Severity::Harmless,
            });
        }
    }
    Ok(rep)
}

/// Reads separated values for `verify`, one read handle per segment.
struct Values<'a> {
    fs: &'a dyn FileSystem,
    dir: &'a Path,
    files: HashMap<u64, std::sync::Arc<dyn crate::fs::FileHandle>>,
}

impl<'a> Values<'a> {
    fn new(fs: &'a dyn FileSystem, dir: &'a Path) -> Values<'a> {
        Values {
            fs,
            dir,
            files: HashMap::new(),
        }
    }

    /// The value `p` points at, checked against its CRC.
    fn read(&mut self, p: &crate::index::ValuePtr) -> Result<Vec<u8>> {
        let path = self.dir.join(crate::wal::segment::file_name(p.segment));
        let file = match self.files.get(&p.segment) {
            Some(f) => std::sync::Arc::clone(f),
            None => {
                let f = crate::vlog::open_segment(self.fs, &path, p.segment)?;
                self.files.insert(p.segment, std::sync::Arc::clone(&f));
                f
            }
        };
        crate::vlog::read_verified(file.as_ref(), &path, p)
    }
}

/// [`crate::Collection::check`] for every collection in recovered tables (used by
/// `verify`, which recovers read-only and opens nothing for writing).
/// Returns each collection's name, documents and problems, by name.
fn check_collections(t: &Tables, values: &mut Values<'_>) -> Vec<(String, u64, Vec<String>)> {
    let names: HashMap<String, u32> = t.names().into_iter().collect();
    let mut all = |id: Option<&u32>| -> Vec<(Vec<u8>, Vec<u8>)> {
        match id {
            Some(&id) => t
                .range(id, Unbounded, Unbounded, usize::MAX)
                .into_iter()
                .map(|(k, v)| match v {
                    crate::index::OwnedVal::Inline(v) => (k, v),
                    // A damaged value is reported by the value check.
                    crate::index::OwnedVal::At(p) => (k, values.read(&p).unwrap_or_default()),
                })
                .collect(),
            None => Vec::new(),
        }
    };
    let mut out: Vec<(String, u64, Vec<String>)> = Vec::new();
    for (space, _) in names.iter().filter(|(n, _)| n.starts_with(documents::DOCS)) {
        let coll = &space[documents::DOCS.len()..];
        let docs = all(names.get(space));
        let mut problems = Vec::new();
        let mut indexes = Vec::new();
        for (k, v) in all(names.get(&format!("{}{coll}", documents::META))) {
            if let Some(path) = k.strip_prefix(documents::INDEX_META.as_bytes()) {
                match documents::parse_index_meta(String::from_utf8_lossy(path).into_owned(), &v) {
                    Ok(i) => indexes.push(i),
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        let n = docs.len() as u64;
        let keys = all(names.get(&format!("{}{coll}", documents::INDEX)));
        match documents::agreement(
            &indexes,
            docs.into_iter().map(Ok),
            keys.into_iter().map(|(k, _)| Ok(k)),
        ) {
            Ok(p) => problems.extend(p),
            Err(e) => problems.push(e.to_string()),
        }
        out.push((coll.to_string(), n, problems));
    }
    out.sort();
    out
}
