//! [`RaftLog`]: a durable Raft log store on KeyVal's write-ahead log.
//!
//! A Raft log lives in its own directory. It shares the WAL machinery with
//! the key-value store (segments, checksummed records, group commit,
//! replay, torn-tail handling) but uses its own record types:
//!
//! their payloads are laid out in `format::raft` (record types 10-15:
//! entries, hard state, truncate suffix and prefix, reclaim, rebase; see
//! `rebase_after_salvage` for the last).
//!
//! Entries are not held in memory: an index maps each log index to its
//! term and its position in a segment, reads use positioned reads (checked
//! against the per-entry CRC), and a bounded cache keeps recent entries.
//! `truncate_prefix` reclaims whole segments whose entries all fall below
//! the new first index; before it deletes the segment that holds the latest
//! hard state, that hard state is written again to the active segment, and
//! a reclaim record saying which LSNs may vanish is made durable. On open,
//! a log whose oldest records are gone without such a record (deleted
//! files) is `Corruption`.
//!
//! The vote is an opaque byte string (empty = no vote), so that any Raft
//! implementation can store its own vote type (openraft's `Vote`, a node id,
//! ...).
//!
//! Thread safety: `RaftLog` is `Send + Sync`. Appends, truncations and hard
//! state saves are totally ordered and group-committed; reads run in
//! parallel with them.

mod metrics;
pub(crate) mod snapshot;

pub use metrics::RaftMetrics;
pub use snapshot::SnapshotMeta;

use metrics::{RaftOp, RaftRecorder};

use crate::engine::{self, Core};
use crate::error::{Error, Result};
use crate::format::raft::{self as raft_format, encode_truncate_prefix, RaftRecord};
use crate::format::record::{RecordType, HEADER_SIZE};
use crate::fs::{self, FileHandle, FileSystem, OpenMode};
use crate::options::{Durability, IntoRaftOptions, Options};
use crate::wal::replay::{replay, Origin, RecoveryStats, ReplayStart};
use crate::wal::segment::{self, KIND_RAFT};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

/// One Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Log index.
    pub index: u64,
    /// Term in which the entry was created.
    pub term: u64,
    /// Opaque payload.
    pub data: Vec<u8>,
}

/// Raft's durable hard state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HardState {
    /// Current term.
    pub term: u64,
    /// The vote, as opaque bytes (empty = none).
    pub vote: Vec<u8>,
    /// Commit index.
    pub commit: u64,
}

/// Bytes the read cache may hold.
const CACHE_BYTES: usize = 8 << 20;

/// Recently appended entries, bounded by `CACHE_BYTES`; the oldest go
/// first. Truncations split the map (O(log n)), never scan it.
#[derive(Debug, Default)]
struct Cache {
    map: BTreeMap<u64, Arc<Entry>>,
    bytes: usize,
}

impl Cache {
    fn cost(e: &Entry) -> usize {
        e.data.len() + 32
    }

    fn insert(&mut self, entries: &[Entry]) {
        for e in entries {
            self.bytes += Cache::cost(e);
            if let Some(old) = self.map.insert(e.index, Arc::new(e.clone())) {
                self.bytes -= Cache::cost(&old);
            }
        }
        while self.bytes > CACHE_BYTES {
            match self.map.pop_first() {
                Some((_, e)) => self.bytes -= Cache::cost(&e),
                None => break,
            }
        }
    }

    /// Drop entries with index >= `from`.
    fn remove_from(&mut self, from: u64) {
        let gone = self.map.split_off(&from);
        self.bytes -= gone.values().map(|e| Cache::cost(e)).sum::<usize>();
    }

    /// Drop entries with index <= `upto`.
    fn remove_upto(&mut self, upto: u64) {
        let Some(start) = upto.checked_add(1) else {
            self.map.clear();
            self.bytes = 0;
            return;
        };
        let keep = self.map.split_off(&start);
        let gone = std::mem::replace(&mut self.map, keep);
        self.bytes -= gone.values().map(|e| Cache::cost(e)).sum::<usize>();
    }
}

#[derive(Debug, Clone, Copy)]
struct Loc {
    term: u64,
    seg: u64,
    /// Offset of the entry's data in the segment file.
    off: u64,
    len: u32,
    crc: u32,
}

#[derive(Debug, Default)]
struct State {
    /// Index of `locs[0]` (or where the next entry goes when empty).
    first: u64,
    locs: VecDeque<Loc>,
    hard: Option<HardState>,
    /// Segment holding the latest hard-state record.
    hard_seg: u64,
    purged: Option<(u64, u64)>,
    /// Highest entry index written into each live segment.
    seg_max: BTreeMap<u64, u64>,
    files: BTreeMap<u64, Arc<dyn FileHandle>>,
    /// Whether the log has ever held an entry or been truncated.
    used: bool,
    closed: bool,
    /// Set while the log is replayed on open.
    replaying: bool,
    /// Replay found the first entries above the expected next index: the
    /// entries `.0 .. .1` were in reclaimed segments. Sound only if a
    /// later truncate-prefix removed them (checked when replay ends).
    hole: Option<(u64, u64)>,
    /// Highest LSN named by a reclaim record: segments holding only records
    /// below it may have been deleted.
    reclaimed_below: u64,
    /// Replaying under `TolerateAnyCorruption`: an entries record that does
    /// not continue the log (the records between were lost to damage) is
    /// dropped and counted in `dropped` instead of failing the open. Raft
    /// needs a contiguous log; the leader sends the dropped entries again.
    salvage: bool,
    /// Entries records salvage dropped.
    dropped: u64,
    /// Inside a rewrite (between `RaftRebase` 0 and 1): the state the
    /// rewrite's records build, which replaces this one at the commit.
    shadow: Option<Box<State>>,
}

