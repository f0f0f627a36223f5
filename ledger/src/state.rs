//! The state-machine interface the ledger drives (DESIGN §4): each verified entry is validated
//! and applied, in log order, against a key-value view of the current state; the changes commit
//! in the same RocksDB write batch as the entries that caused them.

use crate::entry::{Envelope, Rejection, Verified};
use crate::store::StoreError;
use std::collections::BTreeMap;

/// Key namespace of the ledger's own state (per-signer sequence numbers).
pub(crate) const NS_LEDGER: u8 = 0x00;
/// Key namespace of the state machine's state.
pub(crate) const NS_APP: u8 = 0x01;

/// What the state machine may know about the entry's position; it reads no clock of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyContext {
    /// Index the entry will have in the log.
    pub index: u64,
    /// The batch's time (node clock, never decreasing), milliseconds since the Unix epoch.
    pub batch_time_ms: u64,
}

/// Why an entry could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The entry breaks a rule; it is refused and changes nothing.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// State could not be read; the whole batch is abandoned.
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// The co-op's rules. Implementations must be deterministic: the same entries in the same order
/// give the same state on every machine — no clock, randomness or I/O but the given view.
pub trait StateMachine: Send + Sync + 'static {
    /// Whether `(entry type, version)` is registered. Checked before the signature.
    fn accepts(&self, kind: &str, version: u64) -> bool;

    /// Validates `entry` against `state` and records its effects there. On `Err`, every change
    /// the call made is discarded by the caller.
    fn apply(
        &self,
        state: &mut StateView<'_>,
        entry: &Verified<Envelope>,
        ctx: &ApplyContext,
    ) -> Result<(), ApplyError>;
}

/// Reads committed state by full key (namespace byte first).
pub trait StateSource {
    /// The committed value, if any.
    fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Uncommitted writes: `None` is a deletion.
pub type Overlay = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// What the state machine sees: committed state, then this batch's accepted writes, then the
/// current entry's own writes.
pub struct StateView<'a> {
    base: &'a dyn StateSource,
    batch: &'a Overlay,
    pending: Overlay,
}

impl std::fmt::Debug for StateView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateView")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

fn app_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(NS_APP);
    k.extend_from_slice(key);
    k
}

impl<'a> StateView<'a> {
    pub(crate) fn new(base: &'a dyn StateSource, batch: &'a Overlay) -> StateView<'a> {
        StateView {
            base,
            batch,
            pending: Overlay::new(),
        }
    }

    /// Reads a key of the state machine's namespace.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let k = app_key(key);
        if let Some(v) = self.pending.get(&k) {
            return Ok(v.clone());
        }
        if let Some(v) = self.batch.get(&k) {
            return Ok(v.clone());
        }
        self.base.state_get(&k)
    }

    /// Writes a key of the state machine's namespace.
    pub fn put(&mut self, key: &[u8], value: Vec<u8>) {
        self.pending.insert(app_key(key), Some(value));
    }

    /// Deletes a key of the state machine's namespace.
    pub fn delete(&mut self, key: &[u8]) {
        self.pending.insert(app_key(key), None);
    }

    pub(crate) fn into_writes(self) -> Overlay {
        self.pending
    }
}

/// Committed state held in memory: for rule tests and offline replays, no RocksDB needed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemoryState {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl StateSource for MemoryState {
    fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.get(key).cloned())
    }
}

impl MemoryState {
    /// Empty state.
    pub fn new() -> MemoryState {
        MemoryState::default()
    }

    /// Applies one entry as the sequencer would: all of its writes or none.
    pub fn apply<M: StateMachine + ?Sized>(
        &mut self,
        machine: &M,
        entry: &Verified<Envelope>,
        ctx: &ApplyContext,
    ) -> Result<(), ApplyError> {
        let empty = Overlay::new();
        let mut view = StateView::new(self, &empty);
        machine.apply(&mut view, entry, ctx)?;
        for (k, v) in view.into_writes() {
            match v {
                Some(v) => self.map.insert(k, v),
                None => self.map.remove(&k),
            };
        }
        Ok(())
    }

    /// Reads a key of the state machine's namespace.
    pub fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
        self.map.get(&app_key(key))
    }
}
