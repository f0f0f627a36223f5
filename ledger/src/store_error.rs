//! The storage failure type, shared by everything that reads or writes state: the RocksDB store
//! (feature `storage`), the in-memory state of replays and rule tests, and witnesses' stores.
//! Also where a test may inject a fault (`FaultPoint`).

use crate::smt::SmtCorrupt;

/// Where a fault can be injected (tests of the durability order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// Before the batch's WriteBatch is written.
    BeforeCommit,
    /// After the batch is durable, before its checkpoint is signed and stored.
    AfterCommit,
    /// After the checkpoint is stored, before any submitter is acknowledged.
    AfterCheckpoint,
    /// Replicated mode: after the recorder's fsync of the database, before it appends the
    /// notes released since to `COOP-SIGNED` (the releases do not wait for either).
    BeforeRecord,
    /// After `Store::sync` made the database's write-ahead log durable, whoever called it (the
    /// recorder's round, a single node's release, a replica's purge of its Raft log). What the
    /// database holds here is what a power cut right after would leave.
    Synced,
}

/// A storage failure. The node stops sequencing on any of these rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// RocksDB reported an error (kept whole; [`StoreError::is_transient`] reads its kind).
    #[cfg(feature = "storage")]
    #[error("storage: {0}")]
    Db(#[source] rocksdb::Error),
    /// The data folder holds something this version cannot read, or is inconsistent.
    #[error("storage is corrupt or of another format: {0}")]
    Corrupt(String),
    /// `create` on a folder that already holds a ledger.
    #[error("a ledger already exists at {0}")]
    AlreadyExists(String),
    /// `open` on a folder without a ledger.
    #[error("no ledger at {0}")]
    Missing(String),
    /// A file beside the database (the record of signed checkpoints) could not be written.
    #[error("{what}: {kind}")]
    File {
        /// Which file, and what was being done.
        what: String,
        /// The I/O error's kind.
        kind: std::io::ErrorKind,
    },
    /// A fault injected by a test's hook (`LogConfig::fault_hook`).
    #[error("injected fault at {0:?}")]
    Injected(FaultPoint),
    /// Replicated mode: an off-log write was asked of a replica that is not the leader;
    /// nothing was written (`leader`: where to ask, when known).
    #[error("this replica is not the leader{}", .leader.as_deref().map(|l| format!("; the leader is {l}")).unwrap_or_default())]
    NotLeader {
        /// The leader's public address, when known.
        leader: Option<String>,
    },
    /// Replicated mode: an off-log write could not be replicated (no quorum in time, the node
    /// stopping); it may or may not be applied later.
    #[error("not replicated: {0}")]
    Unreplicated(String),
}

impl StoreError {
    /// True when the same operation may succeed if tried again (RocksDB busy, timed out, asked
    /// to try again, incomplete). Everything else is fatal: corruption, I/O errors, a full
    /// disk. The sequencer stops on either kind; a reader may retry a transient one.
    pub fn is_transient(&self) -> bool {
        #[cfg(feature = "storage")]
        {
            use rocksdb::ErrorKind as K;
            matches!(
                self,
                StoreError::Db(e) if matches!(e.kind(), K::Busy | K::TimedOut | K::TryAgain | K::Incomplete)
            )
        }
        #[cfg(not(feature = "storage"))]
        {
            false
        }
    }
}

impl From<SmtCorrupt> for StoreError {
    fn from(e: SmtCorrupt) -> StoreError {
        StoreError::Corrupt(e.to_string())
    }
}

#[cfg(feature = "storage")]
impl From<rocksdb::Error> for StoreError {
    fn from(e: rocksdb::Error) -> StoreError {
        StoreError::Db(e)
    }
}