impl State {
    fn next(&self) -> u64 {
        self.first + self.locs.len() as u64
    }
    fn last(&self) -> Option<u64> {
        (!self.locs.is_empty()).then(|| self.next() - 1)
    }
    fn loc(&self, index: u64) -> Result<Loc> {
        if index < self.first {
            return Err(Error::Compacted {
                index,
                first: self.first,
            });
        }
        self.locs
            .get((index - self.first) as usize)
            .copied()
            .ok_or(Error::OutOfRange {
                index,
                last: self.last().unwrap_or(0),
            })
    }

    /// Apply one record (at `seg`, header offset `off`) to the index.
    fn apply(
        &mut self,
        rtype: RecordType,
        p: &[u8],
        seg: u64,
        off: u64,
        file: &Path,
    ) -> Result<()> {
        let bad = |why: &str| Error::corruption(file, Some(off), why.to_string());
        let rec = match RaftRecord::decode(rtype, p) {
            Some(r) => r.map_err(bad)?,
            // Handled by replay; never applied.
            None if rtype == RecordType::SegmentLink => return Ok(()),
            None => return Err(bad("key-value record in a Raft log")),
        };
        if let RaftRecord::Rebase { commit } = rec {
            if !commit {
                // A rewrite that never committed (a crash) is ignored; a
                // new one starts from nothing.
                self.shadow = Some(Box::new(State {
                    first: 1,
                    replaying: self.replaying,
                    salvage: self.salvage,
                    ..State::default()
                }));
            } else {
                let mut sh = *self
                    .shadow
                    .take()
                    .ok_or_else(|| bad("rebase commit without a begin"))?;
                sh.reclaimed_below = sh.reclaimed_below.max(self.reclaimed_below);
                sh.files = std::mem::take(&mut self.files);
                sh.dropped += self.dropped;
                *self = sh;
            }
            return Ok(());
        }
        if let Some(sh) = self.shadow.as_mut() {
            if let RaftRecord::Reclaim { lsn } = rec {
                self.reclaimed_below = self.reclaimed_below.max(lsn);
            }
            return sh.apply(rtype, p, seg, off, file);
        }
        match rec {
            RaftRecord::Rebase { .. } => unreachable!("handled above"),
            RaftRecord::Entries { first, .. } => {
                if self.replaying
                    && self.used
                    && self.locs.is_empty()
                    && self.hole.is_none()
                    && first > self.next()
                {
                    // The log starts after reclaimed segments: the first
                    // record kept may be a truncate-prefix below entries
                    // that a later truncate-prefix removed (checked later).
                    self.hole = Some((self.next(), first));
                    self.first = first;
                }
                if self.used && first != self.next() && self.salvage && self.replaying {
                    self.dropped += 1;
                    return Ok(());
                }
                if self.used && first != self.next() {
                    return Err(bad(&format!(
                        "entries start at {first}, the log continues at {}",
                        self.next()
                    )));
                }
                if !self.used {
                    self.first = first;
                }
                self.used = true;
                for e in rec.entries() {
                    let e = e.map_err(bad)?;
                    self.locs.push_back(Loc {
                        term: e.term,
                        seg,
                        off: off + HEADER_SIZE as u64 + e.data_at as u64,
                        len: e.data.len() as u32,
                        crc: e.crc,
                    });
                }
                if let Some(l) = self.last() {
                    let m = self.seg_max.entry(seg).or_insert(0);
                    *m = (*m).max(l);
                }
            }
            RaftRecord::HardState { term, commit, vote } => {
                self.hard = Some(HardState {
                    term,
                    vote: vote.to_vec(),
                    commit,
                });
                self.hard_seg = seg;
            }
            RaftRecord::TruncateSuffix { from } => {
                // On a log that never held an entry there is nothing to remove.
                if self.used {
                    if from < self.first {
                        self.locs.clear();
                        self.first = from;
                    } else {
                        self.locs.truncate((from - self.first) as usize);
                    }
                }
            }
            RaftRecord::TruncatePrefix { upto, term } => {
                // Logs written before the purge point was kept monotone may
                // hold a purge below an earlier one, or of u64::MAX (which
                // wrapped the first index): neither moves anything back now.
                if self.purged.is_some_and(|(q, _)| q >= upto) {
                    return Ok(());
                }
                let upto = upto.min(u64::MAX - 1);
                if !self.used {
                    self.first = upto + 1;
                } else if upto >= self.first {
                    let drop = ((upto + 1 - self.first) as usize).min(self.locs.len());
                    self.locs.drain(..drop);
                    if self.locs.is_empty() {
                        self.first = upto + 1;
                    } else {
                        self.first += drop as u64;
                    }
                }
                self.purged = Some((upto, term));
                self.used = true;
            }
            RaftRecord::Reclaim { lsn } => {
                self.reclaimed_below = self.reclaimed_below.max(lsn);
            }
        }
        Ok(())
    }
}

/// A queued write: one record.
struct Op {
    rtype: RecordType,
    payload: Vec<u8>,
}

/// Where the log will continue once every queued write is applied: checked
/// and advanced when a write is queued (under the queue's lock), so that
/// concurrent appenders are refused before anything reaches the WAL.
#[derive(Debug, Clone, Copy)]
struct Reserved {
    /// The index the next append must start at (if `used`).
    next: u64,
    /// Whether the log has ever held an entry or been truncated; before
    /// that, the first append may start at any index.
    used: bool,
}

