//! Tuning knobs for [`crate::Db::open`].

use crate::error::{Error, Result};

/// When a write is acknowledged (when `set`, `delete` or a batch commit
/// returns `Ok`).
///
/// Whatever the level, a write becomes visible to readers only once it has
/// reached that level, and writes are applied in WAL order.
///
/// The levels are ordered `Buffered < Os < Sync`: a later level promises
/// everything an earlier one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(C)]
pub enum Durability {
    /// Acknowledged once the record is in an in-process buffer (flushed to
    /// the OS when it reaches 1 MiB, on [`crate::Db::sync`], on checkpoint
    /// and on close). A process crash loses what is still in the buffer.
    Buffered = 0,
    /// Acknowledged once the record has been handed to the OS with
    /// `pwrite`. Survives a crash of the process, not a power cut or kernel
    /// crash.
    Os = 1,
    /// Acknowledged only after `fdatasync` of the record's bytes returned
    /// OK. Survives power loss. Concurrent writers share one `fdatasync`
    /// (group commit). The default.
    Sync = 2,
}

/// Options for one write: [`crate::Keyspace::set_opt`], [`crate::Keyspace::delete_opt`],
/// [`crate::Db::write_opt`] and the same on [`crate::Keyspace`]. Start from
/// [`WriteOptions::default`] (everything as the store was opened); more
/// fields may be added, so build it with the methods.
///
/// Per-write durability follows redb's `set_durability`, RocksDB's
/// `WriteOptions::sync` and fjall's `PersistMode`. How it meets group
/// commit: concurrent writes are queued and written together by one leader
/// in queue (= LSN) order; the group is brought to the strongest level any
/// member asked for, so a write may be made more durable than it asked,
/// never less. Because the WAL is one ordered file sequence, a write
/// acknowledged at [`Durability::Sync`] also makes every earlier write
/// durable, whatever level those asked for; one at [`Durability::Os`]
/// hands every earlier buffered write to the OS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct WriteOptions {
    /// The durability level of this write; `None` (the default) is the
    /// level the store was opened with ([`Options::durability`]).
    pub durability: Option<Durability>,
}

impl WriteOptions {
    /// Options that acknowledge the write at `durability`.
    pub const fn with_durability(durability: Durability) -> WriteOptions {
        WriteOptions {
            durability: Some(durability),
        }
    }
}

/// How recovery treats damaged WAL records on open. The names follow tikv
/// raft-engine's recovery modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub enum RecoveryMode {
    /// Any damage, even a torn tail left by a crash, is an
    /// [`Error::Corruption`]. For users who would rather inspect by hand.
    AbsoluteConsistency = 0,
    /// The default. A torn or zeroed tail of the last segment (damage with
    /// no record after it that was durable before the damage) is truncated
    /// and reported in [`crate::Stats`]. Any other damage is an
    /// [`Error::Corruption`] naming the file and offset.
    TolerateTailCorruption = 1,
    /// Salvage: keep every record that verifies, skip the damaged bytes, and
    /// report what was skipped in [`crate::Stats`]. Acknowledged data may be
    /// missing afterwards; use it to rescue what is left.
    TolerateAnyCorruption = 2,
}

