//! The WAL writer: appends framed records to the active segment, rotates to
//! a preallocated spare segment when it is full (each segment twice the size
//! of the one before, from [`segment::FIRST_SEGMENT_SIZE`] up to the
//! store's `segment_size`), and syncs according to the durability level. It is not itself thread-safe; the group-commit queue
//! (`super::commit`) serialises access to it.

use super::segment::{self, Prepared, SEGMENT_HEADER_SIZE};
use crate::error::{Error, Result};
use crate::format::record::{self, Owner, RecordType};
use crate::fs::{FileHandle, FileSystem};
use crate::options::Durability;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Bytes the `Buffered` level collects in process before handing them to
/// the OS.
pub const BUFFER_FLUSH_BYTES: usize = 1 << 20;

/// Capacity the record buffer may keep after a flush; a larger one (grown
/// by a large batch) is released.
const BUFFER_KEEP_BYTES: usize = 2 << 20;

/// What the writer knows about one live segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    /// Segment id.
    pub id: u64,
    /// LSN of its first record, if it has one.
    pub first_lsn: Option<u64>,
    /// LSN of its last record, if it has one.
    pub last_lsn: Option<u64>,
    /// File size in bytes.
    pub size: u64,
}

#[derive(Debug)]
struct Active {
    id: u64,
    path: PathBuf,
    /// `None` once the store is closed ([`WalWriter::close_files`]).
    file: Option<Arc<dyn FileHandle>>,
    size: u64,
    /// Offset where the next record goes (buffered bytes included).
    pos: u64,
}

/// How far the log's bytes have reached the file, published for readers
/// of separated values (`crate::vlog`) without the writer's lock: bytes
/// of segments before `segment` are all in their files, and so are the
/// bytes of `segment` before `flushed`; later ones may still be in the
/// writer's buffer ([`WalWriter::read_unflushed`]).
#[derive(Debug, Default)]
pub struct Tail {
    segment: AtomicU64,
    flushed: AtomicU64,
}

impl Tail {
    /// Whether the `len` bytes at `offset` of segment `segment` are
    /// certainly in the file. A `false` is answered under the writer's
    /// lock by [`WalWriter::read_unflushed`].
    pub fn in_file(&self, segment: u64, offset: u64, len: u64) -> bool {
        let s = self.segment.load(Ordering::Acquire);
        segment < s || (segment == s && offset + len <= self.flushed.load(Ordering::Acquire))
    }
}

/// Appends records to the WAL. See the module docs.
#[derive(Debug)]
pub struct WalWriter {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    kind: u32,
    segment_size: u64,
    durability: Durability,
    active: Active,
    segments: Vec<SegmentMeta>,
    next_lsn: u64,
    synced_lsn: u64,
    buf: Vec<u8>,
    buf_pos: u64,
    spare: Option<JoinHandle<Result<Prepared>>>,
    fsyncs: u64,
    rotations: u64,
    db_id: u64,
    tail: Arc<Tail>,
}

/// Where recovery left the log, to resume writing.
#[derive(Debug)]
pub struct ResumePoint {
    /// Live segments in id order; the last one becomes the active segment.
    pub segments: Vec<SegmentMeta>,
    /// Open handle of the last segment.
    pub file: Arc<dyn FileHandle>,
    /// Offset in the last segment where the next record goes.
    pub pos: u64,
    /// LSN the next record gets.
    pub next_lsn: u64,
    /// The database's random id (seeds record checksums).
    pub db_id: u64,
}

