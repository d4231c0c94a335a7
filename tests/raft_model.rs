//! The Raft log's operations against a model (issue 29 section 4 and the
//! "Raft log operations against a model" fuzz target): random appends,
//! suffix and prefix truncations (below the purge point, beyond the end,
//! `u64::MAX`) and reopens, with the first and last index, the purge point
//! and every term compared after each step. Seeds that found a bug are
//! kept in `raft_model.proptest-regressions`.
use keyval::raft::{Entry, RaftLog};
use keyval::{Error, Options};
use proptest::prelude::*;

fn opts() -> Options {
    Options {
        segment_size: 64 << 10,
        ..Options::default()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append { n: u64, term_step: u64 },
    TruncateSuffix { back: u64 },
    TruncatePrefix { at: Prefix },
    Reopen,
}

#[derive(Debug, Clone)]
enum Prefix {
    /// `first - 1 + k`: inside the log, or a little beyond its end.
    Ahead(u64),
    /// At or below the last purged index.
    Behind(u64),
    Max,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..20u64, 0..2u64).prop_map(|(n, term_step)| Op::Append { n, term_step }),
        1 => (0..25u64).prop_map(|back| Op::TruncateSuffix { back }),
        2 => (0..30u64).prop_map(|k| Op::TruncatePrefix { at: Prefix::Ahead(k) }),
        1 => (0..5u64).prop_map(|k| Op::TruncatePrefix { at: Prefix::Behind(k) }),
        1 => Just(Op::TruncatePrefix { at: Prefix::Max }),
        1 => Just(Op::Reopen),
    ]
}

/// What the log must hold.
#[derive(Debug, Default)]
struct Model {
    first: u64,
    terms: Vec<u64>,
    purged: Option<(u64, u64)>,
    term: u64,
}

impl Model {
    fn next(&self) -> u64 {
        self.first + self.terms.len() as u64
    }
    fn term_of(&self, i: u64) -> Option<u64> {
        i.checked_sub(self.first)
            .and_then(|o| self.terms.get(o as usize).copied())
    }
}

fn check(log: &RaftLog, m: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.first_index().expect("first"), m.first);
    let last = (!m.terms.is_empty()).then(|| m.next() - 1);
    prop_assert_eq!(log.last_index().expect("last"), last);
    prop_assert_eq!(log.last_purged().expect("purged"), m.purged);
    for (o, t) in m.terms.iter().enumerate() {
        let i = m.first + o as u64;
        prop_assert_eq!(log.term(i).expect("term"), *t, "term of {}", i);
        prop_assert_eq!(log.entry(i).expect("entry").term, *t);
    }
    if m.first > 1 {
        let below = log.entry(m.first - 1);
        prop_assert!(matches!(below, Err(Error::Compacted { .. })), "{:?}", below);
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = RaftLog::open(dir.path(), opts()).expect("open");
    let mut m = Model {
        first: 1,
        ..Model::default()
    };
    for op in ops {
        match op {
            Op::Append { n, term_step } => {
                m.term += term_step.max(u64::from(m.term == 0));
                let from = m.next();
                let es: Vec<Entry> = (from..from + n)
                    .map(|index| Entry {
                        index,
                        term: m.term,
                        data: index.to_le_bytes().to_vec(),
                    })
                    .collect();
                log.append(&es).expect("append");
                m.terms.extend(std::iter::repeat_n(m.term, n as usize));
            }
            Op::TruncateSuffix { back } => {
                // Only within what the log holds: Raft never removes
                // committed (purged) entries by a suffix truncation.
                let from = m.next().saturating_sub(back).max(m.first);
                log.truncate_suffix(from).expect("truncate suffix");
                m.terms.truncate((from - m.first) as usize);
            }
            Op::TruncatePrefix { at } => {
                let upto = match at {
                    Prefix::Ahead(k) => m.first - 1 + k,
                    Prefix::Behind(k) => m.purged.map_or(0, |(p, _)| p.saturating_sub(k)),
                    Prefix::Max => u64::MAX,
                };
                let r = log.truncate_prefix(upto);
                if upto == u64::MAX {
                    prop_assert!(matches!(r, Err(Error::InvalidArgument(_))), "{:?}", r);
                    continue;
                }
                r.expect("truncate prefix");
                if m.purged.is_some_and(|(p, _)| p >= upto) {
                    continue; // never backwards
                }
                let term = m.term_of(upto).unwrap_or(0);
                if upto >= m.first {
                    let drop = ((upto + 1 - m.first) as usize).min(m.terms.len());
                    m.terms.drain(..drop);
                    m.first = if m.terms.is_empty() {
                        upto + 1
                    } else {
                        m.first + drop as u64
                    };
                }
                m.purged = Some((upto, term));
            }
            Op::Reopen => {
                drop(log);
                log = RaftLog::open(dir.path(), opts()).expect("reopen");
            }
        }
        check(&log, &m)?;
    }
    drop(log);
    let log = RaftLog::open(dir.path(), opts()).expect("final reopen");
    check(&log, &m)
}

proptest! {
    #![proptest_config(ProptestConfig {
            // `make fuzz` raises it with PROPTEST_CASES.
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
            ..ProptestConfig::default()
        })]
    #[test]
    fn raft_log_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}

/// The reproductions, kept as plain tests.
#[test]
fn purge_point_never_moves_backwards_and_keeps_its_term() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = RaftLog::open(dir.path(), opts()).expect("open");
    let es: Vec<Entry> = (1..=10)
        .map(|i| Entry {
            index: i,
            term: 1,
            data: vec![1],
        })
        .collect();
    log.append(&es).expect("append");
    log.truncate_prefix(8).expect("purge 8");
    assert_eq!(log.last_purged().expect("p"), Some((8, 1)));
    log.truncate_prefix(5).expect("purge 5");
    assert_eq!(log.last_purged().expect("p"), Some((8, 1)));
    assert_eq!(log.first_index().expect("first"), 9);
    drop(log);
    let log = RaftLog::open(dir.path(), opts()).expect("reopen");
    assert_eq!(log.last_purged().expect("p"), Some((8, 1)));
    assert_eq!(log.first_index().expect("first"), 9);

    // Beyond the end: the caller names the term (a snapshot's last log id).
    log.truncate_prefix_with_term(20, 3).expect("purge 20");
    assert_eq!(log.last_purged().expect("p"), Some((20, 3)));
    assert_eq!(log.first_index().expect("first"), 21);
    assert_eq!(log.last_index().expect("last"), None);

    match log.truncate_prefix(u64::MAX) {
        Err(Error::InvalidArgument(_)) => {}
        r => panic!("truncate_prefix(u64::MAX): {r:?}"),
    }
    assert_eq!(log.first_index().expect("first"), 21);
    log.append(&[Entry {
        index: 21,
        term: 3,
        data: vec![2],
    }])
    .expect("append after");
    drop(log);
    let log = RaftLog::open(dir.path(), opts()).expect("reopen");
    assert_eq!(log.first_index().expect("first"), 21);
    assert_eq!(log.last_index().expect("last"), Some(21));
    assert_eq!(log.last_purged().expect("p"), Some((20, 3)));
}