/// Options for [`crate::Db::open`]. Start from [`Options::default`] and
/// change what you need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// When writes are acknowledged. Default [`Durability::Sync`].
    pub durability: Durability,
    /// Largest size in bytes of a preallocated WAL segment file. Default
    /// 64 MiB. Minimum 64 KiB. A new store's first segment is 1 MiB (or
    /// this, if smaller), and each next one twice the size of the last, up
    /// to this, so a small store stays small. A record larger than a
    /// segment gets a segment of its own, sized to fit.
    pub segment_size: u64,
    /// WAL bytes written since the newest snapshot after which an automatic
    /// checkpoint starts in the background. Default 256 MiB. `0` disables
    /// automatic checkpoints.
    pub max_wal_size: u64,
    /// How many snapshots to keep (at least 1). Default 2. WAL segments are
    /// kept back to the oldest kept snapshot, so that a newest snapshot that
    /// fails its SHA-256 check can fall back to the older one plus the WAL.
    pub keep_snapshots: u32,
    /// How damage found by recovery is treated. Default
    /// [`RecoveryMode::TolerateTailCorruption`].
    pub recovery_mode: RecoveryMode,
    /// Largest accepted key, in bytes. Default 64 KiB; at most 16 MiB.
    pub max_key_size: u32,
    /// Largest accepted value, in bytes. Default 64 MiB; at most 1 GiB.
    pub max_value_size: u32,
    /// Create the directory if it is missing. Default `true`.
    pub create_if_missing: bool,
    /// Also checkpoint in the background this long after the previous
    /// checkpoint (automatic, time-based or by [`crate::Db::checkpoint`])
    /// if anything was written since, as go-db's storage engine does every
    /// 30 seconds. It bounds the WAL that recovery replays by time as
    /// [`Options::max_wal_size`] bounds it by size. Default `None`
    /// (size-based only). At least 10 ms.
    pub checkpoint_interval: Option<std::time::Duration>,
    /// Reads of a snapshot, transaction or iterator older than this fail
    /// with [`crate::Error::SnapshotExpired`]: a snapshot pins the versions
    /// it can see, so one that is forgotten (a leaked reader) would
    /// otherwise hold memory without bound, as LMDB users meet it. Default
    /// `None` (no limit). At least 1 ms.
    pub max_snapshot_age: Option<std::time::Duration>,
    /// Open for reading only: no directory lock is taken (a writer may have
    /// the store open, and may open it later), and nothing on disk is
    /// changed: no torn tail is truncated, no file is created, preallocated,
    /// synced or removed, no checkpoint is written. The store shows what
    /// was durable when it was opened (a consistent prefix of the write
    /// history) and does not follow later writes. Writes, checkpoints and
    /// keyspace changes fail with [`Error::InvalidArgument`]. Opening
    /// retries a few times when a writer rotates or checkpoints under it;
    /// if that keeps happening, open fails with [`Error::Io`] (a vanished
    /// file, `ENOENT`) and can simply be retried. [`crate::raft::RaftLog::open`]
    /// refuses it with [`Error::InvalidArgument`]. Default `false`.
    pub read_only: bool,
    /// Values of at least this many bytes stay where the WAL wrote them:
    /// the index holds the key and a 24-byte pointer (segment, offset,
    /// length, CRC-32), and a read of the value is one positioned read of
    /// its segment (or a hit in the value cache, see
    /// [`Options::memory_budget`]). Smaller values are held in memory as
    /// before. `None` keeps every value in memory (the store must then fit
    /// in RAM). Default `Some(1024)`; at least 64 (a pointer must be
    /// smaller than the value it replaces). See docs/design.md, "Values
    /// in the log".
    pub value_separation_threshold: Option<u32>,
    /// Bytes of separated values kept in memory by the value cache (each
    /// counted with 64 bytes of bookkeeping). The index itself (every key,
    /// inline values, pointers and about 84 bytes per entry) is not part
    /// of it: see [`crate::Stats::memory_bytes`]. Default 256 MiB; 0
    /// disables the cache (every read of a separated value reads the
    /// file, through the OS page cache).
    pub memory_budget: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Sync,
            segment_size: 64 << 20,
            max_wal_size: 256 << 20,
            keep_snapshots: 2,
            recovery_mode: RecoveryMode::TolerateTailCorruption,
            max_key_size: 64 << 10,
            max_value_size: 64 << 20,
            create_if_missing: true,
            checkpoint_interval: None,
            max_snapshot_age: None,
            read_only: false,
            value_separation_threshold: Some(1024),
            memory_budget: 256 << 20,
        }
    }
}

/// Smallest accepted [`Options::segment_size`].
pub const MIN_SEGMENT_SIZE: u64 = 64 << 10;
/// Largest accepted [`Options::max_key_size`].
pub const MAX_KEY_SIZE_LIMIT: u32 = 16 << 20;
/// Smallest accepted [`Options::value_separation_threshold`].
pub const MIN_SEPARATION_THRESHOLD: u32 = 64;
/// Largest accepted [`Options::max_value_size`].
pub const MAX_VALUE_SIZE_LIMIT: u32 = 1 << 30;

