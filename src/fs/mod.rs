//! The file-system layer: every file operation the engine performs goes
//! through the [`FileSystem`] and [`FileHandle`] traits.
//!
//! [`RealFs`] is the default and maps each call straight onto one system
//! call. Tests substitute a simulated file system that models what survives
//! a power cut (durable image vs. pending writes, directory entries that
//! become durable only on a directory fsync) and injects I/O errors.
//!
//! This module and `src/ffi/` are the only places allowed to use `unsafe`.

mod real;
#[cfg(feature = "testing")]
pub mod sim;

pub use real::RealFs;
#[cfg(feature = "testing")]
pub use sim::{CrashMode, Rng, SimFs};

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// How [`FileSystem::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Existing file, read-only.
    Read,
    /// Existing file, read and write.
    ReadWrite,
    /// Create a new file for read and write; fails with `AlreadyExists` if
    /// it exists. The new directory entry is durable only after
    /// [`FileSystem::sync_dir`] on its parent.
    CreateNew,
    /// Create the file, or truncate it to zero length if it exists.
    CreateTruncate,
}

/// An open file. All I/O is positioned (`pread`/`pwrite` style), so a
/// handle can be shared between threads without a cursor.
#[allow(clippy::len_without_is_empty)]
pub trait FileHandle: Send + Sync + fmt::Debug {
    /// Read up to `buf.len()` bytes at `offset`; returns the count read
    /// (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Write all of `buf` at `offset`. Not durable until a sync.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`: make the file's data (and the metadata needed to read
    /// it back, such as its size) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// `fsync`: make the file's data and all its metadata durable.
    fn sync_all(&self) -> io::Result<()>;
    /// Truncate or extend the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Current size in bytes (a hint only: never trusted by recovery).
    fn len(&self) -> io::Result<u64>;

    /// Bytes of storage the file occupies (for a sparse file, less than
    /// [`FileHandle::len`]: holes take none). Default: `len()`.
    fn allocated_len(&self) -> io::Result<u64> {
        self.len()
    }

    /// Read exactly `buf.len()` bytes at `offset`, or fail with
    /// `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Start writing back the dirty pages of `offset..offset + len` to the
    /// device, and with `wait` also wait until that range has been written
    /// back (`sync_file_range` on Linux). Not a durability barrier: no
    /// device cache flush, no metadata; `sync_data`/`sync_all` still make
    /// the file durable. Used to pace large writes so that they do not pile
    /// up dirty pages and then flood the device queue in front of the WAL's
    /// `fdatasync`. Default: nothing.
    fn write_back(&self, _offset: u64, _len: u64, _wait: bool) -> io::Result<()> {
        Ok(())
    }

    /// Hint that `offset..offset + len` will be read soon, so the OS may
    /// start reading it from the device now (`posix_fadvise(WILLNEED)` on
    /// Linux): a range read over separated values announces the next
    /// values before it reads the first, so their reads overlap. Only a
    /// hint. Default: nothing.
    fn will_need_range(&self, _offset: u64, _len: u64) {}

    /// Hint that this handle's reads will be at random offsets, so the OS
    /// should not read ahead around them (`posix_fadvise(POSIX_FADV_RANDOM)`
    /// on Linux): a separated value is one read of its own bytes. Only a
    /// hint. Default: nothing.
    fn advise_random(&self) {}

    /// Read the whole file, from offset 0 to the end as seen now; the same
    /// as [`FileHandle::read_upto`] with no limit.
    fn read_all(&self) -> io::Result<Vec<u8>> {
        self.read_upto(u64::MAX)
    }

    /// Read the file from offset 0, at most `max` bytes, in 1 MiB chunks.
    /// The buffer is sized from the file's current length (capped at
    /// `max`) with a fallible reservation, so a huge or sparse file gives
    /// an `OutOfMemory` error instead of aborting the process; reading
    /// stops at `max` bytes even if the file grows meanwhile.
    fn read_upto(&self, max: u64) -> io::Result<Vec<u8>> {
        let want = self.len().unwrap_or(0).min(max);
        let mut out = Vec::new();
        let cap = usize::try_from(want).unwrap_or(usize::MAX);
        out.try_reserve_exact(cap).map_err(|_| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("a file of {want} bytes does not fit in memory"),
            )
        })?;
        let mut chunk = vec![0u8; 1 << 20];
        let mut offset = 0u64;
        while offset < max {
            let n = (max - offset).min(chunk.len() as u64) as usize;
            match self.read_at(&mut chunk[..n], offset) {
                Ok(0) => break,
                Ok(n) => {
                    out.try_reserve(n).map_err(|_| {
                        io::Error::new(io::ErrorKind::OutOfMemory, "a file grew beyond memory")
                    })?;
                    out.extend_from_slice(&chunk[..n]);
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// A held directory lock; dropping it releases the lock.
pub trait DirLock: Send + Sync + fmt::Debug {}

/// The file-system operations the engine needs.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Create `dir` and its missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Whether `path` exists and is a directory. `Ok(false)` if it does not
    /// exist; `Err(NotADirectory)`-like errors are reported as `Ok(false)`
    /// only when the path is missing.
    fn is_dir(&self, path: &Path) -> io::Result<bool>;
    /// Whether anything (file, directory, other) exists at `path`.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Open a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>>;
    /// Atomically rename `from` to `to`, replacing `to`. Durable only after
    /// [`FileSystem::sync_dir`].
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Remove a file. Durable only after [`FileSystem::sync_dir`].
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// `fsync` the directory itself, making creates, renames and removes in
    /// it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of `dir` (files only, no `.`/`..`), unsorted.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Take an exclusive advisory lock on the file at `path` (creating it).
    /// Fails with `WouldBlock` if another handle holds it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>>;

    /// Hint that `path` will be read front to back soon, so the OS may start
    /// reading it in the background (`posix_fadvise(POSIX_FADV_WILLNEED)`
    /// on Linux). Recovery calls it for the next WAL segment while it
    /// decodes the current one, so reading overlaps decoding. Only a hint:
    /// failures are ignored. Default: nothing.
    fn will_need(&self, _path: &Path) {}

    /// Create the one directory `dir`, failing with `AlreadyExists` if
    /// anything (a directory, a file, a symbolic link) is there: an
    /// exclusive `mkdir`, so a directory the engine then writes into is
    /// one it made. Default: the same check, then
    /// [`FileSystem::create_dir_all`].
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        if self.exists(dir)? {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        self.create_dir_all(dir)
    }

    /// Whether `path` itself (not what a symbolic link there points to) is
    /// a directory owned by the effective user: one the engine may clear
    /// as its own leftover. Default: [`FileSystem::is_dir`] (a simulated
    /// file system has no links or owners).
    fn is_own_dir(&self, path: &Path) -> io::Result<bool> {
        self.is_dir(path)
    }

    /// Remove the empty directory `dir` (`rmdir`). Default: `Unsupported`.
    fn remove_dir(&self, _dir: &Path) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Whether the engine may do work in background threads on this file
    /// system (preparing the next WAL segment, automatic checkpoints). A
    /// deterministic simulation answers `false`, and the engine then waits
    /// for that work in the calling thread, so the order of file-system
    /// calls depends only on the caller's. Default: `true`.
    fn background_threads(&self) -> bool {
        true
    }
}

/// The default file system.
pub fn default_fs() -> Arc<dyn FileSystem> {
    Arc::new(RealFs)
}
