//! WAL segment files: naming, the 4 KiB segment header, and creation of a
//! preallocated, zero-filled segment.
//!
//! Segment header (the first 4096 bytes of every segment file):
//!
//! ```text
//! offset size field
//!  0     8    magic "KVWALSEG"
//!  8     4    format version (2; version-1 segments are still read)
//! 12     4    log kind (1 = key-value store, 2 = Raft log)
//! 16     8    segment id (equals the number in the file name)
//! 24     8    creation time, seconds since the Unix epoch
//! 32     8    preallocated size of the file in bytes
//! 40     8    database id (random, chosen when the database is created)
//! 48     4    crc32 (IEEE) of bytes 0..48
//! 52  4044    zero
//! ```

use crate::error::{Error, Result};
use crate::fs::{FileHandle, FileSystem, OpenMode};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes reserved for the segment header; records start here.
pub const SEGMENT_HEADER_SIZE: u64 = 4096;
/// Magic bytes at offset 0 of a segment.
pub const SEGMENT_MAGIC: &[u8; 8] = b"KVWALSEG";
/// Format version written into new segments. Version 2 added the
/// segment-link record (a segment names its successor) and the Raft reclaim
/// record; version-1 segments, which hold neither, are still read.
pub const SEGMENT_VERSION: u32 = 2;
/// Oldest segment format version this build reads.
pub const MIN_SEGMENT_VERSION: u32 = 1;
/// Log kind of the key-value store's WAL.
pub const KIND_KV: u32 = 1;
/// Log kind of a Raft log.
pub const KIND_RAFT: u32 = 2;

/// File name of segment `id`: 20 decimal digits and `.wal`.
pub fn file_name(id: u64) -> String {
    format!("{id:020}.wal")
}

/// Parse a segment file name back into its id.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Suffix of a segment being prepared (not yet part of the log).
pub const PREP_SUFFIX: &str = ".wal.prep";

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

/// Encode a segment header for a file preallocated to `size` bytes.
pub fn encode_header(kind: u32, id: u64, size: u64, db_id: u64) -> Vec<u8> {
    let mut h = vec![0u8; SEGMENT_HEADER_SIZE as usize];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&kind.to_le_bytes());
    h[16..24].copy_from_slice(&id.to_le_bytes());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    h[24..32].copy_from_slice(&now.to_le_bytes());
    h[32..40].copy_from_slice(&size.to_le_bytes());
    h[40..48].copy_from_slice(&db_id.to_le_bytes());
    let crc = crc32fast::hash(&h[0..48]);
    h[48..52].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The verified fields of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version (1 or 2).
    pub version: u32,
    /// Preallocated size of the file in bytes.
    pub size: u64,
    /// Database id.
    pub db_id: u64,
}

// `parse_header` checks the length first: these reads are in bounds.
fn le_u32(b: &[u8], at: usize) -> u32 {
    crate::format::codec::u32_at(b, at).unwrap_or(0)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    crate::format::codec::u64_at(b, at).unwrap_or(0)
}

/// Verify the header fields at the start of `buf` (at least the first 52
/// bytes of a segment file): magic, checksum, version, log kind and id.
/// Does not look at the file's length; see [`check_size`].
///
/// Errors: [`Error::Corruption`] naming `path` and the offending offset.
pub fn parse_header(path: &Path, buf: &[u8], kind: u32, id: u64) -> Result<SegmentHeader> {
    if buf.len() < 52 {
        return Err(Error::corruption(
            path,
            Some(0),
            format!("segment is {} bytes, shorter than its header", buf.len()),
        ));
    }
    if &buf[0..8] != SEGMENT_MAGIC {
        return Err(Error::corruption(
            path,
            Some(0),
            "bad segment magic (not a KeyVal WAL segment)",
        ));
    }
    if crc32fast::hash(&buf[0..48]) != le_u32(buf, 48) {
        return Err(Error::corruption(
            path,
            Some(48),
            "segment header checksum mismatch",
        ));
    }
    let version = le_u32(buf, 8);
    if !(MIN_SEGMENT_VERSION..=SEGMENT_VERSION).contains(&version) {
        return Err(Error::corruption(
            path,
            Some(8),
            format!("unsupported segment format version {version}"),
        ));
    }
    let k = le_u32(buf, 12);
    if k != kind {
        return Err(Error::corruption(
            path,
            Some(12),
            format!("segment holds log kind {k}, expected {kind}"),
        ));
    }
    let stored = le_u64(buf, 16);
    if stored != id {
        return Err(Error::corruption(
            path,
            Some(16),
            format!("segment header says id {stored}, file name says {id}"),
        ));
    }
    Ok(SegmentHeader {
        version,
        size: le_u64(buf, 32),
        db_id: le_u64(buf, 40),
    })
}