impl Options {
    /// Check that the options are usable.
    ///
    /// Errors: [`Error::InvalidArgument`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.segment_size < MIN_SEGMENT_SIZE || self.segment_size > (1 << 40) {
            return Err(Error::InvalidArgument(format!(
                "segment_size {} must be between {} and 2^40 bytes",
                self.segment_size, MIN_SEGMENT_SIZE
            )));
        }
        if self.keep_snapshots == 0 {
            return Err(Error::InvalidArgument(
                "keep_snapshots must be at least 1".into(),
            ));
        }
        if self.max_key_size == 0 || self.max_key_size > MAX_KEY_SIZE_LIMIT {
            return Err(Error::InvalidArgument(format!(
                "max_key_size {} must be between 1 and {MAX_KEY_SIZE_LIMIT}",
                self.max_key_size
            )));
        }
        if self
            .checkpoint_interval
            .is_some_and(|d| d < std::time::Duration::from_millis(10))
        {
            return Err(Error::InvalidArgument(
                "checkpoint_interval must be at least 10 ms".into(),
            ));
        }
        if self
            .max_snapshot_age
            .is_some_and(|d| d < std::time::Duration::from_millis(1))
        {
            return Err(Error::InvalidArgument(
                "max_snapshot_age must be at least 1 ms".into(),
            ));
        }
        if self
            .value_separation_threshold
            .is_some_and(|t| t < MIN_SEPARATION_THRESHOLD)
        {
            return Err(Error::InvalidArgument(format!(
                "value_separation_threshold must be at least {MIN_SEPARATION_THRESHOLD} bytes"
            )));
        }
        if self.max_value_size > MAX_VALUE_SIZE_LIMIT {
            return Err(Error::InvalidArgument(format!(
                "max_value_size {} must be at most {MAX_VALUE_SIZE_LIMIT}",
                self.max_value_size
            )));
        }
        Ok(())
    }
}

/// Options for [`crate::raft::RaftLog::open`]: only what a Raft log uses
/// (it has no checkpoints, keys or values of its own). Start from
/// [`RaftOptions::default`]. An [`Options`] converts too (see
/// [`IntoRaftOptions`]), keeping its four fields that apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftOptions {
    /// `Sync` (default) or `Os`; `Buffered` is refused: Raft relies on an
    /// acknowledged append or vote being on disk.
    pub durability: Durability,
    /// Preallocated size of a WAL segment file, in bytes (as
    /// [`Options::segment_size`]).
    pub segment_size: u64,
    /// What to do about damage at open (as [`Options::recovery_mode`]).
    pub recovery_mode: RecoveryMode,
    /// Create the directory if it is missing.
    pub create_if_missing: bool,
}

impl Default for RaftOptions {
    fn default() -> Self {
        let o = Options::default();
        RaftOptions {
            durability: o.durability,
            segment_size: o.segment_size,
            recovery_mode: o.recovery_mode,
            create_if_missing: o.create_if_missing,
        }
    }
}

impl RaftOptions {
    /// The log-level options the shared WAL machinery reads.
    pub(crate) fn log_options(&self) -> Options {
        Options {
            durability: self.durability,
            segment_size: self.segment_size,
            recovery_mode: self.recovery_mode,
            create_if_missing: self.create_if_missing,
            ..Options::default()
        }
    }
}

/// What [`crate::raft::RaftLog::open`] accepts: [`RaftOptions`], or an
/// [`Options`] (its `durability`, `segment_size`, `recovery_mode` and
/// `create_if_missing`; the key-value fields do not apply and are not
/// read).
pub trait IntoRaftOptions {
    /// The Raft options. Errors: [`Error::InvalidArgument`] for
    /// [`Options::read_only`] (a Raft log is opened by its writer only).
    fn into_raft_options(self) -> Result<RaftOptions>;
}

impl IntoRaftOptions for RaftOptions {
    fn into_raft_options(self) -> Result<RaftOptions> {
        Ok(self)
    }
}

impl IntoRaftOptions for Options {
    fn into_raft_options(self) -> Result<RaftOptions> {
        if self.read_only {
            return Err(Error::InvalidArgument(
                "Options::read_only is for key-value stores; a Raft log is opened by its writer only".into(),
            ));
        }
        Ok(RaftOptions {
            durability: self.durability,
            segment_size: self.segment_size,
            recovery_mode: self.recovery_mode,
            create_if_missing: self.create_if_missing,
        })
    }
}
