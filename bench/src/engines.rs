//! The engines under test behind one trait, each at its durable setting.

use rand::rngs::SmallRng;
use rand::Rng;
use redb::{ReadableDatabase, ReadableTableMetadata};
use std::ops::Bound;
use std::path::Path;

/// `n` pairs of redb's comparison workload: random 24-byte keys and
/// 150-byte values.
pub fn pairs(rng: &mut SmallRng, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|_| {
            let mut k = vec![0u8; 24];
            let mut v = vec![0u8; 150];
            rng.fill(&mut k[..]);
            rng.fill(&mut v[..]);
            (k, v)
        })
        .collect()
}

/// A key-value engine as the benchmark drives it. Every write method is
/// durable (fsync before return) unless its name says `nosync`.
pub trait Engine {
    /// Load `pairs` in as few transactions as the engine likes, durably.
    fn bulk_load(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]);
    /// One durable transaction holding one pair.
    fn put_durable(&mut self, k: &[u8], v: &[u8]);
    /// One durable transaction holding `pairs`.
    fn put_batch_durable(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]);
    /// One transaction holding one pair, not synced.
    fn put_nosync(&mut self, k: &[u8], v: &[u8]);
    /// Number of keys.
    fn len(&mut self) -> u64;
    /// First byte of the value of `k`, if present.
    fn get_first_byte(&mut self, k: &[u8]) -> Option<u8>;
    /// Read up to 10 pairs from `k` on; returns how many.
    fn range10(&mut self, k: &[u8]) -> usize;
    /// Remove `keys` in one durable transaction.
    fn remove_batch(&mut self, keys: &[Vec<u8>]);
    /// Compact / checkpoint, whatever reclaims space.
    fn compact(&mut self);
}

pub struct KeyVal {
    pub db: keyval::Db,
}

impl KeyVal {
    /// `nosync`: `Buffered` durability (acknowledged from the process
    /// buffer), for the no-sync phase; otherwise the default `Sync`.
    pub fn open(dir: &Path, nosync: bool) -> KeyVal {
        let mut opts = keyval::Options::default();
        if nosync {
            opts.durability = keyval::Durability::Buffered;
        }
        KeyVal {
            db: keyval::Db::open(dir, opts).expect("open keyval"),
        }
    }
}

impl Engine for KeyVal {
    fn bulk_load(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        for c in pairs.chunks(100_000) {
            let mut b = keyval::WriteBatch::new();
            for (k, v) in c {
                b.put(k, v);
            }
            self.db.write(b).expect("bulk");
        }
    }
    fn put_durable(&mut self, k: &[u8], v: &[u8]) {
        self.db.set(k, v).expect("set");
    }
    fn put_batch_durable(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        let mut b = keyval::WriteBatch::new();
        for (k, v) in pairs {
            b.put(k, v);
        }
        self.db.write(b).expect("batch");
    }
    /// Not synced when opened with `nosync` (`Buffered`).
    fn put_nosync(&mut self, k: &[u8], v: &[u8]) {
        self.db.set(k, v).expect("set");
    }
    fn len(&mut self) -> u64 {
        self.db.len().expect("len")
    }
    fn get_first_byte(&mut self, k: &[u8]) -> Option<u8> {
        self.db
            .get_with(k, |v| v.and_then(|v| v.first().copied()))
            .expect("get")
    }
    /// The borrowing visitor, as LMDB and redb are read through borrowed
    /// slices inside a read transaction.
    fn range10(&mut self, k: &[u8]) -> usize {
        let mut n = 0;
        self.db
            .scan(k.., |_, _| {
                n += 1;
                n < 10
            })
            .expect("scan");
        n
    }
    fn remove_batch(&mut self, keys: &[Vec<u8>]) {
        let mut b = keyval::WriteBatch::new();
        for k in keys {
            b.delete(k);
        }
        self.db.write(b).expect("remove");
    }
    fn compact(&mut self) {
        self.db.checkpoint().expect("checkpoint");
    }
}

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("data");

pub struct Redb {
    db: redb::Database,
}

impl Redb {
    pub fn open(dir: &Path) -> Redb {
        Redb {
            db: redb::Database::create(dir.join("redb")).expect("open redb"),
        }
    }
    fn write(
        &mut self,
        durability: redb::Durability,
        f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>),
    ) {
        let mut tx = self.db.begin_write().expect("begin");
        tx.set_durability(durability).expect("durability");
        {
            let mut t = tx.open_table(REDB_TABLE).expect("table");
            f(&mut t);
        }
        tx.commit().expect("commit");
    }
}

