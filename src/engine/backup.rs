//! Online backup ([`crate::Db::backup`], [`crate::raft::RaftLog::backup`]):
//! where a backup is built and how it becomes visible.
//!
//! A backup is written into a staging directory next to its destination,
//! `<parent>/.<name>.backup-tmp.<pid>.<ns>.<n>`, made by an exclusive
//! `mkdir` (never one that was already there, whoever made it, and never
//! through a link), whose first file is the marker [`INCOMPLETE_MARKER`].
//! Only when every file is written and `fsync`ed is the staging directory
//! renamed to the destination (and the parent
//! `fsync`ed); the marker is removed last (and the destination `fsync`ed).
//! So at any moment a killed backup leaves one of:
//!
//! - no destination at all (the staging directory, with its marker or
//!   empty, may remain; the next backup to the same destination clears
//!   it, if it is a real directory owned by the same user);
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
    /// could wait for (the index's read lock, to take its view of the
    /// copy-on-write index).
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

/// The prefix of every staging directory of backups to `name`.
fn staging_prefix(name: &str) -> String {
    format!(".{name}.backup-tmp")
}

/// Create a staging directory no one else made: an exclusive `mkdir` of
/// `.<name>.backup-tmp.<pid>.<nanoseconds>.<n>` (a name another user
/// cannot have pre-created: if anything is there, the next `n` is tried).
///
/// Errors: [`Error::Io`].
fn create_unique(fs: &dyn FileSystem, parent: &Path, name: &str) -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let pid = std::process::id();
    let mut last = None;
    for n in 0..64 {
        let dir = parent.join(format!("{}.{pid}.{nanos}.{n}", staging_prefix(name)));
        match fs.create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(dir),
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
    let dir = last.unwrap_or_else(|| parent.to_path_buf());
    Err(Error::io(
        &dir,
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "64 staging directory names in a row were taken",
        ),
    ))
}

/// Clear what interrupted backups to `name` left in `parent`: a staging
/// directory (any `.<name>.backup-tmp*`) that is itself a directory (not
/// a link to one), owned by this user, and holds the marker or nothing.
/// Anything else with such a name (another user's, a link, a directory
/// without the marker) is left alone: it is not ours to delete.
///
/// Errors: [`Error::Io`] (the parent cannot be listed; a leftover that
/// cannot be removed is left in place).
fn clear_own_leftovers(fs: &dyn FileSystem, parent: &Path, name: &str) -> Result<()> {
    let io = |p: &Path, e| Error::io(p, e);
    let prefix = staging_prefix(name);
    for entry in fs.list_dir(parent).map_err(|e| io(parent, e))? {
        if entry != prefix && !entry.starts_with(&format!("{prefix}.")) {
            continue;
        }
        let dir = parent.join(&entry);
        if !fs.is_own_dir(&dir).map_err(|e| io(&dir, e))? {
            continue;
        }
        let files = fs.list_dir(&dir).map_err(|e| io(&dir, e))?;
        if !files.is_empty() && !files.iter().any(|f| f == INCOMPLETE_MARKER) {
            continue;
        }
        // The marker goes last, so a crash half-way leaves it recognisable.
        // Best effort: what cannot be removed (say, a directory someone
        // put inside) stays, and so does the staging directory.
        let cleared = files
            .iter()
            .filter(|f| *f != INCOMPLETE_MARKER)
            .all(|f| fs.remove_file(&dir.join(f)).is_ok());
        if cleared {
            if !files.is_empty() {
                let _ = fs.remove_file(&dir.join(INCOMPLETE_MARKER));
            }
            let _ = fs.remove_dir(&dir);
        }
    }
    // No fsync of `parent` here: nothing depends on the removals being
    // durable, and `Staging::begin` fsyncs it after creating the new
    // staging directory anyway.
    Ok(())
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
    /// exists, or its parent is not a directory; [`Error::Io`].
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
        clear_own_leftovers(fs, &parent, name)?;
        let dir = create_unique(fs, &parent, name)?;
        let marker = dir.join(INCOMPLETE_MARKER);
        let f = fs
            .open(&marker, OpenMode::CreateNew)
            .map_err(|e| io(&marker, e))?;
        let text = b"KeyVal: an unfinished backup; not a usable store.\n";
        f.write_all_at(text, 0).map_err(|e| io(&marker, e))?;
        f.sync_all().map_err(|e| io(&marker, e))?;
        // The marker is durable in the directory before the directory's
        // own name is; a crash before this point leaves the directory
        // empty, which the next backup clears as well.
        fs.sync_dir(&dir).map_err(|e| io(&dir, e))?;
        fs.sync_dir(&parent).map_err(|e| io(&parent, e))?;
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
