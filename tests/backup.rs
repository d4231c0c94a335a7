//! Online backup (`Db::backup`, `RaftLog::backup`): backups taken while
//! writers write are consistent prefixes holding every acknowledged write;
//! a killed backup never leaves a store that opens with data missing.
mod common;
use common::*;
use keyval::raft::{Entry, HardState, RaftLog, SnapshotMeta};
use keyval::{Db, Error, Options, WriteBatch};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const WRITERS: u64 = 3;

/// A store that rotates segments and checkpoints (removing old segments
/// and snapshots) while the backups run.
fn busy_opts() -> Options {
    Options {
        max_wal_size: 32 << 10,
        keep_snapshots: 1,
        ..small_opts()
    }
}

/// Writer `w`'s batch `n`: two keys in the default keyspace and one in
/// keyspace `ks`, all in one record.
fn batch(ks: &keyval::Keyspace, w: u64, n: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    let v = vec![(n % 251) as u8; 100 + (n % 7) as usize * 50];
    b.put(format!("w{w}:{n:08}:a"), &v)
        .put(format!("w{w}:{n:08}:b"), &v)
        .put_in(ks, format!("w{w}:{n:08}"), n.to_le_bytes());
    b
}

/// Check that `db` holds, for every writer, batches `0..=k` whole for some
/// `k >= acked[w]` and nothing else. Returns the per-writer counts.
fn check_prefix(db: &Db, acked: &[Option<u64>]) -> Vec<u64> {
    let ks = db.open_keyspace("ks").expect("keyspace in the backup");
    let mut out = Vec::new();
    for w in 0..WRITERS {
        let mut n = 0u64;
        while db.contains(format!("w{w}:{n:08}:a")).expect("get") {
            let v = db.get(format!("w{w}:{n:08}:b")).expect("get");
            assert_eq!(
                v.map(|v| v.len()),
                Some(100 + (n % 7) as usize * 50),
                "torn batch {w}/{n}"
            );
            assert_eq!(
                ks.get(format!("w{w}:{n:08}")).expect("get").as_deref(),
                Some(&n.to_le_bytes()[..]),
                "torn batch {w}/{n} (keyspace part)"
            );
            n += 1;
        }
        if let Some(a) = acked[w as usize] {
            assert!(n > a, "writer {w}: batch {a} was acknowledged before the backup began, the backup holds only {n}");
        }
        // Nothing after the prefix: a consistent cut, not a scattering.
        let after = db
            .prefix(format!("w{w}:"))
            .filter(|r| r.as_ref().is_ok_and(|(k, _)| k.ends_with(b":a")))
            .count() as u64;
        assert_eq!(after, n, "writer {w}: batches beyond the prefix");
        out.push(n);
    }
    assert_eq!(
        db.len().expect("len"),
        out.iter().sum::<u64>() * 2,
        "no stray keys"
    );
    out
}

/// Backups taken while three writers write (segments rotating, background
/// checkpoints deleting old files): each reopens, verifies, sits at the LSN
/// it reports, holds every batch acknowledged before it began, and is a
/// consistent prefix of each writer's history (no torn batch). A backup
/// is also a working store: it takes writes and reopens.
#[test]
fn backups_during_concurrent_writes_are_consistent_prefixes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(Db::open(dir.path(), busy_opts()).expect("open"));
    let ks = db.create_keyspace("ks").expect("keyspace");
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let (db, ks, acked, stop) = (
            Arc::clone(&db),
            ks.clone(),
            Arc::clone(&acked),
            Arc::clone(&stop),
        );
        handles.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) || n < 20 {
                db.write(batch(&ks, w, n)).expect("write");
                // acked holds n + 1: 0 means "none yet".
                acked[w as usize].store(n + 1, Ordering::SeqCst);
                n += 1;
            }
        }));
    }
    let mut taken: Vec<(PathBuf, Vec<Option<u64>>, keyval::BackupInfo)> = Vec::new();
    for i in 0..8 {
        while acked.iter().any(|a| a.load(Ordering::SeqCst) < 5 * (i + 1)) {
            std::thread::yield_now();
        }
        let before: Vec<Option<u64>> = acked
            .iter()
            .map(|a| a.load(Ordering::SeqCst).checked_sub(1))
            .collect();
        let dest = out.path().join(format!("b{i}"));
        let info = db.backup(&dest).expect("backup");
        assert!(info.bytes > 0);
        taken.push((dest, before, info));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("writer");
    }
    let stats = db.stats().expect("stats");
    assert!(
        stats.checkpoints > 0,
        "checkpoints ran while the backups were taken"
    );
    let mut last_counts = vec![0; WRITERS as usize];
    for (dest, before, info) in &taken {
        let report =
            keyval::internals::verify::verify_dir(&keyval::fs::RealFs, dest).expect("verify");
        assert!(
            report.problems.is_empty(),
            "verify {}: {report:?}",
            dest.display()
        );
        let b = Db::open(dest, Options::default()).expect("open backup");
        assert_eq!(b.stats().expect("stats").last_lsn, info.lsn);
        let counts = check_prefix(&b, before);
        // Later backups never hold less.
        for (c, l) in counts.iter().zip(&last_counts) {
            assert!(c >= l, "a later backup went back in time");
        }
        last_counts = counts;
        b.close().expect("close");
    }
    // A backup is a store like any other: it takes writes and keeps them.
    let dest = &taken[0].0;
    let b = Db::open(dest, Options::default()).expect("open");
    b.set("after", "restore").expect("set");
    b.close().expect("close");
    let b = Db::open(dest, Options::default()).expect("reopen");
    assert_eq!(
        b.get("after").expect("get").as_deref(),
        Some(&b"restore"[..])
    );
    b.delete("after").expect("delete");
    check_prefix(&b, &taken[0].1);
}

