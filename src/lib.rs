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

mod atomic_file;
pub mod backup;
pub mod batch;
mod codec;
pub mod db;
pub mod docs;
pub mod error;
pub mod ffi;
pub mod fs;
pub mod fuzzing;
pub mod keyspace;
pub mod memtable;
pub mod metrics;
pub mod options;
mod poison;
pub mod raft;
pub mod recovery;
pub mod snapshot;
pub mod store;
pub mod verify;
pub mod wal;

pub use backup::BackupInfo;
pub use batch::WriteBatch;
pub use db::{Db, Iter, Stats};
pub use docs::{Collection, CollectionStats, FindOptions, IndexInfo, Page, Plan, SortOrder};
pub use error::{Error, Result};
pub use keyspace::{Keyspace, KeyspaceStats};
pub use metrics::Metrics;
pub use options::{Durability, Options, RecoveryMode, WriteOptions};
pub use wal::replay::{RecoveryStats, Truncation};
