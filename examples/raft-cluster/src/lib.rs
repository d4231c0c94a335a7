//! The openraft network shared by the `raft-cluster` example and the
//! `raft-node` server of the fault test: one TCP connection per RPC,
//! newline-delimited JSON, remote errors travelling as `RaftError`. It
//! follows the shape of openraft's own examples, over plain TCP instead of
//! HTTP.

use keyval_openraft::{NodeId, TypeConfig};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::error::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One RPC on the wire.
#[derive(Serialize, Deserialize)]
pub enum Rpc {
    /// AppendEntries.
    Append(AppendEntriesRequest<TypeConfig>),
    /// RequestVote.
    Vote(VoteRequest<NodeId>),
    /// InstallSnapshot (one chunk).
    Snapshot(InstallSnapshotRequest<TypeConfig>),
}

/// Client side: one TCP connection per RPC to `addr`.
pub struct Conn {
    target: NodeId,
    addr: String,
}

impl Conn {
    async fn call<Resp, E>(
        &self,
        rpc: &Rpc,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let io = async {
            let mut s = TcpStream::connect(&self.addr).await?;
            let mut line = serde_json::to_vec(rpc)?;
            line.push(b'\n');
            s.write_all(&line).await?;
            let mut r = BufReader::new(s);
            let mut reply = String::new();
            r.read_line(&mut reply).await?;
            let v: Result<Resp, RaftError<NodeId, E>> = serde_json::from_str(&reply)?;
            Ok::<_, std::io::Error>(v)
        };
        match tokio::time::timeout(option.hard_ttl(), io).await {
            Ok(Ok(Ok(resp))) => Ok(resp),
            Ok(Ok(Err(remote))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, remote)))
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Ok(Err(e)) => Err(RPCError::Network(NetworkError::new(&e))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(&Rpc::Append(rpc), &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(&Rpc::Snapshot(rpc), &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(&Rpc::Vote(rpc), &option).await
    }
}

/// Creates one [`Conn`] per peer. A peer is reached at the address in the
/// membership unless `routes` names another one for it (the fault test
/// routes every link through a proxy it can cut).
#[derive(Clone, Default)]
pub struct Network {
    /// Per-peer address overrides.
    pub routes: BTreeMap<NodeId, String>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Conn;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Conn {
        let addr = self.routes.get(&target).unwrap_or(&node.addr).clone();
        Conn { target, addr }
    }
}

/// Server side: answer each connection's RPCs with the local Raft.
pub async fn serve(listener: TcpListener, raft: Raft<TypeConfig>) {
    loop {
        let Ok((s, _)) = listener.accept().await else {
            continue;
        };
        let raft = raft.clone();
        tokio::spawn(async move {
            let (r, mut w) = s.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = match serde_json::from_str::<Rpc>(&line) {
                    Ok(Rpc::Append(req)) => serde_json::to_vec(&raft.append_entries(req).await),
                    Ok(Rpc::Vote(req)) => serde_json::to_vec(&raft.vote(req).await),
                    Ok(Rpc::Snapshot(req)) => serde_json::to_vec(&raft.install_snapshot(req).await),
                    Err(_) => return,
                };
                let Ok(mut reply) = reply else { return };
                reply.push(b'\n');
                if w.write_all(&reply).await.is_err() {
                    return;
                }
            }
        });
    }
}
