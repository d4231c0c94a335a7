//! The one door to engine internals, for the `keyval` CLI, this crate's
//! tests, the benchmarks and the fuzz targets (feature `internals`; the
//! `testing` feature turns it on). Nothing here is part of the API: it may
//! change in any release.

/// On-disk layouts: WAL records, batch payloads, checkpoint files.
pub mod format {
    pub use crate::format::{batch, checkpoint, codec, raft, record, TMP_SUFFIX};
}

/// The write-ahead log: segment files, the reader, replay.
pub mod wal {
    pub use crate::format::record;
    pub use crate::wal::{commit, reader, replay, segment, writer};
}

/// The directory every store kind shares: listing, log kind, lock file,
/// backup staging.
pub mod engine {
    pub use crate::engine::backup;
    pub use crate::engine::{list, log_kind, DirListing, LOCK_FILE};
}

pub use crate::engine::backup;
pub use crate::format::batch;
pub use crate::kv::checkpoint;
pub use crate::tools::verify;

/// The operations tools: verify and dump.
pub mod tools {
    pub use crate::tools::{dump, verify};
}

#[cfg(feature = "testing")]
pub mod fuzzing;
