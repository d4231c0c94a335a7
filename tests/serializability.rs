//! Randomized histories checked for serializability, in the manner of
//! Elle's list-append workload (Kingsbury and Alvaro, 2020): threads run
//! small random transactions of reads and appends (each append adds the
//! transaction's unique id to a key's list), some over a range; the
//! recorded history gives every key's version order (the final list), and
//! from it the dependency graph of committed transactions:
//! - ww: `a` appended just before `b` on some key;
//! - wr: `b` read a list whose last element `a` appended;
//! - rw: `a` read a list that `b`'s append (the next one) extended.
//!
//! A serializable history has an acyclic graph, and also no read of a list
//! that is not a prefix of the final one, and no trace of an aborted
//! transaction. The checker has its own tests on histories that break
//! each rule.

mod common;

use common::small_opts;
use keyval::{Db, Error};
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone)]
enum Mop {
    /// Read key `k`: the list seen.
    Read(u32, Vec<u64>),
    /// Append the transaction's id to key `k`.
    Append(u32),
    /// A range read over keys `[lo, hi)`: each key seen and its list.
    Range(u32, u32, Vec<(u32, Vec<u64>)>),
}

#[derive(Debug, Clone)]
struct Txn {
    id: u64,
    ops: Vec<Mop>,
    committed: bool,
}

/// Why a history is not serializable.
#[derive(Debug, PartialEq, Eq)]
enum Anomaly {
    /// A read saw a list that is not a prefix of the key's final list.
    NotAPrefix(u64, u32),
    /// An aborted transaction's append is visible.
    AbortedVisible(u64),
    /// The dependency graph has a cycle through these transactions.
    Cycle(Vec<u64>),
}

/// Check `history` against the final lists `finals`.
fn check(history: &[Txn], finals: &HashMap<u32, Vec<u64>>) -> Result<usize, Anomaly> {
    let committed: HashSet<u64> = history
        .iter()
        .filter(|t| t.committed)
        .map(|t| t.id)
        .collect();
    for t in history.iter().filter(|t| !t.committed) {
        if finals.values().any(|l| l.contains(&t.id)) {
            return Err(Anomaly::AbortedVisible(t.id));
        }
    }
    // Position of each append in its key's final list.
    let mut pos: HashMap<(u32, u64), usize> = HashMap::new();
    for (k, l) in finals {
        for (i, id) in l.iter().enumerate() {
            pos.insert((*k, *id), i);
        }
    }
    let mut edges: BTreeMap<u64, HashSet<u64>> = BTreeMap::new();
    let mut edge = |a: u64, b: u64| {
        if a != b {
            edges.entry(a).or_default().insert(b);
        }
    };
    for (k, l) in finals {
        for w in l.windows(2) {
            edge(w[0], w[1]);
        }
        let _ = k;
    }
    let empty = Vec::new();
    for t in history.iter().filter(|t| t.committed) {
        let mut reads: Vec<(u32, &Vec<u64>)> = Vec::new();
        for op in &t.ops {
            match op {
                Mop::Read(k, l) => reads.push((*k, l)),
                Mop::Range(_, _, seen) => reads.extend(seen.iter().map(|(k, l)| (*k, l))),
                Mop::Append(_) => {}
            }
        }
        for (k, seen) in reads {
            let fin = finals.get(&k).unwrap_or(&empty);
            if seen.len() > fin.len() || fin[..seen.len()] != seen[..] {
                return Err(Anomaly::NotAPrefix(t.id, k));
            }
            if let Some(last) = seen.last() {
                edge(*last, t.id); // wr
            }
            if let Some(next) = fin.get(seen.len()) {
                edge(t.id, *next); // rw
            }
        }
        // A range read also depends on keys it did not see: a key in its
        // range that it saw as absent and that was later created.
        for op in &t.ops {
            if let Mop::Range(lo, hi, seen) = op {
                let seen: HashSet<u32> = seen.iter().map(|(k, _)| *k).collect();
                for k in *lo..*hi {
                    if let (false, Some(first)) =
                        (seen.contains(&k), finals.get(&k).and_then(|l| l.first()))
                    {
                        edge(t.id, *first);
                    }
                }
            }
        }
    }
    let _ = committed;
    // Cycle search (iterative DFS, colours).
    let mut colour: HashMap<u64, u8> = HashMap::new();
    for &start in edges.keys() {
        if colour.contains_key(&start) {
            continue;
        }
        let mut stack: Vec<(u64, Vec<u64>)> =
            vec![(start, edges[&start].iter().copied().collect())];
        colour.insert(start, 1);
        while let Some((node, next)) = stack.last_mut() {
            match next.pop() {
                Some(n) => match colour.get(&n) {
                    Some(1) => {
                        let mut cyc: Vec<u64> = stack.iter().map(|(x, _)| *x).collect();
                        let at = cyc.iter().position(|x| *x == n).unwrap_or(0);
                        cyc.drain(..at);
                        return Err(Anomaly::Cycle(cyc));
                    }
                    Some(_) => {}
                    None => {
                        colour.insert(n, 1);
                        let succ = edges
                            .get(&n)
                            .map(|s| s.iter().copied().collect())
                            .unwrap_or_default();
                        stack.push((n, succ));
                    }
                },
                None => {
                    colour.insert(*node, 2);
                    stack.pop();
                }
            }
        }
    }
    Ok(edges.values().map(HashSet::len).sum())
}

