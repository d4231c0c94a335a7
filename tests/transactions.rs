//! Transactions: the anomaly catalogue (Adya's phenomena as Hermitage
//! tests them), each an interleaving of two or three transactions run on
//! their own threads in a fixed order of steps; and the basic contract
//! (own writes, rollback, atomicity across keyspaces, conflicts change
//! nothing, `update` retries, compare-and-swap).
//!
//! Hermitage (Kleppmann, github.com/ept/hermitage) lists, for each
//! phenomenon, the steps and what a serializable database must do; the
//! expected outcomes below are its "serializable" column. Values follow
//! its tables: `x = 10, y = 20` at the start.

mod common;

use common::small_opts;
use keyval::{Db, Error, Transaction, WriteBatch};
use std::sync::{Arc, Condvar, Mutex};

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), small_opts()).expect("open");
    db.set("x", "10").expect("set");
    db.set("y", "20").expect("set");
    (dir, db)
}

fn val(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|v| String::from_utf8(v).expect("utf8"))
}

/// One step of an interleaving: which session runs it, and what it does
/// with that session's transaction slot.
type Step = (usize, Box<dyn FnOnce(&Db, &mut Option<Transaction>) + Send>);

/// Run `steps` in order, each on the thread of its session (one thread
/// per session, each owning its transactions), so that the interleaving
/// is exactly the listed one while every transaction lives on its own
/// thread as it would in an application.
fn interleave(db: &Db, sessions: usize, steps: Vec<Step>) {
    let turn = Arc::new((Mutex::new(0usize), Condvar::new()));
    let mut per: Vec<Vec<(usize, Step)>> = (0..sessions).map(|_| Vec::new()).collect();
    for (i, s) in steps.into_iter().enumerate() {
        per[s.0].push((i, s));
    }
    std::thread::scope(|scope| {
        for mine in per {
            let (turn, db) = (Arc::clone(&turn), db.clone());
            scope.spawn(move || {
                let mut tx: Option<Transaction> = None;
                for (i, (_, f)) in mine {
                    let (m, cv) = &*turn;
                    let mut t = m.lock().expect("lock");
                    while *t != i {
                        t = cv.wait(t).expect("wait");
                    }
                    drop(t);
                    f(&db, &mut tx);
                    *m.lock().expect("lock") += 1;
                    cv.notify_all();
                }
            });
        }
    });
}

macro_rules! step {
    ($s:expr, |$db:ident, $tx:ident| $body:expr) => {
        (
            $s,
            Box::new(move |$db: &Db, $tx: &mut Option<Transaction>| {
                let _ = &$db;
                $body;
            }) as Box<dyn FnOnce(&Db, &mut Option<Transaction>) + Send>,
        )
    };
}

fn begin(db: &Db, tx: &mut Option<Transaction>) {
    *tx = Some(db.transaction().expect("begin"));
}

fn t(tx: &mut Option<Transaction>) -> &mut Transaction {
    tx.as_mut().expect("a transaction is open")
}

fn get(tx: &mut Option<Transaction>, k: &str) -> Option<String> {
    val(t(tx).get(k).expect("get"))
}

fn commit(tx: &mut Option<Transaction>) -> keyval::Result<()> {
    tx.take().expect("open").commit()
}

type Results = Arc<Mutex<Vec<String>>>;

fn note(r: &Results, s: impl Into<String>) {
    r.lock().expect("lock").push(s.into());
}

fn outcome(r: &keyval::Result<()>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(Error::Conflict(_)) => "conflict",
        Err(_) => "error",
    }
}

/// G0, write cycles: two transactions write x and y in opposite order of
/// commits; the final state must be wholly one of them.
#[test]
fn g0_write_cycles_are_prevented() {
    let (_d, db) = open();
    interleave(
        &db,
        2,
        vec![
            step!(0, |db, tx| begin(db, tx)),
            step!(1, |db, tx| begin(db, tx)),
            step!(0, |db, tx| t(tx).set("x", "11").expect("set")),
            step!(1, |db, tx| t(tx).set("x", "12").expect("set")),
            step!(0, |db, tx| t(tx).set("y", "21").expect("set")),
            step!(1, |db, tx| t(tx).set("y", "22").expect("set")),
            step!(0, |db, tx| commit(tx).expect("blind writes commit")),
            step!(1, |db, tx| commit(tx).expect("blind writes commit")),
        ],
    );
    let (x, y) = (
        val(db.get("x").expect("get")),
        val(db.get("y").expect("get")),
    );
    assert_eq!((x.as_deref(), y.as_deref()), (Some("12"), Some("22")));
}

