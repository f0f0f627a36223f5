//! What replicas of one co-op's ledger send each other and keep on disk
//! (`docs/replication.md`): the command one Raft entry carries (`command`), the signed join and
//! leave requests, `cluster.json` and the cluster's status (`membership`), Raft's own messages
//! read strictly (`raft`), and the snapshot file (`snapshot`). Parsers only — no I/O runtime, no RocksDB — so each one is fuzzed
//! (`fuzz/fuzz_targets/raft_command.rs`, `cluster_request.rs`, `cluster_file.rs`,
//! `snapshot_file.rs`, `raft_message.rs`). The node runs Raft on them (`node::cluster`); the
//! `rpc` crate carries them.
//!
//! Invariant: every parser here refuses unknown fields, bounds what it allocates by what it
//! was given (or by a stated limit), and never panics on input.

#![forbid(unsafe_code)]

pub mod command;
pub mod membership;
pub mod raft;
pub mod snapshot;

pub use command::{Applied, BatchCommand, Command, Item, OfflogWire};

use serde::{Deserialize, Serialize};

/// Where a replica is reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicaAddr {
    /// The public JSON-RPC address members and the portal use (where a follower sends
    /// submitters: error 3005's `data.leader`).
    pub public: String,
    /// The cluster address only replicas use.
    pub cluster: String,
}

impl std::fmt::Display for ReplicaAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (cluster {})", self.public, self.cluster)
    }
}

openraft::declare_raft_types!(
    /// The replicated ledger's Raft types.
    pub Cluster:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = ReplicaAddr,
        SnapshotData = tokio::fs::File,
);
