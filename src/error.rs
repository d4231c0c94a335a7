//! The one error type of KeyVal.
//!
//! Every variant maps 1:1 onto a C status code (`kv_status` in
//! `include/keyval.h`); see [`Error::code`]. The C ABI adds only the codes
//! that are not errors of the engine itself (`KV_OK`,
//! `KV_BUFFER_TOO_SMALL`, `KV_PANIC`). `KV_NOT_FOUND` is also what a C get
//! returns for an absent key, where Rust returns `Ok(None)`.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in KeyVal.
///
/// Thread safety: `Error` is `Send + Sync + 'static` and cheap to clone
/// (the OS error is kept as its kind and message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed (open, read, write, fsync,
    /// rename, ...). `path` names the file or directory involved when known,
    /// `errno` is the raw OS error number when there is one.
    ///
    /// A failed write or fsync also poisons the store: see [`Error::Poisoned`].
    #[error("I/O error{}: {message}", path_suffix(.path))]
    Io {
        /// File or directory the call was about, if known.
        path: Option<PathBuf>,
        /// Raw OS error number (`errno`), if the OS reported one.
        errno: Option<i32>,
        /// Human-readable description, including the OS message.
        message: String,
    },

    /// Stored data failed verification: a bad checksum in front of valid
    /// records, a damaged older segment, a snapshot whose SHA-256 does not
    /// match with no older snapshot to fall back on, a gap in the sequence
    /// numbers, an unknown format version.
    ///
    /// Nothing is modified on disk when this is returned from `open`.
    #[error("corruption in {}{}: {detail}", .file.display(), offset_suffix(*.offset))]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage inside `file`, when it is known.
        offset: Option<u64>,
        /// What is wrong.
        detail: String,
    },

    /// The caller passed something unusable: an empty or oversized key, an
    /// oversized value, invalid options, a path that is not a directory, a
    /// non-contiguous Raft append, ...
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Another handle, in this process or another, holds the directory's
    /// `LOCK` file.
    #[error("database directory {} is locked by another handle or process", .0.display())]
    Locked(PathBuf),

    /// An earlier write or fsync failed, so the store refuses all further
    /// writes: the state of the unsynced pages is unknown (fsyncgate). Reads
    /// of data that was durable before the failure still work. Close and
    /// reopen to recover from what is on disk. The string is the original
    /// failure.
    #[error("store is poisoned by an earlier write failure, close and reopen it: {0}")]
    Poisoned(String),

    /// The handle was closed.
    #[error("the database handle is closed")]
    Closed,

    /// The thing addressed does not exist: a dropped or never created
    /// keyspace, a missing collection or index, a document id that
    /// `update` or `replace` (without upsert) needs. (An absent key in a
    /// get is not an error: `Ok(None)`.)
    #[error("not found: {0}")]
    NotFound(String),

    /// A unique constraint was violated: a document `_id` that already
    /// exists, or a value already present in a unique index.
    #[error("duplicate key: {0}")]
    DuplicateKey(String),

    /// A Raft log read asked for an index below the first retained index:
    /// that part of the log was compacted by `truncate_prefix`.
    #[error("log index {index} is compacted (first retained index is {first})")]
    Compacted {
        /// Requested index.
        index: u64,
        /// First index still stored.
        first: u64,
    },

    /// A Raft log read asked for an index above the last stored index.
    #[error("log index {index} is beyond the end of the log (last index is {last})")]
    OutOfRange {
        /// Requested index.
        index: u64,
        /// Last index stored (0 when the log is empty).
        last: u64,
    },
}

fn path_suffix(p: &Option<PathBuf>) -> String {
    match p {
        Some(p) => format!(" on {}", p.display()),
        None => String::new(),
    }
}

fn offset_suffix(o: Option<u64>) -> String {
    match o {
        Some(o) => format!(" at offset {o}"),
        None => String::new(),
    }
}

impl Error {
    /// Wrap an OS error, naming the path it concerns.
    pub fn io(path: impl Into<PathBuf>, err: io::Error) -> Self {
        Error::Io {
            path: Some(path.into()),
            errno: err.raw_os_error(),
            message: err.to_string(),
        }
    }

    /// Build a [`Error::Corruption`].
    pub fn corruption(
        file: impl Into<PathBuf>,
        offset: Option<u64>,
        detail: impl Into<String>,
    ) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            detail: detail.into(),
        }
    }

    /// The stable numeric code of this error, equal to its `kv_status`
    /// value in the C ABI. Codes never change between releases.
    ///
    /// | code | variant |
    /// |---|---|
    /// | 1 | `Io` |
    /// | 2 | `Corruption` |
    /// | 3 | `InvalidArgument` |
    /// | 4 | `Locked` |
    /// | 5 | `Poisoned` |
    /// | 6 | `Closed` |
    /// | 7 | `NotFound` |
    /// | 10 | `Compacted` |
    /// | 11 | `OutOfRange` |
    /// | 12 | `DuplicateKey` |
    pub fn code(&self) -> i32 {
        match self {
            Error::Io { .. } => 1,
            Error::Corruption { .. } => 2,
            Error::InvalidArgument(_) => 3,
            Error::Locked(_) => 4,
            Error::Poisoned(_) => 5,
            Error::Closed => 6,
            Error::NotFound(_) => 7,
            Error::Compacted { .. } => 10,
            Error::OutOfRange { .. } => 11,
            Error::DuplicateKey(_) => 12,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Io {
            path: None,
            errno: err.raw_os_error(),
            message: err.to_string(),
        }
    }
}
