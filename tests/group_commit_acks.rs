//! No writer is acknowledged before its group's fsync: 8 threads write
//! under `Sync` on the simulated file system while a checker repeatedly
//! (1) copies the set of acknowledged keys, then (2) takes the image a
//! power cut would leave (only fsynced data survives) and recovers it.
//! Every key acknowledged before the image was taken must be in it.
use keyval::fs::{CrashMode, FileSystem, SimFs};
use keyval::{Db, Options};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const DIR: &str = "/gc";

fn opts() -> Options {
    Options {
        segment_size: 64 << 10,
        max_wal_size: 0,
        ..Options::default()
    }
}

#[test]
fn acknowledged_means_fsynced_under_concurrency() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new(DIR)).expect("mkdir");
    let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let db = Db::open_with_fs(DIR, opts(), fsa).expect("open");
    let acked: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let done = AtomicBool::new(false);
    let mut checks = 0;
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..8)
            .map(|t| {
                let (db, acked) = (&db, &acked);
                s.spawn(move || {
                    for i in 0..300 {
                        let k = format!("t{t}-{i:04}");
                        db.set(&k, k.as_bytes()).expect("set");
                        acked.lock().insert(k);
                    }
                })
            })
            .collect();
        let checker = s.spawn(|| {
            let mut n = 0;
            while !done.load(Ordering::Acquire) {
                let before: BTreeSet<String> = acked.lock().clone();
                let image = fs.crash_image(CrashMode::DropAll, n);
                let fsa: Arc<dyn FileSystem> = Arc::new(image);
                let rec = Db::open_with_fs(DIR, opts(), fsa).expect("recover image");
                for k in &before {
                    assert!(
                        rec.contains(k).expect("contains"),
                        "{k} was acknowledged before the image but is not durable"
                    );
                }
                rec.crash_for_testing();
                n += 1;
            }
            n
        });
        for w in writers {
            w.join().expect("writer");
        }
        done.store(true, Ordering::Release);
        checks = checker.join().expect("checker");
    });
    let st = db.stats().expect("stats");
    assert_eq!(st.keys, 2400);
    assert!(
        st.commit_groups < st.writes,
        "writers never shared an fsync: {st:?}"
    );
    assert!(checks > 3, "the checker ran only {checks} times");
    eprintln!(
        "{checks} power-cut images checked during {} writes in {} groups",
        st.writes, st.commit_groups
    );
}
