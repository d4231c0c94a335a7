//! A full disk (ENOSPC) on a real file system: a tiny tmpfs. The failing
//! write returns an I/O error naming ENOSPC, the store is poisoned (later
//! writes fail with Poisoned, nothing more is acknowledged), reads of
//! acknowledged data go on, and after space is freed a reopen recovers
//! every acknowledged write. Needs root to mount: without it the test is
//! skipped with a line on stderr, or fails under `CI=true` (decided at run
//! time, `common::root_test_can_run`).
mod common;

use keyval::{Db, Error, Options};
use std::process::Command;

struct Tmpfs(std::path::PathBuf);
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_poisons_and_loses_nothing_acknowledged() {
    let why = common::root_prerequisites(&["mount", "umount"], &[]);
    if !common::root_test_can_run("enospc", why) {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let mnt = base.path().join("small");
    std::fs::create_dir(&mnt).expect("mkdir");
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "enospc: cannot mount a tmpfs although running as root");
    let _guard = Tmpfs(mnt.clone());
    let dir = mnt.join("db");
    let opts = Options {
        segment_size: 64 << 10,
        max_wal_size: 0,
        ..Options::default()
    };
    let db = Db::open(&dir, opts.clone()).expect("open");
    let mut acked = Vec::new();
    let mut first = None;
    for i in 0..100_000u32 {
        let k = format!("k{i:06}");
        match db.set(&k, vec![b'v'; 400]) {
            Ok(()) => {
                assert!(first.is_none(), "write {i} acknowledged after a failure");
                acked.push(k);
            }
            Err(e) => {
                if first.is_none() {
                    assert!(
                        matches!(
                            &e,
                            Error::Io {
                                errno: Some(28),
                                ..
                            }
                        ),
                        "first failure should be ENOSPC: {e}"
                    );
                    first = Some(i);
                } else {
                    assert!(
                        matches!(e, Error::Poisoned(_)),
                        "later writes are refused: {e}"
                    );
                    if i > first.unwrap_or(0) + 5 {
                        break;
                    }
                }
            }
        }
    }
    assert!(first.is_some(), "the disk never filled");
    assert!(!acked.is_empty());
    // Reads of acknowledged data still work on the poisoned store.
    assert!(db.get(acked.last().expect("one")).expect("get").is_some());
    assert!(matches!(db.checkpoint(), Err(Error::Poisoned(_))));
    assert!(matches!(db.close(), Err(Error::Poisoned(_))));
    // Free space (remove the spare being prepared and any leftovers: the
    // next open deletes .prep files itself) and reopen.
    let db = Db::open(&dir, opts).expect("reopen on the full disk");
    for k in &acked {
        assert!(db.contains(k).expect("contains"), "acknowledged {k} lost");
    }
    // The final checkpoint needs space the disk does not have: close must
    // report it (never hang or lose anything).
    match db.close() {
        Ok(()) | Err(Error::Io { .. }) => {}
        Err(e) => panic!("close on a full disk: {e}"),
    }
    println!(
        "enospc: {} writes acknowledged before the disk filled, all recovered",
        acked.len()
    );
}