struct Inner {
    /// Directory, lock, WAL, group commit, poison, closed flag, recovery.
    core: Core<Op>,
    state: RwLock<State>,
    reserved: Mutex<Reserved>,
    cache: Mutex<Cache>,
    metrics: RaftRecorder,
}

/// A durable Raft log. See the module docs.
pub struct RaftLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RaftLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftLog")
            .field("dir", &self.inner.core.dir)
            .finish_non_exhaustive()
    }
}

impl RaftLog {
    /// Open (and recover) the Raft log in directory `path`, creating it if
    /// allowed, with [`crate::RaftOptions`] (or an [`Options`], of which
    /// the four fields a log uses are read). `durability` must be `Sync` or
    /// `Os`: Raft relies on appends being on disk when acknowledged, and
    /// reads come from the files.
    ///
    /// Errors: as [`crate::Db::open`]; `InvalidArgument` for `Buffered`,
    /// a bad `segment_size`, or `Options::read_only`.
    pub fn open(path: impl AsRef<Path>, opts: impl IntoRaftOptions) -> Result<RaftLog> {
        RaftLog::open_with_fs(path, opts, fs::default_fs())
    }

    /// [`RaftLog::open`] on a custom file system.
    pub fn open_with_fs(
        path: impl AsRef<Path>,
        opts: impl IntoRaftOptions,
        fs: Arc<dyn FileSystem>,
    ) -> Result<RaftLog> {
        let opts = opts.into_raft_options()?.log_options();
        opts.validate()?;
        if opts.durability == Durability::Buffered {
            return Err(Error::InvalidArgument(
                "a Raft log needs Sync or Os durability".into(),
            ));
        }
        let dir = path.as_ref().to_path_buf();
        let lock = engine::open_directory(fs.as_ref(), &dir, opts.create_if_missing)?;
        let listing = engine::list(fs.as_ref(), &dir)?;
        engine::remove_leftovers(fs.as_ref(), &dir, &listing)?;
        snapshot::remove_leftovers(fs.as_ref(), &dir)?;
        let (mut st, out, stats) = recover(fs.as_ref(), &dir, &listing.segments, &opts, false)?;
        for m in out.resume.iter().flat_map(|r| &r.segments) {
            let p = dir.join(segment::file_name(m.id));
            let f = fs.open(&p, OpenMode::Read).map_err(|e| Error::io(&p, e))?;
            st.files.insert(m.id, f);
        }
        let reserved = Reserved {
            next: st.next(),
            used: st.used,
        };
        let rebase = out.salvaged || st.dropped > 0 || stats.segments_missing > 0;
        let salvage_stats = stats.clone();
        let core = Core::new(
            dir,
            Arc::clone(&fs),
            lock,
            KIND_RAFT,
            &opts,
            out.resume,
            stats,
        )?;
        let log = RaftLog {
            inner: Arc::new(Inner {
                core,
                state: RwLock::new(st),
                reserved: Mutex::new(reserved),
                cache: Mutex::new(Cache::default()),
                metrics: RaftRecorder::default(),
            }),
        };
        if !rebase {
            return Ok(log);
        }
        // Salvaged: rewrite what survived as the whole log, then open that
        // as any later open will, in the default mode (so a rewrite that
        // left anything to salvage fails loudly instead of recursing); its
        // recovery facts are the salvage's.
        log.rebase_after_salvage()?;
        let path = log.inner.core.dir.clone();
        log.close()?;
        drop(log);
        let reopen = Options {
            recovery_mode: crate::options::RecoveryMode::TolerateTailCorruption,
            ..opts
        };
        let mut log = RaftLog::open_with_fs(path, reopen, fs)?;
        if let Some(inner) = Arc::get_mut(&mut log.inner) {
            inner.core.recovery = salvage_stats;
        }
        Ok(log)
    }

    /// After a salvage: write what survived (the contiguous entries, the
    /// purge point, the hard state) again as one rewrite into a segment of
    /// its own, between a `RaftRebase` begin and commit record, and delete
    /// every older segment, so the salvaged log is the whole log and a
    /// later open in any mode starts from it (a damaged segment left in
    /// place would fail every default open). A crash before the commit is
    /// durable leaves the old log standing (the rewrite is ignored); one
    /// after it, before the old segments are gone, leaves the old damage in
    /// place: the default open still reports it, and salvage finishes the
    /// job. Holds the surviving entries in memory while it rewrites them.
    ///
    /// Errors: `Corruption` (a surviving entry fails its checksum), `Io`
    /// (the log is then poisoned).
    fn rebase_after_salvage(&self) -> Result<()> {
        let (first, last, hard, purged) =
            self.read(|s| Ok((s.first, s.last(), s.hard.clone(), s.purged)))?;
        let kept: Vec<Entry> = match last {
            Some(l) => (first..=l).map(|i| self.entry(i)).collect::<Result<_>>()?,
            None => Vec::new(),
        };
        let mut recs: Vec<(RecordType, Vec<u8>)> = vec![(RecordType::RaftRebase, vec![0])];
        match purged {
            Some((p, t)) if p + 1 == first => {
                recs.push((RecordType::RaftTruncatePrefix, encode_truncate_prefix(p, t)));
            }
            // An empty log that continues above index 1 without a matching
            // purge point: say where it continues.
            _ if first > 1 && last.is_none() => {
                recs.push((
                    RecordType::RaftTruncatePrefix,
                    encode_truncate_prefix(first - 1, 0),
                ));
            }
            _ => {}
        }
        for chunk in kept.chunks(1024) {
            recs.push((RecordType::RaftEntries, encode_entries(chunk)));
        }
        if let Some(hs) = &hard {
            recs.push((RecordType::RaftHardState, encode_hard_state(hs)));
        }
        let core = &self.inner.core;
        core.poison_on_err((|| {
            let mut w = core.wal.lock();
            let before = w.rotate_now()?;
            recs.push((RecordType::RaftReclaim, raft_format::encode_u64(before + 1)));
            let refs: Vec<(RecordType, &[u8])> =
                recs.iter().map(|(t, p)| (*t, p.as_slice())).collect();
            w.append(&refs, None)?;
            w.append(&[(RecordType::RaftRebase, &[1u8][..])], None)?;
            // Delete only once what replaces it is durable.
            w.sync()?;
            w.remove_segments_upto(before).map(|_| ())
        })())
    }

