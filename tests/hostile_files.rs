//! Issue 29, sections 1–2 and 6: a store directory with planted symlinks,
//! FIFOs, sparse and oversized files. Every open, checkpoint, backup and
//! verify either refuses with a clear error or works; nothing hangs,
//! nothing aborts on allocation, and nothing outside the directory
//! changes (a decoy tree is compared byte for byte before and after).
//!
//! Each case failed on the old code: a FIFO hung `open` and `verify`
//! forever, a sparse 100 GiB segment or a link to `/dev/zero` aborted the
//! process, and planted `*.tmp` / `*.wal.prep` links made a checkpoint or
//! a rotation write through them.
mod common;
use common::*;
use keyval::{Db, Error, Options, RecoveryMode};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// A tree outside the store that planted links point into.
struct Decoy {
    _dir: tempfile::TempDir,
    root: PathBuf,
    before: BTreeMap<PathBuf, Vec<u8>>,
}

impl Decoy {
    fn new() -> Decoy {
        let dir = tempfile::tempdir().expect("decoy dir");
        let root = dir.path().to_path_buf();
        for i in 0..4 {
            std::fs::write(root.join(format!("victim{i}")), format!("precious {i}\n"))
                .expect("write decoy");
        }
        let before = Decoy::read(&root);
        Decoy {
            _dir: dir,
            root,
            before,
        }
    }
    fn read(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        std::fs::read_dir(root)
            .expect("ls decoy")
            .map(|e| {
                let p = e.expect("entry").path();
                let b = std::fs::read(&p).expect("read decoy");
                (p, b)
            })
            .collect()
    }
    fn file(&self, i: usize) -> PathBuf {
        self.root.join(format!("victim{i}"))
    }
    fn assert_untouched(&self, what: &str) {
        assert_eq!(
            Decoy::read(&self.root),
            self.before,
            "{what}: a file outside the store changed"
        );
    }
}

/// Run `f` on its own thread; fail the test (rather than hang it) if it
/// has not returned after a minute. A hang is the defect being tested.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what}: hung"))
}

fn verify(dir: &Path) -> keyval::Result<keyval::internals::verify::Report> {
    keyval::internals::verify::verify_dir(&keyval::fs::RealFs, dir)
}

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
    // Safety: `c` is a valid NUL-terminated path for the call's duration.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}", p.display());
}

/// A store with several segments and two snapshots, closed cleanly.
fn lived(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let db = Db::open(dir, small_opts()).expect("open");
    let mut m = BTreeMap::new();
    for i in 0..200u32 {
        let (k, v) = (format!("k{i:04}").into_bytes(), vec![i as u8; 900]);
        db.set(&k, &v).expect("set");
        m.insert(k, v);
        if i == 80 || i == 160 {
            db.checkpoint().expect("checkpoint");
        }
    }
    db.crash_for_testing();
    assert!(segments(dir).len() >= 3);
    m
}

fn contents(db: &Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.iter().map(|r| r.expect("iter")).collect()
}

fn opts(mode: RecoveryMode, read_only: bool) -> Options {
    Options {
        recovery_mode: mode,
        read_only,
        ..small_opts()
    }
}

/// Every way of opening (default, read-only, salvage) and `verify` must
/// return, and `check` judges each result.
fn every_open(
    dir: &Path,
    what: &str,
    check: impl Fn(&str, keyval::Result<Db>) + Send + Copy + 'static,
) {
    for (name, mode, ro) in [
        ("default", RecoveryMode::TolerateTailCorruption, false),
        ("read-only", RecoveryMode::TolerateTailCorruption, true),
        (
            "read-only salvage",
            RecoveryMode::TolerateAnyCorruption,
            true,
        ),
    ] {
        let d = dir.to_path_buf();
        let w = format!("{what}, {name} open");
        let w2 = w.clone();
        bounded(&w, move || check(&w2, Db::open(&d, opts(mode, ro))));
    }
    let d = dir.to_path_buf();
    let w = format!("{what}, verify");
    let r = bounded(&w, move || verify(&d));
    assert!(
        match &r {
            Ok(rep) => rep.has_corruption(),
            Err(_) => true,
        },
        "{w}: verify passed: {r:?}"
    );
}

