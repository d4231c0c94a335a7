//! Named keyspaces: independence, atomic batches across keyspaces (also
//! across torn writes), durable create and drop, survival of checkpoints
//! and crashes, and stores written before keyspaces existed.
mod common;
use common::*;
use keyval::{Db, Error, WriteBatch};
use std::collections::BTreeMap;

fn pairs(it: keyval::Iter) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.collect::<Result<_, _>>().expect("iterate")
}

#[test]
fn keyspaces_are_independent_ordered_spaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    db.set("k", "default").expect("set");
    let a = db.keyspace("alpha").expect("alpha");
    let b = db.create_keyspace("beta").expect("beta");
    assert_eq!(
        db.keyspace("alpha").expect("again").id(),
        a.id(),
        "idempotent"
    );
    a.set("k", "in alpha").expect("set");
    b.set("k", "in beta").expect("set");
    b.set("j", "j").expect("set");
    assert_eq!(db.get("k").expect("get"), Some(b"default".to_vec()));
    assert_eq!(a.get("k").expect("get"), Some(b"in alpha".to_vec()));
    assert_eq!(b.get("k").expect("get"), Some(b"in beta".to_vec()));
    assert_eq!(
        db.len().expect("len"),
        1,
        "the default keyspace counts its own"
    );
    assert_eq!(b.len().expect("len"), 2);
    assert_eq!(
        pairs(b.iter()),
        vec![
            (b"j".to_vec(), b"j".to_vec()),
            (b"k".to_vec(), b"in beta".to_vec())
        ]
    );
    assert_eq!(pairs(b.prefix("k")).len(), 1);
    assert_eq!(pairs(b.range(b"a".as_slice()..b"k".as_slice())).len(), 1);
    let mut seen = 0;
    b.scan::<[u8], _>(.., |_, _| {
        seen += 1;
        true
    })
    .expect("scan");
    assert_eq!(seen, 2);
    assert_eq!(
        pairs(db.iter()).len(),
        1,
        "default iteration sees no keyspace"
    );
    assert_eq!(db.list_keyspaces().expect("list"), vec!["alpha", "beta"]);
    assert_eq!(db.stats().expect("stats").keyspaces, 2);
    let st = b.stats().expect("stats");
    assert_eq!((st.keys, st.key_bytes, st.value_bytes), (2, 2, 8));
    b.delete("j").expect("delete");
    assert_eq!(b.len().expect("len"), 1);
    assert!(matches!(db.open_keyspace("gamma"), Err(Error::NotFound(_))));
    for bad in ["", &"x".repeat(256)] {
        assert!(matches!(db.keyspace(bad), Err(Error::InvalidArgument(_))));
    }
    assert!(db.keyspace(&"x".repeat(255)).is_ok());
    assert!(matches!(a.set("", "v"), Err(Error::InvalidArgument(_))));
}

#[test]
fn drop_is_durable_and_stale_handles_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let a = db.keyspace("a").expect("a");
    for i in 0..500 {
        a.set(format!("{i:04}"), "v").expect("set");
    }
    let old_id = a.id();
    assert!(db.drop_keyspace("a").expect("drop"));
    assert!(!db.drop_keyspace("a").expect("second drop"));
    assert!(matches!(a.get("0001"), Err(Error::NotFound(_))));
    assert!(matches!(a.set("x", "y"), Err(Error::NotFound(_))));
    let mut batch = WriteBatch::new();
    batch.put("default", "1").put_in(&a, "x", "y");
    assert!(matches!(db.write(batch), Err(Error::NotFound(_))));
    assert_eq!(db.get("default").expect("get"), None, "nothing applied");
    let mut it = a.iter();
    assert!(matches!(it.next(), Some(Err(Error::NotFound(_)))));
    assert!(it.next().is_none());
    db.crash_for_testing();

    let db = Db::open(dir.path(), small_opts()).expect("reopen");
    assert!(db.list_keyspaces().expect("list").is_empty());
    let again = db.keyspace("a").expect("recreate");
    assert_ne!(again.id(), old_id, "ids are never reused");
    assert_eq!(again.len().expect("len"), 0, "the dropped keys stay gone");
    // Only the catalog's two entries remain in memory (500 dropped keys
    // would take over 30 000 bytes).
    let mem = db.stats().expect("stats").memory_bytes;
    assert!(mem < 200, "{mem} bytes in memory after the drop");
}

