//! `docbench-polodb`: the document workload of `docbench` (see
//! `bench/src/docwork.rs`) on PoloDB (`polodb_core` 5.3, on RocksDB, its
//! transactions synced). Prints `{"results": {phase: rate}, "checks":
//! [[phase, engine, operations, documents], ...]}` on stdout for
//! `docbench --polodb`.

#[path = "../../src/docwork.rs"]
mod docwork;

use clap::Parser;
use docwork::DocEngine;
use polodb_core::bson::{self, doc, Document};
use polodb_core::{CollectionT, IndexModel};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Parser)]
struct Cli {
    #[arg(long)]
    n: usize,
    #[arg(long)]
    quick: bool,
    #[arg(long)]
    dir: PathBuf,
}

struct Polo {
    _db: polodb_core::Database,
    c: polodb_core::Collection<Document>,
}

impl Polo {
    fn open(dir: &Path) -> Polo {
        let db = polodb_core::Database::open_path(dir.join("polo")).expect("open polodb");
        let c = db.collection::<Document>("people");
        Polo { _db: db, c }
    }
}

fn to_bson(d: &Value) -> Document {
    match bson::Bson::try_from(d.clone()).expect("bson") {
        bson::Bson::Document(d) => d,
        _ => unreachable!("documents are objects"),
    }
}

/// An integer as `to_bson` converts it inside a document.
fn num(i: i64) -> bson::Bson {
    bson::Bson::try_from(json!(i)).expect("bson")
}

impl DocEngine for Polo {
    fn create_indexes(&mut self) {
        for k in ["address.zip", "created"] {
            let mut keys = Document::new();
            keys.insert(k, 1);
            self.c
                .create_index(IndexModel {
                    keys,
                    options: None,
                })
                .expect("index");
        }
    }
    fn insert_batch(&mut self, docs: &[Value]) {
        self.c
            .insert_many(docs.iter().map(to_bson))
            .expect("insert_many");
    }
    fn insert_one(&mut self, d: &Value) {
        self.c.insert_one(to_bson(d)).expect("insert");
    }
    fn get(&mut self, id: &str) -> bool {
        self.c
            .find_one(doc! {"_id": id})
            .expect("find_one")
            .is_some()
    }
    fn find_zip(&mut self, zip: i64) -> usize {
        // The query value converted as the documents' values were
        // (bson makes an Int32 of a small JSON integer): PoloDB's index
        // lookup compares encodings, so an Int64 would match nothing.
        docwork::count_ok(
            self.c
                .find(doc! {"address.zip": num(zip)})
                .run()
                .expect("find"),
        )
    }
    fn find_created10(&mut self, lo: i64) -> usize {
        docwork::count_ok(
            self.c
                .find(doc! {"created": {"$gte": num(lo), "$lt": num(lo + 10)}})
                .sort(doc! {"created": 1})
                .limit(10)
                .run()
                .expect("find"),
        )
    }
    fn scan_filter(&mut self) -> usize {
        docwork::count_ok(
            self.c
                .find(doc! {"score": {"$gt": 0.99}, "active": true})
                .run()
                .expect("find"),
        )
    }
    fn update_score(&mut self, id: &str, score: f64) {
        self.c
            .update_one(doc! {"_id": id}, doc! {"$set": {"score": score}})
            .expect("update");
    }
}

fn main() {
    let cli = Cli::parse();
    let s = docwork::sizes(cli.quick);
    let (docs, extra) = docwork::documents(cli.n, &s);
    let d = cli.dir.join("PoloDB");
    std::fs::create_dir_all(&d).expect("dir");
    let mut checks = Vec::new();
    let mut engines: Vec<(&str, Box<dyn DocEngine>)> = vec![("PoloDB", Box::new(Polo::open(&d)))];
    let r = docwork::run(&mut engines, &docs, &extra, &s, &mut checks).remove("PoloDB");
    drop(engines);
    let _ = std::fs::remove_dir_all(&d);
    println!("{}", json!({"results": r, "checks": checks}));
}
