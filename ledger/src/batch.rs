//! A batch as replication carries it between replicas of one log: its items (signed entries,
//! the node's own entries, off-log writes) and who proposed it. Plain data, built without
//! storage, so the formats replicas exchange can be parsed and fuzzed apart from RocksDB;
//! the log's side of replication is `log::replication`.

/// A node entry before the sequencer numbers and signs it.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnEntry {
    /// Entry type (registered with the state machine, never under `log.`).
    pub kind: String,
    /// Payload schema version.
    pub version: u64,
    /// The payload.
    pub payload: serde_json::Map<String, serde_json::Value>,
}

/// A write to the off-log records beside the log (ballot box, vault, witness state…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfflogOp {
    /// Store `value` under `key`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Delete the record under `key`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Delete the records under `keys` so that their bytes are in no file of the data folder
    /// (`Store::offlog_shred`): crypto-shredding.
    Shred {
        /// The keys.
        keys: Vec<Vec<u8>>,
    },
}

/// One item of a batch as it travels between replicas.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchItem {
    /// Off-log writes, applied by every replica with the batch, after its entries.
    Offlog(Vec<OfflogOp>),
    /// A signed entry's canonical bytes (its signature checked by the proposer, not again by
    /// the replicas applying it: `docs/replication.md` §1).
    Signed(Vec<u8>),
    /// One of the node's own entries, signed with the log key by each replica when it is
    /// sequenced (Ed25519 is deterministic, so every replica makes the same bytes).
    Own(OwnEntry),
}

/// A batch a replicated log hands to replication: nothing of it is applied until replication
/// commits it and gives it back through `Log::apply_committed` on every replica.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposedBatch {
    /// Which log proposed it (random per opening), so only the proposer answers submitters.
    pub proposer: u64,
    /// The proposer's number for it.
    pub ticket: u64,
    /// The entries, in order.
    pub items: Vec<BatchItem>,
    /// The proposer's batch time; replicas apply `max(previous batch time, this)`.
    pub batch_time_ms: u64,
}