/// Model check over a lived store: random writes to three keyspaces and the
/// default one, drops and re-creations, explicit and background checkpoints
/// (a 16 KiB WAL threshold, so snapshots are written while writers run),
/// crashes and clean reopens; after every reopen each keyspace equals the
/// model.
#[test]
fn keyspaces_survive_checkpoints_and_crash_generations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x5eed_4b59);
    let names = ["", "users", "orders", "idx"];
    let mut model: BTreeMap<&str, BTreeMap<Vec<u8>, Vec<u8>>> = BTreeMap::new();
    model.insert("", BTreeMap::new());
    let opts = keyval::Options {
        max_wal_size: 16 << 10,
        ..small_opts()
    };
    let mut checkpoints = 0;
    for generation in 0..8 {
        let db = Db::open(dir.path(), opts.clone()).expect("open");
        for name in model.keys() {
            let got = if name.is_empty() {
                pairs(db.iter())
            } else {
                pairs(db.open_keyspace(name).expect("exists").iter())
            };
            let want: Vec<_> = model[name]
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(got, want, "generation {generation}, keyspace {name:?}");
        }
        let mut listed = db.list_keyspaces().expect("list");
        listed.insert(0, String::new());
        assert_eq!(
            listed,
            model.keys().map(|s| s.to_string()).collect::<Vec<_>>()
        );
        for step in 0..400 {
            let name = names[rng.below(4) as usize];
            if !name.is_empty() && rng.below(200) == 0 {
                db.drop_keyspace(name).expect("drop");
                model.remove(name);
                continue;
            }
            let mut batch = WriteBatch::new();
            let n = 1 + rng.below(4);
            for _ in 0..n {
                let name = names[rng.below(4) as usize];
                let ks = (!name.is_empty()).then(|| db.keyspace(name).expect("ks"));
                let m = model.entry(name).or_default();
                let key = format!("k{:03}", rng.below(150)).into_bytes();
                if rng.below(4) == 0 {
                    match &ks {
                        Some(ks) => batch.delete_in(ks, &key),
                        None => batch.delete(&key),
                    };
                    m.remove(&key);
                } else {
                    let val = format!("g{generation}s{step}").repeat(1 + rng.below(20) as usize);
                    match &ks {
                        Some(ks) => batch.put_in(ks, &key, &val),
                        None => batch.put(&key, &val),
                    };
                    m.insert(key, val.into_bytes());
                }
            }
            db.write(batch).expect("write");
            if rng.below(150) == 0 {
                db.checkpoint().expect("checkpoint");
            }
        }
        checkpoints += db.stats().expect("stats").checkpoints;
        if generation % 3 == 2 {
            db.close().expect("close");
        } else {
            db.crash_for_testing();
        }
    }
    assert!(segments(dir.path()).len() > 1, "the store rotated segments");
    assert!(checkpoints > 8, "background checkpoints ran: {checkpoints}");
}

/// A batch that writes the same counter into the default keyspace and two
/// named ones, then a torn tail at every offset of the last records: after
/// each reopen the three keyspaces agree (all of a batch or none of it).
#[test]
fn a_batch_across_keyspaces_is_atomic_across_torn_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let (a, b) = (db.keyspace("a").expect("a"), db.keyspace("b").expect("b"));
    for i in 0..40u32 {
        let mut batch = WriteBatch::new();
        let v = i.to_string();
        batch.put("n", &v).put_in(&a, "n", &v).put_in(&b, "n", &v);
        batch.put_in(&a, format!("key{i}"), "x".repeat(300));
        db.write(batch).expect("write");
    }
    db.crash_for_testing();
    let seg = segments(dir.path()).pop().expect("segment");
    let bytes = std::fs::read(&seg).expect("read");
    let end = bytes.iter().rposition(|b| *b != 0).expect("data") + 1;
    let mut outcomes = std::collections::BTreeSet::new();
    for cut in (end.saturating_sub(1200)..end).step_by(7) {
        let copy = tempfile::tempdir().expect("copy");
        for f in std::fs::read_dir(dir.path()).expect("list") {
            let p = f.expect("entry").path();
            std::fs::copy(&p, copy.path().join(p.file_name().expect("name"))).expect("copy");
        }
        let mut torn = bytes.clone();
        torn[cut..].iter_mut().for_each(|b| *b = 0);
        std::fs::write(copy.path().join(seg.file_name().expect("name")), &torn).expect("tear");
        let db = Db::open(copy.path(), small_opts()).expect("reopen after a torn tail");
        let (a, b) = (
            db.open_keyspace("a").expect("a"),
            db.open_keyspace("b").expect("b"),
        );
        let n = db.get("n").expect("get");
        assert_eq!(a.get("n").expect("get"), n, "cut {cut}");
        assert_eq!(b.get("n").expect("get"), n, "cut {cut}");
        let n: u32 = String::from_utf8(n.expect("some batch survives"))
            .expect("utf8")
            .parse()
            .expect("number");
        assert_eq!(a.len().expect("len"), u64::from(n) + 2, "cut {cut}");
        outcomes.insert(n);
    }
    assert!(
        outcomes.len() > 1,
        "the cuts tore different batches: {outcomes:?}"
    );
}