/// A read-only handle backs up what it sees; the backup of an empty store
/// is an empty store; bad destinations are refused and change nothing.
#[test]
fn backup_destinations_and_read_only_handles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    db.backup(out.path().join("empty")).expect("backup empty");
    let e = Db::open(out.path().join("empty"), Options::default()).expect("open");
    assert_eq!(e.len().expect("len"), 0);
    drop(e);
    for i in 0..300u32 {
        db.set(format!("k{i:03}"), [i as u8; 300]).expect("set");
    }
    let ro = Db::open(
        dir.path(),
        Options {
            read_only: true,
            ..small_opts()
        },
    )
    .expect("read-only");
    db.set("later", "x").expect("set");
    ro.backup(out.path().join("ro"))
        .expect("backup from read-only");
    let b = Db::open(out.path().join("ro"), Options::default()).expect("open");
    assert_eq!(b.len().expect("len"), 300, "the read-only view, not later");
    assert_eq!(
        b.get("k299").expect("get").as_deref(),
        Some(&[43u8; 300][..])
    );
    drop(b);

    // An existing destination (even an empty directory) is refused.
    let taken = out.path().join("taken");
    std::fs::create_dir(&taken).expect("mkdir");
    for bad in [
        taken.clone(),
        out.path().join("no/such/parent"),
        PathBuf::new(),
    ] {
        match db.backup(&bad) {
            Err(Error::InvalidArgument(_)) => {}
            other => panic!("backup to {}: {other:?}", bad.display()),
        }
    }
    assert_eq!(std::fs::read_dir(&taken).expect("ls").count(), 0);
    db.close().expect("close");
    assert!(matches!(
        db.backup(out.path().join("c")),
        Err(Error::Closed)
    ));
}

/// The staging directory of a backup that stopped half-way (the marker and
/// some files) refuses to open as a store and to verify; the next backup to
/// the same destination clears it and succeeds.
#[test]
fn an_unfinished_backup_is_refused_and_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    db.set("k", "v").expect("set");
    let dest = out.path().join("b");
    db.backup(&dest).expect("backup");
    // Make a copy of it look interrupted: its files and the marker.
    let staging = out.path().join(".c.backup-tmp.1.2.0");
    std::fs::create_dir(&staging).expect("mkdir");
    for e in std::fs::read_dir(&dest).expect("ls") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), staging.join(e.file_name())).expect("copy");
    }
    std::fs::write(
        staging.join(keyval::internals::backup::INCOMPLETE_MARKER),
        "x",
    )
    .expect("marker");
    for opts in [
        Options::default(),
        Options {
            read_only: true,
            ..Options::default()
        },
    ] {
        match Db::open(&staging, opts) {
            Err(Error::Corruption { detail, .. }) => {
                assert!(detail.contains("unfinished backup"), "{detail}")
            }
            other => panic!("opening an unfinished backup: {other:?}"),
        }
    }
    assert!(keyval::internals::verify::verify_dir(&keyval::fs::RealFs, &staging).is_err());
    // A directory with a staging name that is not a backup is left alone,
    // and the backup is built elsewhere.
    let other = out.path().join(".d.backup-tmp");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("mine"), "user data").expect("write");
    db.backup(out.path().join("d")).expect("backup beside it");
    assert_eq!(
        std::fs::read(other.join("mine")).expect("kept"),
        b"user data"
    );
    // The interrupted one is cleared and replaced.
    db.backup(out.path().join("c"))
        .expect("backup over leftovers");
    assert!(!staging.exists());
    let c = Db::open(out.path().join("c"), Options::default()).expect("open");
    assert_eq!(c.get("k").expect("get").as_deref(), Some(&b"v"[..]));
}