/// G1a, aborted reads: a write of a transaction that rolls back is never
/// seen.
#[test]
fn g1a_aborted_reads_are_prevented() {
    let (_d, db) = open();
    let seen: Results = Arc::default();
    let (s1, s2) = (seen.clone(), seen.clone());
    interleave(
        &db,
        2,
        vec![
            step!(0, |db, tx| begin(db, tx)),
            step!(1, |db, tx| begin(db, tx)),
            step!(0, |db, tx| t(tx).set("x", "101").expect("set")),
            step!(1, |db, tx| note(&s1, format!("{:?}", get(tx, "x")))),
            step!(0, |db, tx| tx.take().expect("open").rollback()),
            step!(1, |db, tx| {
                note(&s2, format!("{:?}", get(tx, "x")));
                commit(tx).expect("commit")
            }),
        ],
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        ["Some(\"10\")", "Some(\"10\")"]
    );
    assert_eq!(val(db.get("x").expect("get")).as_deref(), Some("10"));
}

/// G1b, intermediate reads: a transaction never sees another's
/// intermediate value, even after that one commits a later one.
#[test]
fn g1b_intermediate_reads_are_prevented() {
    let (_d, db) = open();
    let seen: Results = Arc::default();
    let (s1, s2) = (seen.clone(), seen.clone());
    interleave(
        &db,
        2,
        vec![
            step!(0, |db, tx| begin(db, tx)),
            step!(1, |db, tx| begin(db, tx)),
            step!(0, |db, tx| t(tx).set("x", "101").expect("set")),
            step!(1, |db, tx| note(&s1, get(tx, "x").unwrap_or_default())),
            step!(0, |db, tx| t(tx).set("x", "11").expect("set")),
            step!(0, |db, tx| commit(tx).expect("commit")),
            step!(1, |db, tx| {
                note(&s2, get(tx, "x").unwrap_or_default());
                commit(tx).expect("read-only commit")
            }),
        ],
    );
    assert_eq!(*seen.lock().expect("lock"), ["10", "10"]);
}

/// G1c, circular information flow: each reads what the other wrote; one
/// of them must fail.
#[test]
fn g1c_circular_information_flow_is_prevented() {
    let (_d, db) = open();
    let res: Results = Arc::default();
    let (r1, r2) = (res.clone(), res.clone());
    interleave(
        &db,
        2,
        vec![
            step!(0, |db, tx| begin(db, tx)),
            step!(1, |db, tx| begin(db, tx)),
            step!(0, |db, tx| t(tx).set("x", "11").expect("set")),
            step!(1, |db, tx| t(tx).set("y", "22").expect("set")),
            step!(0, |db, tx| assert_eq!(get(tx, "y").as_deref(), Some("20"))),
            step!(1, |db, tx| assert_eq!(get(tx, "x").as_deref(), Some("10"))),
            step!(0, |db, tx| note(&r1, outcome(&commit(tx)))),
            step!(1, |db, tx| note(&r2, outcome(&commit(tx)))),
        ],
    );
    assert_eq!(*res.lock().expect("lock"), ["ok", "conflict"]);
    assert_eq!(val(db.get("y").expect("get")).as_deref(), Some("20"));
}

/// OTV, observed transaction vanishes: once a reader sees one committed
/// transaction's effect, it keeps seeing all of it and nothing of a later
/// one.
#[test]
fn otv_observed_transaction_does_not_vanish() {
    let (_d, db) = open();
    let seen: Results = Arc::default();
    let (s1, s2) = (seen.clone(), seen.clone());
    interleave(
        &db,
        3,
        vec![
            step!(0, |db, tx| begin(db, tx)),
            step!(1, |db, tx| begin(db, tx)),
            step!(0, |db, tx| t(tx).set("x", "11").expect("set")),
            step!(0, |db, tx| t(tx).set("y", "19").expect("set")),
            step!(1, |db, tx| t(tx).set("x", "12").expect("set")),
            step!(0, |db, tx| commit(tx).expect("commit")),
            step!(2, |db, tx| {
                begin(db, tx);
                note(&s1, get(tx, "x").unwrap_or_default())
            }),
            step!(1, |db, tx| t(tx).set("y", "18").expect("set")),
            step!(2, |db, tx| note(&s2, get(tx, "y").unwrap_or_default())),
            step!(1, |db, tx| commit(tx).expect("blind writes commit")),
            step!(2, |db, tx| {
                assert_eq!(get(tx, "x").as_deref(), Some("11"));
                assert_eq!(get(tx, "y").as_deref(), Some("19"));
                commit(tx).expect("read-only commit")
            }),
        ],
    );
    assert_eq!(*seen.lock().expect("lock"), ["11", "19"]);
}