    /// Facts about the recovery done by `open`.
    pub fn recovery_stats(&self) -> &RecoveryStats {
        &self.inner.core.recovery
    }

    /// The directory of this log.
    pub fn path(&self) -> &Path {
        &self.inner.core.dir
    }

    fn write(&self, prepare: impl FnOnce(&mut Reserved) -> Result<Op>) -> Result<()> {
        let inner = &self.inner;
        inner.core.check_writable()?;
        inner.core.commit.submit_with(
            || prepare(&mut inner.reserved.lock()),
            |group| inner.lead(group),
        )
    }

    /// Append `entries`, which must have consecutive indexes starting at the
    /// log's next index (any index for the very first append to a new log).
    /// Returns once they are durable (under `Sync`: fdatasync'ed;
    /// concurrent appenders share fsyncs).
    ///
    /// Errors: `InvalidArgument` (not contiguous, or an entry larger than
    /// `max_value_size`), `Closed`, `Poisoned`, `Io` (now poisoned).
    pub fn append(&self, entries: &[Entry]) -> Result<()> {
        let t0 = std::time::Instant::now();
        let r = self.append_entries(entries);
        self.inner.metrics.finish(RaftOp::Append, t0, r)
    }

    fn append_entries(&self, entries: &[Entry]) -> Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        for (i, e) in entries.iter().enumerate() {
            if e.index != first.index + i as u64 {
                return Err(Error::InvalidArgument(format!(
                    "entry indexes are not consecutive at {}",
                    e.index
                )));
            }
        }
        let p = encode_entries(entries);
        let n = entries.len() as u64;
        self.write(|r| {
            if r.used && first.index != r.next {
                return Err(Error::InvalidArgument(format!(
                    "append at {} but the log continues at {}",
                    first.index, r.next
                )));
            }
            *r = Reserved {
                next: first.index + n,
                used: true,
            };
            Ok(Op {
                rtype: RecordType::RaftEntries,
                payload: p,
            })
        })?;
        self.inner.cache.lock().insert(entries);
        let bytes = entries.iter().map(|e| e.data.len() as u64).sum();
        self.inner.metrics.appended(n, bytes);
        Ok(())
    }

    /// Save the hard state durably.
    ///
    /// Errors: `Closed`, `Poisoned`, `Io` (now poisoned).
    pub fn save_hard_state(&self, hs: &HardState) -> Result<()> {
        let t0 = std::time::Instant::now();
        let r = self.write(|_| {
            Ok(Op {
                rtype: RecordType::RaftHardState,
                payload: encode_hard_state(hs),
            })
        });
        self.inner.metrics.finish(RaftOp::HardState, t0, r)
    }

    /// The last saved hard state, if any.
    pub fn hard_state(&self) -> Result<Option<HardState>> {
        self.read(|s| Ok(s.hard.clone()))
    }

    /// Remove every entry with index >= `from`, durably (Raft conflict
    /// resolution). The next append must start at `from` (or below, if
    /// `from` was beyond the end: then at the old next index).
    ///
    /// Errors: `Closed`, `Poisoned`, `Io`.
    pub fn truncate_suffix(&self, from: u64) -> Result<()> {
        let t0 = std::time::Instant::now();
        let r = self.truncate_suffix_at(from);
        self.inner.metrics.finish(RaftOp::Truncate, t0, r)
    }

    fn truncate_suffix_at(&self, from: u64) -> Result<()> {
        self.write(|r| {
            if r.used {
                r.next = r.next.min(from);
            }
            Ok(Op {
                rtype: RecordType::RaftTruncateSuffix,
                payload: raft_format::encode_u64(from),
            })
        })?;
        self.inner.cache.lock().remove_from(from);
        self.inner.metrics.truncated(false);
        Ok(())
    }

    /// Remove every entry with index <= `upto` (compaction after a
    /// snapshot), durably, and delete the WAL segments that no longer hold
    /// anything needed. The first index becomes `upto + 1`, and
    /// [`RaftLog::last_purged`] becomes `(upto, term of entry upto)`; the
    /// term is 0 when entry `upto` is not in the log (`upto` beyond the
    /// last index: use [`RaftLog::truncate_prefix_with_term`] to record
    /// it).
    ///
    /// The purge point never moves backwards: `upto` at or below the last
    /// purged index changes nothing (and keeps that index's term).
    ///
    /// Errors: `InvalidArgument` (`upto` is `u64::MAX`: the first index
    /// would not fit), `Closed`, `Poisoned`, `Io`.
    pub fn truncate_prefix(&self, upto: u64) -> Result<()> {
        let t0 = std::time::Instant::now();
        let r = self.truncate_prefix_at(upto, None);
        self.inner.metrics.finish(RaftOp::Truncate, t0, r)
    }

    /// [`RaftLog::truncate_prefix`] with the term of entry `upto` given by
    /// the caller (a Raft snapshot's last log id), for a purge beyond the
    /// last index, as after installing a snapshot from the leader. When
    /// entry `upto` is in the log, its stored term is recorded and `term`
    /// is ignored.
    ///
    /// Errors: as [`RaftLog::truncate_prefix`].
    pub fn truncate_prefix_with_term(&self, upto: u64, term: u64) -> Result<()> {
        let t0 = std::time::Instant::now();
        let r = self.truncate_prefix_at(upto, Some(term));
        self.inner.metrics.finish(RaftOp::Truncate, t0, r)
    }

    fn truncate_prefix_at(&self, upto: u64, term: Option<u64>) -> Result<()> {
        if upto == u64::MAX {
            return Err(Error::InvalidArgument(
                "truncate_prefix: upto must be below 2^64 - 1 (the first index is upto + 1)".into(),
            ));
        }
        if self.last_purged()?.is_some_and(|(p, _)| p >= upto) {
            return Ok(());
        }
        let term = self.term(upto).ok().or(term).unwrap_or(0);
        self.write(|r| {
            if !r.used || r.next <= upto {
                r.next = upto + 1;
            }
            r.used = true;
            Ok(Op {
                rtype: RecordType::RaftTruncatePrefix,
                payload: encode_truncate_prefix(upto, term),
            })
        })?;
        self.inner.cache.lock().remove_upto(upto);
        self.inner.metrics.truncated(true);
        self.reclaim()
    }

    /// Delete whole segments below the first index (oldest first).
    fn reclaim(&self) -> Result<()> {
        let (first, hard_seg, seg_max) =
            self.read(|s| Ok((s.first, s.hard_seg, s.seg_max.clone())))?;
        let active = self
            .inner
            .core
            .wal
            .lock()
            .segments()
            .last()
            .map(|m| m.id)
            .unwrap_or(0);
        let mut doomed = Vec::new();
        for m in self.inner.core.wal.lock().segments() {
            if m.id == active || seg_max.get(&m.id).is_some_and(|&mx| mx >= first) {
                break;
            }
            doomed.push(m.id);
        }
        if doomed.is_empty() {
            return Ok(());
        }
        // Keep the latest hard state: write it again before its segment goes.
        if doomed.contains(&hard_seg) {
            if let Some(hs) = self.hard_state()? {
                self.save_hard_state(&hs)?;
            }
        }
        let upto_lsn = {
            let w = self.inner.core.wal.lock();
            w.segments()
                .iter()
                .filter(|m| doomed.contains(&m.id))
                .filter_map(|m| m.last_lsn)
                .max()
                .unwrap_or(0)
        };
        // Say durably which records may vanish, so that a log whose oldest
        // records are missing without this word is known to be damaged.
        self.write(|_| {
            Ok(Op {
                rtype: RecordType::RaftReclaim,
                payload: raft_format::encode_u64(upto_lsn + 1),
            })
        })?;
        // Rule: delete only once what replaces it is durable. Under `Os` the
        // truncate-prefix and re-written hard-state records may still be in
        // the page cache; sync them before the old segments go.
        let core = &self.inner.core;
        let removed = core.poison_on_err({
            let mut w = core.wal.lock();
            w.sync().and_then(|()| w.remove_segments_upto(upto_lsn))
        })?;
        self.inner.metrics.reclaimed(removed as u64);
        let live: Vec<u64> = self
            .inner
            .core
            .wal
            .lock()
            .segments()
            .iter()
            .map(|m| m.id)
            .collect();
        let mut s = self.inner.state.write();
        s.files.retain(|id, _| live.contains(id));
        s.seg_max.retain(|id, _| live.contains(id));
        Ok(())
    }

    fn read<R>(&self, f: impl FnOnce(&State) -> Result<R>) -> Result<R> {
        let s = self.inner.state.read();
        if s.closed {
            return Err(Error::Closed);
        }
        f(&s)
    }

    /// Index of the first entry held (after compaction: the index after the
    /// last purged one).
    pub fn first_index(&self) -> Result<u64> {
        self.read(|s| Ok(s.first))
    }

    /// Index of the last entry, or `None` if the log holds no entry.
    pub fn last_index(&self) -> Result<Option<u64>> {
        self.read(|s| Ok(s.last()))
    }

    /// The last index and term removed by `truncate_prefix`, if any.
    pub fn last_purged(&self) -> Result<Option<(u64, u64)>> {
        self.read(|s| Ok(s.purged))
    }

    /// Term of the entry at `index`.
    ///
    /// Errors: `Compacted` (below the first index), `OutOfRange` (beyond
    /// the last), `Closed`.
    pub fn term(&self, index: u64) -> Result<u64> {
        self.read(|s| s.loc(index).map(|l| l.term))
    }

    /// The entry at `index`, from the cache or by a positioned read checked
    /// against its CRC.
    ///
    /// Errors: `Compacted`, `OutOfRange`, `Corruption` (the stored entry
    /// fails its checksum), `Io`, `Closed`.
    pub fn entry(&self, index: u64) -> Result<Entry> {
        if let Some(e) = self.inner.cache.lock().map.get(&index) {
            if self.term(index)? == e.term {
                return Ok((**e).clone());
            }
        }
        let (loc, file) = self.read(|s| {
            let l = s.loc(index)?;
            let f = s.files.get(&l.seg).cloned().ok_or_else(|| {
                Error::corruption(
                    &self.inner.core.dir,
                    None,
                    format!("segment {} of entry {index} is missing", l.seg),
                )
            })?;
            Ok((l, f))
        })?;
        let mut data = vec![0u8; loc.len as usize];
        let path = self.inner.core.dir.join(segment::file_name(loc.seg));
        file.read_exact_at(&mut data, loc.off)
            .map_err(|e| Error::io(&path, e))?;
        if crc32fast::hash(&data) != loc.crc {
            return Err(Error::corruption(
                path,
                Some(loc.off),
                format!("entry {index} fails its checksum"),
            ));
        }
        Ok(Entry {
            index,
            term: loc.term,
            data,
        })
    }

    /// Entries with `lo <= index < hi`, stopping early once `max_bytes` of
    /// data is collected (at least one entry is returned if `lo < hi`).
    ///
    /// Errors: as [`RaftLog::entry`].
    pub fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for i in lo..hi {
            let e = self.entry(i)?;
            bytes += e.data.len() as u64;
            out.push(e);
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// Save a snapshot: `meta` and `data` (streamed from a reader), written
    /// to a temporary file, fsynced, renamed over the previous snapshot, and
    /// the directory fsynced. The SHA-256 of the file is checked on load.
    ///
    /// Errors: `Io` (the previous snapshot stays in place), `Closed`.
    pub fn save_snapshot(&self, meta: &SnapshotMeta, data: &mut dyn std::io::Read) -> Result<()> {
        let t0 = std::time::Instant::now();
        let core = &self.inner.core;
        let r = core
            .check_writable()
            .and_then(|()| snapshot::write(core.fs.as_ref(), &core.dir, meta, data));
        self.inner.metrics.finish(RaftOp::Snapshot, t0, r)
    }

    /// Counters, latency histograms and gauges of this log (see
    /// [`RaftMetrics`]; [`RaftMetrics::to_prometheus`] renders them for
    /// Prometheus). Cheap: atomic loads and one WAL lock to read the
    /// segment list.
    ///
    /// Errors: [`Error::Closed`].
    pub fn metrics(&self) -> Result<RaftMetrics> {
        let (first, last) = self.read(|s| Ok((s.first, s.last().unwrap_or(0))))?;
        let core = &self.inner.core;
        let mut m = self.inner.metrics.snapshot();
        {
            let w = core.wal.lock();
            m.fsyncs = w.fsyncs();
            m.segment_rotations = w.rotations();
            m.wal_segments = w.segments().len() as u64;
            m.wal_disk_bytes = w.segments().iter().map(|s| s.size).sum();
        }
        m.first_index = first;
        m.last_index = last;
        m.recovery_micros = core.recovery.duration_micros;
        m.recovery_records_replayed = core.recovery.records_replayed;
        m.poisoned = core.poison.reason().is_some();
        Ok(m)
    }

    /// The latest snapshot, verified, if any.
    ///
    /// Errors: `Corruption` (the snapshot fails its SHA-256), `Io`, `Closed`.
    pub fn snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>> {
        self.read(|_| Ok(()))?;
        snapshot::read(self.inner.core.fs.as_ref(), &self.inner.core.dir)
    }

    /// Online backup: copy the log into the new directory `dest` while
    /// appends go on. `dest` opens as a Raft log ([`RaftLog::open`]) with
    /// the same entries, hard state, truncations and snapshot as this log
    /// had at one point of its history, after every append, truncation and
    /// hard-state save acknowledged before the call.
    ///
    /// How: under the WAL lock (a pause of a few file opens, reported in
    /// [`crate::BackupInfo::pause_micros`]) the live segments are opened
    /// and the log's end noted; the segments are then copied byte for byte
    /// up to that end (zeros after it), then the snapshot (newer snapshots
    /// only cover more of the log), into a staging directory renamed to
    /// `dest` once everything is `fsync`ed. An interrupted backup never
    /// leaves a silently partial log (see `docs/format.md`, backups).
    ///
    /// Errors: [`Error::InvalidArgument`] (`dest` exists or its parent does
    /// not); [`Error::Corruption`] (the snapshot fails its SHA-256);
    /// [`Error::Closed`]; [`Error::Poisoned`]; [`Error::Io`] (this log is
    /// unaffected).
    ///
    /// Thread safety: may run beside any other call.
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<crate::BackupInfo> {
        let core = &self.inner.core;
        core.check_writable()?;
        let fs = core.fs.as_ref();
        let mut staging = crate::engine::backup::Staging::begin(fs, dest.as_ref())?;
        let t = std::time::Instant::now();
        let (files, (end_id, end_pos), lsn) = {
            let w = core.wal.lock();
            let mut files = Vec::new();
            for m in w.segments() {
                let p = core.dir.join(segment::file_name(m.id));
                let f = fs.open(&p, OpenMode::Read).map_err(|e| Error::io(&p, e))?;
                files.push((m.id, m.size, f));
            }
            (files, w.end(), w.next_lsn() - 1)
        };
        let pause = t.elapsed();
        for (id, size, from) in files {
            let keep = if id == end_id { end_pos } else { size };
            let p = staging.dir.join(segment::file_name(id));
            let to = fs
                .open(&p, OpenMode::CreateNew)
                .map_err(|e| Error::io(&p, e))?;
            let src = core.dir.join(segment::file_name(id));
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0u64;
            while off < size {
                let n = (size - off).min(buf.len() as u64) as usize;
                let chunk = &mut buf[..n];
                let data = (keep.saturating_sub(off) as usize).min(n);
                from.read_exact_at(&mut chunk[..data], off)
                    .map_err(|e| Error::io(&src, e))?;
                chunk[data..].fill(0);
                to.write_all_at(chunk, off).map_err(|e| Error::io(&p, e))?;
                off += n as u64;
            }
            to.sync_all().map_err(|e| Error::io(&p, e))?;
            staging.bytes += size;
        }
        if let Some((meta, data)) = snapshot::read(fs, &core.dir)? {
            snapshot::write(fs, &staging.dir, &meta, &mut &data[..])?;
            staging.bytes += data.len() as u64;
        }
        let bytes = staging.bytes;
        staging.finish()?;
        Ok(crate::BackupInfo {
            lsn,
            bytes,
            pause_micros: pause.as_micros() as u64,
        })
    }

    /// Close: wait for writes in flight, sync, release the directory.
    /// Later calls return `Closed`; closing twice is a no-op.
    ///
    /// Errors: `Poisoned`, `Io`.
    pub fn close(&self) -> Result<()> {
        let core = &self.inner.core;
        if !core.begin_close() {
            return Ok(());
        }
        let r = match core.poison.reason() {
            Some(why) => Err(Error::Poisoned(why)),
            None => core.poison_on_err(core.wal.lock().sync()),
        };
        self.inner.state.write().closed = true;
        core.release();
        r
    }

    /// Testing aid: stop as a killed process would (no sync), releasing the
    /// directory lock.
    /// Only with the `testing` feature.
    #[cfg(feature = "testing")]
    pub fn crash_for_testing(self) {
        self.inner.core.begin_close();
        self.inner.state.write().closed = true;
        self.inner.core.release();
    }
}

