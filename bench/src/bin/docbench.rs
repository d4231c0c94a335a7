//! `docbench`: KeyVal's document collections against SQLite JSON1 (through
//! rusqlite) and PoloDB (`polodb_core`, on RocksDB), side by side in one
//! run, on the same documents: about 1 KiB each, with nested objects, an
//! array and mixed number types. Every engine stores them durably (KeyVal
//! `Durability::Sync`, SQLite `synchronous=FULL` in WAL mode, PoloDB's
//! synced RocksDB transactions), with an index on `address.zip` and one on
//! `created`, created before the load so every write maintains them.
//!
//! Phases (`docwork.rs`): batch insert (1000 per durable transaction),
//! individual durable inserts, get by id, indexed equality find
//! (`address.zip`, about 10 matches), indexed range find of 10 (`created`,
//! sorted), unindexed filtered scan (`score > 0.99 and active`, every
//! document read), update by id (one field, durable). The engines must
//! return the same number of documents. PoloDB runs in its own process
//! (`docbench-polodb`, package `keyval-bench-polodb`), given with
//! `--polodb`. Then a measurement of candidate stored encodings (JSON
//! text, CBOR, MessagePack) on the same documents, which is why KeyVal
//! stores JSON text (docs/documents.md).
//!
//! Writes `docs/bench/documents.md` and `docs/bench/documents.json`.

#[path = "../docwork.rs"]
mod docwork;

use clap::Parser;
use docwork::{DocEngine, Results, PHASES};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
struct Cli {
    /// Documents in the batch insert.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// N = 20k and fewer operations per phase (about a minute).
    #[arg(long)]
    quick: bool,
    /// Directory for the engines' files (default: a temporary directory
    /// under target/bench-data).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Where the results go.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
    /// Run only this engine and write no results (for profiling).
    #[arg(long)]
    only: Option<String>,
    /// The `docbench-polodb` binary (package keyval-bench-polodb); without
    /// it PoloDB is left out of the table.
    #[arg(long)]
    polodb: Option<PathBuf>,
}

struct KeyVal {
    _db: keyval::Db,
    c: keyval::Collection,
}

impl KeyVal {
    fn open(dir: &Path) -> KeyVal {
        let db = keyval::Db::open(dir, keyval::Options::default()).expect("open keyval");
        let c = db.collection("people").expect("collection");
        KeyVal { _db: db, c }
    }
}

impl DocEngine for KeyVal {
    fn create_indexes(&mut self) {
        self.c.create_index("address.zip", false).expect("index");
        self.c.create_index("created", false).expect("index");
    }
    fn insert_batch(&mut self, docs: &[Value]) {
        self.c.insert_many(docs.to_vec()).expect("insert_many");
    }
    fn insert_one(&mut self, doc: &Value) {
        self.c.insert(doc.clone()).expect("insert");
    }
    fn get(&mut self, id: &str) -> bool {
        self.c.get(id).expect("get").is_some()
    }
    fn find_zip(&mut self, zip: i64) -> usize {
        let o = keyval::FindOptions::default().limit(1000);
        self.c
            .find(&json!({"address.zip": zip}), &o)
            .expect("find")
            .docs
            .len()
    }
    fn find_created10(&mut self, lo: i64) -> usize {
        let o = keyval::FindOptions::default()
            .sort_by("created", keyval::SortOrder::Asc)
            .limit(10);
        let f = json!({"created": {"$gte": lo, "$lt": lo + 10}});
        self.c.find(&f, &o).expect("find").docs.len()
    }
    fn scan_filter(&mut self) -> usize {
        let f = json!({"score": {"$gt": 0.99}, "active": true});
        docwork::count_ok(self.c.find_iter(&f).expect("find_iter"))
    }
    fn update_score(&mut self, id: &str, score: f64) {
        self.c.update(id, &json!({"score": score})).expect("update");
    }
}

struct Sqlite {
    c: rusqlite::Connection,
}

impl Sqlite {
    /// JSON text in a table keyed by id, WAL journal, synchronous=FULL;
    /// expression indexes on the same paths.
    fn open(dir: &Path) -> Sqlite {
        let c = rusqlite::Connection::open(dir.join("docs.db")).expect("open sqlite");
        c.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE people (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;",
        )
        .expect("setup");
        Sqlite { c }
    }
    fn docs(&mut self, sql: &str, p: impl rusqlite::Params) -> usize {
        let mut s = self.c.prepare_cached(sql).expect("prepare");
        let rows = s.query_map(p, |r| r.get::<_, String>(0)).expect("query");
        docwork::count_ok(rows.map(|b| serde_json::from_str::<Value>(&b.expect("row"))))
    }
}

