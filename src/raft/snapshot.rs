//! The Raft log's snapshot file, `raft.snap`:
//!
//! ```text
//! offset size field
//!  0     8    magic "KVRAFTSN"
//!  8     4    format version (1)
//! 12     4    zero
//! 16     8    last included index
//! 24     8    last included term
//! 32     4    configuration length c
//! 36     c    configuration (opaque bytes)
//! 36+c   n    data (opaque bytes, streamed)
//! end-40 8    data length n
//! end-32 32   SHA-256 of every byte before it
//! ```
//!
//! Written to `raft.snap.tmp`, fsynced, renamed over `raft.snap`, and the
//! directory fsynced; the previous snapshot stays valid until the rename is
//! durable.

use crate::engine::atomic_file::AtomicFile;
use crate::error::{Error, Result};
use crate::format::codec::{u32_at, u64_at};
use crate::fs::{FileSystem, OpenMode};
use sha2::{Digest, Sha256};
use std::path::Path;

const MAGIC: &[u8; 8] = b"KVRAFTSN";
pub(crate) const NAME: &str = "raft.snap";
/// The snapshot being written (see [`AtomicFile`]).
const TMP: &str = "raft.snap.tmp";

/// What a snapshot covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot includes.
    pub last_index: u64,
    /// Term of that entry.
    pub last_term: u64,
    /// Cluster configuration (membership) as opaque bytes.
    pub config: Vec<u8>,
}

/// Remove a snapshot that was being written when the process died.
pub(crate) fn remove_leftovers(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    let tmp = dir.join(TMP);
    if fs.exists(&tmp).map_err(|e| Error::io(&tmp, e))? {
        fs.remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
        fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

pub(crate) fn write(
    fs: &dyn FileSystem,
    dir: &Path,
    meta: &SnapshotMeta,
    data: &mut dyn std::io::Read,
) -> Result<()> {
    let mut f = AtomicFile::create(fs, dir, NAME)?;
    let mut head = Vec::with_capacity(36 + meta.config.len());
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&1u32.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.extend_from_slice(&meta.last_index.to_le_bytes());
    head.extend_from_slice(&meta.last_term.to_le_bytes());
    head.extend_from_slice(&(meta.config.len() as u32).to_le_bytes());
    head.extend_from_slice(&meta.config);
    f.write(&head)?;
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let got = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(g) => g,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(dir.join(NAME), e)),
        };
        f.write(&buf[..got])?;
        n += got as u64;
    }
    f.write(&n.to_le_bytes())?;
    f.commit().map(|_| ())
}

pub(crate) fn read(fs: &dyn FileSystem, dir: &Path) -> Result<Option<(SnapshotMeta, Vec<u8>)>> {
    let p = dir.join(NAME);
    if !fs.exists(&p).map_err(|e| Error::io(&p, e))? {
        return Ok(None);
    }
    let b = fs
        .open(&p, OpenMode::Read)
        .and_then(|f| f.read_all())
        .map_err(|e| Error::io(&p, e))?;
    let bad = |off: usize, why: &str| Error::corruption(&p, Some(off as u64), why.to_string());
    if b.len() < 36 + 40 || &b[0..8] != MAGIC {
        return Err(bad(0, "not a KeyVal Raft snapshot"));
    }
    let body = b.len() - 32;
    if Sha256::digest(&b[..body]).as_slice() != &b[body..] {
        return Err(bad(body, "Raft snapshot SHA-256 mismatch"));
    }
    let le64 = |at: usize| u64_at(&b, at).unwrap_or(0);
    let cl = u32_at(&b, 32).unwrap_or(0) as usize;
    let data_len = le64(body - 8) as usize;
    if 36 + cl + data_len + 8 != body {
        return Err(bad(32, "Raft snapshot lengths do not add up"));
    }
    let meta = SnapshotMeta {
        last_index: le64(16),
        last_term: le64(24),
        config: b[36..36 + cl].to_vec(),
    };
    Ok(Some((meta, b[36 + cl..36 + cl + data_len].to_vec())))
}
