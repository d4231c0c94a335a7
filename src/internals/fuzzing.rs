//! Fuzzing harnesses, shared by the cargo-fuzz targets in `fuzz/` and by
//! the corpus replay in `tests/fuzz_corpus.rs` (which runs on stable Rust).
//! Each function must never panic on any input except by finding a bug.
#![doc(hidden)]

use crate::format::batch;
use crate::format::record::Owner;
use crate::fs::{CrashMode, FileSystem, SimFs};
use crate::wal::reader;
use crate::{Db, Options, WriteBatch};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Treat `data` as a WAL segment: scan it and decode every valid record.
pub fn wal_segment(data: &[u8]) {
    let owner = Owner {
        db_id: 0x5EED,
        segment_id: 1,
    };
    let scan = reader::scan(data, owner);
    for r in scan
        .records
        .iter()
        .chain(scan.damage.iter().flat_map(|d| d.later.iter()))
    {
        assert!(r.payload.end <= data.len(), "payload range out of bounds");
        for op in batch::decode(&data[r.payload.clone()]) {
            if op.is_err() {
                break;
            }
        }
    }
    assert!(scan.end <= data.len().max(4096) as u64);
}

/// Treat `data` as a snapshot file and read it.
pub fn snapshot_file(data: &[u8]) {
    let fs = SimFs::new();
    let dir = Path::new("/f");
    let _ = fs.create_dir_all(dir);
    let p = dir.join("snap-00000000000000000001.kvs");
    fs.write_file(&p, data.to_vec());
    let mut n = 0u64;
    if let Ok(info) = crate::kv::checkpoint::read(&fs, &p, |_, _, _| n += 1) {
        assert_eq!(info.count, n);
    }
}

/// Treat `data` as a program: operations on a store on SimFs with a crash
/// countdown, then recovery, checked against a model: the recovered state
/// equals the model after some prefix of the operations no shorter than
/// the acknowledged ones.
pub fn ops_with_crash(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let dir = "/ops";
    let fs = SimFs::new();
    let _ = fs.create_dir_all(Path::new(dir));
    let opts = Options {
        segment_size: 64 << 10,
        max_wal_size: 0,
        ..Options::default()
    };
    fs.crash_at(1 + u64::from(data[0]) * 3);
    let mode = CrashMode::ALL[data[1] as usize % CrashMode::ALL.len()];
    let fsa: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut states = vec![model.clone()];
    let (mut acked, mut attempted) = (0usize, 0usize);
    if let Ok(db) = Db::open_with_fs(dir, opts.clone(), fsa) {
        for chunk in data[2..].chunks(3) {
            let op = chunk[0] % 8;
            let k = vec![b'k', chunk.get(1).copied().unwrap_or(0) % 16];
            let other = vec![b'k', (k[1] + 1) % 16];
            let v = vec![chunk.get(2).copied().unwrap_or(0); 1 + (chunk[0] as usize % 5) * 300];
            // The state if this operation takes effect (it may, even when
            // it fails: a failed write is in doubt).
            let mut next = model.clone();
            let r = match op {
                0..=3 => {
                    next.insert(k.clone(), v.clone());
                    db.set(&k, &v)
                }
                4 | 5 => {
                    next.remove(&k);
                    db.delete(&k)
                }
                6 => {
                    next.insert(k.clone(), v.clone());
                    next.remove(&other);
                    let mut b = WriteBatch::new();
                    b.put(&k, &v).delete(&other);
                    db.write(b)
                }
                _ => db.checkpoint(),
            };
            attempted += 1;
            states.push(next.clone());
            if r.is_err() {
                break;
            }
            model = next;
            acked = attempted;
        }
        db.crash_for_testing();
    }
    let img: Arc<dyn FileSystem> = Arc::new(fs.crash_image(mode, u64::from(data[1])));
    let db =
        Db::open_with_fs(dir, opts, img).expect("recovery after a simulated crash must succeed");
    let got: BTreeMap<Vec<u8>, Vec<u8>> = db.iter().map(|r| r.expect("iter")).collect();
    assert!(
        (acked..=attempted).any(|i| states[i] == got),
        "recovered state is not an allowed prefix"
    );
    db.crash_for_testing();
}
