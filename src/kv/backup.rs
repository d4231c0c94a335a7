//! Online backup, and the salvage baseline (dropping the history a
//! salvage replaced).

use super::Inner;
use crate::engine;
use crate::error::{Error, Result};
use crate::kv::checkpoint;
use crate::wal::segment::KIND_KV;
use std::path::Path;

impl Inner {
    /// See [`Db::backup`].
    pub(super) fn backup(self: &std::sync::Arc<Self>, dest: &Path) -> Result<crate::BackupInfo> {
        let fs = self.core.fs.as_ref();
        if self.core.is_closed() {
            return Err(Error::Closed);
        }
        let mut staging = crate::engine::backup::Staging::begin(fs, dest)?;
        let t = std::time::Instant::now();
        // A registered snapshot: it keeps the segments of the separated
        // values it copies until the copy is written.
        let snap = self.snapshot()?;
        let pause = t.elapsed();
        let view = &snap.view;
        let lsn = view.lsn;
        let read = |p: &crate::index::ValuePtr| self.load(p);
        let written = checkpoint::write(
            fs,
            &staging.dir,
            self.db_id,
            lsn,
            [
                checkpoint::Section::new(&view.default),
                checkpoint::Section::new(&view.named),
            ],
            checkpoint::Separated::Inline(&read),
        );
        drop(snap);
        staging.bytes += written?.bytes;
        // The log goes on from the snapshot in an empty first segment.
        let size = crate::wal::segment::first_size(self.opts.segment_size);
        let p = crate::wal::segment::prepare(fs, &staging.dir, KIND_KV, 1, size, self.db_id)?;
        crate::wal::segment::install(fs, &staging.dir, &p)?;
        staging.bytes += p.size;
        let bytes = staging.bytes;
        staging.finish()?;
        Ok(crate::BackupInfo {
            lsn,
            bytes,
            pause_micros: pause.as_micros() as u64,
        })
    }

    /// After a salvage: delete every snapshot but the newest verified one
    /// and every WAL segment but the active one, then fsync the directory,
    /// so the salvaged state is the whole history and a later open in any
    /// mode starts from it. Errors: [`Error::Io`] (the store is poisoned).
    pub(super) fn drop_history(&self) -> Result<()> {
        let mut ck = self.checkpoint.lock();
        let keep = ck.good;
        let r = (|| {
            let listing = engine::list(self.core.fs.as_ref(), &self.core.dir)?;
            for lsn in listing.snapshots.iter().filter(|l| Some(**l) != keep) {
                let p = self.core.dir.join(checkpoint::file_name(*lsn));
                self.core.fs.remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
            let mut wal = self.core.wal.lock();
            // Except the segments the new baseline keeps values in.
            let kept: Vec<u64> = keep
                .and_then(|l| ck.refs.get(&l))
                .cloned()
                .unwrap_or_default();
            let removed = wal.remove_segments(|s| !kept.contains(&s.id))?;
            for id in removed {
                self.vlog.forget(id);
            }
            // Also every segment file the writer never adopted: one whose
            // header was damaged (salvage read its records but never
            // appends to it), left below the active segment.
            let active = wal.active_id();
            for id in listing
                .segments
                .iter()
                .filter(|id| **id < active && !kept.contains(id))
            {
                let p = self.core.dir.join(crate::wal::segment::file_name(*id));
                match self.core.fs.remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&p, e)),
                }
            }
            drop(wal);
            self.core
                .fs
                .sync_dir(&self.core.dir)
                .map_err(|e| Error::io(&self.core.dir, e))
        })();
        ck.snapshots = keep.into_iter().collect();
        ck.refs.retain(|l, _| Some(*l) == keep);
        self.core.poison_on_err(r)
    }
}