fn refused_naming(needle: &'static str) -> impl Fn(&str, keyval::Result<Db>) + Send + Copy {
    move |what: &str, r: keyval::Result<Db>| match r {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(needle), "{what}: unclear error: {msg}");
        }
        Ok(_) => panic!("{what}: opened"),
    }
}

/// A lived store with its newest segment or snapshot (`newest`) replaced
/// by what `plant` makes at that path; every open and `verify` must
/// refuse it with an error containing `needle`. Returns the store and the
/// planted path.
fn planted(
    newest: fn(&Path) -> Vec<PathBuf>,
    plant: impl FnOnce(&Path),
    what: &str,
    needle: &'static str,
) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().expect("tempdir");
    lived(t.path());
    let victim = newest(t.path()).pop().expect("file");
    std::fs::remove_file(&victim).expect("rm");
    plant(&victim);
    every_open(t.path(), what, refused_naming(needle));
    (t, victim)
}

#[test]
fn fifo_in_place_of_the_newest_segment_is_refused_not_waited_on() {
    planted(segments, mkfifo, "FIFO segment", "not a regular file");
}

#[test]
fn fifo_in_place_of_the_newest_snapshot_is_refused_not_waited_on() {
    planted(snapshots, mkfifo, "FIFO snapshot", "not a regular file");
}

#[test]
fn segment_that_links_to_dev_zero_is_refused() {
    let (t, newest) = planted(
        segments,
        |p| symlink("/dev/zero", p).expect("symlink"),
        "segment -> /dev/zero",
        "symbolic link",
    );
    // Salvage refuses it too: it is not a segment KeyVal wrote.
    let d = t.path().to_path_buf();
    let r = bounded("salvage of a link", move || {
        Db::open(&d, opts(RecoveryMode::TolerateAnyCorruption, false)).map(|_| ())
    });
    assert!(
        matches!(&r, Err(e) if e.to_string().contains("symbolic link")),
        "{r:?}"
    );
    assert!(std::fs::symlink_metadata(&newest)
        .expect("still there")
        .file_type()
        .is_symlink());
}

/// A sparse 100 GiB segment: with its header intact only the size the
/// header records is read (the store opens with every key); with its
/// header damaged the default open refuses it and salvage reads only the
/// blocks the file occupies.
#[test]
fn sparse_100_gib_segment_costs_a_bounded_read() {
    for damage_header in [false, true] {
        let t = tempfile::tempdir().expect("tempdir");
        let written = lived(t.path());
        let newest = segments(t.path()).pop().expect("seg");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&newest)
            .expect("open");
        f.set_len(100 << 30).expect("sparse");
        if damage_header {
            use std::os::unix::fs::FileExt;
            f.write_all_at(&[0xFF; 8], 16).expect("damage");
        }
        drop(f);
        let d = t.path().to_path_buf();
        let w = written.clone();
        bounded("sparse segment", move || {
            let r = Db::open(&d, opts(RecoveryMode::TolerateTailCorruption, true));
            if damage_header {
                assert!(matches!(r, Err(Error::Corruption { .. })), "{r:?}");
            } else {
                assert_eq!(contents(&r.expect("read-only open")), w);
            }
            let db = Db::open(&d, opts(RecoveryMode::TolerateAnyCorruption, false))
                .expect("salvage open");
            assert_eq!(contents(&db), w);
            db.close().expect("close");
            let db = Db::open(&d, small_opts()).expect("default open after salvage");
            assert_eq!(contents(&db), w);
            db.close().expect("close");
        });
    }
}

