//! One co-op's ledger on several replicas (`docs/replication.md`): openraft's storage traits on the ledger's own RocksDB database (the Raft log in
//! `log_store`, the ledger as the state machine in `state_machine`), and a replica's runtime
//! (`replica`): Raft, and the task that proposes the ledger's batches. What replicas send
//! and keep — the commands Raft replicates, `cluster.json`, join requests, snapshot files — is
//! parsed in `coopledger_cluster_formats`, re-exported here.
//!
//! The network between replicas is injected (`openraft::RaftNetworkFactory`): the `rpc` crate
//! implements it over its cluster listener; this crate does not know the wire.

pub mod log_store;
pub mod membership;
pub mod network;
pub mod replica;
pub mod state_machine;

pub use coopledger_cluster_formats::{
    Applied, BatchCommand, Cluster, Command, Item, OfflogWire, ReplicaAddr,
};

/// What a node needs to run as one replica of a cluster (`NodeConfig::cluster`).
pub struct ClusterSetup {
    /// This replica's id and addresses.
    pub id: u64,
    /// Where this replica is reached.
    pub me: ReplicaAddr,
    /// The cluster listener (replicas only).
    pub listener: std::net::TcpListener,
    /// What answers Raft calls on it (`coopledger_rpc::cluster`).
    pub frontend: std::sync::Arc<dyn ClusterFrontend>,
    /// How this replica calls the others.
    pub calls: std::sync::Arc<dyn network::PeerCalls>,
    /// Make this replica a one-replica cluster if it is in none yet (`coop cluster init`).
    pub initialize: bool,
    /// Timeouts and snapshot policy (`snapshot_dir` and `log_dir` are set by the node: `<data>/raft-snapshots`, `<data>/raft-log`).
    pub tuning: replica::ReplicaConfig,
}

impl std::fmt::Debug for ClusterSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSetup")
            .field("id", &self.id)
            .field("me", &self.me)
            .field("initialize", &self.initialize)
            .finish_non_exhaustive()
    }
}

/// What answers Raft's calls on the cluster listener.
pub trait ClusterFrontend: Send + Sync + 'static {
    /// Starts answering on `listener` for `raft`; returns once it listens.
    fn start(
        &self,
        raft: openraft::Raft<Cluster>,
        listener: std::net::TcpListener,
    ) -> std::io::Result<Box<dyn crate::Serving>>;
}

#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod tests;
