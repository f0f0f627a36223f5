//! Wire types: field names and encodings exactly as outside verifiers see them (camelCase,
//! hashes and bytes in standard base64, sizes and indexes as JSON integers).

use coopledger_ledger::codec::b64_encode;
use coopledger_ledger::{Hash, Receipt, SignedCheckpoint};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A signed checkpoint: the full C2SP note plus its parsed fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointInfo {
    /// The whole signed note text.
    pub note: String,
    /// The log's origin line.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Base64 root hash.
    pub root: String,
}

impl From<&SignedCheckpoint> for CheckpointInfo {
    fn from(c: &SignedCheckpoint) -> CheckpointInfo {
        CheckpointInfo {
            note: c.note.clone(),
            origin: c.checkpoint.origin.clone(),
            size: c.checkpoint.size,
            root: c.checkpoint.root.to_base64(),
        }
    }
}

/// An RFC 9162 inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// Leaf index.
    pub index: u64,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
    /// Base64 hashes, leaf-side first.
    pub hashes: Vec<String>,
}

/// An RFC 9162 consistency proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    /// Older tree size.
    pub from_size: u64,
    /// Newer tree size.
    pub to_size: u64,
    /// Base64 hashes.
    pub hashes: Vec<String>,
}

/// The receipt `ledger_submit` returns once a stored checkpoint covers the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitResult {
    /// Position in the log.
    pub index: u64,
    /// Base64 `SHA-256(0x00 ‖ entry)`.
    pub leaf_hash: String,
    /// Base64 `SHA-256(canonical body)`.
    pub entry_id: String,
    /// The checkpoint covering the entry.
    pub checkpoint: CheckpointInfo,
    /// Inclusion proof of `index` in `checkpoint`.
    pub inclusion_proof: InclusionProof,
    /// True when the same body was already in the log (this is its original receipt).
    pub duplicate: bool,
}

impl From<&Receipt> for SubmitResult {
    fn from(r: &Receipt) -> SubmitResult {
        SubmitResult {
            index: r.index,
            leaf_hash: r.leaf_hash.to_base64(),
            entry_id: r.entry_id.to_base64(),
            checkpoint: CheckpointInfo::from(r.checkpoint.as_ref()),
            inclusion_proof: InclusionProof {
                index: r.index,
                tree_size: r.checkpoint.checkpoint.size,
                hashes: hashes_b64(&r.inclusion_proof),
            },
            duplicate: r.duplicate,
        }
    }
}

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryResult {
    /// Position in the log.
    pub index: u64,
    /// Base64 of the exact bytes hashed into the tree.
    pub entry: String,
    /// Base64 leaf hash.
    pub leaf_hash: String,
    /// The envelope as JSON, for reading.
    pub decoded: Value,
}

/// Base64 of each hash.
pub fn hashes_b64(h: &[Hash]) -> Vec<String> {
    h.iter().map(Hash::to_base64).collect()
}

/// Base64 of bytes.
pub fn bytes_b64(b: &[u8]) -> String {
    b64_encode(b)
}