/// A store written by the release before keyspaces (snapshot format 1 and
/// WAL records of put and delete only; made by that release's code with 64
/// KiB segments, a checkpoint at key 1500 and a crash at the end) opens
/// with every key present, and then takes keyspaces.
#[test]
fn a_store_from_before_keyspaces_opens_with_every_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/store-format1.tar.gz"
    );
    let st = std::process::Command::new("tar")
        .args(["-xzf", fixture, "-C"])
        .arg(dir.path())
        .status()
        .expect("tar");
    assert!(st.success());
    assert!(segments(dir.path()).len() >= 3);
    assert_eq!(snapshots(dir.path()).len(), 1);
    let mut want = BTreeMap::new();
    for i in 0..3000u32 {
        want.insert(
            format!("key-{i:05}"),
            format!("value-{i}-{}", "x".repeat((i % 50) as usize)),
        );
        if i % 7 == 0 && i > 0 {
            want.remove(&format!("key-{:05}", i - 1));
        }
    }
    let db = Db::open(dir.path(), small_opts()).expect("open the old store");
    let got: BTreeMap<String, String> = pairs(db.iter())
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8(k).expect("utf8"),
                String::from_utf8(v).expect("utf8"),
            )
        })
        .collect();
    assert_eq!(got, want);
    db.keyspace("new").expect("ks").set("a", "b").expect("set");
    db.close().expect("close");
    let db = Db::open(dir.path(), small_opts()).expect("reopen");
    assert_eq!(db.len().expect("len"), want.len() as u64);
    assert_eq!(
        db.open_keyspace("new").expect("ks").get("a").expect("get"),
        Some(b"b".to_vec())
    );
}

#[test]
fn concurrent_creates_of_one_name_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    let ids: Vec<u32> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| s.spawn(|| db.keyspace("shared").expect("ks").id()))
            .collect();
        hs.into_iter().map(|h| h.join().expect("join")).collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert_eq!(db.list_keyspaces().expect("list"), vec!["shared"]);
}

/// A handle that outlives its store (a keyspace, the default keyspace of a
/// clone, an iterator) keeps no file of the store open: closing releases
/// the WAL's files, so the directory can be unmounted or deleted (found by
/// the Go binding's full-disk test, whose tmpfs stayed busy).
#[test]
fn handles_that_outlive_close_hold_no_file_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = keyval::Db::open(dir.path(), keyval::Options::default()).expect("open");
    let ks = db.keyspace("k").expect("keyspace");
    ks.set(b"a", b"1").expect("set");
    let default = keyval::Keyspace::clone(&db);
    let iter = db.iter();
    let open_in_dir = || {
        std::fs::read_dir("/proc/self/fd")
            .expect("fd list")
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|p| p.starts_with(dir.path()))
            .count()
    };
    assert!(open_in_dir() > 0, "an open store holds its active segment");
    db.close().expect("close");
    assert_eq!(open_in_dir(), 0, "files still open after close");
    assert!(matches!(ks.get(b"a"), Err(keyval::Error::Closed)));
    assert!(matches!(
        default.set(b"b", b"2"),
        Err(keyval::Error::Closed)
    ));
    drop(iter);
}
