//! One co-op's ledger on several replicas (`docs/replication.md`): the commands Raft
//! replicates, and openraft's storage traits on the ledger's own RocksDB database.
//!
//! Work in progress: the log store and its conformance run are here; the state machine over
//! the ledger, the network and the cluster commands are not yet.

pub mod log_store;

use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// What one Raft entry carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Command {
    /// A batch the leader sequenced: canonical entry bytes (base64) and the batch time.
    Batch {
        /// The entries, in order.
        entries: Vec<String>,
        /// The leader's batch time, ms.
        batch_time_ms: u64,
    },
}

/// What applying a command answers the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Applied {
    /// Tree size after the command.
    pub size: u64,
}

openraft::declare_raft_types!(
    /// The replicated ledger's Raft types.
    pub Cluster:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

#[cfg(test)]
mod tests;