/// A sparse 100 GiB newest snapshot: its SHA-256 or its length check fails
/// early (the entry count is checked against the file's size and entries
/// are read in order), and recovery falls back to the older snapshot plus
/// the WAL, reporting the rejected one.
#[test]
fn sparse_100_gib_snapshot_is_rejected_without_reading_it_all() {
    let t = tempfile::tempdir().expect("tempdir");
    let written = lived(t.path());
    let newest = snapshots(t.path()).pop().expect("snap");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .expect("open")
        .set_len(100 << 30)
        .expect("sparse");
    let d = t.path().to_path_buf();
    let newest2 = newest.clone();
    bounded("sparse snapshot", move || {
        let newest = newest2;
        let db =
            Db::open(&d, opts(RecoveryMode::TolerateTailCorruption, true)).expect("read-only open");
        assert_eq!(contents(&db), written);
        assert_eq!(db.stats().expect("stats").recovery.snapshots_rejected, 1);
        let rep = verify(&d).expect("verify");
        assert!(
            rep.problems.iter().any(|p| p.file == newest),
            "verify did not report the 100 GiB snapshot: {:?}",
            rep.problems
        );
    });
}

#[test]
fn planted_snapshot_tmp_links_are_not_followed() {
    let decoy = Decoy::new();
    let t = tempfile::tempdir().expect("tempdir");
    let db = Db::open(t.path(), small_opts()).expect("open");
    // Whatever LSN the next checkpoints take, a link waits under its
    // temporary name.
    for lsn in 0..=400u64 {
        let tmp = t.path().join(format!("snap-{lsn:020}.kvs.tmp"));
        symlink(decoy.file(lsn as usize % 4), &tmp).expect("plant");
    }
    for i in 0..300u32 {
        db.set(format!("k{i}"), vec![7u8; 100]).expect("set");
        if i % 100 == 99 {
            db.checkpoint().expect("checkpoint");
        }
    }
    db.close().expect("close");
    decoy.assert_untouched("checkpoint over planted .kvs.tmp links");
    all_regular_and_300_keys(t.path(), snapshots(t.path()));
}

/// Every file of `files` is a regular file (no planted link was installed
/// under a store name), and the store reopens with its 300 keys.
fn all_regular_and_300_keys(dir: &Path, files: Vec<PathBuf>) {
    for f in files {
        let m = std::fs::symlink_metadata(&f).expect("meta");
        assert!(
            m.file_type().is_file(),
            "{} is not a regular file",
            f.display()
        );
    }
    let db = Db::open(dir, small_opts()).expect("reopen");
    assert_eq!(db.iter().count(), 300);
}

#[test]
fn planted_segment_prep_links_are_not_followed() {
    let decoy = Decoy::new();
    let t = tempfile::tempdir().expect("tempdir");
    let db = Db::open(t.path(), small_opts()).expect("open");
    for id in 0..=40u64 {
        let prep = t.path().join(format!("{id:020}.wal.prep"));
        if !prep.exists() {
            symlink(decoy.file(id as usize % 4), &prep).expect("plant");
        }
    }
    for i in 0..300u32 {
        db.set(format!("k{i}"), vec![9u8; 1000]).expect("set");
    }
    db.close().expect("close");
    decoy.assert_untouched("rotation over planted .wal.prep links");
    let segs = segments(t.path());
    // Several rotations happened (older segments were then removed by
    // checkpoints), each through a planted name.
    let newest = segs.last().expect("segment").file_name().expect("name");
    let id: u64 = newest.to_string_lossy()[..20].parse().expect("id");
    assert!(id >= 4, "{segs:?}");
    all_regular_and_300_keys(t.path(), segs);
}

#[test]
fn planted_lock_link_is_refused() {
    let decoy = Decoy::new();
    let t = tempfile::tempdir().expect("tempdir");
    Db::open(t.path(), small_opts())
        .expect("create")
        .close()
        .expect("close");
    let lock = t.path().join("LOCK");
    let _ = std::fs::remove_file(&lock);
    symlink(decoy.file(0), &lock).expect("plant");
    match Db::open(t.path(), small_opts()) {
        Err(e) => assert!(e.to_string().contains("symbolic link"), "{e}"),
        Ok(_) => panic!("opened through a planted LOCK link"),
    }
    decoy.assert_untouched("open with a planted LOCK link");
}

