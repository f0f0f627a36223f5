//! One co-op's ledger on several replicas (`docs/replication.md`): the commands Raft
//! replicates, openraft's storage traits on the ledger's own RocksDB database (the Raft log in
//! `log_store`, the ledger as the state machine in `state_machine`), and a replica's runtime
//! (`replica`): Raft, and the task that proposes the ledger's batches.
//!
//! The network between replicas is injected (`openraft::RaftNetworkFactory`): the `rpc` crate
//! implements it over its cluster listener; this crate does not know the wire.

pub mod log_store;
pub mod membership;
pub mod network;
pub mod replica;
pub mod state_machine;

use base64::Engine;
use coopledger_ledger::log::replication::{BatchItem, OfflogOp, ProposedBatch};
use coopledger_ledger::OwnEntry;
use serde::{Deserialize, Serialize};

/// What one Raft entry carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Command {
    /// A batch a replica's log proposed (`ledger::log::replication`).
    Batch(BatchCommand),
}

/// A proposed batch as it is stored in the Raft log and sent between replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchCommand {
    /// The proposing log's opening id (only it answers submitters).
    pub proposer: u64,
    /// The proposer's number for the batch.
    pub ticket: u64,
    /// The entries, in order.
    pub items: Vec<Item>,
    /// The proposer's batch time, ms since the epoch.
    pub batch_time_ms: u64,
}

/// One item of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Item {
    /// A signed entry's canonical bytes, base64.
    Signed(String),
    /// One of the node's own entries, signed by each replica with the log key as it is
    /// sequenced.
    Own {
        /// Entry type.
        kind: String,
        /// Payload schema version.
        version: u64,
        /// The payload.
        payload: serde_json::Map<String, serde_json::Value>,
    },
    /// Off-log writes (ballot box, vault, witness state…), applied with the batch.
    Offlog(Vec<OfflogWire>),
}

/// One off-log write; keys and values base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum OfflogWire {
    /// Store `value` under `key`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Shred `keys` (crypto-shredding: their bytes leave every file).
    Shred {
        /// The keys.
        keys: Vec<String>,
    },
}

impl OfflogWire {
    fn from_op(op: OfflogOp) -> OfflogWire {
        let b64 = base64::engine::general_purpose::STANDARD;
        match op {
            OfflogOp::Put { key, value } => OfflogWire::Put {
                key: b64.encode(key),
                value: b64.encode(value),
            },
            OfflogOp::Delete { key } => OfflogWire::Delete {
                key: b64.encode(key),
            },
            OfflogOp::Shred { keys } => OfflogWire::Shred {
                keys: keys.into_iter().map(|k| b64.encode(k)).collect(),
            },
        }
    }

    /// The write; base64 that does not decode becomes empty bytes (identically everywhere).
    fn into_op(self) -> OfflogOp {
        let b64 = base64::engine::general_purpose::STANDARD;
        let d = |t: String| b64.decode(t).unwrap_or_default();
        match self {
            OfflogWire::Put { key, value } => OfflogOp::Put {
                key: d(key),
                value: d(value),
            },
            OfflogWire::Delete { key } => OfflogOp::Delete { key: d(key) },
            OfflogWire::Shred { keys } => OfflogOp::Shred {
                keys: keys.into_iter().map(d).collect(),
            },
        }
    }
}

impl From<ProposedBatch> for BatchCommand {
    fn from(b: ProposedBatch) -> BatchCommand {
        let b64 = base64::engine::general_purpose::STANDARD;
        BatchCommand {
            proposer: b.proposer,
            ticket: b.ticket,
            items: b
                .items
                .into_iter()
                .map(|i| match i {
                    BatchItem::Signed(bytes) => Item::Signed(b64.encode(bytes)),
                    BatchItem::Own(own) => Item::Own {
                        kind: own.kind,
                        version: own.version,
                        payload: own.payload,
                    },
                    BatchItem::Offlog(ops) => {
                        Item::Offlog(ops.into_iter().map(OfflogWire::from_op).collect())
                    }
                })
                .collect(),
            batch_time_ms: b.batch_time_ms,
        }
    }
}

impl BatchCommand {
    /// Whether applying it shreds off-log records (after which the Raft log's copies must go).
    pub fn shreds(&self) -> bool {
        self.items.iter().any(|i| {
            matches!(i, Item::Offlog(ops) if ops.iter().any(|o| matches!(o, OfflogWire::Shred { .. })))
        })
    }

    /// The batch for the ledger. An item whose base64 does not decode is passed on empty, so
    /// every replica refuses it identically (an empty entry does not parse).
    pub fn into_batch(self) -> ProposedBatch {
        let b64 = base64::engine::general_purpose::STANDARD;
        ProposedBatch {
            proposer: self.proposer,
            ticket: self.ticket,
            items: self
                .items
                .into_iter()
                .map(|i| match i {
                    Item::Signed(text) => BatchItem::Signed(b64.decode(text).unwrap_or_default()),
                    Item::Own {
                        kind,
                        version,
                        payload,
                    } => BatchItem::Own(OwnEntry {
                        kind,
                        version,
                        payload,
                    }),
                    Item::Offlog(ops) => {
                        BatchItem::Offlog(ops.into_iter().map(OfflogWire::into_op).collect())
                    }
                })
                .collect(),
            batch_time_ms: self.batch_time_ms,
        }
    }
}

/// What applying a command answers the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Applied {
    /// Tree size after the command.
    pub size: u64,
}

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
    /// Timeouts and snapshot policy (`snapshot_dir` is set by the node: `<data>/raft-snapshots`).
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

openraft::declare_raft_types!(
    /// The replicated ledger's Raft types.
    pub Cluster:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = ReplicaAddr,
        SnapshotData = tokio::fs::File,
);

#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod tests;
