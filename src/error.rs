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

    /// A transaction's commit found that a key or range it read was
    /// written by another commit after the transaction's snapshot was
    /// taken: committing it would not be serializable. Nothing of the
    /// transaction was written; run it again (`Db::update` does).
    #[error("transaction conflict: {0}")]
    Conflict(String),

    /// A read of a snapshot (or of a transaction, or an iterator) older than
    /// `Options::max_snapshot_age`: the snapshot pins old versions, so the
    /// store refuses to serve it past that age. Take a new one.
    #[error("snapshot expired: {0}")]
    SnapshotExpired(String),

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

    /// What kind of failure this is: its row of the status table
    /// ([`ErrorKind`]), which gives its C status code, name and message.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Io,
            Error::Corruption { .. } => ErrorKind::Corruption,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Locked(_) => ErrorKind::Locked,
            Error::Poisoned(_) => ErrorKind::Poisoned,
            Error::Closed => ErrorKind::Closed,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Compacted { .. } => ErrorKind::Compacted,
            Error::OutOfRange { .. } => ErrorKind::OutOfRange,
            Error::DuplicateKey(_) => ErrorKind::DuplicateKey,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::SnapshotExpired(_) => ErrorKind::SnapshotExpired,
        }
    }

    /// The stable numeric code of this error, equal to its `kv_status`
    /// value in the C ABI ([`ErrorKind::code`]; the table is at
    /// [`STATUSES`]). Codes never change between releases.
    pub fn code(&self) -> i32 {
        self.kind().code()
    }
}

/// One row of the status table: a C status code and what goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The code (`kv_status` value; 0 is success).
    pub code: i32,
    /// Its name in `include/keyval.h` (`KV_IO`, ...).
    pub c_name: &'static str,
    /// Its label in metrics (`errors_total{kind="io"}`) and its snake-case
    /// name in the bindings.
    pub label: &'static str,
    /// What `kv_strerror` says of it.
    pub message: &'static std::ffi::CStr,
    /// The engine error of this code; `None` for the three codes the C
    /// ABI adds (`KV_OK`, `KV_BUFFER_TOO_SMALL`, `KV_PANIC`).
    pub kind: Option<ErrorKind>,
}

/// The status table, written once: [`ErrorKind`], its codes, names and
/// messages, the C ABI's `kv_status` list and `kv_strerror`, and the error
/// labels of the metrics all come from it. (cbindgen reads `kv_status`
/// only as a literal enum in `src/ffi/`; a compile-time check there ties
/// that copy to this table, and a Python test ties `errors.py` to the
/// header.)
macro_rules! status_table {
    (
        engine { $( $(#[$doc:meta])* $kind:ident = $code:literal, $cname:literal, $label:literal, $msg:literal; )* }
        abi { $( $acode:literal, $acname:literal, $alabel:literal, $amsg:literal; )* }
    ) => {
        /// The kind of an [`Error`], one per engine row of the status
        /// table; its discriminant is its C status code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        #[repr(i32)]
        pub enum ErrorKind {
            $( $(#[$doc])* $kind = $code, )*
        }

        impl ErrorKind {
            /// Every kind, in code order.
            pub const ALL: &'static [ErrorKind] = &[ $( ErrorKind::$kind, )* ];

            /// Its C status code (`kv_status`).
            pub const fn code(self) -> i32 {
                self as i32
            }

            /// Its row of [`STATUSES`].
            pub fn status(self) -> &'static Status {
                STATUSES
                    .iter()
                    .find(|s| s.kind == Some(self))
                    .expect("every kind has a row")
            }

            /// Its label in metrics (`io`, `corruption`, ...).
            pub const fn label(self) -> &'static str {
                match self { $( ErrorKind::$kind => $label, )* }
            }
        }

        /// Every status, in code order (see [`Status`]).
        pub const STATUSES: &[Status] = &sorted([
            $( Status { code: $code, c_name: $cname, label: $label, message: $msg, kind: Some(ErrorKind::$kind) }, )*
            $( Status { code: $acode, c_name: $acname, label: $alabel, message: $amsg, kind: None }, )*
        ]);
    };
}

/// `rows` in code order, checking that codes are 0, 1, 2, ... with none
/// missing or repeated (a compile-time check: the table is a `const`).
const fn sorted<const N: usize>(mut rows: [Status; N]) -> [Status; N] {
    let mut i = 0;
    while i < N {
        let mut j = i + 1;
        while j < N {
            if rows[j].code < rows[i].code {
                let t = rows[i];
                rows[i] = rows[j];
                rows[j] = t;
            }
            j += 1;
        }
        assert!(
            rows[i].code == i as i32,
            "status codes must be 0..N, each once"
        );
        i += 1;
    }
    rows
}

status_table! {
    engine {
        /// [`Error::Io`].
        Io = 1, "KV_IO", "io", c"I/O error";
        /// [`Error::Corruption`].
        Corruption = 2, "KV_CORRUPTION", "corruption", c"data corruption detected";
        /// [`Error::InvalidArgument`].
        InvalidArgument = 3, "KV_INVALID_ARGUMENT", "invalid_argument", c"invalid argument";
        /// [`Error::Locked`].
        Locked = 4, "KV_LOCKED", "locked", c"database directory is locked by another handle or process";
        /// [`Error::Poisoned`].
        Poisoned = 5, "KV_POISONED", "poisoned", c"store poisoned by an earlier write failure; close and reopen";
        /// [`Error::Closed`].
        Closed = 6, "KV_CLOSED", "closed", c"database handle is closed";
        /// [`Error::NotFound`].
        NotFound = 7, "KV_NOT_FOUND", "not_found", c"not found";
        /// [`Error::Compacted`].
        Compacted = 10, "KV_COMPACTED", "compacted", c"log index compacted";
        /// [`Error::OutOfRange`].
        OutOfRange = 11, "KV_OUT_OF_RANGE", "out_of_range", c"log index out of range";
        /// [`Error::DuplicateKey`].
        DuplicateKey = 12, "KV_DUPLICATE_KEY", "duplicate_key", c"duplicate key";
        /// [`Error::Conflict`].
        Conflict = 13, "KV_CONFLICT", "conflict", c"transaction conflict: a key or range it read was written since its snapshot";
        /// [`Error::SnapshotExpired`].
        SnapshotExpired = 14, "KV_SNAPSHOT_EXPIRED", "snapshot_expired", c"snapshot older than max_snapshot_age";
    }
    abi {
        0, "KV_OK", "ok", c"ok";
        8, "KV_BUFFER_TOO_SMALL", "buffer_too_small", c"buffer too small";
        9, "KV_PANIC", "panic", c"internal error (panic)";
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
