//! openraft's network over calls between replicas (`docs/replication.md` §6): each Raft RPC is
//! one call of a named method with the request as JSON, answered with openraft's own
//! `Result<response, RaftError>` as JSON. Both travel as text, written once and read once
//! (`strict_text`): no JSON tree is built on the way. How a call travels (the cluster listener, mutual TLS
//! with the co-op's log key) is the caller's [`PeerCalls`]; the `rpc` crate provides it and
//! routes the methods below to [`answer`].

use super::{Cluster, ReplicaAddr};
use coopledger_cluster_formats::raft::strict_text;
pub use coopledger_cluster_formats::raft::{PurgeMark, PurgeQuery};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::Raft;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The Raft methods on the cluster listener.
pub const APPEND: &str = "raft_appendEntries";
/// See [`APPEND`].
pub const VOTE: &str = "raft_vote";
/// See [`APPEND`].
pub const SNAPSHOT: &str = "raft_installSnapshot";
/// Not one of Raft's own: how far a replica has purged its Raft log ([`PurgeQuery`] →
/// [`PurgeMark`]), asked after an erasure (`docs/replication.md` §4).
pub const PURGED: &str = "raft_purged";
/// Every method the cluster listener answers (through [`answer`]).
pub const METHODS: [&str; 4] = [APPEND, VOTE, SNAPSHOT, PURGED];

/// Why a call to a peer failed before it answered.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CallFailed(pub String);

/// A boxed call in flight.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<String, CallFailed>> + Send>>;

/// Calls one method on a peer replica's cluster address.
pub trait PeerCalls: Send + Sync + 'static {
    /// Sends `params` (the request's JSON text) to `method` at `peer` (its cluster address)
    /// and returns the answer's JSON text.
    fn call(&self, peer: &str, method: &'static str, params: String) -> CallFuture;
}

/// The network factory Raft gets: every connection uses the same calls.
#[derive(Clone)]
pub struct Network(pub Arc<dyn PeerCalls>);

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Network")
    }
}

/// A connection to one peer.
pub struct Peer {
    calls: Arc<dyn PeerCalls>,
    id: u64,
    addr: ReplicaAddr,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .finish()
    }
}

impl RaftNetworkFactory<Cluster> for Network {
    type Network = Peer;
    async fn new_client(&mut self, target: u64, node: &ReplicaAddr) -> Peer {
        Peer {
            calls: self.0.clone(),
            id: target,
            addr: node.clone(),
        }
    }
}

type Answer<T, E> = Result<T, RaftError<u64, E>>;

impl Peer {
    async fn send<Q: Serialize, T: Serialize + DeserializeOwned, E>(
        &self,
        method: &'static str,
        request: &Q,
    ) -> Result<T, RPCError<u64, ReplicaAddr, RaftError<u64, E>>>
    where
        E: std::error::Error + Serialize + DeserializeOwned,
    {
        let params =
            serde_json::to_string(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        // A peer that does not answer is unreachable: Raft backs off before calling it again,
        // rather than retrying at once.
        let text = self
            .calls
            .call(&self.addr.cluster, method, params)
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let answer: Answer<T, E> =
            strict_text(&text).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(self.id, self.addr.clone(), e))
        })
    }
}

impl RaftNetwork<Cluster> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Cluster>,
        _: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, ReplicaAddr, RaftError<u64>>> {
        self.send(APPEND, &rpc).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Cluster>,
        _: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, ReplicaAddr, RaftError<u64, InstallSnapshotError>>,
    > {
        self.send(SNAPSHOT, &rpc).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, ReplicaAddr, RaftError<u64>>> {
        self.send(VOTE, &rpc).await
    }

    /// Retry an unreachable peer every 50 ms: a replica that restarts hears from the leader
    /// well inside its election timeout (300–600 ms) and follows it, instead of standing for
    /// election and unsettling a cluster that was fine (openraft's default is 500 ms).
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(std::time::Duration::from_millis(50)))
    }
}

/// Why a Raft call could not be answered at all (the request did not parse, or the method is
/// not a Raft method).
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The params are not the method's request.
    #[error("params: {0}")]
    Params(String),
    /// No such Raft method.
    #[error("no Raft method {0}")]
    Method(String),
}

/// Answers one Raft call on this replica, given the request's JSON text:
/// `Ok(JSON text of Result<response, RaftError>)` ([`PURGED`]: of a [`PurgeMark`]).
pub async fn answer(
    raft: &Raft<Cluster>,
    method: &str,
    params: &str,
) -> Result<String, AnswerError> {
    fn parse<T: Serialize + DeserializeOwned>(text: &str) -> Result<T, AnswerError> {
        strict_text(text).map_err(|e| AnswerError::Params(e.to_string()))
    }
    fn out<T: Serialize>(v: &T) -> Result<String, AnswerError> {
        serde_json::to_string(v).map_err(|e| AnswerError::Params(e.to_string()))
    }
    match method {
        APPEND => out(&raft.append_entries(parse(params)?).await),
        VOTE => out(&raft.vote(parse(params)?).await),
        SNAPSHOT => out(&raft.install_snapshot(parse(params)?).await),
        PURGED => {
            let PurgeQuery {} = parse(params)?;
            let purged = raft.metrics().borrow().purged.map_or(0, |l| l.index);
            out(&PurgeMark { purged })
        }
        other => Err(AnswerError::Method(other.to_owned())),
    }
}

/// Asks the replica at `addr` (its cluster address) how far it has purged its Raft log.
pub async fn purged_at(calls: &dyn PeerCalls, addr: &ReplicaAddr) -> Result<u64, CallFailed> {
    let params = serde_json::to_string(&PurgeQuery {}).map_err(|e| CallFailed(e.to_string()))?;
    let text = calls.call(&addr.cluster, PURGED, params).await?;
    let mark: PurgeMark =
        strict_text(&text).map_err(|e| CallFailed(format!("{PURGED} answer: {e}")))?;
    Ok(mark.purged)
}