fn key(k: u32) -> String {
    format!("k{k:02}")
}

fn parse(v: Option<Vec<u8>>) -> Vec<u64> {
    v.map(|v| {
        std::str::from_utf8(&v)
            .expect("utf8")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("id"))
            .collect()
    })
    .unwrap_or_default()
}

/// Run one transaction of random reads, appends and range reads.
fn run_one(db: &Db, id: u64, rng: &mut u64, keys: u32) -> Txn {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let n = 1 + next() % 4;
    let mut ops = Vec::new();
    let mut tx = db.transaction().expect("begin");
    for _ in 0..n {
        let r = next();
        let k = (r >> 8) as u32 % keys;
        match r % 5 {
            0 | 1 => ops.push(Mop::Read(k, parse(tx.get(key(k)).expect("get")))),
            2 | 3 => {
                let mut l = parse(tx.get(key(k)).expect("get"));
                l.push(id);
                let s: Vec<String> = l.iter().map(u64::to_string).collect();
                tx.set(key(k), s.join(",")).expect("set");
                ops.push(Mop::Append(k));
            }
            _ => {
                let hi = (k + 1 + (r >> 20) as u32 % 4).min(keys);
                let seen = tx
                    .range(
                        key(k).into_bytes()..key(hi).into_bytes(),
                        r & (1 << 40) != 0,
                        usize::MAX,
                    )
                    .expect("range")
                    .into_iter()
                    .map(|(kk, v)| {
                        let kk: u32 = std::str::from_utf8(&kk[1..])
                            .expect("utf8")
                            .parse()
                            .expect("k");
                        (kk, parse(Some(v)))
                    })
                    .collect::<Vec<_>>();
                ops.push(Mop::Range(k, hi, seen));
            }
        }
    }
    // Own reads after own appends are not observations of others: drop
    // reads of a key after this transaction appended to it.
    let mut appended = HashSet::new();
    ops.retain(|op| match op {
        Mop::Append(k) => {
            appended.insert(*k);
            true
        }
        Mop::Read(k, _) => !appended.contains(k),
        Mop::Range(..) => appended.is_empty(),
    });
    let committed = match tx.commit() {
        Ok(()) => true,
        Err(Error::Conflict(_)) => false,
        Err(e) => panic!("commit: {e}"),
    };
    Txn { id, ops, committed }
}

