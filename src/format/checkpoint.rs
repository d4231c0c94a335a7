//! Checkpoint files (named `snap-<lsn>.kvs` for compatibility): a point-in-time copy of every live pair, covering the
//! WAL up to one LSN. See `docs/format.md`.
//!
//! ```text
//! offset size field
//!  0     8    magic "KVSNAPSH"
//!  8     4    format version (1, 2 or 3)
//! 12     4    kind (1 = key-value store)
//! 16     8    LSN covered: every WAL record with LSN <= this is included
//! 24     8    entry count of the default keyspace
//! 32     8    creation time, seconds since the Unix epoch
//! 40     8    database id (as in the WAL segment headers)
//! 48     ...  the default keyspace's entries in strictly increasing key
//!             order, each: u32 key length, u32 value length, key, value
//! version 2 only:
//!        8    entry count of the named keyspaces' table
//!        ...  its entries, same layout and order rule (keys are a 4-byte
//!             big-endian keyspace id then the user's key; id 0 is the
//!             keyspace catalog, see `crate::index`)
//! end-32 32   SHA-256 of every byte before it
//! ```
//!
//! Version 3 (a key directory: separated values stay in the WAL
//! segments) has, right after the header, `u32 n` and the `n` ids (u64,
//! strictly increasing) of the segments its pointers point into; then
//! both sections as in version 2, except that an entry whose value
//! length field has its top bit set (`0x8000_0018`) holds, after the key,
//! the 24-byte value pointer (segment id u64, file offset u64, length
//! u32, CRC-32 u32) instead of the value.
//!
//! A store that never created a keyspace and holds no separated value
//! writes version 1, byte for byte what releases before keyspaces wrote;
//! all three versions are read.
//!
//! This module holds the layout and the file names; `kv::checkpoint`
//! writes and reads the files.

/// Magic bytes at offset 0.
pub const MAGIC: &[u8; 8] = b"KVSNAPSH";
/// Newest format version (written when a named keyspace holds data).
pub const VERSION: u32 = 2;
/// Version written when only the default keyspace has entries.
pub const VERSION_DEFAULT_ONLY: u32 = 1;
/// Version written when a separated value exists (a key directory).
pub const VERSION_KEY_DIRECTORY: u32 = 3;
/// Top bit of an entry's value length field in version 3: the value is
/// separated, and a 24-byte pointer follows the key.
pub const SEPARATED: u32 = 1 << 31;
/// Header size in bytes.
pub const HEADER_SIZE: usize = 48;
/// Kind of a key-value store snapshot.
pub const KIND_KV: u32 = 1;

/// Suffix of a checkpoint file still being written.
pub use super::TMP_SUFFIX;

/// File name of the snapshot covering `lsn`.
pub fn file_name(lsn: u64) -> String {
    format!("snap-{lsn:020}.kvs")
}

/// Parse a snapshot file name back into its LSN.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("snap-")?.strip_suffix(".kvs")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