impl Drop for RaftLog {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Replay the log's `segments` into a fresh index and check that nothing
/// is missing from its start. With `read_only`, nothing on disk changes (a
/// torn tail is reported in the stats, not truncated).
fn recover(
    fs: &dyn FileSystem,
    dir: &Path,
    segments: &[u64],
    opts: &Options,
    read_only: bool,
) -> Result<(State, crate::wal::replay::ReplayOutcome, RecoveryStats)> {
    let mut stats = RecoveryStats::default();
    let mut st = State {
        first: 1,
        replaying: true,
        salvage: opts.recovery_mode == crate::options::RecoveryMode::TolerateAnyCorruption,
        ..State::default()
    };
    let start = ReplayStart {
        kind: KIND_RAFT,
        applied_lsn: 0,
        db_id: None,
        origin: Origin::Reclaimed,
        must_reach: 0,
        gap_error: None,
        read_only,
    };
    let out = replay(fs, dir, segments, opts, start, &mut stats, |r| {
        st.apply(r.rtype, r.payload, r.segment_id, r.offset, r.file)
    })?;
    // A rewrite that did not commit: the log it would have replaced stands.
    st.shadow = None;
    st.replaying = false;
    stats.records_skipped += st.dropped;
    check_reclaimed(dir, &st, &out, opts, &mut stats)?;
    Ok((st, out, stats))
}

/// What [`inspect`] finds in a Raft log directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    /// Index of the first entry (the next one to append if the log is
    /// empty).
    pub first_index: u64,
    /// Index of the last entry, if the log holds any.
    pub last_index: Option<u64>,
    /// The latest hard state saved, if any.
    pub hard_state: Option<HardState>,
    /// `(index, term)` of the last entry removed by a truncate-prefix.
    pub last_purged: Option<(u64, u64)>,
    /// The snapshot's metadata, if it has one and it verifies.
    pub snapshot: Option<SnapshotMeta>,
    /// Bytes of snapshot data, if a snapshot verifies.
    pub snapshot_bytes: u64,
    /// Why the snapshot fails to load (its SHA-256 or its layout), if it
    /// does. Open does not read the snapshot; [`RaftLog::snapshot`] would
    /// return this `Corruption`.
    pub snapshot_error: Option<String>,
    /// Live WAL segments and their bytes on disk.
    pub segments: u64,
    /// Bytes of the live WAL segments.
    pub wal_bytes: u64,
    /// What an open would find and do (a torn tail it would truncate is
    /// reported here, not truncated).
    pub recovery: RecoveryStats,
}

