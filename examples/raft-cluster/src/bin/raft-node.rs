//! One openraft node on KeyVal storage as its own process: the server the
//! fault test (`tests/jepsen`) starts, kills, pauses and partitions.
//!
//! ```text
//! raft-node --id 1 --dir D --raft 127.0.0.1:7001 --client 127.0.0.1:7101 \
//!     --members 1=127.0.0.1:7001,2=...,3=... [--routes 2=127.0.0.1:7202,...] [--init]
//! ```
//!
//! - `--raft` is where this node accepts Raft RPCs; `--members` is the
//!   cluster (ids and Raft addresses); `--routes J=ADDR,...` makes this node
//!   reach node J at ADDR instead (the test's per-link proxies);
//!   `--init` initializes the cluster with `--members` (first start only).
//! - Storage: `D/log` and `D/sm`, KeyVal through `keyval-openraft`, with
//!   small snapshot and purge thresholds so that compaction and snapshot
//!   installation happen all the time.
//! - Clients connect to `--client` and send one JSON object per line; each
//!   gets one JSON line back. This is the protocol of the hashicorp/raft
//!   node (`bindings/go/raftstore/cmd/raftkv-node`) too:
//!   - `{"op":"read","key":K}` → `{"ok":true,"found":B,"value":V}`. A
//!     linearizable read: `ensure_linearizable` (a quorum confirms the
//!     leadership, then the state machine has applied up to the read
//!     index), then the local state machine.
//!   - `{"op":"write","key":K,"value":V}` → `{"ok":true}`, through the log.
//!   - `{"op":"cas","key":K,"expected":E,"value":V}` →
//!     `{"ok":true,"cas_ok":B}`: `value` replaces `E` atomically.
//!   - `{"op":"status"}`: id, leader, term, last log index, applied index.
//!   - `{"op":"dump"}` → `{"ok":true,"data":{...}}`: the applied state.
//!   - `{"op":"shutdown"}`: shut Raft down, close both stores, exit 0.
//!   - Failures: `{"ok":false,"err":...,"definite":B,"leader":N}`;
//!     `definite` means the operation was certainly not applied (this node
//!     is not the leader); otherwise its outcome is unknown.
//! - Stdout carries one line per event the test counts: `event leader
//!   TERM`, `event snapshot-built`, `event snapshot-installed`, `event
//!   purge` (prefix truncation), `event truncate` (suffix truncation).

use keyval::Options;
use keyval_openraft::{LogStore, NodeId, Request, StateMachine, TypeConfig};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use raft_cluster::{serve, Network};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

struct Args {
    id: NodeId,
    dir: PathBuf,
    raft: String,
    client: String,
    members: BTreeMap<NodeId, String>,
    routes: BTreeMap<NodeId, String>,
    init: bool,
    /// `--memory-budget BYTES`: the state machine Db's value cache
    /// (`Options::memory_budget`); small in the fault test, so the state
    /// is larger than it and snapshots stream separated values.
    memory_budget: Option<u64>,
}

fn pairs(s: &str) -> Res<BTreeMap<NodeId, String>> {
    let mut m = BTreeMap::new();
    for p in s.split(',').filter(|p| !p.is_empty()) {
        let (id, addr) = p.split_once('=').ok_or("expected ID=ADDR")?;
        m.insert(id.parse()?, addr.to_string());
    }
    Ok(m)
}

fn args() -> Res<Args> {
    let mut a = Args {
        id: 0,
        dir: PathBuf::new(),
        raft: String::new(),
        client: String::new(),
        members: BTreeMap::new(),
        routes: BTreeMap::new(),
        init: false,
        memory_budget: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--init" {
            a.init = true;
            continue;
        }
        // `--flag value` or `--flag=value`.
        let (flag, v) = match flag.split_once('=') {
            Some((f, v)) => (f.to_string(), v.to_string()),
            None => {
                let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                (flag, v)
            }
        };
        match flag.as_str() {
            "--id" => a.id = v.parse()?,
            "--dir" => a.dir = v.into(),
            "--raft" => a.raft = v,
            "--client" => a.client = v,
            "--members" => a.members = pairs(&v)?,
            "--routes" => a.routes = pairs(&v)?,
            "--memory-budget" => a.memory_budget = Some(v.parse()?),
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if a.id == 0 || a.raft.is_empty() || a.client.is_empty() || a.members.is_empty() {
        return Err("usage: raft-node --id N --dir D --raft ADDR --client ADDR --members 1=ADDR,... [--routes N=ADDR,...] [--memory-budget BYTES] [--init]".into());
    }
    Ok(a)
}

fn config() -> Res<Arc<Config>> {
    let c = Config {
        cluster_name: "keyval-jepsen".into(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        // Snapshot and purge constantly: a snapshot every 100 entries,
        // keeping 20 entries behind it, so that followers that were away
        // get snapshots installed rather than entries.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(100),
        max_in_snapshot_log_to_keep: 20,
        purge_batch_size: 10,
        ..Config::default()
    };
    Ok(Arc::new(c.validate()?))
}

/// Print one event line (stdout is the test's event stream).
fn event(what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "event {what}");
    let _ = out.flush();
}

/// Report leadership gains and the stores' counters as event lines.
async fn watch(id: NodeId, raft: Raft<TypeConfig>, log: LogStore<TypeConfig>, sm: StateMachine) {
    let mut metrics = raft.metrics();
    let mut led_term = None;
    let mut seen = [0u64; 4];
    loop {
        {
            let m = metrics.borrow_and_update().clone();
            if m.current_leader == Some(id) && led_term != Some(m.current_term) {
                led_term = Some(m.current_term);
                event(&format!("leader {}", m.current_term));
            }
        }
        let now = [
            sm.counters().built.load(Ordering::Relaxed),
            sm.counters().installed.load(Ordering::Relaxed),
            log.counters().purges.load(Ordering::Relaxed),
            log.counters().truncations.load(Ordering::Relaxed),
        ];
        let names = ["snapshot-built", "snapshot-installed", "purge", "truncate"];
        for i in 0..4 {
            for _ in seen[i]..now[i] {
                event(names[i]);
            }
        }
        seen = now;
        let _ = tokio::time::timeout(Duration::from_millis(50), metrics.changed()).await;
    }
}

#[derive(Deserialize)]
struct ClientReq {
    op: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    expected: Option<String>,
}

fn failure(err: impl std::fmt::Display, definite: bool, leader: Option<NodeId>) -> Value {
    json!({"ok": false, "err": err.to_string(), "definite": definite, "leader": leader})
}

async fn write(raft: &Raft<TypeConfig>, req: Request) -> Result<Option<String>, Value> {
    match raft.client_write(req).await {
        Ok(r) => Ok(r.data.previous),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(failure("not the leader", true, f.leader_id))
        }
        // Anything else (leadership lost while replicating, shutdown): the
        // entry may or may not commit.
        Err(e) => Err(failure(e, false, None)),
    }
}