/// The keys of pairs whose value is divisible by 3 ... in Hermitage a
/// predicate; here a scan of the whole default keyspace in the
/// transaction (a range read, so it is validated as one).
fn predicate(tx: &mut Option<Transaction>, div: u32) -> Vec<String> {
    t(tx)
        .range::<&[u8], _>(.., false, usize::MAX)
        .expect("range")
        .into_iter()
        .filter(|(_, v)| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .is_some_and(|n| n % div == 0)
        })
        .map(|(k, _)| String::from_utf8(k).expect("utf8"))
        .collect()
}

/// PMP, predicate-many-preceders (read): a predicate read stays the same
/// after another transaction inserts a matching row and commits.
#[test]
fn pmp_predicate_reads_are_stable() {
    let (_d, db) = open();
    interleave(
        &db,
        2,
        vec![
            step!(0, |db, tx| begin(db, tx)),
            step!(0, |db, tx| assert!(predicate(tx, 30).is_empty())),
            step!(1, |db, tx| {
                begin(db, tx);
                t(tx).set("z", "30").expect("set");
                commit(tx).expect("commit")
            }),
            step!(0, |db, tx| {
                assert!(predicate(tx, 30).is_empty());
                commit(tx).expect("read-only commit")
            }),
        ],
    );
}

/// PMP (write): T1 updates every pair it scanned; T2 deletes one of them
/// and commits first; T1 must not commit over the deletion.
#[test]
fn pmp_write_over_a_changed_predicate_conflicts() {
    let (_d, db) = open();
    let res: Results = Arc::default();
    let r1 = res.clone();
    interleave(
        &db,
        2,
        vec![
            step!(0, |db, tx| begin(db, tx)),
            step!(1, |db, tx| begin(db, tx)),
            step!(0, |db, tx| {
                for k in predicate(tx, 1) {
                    let n: u32 = get(tx, &k).expect("present").parse().expect("number");
                    t(tx).set(&k, (n + 10).to_string()).expect("set");
                }
            }),
            step!(1, |db, tx| {
                assert_eq!(predicate(tx, 20), ["y"]);
                t(tx).delete("y").expect("delete");
                commit(tx).expect("commit")
            }),
            step!(0, |db, tx| note(&r1, outcome(&commit(tx)))),
        ],
    );
    assert_eq!(*res.lock().expect("lock"), ["conflict"]);
    assert_eq!(db.get("y").expect("get"), None);
    assert_eq!(val(db.get("x").expect("get")).as_deref(), Some("10"));
}

/// P4, lost update: two read-modify-writes of one key; the second must
/// fail.
#[test]
fn p4_lost_update_is_prevented() {
    let (_d, db) = open();
    let res: Results = Arc::default();
    let (r1, r2) = (res.clone(), res.clone());
    interleave(
        &db,
        2,
        vec![
            step!(0, |db, tx| begin(db, tx)),
            step!(1, |db, tx| begin(db, tx)),
            step!(0, |db, tx| assert_eq!(get(tx, "x").as_deref(), Some("10"))),
            step!(1, |db, tx| assert_eq!(get(tx, "x").as_deref(), Some("10"))),
            step!(0, |db, tx| t(tx).set("x", "11").expect("set")),
            step!(1, |db, tx| t(tx).set("x", "11").expect("set")),
            step!(0, |db, tx| note(&r1, outcome(&commit(tx)))),
            step!(1, |db, tx| note(&r2, outcome(&commit(tx)))),
        ],
    );
    assert_eq!(*res.lock().expect("lock"), ["ok", "conflict"]);
}

