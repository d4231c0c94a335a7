//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`) through the
//! same harnesses the cargo-fuzz targets use, on stable Rust, plus
//! deterministic mutations of the hand-made `seed-*` files (bit flips,
//! truncations, insertions). `KEYVAL_FUZZ_MUTATIONS` sets mutations per file (default
//! 300). `make fuzz` runs the real coverage-guided fuzzer (nightly).
mod common;
use common::Rng;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let b = std::fs::read(&p).expect("read");
            (p, b)
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "empty corpus for {target}");
    v
}

fn mutate(r: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + r.below(4) {
        match r.below(4) {
            0 if !b.is_empty() => {
                let i = r.below(b.len() as u64) as usize;
                b[i] ^= 1 << r.below(8);
            }
            1 if !b.is_empty() => {
                let n = r.below(b.len() as u64) as usize;
                b.truncate(n);
            }
            2 => {
                let i = r.below(b.len() as u64 + 1) as usize;
                b.insert(i, r.next() as u8);
            }
            _ if !b.is_empty() => {
                let i = r.below(b.len() as u64) as usize;
                b[i] = r.next() as u8;
            }
            _ => {}
        }
    }
    b
}

fn run(target: &str, f: fn(&[u8])) {
    let per: u64 = std::env::var("KEYVAL_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut execs = 0u64;
    for (path, seed) in corpus(target) {
        f(&seed);
        execs += 1;
        // Inputs the fuzzer found are replayed as they are; the hand-made
        // seeds are also mutated.
        let is_seed = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("seed-"));
        if !is_seed {
            continue;
        }
        let mut r = Rng(seed.len() as u64 * 31 + 7);
        for i in 0..per {
            let m = mutate(&mut r, &seed);
            let res = std::panic::catch_unwind(|| f(&m));
            assert!(
                res.is_ok(),
                "{target}: mutation {i} of {} panicked; input {:?}",
                path.display(),
                &m[..m.len().min(64)]
            );
            execs += 1;
        }
    }
    eprintln!("{target}: {execs} executions");
}

#[test]
fn wal_segment_corpus() {
    run("wal_segment", keyval::internals::fuzzing::wal_segment);
}

#[test]
fn snapshot_file_corpus() {
    run("snapshot_file", keyval::internals::fuzzing::snapshot_file);
}

#[test]
fn ops_with_crash_corpus() {
    run("ops_with_crash", keyval::internals::fuzzing::ops_with_crash);
}

/// Writes the seed corpus from real files (run once by hand:
/// `cargo test --test fuzz_corpus generate -- --ignored`).
#[test]
#[ignore = "generates fuzz/corpus"]
fn generate_seed_corpus() {
    use keyval::{Db, Options, WriteBatch};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        segment_size: 64 << 10,
        max_wal_size: 0,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).expect("open");
    for i in 0..6u32 {
        db.set(format!("key{i}"), format!("value{i}")).expect("set");
    }
    let mut b = WriteBatch::new();
    b.put("a", "1").delete("key1").put("", "x"); // the empty key is rejected
    let _ = db.write(b);
    let mut b = WriteBatch::new();
    b.put("batch", "yes").delete("key2");
    db.write(b).expect("batch");
    db.checkpoint().expect("checkpoint");
    db.crash_for_testing();
    for e in std::fs::read_dir(dir.path()).expect("dir") {
        let p = e.expect("entry").path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let bytes = std::fs::read(&p).expect("read");
        if name.ends_with(".wal") {
            let end = bytes.iter().rposition(|&x| x != 0).map_or(4096, |e| e + 64);
            std::fs::write(root.join("wal_segment/seed-segment"), &bytes[..end]).expect("write");
        } else if name.ends_with(".kvs") {
            std::fs::write(root.join("snapshot_file/seed-snapshot"), &bytes).expect("write");
        }
    }
    for (i, prog) in [
        &b"\x05\x00\x00\x01\x02\x06\x03\x04\x07\x00\x00"[..],
        b"\x40\x01\x00\x05\x07\x06\x01\x01\x07\x09\x09",
        b"\xff\x04\x03\x00\x01\x02\x03\x04\x05\x06\x07\x06\x05\x04\x07\x07\x07",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(root.join(format!("ops_with_crash/seed-{i}")), prog).expect("write");
    }
}