/// Check that a segment file of `len` bytes still has its preallocated
/// size: segments are never shrunk, so a shorter file was truncated by
/// something else, and records may be missing from its end without any
/// trace in the records themselves.
///
/// Errors: [`Error::Corruption`] naming `path` and the file's end.
pub fn check_size(path: &Path, len: u64, h: &SegmentHeader) -> Result<()> {
    if len < h.size.max(SEGMENT_HEADER_SIZE) {
        return Err(Error::corruption(
            path,
            Some(len),
            format!(
                "segment is {len} bytes but was preallocated to {}: the file was truncated",
                h.size
            ),
        ));
    }
    Ok(())
}

/// [`parse_header`] and [`check_size`] on a whole segment file's bytes.
/// Returns the database id stored in the header.
///
/// Errors: [`Error::Corruption`] naming `path` and the offending offset.
pub fn check_header(path: &Path, buf: &[u8], kind: u32, id: u64) -> Result<u64> {
    let h = parse_header(path, buf, kind, id)?;
    check_size(path, buf.len() as u64, &h)?;
    Ok(h.db_id)
}

/// Largest segment file recovery reads when its header cannot be trusted
/// (salvage of a damaged header): a segment is at most `segment_size`
/// bytes, or one record of up to 4 GiB plus the header and a link.
pub fn salvage_read_limit(segment_size: u64) -> u64 {
    segment_size.max(u64::from(u32::MAX)) + 2 * SEGMENT_HEADER_SIZE
}

/// Read segment file `path` for recovery without trusting the file's
/// size: when the header verifies, at most the size the header records
/// (the writer never writes past it; a shorter file is then reported by
/// [`check_size`]); when it does not, only the header, or with
/// `salvage_limit` (salvage mode) at most that many bytes and no more than
/// 1 MiB past the storage the file occupies. Reads go in
/// bounded chunks into a fallibly reserved buffer, so a sparse 100 GiB
/// file costs neither an allocation abort nor a read of 100 GiB.
///
/// Errors: [`Error::Io`] (including a non-regular file or a symbolic link,
/// which [`FileSystem::open`] refuses, and a file too large for memory).
pub fn read_file(
    fs: &dyn FileSystem,
    path: &Path,
    kind: u32,
    id: u64,
    salvage_limit: Option<u64>,
) -> Result<Vec<u8>> {
    let io = |e| Error::io(path, e);
    let file = fs.open(path, OpenMode::Read).map_err(io)?;
    let head = file.read_upto(SEGMENT_HEADER_SIZE).map_err(io)?;
    let limit = match parse_header(path, &head, kind, id) {
        Ok(h) => h.size.max(SEGMENT_HEADER_SIZE),
        // A real segment has no holes before its last record (holes are
        // only in its preallocated tail), so salvage reads no further
        // than the storage the file occupies: a sparse 100 GiB file costs
        // a read of its few real blocks, not of 4 GiB.
        Err(_) => match salvage_limit {
            Some(l) => {
                let used = file.allocated_len().map_err(io)?;
                l.min(used.saturating_add(1 << 20))
            }
            None => return Ok(head),
        },
    };
    file.read_upto(limit).map_err(io)
}

/// A fully written, synced segment file still under its `.prep` name.
#[derive(Debug)]
pub struct Prepared {
    /// Segment id.
    pub id: u64,
    /// Size in bytes (preallocated and zero-filled).
    pub size: u64,
    /// Path of the `.prep` file.
    pub prep_path: PathBuf,
    /// Open handle.
    pub file: Arc<dyn FileHandle>,
}

/// Size in bytes of a store's first segment when `segment_size` is larger:
/// segments start here and double at each rotation up to `segment_size`,
/// so a store holding a few keys takes about 1 MiB of WAL, and open reads
/// that much, instead of a whole `segment_size` of zeros.
pub const FIRST_SEGMENT_SIZE: u64 = 1 << 20;

/// Size of the first segment of a log whose largest is `segment_size`.
pub fn first_size(segment_size: u64) -> u64 {
    segment_size.min(FIRST_SEGMENT_SIZE)
}

