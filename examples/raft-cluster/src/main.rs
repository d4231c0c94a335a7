//! Three openraft nodes on KeyVal storage, talking over loopback TCP.
//!
//! Each node has its own directories (`<base>/nodeN/log`, `<base>/nodeN/sm`)
//! and its own TCP listener. The transport is the crate's library
//! (`src/lib.rs`, shared with `raft-node`): the shape of openraft's own
//! examples (one request, one JSON reply; remote errors travel as
//! `RaftError`), over plain TCP with newline-delimited JSON instead of HTTP.
//!
//! The run:
//! 1. writes 1,000 keys through the leader;
//! 2. stops the leader (Raft shut down, storage closed, listener gone);
//! 3. waits for a new leader;
//! 4. writes 500 more keys;
//! 5. restarts the old node from its directories;
//! 6. checks that every acknowledged key is present on all three nodes.
//!
//! Usage: `raft-cluster [BASE_DIR]` (a temporary directory by default).
//! Exits non-zero if any step fails or the run exceeds 120 seconds.

use keyval::Options;
use keyval_openraft::{LogStore, NodeId, Request, StateMachine, TypeConfig};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use raft_cluster::{serve, Network};
use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

struct Node {
    id: NodeId,
    addr: String,
    dir: PathBuf,
    raft: Raft<TypeConfig>,
    log: LogStore<TypeConfig>,
    sm: StateMachine,
    server: JoinHandle<()>,
}

fn config() -> Res<Arc<Config>> {
    let c = Config {
        cluster_name: "keyval-example".into(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        // Snapshot and purge during the run, so that compaction, segment
        // reclaim and snapshot installation all happen.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(300),
        max_in_snapshot_log_to_keep: 100,
        purge_batch_size: 50,
        ..Config::default()
    };
    Ok(Arc::new(c.validate()?))
}

async fn start(id: NodeId, addr: &str, dir: &Path) -> Res<Node> {
    let (log, sm) = keyval_openraft::open(dir, Options::default())?;
    let raft = Raft::new(id, config()?, Network::default(), log.clone(), sm.clone()).await?;
    let listener = TcpListener::bind(addr).await?;
    let server = tokio::spawn(serve(listener, raft.clone()));
    Ok(Node {
        id,
        addr: addr.to_string(),
        dir: dir.to_path_buf(),
        raft,
        log,
        sm,
        server,
    })
}

async fn stop(n: Node) -> Res<(NodeId, String, PathBuf)> {
    n.server.abort();
    let _ = n.server.await;
    n.raft.shutdown().await?;
    n.log.close()?;
    n.sm.close()?;
    Ok((n.id, n.addr, n.dir))
}

async fn wait_leader(nodes: &[&Node], deadline: Instant) -> Res<NodeId> {
    loop {
        for n in nodes {
            let m = n.raft.metrics().borrow().clone();
            if m.current_leader == Some(n.id) {
                return Ok(n.id);
            }
        }
        if Instant::now() > deadline {
            return Err("no leader elected in time".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Write keys `lo..hi` through `leader`, 50 at a time, recording every
/// acknowledged write.
async fn write(
    leader: &Node,
    lo: usize,
    hi: usize,
    acked: &mut BTreeMap<String, String>,
) -> Res<()> {
    for start in (lo..hi).step_by(50) {
        let mut tasks = Vec::new();
        for i in start..hi.min(start + 50) {
            let raft = leader.raft.clone();
            let (key, value) = (format!("key-{i:05}"), format!("value-{i:05}"));
            tasks.push(tokio::spawn(async move {
                raft.client_write(Request::Set {
                    key: key.clone(),
                    value: value.clone(),
                })
                .await
                .map(|_| (key, value))
            }));
        }
        for t in tasks {
            let (k, v) = t.await?.map_err(|e| format!("write failed: {e}"))?;
            acked.insert(k, v);
        }
    }
    Ok(())
}

/// Wait until every node has applied everything the leader has.
async fn wait_applied(nodes: &[&Node], deadline: Instant) -> Res<()> {
    loop {
        let applied: Vec<_> = nodes
            .iter()
            .map(|n| n.raft.metrics().borrow().last_applied.map(|l| l.index))
            .collect();
        let logs: Vec<_> = nodes
            .iter()
            .map(|n| n.raft.metrics().borrow().last_log_index)
            .collect();
        let target = logs.iter().flatten().max().copied();
        if target.is_some() && applied.iter().all(|a| *a == target) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(
                format!("nodes did not catch up: applied {applied:?}, logs {logs:?}").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_addr() -> Res<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

async fn run(base: &Path) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(110);
    let mut nodes = BTreeMap::new();
    let mut members = BTreeMap::new();
    for id in 1..=3u64 {
        let addr = free_addr()?;
        let n = start(id, &addr, &base.join(format!("node{id}"))).await?;
        members.insert(id, BasicNode { addr });
        nodes.insert(id, n);
    }
    nodes[&1].raft.initialize(members).await?;
    let all: Vec<&Node> = nodes.values().collect();
    let leader = wait_leader(&all, deadline).await?;
    println!("1. cluster of 3 started; node {leader} is the leader");

    let mut acked = BTreeMap::new();
    write(&nodes[&leader], 0, 1000, &mut acked).await?;
    println!("   wrote 1,000 keys through node {leader}");

    let old = nodes.remove(&leader).ok_or("leader missing")?;
    let (old_id, old_addr, old_dir) = stop(old).await?;
    println!("2. stopped node {old_id} (the leader)");

    let rest: Vec<&Node> = nodes.values().collect();
    let leader = wait_leader(&rest, deadline).await?;
    println!("3. node {leader} elected leader");
    write(&nodes[&leader], 1000, 1500, &mut acked).await?;
    println!("4. wrote 500 more keys through node {leader}");

    let n = start(old_id, &old_addr, &old_dir).await?;
    let st = n.log.raft_log();
    println!(
        "5. restarted node {old_id} from {}: its log holds entries {}..={} on disk",
        old_dir.display(),
        st.first_index()?,
        st.last_index()?.map_or("none".into(), |l| l.to_string())
    );
    nodes.insert(old_id, n);
    let all: Vec<&Node> = nodes.values().collect();
    wait_applied(&all, deadline).await?;

    let mut ok = true;
    for n in nodes.values() {
        let got = n.sm.dump()?;
        let missing = acked.iter().filter(|(k, v)| got.get(*k) != Some(v)).count();
        let extra: BTreeSet<_> = got.keys().filter(|k| !acked.contains_key(*k)).collect();
        let m = n.raft.metrics().borrow().clone();
        println!(
            "6. node {}: {} keys, {} acknowledged missing or wrong, {} unexpected; applied {:?}, snapshot {:?}",
            n.id,
            got.len(),
            missing,
            extra.len(),
            m.last_applied.map(|l| l.index),
            m.snapshot.map(|l| l.index)
        );
        ok &= missing == 0 && extra.is_empty();
    }
    for n in std::mem::take(&mut nodes).into_values() {
        stop(n).await?;
    }
    if !ok {
        return Err("an acknowledged key is missing on some node".into());
    }
    println!(
        "all {} acknowledged keys are present on all three nodes",
        acked.len()
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let tmp;
    let base = match std::env::args_os().nth(1) {
        Some(p) => PathBuf::from(p),
        None => {
            tmp = tempfile::tempdir().expect("temporary directory");
            tmp.path().to_path_buf()
        }
    };
    match tokio::time::timeout(Duration::from_secs(120), run(&base)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("raft-cluster: FAILED: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("raft-cluster: FAILED: did not finish within 120 seconds");
            std::process::exit(1);
        }
    }
}
