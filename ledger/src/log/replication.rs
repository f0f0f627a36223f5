//! The log's side of replication (`docs/replication.md`): what a replicated log proposes, how
//! a committed batch is applied, and how a replica that fell behind copies history. The log
//! knows nothing of the protocol that orders the batches (the node runs Raft); it only promises
//! that every replica applying the same committed batches in the same order reaches the same
//! tree, state and checkpoints.

use super::{Log, SubmitError};
pub use crate::batch::{BatchItem, OfflogOp, ProposedBatch};
use crate::entry::{Envelope, Verified};
use crate::merkle::Frontier;
use crate::note::SignedCheckpoint;
use crate::sequencer::{self, CommittedItems, CommittedWork, ImportWork, Pending};
use crate::state::{StateCommitment, StateMachine, STATE_ENTRY_TYPE};
use crate::store::StoreError;
use tokio::sync::oneshot;

/// Where a replicated log sends its proposals (the node's replication task receives them).
pub type Proposals = tokio::sync::mpsc::UnboundedSender<ProposedBatch>;

/// A committed batch, as replication gives it back to each replica.
#[derive(Debug, Clone, PartialEq)]
pub struct CommittedBatch {
    /// As proposed (`proposer`, `ticket`, `items`, `batch_time_ms`).
    pub batch: ProposedBatch,
    /// Side-meta values written in the same write as the batch (replication's applied mark).
    pub side_meta: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Why history could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The history does not start at this log's size.
    #[error("history starts at {given}, this log holds {size} entries")]
    WrongStart {
        /// Entries this log holds.
        size: u64,
        /// Where the history given starts.
        given: u64,
    },
    /// An entry is not canonical or its signature fails.
    #[error("history entry {index}: {reason}")]
    BadEntry {
        /// Its index.
        index: u64,
        /// Why.
        reason: String,
    },
    /// The history does not end on a `log.state` entry (a batch cut in two).
    #[error("history ends inside a batch (after entry {last}); nothing of that batch imported")]
    Unfinished {
        /// The last entry given.
        last: u64,
    },
    /// The history does not end on the tree the given checkpoint note signs (or the note does
    /// not open with this log's key): it is not the co-op's history.
    #[error("history is not the signed one: {0}")]
    NotSigned(String),
    /// Applying the history here does not reproduce it (another rule set, or a forged history).
    #[error("history does not reproduce here: {0}")]
    Differs(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// The log stopped.
    #[error("the log is not sequencing")]
    Stopped,
}

impl<M: StateMachine> Log<M> {
    /// Whether this log hands its submissions to replication (`LogConfig::replicate`).
    pub fn is_replicated(&self) -> bool {
        self.shared.config.replicate.is_some()
    }

    /// Applies a batch replication committed, as exactly one batch at its batch time, after
    /// every batch given before. On the replica that proposed it, its submitters are answered
    /// once it is durable and checkpointed; the others take the proposer's verdict on its
    /// signatures (`docs/replication.md` §1). Resolves with the tree size once the batch is written — not yet durable: the
    /// write-ahead log is a prefix, so a crash can lose it only with everything after it,
    /// and the applied mark in `side_meta` goes with it.
    pub async fn apply_committed(
        &self,
        committed: CommittedBatch,
    ) -> Result<oneshot::Receiver<Result<u64, SubmitError>>, SubmitError> {
        let CommittedBatch { batch, side_meta } = committed;
        let local = if batch.proposer == self.shared.instance {
            self.shared.unpark_to_apply(batch.ticket)
        } else {
            None
        };
        let local_ticket = local.as_ref().map(|_| batch.ticket);
        let items = match local {
            Some(items) => CommittedItems::Local(items),
            None => CommittedItems::Remote(batch.items),
        };
        let (written, rx) = oneshot::channel();
        let work = CommittedWork {
            items,
            local_ticket,
            batch_time_ms: batch.batch_time_ms,
            side_meta,
            written,
        };
        if let Err(e) = self.enqueue(Pending::Committed(Box::new(work))).await {
            // Never reaches the sequencer (the log stopped): out of flight now.
            if let Some(ticket) = local_ticket {
                self.shared.applied(ticket);
            }
            return Err(e);
        }
        Ok(rx)
    }

    /// Replication gave up on a batch this log proposed (no longer the leader, no quorum in
    /// time): its submitters get `why`. If the batch is committed after all, applying it here
    /// finds nobody waiting; a resubmission then returns the entry's receipt.
    pub fn abandon(&self, ticket: u64, why: &SubmitError) {
        if let Some(items) = self.shared.unpark(ticket) {
            for item in items {
                sequencer::refuse_with(item, why);
            }
        }
    }

