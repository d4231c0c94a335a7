//! `Options::read_only`: inspection of a store without its lock, beside a
//! writer, changing nothing on disk.
mod common;
use common::*;
use keyval::{Db, Error, Options, WriteBatch};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

fn read_only() -> Options {
    Options {
        read_only: true,
        ..small_opts()
    }
}

/// Every file of `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

/// A crashed store with a torn tail: a read-only open sees the durable
/// prefix, refuses every write, and leaves every byte (and the torn tail)
/// as it was; a writer opens beside it, and a second writer is refused.
#[test]
fn read_only_changes_nothing_and_refuses_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    for i in 0..500u32 {
        db.set(format!("k{i:04}"), vec![7u8; 200]).expect("set");
    }
    db.checkpoint().expect("checkpoint");
    for i in 500..600u32 {
        db.set(format!("k{i:04}"), vec![8u8; 200]).expect("set");
    }
    db.keyspace("ks")
        .expect("keyspace")
        .set("a", "1")
        .expect("set");
    db.crash_for_testing();
    // A torn record after the last one.
    let seg = segments(dir.path()).pop().expect("segment");
    let bytes = std::fs::read(&seg).expect("read");
    let end = bytes.iter().rposition(|&b| b != 0).expect("data") as u64 + 1;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open");
    std::os::unix::fs::FileExt::write_all_at(&f, &[0xAB; 40], (end + 7) & !7).expect("tear");
    let before = files(dir.path());

    let ro = Db::open(dir.path(), read_only()).expect("read-only open");
    assert_eq!(ro.len().expect("len"), 600);
    assert_eq!(
        ro.get("k0599").expect("get").as_deref(),
        Some(&[8u8; 200][..])
    );
    assert_eq!(
        ro.open_keyspace("ks")
            .expect("ks")
            .get("a")
            .expect("get")
            .as_deref(),
        Some(&b"1"[..])
    );
    let st = ro.stats().expect("stats");
    assert!(
        st.recovery.truncation.is_some(),
        "the torn tail is seen and reported"
    );
    for r in [
        ro.set("x", "y"),
        ro.delete("k0001"),
        ro.write({
            let mut b = WriteBatch::new();
            b.put("x", "y");
            b
        }),
        ro.checkpoint(),
        ro.keyspace("new").map(|_| ()),
        ro.collection("c").map(|_| ()),
    ] {
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    }
    // No lock taken: a writer opens beside it; a second writer does not.
    let w = Db::open(dir.path(), small_opts()).expect("a writer opens beside a reader");
    assert!(matches!(
        Db::open(dir.path(), small_opts()),
        Err(Error::Locked(_))
    ));
    drop(w);
    // (The writer truncated the tail; reset the directory to compare.)
    ro.close().expect("close");
    let dir2 = tempfile::tempdir().expect("tempdir");
    for (name, data) in &before {
        std::fs::write(dir2.path().join(name), data).expect("copy");
    }
    let ro = Db::open(dir2.path(), read_only()).expect("read-only open");
    assert_eq!(ro.len().expect("len"), 600);
    ro.sync().expect("sync is a no-op");
    drop(ro);
    assert_eq!(
        files(dir2.path()),
        before,
        "not a byte changed, no file added"
    );
    let missing = dir.path().join("missing");
    assert!(matches!(
        Db::open(&missing, read_only()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(!missing.exists(), "read-only opens create nothing");
}

/// Child: writes batches of 10 keys `b{n}:{0..9}` (batch n in one record)
/// with small segments and frequent checkpoints, so segments rotate and
/// are removed while readers open; prints `ACK n` after each.
#[test]
#[ignore = "child process entry point"]
fn read_only_writer_child() {
    let Ok(dir) = std::env::var("KEYVAL_RO_CHILD") else {
        return;
    };
    let opts = Options {
        max_wal_size: 32 << 10,
        keep_snapshots: 1,
        ..small_opts()
    };
    let db = Db::open(&dir, opts).expect("child open");
    for n in 0u64.. {
        let mut b = WriteBatch::new();
        // 1 KiB values: segments (64 KiB) rotate every few batches and a
        // checkpoint (every 32 KiB of WAL) removes the old ones.
        let mut v = n.to_le_bytes().to_vec();
        v.resize(1024, (n % 251) as u8);
        for j in 0..10 {
            b.put(format!("b{n:08}:{j}"), &v);
        }
        db.write(b).expect("write");
        println!("ACK {n}");
        std::io::stdout().flush().expect("flush");
    }
}

/// A writer process under load and read-only readers opening and scanning
/// again and again: a reader never fails except with the documented retry
/// error, never sees a torn batch, and sees at least every batch
/// acknowledged before it opened.
#[test]
fn read_only_beside_a_live_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("exe");
    let mut child = Command::new(&exe)
        .args([
            "--ignored",
            "--exact",
            "read_only_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KEYVAL_RO_CHILD", dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut acked: Option<u64>;
    let next_ack = |lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>| {
        for l in lines.by_ref() {
            if let Some(n) = l.expect("line").strip_prefix("ACK ") {
                return n.parse::<u64>().expect("n");
            }
        }
        panic!("the writer stopped");
    };
    acked = Some(next_ack(&mut lines));
    let (mut opened, mut retried) = (0, 0);
    // Up to 100 opens, or 20 s (debug builds on a busy machine are slow);
    // no timing is asserted.
    let started = std::time::Instant::now();
    while opened + retried < 100 && (started.elapsed().as_secs() < 20 || opened < 10) {
        // Drain what the writer acknowledged so far (at least one more).
        let seen_before = next_ack(&mut lines);
        acked = acked.max(Some(seen_before));
        let ro = match Db::open(dir.path(), read_only()) {
            Ok(db) => db,
            Err(Error::Io { errno: Some(e), .. }) if e == libc::ENOENT => {
                retried += 1;
                continue;
            }
            Err(e) => panic!("read-only open beside a writer: {e}"),
        };
        opened += 1;
        let mut batches: BTreeMap<u64, usize> = BTreeMap::new();
        for item in ro.iter() {
            let (k, v) = item.expect("scan");
            let n = u64::from_le_bytes(v[..8].try_into().expect("8 bytes"));
            let ks = String::from_utf8(k).expect("utf-8");
            assert!(ks.starts_with(&format!("b{n:08}:")), "{ks} holds {n}");
            *batches.entry(n).or_default() += 1;
        }
        for (n, count) in &batches {
            assert_eq!(*count, 10, "batch {n} is torn: {count} of 10 keys");
        }
        for n in 0..=seen_before {
            assert!(batches.contains_key(&n), "acknowledged batch {n} missing");
        }
        let last = *batches.keys().last().expect("batches");
        assert_eq!(batches.len() as u64, last + 1, "a prefix of the history");
        drop(ro);
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    eprintln!("read-only opens: {opened} ok, {retried} asked to retry; writer at batch {acked:?}");
    assert!(
        opened >= 10 && opened >= retried,
        "{opened} read-only opens succeeded, {retried} asked to retry"
    );
    // The writer's directory is a sound store afterwards.
    let db = Db::open(dir.path(), small_opts()).expect("writer reopens");
    assert!(db.len().expect("len") >= 10 * (acked.expect("acked") + 1));
}

/// A read-only open in salvage mode shows what survives damage without
/// writing the salvaged baseline (a writer's salvage open would).
#[test]
fn read_only_salvage_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    for i in 0..300u32 {
        db.set(format!("k{i:04}"), vec![1u8; 300]).expect("set");
    }
    db.crash_for_testing();
    // Damage a record in the middle of the first segment.
    let seg = segments(dir.path()).remove(0);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open");
    std::os::unix::fs::FileExt::write_all_at(&f, &[0xAB; 16], 20_000).expect("damage");
    let before = files(dir.path());
    assert!(matches!(
        Db::open(dir.path(), read_only()),
        Err(Error::Corruption { .. })
    ));
    let salvage = Options {
        recovery_mode: keyval::RecoveryMode::TolerateAnyCorruption,
        ..read_only()
    };
    let ro = Db::open(dir.path(), salvage).expect("read-only salvage");
    let n = ro.len().expect("len");
    assert!(n > 0 && n < 300, "{n} keys survive");
    drop(ro);
    assert_eq!(files(dir.path()), before, "nothing written");
}
