//! Any write or fsync error poisons the store: later writes fail with
//! Poisoned, durable reads go on, nothing is acknowledged after a failed
//! fsync, and reopening recovers every acknowledged write.
mod common;
use common::*;
use keyval::{Db, Error};
use std::sync::Arc;

fn run(fault: Fault, nth: i64, persistent: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ffs = FaultyFs::new(fault, i64::MAX, persistent);
    let db = Db::open_with_fs(
        dir.path(),
        small_opts(),
        Arc::new(FaultyFsHandle(ffs.clone())),
    )
    .expect("open");
    ffs.countdown
        .store(nth, std::sync::atomic::Ordering::SeqCst);
    let mut acked = Vec::new();
    let mut failed_at = None;
    for i in 0..3000u32 {
        let k = format!("k{i}");
        match db.set(&k, vec![b'v'; 50]) {
            Ok(()) => {
                assert!(
                    failed_at.is_none(),
                    "{fault:?}/{nth}: write acknowledged after a failure"
                );
                acked.push(k);
            }
            Err(e) => {
                if failed_at.is_none() {
                    assert!(
                        matches!(e, Error::Io { .. }),
                        "{fault:?}/{nth}: first error {e:?}"
                    );
                    failed_at = Some(i);
                } else {
                    assert!(
                        matches!(e, Error::Poisoned(_)),
                        "{fault:?}/{nth}: later error {e:?}"
                    );
                }
            }
        }
        if failed_at.is_some_and(|f| i > f + 3) {
            break;
        }
    }
    if failed_at.is_none() {
        return; // the fault never fired in this workload (e.g. no rename needed)
    }
    assert!(matches!(db.checkpoint(), Err(Error::Poisoned(_))));
    assert!(matches!(db.sync(), Err(Error::Poisoned(_))));
    // Reads of acknowledged data still work.
    if let Some(k) = acked.last() {
        assert!(db.get(k).expect("get").is_some());
    }
    assert!(db.stats().expect("stats").poisoned.is_some());
    assert!(matches!(db.close(), Err(Error::Poisoned(_))));
    let db = Db::open(dir.path(), small_opts()).expect("reopen on a healthy fs");
    for k in &acked {
        assert!(
            db.get(k).expect("get").is_some(),
            "{fault:?}/{nth}: acknowledged {k} lost"
        );
    }
}

#[test]
fn write_errors_poison() {
    for nth in (1..=30).chain([57, 100]) {
        run(Fault::Write, nth, false);
        run(Fault::Write, nth, true);
    }
}

#[test]
fn fsync_errors_poison_and_are_never_retried() {
    for nth in (1..=30).chain([57, 100]) {
        run(Fault::Sync, nth, false);
        run(Fault::Sync, nth, true);
    }
}

#[test]
fn rename_errors_during_rotation_poison() {
    for nth in 1..=3 {
        run(Fault::Rename, nth, false);
        run(Fault::Rename, nth, true);
    }
}