/// Child: back up the store in `KEYVAL_BACKUP_CHILD` to `<out>/b0`,
/// `<out>/b1`, ... forever, printing `DONE i` after each.
#[test]
#[ignore = "child process entry point"]
fn backup_child() {
    let Ok(dir) = std::env::var("KEYVAL_BACKUP_CHILD") else {
        return;
    };
    let out = PathBuf::from(std::env::var("KEYVAL_BACKUP_OUT").expect("out"));
    let db = Db::open(&dir, small_opts()).expect("child open");
    for i in 0u64.. {
        db.backup(out.join(format!("b{i}"))).expect("backup");
        println!("DONE {i}");
        std::io::stdout().flush().expect("flush");
    }
}

const KILL_KEYS: u32 = 3000;

fn check_complete(dest: &Path) {
    let b = Db::open(dest, Options::default()).expect("a finished backup opens");
    assert_eq!(b.len().expect("len"), KILL_KEYS as u64);
    assert_eq!(
        b.get(format!("k{:05}", KILL_KEYS - 1))
            .expect("get")
            .map(|v| v.len()),
        Some(2000)
    );
}

/// Backups killed with SIGKILL at random points: every destination is
/// complete, missing, or refuses to open with `Corruption` (the marker);
/// a left-over staging directory refuses to open too. Never a store that
/// opens with data missing.
#[test]
fn a_killed_backup_is_never_a_silently_partial_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Db::open(dir.path(), small_opts()).expect("open");
        for i in 0..KILL_KEYS {
            db.set(format!("k{i:05}"), vec![(i % 251) as u8; 2000])
                .expect("set");
        }
    }
    let mut rng = Rng(0x5eed_b4c0);
    let (mut interrupted, mut finished) = (0, 0);
    for round in 0..4 {
        let out = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--ignored",
                "--exact",
                "backup_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KEYVAL_BACKUP_CHILD", dir.path())
            .env("KEYVAL_BACKUP_OUT", out.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut done = Vec::new();
        for l in lines.by_ref() {
            if let Some(i) = l.expect("line").strip_prefix("DONE ") {
                done.push(i.parse::<u64>().expect("i"));
                break;
            }
        }
        assert!(
            !done.is_empty(),
            "round {round}: the child never finished a backup"
        );
        std::thread::sleep(std::time::Duration::from_millis(rng.below(150)));
        child.kill().expect("kill");
        child.wait().expect("wait");
        for l in lines {
            if let Some(i) = l.expect("line").strip_prefix("DONE ") {
                done.push(i.parse::<u64>().expect("i"));
            }
        }
        let next = done.iter().max().copied().unwrap_or(0) + 1;
        for i in 0..=next {
            let dest = out.path().join(format!("b{i}"));
            let prefix = format!(".b{i}.backup-tmp.");
            let stagings: Vec<std::path::PathBuf> = std::fs::read_dir(out.path())
                .expect("ls")
                .map(|e| e.expect("entry").path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                })
                .collect();
            if done.contains(&i) {
                check_complete(&dest);
                finished += 1;
                continue;
            }
            // The backup the kill interrupted (or one never started).
            if dest.exists() {
                match Db::open(&dest, Options::default()) {
                    Err(Error::Corruption { detail, .. }) => {
                        assert!(detail.contains("unfinished backup"), "{detail}");
                        interrupted += 1;
                    }
                    // Killed after the marker was removed, before DONE.
                    Ok(db) => {
                        drop(db);
                        check_complete(&dest)
                    }
                    Err(e) => panic!("an interrupted backup: {e}"),
                }
            }
            for staging in stagings {
                interrupted += 1;
                // Killed between its mkdir and its marker: empty.
                if std::fs::read_dir(&staging).expect("ls").next().is_none() {
                    continue;
                }
                match Db::open(&staging, Options::default()) {
                    Err(Error::Corruption { detail, .. }) => {
                        assert!(detail.contains("unfinished backup"), "{detail}")
                    }
                    other => panic!("a staging directory opened: {other:?}"),
                }
            }
        }
    }
    assert!(finished >= 4);
    assert!(
        interrupted > 0,
        "no kill landed inside a backup: the test checked nothing"
    );
}