/// Look at the Raft log in `dir` without changing anything on disk and
/// without its lock: replay it as [`RaftLog::open`] does (same verdict in
/// the default recovery mode; a torn tail is reported, not truncated) and
/// load its snapshot. Used by `keyval DIR stats` and `verify`.
///
/// A writer working in `dir` meanwhile can make a read look damaged or a
/// segment vanish; a caller that does not hold the lock retries on
/// [`Error::Corruption`] and on a vanished file.
///
/// Errors: [`Error::InvalidArgument`] (`dir` holds no Raft log);
/// [`Error::Corruption`] (open would fail: damage before durable records, a
/// deleted segment, an unfinished backup); [`Error::Io`].
pub fn inspect(fs: &dyn FileSystem, dir: &Path) -> Result<Inspection> {
    if engine::log_kind(fs, dir)? != Some(KIND_RAFT) {
        return Err(Error::InvalidArgument(format!(
            "{} holds no Raft log",
            dir.display()
        )));
    }
    let listing = engine::list(fs, dir)?;
    let (st, _, recovery) = recover(fs, dir, &listing.segments, &Options::default(), true)?;
    let mut wal_bytes = 0;
    for id in &listing.segments {
        let p = dir.join(segment::file_name(*id));
        wal_bytes += fs
            .open(&p, OpenMode::Read)
            .and_then(|f| f.len())
            .map_err(|e| Error::io(&p, e))?;
    }
    let (snapshot, snapshot_bytes, snapshot_error) = match snapshot::read(fs, dir) {
        Ok(Some((meta, data))) => (Some(meta), data.len() as u64, None),
        Ok(None) => (None, 0, None),
        Err(Error::Corruption { detail, .. }) => (None, 0, Some(detail)),
        Err(e) => return Err(e),
    };
    Ok(Inspection {
        first_index: st.first,
        last_index: st.last(),
        hard_state: st.hard.clone(),
        last_purged: st.purged,
        snapshot,
        snapshot_bytes,
        snapshot_error,
        segments: listing.segments.len() as u64,
        wal_bytes,
        recovery,
    })
}