impl WalWriter {
    /// Resume writing at `resume`. Everything up to `resume.next_lsn - 1`
    /// must already be durable (recovery syncs the last segment first).
    pub fn new(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        kind: u32,
        segment_size: u64,
        durability: Durability,
        resume: ResumePoint,
    ) -> Result<WalWriter> {
        let last = resume.segments.last().ok_or_else(|| {
            Error::InvalidArgument("WAL writer needs at least one segment".into())
        })?;
        let active = Active {
            id: last.id,
            path: dir.join(segment::file_name(last.id)),
            file: Some(resume.file),
            size: last.size,
            pos: resume.pos,
        };
        let tail = Arc::new(Tail {
            segment: AtomicU64::new(active.id),
            flushed: AtomicU64::new(active.pos),
        });
        Ok(WalWriter {
            tail,
            fs,
            dir: dir.to_path_buf(),
            kind,
            segment_size,
            durability,
            buf_pos: active.pos,
            active,
            segments: resume.segments,
            next_lsn: resume.next_lsn,
            synced_lsn: resume.next_lsn - 1,
            buf: Vec::with_capacity(64 << 10),
            spare: None,
            fsyncs: 0,
            rotations: 0,
            db_id: resume.db_id,
        })
    }

    /// How far bytes have reached the file (see [`Tail`]).
    pub fn tail(&self) -> Arc<Tail> {
        Arc::clone(&self.tail)
    }

    /// A copy of the `len` bytes at `offset` of segment `segment` if they
    /// are still in the in-process buffer (`Buffered` durability), or
    /// `None` if they are in the file.
    pub fn read_unflushed(&self, segment: u64, offset: u64, len: usize) -> Option<Vec<u8>> {
        if segment != self.active.id || offset < self.buf_pos {
            return None;
        }
        let at = (offset - self.buf_pos) as usize;
        self.buf.get(at..at.checked_add(len)?).map(<[u8]>::to_vec)
    }

    /// LSN the next record will get.
    pub fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// Highest LSN known durable.
    pub fn synced_lsn(&self) -> u64 {
        self.synced_lsn
    }