async fn handle(id: NodeId, raft: &Raft<TypeConfig>, sm: &StateMachine, req: ClientReq) -> Value {
    let result = match req.op.as_str() {
        "read" => match raft.ensure_linearizable().await {
            Ok(_) => match sm.get(&req.key) {
                Ok(v) => Ok(json!({"ok": true, "found": v.is_some(), "value": v})),
                Err(e) => Err(failure(e, true, None)),
            },
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(failure("not the leader", true, f.leader_id))
            }
            Err(e) => Err(failure(e, true, None)),
        },
        "write" => write(
            raft,
            Request::Set {
                key: req.key,
                value: req.value,
            },
        )
        .await
        .map(|_| json!({"ok": true})),
        "cas" => {
            let expected = req.expected.clone();
            write(
                raft,
                Request::CompareAndSet {
                    key: req.key,
                    expected: req.expected,
                    value: req.value,
                },
            )
            .await
            .map(|previous| json!({"ok": true, "cas_ok": previous == expected}))
        }
        "status" => {
            let m = raft.metrics().borrow().clone();
            Ok(json!({
                "ok": true,
                "id": id,
                "leader": m.current_leader,
                "term": m.current_term,
                "last_index": m.last_log_index,
                "applied": m.last_applied.map(|l| l.index),
                "snapshot": m.snapshot.map(|l| l.index),
                "purged": m.purged.map(|l| l.index),
            }))
        }
        "dump" => match sm.dump() {
            Ok(d) => Ok(json!({"ok": true, "data": d})),
            Err(e) => Err(failure(e, true, None)),
        },
        op => Err(failure(format!("unknown op {op:?}"), true, None)),
    };
    result.unwrap_or_else(|e| e)
}

async fn run(a: Args) -> Res<()> {
    let mut opts = Options::default();
    if let Some(b) = a.memory_budget {
        opts.memory_budget = b;
    }
    let (log, sm) = keyval_openraft::open(&a.dir, opts)?;
    let net = Network {
        routes: a.routes.clone(),
    };
    let raft = Raft::new(a.id, config()?, net, log.clone(), sm.clone()).await?;
    let raft_listener = TcpListener::bind(&a.raft).await?;
    let server = tokio::spawn(serve(raft_listener, raft.clone()));
    if a.init {
        let members: BTreeMap<NodeId, BasicNode> = a
            .members
            .iter()
            .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
            .collect();
        // Refused (harmlessly) if this node's log already holds a
        // membership.
        if let Err(e) = raft.initialize(members).await {
            eprintln!("raft-node {}: initialize: {e}", a.id);
        }
    }
    let watcher = tokio::spawn(watch(a.id, raft.clone(), log.clone(), sm.clone()));
    let clients = TcpListener::bind(&a.client).await?;
    let (stop_tx, mut stop_rx) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        let (s, _) = tokio::select! {
            c = clients.accept() => c?,
            _ = stop_rx.recv() => break,
        };
        let (raft, sm, stop_tx, id) = (raft.clone(), sm.clone(), stop_tx.clone(), a.id);
        tokio::spawn(async move {
            let (r, mut w) = s.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = match serde_json::from_str::<ClientReq>(&line) {
                    Ok(req) if req.op == "shutdown" => {
                        let _ = stop_tx.send(()).await;
                        json!({"ok": true})
                    }
                    Ok(req) => handle(id, &raft, &sm, req).await,
                    Err(e) => failure(format!("bad request: {e}"), true, None),
                };
                let mut bytes = reply.to_string().into_bytes();
                bytes.push(b'\n');
                if w.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        });
    }
    watcher.abort();
    server.abort();
    raft.shutdown().await?;
    log.close()?;
    sm.close()?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("raft-node: {e}");
            std::process::exit(2);
        }
    };
    let id = a.id;
    if let Err(e) = run(a).await {
        eprintln!("raft-node {id}: {e}");
        std::process::exit(1);
    }
}
