//! # KeyVal
//!
//! A durable embedded storage engine: an ordered key-value store ([`Db`])
//! on a segmented, checksummed write-ahead log with group commit,
//! SHA-256-checked snapshots and crash recovery.
//!
//! ```no_run
//! use keyval::{Db, Options, WriteBatch};
//! let db = Db::open("/tmp/my-db", Options::default())?;
//! db.set(b"hello", b"world")?;            // durable when it returns
//! assert_eq!(db.get(b"hello")?.as_deref(), Some(&b"world"[..]));
//! let mut batch = WriteBatch::new();
//! batch.put(b"a", b"1").delete(b"hello");
//! db.write(batch)?;                        // all or nothing, also across a crash
//! for pair in db.prefix(b"a") {
//!     let (k, v) = pair?;
//!     println!("{:?} = {:?}", k, v);
//! }
//! db.close()?;
//! # Ok::<(), keyval::Error>(())
//! ```
//!
//! ## Guarantees
//!
//! - A write acknowledged under [`Durability::Sync`] (the default) has been
//!   `fdatasync`ed and survives power loss.
//! - Damage is reported, never silently skipped: see [`RecoveryMode`].
//! - After any write or fsync failure the store is poisoned
//!   ([`Error::Poisoned`]) until it is reopened.
//!
//! The on-disk format is described byte by byte in `docs/format.md`.

#![warn(missing_docs)]

// The public surface is what this file re-exports, plus the `raft` and
// `metrics` modules. Modules marked `#[doc(hidden)]` are public only so
// that the `keyval` CLI, the tests, the benchmarks and the fuzz targets can
// reach engine internals; they are not part of the API and may change in
// any release.
mod atomic_file;
#[doc(hidden)]
pub mod backup;
#[doc(hidden)]
pub mod batch;
mod codec;
mod db;
mod docs;
mod error;
#[doc(hidden)]
pub mod ffi;
#[doc(hidden)]
pub mod fs;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
mod keyspace;
mod memtable;
pub mod metrics;
mod options;
mod poison;
pub mod raft;
mod recovery;
#[doc(hidden)]
pub mod snapshot;
#[doc(hidden)]
pub mod store;
#[doc(hidden)]
pub mod verify;
#[doc(hidden)]
pub mod wal;

pub use backup::BackupInfo;
pub use batch::WriteBatch;
pub use db::{Db, Iter, Stats};
pub use docs::limits::{
    check_document, check_field_path, MAX_DEPTH, MAX_IN_VALUES, MAX_PATH_BYTES, MAX_PATH_SEGMENTS,
    MAX_UPDATE_PATHS,
};
pub use docs::{
    check_filter, Collection, CollectionStats, FindOptions, IndexInfo, Page, Plan, SortOrder,
    MAX_COLLECTION_NAME, MAX_INDEX_PATH,
};
pub use error::{Error, Result};
pub use keyspace::{Keyspace, KeyspaceStats, MAX_KEYSPACE_NAME};
pub use metrics::Metrics;
pub use options::{
    Durability, Options, RecoveryMode, WriteOptions, MAX_KEY_SIZE_LIMIT, MAX_VALUE_SIZE_LIMIT,
    MIN_SEGMENT_SIZE,
};
pub use wal::replay::{RecoveryStats, Truncation};