impl Engine for Redb {
    fn bulk_load(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        self.put_batch_durable(pairs);
    }
    fn put_durable(&mut self, k: &[u8], v: &[u8]) {
        self.write(redb::Durability::Immediate, |t| {
            t.insert(k, v).expect("insert");
        });
    }
    fn put_batch_durable(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        self.write(redb::Durability::Immediate, |t| {
            for (k, v) in pairs {
                t.insert(k.as_slice(), v.as_slice()).expect("insert");
            }
        });
    }
    fn put_nosync(&mut self, k: &[u8], v: &[u8]) {
        self.write(redb::Durability::None, |t| {
            t.insert(k, v).expect("insert");
        });
    }
    fn len(&mut self) -> u64 {
        let tx = self.db.begin_read().expect("read");
        tx.open_table(REDB_TABLE)
            .expect("table")
            .len()
            .expect("len")
    }
    fn get_first_byte(&mut self, k: &[u8]) -> Option<u8> {
        let tx = self.db.begin_read().expect("read");
        let t = tx.open_table(REDB_TABLE).expect("table");
        let v = t.get(k).expect("get");
        v.and_then(|v| v.value().first().copied())
    }
    #[allow(clippy::let_and_return)] // the range borrows the transaction
    fn range10(&mut self, k: &[u8]) -> usize {
        let tx = self.db.begin_read().expect("read");
        let t = tx.open_table(REDB_TABLE).expect("table");
        let n = t.range(k..).expect("range").take(10).count();
        n
    }
    fn remove_batch(&mut self, keys: &[Vec<u8>]) {
        self.write(redb::Durability::Immediate, |t| {
            for k in keys {
                t.remove(k.as_slice()).expect("remove");
            }
        });
    }
    fn compact(&mut self) {
        let _ = self.db.compact();
    }
}

pub struct Lmdb {
    env: &'static heed::Env,
    db: heed::Database<'static, heed::types::Bytes, heed::types::Bytes>,
}

impl Lmdb {
    pub fn open(dir: &Path, nosync: bool) -> Lmdb {
        let p = dir.join("lmdb");
        std::fs::create_dir_all(&p).expect("mkdir");
        let mut o = heed::EnvOpenOptions::new();
        o.map_size(16 << 30);
        if nosync {
            // Safety: heed marks flags unsafe; NO_SYNC only weakens durability, as wanted here.
            unsafe {
                o.flags(heed::EnvFlags::NO_SYNC);
            }
        }
        // Safety: heed requires that no other environment maps this directory; it is fresh.
        let env: &'static heed::Env =
            Box::leak(Box::new(unsafe { o.open(&p) }.expect("open lmdb")));
        let w = env.write_txn().expect("txn");
        let db = env
            .create_databases_and_commit(w, |opener, wtxn| -> Result<_, heed::Error> {
                let db =
                    opener.create_database::<heed::types::Bytes, heed::types::Bytes>(wtxn, None)?;
                Ok(heed::CommitOrAbort::<_, ()>::Commit(db))
            })
            .expect("create database")
            .unwrap_commit();
        Lmdb { env, db }
    }
}

impl Engine for Lmdb {
    fn bulk_load(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        self.put_batch_durable(pairs);
    }
    fn put_durable(&mut self, k: &[u8], v: &[u8]) {
        let mut w = self.env.write_txn().expect("txn");
        self.db.put(&mut w, k, v).expect("put");
        w.commit().expect("commit");
    }
    fn put_batch_durable(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        let mut w = self.env.write_txn().expect("txn");
        for (k, v) in pairs {
            self.db.put(&mut w, k, v).expect("put");
        }
        w.commit().expect("commit");
    }
    /// Not synced when opened with `nosync` (`NO_SYNC`).
    fn put_nosync(&mut self, k: &[u8], v: &[u8]) {
        self.put_durable(k, v);
    }
    fn len(&mut self) -> u64 {
        let r = self.env.read_txn().expect("txn");
        self.db.len(&r).expect("len")
    }
    fn get_first_byte(&mut self, k: &[u8]) -> Option<u8> {
        let r = self.env.read_txn().expect("txn");
        self.db
            .get(&r, k)
            .expect("get")
            .and_then(|v| v.first().copied())
    }
    #[allow(clippy::let_and_return)] // the range borrows the transaction
    fn range10(&mut self, k: &[u8]) -> usize {
        let r = self.env.read_txn().expect("txn");
        let n = self
            .db
            .range(&r, &(Bound::Included(k), Bound::Unbounded))
            .expect("range")
            .take(10)
            .count();
        n
    }
    fn remove_batch(&mut self, keys: &[Vec<u8>]) {
        let mut w = self.env.write_txn().expect("txn");
        for k in keys {
            self.db.delete(&mut w, k).expect("delete");
        }
        w.commit().expect("commit");
    }
    fn compact(&mut self) {}
}

pub struct Fjall {
    db: fjall::Database,
    ks: fjall::Keyspace,
}

