//! The value log: reading separated values where the WAL wrote them.
//!
//! A value of at least [`crate::Options::value_separation_threshold`]
//! bytes is not copied into the index: the index holds a
//! [`ValuePtr`] (segment, file offset, length, CRC-32) to the value's
//! bytes inside the `KvBatch` record that wrote it (Bitcask's and
//! WiscKey's idea, on KeyVal's own log). [`ValueLog::read`] fetches one
//! value with one positioned read and verifies its CRC; a bounded cache
//! ([`crate::Options::memory_budget`] bytes, `quick_cache`'s CLOCK-Pro
//! variant, weighted by value length) keeps the values read most.
//!
//! The reader keeps one read-only handle per segment, opened on first
//! use. [`ValueLog::forget`] drops the handle once reclaim has deleted the
//! segment; a read that had already taken the handle still succeeds (the
//! file's data lives until its last handle closes).
//!
//! Thread safety: every method takes `&self`; the handle map is behind a
//! read-write lock and the cache is a concurrent one.

use crate::error::{Error, Result};
use crate::format::value::ValuePtr;
use crate::fs::{FileHandle, FileSystem, OpenMode};
use crate::wal::segment;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A value read from the log (shared with the cache).
pub type Bytes = Arc<[u8]>;

/// Cache weight of a value: its bytes plus the cache's own bookkeeping per
/// entry (key, `Arc` header, slot), about 64 bytes.
#[derive(Clone, Copy)]
struct Weigh;

impl quick_cache::Weighter<(u64, u64), Bytes> for Weigh {
    fn weight(&self, _k: &(u64, u64), v: &Bytes) -> u64 {
        v.len() as u64 + 64
    }
}

/// Counters of [`ValueLog`] (see [`crate::Stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValueLogStats {
    /// Reads of a separated value answered by the cache.
    pub cache_hits: u64,
    /// Reads of a separated value that read the file.
    pub cache_misses: u64,
    /// Bytes the cache holds now (values plus 64 bytes each).
    pub cache_bytes: u64,
    /// Positioned reads of segment files for separated values.
    pub device_reads: u64,
    /// Bytes those reads returned.
    pub device_read_bytes: u64,
}

/// See the module docs.
pub struct ValueLog {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    files: RwLock<HashMap<u64, Arc<dyn FileHandle>>>,
    cache: Option<quick_cache::sync::Cache<(u64, u64), Bytes, Weigh>>,
    hits: AtomicU64,
    misses: AtomicU64,
    reads: AtomicU64,
    read_bytes: AtomicU64,
}

impl std::fmt::Debug for ValueLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValueLog({})", self.dir.display())
    }
}

impl ValueLog {
    /// A reader of the segments in `dir` with a cache of `cache_bytes`
    /// (0: no cache).
    pub fn new(fs: Arc<dyn FileSystem>, dir: &Path, cache_bytes: u64) -> ValueLog {
        let cache = (cache_bytes > 0).then(|| {
            // Capacity hint: values of about 4 KiB.
            let items = (cache_bytes / 4096).clamp(16, 1 << 24) as usize;
            quick_cache::sync::Cache::with_weighter(items, cache_bytes, Weigh)
        });
        ValueLog {
            fs,
            dir: dir.to_path_buf(),
            files: RwLock::new(HashMap::new()),
            cache,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
        }
    }

