//! Every on-disk byte layout, as pure encode and decode functions with no
//! I/O: the WAL record frame ([`record`]), the `KvBatch` payload
//! ([`batch`]), the Raft record payloads ([`raft`]), the checkpoint file
//! ([`checkpoint`]) and the little-endian readers they share ([`codec`]).
//! The segment header lives with the segment files in `wal::segment`.
//! `docs/format.md` describes the same bytes in prose; the two must agree.

pub mod batch;
pub mod checkpoint;
pub mod codec;

pub mod raft;
pub mod record;
pub mod value;

/// Suffix of a file still being written under a temporary name (a
/// checkpoint, a Raft snapshot or hard-state file): it is renamed to its
/// final name only once durable, and a leftover is deleted at open.
pub const TMP_SUFFIX: &str = ".tmp";
