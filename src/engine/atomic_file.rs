//! Files that appear whole or not at all, for both snapshot kinds: written
//! under `<name>.tmp`, hashed with SHA-256 as they are written, the digest
//! appended, `fsync`ed, renamed to `<name>`, and the directory `fsync`ed.
//! This is the durability rule for new files (temp file, fsync, rename,
//! fsync directory): a name is never visible before all its bytes are
//! durable, and the rename is durable before anything relies on it.
//!
//! A file dropped before [`AtomicFile::commit`] returns removes its
//! temporary file (best effort; the next open deletes what is left), so a
//! failed checkpoint does not leave a snapshot-sized file behind.

use crate::error::{Error, Result};
use crate::fs::{FileHandle, FileSystem, OpenMode};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Suffix of a file still being written.
pub use crate::format::TMP_SUFFIX;

/// Bytes collected before one write to the file.
const BUF_BYTES: usize = 1 << 20;

/// Write-back pacing step: after each `PACE_BYTES` written, the kernel is
/// asked to write that step back, and the step before it is waited for.
/// So a snapshot never has more than about two steps dirty or in flight,
/// and a WAL `fdatasync` issued meanwhile queues behind at most that much
/// of it, instead of behind hundreds of megabytes of dirty pages flushed
/// at once by the final `fsync` or by the kernel's background write-back
/// (the idea of RocksDB's `bytes_per_sync`).
const PACE_BYTES: u64 = 8 << 20;

/// A file being written; see the module docs. Not thread-safe (one writer).
pub(crate) struct AtomicFile<'a> {
    fs: &'a dyn FileSystem,
    dir: &'a Path,
    tmp: PathBuf,
    fin: PathBuf,
    file: Arc<dyn FileHandle>,
    off: u64,
    buf: Vec<u8>,
    hasher: Sha256,
    committed: bool,
    /// Bytes already handed to write-back (a multiple of `PACE_BYTES`).
    paced: u64,
}

impl<'a> AtomicFile<'a> {
    /// Create (or truncate) `dir/<name>.tmp`.
    ///
    /// Errors: [`Error::Io`].
    pub(crate) fn create(fs: &'a dyn FileSystem, dir: &'a Path, name: &str) -> Result<Self> {
        let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
        let file = fs
            .open(&tmp, OpenMode::CreateTruncate)
            .map_err(|e| Error::io(&tmp, e))?;
        Ok(AtomicFile {
            fs,
            dir,
            fin: dir.join(name),
            tmp,
            file,
            off: 0,
            buf: Vec::with_capacity(BUF_BYTES),
            hasher: Sha256::new(),
            committed: false,
            paced: 0,
        })
    }

    /// Append `b` (buffered; hashed).
    ///
    /// Errors: [`Error::Io`] naming the temporary file.
    pub(crate) fn write(&mut self, b: &[u8]) -> Result<()> {
        self.hasher.update(b);
        self.buf.extend_from_slice(b);
        if self.buf.len() >= BUF_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.file
            .write_all_at(&self.buf, self.off)
            .map_err(|e| Error::io(&self.tmp, e))?;
        self.off += self.buf.len() as u64;
        self.buf.clear();
        if self.off - self.paced >= PACE_BYTES {
            // Errors only cost the pacing: durability comes from commit's
            // fsync, which reports any write-back failure.
            if self.paced >= PACE_BYTES {
                let _ = self
                    .file
                    .write_back(self.paced - PACE_BYTES, PACE_BYTES, true);
            }
            let _ = self
                .file
                .write_back(self.paced, self.off - self.paced, false);
            self.paced = self.off;
        }
        Ok(())
    }

    /// Append the 32-byte SHA-256 of every byte written, `fsync` the file,
    /// rename it to its final name and `fsync` the directory. Returns the
    /// final path and the file's size in bytes.
    ///
    /// Errors: [`Error::Io`]; the final name then still refers to the
    /// previous file, if there was one.
    pub(crate) fn commit(mut self) -> Result<(PathBuf, u64)> {
        let digest = self.hasher.clone().finalize();
        self.buf.extend_from_slice(&digest);
        self.flush()?;
        self.file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        self.fs
            .rename(&self.tmp, &self.fin)
            .map_err(|e| Error::io(&self.fin, e))?;
        self.committed = true;
        self.fs
            .sync_dir(self.dir)
            .map_err(|e| Error::io(self.dir, e))?;
        Ok((self.fin.clone(), self.off))
    }
}

impl Drop for AtomicFile<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.fs.remove_file(&self.tmp);
        }
    }
}
