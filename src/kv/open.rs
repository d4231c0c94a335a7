//! Opening a store: options, the directory lock, recovery (read-only
//! recovery retries what a live writer makes look transient).

use crate::engine;
use crate::error::{Error, Result};
use crate::fs::FileSystem;
use crate::kv::recovery;
use crate::options::Options;
use std::path::Path;
use std::time::Duration;

/// Read-only recovery for [`Options::read_only`]. A writer may append,
/// rotate or checkpoint while the files are read, which can look like
/// damage (a record read half-written before later ones were read whole) or
/// a vanished file; both pass when read again, so open retries a few
/// times. Errors: as recovery; [`Error::InvalidArgument`] for a directory
/// that is missing, not a directory, or holds no WAL.
pub(super) fn recover_read_only(
    fs: &dyn FileSystem,
    dir: &Path,
    opts: &Options,
) -> Result<recovery::Recovered> {
    if !fs.is_dir(dir).map_err(|e| Error::io(dir, e))? {
        return Err(Error::InvalidArgument(format!(
            "{} is not a store directory (read-only opens create nothing)",
            dir.display()
        )));
    }
    let mut attempt = 0;
    loop {
        let r = recovery::recover(fs, dir, opts, true).and_then(|rec| match rec.resume {
            Some(_) => Ok(rec),
            None if engine::list(fs, dir)?.segments.is_empty() => Err(Error::InvalidArgument(
                format!("{} holds no KeyVal WAL segment", dir.display()),
            )),
            // The last segment vanished between listing and opening it.
            None => Err(Error::io(
                dir,
                std::io::Error::from_raw_os_error(libc::ENOENT),
            )),
        });
        let transient = matches!(
            &r,
            Err(Error::Corruption { .. })
                | Err(Error::Io {
                    errno: Some(libc::ENOENT),
                    ..
                })
        );
        attempt += 1;
        if r.is_ok() || !transient || attempt >= 5 || !fs.background_threads() {
            return r;
        }
        std::thread::sleep(Duration::from_millis(10 << attempt));
    }
}