#[test]
fn random_histories_are_serializable() {
    for (round, keys) in [(0u64, 4u32), (1, 8), (2, 16)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(
            dir.path(),
            keyval::Options {
                durability: if round == 1 {
                    keyval::Durability::Sync
                } else {
                    keyval::Durability::Buffered
                },
                max_wal_size: 64 << 10,
                ..small_opts()
            },
        )
        .expect("open");
        let history: Vec<Txn> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4u64)
                .map(|t| {
                    let db = db.clone();
                    s.spawn(move || {
                        let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ ((t + 1) * 7919) ^ (round << 32);
                        (0..300u64)
                            .map(|i| run_one(&db, (t << 32) | (i + 1), &mut rng, keys))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("join"))
                .collect()
        });
        let finals: HashMap<u32, Vec<u64>> = (0..keys)
            .map(|k| (k, parse(db.get(key(k)).expect("get"))))
            .collect();
        let commits = history.iter().filter(|t| t.committed).count();
        let conflicts = history.len() - commits;
        let edges = check(&history, &finals).unwrap_or_else(|a| panic!("round {round}: {a:?}"));
        assert!(commits > 600, "round {round}: only {commits} commits");
        assert!(edges > 0);
        eprintln!("round {round}: {commits} committed, {conflicts} conflicts, {edges} edges");
    }
}

/// The checker itself, on histories that break each rule.
#[test]
fn the_checker_rejects_illegal_histories() {
    let t = |id, ops, committed| Txn { id, ops, committed };
    // Write skew: both read x and y empty, each appends to a different one.
    let h = vec![
        t(
            1,
            vec![Mop::Read(0, vec![]), Mop::Read(1, vec![]), Mop::Append(0)],
            true,
        ),
        t(
            2,
            vec![Mop::Read(0, vec![]), Mop::Read(1, vec![]), Mop::Append(1)],
            true,
        ),
    ];
    let finals = HashMap::from([(0, vec![1]), (1, vec![2])]);
    assert!(matches!(check(&h, &finals), Err(Anomaly::Cycle(_))));
    // Lost update: both read x empty and append; the final list has both.
    let h = vec![
        t(1, vec![Mop::Read(0, vec![]), Mop::Append(0)], true),
        t(2, vec![Mop::Read(0, vec![]), Mop::Append(0)], true),
    ];
    let finals = HashMap::from([(0, vec![1, 2])]);
    assert!(matches!(check(&h, &finals), Err(Anomaly::Cycle(_))));
    // A phantom: both scan [0, 2) empty and insert into it.
    let h = vec![
        t(1, vec![Mop::Range(0, 2, vec![]), Mop::Append(0)], true),
        t(2, vec![Mop::Range(0, 2, vec![]), Mop::Append(1)], true),
    ];
    let finals = HashMap::from([(0, vec![1]), (1, vec![2])]);
    assert!(matches!(check(&h, &finals), Err(Anomaly::Cycle(_))));
    // An aborted append that is visible, and a read that is no prefix.
    let h = vec![t(1, vec![Mop::Append(0)], false)];
    assert_eq!(
        check(&h, &HashMap::from([(0, vec![1])])),
        Err(Anomaly::AbortedVisible(1))
    );
    let h = vec![t(2, vec![Mop::Read(0, vec![7])], true)];
    assert_eq!(
        check(&h, &HashMap::from([(0, vec![1])])),
        Err(Anomaly::NotAPrefix(2, 0))
    );
    // And a serial history passes.
    let h = vec![
        t(1, vec![Mop::Read(0, vec![]), Mop::Append(0)], true),
        t(
            2,
            vec![Mop::Read(0, vec![1]), Mop::Append(0), Mop::Append(1)],
            true,
        ),
        t(
            3,
            vec![Mop::Range(0, 2, vec![(0, vec![1, 2]), (1, vec![2])])],
            true,
        ),
    ];
    let finals = HashMap::from([(0, vec![1, 2]), (1, vec![2])]);
    assert!(check(&h, &finals).is_ok());
}