/// G-single, read skew: a reader sees x and y from one moment.
#[test]
fn g_single_read_skew_is_prevented() {
    let (_d, db) = open();
    interleave(
        &db,
        2,
        vec![
            step!(0, |db, tx| begin(db, tx)),
            step!(0, |db, tx| assert_eq!(get(tx, "x").as_deref(), Some("10"))),
            step!(1, |db, tx| {
                begin(db, tx);
                assert_eq!(get(tx, "x").as_deref(), Some("10"));
                assert_eq!(get(tx, "y").as_deref(), Some("20"));
                t(tx).set("x", "12").expect("set");
                t(tx).set("y", "18").expect("set");
                commit(tx).expect("commit")
            }),
            step!(0, |db, tx| {
                assert_eq!(get(tx, "y").as_deref(), Some("20"));
                commit(tx).expect("read-only commit")
            }),
        ],
    );
}

/// G-single with a write (read skew that writes): T1 read x, T2 moves 2
/// from y to x and commits, T1 deletes y on the strength of its reads:
/// T1 must fail.
#[test]
fn g_single_write_after_read_skew_conflicts() {
    let (_d, db) = open();
    let res: Results = Arc::default();
    let r1 = res.clone();
    interleave(
        &db,
        2,
        vec![
            step!(0, |db, tx| begin(db, tx)),
            step!(0, |db, tx| assert_eq!(get(tx, "x").as_deref(), Some("10"))),
            step!(1, |db, tx| {
                begin(db, tx);
                t(tx).set("x", "12").expect("set");
                t(tx).set("y", "18").expect("set");
                commit(tx).expect("commit")
            }),
            step!(0, |db, tx| {
                assert_eq!(get(tx, "y").as_deref(), Some("20"));
                t(tx).delete("y").expect("delete");
                note(&r1, outcome(&commit(tx)))
            }),
        ],
    );
    assert_eq!(*res.lock().expect("lock"), ["conflict"]);
    assert_eq!(val(db.get("y").expect("get")).as_deref(), Some("18"));
}

/// G2-item, write skew: each reads both keys and writes a different one;
/// the second must fail.
#[test]
fn g2_item_write_skew_is_prevented() {
    let (_d, db) = open();
    let res: Results = Arc::default();
    let (r1, r2) = (res.clone(), res.clone());
    interleave(
        &db,
        2,
        vec![
            step!(0, |db, tx| begin(db, tx)),
            step!(1, |db, tx| begin(db, tx)),
            step!(0, |db, tx| {
                get(tx, "x");
                get(tx, "y");
            }),
            step!(1, |db, tx| {
                get(tx, "x");
                get(tx, "y");
            }),
            step!(0, |db, tx| t(tx).set("x", "11").expect("set")),
            step!(1, |db, tx| t(tx).set("y", "21").expect("set")),
            step!(0, |db, tx| note(&r1, outcome(&commit(tx)))),
            step!(1, |db, tx| note(&r2, outcome(&commit(tx)))),
        ],
    );
    assert_eq!(*res.lock().expect("lock"), ["ok", "conflict"]);
    assert_eq!(val(db.get("y").expect("get")).as_deref(), Some("20"));
}

/// G2, anti-dependency cycles through predicates: each scans for values
/// divisible by 3, finds none, and inserts one; the second must fail
/// (a phantom).
#[test]
fn g2_predicate_write_skew_is_prevented() {
    let (_d, db) = open();
    let res: Results = Arc::default();
    let (r1, r2) = (res.clone(), res.clone());
    interleave(
        &db,
        2,
        vec![
            step!(0, |db, tx| begin(db, tx)),
            step!(1, |db, tx| begin(db, tx)),
            step!(0, |db, tx| assert!(predicate(tx, 3).is_empty())),
            step!(1, |db, tx| assert!(predicate(tx, 3).is_empty())),
            step!(0, |db, tx| t(tx).set("z", "30").expect("set")),
            step!(1, |db, tx| t(tx).set("w", "42").expect("set")),
            step!(0, |db, tx| note(&r1, outcome(&commit(tx)))),
            step!(1, |db, tx| note(&r2, outcome(&commit(tx)))),
        ],
    );
    assert_eq!(*res.lock().expect("lock"), ["ok", "conflict"]);
    assert_eq!(db.get("w").expect("get"), None);
}

