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
// Parts of the engine serve only the C ABI or the internals door; the
// dead-code lint means something on the full build, which `make lint` runs
// (`--all-features`).
#![cfg_attr(not(all(feature = "internals", feature = "capi")), allow(dead_code))]

// Layers, lowest first; each module imports only from layers below it
// (checked by `make layers`, scripts/layers.py; see docs/design.md):
// error, fs, options -> format -> wal -> engine -> index -> kv -> raft ->
// documents -> tools -> internals, ffi.
//
// The public surface is what this file re-exports, plus the `fs`, `raft`
// and `metrics` modules. What the `keyval` CLI, the tests, the benchmarks
// and the fuzz targets need from inside the engine goes through one door,
// `internals` (feature `internals`), which is not part of the API and may
// change in any release. The C ABI (`ffi`) is compiled only with the
// `capi` feature, which the C library build turns on.
mod documents;
mod engine;
mod error;
#[cfg(feature = "capi")]
mod ffi;
mod format;
pub mod fs;
mod index;
#[cfg(feature = "internals")]
pub mod internals;
mod kv;
mod options;
pub mod raft;
mod tools;
mod vlog;
mod wal;

pub use documents::limits::{
    check_document, check_field_path, MAX_DEPTH, MAX_IN_VALUES, MAX_PATH_BYTES, MAX_PATH_SEGMENTS,
    MAX_UPDATE_PATHS,
};
pub use documents::{
    check_filter, Collection, CollectionStats, FindOptions, IndexInfo, Page, Plan, SortOrder,
    MAX_COLLECTION_NAME, MAX_INDEX_PATH,
};
pub use engine::backup::BackupInfo;
pub use engine::metrics;
pub use error::{Error, ErrorKind, Result, Status, STATUSES};
pub use index::KeyspaceStats;
pub use kv::batch::WriteBatch;
pub use kv::keyspace::{Keyspace, MAX_KEYSPACE_NAME};
pub use kv::reclaim::{ReclaimInfo, RECLAIM_LIVE_FRACTION, SPACE_CAP};
pub use kv::{Db, Iter, Snapshot, Stats, Transaction, UPDATE_MAX_ATTEMPTS};
pub use metrics::Metrics;
pub use options::{
    Durability, IntoRaftOptions, Options, RaftOptions, RecoveryMode, WriteOptions,
    MAX_KEY_SIZE_LIMIT, MAX_VALUE_SIZE_LIMIT, MIN_SEGMENT_SIZE,
};
pub use wal::replay::{RecoveryStats, Truncation};
