//! [`RealFs`]: the operating system's file system, one system call per
//! operation.

use super::{DirLock, FileHandle, FileSystem, OpenMode};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::Arc;

/// The real, OS-backed file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile(File);

impl FileHandle for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        // std maps this onto fdatasync(2) on Linux.
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn allocated_len(&self) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        // st_blocks counts 512-byte units whatever the block size.
        Ok(self.0.metadata()?.blocks().saturating_mul(512))
    }
    fn write_back(&self, offset: u64, len: u64, wait: bool) -> io::Result<()> {
        let flags = if wait {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        } else {
            libc::SYNC_FILE_RANGE_WRITE
        };
        let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Ok(());
        };
        #[allow(unsafe_code)]
        // Safety: the descriptor is open for the duration of the call and
        // sync_file_range reads no memory of ours.
        let rc = unsafe { libc::sync_file_range(self.0.as_raw_fd(), off, n, flags) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn will_need_range(&self, offset: u64, len: u64) {
        let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        #[allow(unsafe_code)]
        // Safety: the descriptor is open for the duration of the call and
        // posix_fadvise reads no memory of ours.
        let _ =
            unsafe { libc::posix_fadvise(self.0.as_raw_fd(), off, n, libc::POSIX_FADV_WILLNEED) };
    }

    fn advise_random(&self) {
        #[allow(unsafe_code)]
        // Safety: the descriptor is open for the duration of the call and
        // posix_fadvise reads no memory of ours.
        let _ = unsafe { libc::posix_fadvise(self.0.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
    }
}

/// What kind of non-regular file `m` describes, for error messages.
fn kind_name(m: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// An exclusive `flock` on one open file or directory.
#[derive(Debug)]
struct Flock(File);

impl Flock {
    /// Errors: `WouldBlock` if another open file description holds it.
    fn take(f: File) -> io::Result<Flock> {
        #[allow(unsafe_code)]
        // Safety: the fd belongs to `f`, which lives across the call; flock
        // only takes an integer fd and flags and touches no memory of ours.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Flock(f))
    }
}

impl Drop for Flock {
    fn drop(&mut self) {
        // Closing the descriptor releases the flock; unlock explicitly too
        // so that the release does not depend on other duplicated fds.
        #[allow(unsafe_code)]
        // Safety: the fd is owned by self.0 and open for the whole call;
        // flock does not touch memory.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// The `LOCK` file's flock and the directory's own: deleting or replacing
/// `LOCK` cannot let a second handle in, because the directory, which
/// cannot be deleted while it holds the store, stays locked.
#[derive(Debug)]
struct FlockGuard {
    _file: Flock,
    _dir: Option<Flock>,
}

impl DirLock for FlockGuard {}

impl FileSystem for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir(dir)
    }

    fn is_own_dir(&self, path: &Path) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let m = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        #[allow(unsafe_code)]
        // Safety: geteuid takes no arguments, touches no memory of ours and
        // cannot fail.
        let me = unsafe { libc::geteuid() };
        Ok(m.file_type().is_dir() && m.uid() == me)
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir(dir)
    }

    fn is_dir(&self, path: &Path) -> io::Result<bool> {
        match fs::metadata(path) {
            Ok(m) => Ok(m.is_dir()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        match fs::symlink_metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut o = OpenOptions::new();
        match mode {
            OpenMode::Read => o.read(true),
            OpenMode::ReadWrite => o.read(true).write(true),
            OpenMode::CreateNew => o.read(true).write(true).create_new(true),
            OpenMode::CreateTruncate => {
                // Never write through what someone left at this name: a
                // symlink would send the bytes to its target, a hard link
                // would change another file. Remove it and create a new
                // file exclusively (O_EXCL does not follow links either).
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                o.read(true).write(true).create_new(true)
            }
        };
        // O_NOFOLLOW: a symlink planted in the store's directory is refused,
        // never followed out of it. O_NONBLOCK: opening a FIFO does not wait
        // for a writer (it is then refused below); it has no effect on
        // regular files.
        o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
        let f = o.open(path).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "is a symbolic link; KeyVal opens only regular files in a store directory and never follows links there",
                )
            } else {
                e
            }
        })?;
        let meta = f.metadata()?;
        if !meta.file_type().is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "is not a regular file ({}); KeyVal opens only regular files in a store directory",
                    kind_name(&meta)
                ),
            ));
        }
        Ok(Arc::new(RealFile(f)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                out.push(name.to_owned());
            } else {
                // Not ours: all KeyVal file names are ASCII.
                continue;
            }
        }
        Ok(out)
    }

    fn will_need(&self, path: &Path) {
        use std::os::unix::fs::OpenOptionsExt;
        let Ok(f) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
        else {
            return;
        };
        if !f.metadata().is_ok_and(|m| m.file_type().is_file()) {
            return;
        }
        #[allow(unsafe_code)]
        // Safety: `f` is an open descriptor for the duration of the call;
        // posix_fadvise reads no memory of ours. Offset 0 and length 0 mean
        // the whole file. The result is ignored: it is only a hint.
        unsafe {
            libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED);
        }
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)?;
        if !f.metadata()?.file_type().is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the LOCK file is not a regular file",
            ));
        }
        // The directory first: it is the lock that survives a deleted LOCK.
        let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(d) => Some(Flock::take(File::open(d)?)?),
            None => None,
        };
        let file = Flock::take(f)?;
        Ok(Box::new(FlockGuard {
            _file: file,
            _dir: dir,
        }))
    }
}