    /// Copies history from another replica: `entries` are that replica's entries from this
    /// log's size on, ending on a `log.state` entry. Each of its batches (ending on its
    /// `log.state`) is applied here through the same sequencer and written only if it
    /// reproduces the given entries byte for byte, so the result is the same tree, state and
    /// checkpoints, never a fork. `note` is the log key's checkpoint note the history must
    /// end on: before anything is applied, this log's tree extended by the history's leaves
    /// must have exactly its size and root. Returns the new size (written; durable after
    /// [`Log::sync_written`]).
    pub async fn import_history(
        &self,
        start: u64,
        entries: Vec<Vec<u8>>,
        note: &str,
    ) -> Result<u64, ImportError> {
        let size = self.shared.store.size()?;
        if start != size {
            return Err(ImportError::WrongStart { size, given: start });
        }
        let signed = SignedCheckpoint::open(note, &self.shared.signer.verifier())
            .map_err(|e| ImportError::NotSigned(e.to_string()))?;
        let mut tree = Frontier::load(&*self.shared.store, size)?;
        let mut ignored = Vec::new();
        for bytes in &entries {
            tree.push(crate::hash::leaf_hash(bytes), &mut ignored);
            ignored.clear();
        }
        if tree.size() != signed.checkpoint.size || tree.root() != signed.checkpoint.root {
            return Err(ImportError::NotSigned(format!(
                "this log's {size} entries and the {} given make a tree of size {} that is not \
                 the one signed at size {}",
                entries.len(),
                tree.size(),
                signed.checkpoint.size
            )));
        }
        let mut parsed = Vec::with_capacity(entries.len());
        for (i, bytes) in entries.iter().enumerate() {
            let env = Envelope::from_bytes(bytes).map_err(|r| ImportError::BadEntry {
                index: start + i as u64,
                reason: r.to_string(),
            })?;
            parsed.push(env);
        }
        // Every signature checked here, batched, before anything is applied.
        let mut verified: Vec<Verified<Envelope>> = Vec::with_capacity(parsed.len());
        for (i, v) in crate::entry::admit(parsed).into_iter().enumerate() {
            verified.push(v.map_err(|r| ImportError::BadEntry {
                index: start + i as u64,
                reason: r.to_string(),
            })?);
        }
        let mut at = size;
        let mut batch: Vec<Verified<Envelope>> = Vec::new();
        let mut expect: Vec<Vec<u8>> = Vec::new();
        for (env, bytes) in verified.into_iter().zip(entries) {
            expect.push(bytes);
            if env.body().kind != STATE_ENTRY_TYPE {
                batch.push(env);
                continue;
            }
            let Some(commitment) = StateCommitment::from_entry(&env) else {
                return Err(ImportError::BadEntry {
                    index: at + expect.len() as u64 - 1,
                    reason: "malformed log.state entry".into(),
                });
            };
            let (written, rx) = oneshot::channel();
            let work = ImportWork {
                items: std::mem::take(&mut batch),
                batch_time_ms: commitment.batch_time_ms,
                expect: std::mem::take(&mut expect),
                written,
            };
            self.enqueue(Pending::Import(Box::new(work)))
                .await
                .map_err(|_| ImportError::Stopped)?;
            at = rx.await.map_err(|_| ImportError::Stopped)??;
        }
        if !expect.is_empty() {
            return Err(ImportError::Unfinished {
                last: at + expect.len() as u64 - 1,
            });
        }
        Ok(at)
    }

    /// Writes off-log records. On a single node: at once, in one fsync'd write (a shred
    /// rewrites storage, `Store::offlog_shred`). On a replica: through replication, like an
    /// entry — applied by every replica in the log's order, answered once durable here; a
    /// follower refuses with `NotLeader` like a submission.
    pub async fn offlog_write(&self, ops: Vec<OfflogOp>) -> Result<(), SubmitError> {
        if ops.is_empty() {
            return Ok(());
        }
        if !self.is_replicated() {
            let store = &self.shared.store;
            let mut plain = Vec::new();
            for op in ops {
                match op {
                    OfflogOp::Put { key, value } => plain.push((key, Some(value))),
                    OfflogOp::Delete { key } => plain.push((key, None)),
                    OfflogOp::Shred { keys } => {
                        store.offlog_write(&std::mem::take(&mut plain))?;
                        store.offlog_shred(&keys)?;
                    }
                }
            }
            store.offlog_write(&plain)?;
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.enqueue(Pending::Offlog(ops, reply)).await?;
        rx.await.map_err(|_| SubmitError::Stopped)?
    }

    /// The synchronous off-log writes (`offlog_put`, `offlog_delete`, `offlog_shred`) of a
    /// replica: [`Log::offlog_write`], waited for on this thread. The thread leaves the async
    /// runtime's workers while it waits (`block_in_place`), so waiting cannot starve Raft; a
    /// single-threaded runtime cannot do that, and is refused rather than blocked.
    pub(crate) fn offlog_replicated(&self, ops: Vec<OfflogOp>) -> Result<(), StoreError> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Unreplicated("no async runtime to replicate with".into()))?;
        if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
            return Err(StoreError::Unreplicated(
                "a replica's off-log writes need the multi-threaded runtime".into(),
            ));
        }
        tokio::task::block_in_place(|| handle.block_on(self.offlog_write(ops))).map_err(|e| match e
        {
            SubmitError::NotLeader { leader } => StoreError::NotLeader { leader },
            SubmitError::Storage(s) => s,
            other => StoreError::Unreplicated(other.to_string()),
        })
    }

    /// Replaces every off-log record (a replica installing a snapshot).
    pub fn offlog_replace(&self, records: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        self.shared.store.offlog_replace(records)
    }

    /// Makes everything written so far durable (one fsync of the write-ahead log).
    pub fn sync_written(&self) -> Result<(), StoreError> {
        self.shared.store.sync()
    }

    /// Reads a side-meta value (replication's own records, beside the ledger's).
    pub fn side_meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.shared.store.side_meta_get(key)
    }

    /// The database, shared with replication's log store, which syncs it before a purge and
    /// moves an older folder's Raft log out of its side families (`docs/replication.md` §2).
    pub fn shared_store(&self) -> std::sync::Arc<crate::store::Store> {
        self.shared.store.clone()
    }

    /// Entries in the database (applied; the released checkpoint may trail it briefly).
    pub fn written_size(&self) -> Result<u64, StoreError> {
        self.shared.store.size()
    }
}