/// A phantom through an empty range: "at most one booking in [a, b)".
#[test]
fn a_phantom_in_an_empty_range_conflicts() {
    let (_d, db) = open();
    let mut t1 = db.transaction().expect("begin");
    let mut t2 = db.transaction().expect("begin");
    let r = b"book/10".as_slice()..b"book/20".as_slice();
    assert!(t1
        .range(r.clone(), false, usize::MAX)
        .expect("range")
        .is_empty());
    assert!(t2.range(r.clone(), true, 1).expect("range").is_empty());
    t1.set("book/12", "alice").expect("set");
    t2.set("book/15", "bob").expect("set");
    t1.commit().expect("first booking");
    assert!(matches!(t2.commit(), Err(Error::Conflict(_))));
    assert_eq!(db.prefix("book/").count(), 1);
    // A write outside the range read is no conflict.
    let mut t3 = db.transaction().expect("begin");
    assert_eq!(
        t3.range(b"book/20".as_slice()..b"book/99".as_slice(), false, 10)
            .expect("range")
            .len(),
        0
    );
    db.set("book/15", "carol").expect("plain write");
    t3.set("book/25", "dave").expect("set");
    t3.commit().expect("no overlap");
}

/// A limit cuts the recorded range at the last key returned.
#[test]
fn a_limited_range_conflicts_only_up_to_what_it_returned() {
    let (_d, db) = open();
    for i in 0..10 {
        db.set(format!("k{i}"), "v").expect("set");
    }
    let mut t1 = db.transaction().expect("begin");
    let got = t1
        .range(b"k".as_slice()..b"l".as_slice(), false, 3)
        .expect("range");
    assert_eq!(got.len(), 3);
    db.set("k9", "changed").expect("beyond what it saw");
    t1.set("out", "1").expect("set");
    t1.commit().expect("k9 was never read");
    let mut t2 = db.transaction().expect("begin");
    t2.range(b"k".as_slice()..b"l".as_slice(), true, 3)
        .expect("range");
    db.set("k8", "changed")
        .expect("inside what it saw (reverse)");
    t2.set("out", "2").expect("set");
    assert!(matches!(t2.commit(), Err(Error::Conflict(_))));
}

#[test]
fn reads_see_own_writes_and_rollback_discards_them() {
    let (_d, db) = open();
    let ks = db.keyspace("other").expect("keyspace");
    let mut tx = db.transaction().expect("begin");
    tx.set("x", "own").expect("set");
    tx.delete("y").expect("delete");
    tx.set_in(&ks, "a", "1").expect("set");
    assert_eq!(val(tx.get("x").expect("get")).as_deref(), Some("own"));
    assert_eq!(tx.get("y").expect("get"), None);
    assert!(tx.contains_in(&ks, "a").expect("contains"));
    let all = tx.range::<&[u8], _>(.., false, usize::MAX).expect("range");
    assert_eq!(all, vec![(b"x".to_vec(), b"own".to_vec())]);
    let rev = tx
        .range_in::<&[u8], _>(&ks, .., true, usize::MAX)
        .expect("range");
    assert_eq!(rev, vec![(b"a".to_vec(), b"1".to_vec())]);
    // Nothing is visible outside before commit.
    assert_eq!(val(db.get("x").expect("get")).as_deref(), Some("10"));
    drop(tx);
    assert_eq!(val(db.get("x").expect("get")).as_deref(), Some("10"));
    assert_eq!(ks.get("a").expect("get"), None);
    assert_eq!(db.stats().expect("stats").open_transactions, 0);
}

#[test]
fn a_commit_is_atomic_across_keyspaces_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Db::open(dir.path(), small_opts()).expect("open");
        let a = db.keyspace("a").expect("ks");
        let b = db.keyspace("b").expect("ks");
        db.update(|tx| {
            tx.set_in(&a, "k", "1")?;
            tx.set_in(&b, "k", "2")?;
            tx.set("k", "0")
        })
        .expect("update");
        db.close().expect("close");
    }
    let db = Db::open(dir.path(), small_opts()).expect("reopen");
    let a = db.open_keyspace("a").expect("ks");
    let b = db.open_keyspace("b").expect("ks");
    assert_eq!(val(a.get("k").expect("get")).as_deref(), Some("1"));
    assert_eq!(val(b.get("k").expect("get")).as_deref(), Some("2"));
    assert_eq!(val(db.get("k").expect("get")).as_deref(), Some("0"));
}