impl DocEngine for Sqlite {
    fn create_indexes(&mut self) {
        self.c
            .execute_batch(
                "CREATE INDEX people_zip ON people (json_extract(body, '$.address.zip'));
                 CREATE INDEX people_created ON people (json_extract(body, '$.created'));",
            )
            .expect("index");
    }
    fn insert_batch(&mut self, docs: &[Value]) {
        let t = self.c.transaction().expect("begin");
        {
            let mut s = t
                .prepare_cached("INSERT INTO people VALUES (?1, ?2)")
                .expect("prepare");
            for d in docs {
                s.execute((d["_id"].as_str(), d.to_string()))
                    .expect("insert");
            }
        }
        t.commit().expect("commit");
    }
    fn insert_one(&mut self, d: &Value) {
        self.c
            .prepare_cached("INSERT INTO people VALUES (?1, ?2)")
            .expect("prepare")
            .execute((d["_id"].as_str(), d.to_string()))
            .expect("insert");
    }
    fn get(&mut self, id: &str) -> bool {
        self.docs("SELECT body FROM people WHERE id = ?1", [id]) == 1
    }
    fn find_zip(&mut self, zip: i64) -> usize {
        self.docs(
            "SELECT body FROM people WHERE json_extract(body, '$.address.zip') = ?1",
            [zip],
        )
    }
    fn find_created10(&mut self, lo: i64) -> usize {
        self.docs(
            "SELECT body FROM people WHERE json_extract(body, '$.created') >= ?1 \
             AND json_extract(body, '$.created') < ?2 \
             ORDER BY json_extract(body, '$.created') LIMIT 10",
            [lo, lo + 10],
        )
    }
    fn scan_filter(&mut self) -> usize {
        self.docs(
            "SELECT body FROM people WHERE json_extract(body, '$.score') > 0.99 \
             AND json_extract(body, '$.active') = 1",
            [],
        )
    }
    fn update_score(&mut self, id: &str, score: f64) {
        self.c
            .prepare_cached("UPDATE people SET body = json_set(body, '$.score', ?1) WHERE id = ?2")
            .expect("prepare")
            .execute((score, id))
            .expect("update");
    }
}

/// Candidate stored encodings on the same documents: bytes per document
/// and decode/encode rates into and out of the engine's document value.
fn encodings(docs: &[Value]) -> BTreeMap<String, BTreeMap<String, f64>> {
    let sample = &docs[..docs.len().min(20_000)];
    let mut out = BTreeMap::new();
    let mut one = |name: &str, enc: &dyn Fn(&Value) -> Vec<u8>, dec: &dyn Fn(&[u8]) -> usize| {
        let t = Instant::now();
        let bytes: Vec<Vec<u8>> = sample.iter().map(enc).collect();
        let enc_rate = sample.len() as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut sum = 0;
        for b in &bytes {
            sum += dec(b);
        }
        let dec_rate = sample.len() as f64 / t.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        let size = bytes.iter().map(Vec::len).sum::<usize>() as f64 / sample.len() as f64;
        let mut m = BTreeMap::new();
        m.insert("bytes per document".to_string(), size);
        m.insert("encode (docs/s)".to_string(), enc_rate);
        m.insert("decode (docs/s)".to_string(), dec_rate);
        out.insert(name.to_string(), m);
    };
    let members = |v: &Value| v.as_object().map_or(0, |o| o.len());
    one(
        "JSON text (serde_json)",
        &|v| serde_json::to_vec(v).expect("json"),
        &|b| members(&serde_json::from_slice::<Value>(b).expect("json")),
    );
    one(
        "CBOR (ciborium)",
        &|v| {
            let mut o = Vec::new();
            ciborium::into_writer(v, &mut o).expect("cbor");
            o
        },
        &|b| members(&ciborium::from_reader::<Value, _>(b).expect("cbor")),
    );
    one(
        "MessagePack (rmp-serde)",
        &|v| rmp_serde::to_vec(v).expect("msgpack"),
        &|b| members(&rmp_serde::from_slice::<Value>(b).expect("msgpack")),
    );
    out
}

fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn main() {
    let cli = Cli::parse();
    let base = cli
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/bench-data"));
    std::fs::create_dir_all(&base).expect("bench dir");
    let tmp = tempfile::tempdir_in(&base).expect("temp dir");
    let n = if cli.quick { cli.n.min(20_000) } else { cli.n };
    let s = docwork::sizes(cli.quick);
    let (docs, extra) = docwork::documents(n, &s);
    let avg = docs.iter().map(|d| d.to_string().len()).sum::<usize>() / n;
    let fs = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(tmp.path())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let env = format!(
        "{cpus} CPUs, file system {fs} at {}; N = {n} documents of {avg} bytes (JSON text) on average",
        base.display()
    );
    println!("{env}");
    let mut checks = Vec::new();
    // Every engine open at once, in its own directory, so that the phases
    // after the loads can alternate between them.
    let mut engines: Vec<(&str, Box<dyn DocEngine>)> = Vec::new();
    for name in ["KeyVal", "SQLite JSON1"] {
        if cli.only.as_ref().is_some_and(|o| o != name) {
            continue;
        }
        let d = tmp.path().join(name.replace(' ', "_"));
        std::fs::create_dir_all(&d).expect("dir");
        let e: Box<dyn DocEngine> = match name {
            "KeyVal" => Box::new(KeyVal::open(&d)),
            _ => Box::new(Sqlite::open(&d)),
        };
        engines.push((name, e));
    }
    let mut results = docwork::run(&mut engines, &docs, &extra, &s, &mut checks);
    drop(engines);
    if cli.only.is_some() {
        println!("{results:#?}");
        return;
    }
    if let Some(bin) = &cli.polodb {
        // Same documents (seeded), same phases, its own process.
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("--n")
            .arg(n.to_string())
            .arg("--dir")
            .arg(tmp.path());
        if cli.quick {
            cmd.arg("--quick");
        }
        let out = cmd
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run docbench-polodb");
        assert!(out.status.success(), "docbench-polodb failed");
        let v: Value = serde_json::from_slice(&out.stdout).expect("docbench-polodb output");
        let r: BTreeMap<String, f64> =
            serde_json::from_value(v["results"].clone()).expect("results");
        results.insert("PoloDB".to_string(), r);
        let c: docwork::Checks = serde_json::from_value(v["checks"].clone()).expect("checks");
        checks.extend(c);
    }
    // The same operations return the same number of documents everywhere
    // (per operation, since a slow engine may run fewer in its time cap).
    let mut by_phase: BTreeMap<&str, Vec<(&str, usize, usize)>> = BTreeMap::new();
    for (phase, engine, ops, found) in &checks {
        by_phase
            .entry(phase)
            .or_default()
            .push((engine, *ops, *found));
    }
    for (phase, rows) in &by_phase {
        let full: Vec<_> = rows.iter().filter(|r| r.1 == rows[0].1).collect();
        for r in &full {
            assert_eq!(
                r.2, full[0].2,
                "{phase}: {} and {} disagree",
                r.0, full[0].0
            );
        }
        let per: Vec<(&str, f64)> = rows
            .iter()
            .map(|(e, ops, n)| (*e, *n as f64 / *ops as f64))
            .collect();
        println!("{phase}: documents per operation {per:?}");
    }
    let enc = encodings(&docs);
    report(&cli.out, &env, &results, &enc);
}

fn report(out: &Path, env: &str, res: &Results, enc: &BTreeMap<String, BTreeMap<String, f64>>) {
    std::fs::create_dir_all(out).expect("out dir");
    let names: Vec<&str> = ["KeyVal", "SQLite JSON1", "PoloDB"]
        .into_iter()
        .filter(|n| res.contains_key(*n))
        .collect();
    let mut md = String::new();
    md.push_str("# KeyVal documents vs SQLite JSON1 and PoloDB\n\n");
    let rounds = docwork::ROUNDS;
    md.push_str(&format!(
        "Machine: {env}. One run (`make bench`, `bench/src/bin/docbench.rs`, workload in `bench/src/docwork.rs`). KeyVal and SQLite are open side by side in one process: each loads its documents in turn, then every other phase runs in {rounds} rounds in which the engines take turns, and the table shows each engine's median round, so that drift in the machine's speed favours neither. PoloDB runs the same workload in a process of its own (`bench/polodb`, so that bson's serde_json features do not change the other engines' build). Each engine is durable (KeyVal `Durability::Sync`, SQLite WAL with `synchronous=FULL`, PoloDB's synced RocksDB transactions), with indexes on `address.zip` and `created` created before the load (SQLite: expression indexes on `json_extract`). Reads return parsed documents (SQLite's JSON text is parsed with serde_json, as a caller would). Rates in operations per second (the batch insert in documents per second); higher is better. The ratio column is KeyVal ÷ the best peer.\n\n"
    ));
    md.push_str("| phase | ");
    for n in &names {
        md.push_str(&format!("{n} | "));
    }
    md.push_str("KeyVal ÷ best peer |\n|---|");
    md.push_str(&"---:|".repeat(names.len() + 1));
    md.push('\n');
    for phase in PHASES {
        md.push_str(&format!("| {phase} | "));
        for n in &names {
            md.push_str(&format!("{} | ", fmt_rate(res[*n][phase])));
        }
        let (best_name, best) = names[1..]
            .iter()
            .map(|n| (*n, res[*n][phase]))
            .fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
        md.push_str(&format!(
            "{:.2}× ({best_name}) |\n",
            res["KeyVal"][phase] / best
        ));
    }
    md.push_str("\n## Stored encoding\n\nThe same documents in three encodings: size, and how fast each turns into (and out of) the value an engine hands its caller. KeyVal decodes a stored document on every read and filter, so decode speed weighs most.\n\n| encoding | bytes per document | encode (docs/s) | decode (docs/s) |\n|---|---:|---:|---:|\n");
    for (name, m) in enc {
        md.push_str(&format!(
            "| {name} | {:.0} | {} | {} |\n",
            m["bytes per document"],
            fmt_rate(m["encode (docs/s)"]),
            fmt_rate(m["decode (docs/s)"])
        ));
    }
    std::fs::write(out.join("documents.md"), &md).expect("write md");
    let j = json!({"machine": env, "phases": PHASES, "engines": res, "encodings": enc});
    std::fs::write(
        out.join("documents.json"),
        serde_json::to_string_pretty(&j).expect("json"),
    )
    .expect("write json");
    println!("{md}");
}