/// Size of the segment that follows one of `active` bytes: twice as large,
/// between [`first_size`] and `segment_size` (a segment sized to fit one
/// oversized record does not make its successor larger than
/// `segment_size`).
pub fn next_size(segment_size: u64, active: u64) -> u64 {
    active.saturating_mul(2).clamp(
        first_size(segment_size),
        segment_size.max(first_size(segment_size)),
    )
}

/// Create `<id>.wal.prep` in `dir`: header, zeros up to `size` bytes,
/// fsync. Zero-filling (rather than `fallocate`) makes later overwrites +
/// `fdatasync` cheaper, since no extent metadata changes.
///
/// Errors: [`Error::Io`].
pub fn prepare(
    fs: &dyn FileSystem,
    dir: &Path,
    kind: u32,
    id: u64,
    size: u64,
    db_id: u64,
) -> Result<Prepared> {
    let prep_path = dir.join(format!("{id:020}{PREP_SUFFIX}"));
    let io = |e| Error::io(&prep_path, e);
    let file = fs.open(&prep_path, OpenMode::CreateTruncate).map_err(io)?;
    let filled = (|| {
        file.write_all_at(
            &encode_header(kind, id, size.max(SEGMENT_HEADER_SIZE), db_id),
            0,
        )?;
        let zeros = vec![0u8; 1 << 20];
        let mut off = SEGMENT_HEADER_SIZE;
        while off < size {
            let n = (size - off).min(zeros.len() as u64) as usize;
            file.write_all_at(&zeros[..n], off)?;
            off += n as u64;
        }
        file.sync_all()
    })();
    if let Err(e) = filled {
        // Not part of the log yet: a half-filled file must not stay behind
        // to fill the disk (a full disk is the usual reason for failing).
        drop(file);
        let _ = fs.remove_file(&prep_path);
        return Err(io(e));
    }
    Ok(Prepared {
        id,
        size,
        prep_path,
        file,
    })
}

/// Make a prepared segment part of the log: rename it to `<id>.wal` and
/// fsync the directory, so the new entry is durable before any
/// acknowledgement depends on it.
///
/// Errors: [`Error::Io`].
pub fn install(fs: &dyn FileSystem, dir: &Path, p: &Prepared) -> Result<PathBuf> {
    let path = dir.join(file_name(p.id));
    if let Err(e) = fs.rename(&p.prep_path, &path) {
        let _ = fs.remove_file(&p.prep_path);
        return Err(Error::io(&path, e));
    }
    fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("42.wal"), None);
        assert_eq!(parse_file_name("0000000000000000004x.wal"), None);
    }

    #[test]
    fn header_checks() {
        let p = Path::new("x.wal");
        let h = encode_header(KIND_KV, 9, SEGMENT_HEADER_SIZE, 77);
        assert_eq!(check_header(p, &h, KIND_KV, 9).expect("valid header"), 77);
        assert!(check_header(p, &h, KIND_KV, 8).is_err());
        assert!(check_header(p, &h, 2, 9).is_err());
        let mut bad = h.clone();
        bad[20] ^= 1;
        assert!(check_header(p, &bad, KIND_KV, 9).is_err());
        assert!(check_header(p, &h[..100], KIND_KV, 9).is_err());
        let big = encode_header(KIND_KV, 9, 8192, 77);
        assert!(
            check_header(p, &big, KIND_KV, 9).is_err(),
            "shorter than preallocated"
        );
    }

    #[test]
    fn segment_sizes_double_within_their_bounds() {
        const MIB: u64 = 1 << 20;
        assert_eq!(first_size(64 * MIB), MIB);
        assert_eq!(first_size(64 << 10), 64 << 10);
        assert_eq!(next_size(64 * MIB, MIB), 2 * MIB);
        assert_eq!(next_size(64 * MIB, 32 * MIB), 64 * MIB);
        assert_eq!(next_size(64 * MIB, 64 * MIB), 64 * MIB);
        assert_eq!(next_size(3 * MIB, 2 * MIB), 3 * MIB);
        // After an oversized segment, back to at most segment_size.
        assert_eq!(next_size(64 * MIB, 500 * MIB), 64 * MIB);
        assert_eq!(next_size(64 << 10, 64 << 10), 64 << 10);
        // A segment smaller than the first size (an old store's) grows.
        assert_eq!(next_size(64 * MIB, 64 << 10), MIB);
    }
}
