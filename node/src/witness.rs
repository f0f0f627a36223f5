//! This node as a witness for other co-ops' logs: its witness key (derived from the node key),
//! and the witness's state and split-view evidence in the node's off-log store. The protocol
//! itself is `ledger::witness`; the HTTP endpoint that serves it is `rpc::witness`.
//!
//! Off-log keys: `witness/latest/<origin>` → [`Witnessed`]; `witness/evidence/<origin>/<u64 BE
//! seen-at>/<u64 BE n>` → [`SplitViewEvidence`].

use coopledger_governance::CoopRules;
use coopledger_ledger::cosignature::Cosigner;
use coopledger_ledger::note::NoteVerifier;
use coopledger_ledger::witness::{
    SplitViewEvidence, Witness, WitnessStore, WitnessStoreError, Witnessed,
};
use coopledger_ledger::Log;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The witness key of a node: derived from its node key, so one key never signs both as the
/// log and as a witness.
pub fn witness_key(node_key: &SigningKey) -> SigningKey {
    let mut h = Sha256::new();
    h.update(b"coopledger/v1/witness-key\0");
    h.update(node_key.to_bytes());
    SigningKey::from_bytes(&h.finalize().into())
}

/// Witness state in the node's off-log store.
pub struct OfflogWitnessStore {
    log: Arc<Log<CoopRules>>,
    counter: AtomicU64,
}

impl std::fmt::Debug for OfflogWitnessStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfflogWitnessStore").finish_non_exhaustive()
    }
}

fn latest_key(origin: &str) -> Vec<u8> {
    [b"witness/latest/".as_slice(), origin.as_bytes()].concat()
}
fn evidence_prefix(origin: &str) -> Vec<u8> {
    [b"witness/evidence/".as_slice(), origin.as_bytes(), b"/"].concat()
}

impl OfflogWitnessStore {
    /// Over `log`'s off-log records.
    pub fn new(log: Arc<Log<CoopRules>>) -> OfflogWitnessStore {
        OfflogWitnessStore {
            log,
            counter: AtomicU64::new(0),
        }
    }

    /// Every piece of evidence kept about `origin`, oldest first.
    pub fn evidence(&self, origin: &str) -> Result<Vec<SplitViewEvidence>, WitnessStoreError> {
        self.log
            .offlog_scan(&evidence_prefix(origin))?
            .iter()
            .map(|(_, v)| decode(&format!("evidence/{origin}"), v))
            .collect()
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, v: &[u8]) -> Result<T, WitnessStoreError> {
    serde_json::from_slice(v).map_err(|e| WitnessStoreError::Record {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}

fn encode<T: serde::Serialize>(what: &str, v: &T) -> Result<Vec<u8>, WitnessStoreError> {
    serde_json::to_vec(v).map_err(|e| WitnessStoreError::Record {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}

impl WitnessStore for OfflogWitnessStore {
    fn latest(&self, origin: &str) -> Result<Option<Witnessed>, WitnessStoreError> {
        self.log
            .offlog_get(&latest_key(origin))?
            .map(|v| decode(&format!("latest/{origin}"), &v))
            .transpose()
    }
    fn save(&self, origin: &str, w: &Witnessed) -> Result<(), WitnessStoreError> {
        let v = encode(&format!("latest/{origin}"), w)?;
        Ok(self.log.offlog_put(&latest_key(origin), &v)?)
    }
    fn keep_evidence(&self, e: &SplitViewEvidence) -> Result<(), WitnessStoreError> {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let key = [
            evidence_prefix(&e.origin),
            e.seen_at.to_be_bytes().to_vec(),
            b"/".to_vec(),
            n.to_be_bytes().to_vec(),
        ]
        .concat();
        let v = encode(&format!("evidence/{}", e.origin), e)?;
        Ok(self.log.offlog_put(&key, &v)?)
    }
}

/// The node's witness: its cosigner and the logs it follows.
pub type NodeWitness = Witness<OfflogWitnessStore>;

/// Builds the node's witness for the logs whose verifier keys are `logs`.
pub fn node_witness(
    log: Arc<Log<CoopRules>>,
    node_key: &SigningKey,
    logs: Vec<NoteVerifier>,
) -> Result<NodeWitness, coopledger_ledger::note::NoteError> {
    let name = format!("{}/witness", log.origin());
    let cosigner = Cosigner::new(&name, witness_key(node_key))?;
    Ok(Witness::new(cosigner, logs, OfflogWitnessStore::new(log)))
}