    /// Number of segment rotations so far.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Number of fdatasync calls on segments so far.
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs
    }

    /// The active segment's id and the offset where its next record goes
    /// (bytes still buffered under `Buffered` included).
    pub fn end(&self) -> (u64, u64) {
        (self.active.id, self.active.pos)
    }

    /// Live segments, oldest first.
    pub fn segments(&self) -> &[SegmentMeta] {
        &self.segments
    }

    /// Append `records` as consecutive LSNs and bring them to the durability
    /// level. Returns the LSN of the first record. If `positions` is given,
    /// the (segment id, header offset) of each record is pushed to it.
    ///
    /// Errors: [`Error::Io`] (the caller must poison the store: the records
    /// may be partly on disk). [`Error::InvalidArgument`] if a payload is
    /// larger than 4 GiB - 1.
    pub fn append(
        &mut self,
        records: &[(RecordType, &[u8])],
        positions: Option<&mut Vec<(u64, u64)>>,
    ) -> Result<u64> {
        self.append_at(records, positions, self.durability)
    }

    /// [`WalWriter::append`] at `durability` instead of the writer's
    /// default. Because records reach the file in LSN order, a `Sync`
    /// append also makes every earlier record durable, and an `Os` append
    /// hands every earlier buffered record to the OS.
    pub fn append_at(
        &mut self,
        records: &[(RecordType, &[u8])],
        mut positions: Option<&mut Vec<(u64, u64)>>,
        durability: Durability,
    ) -> Result<u64> {
        let first = self.next_lsn;
        for (rtype, payload) in records {
            if payload.len() > u32::MAX as usize - 64 {
                return Err(Error::InvalidArgument(format!(
                    "record of {} bytes is too large",
                    payload.len()
                )));
            }
            let need = record::encoded_len(payload.len()) as u64;
            // Room for this record and, after it, the link to the successor.
            if self.active.pos + need + record::LINK_RECORD_LEN > self.active.size {
                self.rotate(need)?;
            }
            let lsn = self.next_lsn;
            if let Some(p) = positions.as_mut() {
                p.push((self.active.id, self.active.pos));
            }

            let owner = Owner {
                db_id: self.db_id,
                segment_id: self.active.id,
            };
            record::encode(&mut self.buf, owner, *rtype, lsn, self.synced_lsn, payload);
            self.active.pos += need;
            self.next_lsn += 1;
            if let Some(meta) = self.segments.last_mut() {
                meta.first_lsn.get_or_insert(lsn);
                meta.last_lsn = Some(lsn);
            }
        }
        match durability {
            Durability::Buffered => {
                if self.buf.len() >= BUFFER_FLUSH_BYTES {
                    self.flush_buf()?;
                }
            }
            Durability::Os => self.flush_buf()?,
            Durability::Sync => self.sync()?,
        }
        self.maybe_prepare_spare();
        Ok(first)
    }

    fn flush_buf(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.active
            .file()?
            .write_all_at(&self.buf, self.buf_pos)
            .map_err(|e| Error::io(&self.active.path, e))?;
        self.buf_pos += self.buf.len() as u64;
        self.tail.flushed.store(self.buf_pos, Ordering::Release);
        self.buf.clear();
        // A large batch grows the buffer to its size; do not keep that
        // memory for the store's lifetime (a 100,000-pair batch of the
        // benchmark's pairs held about 19 MB here until close).
        if self.buf.capacity() > BUFFER_KEEP_BYTES {
            self.buf = Vec::with_capacity(64 << 10);
        }
        Ok(())
    }

    /// Hand buffered records to the OS and `fdatasync` the active segment,
    /// so that every record appended so far is durable. Never retried: on
    /// error the caller poisons the store.
    pub fn sync(&mut self) -> Result<()> {
        self.flush_buf()?;
        if self.synced_lsn + 1 == self.next_lsn {
            return Ok(());
        }
        self.active
            .file()?
            .sync_data()
            .map_err(|e| Error::io(&self.active.path, e))?;
        self.fsyncs += 1;
        self.synced_lsn = self.next_lsn - 1;
        Ok(())
    }

    /// Start preparing the next segment in the background once the active
    /// one is half full, so rotation rarely waits for zero-filling.
    fn maybe_prepare_spare(&mut self) {
        if self.spare.is_some() || self.active.pos < self.active.size / 2 {
            return;
        }
        let fs = Arc::clone(&self.fs);
        let dir = self.dir.clone();
        let size = segment::next_size(self.segment_size, self.active.size);
        let (kind, id, db) = (self.kind, self.active.id + 1, self.db_id);
        let background = fs.background_threads();
        let h = std::thread::spawn(move || segment::prepare(fs.as_ref(), &dir, kind, id, size, db));
        if !background {
            // Deterministic simulation: the preparation's file-system
            // calls happen now, before the caller's next one.
            while !h.is_finished() {
                std::thread::yield_now();
            }
        }
        self.spare = Some(h);
    }

    /// Move the log to a new segment that can hold at least `need` bytes of
    /// records. The order makes a deleted segment detectable and keeps
    /// every crash point recoverable:
    ///
    /// 1. the active segment is flushed and `fdatasync`ed, so everything in
    ///    it is durable before any other file is touched;
    /// 2. the new segment is installed (renamed, directory fsynced);
    /// 3. a [`RecordType::SegmentLink`] record naming it is appended to the
    ///    old segment, which is `fdatasync`ed again;
    /// 4. only then does anything get written to the new segment.
    ///
    /// A link never names a segment that a crash could have lost. A crash
    /// before step 4 leaves an empty, unlinked newest segment, which
    /// recovery removes (writing resumes in the old one, behind any torn
    /// link record it zeroes).
    fn rotate(&mut self, need: u64) -> Result<()> {
        self.sync()?;
        let id = self.active.id + 1;
        let want = (need + SEGMENT_HEADER_SIZE + record::LINK_RECORD_LEN)
            .max(segment::next_size(self.segment_size, self.active.size));
        let spare = match self.spare.take() {
            Some(h) => Some(h.join().map_err(|_| {
                Error::io(
                    &self.dir,
                    std::io::Error::other("the segment preparation thread panicked"),
                )
            })??),
            None => None,
        };
        let prepared = match spare {
            Some(p) if p.size >= want => p,
            other => {
                if let Some(p) = other {
                    let _ = self.fs.remove_file(&p.prep_path);
                }
                let size = (want + 4095) & !4095;
                segment::prepare(self.fs.as_ref(), &self.dir, self.kind, id, size, self.db_id)?
            }
        };
        let path = segment::install(self.fs.as_ref(), &self.dir, &prepared)?;
        self.rotations += 1;
        let lsn = self.next_lsn;
        let owner = Owner {
            db_id: self.db_id,
            segment_id: self.active.id,
        };
        record::encode(
            &mut self.buf,
            owner,
            RecordType::SegmentLink,
            lsn,
            self.synced_lsn,
            &id.to_le_bytes(),
        );
        self.active.pos += record::LINK_RECORD_LEN;
        self.next_lsn += 1;
        if let Some(meta) = self.segments.last_mut() {
            meta.first_lsn.get_or_insert(lsn);
            meta.last_lsn = Some(lsn);
        }
        self.sync()?;
        self.active = Active {
            id,
            path,
            file: Some(prepared.file),
            size: prepared.size,
            pos: SEGMENT_HEADER_SIZE,
        };
        self.buf_pos = SEGMENT_HEADER_SIZE;
        // (No pointer into the new segment exists before these are
        // published: its records are applied after this returns.)
        self.tail.segment.store(id, Ordering::Release);
        self.tail
            .flushed
            .store(SEGMENT_HEADER_SIZE, Ordering::Release);
        self.segments.push(SegmentMeta {
            id,
            first_lsn: None,
            last_lsn: None,
            size: prepared.size,
        });
        Ok(())
    }

    /// Move the log to a new segment now (in the rotation order of
    /// `rotate`), so that the records appended next are in a segment of
    /// their own. Returns the LSN of the last record before them.
    ///
    /// Errors: [`Error::Io`].
    pub fn rotate_now(&mut self) -> Result<u64> {
        self.rotate(0)?;
        Ok(self.next_lsn - 1)
    }

    /// The id of the segment records are appended to now.
    pub fn active_id(&self) -> u64 {
        self.active.id
    }

    /// Delete every non-active segment whose records all have LSN <=
    /// `upto`, then fsync the directory. Returns how many were deleted.
    ///
    /// Errors: [`Error::Io`].
    pub fn remove_segments_upto(&mut self, upto: u64) -> Result<usize> {
        self.remove_segments(|s| s.last_lsn.is_none_or(|l| l <= upto))
            .map(|d| d.len())
    }

    /// Delete every non-active segment `doomed` says yes to, then fsync
    /// the directory. Returns the ids deleted.
    ///
    /// Errors: [`Error::Io`].
    pub fn remove_segments(&mut self, doomed: impl Fn(&SegmentMeta) -> bool) -> Result<Vec<u64>> {
        let active = self.active.id;
        let doomed: Vec<u64> = self
            .segments
            .iter()
            .filter(|s| s.id != active && doomed(s))
            .map(|s| s.id)
            .collect();
        if doomed.is_empty() {
            return Ok(doomed);
        }
        for id in &doomed {
            let p = self.dir.join(segment::file_name(*id));
            self.fs.remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        self.segments.retain(|s| !doomed.contains(&s.id));
        Ok(doomed)
    }

    /// Close the store's files: the active segment's handle and a spare
    /// being prepared (deleted; it is not part of the log). Called when
    /// the store closes, so that handles that outlive it (keyspaces,
    /// iterators) hold no file open; appends and syncs afterwards fail
    /// with `Closed`.
    pub fn close_files(&mut self) {
        self.discard_spare();
        self.active.file = None;
    }

    /// Wait for a spare being prepared and delete it (it is not part of
    /// the log). Flushing/syncing is up to the caller.
    pub fn discard_spare(&mut self) {
        if let Some(h) = self.spare.take() {
            if let Ok(Ok(p)) = h.join() {
                let _ = self.fs.remove_file(&p.prep_path);
            }
        }
    }
}

impl Active {
    /// The open segment file. Errors: `Closed` after [`WalWriter::close_files`].
    fn file(&self) -> Result<&Arc<dyn FileHandle>> {
        self.file.as_ref().ok_or(Error::Closed)
    }
}

impl Drop for WalWriter {
    fn drop(&mut self) {
        self.discard_spare();
    }
}