fn raft_opts() -> Options {
    Options {
        segment_size: 64 << 10,
        ..Options::default()
    }
}

fn data(index: u64) -> Vec<u8> {
    let mut d = index.to_le_bytes().to_vec();
    d.resize(200 + (index % 13) as usize * 20, (index % 251) as u8);
    d
}

/// Raft log backups while an appender appends, compacts (truncate prefix,
/// which deletes segments), truncates suffixes, saves hard states and
/// snapshots: each backup opens, holds a contiguous run of correct entries
/// reaching at least the last append acknowledged before it began, a hard
/// state and a snapshot no older than its first index needs.
#[test]
fn raft_backups_during_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(RaftLog::open(dir.path(), raft_opts()).expect("open"));
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (log, acked, stop) = (Arc::clone(&log), Arc::clone(&acked), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut next = 1u64;
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) || next < 200 {
                round += 1;
                let es: Vec<Entry> = (next..next + 5)
                    .map(|i| Entry {
                        index: i,
                        term: 1,
                        data: data(i),
                    })
                    .collect();
                log.append(&es).expect("append");
                next += 5;
                if round % 7 == 0 {
                    // Rewrite the last two entries (same data: the checker
                    // derives data from the index).
                    log.truncate_suffix(next - 2).expect("truncate suffix");
                    next -= 2;
                }
                acked.store(next - 1, Ordering::SeqCst);
                if round % 10 == 0 {
                    log.save_hard_state(&HardState {
                        term: 1,
                        vote: b"n1".to_vec(),
                        commit: next - 1,
                    })
                    .expect("hard state");
                }
                if round % 25 == 0 {
                    let upto = next - 50;
                    log.save_snapshot(
                        &SnapshotMeta {
                            last_index: upto,
                            last_term: 1,
                            config: b"cfg".to_vec(),
                        },
                        &mut &upto.to_le_bytes()[..],
                    )
                    .expect("snapshot");
                    log.truncate_prefix(upto).expect("truncate prefix");
                }
            }
        })
    };
    let mut taken = Vec::new();
    for i in 0..6u64 {
        while acked.load(Ordering::SeqCst) < 300 * (i + 1) {
            std::thread::yield_now();
        }
        let before = acked.load(Ordering::SeqCst);
        let dest = out.path().join(format!("r{i}"));
        log.backup(&dest).expect("backup");
        taken.push((dest, before));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    for (dest, before) in &taken {
        let b = RaftLog::open(dest, raft_opts()).expect("open backup");
        let first = b.first_index().expect("first");
        let last = b.last_index().expect("last").expect("entries");
        assert!(
            last >= *before,
            "entry {before} was acknowledged before the backup; it holds up to {last}"
        );
        for i in first..=last {
            let e = b.entry(i).expect("entry");
            assert_eq!(e.data, data(i), "entry {i} of {}", dest.display());
        }
        assert!(b.hard_state().expect("hs").is_some());
        if first > 1 {
            let (meta, snap) = b.snapshot().expect("snapshot").expect("a snapshot");
            assert!(
                meta.last_index + 1 >= first,
                "the snapshot covers the compacted prefix"
            );
            assert_eq!(snap, meta.last_index.to_le_bytes());
            assert_eq!(
                b.last_purged().expect("purged").map(|p| p.0),
                Some(first - 1)
            );
        }
        // It goes on as a log.
        b.append(&[Entry {
            index: last + 1,
            term: 2,
            data: data(last + 1),
        }])
        .expect("append to the backup");
        b.close().expect("close");
        let b = RaftLog::open(dest, raft_opts()).expect("reopen backup");
        assert_eq!(b.last_index().expect("last"), Some(last + 1));
    }
    assert!(
        taken.iter().any(|(d, _)| {
            RaftLog::open(d, raft_opts())
                .and_then(|b| b.first_index())
                .is_ok_and(|f| f > 1)
        }),
        "some backup was taken after a compaction"
    );
}
