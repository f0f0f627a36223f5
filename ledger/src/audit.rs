//! The offline audit of DESIGN §4: replay a log from its first entry with the co-op's rules, in
//! memory, exactly as the sequencer applied it, and check that every `log.state` entry records
//! the state root the replay reaches. A node that left out, reordered or altered anything its
//! state depends on is caught at the first commitment after it.

use crate::entry::{verify_stored, Envelope, Rejection, Verified};
use crate::hash::Hash;
use crate::smt::{self, MemorySmt};
use crate::state::{
    is_ledger_type, ApplyContext, ApplyError, MemoryState, Overlay, StateCommitment, StateMachine,
    StateView,
};
use crate::state::{last_seq, seq_key};

/// Why the log fails the audit. Each names the index where the replay parted from the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The entry is malformed or its signature does not verify.
    #[error("entry {index}: {rejection}")]
    Entry {
        /// Log index.
        index: u64,
        /// Why.
        rejection: Rejection,
    },
    /// The rules refuse an entry the log holds (the node accepted what it should not have).
    #[error("entry {index} is in the log but the rules refuse it: {rejection}")]
    Refused {
        /// Log index.
        index: u64,
        /// Why.
        rejection: Rejection,
    },
    /// A `log.state` entry that is malformed, not the node's, out of place or going back in time.
    #[error("entry {index}: {reason}")]
    Commitment {
        /// Log index.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// The recorded state root is not the one the replay reaches.
    #[error("entry {index} records state root {recorded}, the replay reaches {replayed}")]
    StateRoot {
        /// Log index of the `log.state` entry.
        index: u64,
        /// Root in the log.
        recorded: Hash,
        /// Root of the replay.
        replayed: Hash,
    },
    /// The log ends inside a batch (entries after the last `log.state`).
    #[error("the log ends with {0} entries after its last state commitment")]
    Unclosed(usize),
    /// The replay's own storage failed (cannot happen in memory; kept for completeness).
    #[error("replay state: {0}")]
    State(String),
}

/// What a passed audit covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditReport {
    /// Entries replayed, `log.state` entries included.
    pub entries: u64,
    /// Batches (= `log.state` entries) checked.
    pub batches: u64,
    /// The last state root.
    pub state_root: Hash,
}

/// A replay in progress: feed it the log's entries in index order with [`Audit::push`].
pub struct Audit<'m, M: StateMachine> {
    machine: &'m M,
    node_key: [u8; 32],
    state: MemoryState,
    tree: MemorySmt,
    batch: Vec<(u64, Verified<Envelope>)>,
    next_index: u64,
    batch_time_ms: u64,
    batches: u64,
    state_root: Hash,
}

impl<M: StateMachine> std::fmt::Debug for Audit<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("next_index", &self.next_index)
            .field("batches", &self.batches)
            .finish_non_exhaustive()
    }
}

impl<'m, M: StateMachine> Audit<'m, M> {
    /// A replay of a log whose `log.state` entries are signed by `node_key`.
    pub fn new(machine: &'m M, node_key: [u8; 32]) -> Audit<'m, M> {
        Audit {
            machine,
            node_key,
            state: MemoryState::new(),
            tree: MemorySmt::new(),
            batch: Vec::new(),
            next_index: 0,
            batch_time_ms: 0,
            batches: 0,
            state_root: smt::EMPTY,
        }
    }

    /// Replays the next entry (its exact stored bytes).
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        let index = self.next_index;
        self.next_index += 1;
        let env =
            verify_stored(bytes).map_err(|rejection| AuditError::Entry { index, rejection })?;
        if !is_ledger_type(&env.body().kind) {
            self.batch.push((index, env));
            return Ok(());
        }
        let bad = |reason: String| AuditError::Commitment { index, reason };
        let c = StateCommitment::from_entry(&env)
            .ok_or_else(|| bad("not a well-formed log.state entry".into()))?;
        if env.body().signer != self.node_key {
            return Err(bad("log.state is not signed by the node key".into()));
        }
        if c.size != index || self.batch.is_empty() {
            return Err(bad(format!(
                "log.state for size {} must close a non-empty batch at index {index}",
                c.size
            )));
        }
        if c.batch_time_ms < self.batch_time_ms {
            return Err(bad(format!(
                "batch time {} goes back from {}",
                c.batch_time_ms, self.batch_time_ms
            )));
        }
        self.batch_time_ms = c.batch_time_ms;
        let root = self.apply_batch()?;
        if root != c.root {
            return Err(AuditError::StateRoot {
                index,
                recorded: c.root,
                replayed: root,
            });
        }
        self.batches += 1;
        self.state_root = root;
        Ok(())
    }

    /// Applies the batch as the sequencer did (replay check, rules, then one state-tree update).
    fn apply_batch(&mut self) -> Result<Hash, AuditError> {
        let mut overlay = Overlay::new();
        let state_err = |e: crate::store_error::StoreError| AuditError::State(e.to_string());
        for (index, env) in std::mem::take(&mut self.batch) {
            let signer = env.body().signer;
            let last = last_seq(&self.state, &overlay, &signer).map_err(state_err)?;
            if env.body().seq <= last {
                return Err(AuditError::Refused {
                    index,
                    rejection: Rejection::Replay {
                        last,
                        got: env.body().seq,
                    },
                });
            }
            let ctx = ApplyContext {
                index,
                batch_time_ms: self.batch_time_ms,
            };
            let mut view = StateView::new(&self.state, &overlay);
            match self.machine.apply(&mut view, &env, &ctx) {
                Ok(()) => {
                    let writes = view.into_writes();
                    overlay.extend(writes);
                    overlay.insert(
                        seq_key(&signer),
                        Some(env.body().seq.to_be_bytes().to_vec()),
                    );
                }
                Err(ApplyError::Rejected(rejection)) => {
                    return Err(AuditError::Refused { index, rejection })
                }
                Err(ApplyError::Storage(e)) => return Err(state_err(e)),
            }
        }
        let root = self
            .tree
            .apply(&smt::changes_of(overlay.iter()))
            .map_err(|e| AuditError::State(e.to_string()))?;
        self.state.commit(overlay);
        Ok(root)
    }

    /// The state root the entries pushed since the last commitment would reach if their batch
    /// were closed at `batch_time_ms`, without closing it. With it an offline tool (or a test
    /// building a log) writes the `log.state` entry that closes the batch, then pushes it.
    pub fn pending_root(&self, batch_time_ms: u64) -> Result<Hash, AuditError> {
        let mut probe = Audit {
            machine: self.machine,
            node_key: self.node_key,
            state: self.state.clone(),
            tree: self.tree.clone(),
            batch: self.batch.clone(),
            next_index: self.next_index,
            batch_time_ms: batch_time_ms.max(self.batch_time_ms),
            batches: self.batches,
            state_root: self.state_root,
        };
        probe.apply_batch()
    }

    /// Entries pushed so far (the next entry's index).
    pub fn size(&self) -> u64 {
        self.next_index
    }

    /// Ends the replay: every batch must be closed by its commitment.
    pub fn finish(self) -> Result<AuditReport, AuditError> {
        if !self.batch.is_empty() {
            return Err(AuditError::Unclosed(self.batch.len()));
        }
        Ok(AuditReport {
            entries: self.next_index,
            batches: self.batches,
            state_root: self.state_root,
        })
    }

    /// The replayed state so far (for queries over an audited log).
    pub fn state(&self) -> &MemoryState {
        &self.state
    }
}