/// Issue 29 section 2: a staging directory planted next to a backup's
/// destination (in a shared parent such as /tmp) was adopted whoever owned
/// it, and followed if it was a link (the target's files were deleted and
/// the backup written there). Now the staging directory is always a fresh
/// exclusive `mkdir`; planted ones are left alone, and only this user's
/// own real leftovers (with the marker, or empty) are cleared.
#[test]
fn planted_backup_staging_directories_are_neither_adopted_nor_followed() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let decoy = Decoy::new();
    std::fs::write(
        decoy
            .root
            .join(keyval::internals::backup::INCOMPLETE_MARKER),
        "x",
    )
    .expect("marker");
    let decoy = Decoy {
        before: Decoy::read(&decoy.root),
        ..decoy
    };
    let src = tempfile::tempdir().expect("tempdir");
    let shared = tempfile::tempdir().expect("shared parent");
    let db = Db::open(src.path(), small_opts()).expect("open");
    db.set("k", "v").expect("set");

    // The old fixed name, and a plausible new one, as links to the decoy.
    symlink(&decoy.root, shared.path().join(".b.backup-tmp")).expect("plant");
    symlink(&decoy.root, shared.path().join(".b.backup-tmp.1.1.0")).expect("plant");
    // Another user's directory with the marker, mode 777.
    let foreign = shared.path().join(".b.backup-tmp.2.2.0");
    std::fs::create_dir(&foreign).expect("mkdir");
    std::fs::write(
        foreign.join(keyval::internals::backup::INCOMPLETE_MARKER),
        "x",
    )
    .expect("marker");
    std::fs::write(foreign.join("theirs"), "their data").expect("write");
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let root = nix_is_root();
    if root {
        std::os::unix::fs::lchown(&foreign, Some(65534), Some(65534)).expect("chown");
    }
    // This user's own leftovers: one with the marker, one empty.
    let mine = shared.path().join(".b.backup-tmp.3.3.0");
    std::fs::create_dir(&mine).expect("mkdir");
    std::fs::write(mine.join(keyval::internals::backup::INCOMPLETE_MARKER), "x").expect("marker");
    std::fs::write(mine.join("00000000000000000001.wal"), "partial").expect("write");
    let empty = shared.path().join(".b.backup-tmp.4.4.0");
    std::fs::create_dir(&empty).expect("mkdir");

    let dest = shared.path().join("b");
    db.backup(&dest).expect("backup");
    decoy.assert_untouched("backup beside planted staging links");
    let m = std::fs::symlink_metadata(&dest).expect("dest");
    assert!(m.file_type().is_dir(), "the backup is not a real directory");
    assert_eq!(m.uid(), std::fs::metadata(src.path()).expect("src").uid());
    assert_ne!(m.mode() & 0o777, 0o777, "the backup took a planted mode");
    let b = Db::open(&dest, Options::default()).expect("open backup");
    assert_eq!(b.get("k").expect("get").as_deref(), Some(&b"v"[..]));
    // Planted links and another user's directory stay; ours are cleared.
    assert!(std::fs::symlink_metadata(shared.path().join(".b.backup-tmp")).is_ok());
    assert!(std::fs::symlink_metadata(shared.path().join(".b.backup-tmp.1.1.0")).is_ok());
    if root {
        assert_eq!(
            std::fs::read(foreign.join("theirs")).expect("theirs kept"),
            b"their data"
        );
    }
    assert!(!mine.exists() && !empty.exists(), "own leftovers were kept");
}

fn nix_is_root() -> bool {
    // Safety: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::geteuid() };
    uid == 0
}