/// After replay: were the records missing from the start of the log
/// removed by compaction, or were files deleted?
///
/// - the first entries replayed may lie above the index the log continued
///   at only if a later truncate-prefix removed the entries in between;
/// - the log may begin after LSN 1 only if a reclaim record says the
///   records before it could go (segments written by format version 1,
///   which had no reclaim record, are trusted).
///
/// Errors: `Corruption`, except under `TolerateAnyCorruption`, which counts
/// the loss in `stats.segments_missing`.
fn check_reclaimed(
    dir: &Path,
    st: &State,
    out: &crate::wal::replay::ReplayOutcome,
    opts: &Options,
    stats: &mut RecoveryStats,
) -> Result<()> {
    let mut problem = None;
    if let Some((expected, found)) = st.hole {
        let removed = st.purged.is_some_and(|(upto, _)| upto + 1 >= found);
        if !removed {
            problem = Some(format!(
                "entries {expected}..{found} are missing and no truncate-prefix removed them (a WAL segment was deleted)"
            ));
        }
    }
    if let Some(first) = out.first_lsn {
        if first > 1 && out.oldest_version >= 2 && first > st.reclaimed_below.max(1) {
            problem = Some(format!(
                "the log starts at sequence number {first}, but compaction only reclaimed records below {} (a WAL segment was deleted)",
                st.reclaimed_below.max(1)
            ));
        }
    }
    match problem {
        None => Ok(()),
        Some(_) if opts.recovery_mode == crate::options::RecoveryMode::TolerateAnyCorruption => {
            stats.segments_missing += 1;
            Ok(())
        }
        Some(why) => Err(Error::corruption(dir, None, why)),
    }
}

