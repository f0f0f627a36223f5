//! The state-machine interface the ledger drives (DESIGN §4): each verified entry is validated
//! and applied, in log order, against a key-value view of the current state; the changes commit
//! in the same RocksDB write batch as the entries that caused them.

use crate::codec::b64_encode;
use crate::entry::{Body, Envelope, Rejection, Verified};
use crate::hash::Hash;
use crate::store_error::StoreError;
use ed25519_dalek::SigningKey;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Entry type of the state commitment the sequencer appends as the last entry of every batch.
/// Types under `log.` are the ledger's own: no submission may use them.
pub const STATE_ENTRY_TYPE: &str = "log.state";

/// True for entry types reserved to the ledger itself.
pub fn is_ledger_type(kind: &str) -> bool {
    kind.starts_with("log.")
}

/// What a `log.state` entry records: the state-tree root after the first `size` entries (the
/// entries before it), and the batch's node time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateCommitment {
    /// Entries the state covers; the commitment entry's own index.
    pub size: u64,
    /// Root of the state tree (see [`crate::smt`]).
    pub root: Hash,
    /// The batch's node time (ms): the time every rule of the batch was applied at.
    pub batch_time_ms: u64,
}

impl StateCommitment {
    /// The entry, signed by the node key: `{"size": n, "stateRoot": "<base64>"}`, `seq = n + 1`
    /// (its own sequence, the entry's position), `ts` = the batch time.
    pub fn to_entry(&self, coop: &str, node_key: &SigningKey) -> Result<Envelope, Rejection> {
        let mut payload = Map::new();
        payload.insert("size".into(), Value::from(self.size));
        payload.insert("stateRoot".into(), Value::from(b64_encode(self.root.0)));
        Body {
            coop: coop.to_owned(),
            kind: STATE_ENTRY_TYPE.to_owned(),
            version: 1,
            signer: node_key.verifying_key().to_bytes(),
            seq: self.size + 1,
            ts: self.batch_time_ms,
            payload,
        }
        .sign(node_key)
    }

    /// Reads a `log.state` entry; `None` for any other entry or a malformed one.
    pub fn from_entry(env: &Envelope) -> Option<StateCommitment> {
        let b = env.body();
        if b.kind != STATE_ENTRY_TYPE || b.version != 1 || b.payload.len() != 2 {
            return None;
        }
        let size = b.payload.get("size")?.as_u64()?;
        let root = Hash::from_base64(b.payload.get("stateRoot")?.as_str()?)?;
        (b.seq == size + 1).then_some(StateCommitment {
            size,
            root,
            batch_time_ms: b.ts,
        })
    }
}

/// Key namespace of the ledger's own state (per-signer sequence numbers).
pub(crate) const NS_LEDGER: u8 = 0x00;
/// Key namespace of the state machine's state.
pub const NS_APP: u8 = 0x01;

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

    /// Every committed `(key, value)` whose key starts with `prefix`, in key order.
    fn state_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError>;

    /// The committed values of `keys`, in order (one read of all of them where the source can).
    fn state_values(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|k| self.state_get(k)).collect()
    }
}

/// Read access to the state machine's namespace (keys without the namespace byte), the same
/// whether the reader is a rule being applied, a query on the node, or an offline replay.
pub trait StateRead {
    /// The value of `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every `(key, value)` whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError>;
}

/// `base` read through `overlays` (later overlays win), restricted to the app namespace.
pub(crate) fn scan_app(
    base: &dyn StateSource,
    overlays: &[&Overlay],
    prefix: &[u8],
) -> Result<Vec<KeyValue>, StoreError> {
    Ok(merge_app(
        base.state_scan(&app_key(prefix))?,
        overlays,
        prefix,
    ))
}

/// `read`, the full-key result of a state scan of the app namespace under `prefix`, read through
/// `overlays` (later overlays win), with the namespace byte taken off the keys.
pub(crate) fn merge_app(
    read: Vec<KeyValue>,
    overlays: &[&Overlay],
    prefix: &[u8],
) -> Vec<KeyValue> {
    let full = app_key(prefix);
    let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = read.into_iter().collect();
    for overlay in overlays {
        for (k, v) in overlay.range(full.clone()..) {
            if !k.starts_with(&full) {
                break;
            }
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
    }
    merged
        .into_iter()
        .map(|(k, v)| (k.get(1..).map(<[u8]>::to_vec).unwrap_or_default(), v))
        .collect()
}

/// One state key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

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

/// The full state key (namespace byte first) of the state machine's key `key`: what the state
/// tree commits to and state proofs name.
pub fn app_key(key: &[u8]) -> Vec<u8> {
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

    /// Every `(key, value)` of the state machine's namespace under `prefix`, including this
    /// batch's and this entry's writes.
    pub fn scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        scan_app(self.base, &[self.batch, &self.pending], prefix)
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

impl StateRead for StateView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        StateView::get(self, key)
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        StateView::scan(self, prefix)
    }
}

impl StateSource for MemoryState {
    fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.get(key).cloned())
    }
    fn state_scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self
            .map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl StateRead for MemoryState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.get(&app_key(key)).cloned())
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        scan_app(self, &[], prefix)
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

    /// Writes a batch's changes (full keys).
    pub(crate) fn commit(&mut self, overlay: Overlay) {
        for (k, v) in overlay {
            match v {
                Some(v) => self.map.insert(k, v),
                None => self.map.remove(&k),
            };
        }
    }

    /// Reads a key of the state machine's namespace.
    pub fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
        self.map.get(&app_key(key))
    }
}

/// The state key of a signer's last accepted sequence number.
pub(crate) fn seq_key(signer: &[u8; 32]) -> Vec<u8> {
    let mut k = vec![NS_LEDGER];
    k.extend_from_slice(b"seq/");
    k.extend_from_slice(signer);
    k
}

/// Last accepted sequence number of `signer` (0 if none), seen through `overlay`.
pub(crate) fn last_seq(
    base: &dyn StateSource,
    overlay: &Overlay,
    signer: &[u8; 32],
) -> Result<u64, StoreError> {
    let k = seq_key(signer);
    let v = match overlay.get(&k) {
        Some(v) => v.clone(),
        None => base.state_get(&k)?,
    };
    Ok(v.and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_sees_committed_state_through_the_batch_and_the_entry_writes() {
        let mut base = MemoryState::new();
        for k in [&b"a/1"[..], b"a/2", b"a/3", b"b/1"] {
            base.map.insert(app_key(k), k.to_vec());
        }
        base.map.insert(vec![NS_LEDGER, b'a'], vec![9]); // another namespace: never seen
        let mut batch = Overlay::new();
        batch.insert(app_key(b"a/2"), None);
        batch.insert(app_key(b"a/4"), Some(b"batch".to_vec()));
        let mut view = StateView::new(&base, &batch);
        view.put(b"a/0", b"entry".to_vec());
        view.delete(b"a/4");
        let keys: Vec<(Vec<u8>, Vec<u8>)> = view.scan(b"a/").unwrap();
        assert_eq!(
            keys,
            vec![
                (b"a/0".to_vec(), b"entry".to_vec()),
                (b"a/1".to_vec(), b"a/1".to_vec()),
                (b"a/3".to_vec(), b"a/3".to_vec()),
            ]
        );
        assert_eq!(StateRead::scan(&base, b"b").unwrap().len(), 1);
        assert!(StateRead::scan(&base, b"c").unwrap().is_empty());
    }
}