    /// The value `p` points at, verified against its CRC: from the cache,
    /// or with one positioned read of its segment.
    ///
    /// Errors: [`Error::Corruption`] naming the segment file and the
    /// value's offset when the segment is missing, too short or the bytes
    /// do not match the CRC (the disk lied, or a kept segment was
    /// deleted); [`Error::Io`] when the OS refuses the read.
    pub fn read(&self, p: &ValuePtr) -> Result<Bytes> {
        let key = (p.segment, p.offset);
        if let Some(c) = &self.cache {
            if let Some(v) = c.get(&key) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(v);
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let v: Bytes = self.read_file(p)?.into();
        if let Some(c) = &self.cache {
            c.insert(key, Arc::clone(&v));
        }
        Ok(v)
    }

    /// Announce that `p` will be read soon, unless the cache holds it: the
    /// OS starts reading it (see [`FileHandle::will_need_range`]).
    pub fn prefetch(&self, p: &ValuePtr) {
        if self
            .cache
            .as_ref()
            .is_some_and(|c| c.contains_key(&(p.segment, p.offset)))
        {
            return;
        }
        let path = self.dir.join(segment::file_name(p.segment));
        if let Ok(f) = self.file(p.segment, &path) {
            f.will_need_range(p.offset, u64::from(p.len));
        }
    }

    /// Read and verify `p` from its file, bypassing the cache.
    ///
    /// Errors: as [`ValueLog::read`].
    pub fn read_file(&self, p: &ValuePtr) -> Result<Vec<u8>> {
        let path = self.dir.join(segment::file_name(p.segment));
        let file = self.file(p.segment, &path)?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        let v = read_verified(file.as_ref(), &path, p)?;
        self.read_bytes
            .fetch_add(u64::from(p.len), Ordering::Relaxed);
        Ok(v)
    }

    /// The read handle of segment `id`, opened on first use.
    fn file(&self, id: u64, path: &Path) -> Result<Arc<dyn FileHandle>> {
        if let Some(f) = self.files.read().get(&id) {
            return Ok(Arc::clone(f));
        }
        let f = open_segment(self.fs.as_ref(), path, id)?;
        f.advise_random();
        Ok(Arc::clone(self.files.write().entry(id).or_insert(f)))
    }

    /// Open segment `id` now and keep its handle, so that its values stay
    /// readable even if another process deletes the file later (a
    /// read-only handle beside a writer that reclaims).
    ///
    /// Errors: as [`ValueLog::read`] for a missing segment.
    pub fn hold(&self, id: u64) -> Result<()> {
        let path = self.dir.join(segment::file_name(id));
        self.file(id, &path).map(|_| ())
    }

    /// Drop the handle of segment `id` (after reclaim deleted it; its
    /// cached values are never asked for again and age out).
    pub fn forget(&self, id: u64) {
        self.files.write().remove(&id);
    }

    /// Drop every handle and cached value (the store closed).
    pub fn close(&self) {
        self.files.write().clear();
        if let Some(c) = &self.cache {
            c.clear();
        }
    }

    /// The counters.
    pub fn stats(&self) -> ValueLogStats {
        ValueLogStats {
            cache_hits: self.hits.load(Ordering::Relaxed),
            cache_misses: self.misses.load(Ordering::Relaxed),
            cache_bytes: self.cache.as_ref().map_or(0, |c| c.weight()),
            device_reads: self.reads.load(Ordering::Relaxed),
            device_read_bytes: self.read_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Open segment `id` at `path` for reading separated values.
///
/// Errors: [`Error::Corruption`] if it is missing (a segment the index
/// points into was deleted), [`Error::Io`].
pub fn open_segment(fs: &dyn FileSystem, path: &Path, id: u64) -> Result<Arc<dyn FileHandle>> {
    match fs.open(path, OpenMode::Read) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::corruption(
            path,
            None,
            format!("segment {id} holds live values and is missing"),
        )),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Read the value `p` points at from `file` (segment `p.segment` at
/// `path`) and check its CRC.
///
/// Errors: [`Error::Corruption`] naming `path` and the value's offset if
/// the file ends first or the CRC differs; [`Error::Io`].
pub fn read_verified(file: &dyn FileHandle, path: &Path, p: &ValuePtr) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(p.len as usize).map_err(|_| {
        Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!("a value of {} bytes does not fit in memory", p.len),
            ),
        )
    })?;
    buf.resize(p.len as usize, 0);
    match file.read_exact_at(&mut buf, p.offset) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(Error::corruption(
                path,
                Some(p.offset),
                format!(
                    "segment {} ends before the {}-byte separated value at offset {}",
                    p.segment, p.len, p.offset
                ),
            ))
        }
        Err(e) => return Err(Error::io(path, e)),
    }
    if crc32fast::hash(&buf) != p.crc {
        return Err(Error::corruption(
            path,
            Some(p.offset),
            format!(
                "separated value CRC mismatch: {} bytes at offset {} of segment {}",
                p.len, p.offset, p.segment
            ),
        ));
    }
    Ok(buf)
}