/// The payload of a `RaftEntries` record for consecutive `entries` (at
/// least one).
fn encode_entries(entries: &[Entry]) -> Vec<u8> {
    let first = entries.first().map_or(0, |e| e.index);
    let list: Vec<(u64, &[u8])> = entries.iter().map(|e| (e.term, &e.data[..])).collect();
    raft_format::encode_entries(first, &list)
}

fn encode_hard_state(hs: &HardState) -> Vec<u8> {
    raft_format::encode_hard_state(hs.term, hs.commit, &hs.vote)
}

impl Inner {
    fn lead(&self, group: Vec<Op>) -> Result<()> {
        let core = &self.core;
        core.poison.check()?;
        self.metrics.group();
        let mut wal = core.wal.lock();
        let records: Vec<(RecordType, &[u8])> =
            group.iter().map(|o| (o.rtype, &o.payload[..])).collect();
        let mut pos = Vec::with_capacity(group.len());
        core.poison_on_err(wal.append(&records, Some(&mut pos)))?;
        let segs: Vec<(u64, u64)> = wal.segments().iter().map(|m| (m.id, m.size)).collect();
        drop(wal);
        let mut s = self.state.write();
        for (id, _) in &segs {
            if !s.files.contains_key(id) {
                let p = core.dir.join(segment::file_name(*id));
                let f = core.poison_on_err(
                    core.fs
                        .open(&p, OpenMode::Read)
                        .map_err(|e| Error::io(&p, e)),
                )?;
                s.files.insert(*id, f);
            }
        }
        for (op, (seg, off)) in group.iter().zip(pos) {
            let file = core.dir.join(segment::file_name(seg));
            core.poison_on_err(s.apply(op.rtype, &op.payload, seg, off, &file))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(lo: u64, hi: u64, len: usize) -> Vec<Entry> {
        (lo..hi)
            .map(|index| Entry {
                index,
                term: 1,
                data: vec![7; len],
            })
            .collect()
    }

    fn check(c: &Cache) {
        let sum: usize = c.map.values().map(|e| Cache::cost(e)).sum();
        assert_eq!(c.bytes, sum, "cache byte count drifted");
    }

    #[test]
    fn cache_counts_bytes_through_truncations_and_eviction() {
        let mut c = Cache::default();
        c.insert(&entries(1, 101, 100));
        check(&c);
        c.remove_upto(40);
        assert_eq!(c.map.keys().next(), Some(&41));
        check(&c);
        c.remove_from(90);
        assert_eq!(c.map.keys().last(), Some(&89));
        check(&c);
        c.insert(&entries(85, 95, 10)); // overwrites 85..89
        check(&c);
        c.remove_upto(u64::MAX);
        assert!(c.map.is_empty());
        check(&c);
        // Eviction keeps the newest entries within the bound.
        c.insert(&entries(1, 3000, 4096));
        check(&c);
        assert!(c.bytes <= CACHE_BYTES);
        assert_eq!(c.map.keys().last(), Some(&2999));
    }
}
