//! The segmented write-ahead log.
//!
//! - record framing (header, checksum, padding): [`crate::format::record`].
//! - [`segment`]: segment files, their header, preallocation.
//! - [`reader`]: scanning a segment and classifying damage.
//! - [`writer`]: appending, rotation, syncing.
//! - [`commit`]: group commit across concurrent writers.
//! - [`replay`]: recovery of a log on open (shared by every log kind).
//!
//! The byte layout is documented in `docs/format.md`.

pub mod commit;
pub mod reader;

pub mod replay;
pub mod segment;
pub mod writer;
