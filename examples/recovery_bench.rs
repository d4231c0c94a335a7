//! Recovery speed, warm and cold, beside the disk's own sequential read rate
//! in the same run (`make bench`; not a test, no assertions).
//!
//! Loads `KEYVAL_BENCH_N` keys (default 1M; 24-byte random keys, 150-byte
//! values) in durable batches of 1000 with automatic checkpoints off, so the
//! whole load stays in the WAL, then drops the store without a checkpoint
//! (`crash_for_testing`). Then, for `ROUNDS` rounds:
//! 1. cold raw read: drop the page cache (`sync; echo 3 >
//!    /proc/sys/vm/drop_caches`, root only) and read every WAL segment
//!    front to back in 1 MiB reads;
//! 2. cold replay: drop the cache again and open the store;
//! 3. warm replay: open it again with the files cached.
//!
//! Without root the cold figures are skipped and said so.

use keyval::{Db, Durability, Options};

mod workload;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

const ROUNDS: usize = 3;

fn drop_caches() -> bool {
    // Sync first, so that dirty pages do not stay in the cache.
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

fn raw_read(files: &[std::path::PathBuf]) -> (u64, f64) {
    let start = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    for p in files {
        let mut f = std::fs::File::open(p).expect("open");
        loop {
            let n = f.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    (total, start.elapsed().as_secs_f64())
}

fn replay(dir: &Path, opts: &Options) -> (u64, u64, f64) {
    let start = Instant::now();
    let db = Db::open(dir, opts.clone()).expect("open");
    let took = start.elapsed().as_secs_f64();
    let st = db.stats().expect("stats");
    db.crash_for_testing();
    (st.recovery.bytes_replayed, st.wal_bytes, took)
}

fn main() {
    let n = workload::bench_n();
    let tmp = tempfile::tempdir_in(std::env::var("TMPDIR").unwrap_or_else(|_| "target".into()))
        .expect("tempdir");
    let dir = tmp.path().join("bulk");
    let opts = Options {
        max_wal_size: 0,
        durability: Durability::Sync,
        ..Options::default()
    };
    let db = Db::open(&dir, opts.clone()).expect("open");
    workload::load(&db, &mut workload::Rng(42), n);
    db.crash_for_testing();
    let files = segments(&dir);
    println!(
        "recovery: {n} keys in {} WAL segments ({:.0} MB of files)",
        files.len(),
        files
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum::<u64>() as f64
            / 1e6
    );
    for round in 1..=ROUNDS {
        if drop_caches() {
            let (bytes, secs) = raw_read(&files);
            let raw = bytes as f64 / 1e6 / secs;
            drop_caches();
            let (replayed, _, took) = replay(&dir, &opts);
            let cold = replayed as f64 / 1e6 / took;
            // The replay reads every segment whole, so compare the files'
            // bytes per second too.
            let files_rate = bytes as f64 / 1e6 / took;
            println!(
                "  round {round}: cold raw read {raw:.0} MB/s; cold replay {took:.2} s = {cold:.0} MB/s of records, \
                 {files_rate:.0} MB/s of files = {:.2}x the raw read",
                files_rate / raw
            );
        } else if round == 1 {
            println!("  (not root: cold figures skipped; they need /proc/sys/vm/drop_caches)");
        }
        let (replayed, _, took) = replay(&dir, &opts);
        println!(
            "  round {round}: warm replay {took:.2} s = {:.0} MB/s of records",
            replayed as f64 / 1e6 / took
        );
    }
}