#[test]
fn a_conflict_writes_nothing_and_update_retries_until_it_commits() {
    let (_d, db) = open();
    let db = Arc::new(db);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let mut runs = 0u32;
                for _ in 0..50 {
                    db.update(|tx| {
                        runs += 1;
                        let n: u64 = val(tx.get("counter")?).map_or(0, |s| s.parse().expect("n"));
                        tx.set("counter", (n + 1).to_string())
                    })
                    .expect("update");
                }
                runs
            })
        })
        .collect();
    let runs: u32 = threads.into_iter().map(|t| t.join().expect("join")).sum();
    assert_eq!(val(db.get("counter").expect("get")).as_deref(), Some("200"));
    assert!(runs >= 200);
    let m = db.metrics().expect("metrics");
    assert_eq!(
        u64::from(runs - 200),
        m.errors.get(keyval::ErrorKind::Conflict),
        "every retry was one reported conflict"
    );
}

#[test]
fn compare_and_swap_and_fetch_update() {
    let (_d, db) = open();
    assert_eq!(
        db.compare_and_swap("x", Some(b"10"), Some(b"11"))
            .expect("cas"),
        Ok(())
    );
    assert_eq!(
        db.compare_and_swap("x", Some(b"10"), Some(b"12"))
            .expect("cas"),
        Err(Some(b"11".to_vec()))
    );
    assert_eq!(
        db.compare_and_swap("new", None, Some(b"1")).expect("cas"),
        Ok(())
    );
    assert_eq!(
        db.compare_and_swap("new", Some(b"1"), None).expect("cas"),
        Ok(())
    );
    assert_eq!(db.get("new").expect("get"), None);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    db.fetch_update("n", |v| {
                        let n: u64 = v.map_or(0, |v| {
                            std::str::from_utf8(v).expect("utf8").parse().expect("n")
                        });
                        Some((n + 1).to_string().into_bytes())
                    })
                    .expect("fetch_update");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("join");
    }
    assert_eq!(val(db.get("n").expect("get")).as_deref(), Some("100"));
}

#[test]
fn transactions_check_their_input_and_the_store() {
    let (_d, db) = open();
    let mut tx = db.transaction().expect("begin");
    assert!(matches!(tx.set("", "v"), Err(Error::InvalidArgument(_))));
    assert!(matches!(tx.get(""), Err(Error::InvalidArgument(_))));
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = Db::open(other_dir.path(), small_opts()).expect("open");
    let foreign = other.keyspace("f").expect("ks");
    assert!(matches!(
        tx.set_in(&foreign, "k", "v"),
        Err(Error::InvalidArgument(_))
    ));
    // A keyspace dropped after the snapshot: the commit fails, writes nothing.
    let ks = db.keyspace("doomed").expect("ks");
    let mut t2 = db.transaction().expect("begin");
    t2.set_in(&ks, "k", "v").expect("set");
    t2.set("also", "v").expect("set");
    db.drop_keyspace("doomed").expect("drop");
    assert!(matches!(t2.commit(), Err(Error::NotFound(_))));
    assert_eq!(db.get("also").expect("get"), None);
    tx.set("ok", "v").expect("set");
    db.close().expect("close");
    assert!(matches!(tx.commit(), Err(Error::Closed)));
    assert!(matches!(db.transaction(), Err(Error::Closed)));
}

/// Many transactions on different keys share fsyncs (group commit).
#[test]
fn concurrent_durable_transactions_share_fsyncs() {
    let (_d, db) = open();
    let before = db.stats().expect("stats").fsyncs;
    std::thread::scope(|s| {
        for w in 0..8 {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..40 {
                    db.update(|tx| {
                        let k = format!("w{w}/{i}");
                        assert_eq!(tx.get(&k)?, None);
                        tx.set(&k, "v")
                    })
                    .expect("update");
                }
            });
        }
    });
    let fsyncs = db.stats().expect("stats").fsyncs - before;
    assert_eq!(db.prefix("w").count(), 320);
    assert!(fsyncs < 320, "{fsyncs} fsyncs for 320 durable transactions");
}

/// A batch written with `Db::write` takes part as a blind transaction.
#[test]
fn plain_writes_conflict_with_transactions_that_read_them() {
    let (_d, db) = open();
    let mut tx = db.transaction().expect("begin");
    assert_eq!(
        get(&mut Some(db.transaction().expect("b")), "x").as_deref(),
        Some("10")
    );
    tx.get("x").expect("get");
    let mut b = WriteBatch::new();
    b.put("x", "99");
    db.write(b).expect("write");
    tx.set("x", "11").expect("set");
    assert!(matches!(tx.commit(), Err(Error::Conflict(_))));
    assert_eq!(val(db.get("x").expect("get")).as_deref(), Some("99"));
}
