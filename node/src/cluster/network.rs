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
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The network factory Raft gets: every connection uses the same calls, and counts the
/// snapshots it sends in the same [`SnapshotSends`].
#[derive(Clone)]
pub struct Network {
    calls: Arc<dyn PeerCalls>,
    sends: Arc<SnapshotSends>,
}

impl Network {
    /// Raft's network over `calls`.
    pub fn new(calls: Arc<dyn PeerCalls>) -> Network {
        Network {
            calls,
            sends: Arc::default(),
        }
    }

    /// The counts of snapshot pieces this network sent (shared: they keep counting).
    pub fn snapshot_sends(&self) -> Arc<SnapshotSends> {
        self.sends.clone()
    }
}

/// How many last pieces of snapshots this replica sent, and how many of them Raft gave up
/// waiting for. The last piece is answered only once the receiver imported the history
/// (`docs/replication.md` §6), so an abandoned one is an install that outlasted
/// `ReplicaConfig::snapshot_install_timeout`: the receiver goes on importing, and Raft sends
/// the snapshot again.
#[derive(Debug, Default)]
pub struct SnapshotSends {
    last_pieces: AtomicU64,
    abandoned: AtomicU64,
}

impl SnapshotSends {
    /// Last pieces sent (answered or not).
    pub fn last_pieces(&self) -> u64 {
        self.last_pieces.load(Ordering::Relaxed)
    }

    /// Last pieces whose answer Raft stopped waiting for (the call was dropped unanswered).
    pub fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Relaxed)
    }
}

/// Counts one last piece as abandoned unless [`LastPiece::answered`] is called: Raft ends a
/// call that runs out of time by dropping it.
struct LastPiece<'a>(Option<&'a SnapshotSends>);

impl LastPiece<'_> {
    fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for LastPiece<'_> {
    fn drop(&mut self) {
        if let Some(sends) = self.0 {
            sends.abandoned.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Network")
    }
}

/// A connection to one peer.
pub struct Peer {
    calls: Arc<dyn PeerCalls>,
    sends: Arc<SnapshotSends>,
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
            calls: self.calls.clone(),
            sends: self.sends.clone(),
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
        if !rpc.done {
            return self.send(SNAPSHOT, &rpc).await;
        }
        self.sends.last_pieces.fetch_add(1, Ordering::Relaxed);
        let waiting = LastPiece(Some(&self.sends));
        let answer = self.send(SNAPSHOT, &rpc).await;
        waiting.answered();
        answer
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

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "test code: a panic is a test failure with a message and a backtrace"
    )]

    use super::*;
    use openraft::{SnapshotMeta, Vote};

    /// A peer that answers every piece at once, except a last piece: that one only when
    /// `answer_last` says so, and otherwise never.
    struct Pieces {
        answer_last: bool,
    }

    impl PeerCalls for Pieces {
        fn call(&self, _: &str, _: &'static str, params: String) -> CallFuture {
            let hang = params.contains("\"done\":true") && !self.answer_last;
            Box::pin(async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                let answer: Answer<InstallSnapshotResponse<u64>, InstallSnapshotError> =
                    Ok(InstallSnapshotResponse {
                        vote: Vote::new(1, 1),
                    });
                serde_json::to_string(&answer).map_err(|e| CallFailed(e.to_string()))
            })
        }
    }

    fn piece(done: bool) -> InstallSnapshotRequest<Cluster> {
        InstallSnapshotRequest {
            vote: Vote::new(1, 1),
            meta: SnapshotMeta::default(),
            offset: 0,
            data: vec![1, 2, 3],
            done,
        }
    }

    async fn peer(answer_last: bool, net: &Network) -> Peer {
        let mut factory = Network {
            calls: Arc::new(Pieces { answer_last }),
            sends: net.snapshot_sends(),
        };
        factory.new_client(2, &ReplicaAddr::default()).await
    }

    #[tokio::test]
    async fn a_last_piece_raft_stops_waiting_for_is_counted_as_outlasted() {
        let net = Network::new(Arc::new(Pieces { answer_last: true }));
        let option = || RPCOption::new(std::time::Duration::from_secs(1));
        // Pieces before the last are not counted; an answered last piece is.
        let mut quick = peer(true, &net).await;
        quick
            .install_snapshot(piece(false), option())
            .await
            .unwrap();
        quick.install_snapshot(piece(true), option()).await.unwrap();
        let sends = net.snapshot_sends();
        assert_eq!((sends.last_pieces(), sends.abandoned()), (1, 0));
        // Raft ends a call that runs out by dropping it.
        let mut slow = peer(false, &net).await;
        let ran_out = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            slow.install_snapshot(piece(true), option()),
        )
        .await;
        assert!(ran_out.is_err(), "the last piece was answered");
        assert_eq!((sends.last_pieces(), sends.abandoned()), (2, 1));
        slow.install_snapshot(piece(false), option()).await.unwrap();
        assert_eq!((sends.last_pieces(), sends.abandoned()), (2, 1));
    }
}
