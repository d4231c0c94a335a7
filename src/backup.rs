//! Online backup ([`crate::Db::backup`], [`crate::raft::RaftLog::backup`]):
//! where a backup is built and how it becomes visible.
//!
//! A backup is written into a staging directory next to its destination,
//! `<parent>/.<name>.backup-tmp`, whose first file is the marker
//! [`INCOMPLETE_MARKER`]. Only when every file is written and `fsync`ed is
//! the staging directory renamed to the destination (and the parent
//! `fsync`ed); the marker is removed last (and the destination `fsync`ed).
//! So at any moment a killed backup leaves one of:
//!
//! - no destination at all (the staging directory, with its marker, may
//!   remain; the next backup to the same destination clears it);
//! - a destination that still holds the marker: opening it, or `verify`,
//!   fails with [`Error::Corruption`] naming the unfinished backup;
//! - a complete backup.
//!
//! Never a store that opens and silently lacks data. See `docs/format.md`
//! ("Backups") for the layout.

use crate::error::{Error, Result};
use crate::fs::{FileSystem, OpenMode};
use std::path::{Path, PathBuf};

/// Name of the marker file of an unfinished backup.
pub const INCOMPLETE_MARKER: &str = "BACKUP-INCOMPLETE";

/// What a finished backup holds, from [`crate::Db::backup`] and
/// [`crate::raft::RaftLog::backup`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupInfo {
    /// The backup holds every write up to and including this LSN, and none
    /// after it.
    pub lsn: u64,
    /// Bytes written into the destination (snapshot and WAL files).
    pub bytes: u64,
    /// Longest time, in microseconds, the backup held a lock that writers
    /// wait for (the index's write lock to freeze it, or the WAL lock to
    /// note where the log ends).
    pub pause_micros: u64,
}

/// The error for a directory that holds the marker.
pub(crate) fn incomplete(dir: &Path) -> Error {
    Error::corruption(
        dir.join(INCOMPLETE_MARKER),
        None,
        "this directory is an unfinished backup (the backup was interrupted): it is not a usable store; delete it and take the backup again",
    )
}

/// A backup being built; see the module docs.
pub(crate) struct Staging<'a> {
    fs: &'a dyn FileSystem,
    parent: PathBuf,
    pub(crate) dir: PathBuf,
    dest: PathBuf,
    pub(crate) bytes: u64,
}

impl<'a> Staging<'a> {
    /// Check `dest` and create its staging directory with the marker in it.
    ///
    /// Errors: [`Error::InvalidArgument`] if `dest` is empty or already
    /// exists, its parent is not a directory, or the staging path is taken
    /// by something that is not an unfinished backup; [`Error::Io`].
    pub(crate) fn begin(fs: &'a dyn FileSystem, dest: &Path) -> Result<Staging<'a>> {
        let io = |p: &Path, e| Error::io(p, e);
        let name = dest.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "backup destination {:?} has no usable final component",
                dest.display().to_string()
            ))
        })?;
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if fs.exists(dest).map_err(|e| io(dest, e))? {
            return Err(Error::InvalidArgument(format!(
                "backup destination {} already exists (a backup never overwrites anything)",
                dest.display()
            )));
        }
        if !fs.is_dir(&parent).map_err(|e| io(&parent, e))? {
            return Err(Error::InvalidArgument(format!(
                "{} is not a directory (the backup destination's parent must exist)",
                parent.display()
            )));
        }
        let dir = parent.join(format!(".{name}.backup-tmp"));
        let marker = dir.join(INCOMPLETE_MARKER);
        if fs.is_dir(&dir).map_err(|e| io(&dir, e))? {
            // Left by an interrupted backup to the same destination: clear
            // it, but only if it says it is one.
            if !fs.exists(&marker).map_err(|e| io(&marker, e))? {
                return Err(Error::InvalidArgument(format!(
                    "{} exists and is not an unfinished KeyVal backup; remove it",
                    dir.display()
                )));
            }
            for f in fs.list_dir(&dir).map_err(|e| io(&dir, e))? {
                if f != INCOMPLETE_MARKER {
                    let p = dir.join(f);
                    fs.remove_file(&p).map_err(|e| io(&p, e))?;
                }
            }
        } else if fs.exists(&dir).map_err(|e| io(&dir, e))? {
            return Err(Error::InvalidArgument(format!(
                "{} exists and is not a directory; remove it",
                dir.display()
            )));
        } else {
            fs.create_dir_all(&dir).map_err(|e| io(&dir, e))?;
            let f = fs
                .open(&marker, OpenMode::CreateTruncate)
                .map_err(|e| io(&marker, e))?;
            let text = b"KeyVal: an unfinished backup; not a usable store.\n";
            f.write_all_at(text, 0).map_err(|e| io(&marker, e))?;
            f.sync_all().map_err(|e| io(&marker, e))?;
            // The marker is durable in the directory before the directory's
            // own name is; so the directory never exists without it.
            fs.sync_dir(&dir).map_err(|e| io(&dir, e))?;
            fs.sync_dir(&parent).map_err(|e| io(&parent, e))?;
        }
        Ok(Staging {
            fs,
            parent,
            dir,
            dest: dest.to_path_buf(),
            bytes: 0,
        })
    }

    /// Make the backup visible: `fsync` the staging directory, rename it
    /// to the destination, `fsync` the parent, remove the marker, `fsync`
    /// the destination.
    ///
    /// Errors: [`Error::Io`] (the destination is then missing or still
    /// holds the marker).
    pub(crate) fn finish(self) -> Result<()> {
        let fs = self.fs;
        let io = |p: &Path, e| Error::io(p, e);
        fs.sync_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
        fs.rename(&self.dir, &self.dest)
            .map_err(|e| io(&self.dest, e))?;
        fs.sync_dir(&self.parent).map_err(|e| io(&self.parent, e))?;
        let marker = self.dest.join(INCOMPLETE_MARKER);
        fs.remove_file(&marker).map_err(|e| io(&marker, e))?;
        fs.sync_dir(&self.dest).map_err(|e| io(&self.dest, e))
    }
}