impl Fjall {
    pub fn open(dir: &Path) -> Fjall {
        let db = fjall::Database::builder(dir.join("fjall"))
            .open()
            .expect("open fjall");
        let ks = db
            .keyspace("data", fjall::KeyspaceCreateOptions::default)
            .expect("keyspace");
        Fjall { db, ks }
    }
    fn batch(&self, pairs: &[(Vec<u8>, Vec<u8>)], mode: Option<fjall::PersistMode>) {
        let mut b = self.db.batch().durability(mode);
        for (k, v) in pairs {
            b.insert(&self.ks, k.as_slice(), v.as_slice());
        }
        b.commit().expect("commit");
    }
}

impl Engine for Fjall {
    fn bulk_load(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        self.batch(pairs, Some(fjall::PersistMode::SyncAll));
    }
    fn put_durable(&mut self, k: &[u8], v: &[u8]) {
        self.batch(
            &[(k.to_vec(), v.to_vec())],
            Some(fjall::PersistMode::SyncAll),
        );
    }
    fn put_batch_durable(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        self.batch(pairs, Some(fjall::PersistMode::SyncAll));
    }
    fn put_nosync(&mut self, k: &[u8], v: &[u8]) {
        self.ks.insert(k, v).expect("insert");
    }
    fn len(&mut self) -> u64 {
        self.ks.len().expect("len") as u64
    }
    fn get_first_byte(&mut self, k: &[u8]) -> Option<u8> {
        self.ks
            .get(k)
            .expect("get")
            .and_then(|v| v.first().copied())
    }
    fn range10(&mut self, k: &[u8]) -> usize {
        self.ks.range(k..).take(10).count()
    }
    fn remove_batch(&mut self, keys: &[Vec<u8>]) {
        let mut b = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncAll));
        for k in keys {
            b.remove(&self.ks, k.as_slice());
        }
        b.commit().expect("commit");
    }
    fn compact(&mut self) {
        let _ = self.ks.major_compact();
    }
}

pub struct Sqlite {
    c: rusqlite::Connection,
}

impl Sqlite {
    /// `wal`: journal_mode=WAL, else the rollback journal (DELETE); both
    /// with synchronous=FULL.
    pub fn open(dir: &Path, wal: bool) -> Sqlite {
        let c = rusqlite::Connection::open(dir.join("sqlite.db")).expect("open sqlite");
        let mode = if wal { "WAL" } else { "DELETE" };
        c.execute_batch(&format!(
            "PRAGMA journal_mode={mode}; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID;"
        ))
        .expect("setup");
        Sqlite { c }
    }
    fn tx(&mut self, f: impl FnOnce(&rusqlite::Transaction)) {
        let t = self.c.transaction().expect("begin");
        f(&t);
        t.commit().expect("commit");
    }
}

impl Engine for Sqlite {
    fn bulk_load(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        self.put_batch_durable(pairs);
    }
    fn put_durable(&mut self, k: &[u8], v: &[u8]) {
        self.tx(|t| {
            t.execute("INSERT OR REPLACE INTO kv VALUES (?1, ?2)", (k, v))
                .expect("insert");
        });
    }
    fn put_batch_durable(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        self.tx(|t| {
            let mut s = t
                .prepare_cached("INSERT OR REPLACE INTO kv VALUES (?1, ?2)")
                .expect("prepare");
            for (k, v) in pairs {
                s.execute((k, v)).expect("insert");
            }
        });
    }
    fn put_nosync(&mut self, k: &[u8], v: &[u8]) {
        self.c
            .execute_batch("PRAGMA synchronous=OFF")
            .expect("pragma");
        self.put_durable(k, v);
    }
    fn len(&mut self) -> u64 {
        self.c
            .query_row("SELECT COUNT(*) FROM kv", [], |r| r.get::<_, i64>(0))
            .expect("count") as u64
    }
    fn get_first_byte(&mut self, k: &[u8]) -> Option<u8> {
        let mut s = self
            .c
            .prepare_cached("SELECT v FROM kv WHERE k = ?1")
            .expect("prepare");
        let mut rows = s.query([k]).expect("query");
        rows.next()
            .expect("row")
            .map(|r| r.get_ref(0).expect("v").as_blob().expect("blob")[0])
    }
    fn range10(&mut self, k: &[u8]) -> usize {
        let mut s = self
            .c
            .prepare_cached("SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT 10")
            .expect("prepare");
        let mut rows = s.query([k]).expect("query");
        let mut n = 0;
        while rows.next().expect("row").is_some() {
            n += 1;
        }
        n
    }
    fn remove_batch(&mut self, keys: &[Vec<u8>]) {
        self.tx(|t| {
            let mut s = t
                .prepare_cached("DELETE FROM kv WHERE k = ?1")
                .expect("prepare");
            for k in keys {
                s.execute([k]).expect("delete");
            }
        });
    }
    fn compact(&mut self) {
        self.c
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")
            .expect("vacuum");
    }
}
